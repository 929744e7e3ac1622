"""The course's one form of graded test, and the assertion helpers it is built on.

A test cell lists *cases*. Each says what to run in the notebook (``call``: a function of
the notebook called with plain-data arguments; ``code``: a few lines whose last
expression is the result) and what must come back (``.expect``: a value, to tolerance;
``.raises``: an exception; ``.check``: a function that asserts on the result)::

    tests = [
        call("sgd_update", 1.0, 2.0, 0.1).expect(0.8, hint="w - lr * grad"),
        call("classify_run", [2.3]).raises(ValueError, hint="one loss is not a curve"),
    ]
    run_tests(tests, globals())

In the notebook, ``run_tests`` runs every case and raises one ``AssertionError`` that
explains each failure. Under grading the same cases are split in two (``lrgrade.trusted``):
only what to run enters the student's kernel, only plain data comes back (``to_plain``),
and ``judge`` compares it with the expected values in the grader's own process, which the
student's code cannot reach. Both paths send each result through the same plain-data
round trip, so the notebook and the grader reach the same verdict.

Functions decorated with ``@probe`` in a test cell build inputs or record what the
student's code did (an optimizer hook, say); the grader sends their source, with the
cell's imports, into the kernel. Everything else in a test cell (expected values,
``.check`` functions) runs only where the verdict is made.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import sys
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

_isclose = math.isclose
_isfinite = math.isfinite
_float = float

# What one case may send back: beyond these, the result is cut and the case fails.
MAX_ITEMS = 2_000_000      # numbers and strings in one result
MAX_DEPTH = 32             # nesting of lists, tuples and dicts
MAX_TEXT = 100_000         # characters of one string
RESULTS_MIME = "text/x-lrgrade-results"  # how the kernel hands its results to the grader
TEST_CELL_FILE = "<lrgrade test cell>"   # the grader compiles test cells under this name


# -- assertion helpers ---------------------------------------------------------------------
def _fmt(x) -> str:
    if isinstance(x, (list, tuple)) and len(x) > 8:
        return "[" + ", ".join(_fmt(v) for v in x[:4]) + ", ..., " + ", ".join(_fmt(v) for v in x[-2:]) + "]"
    if isinstance(x, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in x) + "]"
    if isinstance(x, float):
        return f"{x:.6g}"
    text = repr(x)
    return text if len(text) <= 200 else text[:200] + "..."


def _as_floats(value, what: str) -> tuple[list[float], tuple]:
    try:
        if np.asarray(value).dtype.kind in "USV":  # "0.1" is text, not a number
            raise TypeError
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise AssertionError(f"{what} returned {_fmt(value)} ({type(value).__name__}); expected a number "
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


# -- plain data: the only thing that leaves a student's kernel ---------------------------------
class Opaque:
    """Stands for a value that is not plain data (a generator, a model, ...): only its type
    name and a short description cross from the kernel."""

    def __init__(self, type_name: str, text: str):
        self.type_name, self.text = str(type_name)[:200], str(text)[:200]

    def __repr__(self) -> str:
        return self.text

    def __eq__(self, other) -> bool:
        return isinstance(other, Opaque) and (self.type_name, self.text) == (other.type_name, other.text)


class TooLarge(ValueError):
    """A result holds more than the grader accepts (``MAX_ITEMS``, ``MAX_DEPTH``, ``MAX_TEXT``)."""


_NUMERIC_DTYPES = {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                   "float16", "float32", "float64", "bfloat16"}


def to_plain(value: Any) -> Any:
    """``value`` as JSON-ready data: numbers, strings, lists, and tagged arrays, tensors,
    tuples and dicts. Anything else becomes an ``Opaque`` description."""
    budget = [MAX_ITEMS]

    def spend(n: int) -> None:
        budget[0] -= n
        if budget[0] < 0:
            raise TooLarge(f"the result holds more than {MAX_ITEMS} values")

    def enc(x, depth: int):
        if depth > MAX_DEPTH:
            raise TooLarge(f"the result is nested more than {MAX_DEPTH} deep")
        spend(1)
        if x is None or type(x) in (bool, int, float):
            return x
        if type(x) is str:
            if len(x) > MAX_TEXT:
                raise TooLarge(f"the result holds a string of more than {MAX_TEXT} characters")
            return x
        if isinstance(x, np.generic) and x.dtype.name in _NUMERIC_DTYPES:
            return x.item()
        if isinstance(x, np.ndarray):
            if x.dtype.name in _NUMERIC_DTYPES:
                spend(int(x.size))
                return {"__ndarray__": x.tolist(), "dtype": x.dtype.name, "shape": list(x.shape)}
            return {"__object__": "ndarray", "repr": f"an array of dtype {x.dtype.name}"}
        torch = sys.modules.get("torch")
        if torch is not None and isinstance(x, torch.Tensor):
            t = x.detach().cpu()
            name = str(t.dtype).removeprefix("torch.")
            if name not in _NUMERIC_DTYPES:
                return {"__object__": "Tensor", "repr": f"a tensor of dtype {name}"}
            spend(int(t.numel()))
            return {"__tensor__": t.float().tolist() if name == "bfloat16" else t.tolist(), "dtype": name,
                    "shape": list(t.shape)}
        if type(x) is list:
            return [enc(v, depth + 1) for v in x]
        if type(x) is tuple:
            return {"__tuple__": [enc(v, depth + 1) for v in x]}
        if type(x) is dict:
            return {"__dict__": [[enc(k, depth + 1), enc(v, depth + 1)] for k, v in x.items()]}
        if isinstance(x, bool):
            return bool(x)
        if isinstance(x, (int, float, str)):  # a subclass: keep the value, not the class's tricks
            base = int if isinstance(x, int) else float if isinstance(x, float) else str
            return enc(base(x) if base is not str else str.__str__(x), depth)
        name = type(x).__name__
        return {"__object__": name, "repr": f"a {name} object"}

    return enc(value, 0)


def from_plain(data: Any, depth: int = 0) -> Any:
    """Rebuild what ``to_plain`` made, from JSON: never runs code, never builds objects
    other than numbers, strings, lists, tuples, dicts, NumPy arrays and tensors."""
    if depth > MAX_DEPTH + 2:
        raise ValueError(f"data nested more than {MAX_DEPTH} deep")
    if isinstance(data, list):
        return [from_plain(v, depth + 1) for v in data]
    if not isinstance(data, dict):
        if data is None or isinstance(data, (bool, int, float, str)):
            return data
        raise ValueError(f"unexpected {type(data).__name__} in plain data")
    if "__ndarray__" in data or "__tensor__" in data:
        dtype = data.get("dtype")
        if dtype not in _NUMERIC_DTYPES:
            raise ValueError(f"unexpected dtype {dtype!r}")
        values = data.get("__ndarray__", data.get("__tensor__"))
        arr = np.array(values, dtype=np.float32 if dtype == "bfloat16" else dtype)
        if list(arr.shape) != list(data.get("shape", [])):
            raise ValueError("an array whose values do not match its shape")
        if "__tensor__" in data:
            import torch
            tensor = torch.from_numpy(arr.copy())
            return tensor.to(torch.bfloat16) if dtype == "bfloat16" else tensor
        return arr
    if "__tuple__" in data:
        return tuple(from_plain(v, depth + 1) for v in data["__tuple__"])
    if "__dict__" in data:
        out = {}
        for k, v in data["__dict__"]:
            key = from_plain(k, depth + 1)
            if not (isinstance(key, (str, int, float, bool, tuple)) or key is None):
                key = repr(key)
            out[key] = from_plain(v, depth + 1)
        return out
    if "__object__" in data:
        return Opaque(data.get("__object__", "object"), data.get("repr", "an object"))
    raise ValueError("unexpected mapping in plain data")


# -- cases ---------------------------------------------------------------------------------
_NOTHING = object()


@dataclass
class Raised:
    """What crosses from the kernel when a case raised: names and text only."""
    type_name: str
    names: list[str]   # qualified names of the exception's classes, most derived first
    message: str
    trace: str = ""

    def is_a(self, exception: type[BaseException]) -> bool:
        return f"{exception.__module__}.{exception.__qualname__}" in self.names


@dataclass
class Case:
    """One graded check: what to run in the notebook, and what must come back."""
    what: str                              # how messages name it: "sgd_update(1.0, 2.0, 0.1)"
    function: str | None = None            # call this notebook function ...
    args: Any = None                       # ... with these plain-data (args, kwargs)
    source: str | None = None              # or run this code; its last expression is the result
    expected: Any = _NOTHING
    rtol: float = 1e-6
    atol: float = 1e-9
    exception: type[BaseException] | None = None
    checker: Callable[[Any], None] | None = None
    hint: str = ""
    hidden_message: str = ""               # what a student is told when this case is hidden and fails
    line: int | None = field(default=None, compare=False)  # line of the test cell that made it

    # -- what must come back (each returns the case, so they chain) --
    def expect(self, value, *, rtol: float = 1e-6, atol: float = 1e-9, hint: str = "") -> "Case":
        """The result must equal ``value``: numbers and arrays to tolerance, text, booleans
        and None exactly."""
        self.expected, self.rtol, self.atol, self.hint = value, rtol, atol, hint
        return self

    def raises(self, exception: type[BaseException], *, hint: str = "") -> "Case":
        """Running the case must raise ``exception`` (or a subclass)."""
        self.exception, self.hint = exception, hint
        return self

    def check(self, checker: Callable[[Any], None], *, hint: str = "") -> "Case":
        """``checker(result)`` must not raise: it asserts with its own messages. It runs where
        the verdict is made (the grader's process), on the plain-data result."""
        self.checker, self.hint = checker, hint
        return self

    def when_hidden(self, message: str) -> "Case":
        """What the student reads if this case is hidden and fails (instead of "a hidden
        test failed"). Write it so that it gives away no hidden input or expected value."""
        self.hidden_message = message
        return self

    def spec(self) -> dict:
        """What the kernel is told to run: nothing of the expected result."""
        if self.function is not None:
            return {"function": self.function, "args": to_plain(self.args)}
        return {"source": self.source}


def _creation_line() -> int | None:
    """The line of the test cell whose top-level statement made a case (under the grader)."""
    frame, line = sys._getframe(2), None
    while frame is not None:
        if frame.f_code.co_filename == TEST_CELL_FILE:
            line = frame.f_lineno
        frame = frame.f_back
    return line


def _short_repr(value) -> str:
    """How a case's argument is shown: as it would be typed (1.0, not 1)."""
    if isinstance(value, np.ndarray):
        return f"np.array({_short_repr(value.tolist())})"
    if isinstance(value, (list, tuple)):
        items = [_short_repr(v) for v in value]
        if len(items) > 8:
            items = items[:4] + ["..."] + items[-2:]
        inner = ", ".join(items) + ("," if isinstance(value, tuple) and len(value) == 1 else "")
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    if isinstance(value, float):
        return repr(value)
    return _fmt(value)


def call(function: str, *args, **kwargs) -> Case:
    """A case that calls the notebook's ``function`` with plain-data arguments."""
    to_plain((args, kwargs))  # plain data only: it has to cross into the kernel
    shown = ", ".join([_short_repr(a) for a in args] + [f"{k}={_short_repr(v)}" for k, v in kwargs.items()])
    return Case(what=f"{function}({shown})", function=function, args=(args, kwargs), line=_creation_line())


def code(source: str, what: str) -> Case:
    """A case that runs ``source`` in the notebook; the value of its last line is the result."""
    compile(source, "<case>", "exec")
    return Case(what=what, source=source, line=_creation_line())


def probe(function: Callable) -> Callable:
    """Mark a test-cell function that runs in the notebook (it builds inputs, or records
    what the student's code did, and returns plain data). The grader sends its source, and
    nothing else of the cell but its imports, into the student's kernel."""
    return function


# -- running a case (in the notebook, or in the student's kernel under the grader) ---------
def _run_source(source: str, namespace: dict):
    import ast
    tree = ast.parse(source, mode="exec")
    last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    if last is not None:
        tree.body.pop()
    exec(compile(tree, "<test case>", "exec"), namespace)
    if last is None:
        return None
    return eval(compile(ast.Expression(last.value), "<test case>", "eval"), namespace)


def outcome(spec: dict, namespace: dict) -> dict:
    """Run one case in ``namespace``; return its result or exception as plain data."""
    try:
        if spec.get("function") is not None:
            args, kwargs = from_plain(spec["args"])
            function = namespace.get(spec["function"])
            if function is None:
                raise NameError(f"name {spec['function']!r} is not defined: run the cell that defines it")
            value = function(*args, **kwargs)
        else:
            value = _run_source(spec["source"], namespace)
    except (KeyboardInterrupt, MemoryError):
        raise
    except BaseException as err:  # SystemExit from the student's code is an answer too
        names = [f"{c.__module__}.{c.__qualname__}" for c in type(err).__mro__]
        trace = "".join(traceback.format_exception(type(err), err, err.__traceback__, limit=-4))
        return {"raised": {"type_name": type(err).__name__, "names": names, "message": str(err)[:2000],
                           "trace": trace[-4000:]}}
    try:
        return {"value": to_plain(value)}
    except TooLarge as err:
        return {"too_large": str(err)}


def run_in_kernel(specs_json: str, namespace: dict | None = None) -> None:
    """The grader's entry point in a student's kernel: run each case, publish the results.

    What the student's code prints while it is tested is kept out of the results (and out
    of the graded notebook); a result that is too large fails its case, not the notebook.
    """
    namespace = sys._getframe(1).f_globals if namespace is None else namespace
    results = []
    for spec in json.loads(specs_json):
        with contextlib.redirect_stdout(_Sink()), contextlib.redirect_stderr(_Sink()):
            results.append(outcome(spec, namespace))
    from IPython.display import publish_display_data
    publish_display_data({RESULTS_MIME: json.dumps(results)})


class _Sink(io.TextIOBase):
    """Swallows what the student's code prints while it is tested."""

    def write(self, text):
        return len(text)


def decode(result: dict) -> Any:
    """A case's plain-data result as the value (or ``Raised``) the checks work on."""
    if "raised" in result:
        r = result["raised"]
        return Raised(str(r["type_name"]), [str(n) for n in r["names"]], str(r["message"]), str(r.get("trace", "")))
    if "too_large" in result:
        raise TooLarge(str(result["too_large"]))
    return from_plain(result["value"])


# -- the verdict ---------------------------------------------------------------------------
def judge(case: Case, result: dict) -> str | None:
    """``None`` if the case passed, else a message for the student. Pure: it reads only
    the case (the grader's) and the plain-data result."""
    tail = f" Hint: {case.hint}" if case.hint else ""
    try:
        got = decode(result)
    except TooLarge as err:
        return f"{case.what}: {err}; the grader did not read it."
    except (ValueError, TypeError, KeyError) as err:
        return f"{case.what}: the grader could not read the result ({err})."
    if case.exception is not None:
        if isinstance(got, Raised):
            if got.is_a(case.exception):
                return None
            return (f"{case.what} raised {got.type_name} ({got.message}); expected a "
                    f"{case.exception.__name__}.{tail}")
        return f"{case.what} returned {_fmt(got)}; expected it to raise {case.exception.__name__}.{tail}"
    if isinstance(got, Raised):
        if got.type_name == "NotImplementedError":
            return f"{case.what} raised NotImplementedError: replace `raise NotImplementedError()` with your code."
        return f"{case.what} raised {got.type_name}" + (f": {got.message}" if got.message else "") + "." + tail
    try:
        if case.checker is not None:
            case.checker(got)
            return None
        expected = case.expected
        if expected is None or isinstance(expected, (str, bool, np.bool_)):
            if type(got) is not type(expected) and not (isinstance(expected, (bool, np.bool_))
                                                        and isinstance(got, bool)):
                return f"{case.what} returned {_fmt(got)} ({type(got).__name__}); expected {expected!r}.{tail}"
            if got != expected:
                return f"{case.what} returned {_fmt(got)}; expected {expected!r}.{tail}"
            return None
        assert_close(got, expected, case.what, rtol=case.rtol, atol=case.atol, hint=case.hint)
        return None
    except AssertionError as err:
        return str(err) or f"{case.what}: a check failed."
    except Exception as err:  # a result of an unexpected shape: a wrong answer, not a grader fault
        return f"{case.what} returned {_fmt(got)}, which the test could not use ({type(err).__name__}: {err}).{tail}"


def round_trip(result: dict) -> dict:
    """The result as the grader receives it: through JSON, as it leaves the kernel."""
    return json.loads(json.dumps(result))


def run_tests(cases: list[Case], namespace: dict) -> None:
    """Run the cases in the notebook; raise one AssertionError that explains the failures.

    Under the grader a test cell is never run this way: the grader runs the cases itself.
    """
    if _collector is not None:  # the grader is reading the cell, not running it
        _collector.extend(cases)
        return
    failures, first_error = [], None
    for case in cases:
        result = round_trip(outcome(case.spec(), namespace))
        message = judge(case, result)
        if message:
            failures.append(message)
            if first_error is None and "raised" in result and case.exception is None:
                first_error = result["raised"].get("trace", "")
    if not failures:
        return
    text = failures[0]
    if len(failures) > 1:
        text += f"\n(and {len(failures) - 1} more of the {len(cases)} tests in this cell failed: " + \
                " | ".join(f[:160] for f in failures[1:4]) + (" | ..." if len(failures) > 4 else "") + ")"
    if first_error:
        text += "\n\nWhere your code raised it:\n" + first_error
    raise AssertionError(text)


_collector: list | None = None


@contextlib.contextmanager
def collecting():
    """While active, ``run_tests`` records its cases instead of running them (the grader)."""
    global _collector
    saved, _collector = _collector, []
    try:
        yield _collector
    finally:
        _collector = saved
