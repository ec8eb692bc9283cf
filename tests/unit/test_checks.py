"""The argument checks: good input comes back normalised; bad input raises the named class, naming the argument."""

from __future__ import annotations

import pickle
import re

import numpy as np
import pytest

from monolith_ref import checks
from monolith_ref.checks import (
    InvalidArgumentError,
    InvalidIdsError,
    InvalidIntegerError,
    InvalidNameError,
    InvalidNumberError,
    InvalidRateError,
    InvalidTimeError,
    InvalidTypeError,
    check_bytes,
    check_id,
    check_ids,
    check_int,
    check_name,
    check_number,
    check_rate,
    check_time,
    is_int,
)
from monolith_ref.streaming.log import CorruptLogError, LogError
from monolith_ref.tables import base as tables


def test_the_hierarchy() -> None:
    for cls in (InvalidTypeError, InvalidIntegerError, InvalidIdsError, InvalidTimeError, InvalidNumberError,
                InvalidRateError, InvalidNameError):
        assert issubclass(cls, InvalidArgumentError) and issubclass(cls, ValueError)
    assert issubclass(InvalidTypeError, TypeError), "a wrong type is also Python's TypeError"
    assert not issubclass(InvalidIdsError, TypeError)
    # the tables' errors are table errors and the checks' errors of their kind
    assert issubclass(tables.InvalidIdsError, tables.TableError) and issubclass(tables.InvalidIdsError, InvalidIdsError)
    assert issubclass(tables.InvalidTimeError, tables.TableError) and issubclass(tables.InvalidTimeError, InvalidTimeError)
    for cls in (tables.InvalidGradientsError, tables.StateMismatchError, LogError, CorruptLogError):
        assert issubclass(cls, InvalidArgumentError)


@pytest.mark.parametrize("cls", [InvalidTypeError, InvalidIdsError, tables.InvalidIdsError, tables.InvalidTimeError])
def test_errors_pickle_and_rebuild_from_a_message(cls) -> None:
    """A PS sends its errors back pickled, and the client rebuilds them as ``type(err)(text)``."""
    err = pickle.loads(pickle.dumps(cls("x must be y")))
    assert type(err) is cls and str(err) == "x must be y"
    assert str(type(err)("again")) == "again"


def test_is_int() -> None:
    for good in (0, -3, 2**70, np.int64(5), np.uint64(2**64 - 1), np.int8(-1)):
        assert is_int(good)
    for bad in (True, np.bool_(False), 1.0, np.float64(2), "3", None, [1]):
        assert not is_int(bad)


def raises(cls: type[BaseException], name: str, call) -> None:
    with pytest.raises(cls, match=re.escape(name)) as info:
        call()
    assert type(info.value) is cls, f"{type(info.value).__name__} is not exactly {cls.__name__}"


def test_check_int() -> None:
    assert check_int(5, "n") == 5 and check_int(np.int32(-2), "n") == -2
    assert type(check_int(np.uint64(7), "n", low=0)) is int
    assert check_int(0, "n", low=0, high=1) == 0 and check_int(2**80, "n") == 2**80
    for bad in (1.5, True, "3", None, np.float32(1)):
        raises(InvalidTypeError, "widgets", lambda bad=bad: check_int(bad, "widgets", low=1))
    for bad, low, high in ((0, 1, None), (5, 0, 5), (-1, 0, 5), (2**63, checks.INT64_MIN, checks.INT64_END)):
        raises(InvalidIntegerError, "widgets", lambda bad=bad, low=low, high=high: check_int(bad, "widgets", low, high))
    with pytest.raises(InvalidIntegerError, match=r"widgets must be an integer >= 1, got 0"):
        check_int(0, "widgets", low=1)
    with pytest.raises(InvalidIntegerError, match="signed 64-bit"):
        check_int(-(2**63) - 1, "widgets", checks.INT64_MIN, checks.INT64_END)
    with pytest.raises(LogError, match="max_records"):  # a module may raise its own subclass
        check_int(0, "max_records", low=1, error=LogError)


