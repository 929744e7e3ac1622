"""The autograder under attack and at class scale (see tests/adversarial.py for the cases).

One class of 26 students, every one of them a fault, an attack or a control, is graded
once, in the sandbox, with two workers; the tests read what came out. A smaller class
checks that regrading, resuming an interrupted run and grading with one or two workers
all give the same grades.
"""
import csv
import hashlib
import html
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import adversarial
from conftest import ROOT, lrgrade
from lrgrade.sandbox import UID_BASE, bwrap_problem
from lrgrade.sandbox_exec import pids_of

A = adversarial.A
PROBLEM = bwrap_problem()
needs_sandbox = pytest.mark.skipif(bool(PROBLEM), reason=f"no sandbox here: {PROBLEM} (see README)")
SECRET = "LRGRADE_TEST_SECRET"


def test_ci_has_the_sandbox():
    """CI installs bubblewrap (bin/test does, as root): the safety tests must not be skipped there."""
    if os.environ.get("CI"):
        assert not PROBLEM, f"the sandbox cannot start in CI: {PROBLEM}"


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _csv(out: Path) -> dict[str, dict]:
    with (out / "grades.csv").open() as fh:
        return {r["student"]: r for r in csv.DictReader(fh)}


def _grade(subs: Path, out: Path, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    proc = lrgrade("grade", str(subs), "--out", str(out), "--assignment", A, "--cell-timeout", "10",
                   "--memory-mb", "2048", "--sandbox", "bwrap", *extra, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    if PROBLEM:
        pytest.skip(f"no sandbox here: {PROBLEM}")
    tmp = tmp_path_factory.mktemp("corpus")
    subs, out = tmp / "submissions", tmp / "graded"
    adversarial.build(subs)
    secrets = {"solutions": str(ROOT / "solutions"), "template gradebook": str(out / ".template" / "gradebook.db"),
               "own gradebook": str(out / ".work" / "probe" / "gradebook.db"),
               "other student": str(subs / "solved"), "repository": str(ROOT / "README.md")}
    adversarial.probe_submission(subs / "probe", secrets)
    before = _digests(subs)
    start = time.time()
    proc = _grade(subs, out, "--jobs", "2", env={SECRET: "do-not-show-this"})
    lines = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if line.startswith("  ") and parts:
            lines[parts[0]] = line
    return {"subs": subs, "out": out, "rows": _csv(out), "lines": lines, "stdout": proc.stdout,
            "before": before, "seconds": time.time() - start}


@needs_sandbox
def test_every_fault_and_attack_gets_its_score_and_a_clear_line(corpus):
    rows, lines = corpus["rows"], corpus["lines"]
    assert set(rows) == set(adversarial.EXPECTED) | {"probe"}, corpus["stdout"]
    for student, (score, text) in adversarial.EXPECTED.items():
        assert float(rows[student]["score"]) == score, f"{student}: {lines.get(student)}"
        assert text in lines[student], f"{student}: expected {text!r} in its line: {lines[student]}"
    assert float(rows["probe"]["score"]) == 1, lines["probe"]


@needs_sandbox
def test_tampering_is_flagged_and_honest_work_is_not(corpus):
    rows = corpus["rows"]
    for student in adversarial.TAMPERING:
        assert rows[student]["flags"], f"{student} was not flagged: {corpus['lines'][student]}"
    for student in ("solved", "blank", "renamed-notebook", "sys-exit-after-answer", "hidden-tests-fail"):
        assert not rows[student]["flags"], f"{student} was flagged: {rows[student]['flags']}"
    assert "flagged for a closer look" in corpus["stdout"]


@needs_sandbox
def test_the_guard_zeroes_tests_that_would_pass_when_rigged(corpus):
    """These two rig the visible test so it passes: only the guard stands in the way."""
    for student in ("patch-assert-helper", "rewrites-tests"):
        nb = json.loads((corpus["out"] / ".nbgrader" / "autograded" / student / A / f"{A}.ipynb").read_text())
        test = next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == "test_sgd_update")
        assert [o.get("ename") for o in test["outputs"] if o["output_type"] == "error"] == ["GraderIntegrityError"]


@needs_sandbox
def test_student_code_cannot_reach_solutions_gradebook_other_students_or_network(corpus):
    nb = json.loads((corpus["out"] / ".nbgrader" / "autograded" / "probe" / A / f"{A}.ipynb").read_text())
    text = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
    seen = json.loads(text.split("PROBE ", 1)[1].splitlines()[0])
    for name in ("solutions", "template gradebook", "own gradebook", "other student", "repository"):
        assert seen[name] is False, f"the sandboxed kernel could see the {name}"
    assert seen["network"] is False, "the sandboxed kernel reached the network"
    assert seen["uid"] not in (0, os.getuid()), "the kernel ran as the grader's user"
    assert SECRET not in seen["env"], "the grader's environment leaked into the kernel"
    written = [p for p in corpus["out"].rglob("written-by-the-kernel.txt")] + \
              [p for p in corpus["subs"].rglob("written-by-the-kernel.txt")]
    assert not written, f"a file the kernel wrote escaped its scratch folder: {written}"


@needs_sandbox
def test_submissions_are_never_modified(corpus):
    assert _digests(corpus["subs"]) == corpus["before"]


@needs_sandbox
def test_no_sandboxed_process_outlives_the_run(corpus):
    left = pids_of(UID_BASE) + pids_of(UID_BASE + 1)
    assert not left, f"processes of the sandbox users are still running: {left}"


def _hidden_lines() -> list[str]:
    source = (ROOT / "solutions" / A / f"{A}.py").read_text()
    block = source.split("### BEGIN HIDDEN TESTS", 1)[1].split("### END HIDDEN TESTS", 1)[0]
    return [ln.strip() for ln in block.splitlines() if ln.strip()]


@needs_sandbox
def test_feedback_never_shows_hidden_tests(corpus):
    hidden = _hidden_lines()
    pages = sorted((corpus["out"] / "feedback").rglob("*.html"))
    assert len(pages) >= 15, pages
    for page in pages:
        text = html.unescape(page.read_text())
        assert "BEGIN HIDDEN TESTS" not in text, page
        for line in hidden:
            assert line not in text, f"{page} shows hidden test code: {line}"
        for value in ("3.0, -4.0, 0.5", "-0.01, 0.98, 1.97"):  # hidden inputs and expected values
            assert value not in text, f"{page} shows a hidden test's values ({value})"
    failed_hidden = html.unescape((corpus["out"] / "feedback" / "hidden-tests-fail" / f"{A}.html").read_text())
    assert "a hidden test failed" in failed_hidden
    visible = html.unescape((corpus["out"] / "feedback" / "blank" / f"{A}.html").read_text())
    assert "NotImplementedError" in visible


@needs_sandbox
def test_merged_gradebook_holds_every_graded_student(corpus):
    from nbgrader.api import Gradebook, MissingEntry
    rows = corpus["rows"]
    with Gradebook(f"sqlite:///{corpus['out'] / '.nbgrader' / 'gradebook.db'}") as gb:
        for student, row in rows.items():
            if row["status"] != "graded":
                continue
            sub = gb.find_submission(A, student)
            assert sub.score == float(row["score"]), student
        with pytest.raises(MissingEntry):
            gb.find_submission(A, "empty-folder")


# -- the same grades however the class is graded -------------------------------------------
SMALL = ["solved", "blank", "hidden-tests-fail", "patch-assert-helper"]


@pytest.fixture(scope="module")
def small_class(tmp_path_factory):
    if PROBLEM:
        pytest.skip(f"no sandbox here: {PROBLEM}")
    tmp = tmp_path_factory.mktemp("small")
    adversarial.build(tmp / "submissions", only=SMALL)
    _grade(tmp / "submissions", tmp / "graded", "--jobs", "2")
    return tmp, (tmp / "graded" / "grades.csv").read_text()


@needs_sandbox
def test_regrading_gives_identical_grades_and_reuses_results(small_class):
    tmp, reference = small_class
    again = _grade(tmp / "submissions", tmp / "graded", "--jobs", "2")
    assert f"resuming: {len(SMALL)} students already graded" in again.stdout
    assert (tmp / "graded" / "grades.csv").read_text() == reference
    forced = _grade(tmp / "submissions", tmp / "graded", "--jobs", "1", "--force")
    assert "resuming" not in forced.stdout
    assert (tmp / "graded" / "grades.csv").read_text() == reference, "one worker and two gave different grades"


@needs_sandbox
def test_an_interrupted_run_resumes_to_the_same_result(small_class):
    tmp, reference = small_class
    out = tmp / "interrupted"
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    cmd = [sys.executable, "-m", "lrgrade.cli", "grade", str(tmp / "submissions"), "--out", str(out),
           "--assignment", A, "--cell-timeout", "10", "--memory-mb", "2048", "--sandbox", "bwrap", "--jobs", "1"]
    run = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and not list(out.glob(".work/*/result.json")) and run.poll() is None:
        time.sleep(0.2)
    os.killpg(run.pid, signal.SIGKILL)  # as a power cut or a closed laptop would
    run.wait()
    done = len(list(out.glob(".work/*/result.json")))
    assert 1 <= done < len(SMALL), f"the run was not cut in the middle ({done} students done)"
    assert not (out / "grades.csv").exists()
    resumed = _grade(tmp / "submissions", out, "--jobs", "1")
    assert f"resuming: {done} students already graded" in resumed.stdout
    assert (out / "grades.csv").read_text() == reference


def test_without_bubblewrap_grading_warns_or_refuses(tmp_path):
    adversarial.build(tmp_path / "submissions", only=["solved"])
    no_bwrap = {"LRGRADE_BWRAP": str(tmp_path / "no-bwrap-here")}
    refused = lrgrade("grade", str(tmp_path / "submissions"), "--out", str(tmp_path / "refused"),
                      "--assignment", A, "--sandbox", "bwrap", env=no_bwrap)
    assert refused.returncode == 2 and "--sandbox bwrap: bwrap does not start" in refused.stderr
    assert not (tmp_path / "refused" / "grades.csv").exists()
    warned = lrgrade("grade", str(tmp_path / "submissions"), "--out", str(tmp_path / "warned"),
                     "--assignment", A, env=no_bwrap)
    assert warned.returncode == 0, warned.stdout + warned.stderr
    assert "WARNING: grading WITHOUT a sandbox" in warned.stderr
    assert "sandbox: none, limits only" in warned.stdout
    assert _csv(tmp_path / "warned")["solved"]["score"] == "1"
