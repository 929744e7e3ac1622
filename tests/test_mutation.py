"""Mutation check: a small bug in a solution must fail at least one graded test.

`lrgrade mutate` makes single small edits (an operator, a comparison, min/max, a constant,
an off-by-one...) to the code inside every solution region, runs the graded tests against
each and reports the share caught. Here: the bar over the course's notebooks, and the tool.
"""
import nbformat
import pytest

from conftest import ROOT
from lrgrade import cli
from lrgrade.mutate import check_notebook, format_survivors, mutants_of_cell, run_mutation_check, solution_regions
from lrgrade.notebooks import assignments

BAR = 0.90
# Every notebook whose graded tests check implementations. 12 (capstone) is left out on
# purpose: its outcome test accepts any design that reaches the target, so most edits to
# the reference design are other valid designs, not bugs (lrgrade mutate 12-capstone: 41%).
CHECKED = [a for a in assignments(ROOT / "solutions") if not a.endswith("-capstone")]


def _notebook(*cells: tuple[str | None, str, str]) -> nbformat.NotebookNode:
    """A tiny instructor notebook from (role, grade_id, source); role None: an ordinary cell."""
    nb = nbformat.v4.new_notebook()
    for role, grade_id, source in cells:
        cell = nbformat.v4.new_code_cell(source)
        if role:
            meta = {"grade_id": grade_id, "solution": role == "solution", "grade": role == "graded",
                    "locked": role != "solution", "schema_version": 3, "task": False}
            if role == "graded":
                meta["points"] = 1
            cell.metadata["nbgrader"] = meta
        nb.cells.append(cell)
    return nb


CLIP = '''def clip(x, lo, hi):
    """x limited to [lo, hi]."""
    ### BEGIN SOLUTION
    if lo > hi:
        raise ValueError("empty range")
    return max(lo, min(x, hi))
    ### END SOLUTION
'''
CLIP_TESTS = '''assert clip(5, 0, 10) == 5
assert clip(-3, 0, 10) == 0
assert clip(12, 0, 10) == 10
assert clip(7, 7, 7) == 7
### BEGIN HIDDEN TESTS
try:
    clip(1, 2, 1)
except ValueError:
    pass
else:
    raise AssertionError("clip(1, 2, 1) should raise ValueError")
### END HIDDEN TESTS
'''


# -- the bar, over the course's own notebooks ------------------------------------------------
@pytest.mark.slow
@pytest.mark.skipif(not CHECKED, reason="no notebooks in solutions/ yet")
def test_graded_tests_catch_small_bugs_in_the_solutions():
    # 2 s per mutant: a mutant that loops forever is caught (nbgrader would time it out) sooner.
    report = run_mutation_check(CHECKED, min_share=BAR, time_limit=2.0)
    assert not report.errors, "the mutation harness cannot judge these notebooks:\n" + "\n".join(report.errors)
    per_notebook = ", ".join(f"{n.assignment} {n.caught}/{n.total}" for n in report.notebooks)
    assert report.share >= BAR, (
        f"the graded tests catch only {report.share:.1%} of small bugs in the solutions (bar {BAR:.0%}; "
        f"{per_notebook}). Strengthen the tests (or mark an equivalent mutant's line `# no-mutate`); "
        f"`lrgrade mutate -v` explains each. Survivors:\n{format_survivors(report)}")


# -- mutant generation -------------------------------------------------------------------------
def _descriptions(source: str) -> list[str]:
    return [m.description for m in mutants_of_cell(source, "f")]


def test_a_plus_one_gives_an_operator_and_an_off_by_one_mutant():
    found = _descriptions("def f(x):\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION\n")
    assert "operator: `x + 1` -> `x - 1`" in found
    assert "off by one: `x + 1` -> `x`" in found
    assert "constant: `1` -> `2`" in found and "constant: `1` -> `0`" in found


def test_every_kind_of_small_bug_is_made():
    source = '''def f(xs, n, lo, hi):
    ### BEGIN SOLUTION
    total = 0.5
    for i in range(n):
        total += 1
    if lo < hi and not xs[0] >= -hi:
        return min(xs) * 2 ** n / 3
    done = True
    return xs[-1] // n
    ### END SOLUTION
'''
    kinds = {d.split(":")[0] for d in _descriptions(source)}
    assert kinds >= {"operator", "comparison", "and/or", "min/max", "constant", "off by one",
                     "unary minus dropped", "not dropped", "True/False", "first/last element"}
    found = _descriptions(source)
    for expected in ("comparison: `lo < hi` -> `lo <= hi`", "comparison: `lo < hi` -> `lo > hi`",
                     "min/max: `min(xs)` -> `max(xs)`", "first/last element: `xs[0]` -> `xs[-1]`",
                     "first/last element: `xs[-1]` -> `xs[0]`", "off by one: `range(n)` -> `range(n + 1)`",
                     "off by one: `total += 1` -> `(removed)`", "constant: `0.5` -> `1.0`",
                     "operator: `2 ** n` -> `2 * n`", "True/False: `True` -> `False`"):
        assert expected in found, f"{expected} not in {found}"
    for m in mutants_of_cell(source, "f"):  # each mutant is valid Python and one edit away
        compile(m.source, "mutant", "exec")
        assert m.source != source


