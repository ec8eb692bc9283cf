"""Failure messages that teach: short descriptions of what differs, for graders and checks.

A failed grader should tell a learner which rule broke and with which inputs, in one or two
lines (``monolith-ref grade`` shows the first four lines of the first failure). These helpers
describe a difference between two arrays or two table states briefly, and wrap
``pytest.raises`` so that a missing error says which call should have raised and why.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest


def short(value: Any, limit: int = 80) -> str:
    """``repr`` of ``value`` cut to ``limit`` characters (arrays as plain lists)."""
    if isinstance(value, np.ndarray):
        text = np.array2string(value, threshold=12, separator=", ", max_line_width=10**6)
        text = text.replace("\n", "")
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def array_diff(expected: Any, got: Any) -> str:
    """What differs between ``got`` and ``expected``: type, dtype, shape, or the first differing row."""
    if not isinstance(got, np.ndarray):
        return f"expected a NumPy array, got {type(got).__name__} {short(got)}"
    expected = np.asarray(expected)
    if got.dtype != expected.dtype:
        return f"dtype {got.dtype}, expected {expected.dtype}"
    if got.shape != expected.shape:
        return f"shape {got.shape}, expected {expected.shape}"
    if got.ndim == 0:
        return f"got {short(got)}, expected {short(expected)}"
    differs = ~((got == expected) | ((got != got) & (expected != expected)))  # NaN equals NaN here
    if not differs.any():
        return "no difference"
    bad = np.flatnonzero(differs.reshape(got.shape[0], -1).any(axis=1)) if got.ndim > 1 else np.flatnonzero(differs)
    i = int(bad[0])
    return (f"{bad.size} of {got.shape[0]} entries differ; first at [{i}]: got {short(got[i])}, "
            f"expected {short(expected[i])}")


def state_diff(expected: dict[str, np.ndarray], got: dict[str, np.ndarray], keys: Any = None) -> str:
    """The first difference between two exported states ("" when they are the same)."""
    if not isinstance(got, dict):
        return f"expected a dict of arrays, got {type(got).__name__}"
    if keys is None:
        if got.keys() != expected.keys():
            return f"keys {sorted(got)}, expected {sorted(expected)}"
        keys = expected.keys()
    for key in keys:
        if key not in got:
            return f"key {key!r} is missing"
        a, b = got[key], expected[key]
        if not isinstance(a, np.ndarray) or a.dtype != b.dtype or not np.array_equal(a, b):
            return f"{key!r}: {array_diff(b, a)}"
    return ""


@contextmanager
def raises(exc: type[BaseException] | tuple[type[BaseException], ...], why: str,
           match: str | None = None) -> Iterator[Any]:
    """``pytest.raises`` whose failure says ``why`` the call should raise (``match`` as in pytest)."""
    names = exc.__name__ if isinstance(exc, type) else " or ".join(e.__name__ for e in exc)
    problem = ""
    try:
        with pytest.raises(exc, match=match) as info:
            yield info
    except pytest.fail.Exception:
        problem = f"{why}: expected {names}, but nothing was raised"
    except AssertionError as error:  # raised, but the message did not match
        problem = f"{why}: {names} was raised, but " + " ".join(str(error).split())
    if problem:
        raise pytest.fail.Exception(problem, pytrace=False) from None
