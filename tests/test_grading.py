"""End-to-end tests of the release, check and grade tools, on real nbgrader."""
import csv
import filecmp
import json
import re
import shutil
from pathlib import Path

import pytest

from conftest import ROOT, lrgrade, stream_outputs
from lrgrade.nbgrader_runner import nbgrader_env
from lrgrade.notebooks import assignments, build_notebook, source_path, write_notebook
from lrgrade.trusted import load_form, read_test_cell

pytestmark = pytest.mark.slow  # real nbgrader runs: `bin/test -m "not slow"` skips them
SOLUTIONS = ROOT / "solutions"
COURSE = ROOT / "course"
ASSIGNMENTS = assignments(SOLUTIONS)


def _built(a: str, dest: Path) -> Path:
    write_notebook(build_notebook(source_path(a), a), dest)
    return dest


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p.is_file() and "feedback" not in p.parts and ".ipynb_checkpoints" not in p.parts)


def test_course_is_exactly_what_release_generates(tmp_path):
    out = tmp_path / "course"
    proc = lrgrade("release", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert _files(out) == _files(COURSE), "course/ has other files than the release step makes: run bin/release"
    for rel in _files(out):
        assert filecmp.cmp(out / rel, COURSE / rel, shallow=False), (
            f"course/{rel} differs from what the release step generates from solutions/: run bin/release")


def test_readme_and_the_course_map_list_every_notebook():
    readme = (ROOT / "README.md").read_text()
    course_map = source_path("00-start-here").read_text()
    for a in ASSIGNMENTS:
        title = source_path(a).read_text().splitlines()[1].removeprefix("# # ")  # "NN · Title"
        assert f"- {title}\n" in readme, f"README's notebook list lacks {title!r}"
        short = title.split(":")[0]  # the map may leave out a subtitle
        assert a == "00-start-here" or f"# | {short} |" in course_map, f"00's course map lacks {short!r}"


def test_every_assignment_has_visible_and_hidden_tests():
    assert ASSIGNMENTS[:2] == ["00-start-here", "01-why-lr-matters"]
    for a in ASSIGNMENTS:
        nb = build_notebook(source_path(a), a)
        graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"]
        solutions = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
        assert graded and solutions, f"{a} has no exercises"
        hidden = 0
        form = load_form("lrcourse.checks")  # the test form nbgrader_config.py names
        for cell in graded:
            test = read_test_cell(cell.source, cell.id, form)  # as the grader reads it, in its own process
            assert not all(test.hidden), f"{a}/{cell.id}: no visible test to learn from"
            hidden += sum(test.hidden)
        assert hidden, f"{a} has no hidden tests"
    released = json.loads((COURSE / "01-why-lr-matters" / "01-why-lr-matters.ipynb").read_text())
    text = json.dumps(released)
    assert "BEGIN HIDDEN TESTS" not in text and "BEGIN SOLUTION" not in text


# -- grade: a class that hands in every assignment solved, and every one blank -------------
# A worker grades one student at a time: the solved notebooks are split between three
# students, so that with "blank" (every released notebook unchanged, quick to grade) two
# workers finish at about the same time.
SOLVED = {f"solved-{k}": ASSIGNMENTS[k::3] for k in range(3)}
WARNING_OR_ERROR = re.compile(r"(?i)warn|error")


@pytest.fixture(scope="module")
def whole_class(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("class")
    subs = tmp / "submissions"
    for student, names in SOLVED.items():
        for a in names:
            _built(a, subs / student / a / f"{a}.ipynb")  # nbgrader's layout: <student>/<A>/<A>.ipynb
    (subs / "blank").mkdir(parents=True)
    for a in ASSIGNMENTS:
        shutil.copyfile(COURSE / a / f"{a}.ipynb", subs / "blank" / f"{a}.ipynb")  # flat, as from an LMS
    proc = lrgrade("grade", str(subs), "--out", str(tmp / "out"), "--jobs", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with (tmp / "out" / "grades.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    return rows, proc.stdout, tmp


def test_each_solution_scores_full_marks(whole_class):
    rows, out, _ = whole_class
    solved = {r["assignment"]: r for r in rows if r["student"] in SOLVED and r["assignment"] in SOLVED[r["student"]]}
    assert sorted(solved) == ASSIGNMENTS
    for a, r in solved.items():
        assert r["status"] == "graded", f"{a}: {r['status']}"
        assert float(r["max_score"]) > 0
        auto_max = float(r["max_score"]) - float(r["pending_manual"])  # written answers wait for a person
        assert float(r["score"]) == auto_max, f"{a}: solution scored {r['score']}/{r['max_score']}\n{out}"
    missing = [r for r in rows if r["student"] in SOLVED and r["assignment"] not in SOLVED[r["student"]]]
    assert all(r["status"].startswith("missing") and float(r["score"]) == 0 for r in missing), missing


def test_each_blank_notebook_grades_to_zero(whole_class):
    rows, out, _ = whole_class
    blank = {r["assignment"]: r for r in rows if r["student"] == "blank"}
    assert sorted(blank) == ASSIGNMENTS
    for a, r in blank.items():
        assert r["status"] == "graded", f"{a}: {r['status']}"
        assert float(r["score"]) == 0, f"{a}: a blank notebook scored {r['score']}\n{out}"


def test_feedback_is_written_per_student(whole_class):
    _, _, tmp = whole_class
    for student, names in [*SOLVED.items(), ("blank", ASSIGNMENTS)]:
        for a in names:
            html = tmp / "out" / "feedback" / student / f"{a}.html"
            assert html.is_file() and html.stat().st_size > 1000


def test_a_solved_notebook_graded_in_the_sandbox_shows_no_warning_or_error(whole_class):
    """What a kernel writes on stderr lands in the student's graded copy and feedback, where
    SafeOutputs shows every stream as plain output (so stderr cannot be told apart there). In
    the sandbox, fc-list (run by matplotlib to build its font list) could not read /etc/fonts
    and printed "Fontconfig error" into every notebook that imports matplotlib. A solved
    notebook prints no warning or error of its own."""
    _, _, tmp = whole_class
    found = []
    for student, names in SOLVED.items():
        for a in names:
            nb = json.loads((tmp / "out" / ".nbgrader" / "autograded" / student / a / f"{a}.ipynb").read_text())
            found += [(a, index, text) for index, text in stream_outputs(nb) if WARNING_OR_ERROR.search(text)]
    assert not found, f"graded copies show warnings or errors (notebook, cell index, text): {found}"


# -- check: one notebook, for a student -----------------------------------------------------
def test_check_solved_copy_saved_anywhere(tmp_path):
    a = "01-why-lr-matters"
    nb = _built(a, tmp_path / "Downloads" / f"{a} (1).ipynb")
    proc = lrgrade("check", str(nb))
    assert proc.returncode == 0, proc.stderr
    total = [ln for ln in proc.stdout.splitlines() if ln.startswith("total:")][0]
    got, _, full = total.removeprefix("total: ").partition(" / ")
    assert float(got) == float(full) > 0, proc.stdout
    assert "FAILED" not in proc.stdout
    assert (tmp_path / "Downloads" / "feedback" / f"{a} (1).html").is_file()


def test_check_blank_copy_scores_zero_with_reasons(tmp_path):
    a = "00-start-here"
    nb = tmp_path / f"{a}.ipynb"
    shutil.copyfile(COURSE / a / f"{a}.ipynb", nb)
    proc = lrgrade("check", str(nb))
    assert proc.returncode == 0, proc.stderr
    assert "total: 0 / " in proc.stdout, proc.stdout
    assert "raised NotImplementedError" in proc.stdout
    assert "passed" not in proc.stdout.replace("all passed", "")


def test_check_without_solutions_runs_visible_tests_only(tmp_path, capsys):
    """In process, as nbgrader tests its apps: the folders are arguments, not import-time state."""
    from lrgrade import cli

    a = "00-start-here"
    nb = _built(a, tmp_path / f"{a}.ipynb")
    assert cli.main(["--solutions", str(tmp_path / "no-solutions-here"), "check", str(nb)]) == 0
    out = capsys.readouterr().out
    assert "only the visible tests ran" in out
    assert "total: 1 / 1" in out


def test_check_rejects_a_malformed_notebook_clearly(tmp_path):
    bad = tmp_path / "00-start-here.ipynb"
    bad.write_text("{ this is not json")
    proc = lrgrade("check", str(bad))
    assert proc.returncode == 2
    assert "malformed JSON" in proc.stderr
    missing = lrgrade("check", str(tmp_path / "nope.ipynb"))
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_course_dir_grades_a_class_with_nbgrader_itself(tmp_path):
    """An instructor may run nbgrader directly (formgrader, the exchange): one `autograde`
    over several students, each notebook in its own kernel, judged by the trusted path."""
    import subprocess
    import sys

    from nbgrader.api import Gradebook

    a = "00-start-here"
    course = tmp_path / "course"
    assert lrgrade("course-dir", str(course)).returncode == 0
    _built(a, course / "submitted" / "solved-1" / a / f"{a}.ipynb")
    _built(a, course / "submitted" / "solved-2" / a / f"{a}.ipynb")
    shutil.copytree(COURSE / a, course / "submitted" / "blank" / a)
    env = nbgrader_env()
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", a, "--force"], cwd=course, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        scores = {s: gb.find_submission(a, s).score for s in ("solved-1", "solved-2", "blank")}
    assert scores == {"solved-1": 1, "solved-2": 1, "blank": 0}


@pytest.mark.parametrize("assignment", assignments())
def test_no_cell_that_runs_under_grading_needs_an_illustration(assignment):
    """Cells tagged "illustration" do not run under grading: a locked or setup cell that reads
    a name only they bind would raise NameError in every student's report. (Answer cells that
    read one make every illustration run, so they are fine.)"""
    from nbgrader.utils import is_grade, is_solution

    from lrgrade.preprocessors import bound_and_read

    nb = build_notebook(source_path(assignment), assignment)
    made_by: dict[str, int] = {}
    needs = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or is_grade(cell) or is_solution(cell):
            continue
        bound, read = bound_and_read(cell.source)
        if "illustration" in cell.metadata.get("tags", []):
            made_by.update({name: index for name in bound if name not in made_by})
        else:
            needs += [f"cell {index} reads {name} (made by illustration cell {made_by[name]})"
                      for name in sorted(read - bound) if name in made_by]
    assert not needs, f"{assignment}: untag the illustration cells these need: " + "; ".join(needs)
