"""Catch submissions that change what the tests rely on, and flag suspicious code.

The tests run in the same Python process as the student's code, so a submission can
replace what a test calls (``numpy.allclose``, ``math.isclose``, ``builtins.abs``, the
assert helpers), hide its errors (IPython's ``showtraceback``, a custom exception handler)
or rewrite the test cells before they run (an input transformer). The grader guards
against that in three ways:

1. **The guard** (``KERNEL_GUARD``): before the notebook's first cell runs, the grader
   snapshots, inside the kernel, every function and class of the modules the tests use,
   Python's builtins, IPython's and ipykernel's methods, ``sys``'s hooks and the input
   transformers. Before and after each test cell it checks that nothing changed, and that
   the names the test cell uses (``np``, ``assert_close``, ``abs``) still mean what the
   grader's own cells bound them to. The answer carries a random token kept only inside
   the guard, so printing "OK" does not fake it. A test cell run while anything was
   changed scores 0 (``GraderIntegrityError``) and the submission is flagged.
2. **Robust helpers** (``lrcourse.checks``): values become plain floats and are compared
   with references captured at import, so an object whose ``__eq__`` is always true fails.
3. **A static scan** (``static_flags``) of the student's cells lists what looks like an
   attempt (``get_ipython``, ``setattr`` on a module, ``__eq__``, printing "passed"), for
   the instructor to read. Flags do not change scores; the guard does.

A determined attacker who studies this file can still defeat checks that run in the same
process: the README says so. The ways around it we know of (reaching the guard through
``sys.modules`` or the garbage collector, rewriting cells) use code the static scan flags.
"""
from __future__ import annotations

import ast
import builtins
import json
import re

MARK = "LRGRADE-GUARD"

