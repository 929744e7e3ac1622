"""Assertion helpers for the graded test cells.

Each raises ``AssertionError`` with a message written for the student: what was called,
what was expected, what came back, and a hint. Values are converted to plain floats and
compared with references captured when this module is imported, so an object with an
always-true ``__eq__`` or a patched ``math.isclose`` does not pass a test.
"""
from __future__ import annotations

import math

import numpy as np

_isclose = math.isclose
_isfinite = math.isfinite
_float = float


def _fmt(x) -> str:
    if isinstance(x, (list, tuple)) and len(x) > 8:
        return "[" + ", ".join(_fmt(v) for v in x[:4]) + ", ..., " + ", ".join(_fmt(v) for v in x[-2:]) + "]"
    if isinstance(x, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in x) + "]"
    if isinstance(x, float):
        return f"{x:.6g}"
    return repr(x)


def _as_floats(value, what: str) -> tuple[list[float], tuple]:
    try:
        if np.asarray(value).dtype.kind in "USV":  # "0.1" is text, not a number
            raise TypeError
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise AssertionError(f"{what} returned {value!r} ({type(value).__name__}); expected a number "
                             "or a sequence of numbers") from None
    return [_float(v) for v in arr.reshape(-1).tolist()], arr.shape


def assert_close(got, expected, what: str, *, rtol: float = 1e-6, atol: float = 1e-9, hint: str = "") -> None:
    """Assert that ``got`` equals ``expected`` (a number or a sequence) to tolerance."""
    if got is None:
        raise AssertionError(f"{what} returned None: did you forget `return`?")
    got_values, got_shape = _as_floats(got, what)
    exp_values, exp_shape = _as_floats(expected, "the expected value")
    tail = f" Hint: {hint}" if hint else ""
    if got_shape != exp_shape:
        raise AssertionError(f"{what} returned shape {got_shape}, expected shape {exp_shape}.{tail}")
    for i, (g, e) in enumerate(zip(got_values, exp_values)):
        same = (g == e) or (_isfinite(g) and _isfinite(e) and _isclose(g, e, rel_tol=rtol, abs_tol=atol))
        if not same:
            where = f" (first difference at index {i}: {g:.6g} instead of {e:.6g})" if len(exp_values) > 1 else ""
            shown_got = _fmt(got_values if got_shape else got_values[0])
            shown_exp = _fmt(exp_values if exp_shape else exp_values[0])
            raise AssertionError(f"{what}: expected {shown_exp}, got {shown_got}{where}.{tail}")


def assert_true(condition, message: str) -> None:
    """Assert a condition that must be a real ``True`` (not just truthy)."""
    if condition is not True and not (isinstance(condition, (bool, np.bool_)) and bool(condition)):
        raise AssertionError(message)


def assert_raises(exception: type[BaseException], call, what: str, hint: str = "") -> None:
    """Assert that ``call()`` raises ``exception`` (a different error is a different answer)."""
    tail = f" Hint: {hint}" if hint else ""
    try:
        got = call()
    except exception:
        return
    except Exception as error:
        raise AssertionError(f"{what} raised {type(error).__name__} ({error}); "
                             f"expected a {exception.__name__}.{tail}") from None
    raise AssertionError(f"{what} returned {got!r}; expected it to raise {exception.__name__}.{tail}")