def test_check_id() -> None:
    assert check_id(0) == 0 and check_id(np.uint64(2**64 - 1)) == 2**64 - 1
    for bad in (1.5, True, "7", None):
        raises(InvalidTypeError, "request_id", lambda bad=bad: check_id(bad))
    for bad in (-1, 2**64):
        with pytest.raises(InvalidIdsError, match=r"request_id must be an integer in \[0, 2\*\*64\)"):
            check_id(bad)
    raises(InvalidIdsError, "item", lambda: check_id(-5, "item"))


def test_check_ids() -> None:
    assert check_ids([1, 2**64 - 1]).tolist() == [1, 2**64 - 1]
    out = check_ids(np.array([3, 4], dtype=np.int32))
    assert out.dtype == np.uint64 and out.tolist() == [3, 4]
    same = np.array([5], dtype=np.uint64)
    assert check_ids(same) is same, "a uint64 array is not copied"
    assert check_ids([]).shape == (0,)
    for bad in ([1, -1], [2**64], np.array([1.0]), np.array([np.nan]), np.array([[1]]), np.array(3),
                np.array([True]), np.array(["1"]), [1, 2.5]):
        raises(InvalidIdsError, "IDs", lambda bad=bad: check_ids(bad))
    raises(tables.InvalidIdsError, "keys", lambda: check_ids([-1], "keys", error=tables.InvalidIdsError))


def test_check_time() -> None:
    assert check_time(0) == 0 and check_time(-5) == -5 and check_time(np.int64(2**62)) == 2**62
    for bad in (1.5, True, "3", None, float("nan")):
        raises(InvalidTypeError, "timestamp", lambda bad=bad: check_time(bad, "timestamp"))
    with pytest.raises(InvalidTypeError, match="timestamp must be an integer number of seconds"):
        check_time(0.5, "timestamp")
    for bad in (2**63, -(2**63) - 1):
        with pytest.raises(InvalidTimeError, match="time must be an integer number of seconds in the signed 64-bit"):
            check_time(bad)
    raises(InvalidTimeError, "now", lambda: check_time(-1, "now", low=0))
    raises(tables.InvalidTimeError, "now", lambda: tables.check_now(2**63))


def test_check_number_and_rate() -> None:
    assert check_number(2, "x") == 2.0 and type(check_number(np.float32(0.5), "x")) is float
    assert check_number(0.0, "x", low=0.0) == 0.0 and check_number(1, "x", 0.0, 1.0) == 1.0
    for bad in ("1", None, True, [1.0]):
        raises(InvalidTypeError, "delay", lambda bad=bad: check_number(bad, "delay", low=0.0))
    for bad, kwargs in ((float("nan"), {}), (float("inf"), {}), (-0.1, {"low": 0.0}), (1.5, {"low": 0.0, "high": 1.0}),
                        (0.0, {"low": 0.0, "low_open": True})):
        raises(InvalidNumberError, "delay", lambda bad=bad, kwargs=kwargs: check_number(bad, "delay", **kwargs))
    assert check_rate(1) == 1.0 and check_rate(np.float64(1e-9)) == 1e-9
    for bad in (0.0, -0.5, 1.01, float("nan")):
        with pytest.raises(InvalidRateError, match=r"sample rate must be a finite number in \(0.0, 1.0\]"):
            check_rate(bad)
    raises(InvalidTypeError, "negative_rate", lambda: check_rate("1", "negative_rate"))


def test_check_bytes() -> None:
    b = b"abc"
    assert check_bytes(b, "value") is b
    assert check_bytes(bytearray(b"x"), "value") == b"x" and check_bytes(memoryview(b"y"), "value") == b"y"
    for bad in ("abc", 3, None, [1]):
        raises(InvalidTypeError, "payload must be bytes", lambda bad=bad: check_bytes(bad, "payload"))


def test_check_name() -> None:
    pattern = re.compile(r"[a-z]{1,5}")
    assert check_name("abc", "topic name", pattern, "1-5 of a-z") == "abc"
    for bad in ("", "toolong", "A", "a/b"):
        raises(InvalidNameError, "topic name", lambda bad=bad: check_name(bad, "topic name", pattern, "1-5 of a-z"))
    raises(InvalidTypeError, "topic name must be a str", lambda: check_name(3, "topic name", pattern, "1-5 of a-z"))
    raises(LogError, "group name", lambda: check_name("A", "group name", pattern, "1-5 of a-z", error=LogError))