# Runs once in the kernel, with store_history=False so no later cell can read it back
# from the history. {token} is replaced by a fresh random token for each notebook.
KERNEL_GUARD = r'''
def _lrgrade_guard_install(token):
    import builtins, importlib, json, math, os, sys, types, warnings
    import numpy, numpy.random, torch, torch.nn, torch.optim, torch.optim.lr_scheduler, torch.utils.data
    import lrcourse, lrcourse.checks, lrcourse.reference
    shell = get_ipython()
    kernel = getattr(shell, "kernel", None)
    out, write, flush = sys.stdout, type(sys.stdout).write, type(sys.stdout).flush
    # The guard's own tools, taken before any student code runs.
    _id, _isinstance, _getattr, _dict, _list, _type, _vars, _len = id, isinstance, getattr, dict, list, type, vars, len
    _any, _zip, realpath = any, zip, os.path.realpath
    dumps = json.dumps
    modules, classes = {}, {}
    allowed = tuple(realpath(p) for p in (sys.prefix, sys.base_prefix, lrcourse.__path__[0]))

    def snap_module(mod):
        name = mod.__name__
        if name in modules or not (name in ("builtins", "math", "warnings") or name.split(".")[0] in ("numpy", "torch", "lrcourse")):
            return
        entries = _dict(_vars(mod))
        for skip in ("_", "__", "___", "input"):  # ipykernel swaps input() in and out itself
            entries.pop(skip, None)
        modules[name] = (mod, entries)
        for value in entries.values():
            if _isinstance(value, type) and _getattr(value, "__module__", "") == name:
                classes[f"{name}.{value.__qualname__}"] = (value, _dict(_vars(value)))

    def snap_class(cls):
        classes[f"{cls.__module__}.{cls.__qualname__}"] = (cls, _dict(_vars(cls)))

    for mod in (builtins, math, warnings, numpy, numpy.random, torch, torch.nn, torch.optim,
                torch.optim.lr_scheduler, torch.utils.data):
        snap_module(mod)
    for name, mod in _list(sys.modules.items()):
        if name.startswith("lrcourse") and mod is not None:
            snap_module(mod)
    for cls in _type(shell).__mro__ + (_type(kernel).__mro__ if kernel is not None else ()):
        if cls.__module__.split(".")[0] in ("IPython", "ipykernel"):
            snap_class(cls)
    hooks = {"sys.excepthook": sys.excepthook, "sys.displayhook": sys.displayhook,
             "sys.stdout": sys.stdout, "sys.stderr": sys.stderr, "type(shell)": _type(shell)}
    transformers = {name: _list(_getattr(shell, name)) for name in
                    ("input_transformers_cleanup", "input_transformers_post", "ast_transformers")}
    callbacks = {event: _list(cbs) for event, cbs in shell.events.callbacks.items()}
    watched_methods = ("run_cell", "run_cell_async", "run_ast_nodes", "run_code", "showtraceback",
                       "_showtraceback", "showsyntaxerror", "transform_cell", "set_custom_exc",
                       "do_execute", "execute_request", "send_response")
    methods = {id(obj): {m: _vars(obj).get(m) for m in watched_methods} for obj in (shell, kernel) if obj is not None}
    bound = {}
    builtins_snapshot = modules["builtins"][1]

    def same(a, b):  # a bound method is a new object each time it is looked up
        if a is b:
            return True
        return (_type(a) is types.MethodType and _type(b) is types.MethodType
                and a.__func__ is b.__func__ and a.__self__ is b.__self__)

    def from_package(fn):
        code = _getattr(_getattr(fn, "__func__", fn), "__code__", None)
        return code is None or realpath(code.co_filename).startswith(allowed)

    def changed(now, key, value):
        new = now.get(key, value)
        if new is value:
            return False
        # A library may wrap one of its own functions on first use (torch wraps
        # torch.manual_seed when torch._dynamo loads): a wrapper from an installed package
        # whose __wrapped__ is the original is not the student's doing.
        return not (_getattr(new, "__wrapped__", None) is value and _getattr(new, "__code__", None) is not None
                    and from_package(new))

    def problems(used):
        found = []
        for name, (mod, entries) in _list(modules.items()):
            if sys.modules.get(name) is not mod:
                found.append(f"sys.modules[{name!r}] was replaced")
            now = _vars(mod)
            found += [f"{name}.{key} was replaced" for key, value in entries.items() if changed(now, key, value)]
        for qual, (cls, entries) in _list(classes.items()):
            now = _vars(cls)
            found += [f"{qual}.{key} was replaced" for key, value in entries.items() if changed(now, key, value)]
        now = {"sys.excepthook": sys.excepthook, "sys.displayhook": sys.displayhook,
               "sys.stdout": sys.stdout, "sys.stderr": sys.stderr, "type(shell)": _type(shell)}
        found += [f"{key} was replaced" for key, value in hooks.items() if not same(now[key], value)]
        if sys.gettrace() is not None or sys.getprofile() is not None:
            found.append("a trace or profile function was set")
        for obj, label in ((shell, "IPython's shell"), (kernel, "the kernel")):
            if obj is not None:
                before = methods[_id(obj)]
                found += [f"{label}.{m} was replaced" for m in watched_methods if _vars(obj).get(m) is not before[m]]
        if shell.custom_exceptions:
            found.append("a custom exception handler was set (set_custom_exc)")
        # Compared by identity: `==` would ask the student's objects, whose __eq__ may lie.
        for name, before in transformers.items():
            now_list = _list(_getattr(shell, name))
            if _len(now_list) != _len(before) or _any(a is not b for a, b in _zip(now_list, before)):
                found.append(f"IPython's {name} were changed")
        for event, cbs in shell.events.callbacks.items():
            old = callbacks.get(event, [])
            if _any(not _any(cb is o for o in old) and not from_package(cb) for cb in cbs):
                found.append(f"a callback was registered for IPython's {event} event")
        ns = shell.user_ns
        for name in used:
            if name in bound and ns.get(name, bound[name]) is not bound[name]:
                found.append(f"{name!r}, which the tests use, was redefined")
            elif name in builtins_snapshot and name in ns and ns[name] is not builtins_snapshot[name]:
                found.append(f"{name!r} (a Python builtin the tests use) was redefined")
        return found

    def report(used=(), record=()):
        try:
            found = problems(used)
        except BaseException as err:  # a guard that cannot look is a failed check
            found = [f"the grader's check could not run ({_type(err).__name__})"]
        ns = shell.user_ns
        for name in record:  # names a grader-owned cell just bound: remember them
            value = ns.get(name)
            if _isinstance(value, (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type)):
                bound[name] = value
                if _isinstance(value, types.ModuleType):
                    snap_module(value)
        for name, mod in _list(sys.modules.items()):  # modules first imported by grader cells
            if name.startswith("lrcourse") and mod is not None:
                snap_module(mod)
        write(out, f"{MARK} {token} " + dumps(found) + "\n")
        flush(out)

    guard = types.ModuleType("_lrgrade_guard")
    guard.report = report
    sys.modules["_lrgrade_guard"] = guard

_lrgrade_guard_install({token!r})
del _lrgrade_guard_install
'''.replace("{MARK}", MARK)

