"""Argument checks shared by the package: integers, IDs, event times, rates, bytes and names.

Every public function of monolith_ref checks its arguments before it changes anything, and a
refused argument raises an :class:`InvalidArgumentError` (a ``ValueError``) whose message
names the argument and says what it must be. One module does it, so that the tables, the
joiner, the log and the store refuse the same input with the same error classes:

* :class:`InvalidTypeError`: the argument has the wrong Python type (a float where an integer
  is needed, a ``str`` where bytes are). It is also a ``TypeError``, Python's usual class.
* :class:`InvalidIntegerError`, :class:`InvalidIdsError`, :class:`InvalidTimeError`,
  :class:`InvalidNumberError`, :class:`InvalidRateError`, :class:`InvalidNameError`: the type
  is right but the value is not (out of range, not finite, a name with other characters).

A module may raise a subclass of these that also says where (the tables'
:class:`~monolith_ref.tables.base.InvalidIdsError` is an :class:`InvalidIdsError` and a
``TableError``): the checks take the class to raise as ``error``.

See: book/ch03_dict_table.md
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

__all__ = [
    "InvalidArgumentError",
    "InvalidTypeError",
    "InvalidIntegerError",
    "InvalidIdsError",
    "InvalidTimeError",
    "InvalidNumberError",
    "InvalidRateError",
    "InvalidNameError",
    "INT64_MIN",
    "INT64_END",
    "is_int",
    "check_int",
    "check_id",
    "check_ids",
    "check_time",
    "check_number",
    "check_rate",
    "check_bytes",
    "check_name",
]

#: The signed 64-bit range, ``[INT64_MIN, INT64_END)``: what SQLite and the log's records store.
INT64_MIN = -(2**63)
INT64_END = 2**63
_U64_END = 2**64


# --------------------------------------------------------------------------- errors


class InvalidArgumentError(ValueError):
    """An argument the package refuses; the message names it and says what it must be.

    See: book/ch03_dict_table.md
    """


class InvalidTypeError(InvalidArgumentError, TypeError):
    """An argument of the wrong Python type; also a ``TypeError``. See: book/ch03_dict_table.md"""


class InvalidIntegerError(InvalidArgumentError):
    """An integer argument (a count, a size, an offset, a seed) outside its range. See: book/ch03_dict_table.md"""


class InvalidIdsError(InvalidArgumentError):
    """IDs that are not integers in ``[0, 2**64)`` (or, for a batch, not a 1-D array of them).

    See: book/ch03_dict_table.md
    """


class InvalidTimeError(InvalidArgumentError):
    """An event time (integer seconds) outside its range. See: book/ch03_dict_table.md"""


class InvalidNumberError(InvalidArgumentError):
    """A real-valued argument that is not finite or is outside its range. See: book/ch03_dict_table.md"""


class InvalidRateError(InvalidArgumentError):
    """A rate (a probability of keeping something) outside ``(0, 1]``. See: book/ch09_streaming.md"""


class InvalidNameError(InvalidArgumentError):
    """A name (a topic, a group, a table id) with characters or a length that are not allowed.

    Names become file and folder names, so they are restricted. See: book/ch09_streaming.md
    """


# --------------------------------------------------------------------------- integers


def is_int(value: Any) -> bool:
    """True for a Python or NumPy integer, False for anything else (``bool`` included).

    See: book/ch03_dict_table.md
    """
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _bound(x: int) -> str:
    for power in (64, 63):
        if x == 2**power:
            return f"2**{power}"
        if x == -(2**power):
            return f"-2**{power}"
    return str(x)


def _range(low: int | None, high: int | None) -> str:
    """The range ``[low, high)`` in words, for messages."""
    if low == INT64_MIN and high == INT64_END:
        return " in the signed 64-bit range"
    if low is not None and high is not None:
        return f" in [{_bound(low)}, {_bound(high)})"
    if low is not None:
        return f" >= {_bound(low)}"
    if high is not None:
        return f" < {_bound(high)}"
    return ""


def check_int(value: Any, name: str, low: int | None = None, high: int | None = None,
              error: type[InvalidArgumentError] = InvalidIntegerError) -> int:
    """Return ``value`` as an ``int`` if it is an integer in ``[low, high)`` (a bound of None: no bound).

    A non-integer (a ``bool`` included) raises :class:`InvalidTypeError`; an integer out of
    range raises ``error``. See: book/ch03_dict_table.md
    """
    if type(value) is int and (low is None or value >= low) and (high is None or value < high):
        return value  # the common case, checked fast
    if not is_int(value):
        raise InvalidTypeError(f"{name} must be an integer{_range(low, high)}, got {value!r}")
    v = int(value)
    if (low is not None and v < low) or (high is not None and v >= high):
        raise error(f"{name} must be an integer{_range(low, high)}, got {v}")
    return v


def check_id(value: Any, name: str = "request_id", error: type[InvalidArgumentError] = InvalidIdsError) -> int:
    """Return one ID (an integer in ``[0, 2**64)``) as an ``int``; see :func:`check_int`.

    See: book/ch09_streaming.md
    """
    if type(value) is int and 0 <= value < _U64_END:
        return value  # the common case, checked fast
    return check_int(value, name, 0, _U64_END, error)


def check_time(value: Any, name: str = "time", low: int = INT64_MIN, high: int = INT64_END,
               error: type[InvalidArgumentError] = InvalidTimeError) -> int:
    """Return an event time, integer seconds in ``[low, high)`` (default: any signed 64-bit value), as an ``int``.

    A non-integer raises :class:`InvalidTypeError`, a time out of range ``error``.
    See: book/ch03_dict_table.md
    """
    if type(value) is int and low <= value < high:
        return value  # the common case, checked fast
    rule = f"{name} must be an integer number of seconds{_range(low, high)}"
    if not is_int(value):
        raise InvalidTypeError(f"{rule}, got {value!r}")
    if not low <= int(value) < high:
        raise error(f"{rule}, got {int(value)}")
    return int(value)


def check_ids(ids: Any, name: str = "IDs", error: type[InvalidArgumentError] = InvalidIdsError) -> np.ndarray:
    """Return a batch of IDs as a 1-D uint64 array, or raise ``error`` saying why.

    Accepted: a 1-D array (or list) of integers in ``[0, 2**64)``: uint64, other unsigned
    types, or signed types holding no negative value. Refused: floats (and so NaN), bools,
    strings, negative values, and anything that is not 1-D. An array's dtype is part of its
    value here, so every refusal is ``error``. See: book/ch03_dict_table.md
    """
    if isinstance(ids, (list, tuple)) and all(is_int(x) for x in ids):
        # Python ints: check the range here, since NumPy would turn 2**64 - 1 into a float.
        bad = [x for x in ids if not 0 <= int(x) < _U64_END]
        if bad:
            raise error(f"{name} must be non-negative and below 2**64, got {bad[0]}")
        return np.array([int(x) for x in ids], dtype=np.uint64)
    if isinstance(ids, np.ndarray):
        arr = ids
    else:
        try:
            arr = np.asarray(ids)
        except (TypeError, ValueError, OverflowError) as exc:
            raise error(f"{name} could not be read as an integer array: {exc}") from None
    if arr.ndim != 1:
        raise error(f"{name} must be a 1-D array, got shape {arr.shape}")
    kind = arr.dtype.kind
    if kind == "u":
        return arr.astype(np.uint64, copy=False)
    if kind == "i":
        if arr.size and arr.min() < 0:
            raise error(f"{name} must be non-negative, got {int(arr.min())}")
        return arr.astype(np.uint64)
    if kind == "f":
        if arr.size and not np.isfinite(arr).all():
            raise error(f"{name} must be integers; got floats including NaN or infinity")
        raise error(f"{name} must be integers, got floating-point dtype {arr.dtype}")
    if kind == "b":
        raise error(f"{name} must be integers, got booleans")
    raise error(f"{name} must be integers, got dtype {arr.dtype}")


# --------------------------------------------------------------------------- real numbers


def check_number(value: Any, name: str, low: float | None = None, high: float | None = None,
                 low_open: bool = False, error: type[InvalidArgumentError] = InvalidNumberError,
                 high_open: bool = False) -> float:
    """Return ``value`` as a ``float`` if it is a finite real number in ``[low, high]``.

    ``low_open=True`` excludes ``low`` itself (``timeout > 0``), ``high_open=True`` excludes
    ``high`` (a share ``< 1``). A value that is not a number (a ``bool`` included) raises
    :class:`InvalidTypeError`; NaN, infinity or a value out of range raises ``error``.
    See: book/ch09_streaming.md
    """
    rule = "a finite number"
    if low is not None and high is not None:
        rule += f" in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    elif low is not None:
        rule += f" {'>' if low_open else '>='} {low}"
    elif high is not None:
        rule += f" {'<' if high_open else '<='} {high}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidTypeError(f"{name} must be {rule}, got {value!r}")
    v = float(value)
    if (not math.isfinite(v) or (low is not None and (v <= low if low_open else v < low))
            or (high is not None and (v >= high if high_open else v > high))):
        raise error(f"{name} must be {rule}, got {value!r}")
    return v


def check_rate(value: Any, name: str = "sample rate", error: type[InvalidArgumentError] = InvalidRateError) -> float:
    """Return a rate in ``(0, 1]`` (a probability of keeping something) as a ``float``.

    See: book/ch09_streaming.md
    """
    return check_number(value, name, 0.0, 1.0, low_open=True, error=error)


# --------------------------------------------------------------------------- bytes and names


def check_bytes(value: Any, name: str) -> bytes:
    """Return ``value`` as ``bytes`` (``bytes``, ``bytearray`` or ``memoryview``), or raise :class:`InvalidTypeError`.

    See: book/ch09_streaming.md
    """
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise InvalidTypeError(f"{name} must be bytes, got {type(value).__name__} {value!r:.60}")


def check_name(value: Any, name: str, pattern: re.Pattern[str], rule: str,
               error: type[InvalidArgumentError] = InvalidNameError) -> str:
    """Return ``value`` if it is a ``str`` that ``pattern`` matches in full; ``rule`` says what is allowed.

    A non-``str`` raises :class:`InvalidTypeError`, a ``str`` that does not match ``error``.
    See: book/ch09_streaming.md
    """
    if not isinstance(value, str):
        raise InvalidTypeError(f"{name} must be a str of {rule}, got {value!r}")
    if not pattern.fullmatch(value):
        raise error(f"{name} {value!r} must be {rule}")
    return value