def test_code_outside_the_solution_region_is_never_mutated():
    source = '''LIMIT = 2 * 3 + 1
def f(x):
    """Return x + 1, at most LIMIT."""
    if x > LIMIT:
        return LIMIT - 1
    ### BEGIN SOLUTION
    y = x + 1
    ### END SOLUTION
    return min(y, LIMIT) if y >= 0 else -y
'''
    (lo, hi), = solution_regions(source)
    mutants = mutants_of_cell(source, "f")
    assert mutants
    original = source.splitlines()
    for m in mutants:
        lines = m.source.splitlines()
        assert lines[:lo - 1] == original[:lo - 1] and lines[hi:] == original[hi:], m.description
        assert lo <= m.line <= hi
    assert mutants_of_cell("x = 1 + 2\n", "f") == []  # no solution region: nothing to mutate
    marked = source.replace("y = x + 1", "y = x + 1  # no-mutate")
    assert mutants_of_cell(marked, "f") == []


# -- the harness -----------------------------------------------------------------------------
def test_strong_tests_catch_every_mutant_and_weak_tests_almost_none():
    strong = check_notebook(_notebook(("solution", "clip", CLIP), ("graded", "test_clip", CLIP_TESTS)), "strong")
    weak = check_notebook(_notebook(("solution", "clip", CLIP), ("graded", "test_clip", "assert True\n")), "weak")
    assert not strong.errors and not weak.errors, strong.errors + weak.errors
    assert strong.total == weak.total == 4
    assert strong.share == 1.0, [r.description for r in strong.survivors]
    assert weak.share < 0.2
    assert {r.description for r in weak.survivors} >= {"min/max: `min(x, hi)` -> `max(x, hi)`",
                                                       "comparison: `lo > hi` -> `lo >= hi`"}


def test_later_tests_and_ordinary_cells_see_the_mutant():
    nb = _notebook(
        (None, "", "import torch\ncalls = []\ncount = torch.zeros(1)\n"),
        ("solution", "double", "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n"),
        ("graded", "test_double", "calls.append(0)\nassert calls == [0]\n"  # no state leaks between runs,
                                  "count.add_(1)\nassert count.item() == 1\n"  # not even in a tensor
                                  "assert double(0) == 0\n"),  # too weak alone
        (None, "", "import time\ntime.sleep(0.2)\nslow = 'replayed, not re-run'\n"),
        (None, "", "doubled = [double(v) for v in range(3)]\n"),
        ("solution", "quad", "def quad(x):\n    ### BEGIN SOLUTION\n    return double(double(x))\n"
                             "    ### END SOLUTION\n"),
        ("graded", "test_quad", "assert slow.startswith('replayed')\nassert doubled == [0, 2, 4]\n"
                                "assert quad(1) == 4\n"),
    )
    report = check_notebook(nb, "later")
    assert not report.errors, report.errors
    by = {r.description: r.caught_by for r in report.results}
    assert by["operator: `2 * x` -> `2 / x`"] == "test_double"  # double(0) divides by zero
    assert by["constant: `2` -> `3`"] == "test_quad"
    assert all(r.caught for r in report.results if r.grade_id == "double")


def test_hangs_and_crashes_count_as_caught_and_a_failing_solution_is_an_error():
    nb = _notebook(
        (None, "", "import os\n"),
        ("solution", "count", '''def count(n):
    ### BEGIN SOLUTION
    i = 0
    while i < n:
        i += 1
    if False:
        os._exit(3)  # no-mutate: the exit code is never used
    return i
    ### END SOLUTION
'''),
        ("graded", "test_count", "assert count(3) == 3\nassert count(0) == 0\n"),
    )
    report = check_notebook(nb, "loops", time_limit=1.0)
    assert not report.errors, report.errors
    reasons = {r.description: r.reason for r in report.results}
    assert "timed out" in reasons["operator: `i += 1` -> `i -= 1`"]
    assert "crashed" in reasons["True/False: `False` -> `True`"]
    assert report.share == 1.0, [r.description for r in report.survivors]

    broken = _notebook(("solution", "clip", CLIP), ("graded", "test_clip", "assert clip(5, 0, 1) == 5\n"))
    report = check_notebook(broken, "broken")
    assert report.errors and "test_clip" in report.errors[0] and report.total == 0


def test_the_command_line_reports_survivors_and_fails_below_the_bar(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LRGRADE_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "99-weak" / "99-weak.py"
    source.parent.mkdir()
    source.write_text('# %% nbgrader={"grade_id": "clip", "solution": true}\n' + CLIP + "\n\n"
                      '# %% nbgrader={"grade_id": "test_clip", "grade": true, "points": 1}\n'
                      "assert clip(5, 0, 10) == 5\n")
    assert cli.main(["mutate", str(source)]) == 1
    first = capsys.readouterr().out
    assert "survived" in first and "99-weak.py:5" in first and "below the bar" in first, first
    assert "from the cache" not in first
    # Nothing changed: the kept report, the same verdict; a stricter bar is judged afresh.
    assert cli.main(["mutate", str(source), "--min-share", "0.1"]) == 0
    again = capsys.readouterr().out
    assert "from the cache" in again and again.count("survived") == first.count("survived"), again
    assert cli.main(["mutate", str(source), "--no-cache"]) == 1
    assert "from the cache" not in capsys.readouterr().out
    source.write_text(source.read_text() + "assert clip(-3, 0, 10) == 0\n")  # a changed test: checked again
    cli.main(["mutate", str(source)])
    assert "from the cache" not in capsys.readouterr().out
    assert cli.main(["mutate", "99-no-such-notebook"]) == 2
    assert "unknown assignment" in capsys.readouterr().err