REPORT_CALL = "import sys as _s; _s.modules['_lrgrade_guard'].report({used!r}, {record!r}); del _s"


def install_code(token: str) -> str:
    return KERNEL_GUARD.replace("{token!r}", repr(token))


def report_code(used: list[str], record: list[str]) -> str:
    return REPORT_CALL.format(used=sorted(used), record=sorted(record))


def parse_report(outputs: list, token: str) -> list[str] | None:
    """The guard's findings from its cell's outputs; None when no genuine answer came back."""
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    answers = [ln for ln in text.splitlines() if ln.startswith(MARK + " ")]
    if len(answers) != 1 or any(o.get("output_type") == "error" for o in outputs):
        return None
    _, got_token, payload = answers[0].split(" ", 2)
    if got_token != token:
        return None
    try:
        found = json.loads(payload)
    except ValueError:
        return None
    return [str(f) for f in found] if isinstance(found, list) else None


# -- names a cell uses and binds ----------------------------------------------------------
def names_used(source: str) -> list[str]:
    """Global names a test cell reads before (or without) binding them itself."""
    try:
        tree = ast.parse(_strip_magics(source))
    except SyntaxError:
        return []
    stored = names_bound(source)
    loaded = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return sorted(loaded - set(stored))


def names_bound(source: str) -> list[str]:
    """Names a cell binds at top level: assignments, imports, defs, classes."""
    try:
        tree = ast.parse(_strip_magics(source))
    except SyntaxError:
        return []
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names if a.name != "*")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
    return sorted(names)


def _strip_magics(source: str) -> str:
    return "\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in source.splitlines())


# -- static scan --------------------------------------------------------------------------
SUSPICIOUS_NAMES = {
    "get_ipython": "uses get_ipython()", "showtraceback": "touches showtraceback",
    "set_custom_exc": "sets a custom exception handler", "excepthook": "touches sys.excepthook",
    "__builtins__": "touches __builtins__", "_getframe": "inspects stack frames",
    "settrace": "sets a trace function", "input_transformers_post": "adds an input transformer",
    "input_transformers_cleanup": "adds an input transformer", "ast_transformers": "adds an AST transformer",
    "_lrgrade_guard": "touches the grader's guard", "ctypes": "uses ctypes", "_exit": "calls os._exit",
    "fork": "forks processes", "socket": "opens network sockets", "get_objects": "walks the garbage collector",
}
PROTECTED_MODULES = {"np", "numpy", "math", "torch", "builtins", "lrcourse", "checks", "warnings", "sys", "os",
                     "IPython", "assert_close", "assert_true", "assert_raises"}
_PASSED = re.compile(r"\b(all )?(tests? )?pass(ed)?\b|\bok\b|\bcorrect\b", re.I)


def static_flags(sources: list[str]) -> list[str]:
    """What looks like an attempt on the tests in the student's cells (for a person to read)."""
    flags: list[str] = []
    for source in sources:
        try:
            tree = ast.parse(_strip_magics(source))
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
                    if isinstance(t, ast.Attribute) and isinstance(base, ast.Name) and base.id in PROTECTED_MODULES:
                        flags.append(f"assigns to {ast.unparse(t)}")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("setattr", "delattr"):
                flags.append(f"calls {node.func.id}()")
            if isinstance(node, ast.FunctionDef) and node.name in ("__eq__", "__ne__", "__bool__", "__float__"):
                flags.append(f"defines {node.name}")
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"
                    and any(isinstance(a, ast.Constant) and isinstance(a.value, str) and _PASSED.search(a.value)
                            for a in node.args)):
                flags.append("prints a message that looks like a test result")
    return sorted(set(flags))


BUILTIN_NAMES = frozenset(dir(builtins))
