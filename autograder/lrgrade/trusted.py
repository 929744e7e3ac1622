"""Test cells read by the grader: what enters the student's kernel, and the verdict.

A test cell of the instructor's source, written in the course's *test form* (a module
named by ``TrustedExecute.test_form`` in ``nbgrader_config.py``; for this course
``lrcourse.checks``), is executed here, in the grader's own process, with ``run_tests``
collecting its cases instead of running them. The form provides ``collecting``,
``TEST_CELL_FILE``, ``judge`` and, in the kernel, ``run_in_kernel``. From it come:

* the *kernel code*: the cell's imports and ``@probe`` functions, then one call that runs
  each case's input (a function name and plain-data arguments, or a few lines of code)
  and publishes the plain-data results. No expected value and no check enters the kernel.
* the *verdict*: each result is compared with its case (the form's ``judge``) here, so the
  student's code can neither see nor change the comparison. A case made on a line
  between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS`` is hidden: its failure
  is reported as "a hidden test failed" (or the case's own ``when_hidden`` message), with
  nothing of its inputs or expected values.
"""
from __future__ import annotations

import ast
import importlib
import json
from dataclasses import dataclass
from types import ModuleType

from .notebooks import HIDDEN_BEGIN, HIDDEN_END, SourceError
from .scan import parse_python

MAX_RESULTS_BYTES = 32_000_000  # what one test cell's results may weigh, as JSON
HIDDEN_FAILED = ("a hidden test failed: your code passes the visible examples but not other cases. "
                 "Re-read the task, and test the edge cases yourself.")


@dataclass
class TestCell:
    grade_id: str
    cases: list  # the form's Case objects
    hidden: list[bool]
    prelude: str  # the cell's imports and @probe functions, run in the kernel first
    form: ModuleType  # the test form the cell was read with

    def kernel_code(self) -> str:
        """The code the grader runs in the student's kernel for this test cell."""
        specs = json.dumps([case.spec() for case in self.cases])
        return (f"{self.prelude}\n"
                f"__import__({self.form.__name__!r}, fromlist=['run_in_kernel']).run_in_kernel({specs!r})\n")

    def verdict(self, payload: str | None, problem: str = "") -> list[str]:
        """Messages for the student, one per failure; [] if every case passed.

        ``payload`` is what the kernel published (None if nothing came back), ``problem``
        why the kernel gave no results (a limit hit, the kernel died, an error).
        """
        if payload is None:
            return [f"the tests could not run: {problem or 'no results came back from your notebook'}"]
        try:
            if len(payload) > MAX_RESULTS_BYTES:
                raise ValueError(f"more than {MAX_RESULTS_BYTES // 1_000_000} MB of results")
            results = json.loads(payload)
            if not isinstance(results, list) or len(results) != len(self.cases) \
                    or not all(isinstance(r, dict) for r in results):
                raise ValueError("results that do not match the tests")
        except (ValueError, RecursionError) as err:
            return [f"the grader could not read what your code returned ({err})"]
        visible, hidden = [], 0
        for case, is_hidden, result in zip(self.cases, self.hidden, results):
            try:
                message = self.form.judge(case, result)
            except Exception as err:  # hostile data (deep nesting, odd numbers): a failed case, never a crash
                message = f"{case.what}: the grader could not read the result ({type(err).__name__})"
            if message is None:
                continue
            if is_hidden and case.hidden_message:
                visible.append(case.hidden_message)
            elif is_hidden:
                hidden += 1
            else:
                visible.append(message)
        visible = list(dict.fromkeys(visible))
        if hidden and not visible:
            visible.append(HIDDEN_FAILED if hidden == 1 else HIDDEN_FAILED.replace(
                "a hidden test failed", f"{hidden} hidden tests failed"))
        elif hidden:
            visible.append(f"{hidden} hidden test{'s' if hidden > 1 else ''} failed as well")
        return visible


def hidden_lines(source: str) -> set[int]:
    """1-based line numbers inside the hidden-tests block of a cell."""
    lines, inside = set(), False
    for number, line in enumerate(source.splitlines(), start=1):
        if line.strip() == HIDDEN_BEGIN:
            inside = True
        elif line.strip() == HIDDEN_END:
            inside = False
        elif inside:
            lines.add(number)
    return lines


def _is_probe(node: ast.AST) -> bool:
    if not isinstance(node, ast.FunctionDef):
        return False
    names = [d.id if isinstance(d, ast.Name) else d.attr if isinstance(d, ast.Attribute) else ""
             for d in node.decorator_list]
    return "probe" in names


def load_form(test_form: str) -> ModuleType:
    """The test-form module named in the configuration (``TrustedExecute.test_form``)."""
    if not test_form:
        raise SourceError("no test form is configured: set c.TrustedExecute.test_form in nbgrader_config.py "
                          "to the module the test cells are written with")
    form = importlib.import_module(test_form)
    missing = [name for name in ("collecting", "judge", "run_in_kernel", "TEST_CELL_FILE") if not hasattr(form, name)]
    if missing:
        raise SourceError(f"the test form {test_form} lacks {', '.join(missing)}")
    return form


def read_test_cell(source: str, grade_id: str, form: ModuleType) -> TestCell:
    """Execute an instructor's test cell in the grader and return its cases, read with ``form``."""
    try:
        tree = parse_python(source)
    except SyntaxError as err:
        raise SourceError(f"test cell {grade_id}: {err}") from None
    lines = source.splitlines()
    prelude = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)) or _is_probe(node):
            start = min([d.lineno for d in getattr(node, "decorator_list", [])] + [node.lineno])
            prelude.append("\n".join(lines[start - 1:node.end_lineno]))
    namespace = {"__name__": "lrgrade_test_cell"}
    with form.collecting() as cases:
        try:
            exec(compile(source, form.TEST_CELL_FILE, "exec"), namespace)
        except Exception as err:
            raise SourceError(f"test cell {grade_id} cannot be read by the grader ({type(err).__name__}: {err}). "
                              "A test cell must stand alone: import what it uses, and build inputs in "
                              "@probe functions or case code") from err
    if not cases:
        raise SourceError(f"test cell {grade_id} has no cases: end it with run_tests(tests, globals())")
    hidden = hidden_lines(source)
    return TestCell(grade_id, list(cases), [c.line in hidden for c in cases], "\n".join(prelude), form)
