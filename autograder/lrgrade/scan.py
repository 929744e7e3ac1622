"""A static scan of the student's cells, for a person to read: it never changes a score.

Grades come from evidence the student's code cannot reach (``lrgrade.trusted``): what the
scan finds is only a pointer to notebooks worth a look, such as code that reaches into
IPython, the interpreter or the test helpers, or prints something that looks like a
test result.
"""
from __future__ import annotations

import ast
import re
import threading

from traitlets import List, Unicode
from traitlets.config import Configurable


_PARSING = threading.Lock()


def parse_python(source: str) -> ast.Module:
    """``ast.parse``, one thread at a time: with threads parsing at once, CPython 3.11 can raise
    "SystemError: AST constructor recursion depth mismatch" (python/cpython gh-106905)."""
    with _PARSING:
        return ast.parse(source)


def strip_magics(source: str) -> str:
    """The source without IPython's magic and shell lines (which ``ast`` cannot parse)."""
    return "\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in source.splitlines())


SUSPICIOUS_NAMES = {
    "get_ipython": "uses get_ipython()", "showtraceback": "touches showtraceback",
    "set_custom_exc": "sets a custom exception handler", "excepthook": "touches sys.excepthook",
    "__builtins__": "touches __builtins__", "_getframe": "inspects stack frames",
    "settrace": "sets a trace function", "input_transformers_post": "adds an input transformer",
    "input_transformers_cleanup": "adds an input transformer", "ast_transformers": "adds an AST transformer",
    "ctypes": "uses ctypes", "_exit": "calls os._exit",
    "fork": "forks processes", "socket": "opens network sockets", "get_objects": "walks the garbage collector",
}
# Names whose attributes a student's answer has no business assigning to; a course adds its
# own (its helper package, its test helpers) with ``StaticScan.protected_names``.
PROTECTED_NAMES = ("np", "numpy", "math", "torch", "builtins", "warnings", "sys", "os", "IPython")


class StaticScan(Configurable):
    """The scan's settings, from ``nbgrader_config.py`` like the rest of the grader's."""

    protected_names = List(Unicode(), help="Names (modules, helpers) whose attributes an answer should "
                                           "not assign to, besides lrgrade.scan.PROTECTED_NAMES").tag(config=True)
_PASSED = re.compile(r"\b(all )?(tests? )?pass(ed)?\b|\bok\b|\bcorrect\b", re.I)


def static_flags(sources: list[str], protected_names: tuple[str, ...] | list[str] = ()) -> list[str]:
    """What looks like an attempt on the tests in the student's cells (for a person to read)."""
    protected = set(PROTECTED_NAMES) | set(protected_names)
    flags: list[str] = []
    for source in sources:
        try:
            tree = parse_python(strip_magics(source))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None
            if name in SUSPICIOUS_NAMES:
                flags.append(SUSPICIOUS_NAMES[name])
            if (isinstance(node, ast.Attribute) and node.attr == "modules" and isinstance(node.value, ast.Name)
                    and node.value.id == "sys"):
                flags.append("touches sys.modules")
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                modules = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                flags += [f"imports {m}" for m in modules if m.split(".")[0] in ("ctypes", "builtins", "gc", "socket")]
            if isinstance(node, (ast.Assign, ast.AugAssign, ast.Delete)):
                targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
                for t in targets:
                    base = t
                    while isinstance(base, ast.Attribute):
                        base = base.value
                    if isinstance(t, ast.Attribute) and isinstance(base, ast.Name) and base.id in protected:
                        flags.append(f"assigns to {ast.unparse(t)}")
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in ("setattr", "delattr")):
                flags.append(f"calls {node.func.id}()")
            if isinstance(node, ast.FunctionDef) and node.name in ("__eq__", "__ne__", "__bool__", "__float__"):
                flags.append(f"defines {node.name}")
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"
                    and any(isinstance(a, ast.Constant) and isinstance(a.value, str) and _PASSED.search(a.value)
                            for a in node.args)):
                flags.append("prints a message that looks like a test result")
    return sorted(set(flags))
