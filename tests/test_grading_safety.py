"""The autograder under attack and at class scale (see tests/adversarial.py for the cases).

One class of about 40 students, every one of them a fault, an attack or a control, is
graded once, in the sandbox, with two workers; the tests read what came out. A smaller
class checks that regrading, resuming an interrupted run, grading with one or two
workers, and grading on a deliberately overloaded machine all give the same grades.
"""
import csv
import hashlib
import html
from html.parser import HTMLParser
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
from lrgrade.nbgrader_runner import nbgrader_env
from lrgrade.sandbox import UID_BASE, bwrap_problem
from lrgrade.sandbox_exec import pids_of

pytestmark = pytest.mark.slow  # real nbgrader runs: `bin/test -m "not slow"` skips them
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


# Limits for these tests: 15 CPU-seconds a cell (notebook 00 needs about 5, for importing
# torch), and a wall-clock backstop of 30 s a cell for code that sleeps.
LIMITS = ("--cell-cpu", "15", "--cell-timeout", "30", "--memory-mb", "2048")


def _grade(subs: Path, out: Path, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    proc = lrgrade("grade", str(subs), "--out", str(out), "--assignment", A, *LIMITS, "--sandbox", "bwrap",
                   *extra, env=env, timeout=1800)
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
def test_no_attack_earns_a_point_and_the_scan_points_at_them(corpus):
    rows = corpus["rows"]
    for student in adversarial.FLAGGED:
        assert rows[student]["flags"], f"{student} was not flagged: {corpus['lines'][student]}"
    for student in adversarial.HONEST:
        assert not rows[student]["flags"], f"{student} was flagged: {rows[student]['flags']}"
    assert "flagged for a closer look" in corpus["stdout"]


def _autograded(corpus, student: str) -> dict:
    return json.loads((corpus["out"] / ".nbgrader" / "autograded" / student / A / f"{A}.ipynb").read_text())


def _test_cell(nb: dict) -> dict:
    return next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == "test_sgd_update")


@needs_sandbox
def test_test_cells_hold_only_what_the_grader_wrote(corpus):
    """Whatever a submission did, its test cell shows the released test and the grader's verdict."""
    released = _test_cell(adversarial.released())["source"]
    for student, (score, _) in adversarial.EXPECTED.items():
        path = corpus["out"] / ".nbgrader" / "autograded" / student / A / f"{A}.ipynb"
        if not path.is_file():
            continue
        test = _test_cell(json.loads(path.read_text()))
        assert "".join(test["source"]) == "".join(released), student
        kinds = [o["output_type"] for o in test["outputs"]]
        assert kinds == ([] if score else ["error"]), f"{student}: {kinds}"


@needs_sandbox
def test_limits_are_reported_and_caps_keep_honest_work(corpus):
    lines = corpus["lines"]
    assert "CPU time limit hit" in corpus["rows"]["infinite-loop"]["flags"]
    assert "wall-clock backstop hit" in corpus["rows"]["sleeps-forever"]["flags"]
    huge = corpus["out"] / ".nbgrader" / "autograded" / "huge-error" / A / f"{A}.ipynb"
    assert huge.stat().st_size < 2_000_000, f"a 40 MB error made a {huge.stat().st_size} byte notebook"
    loud = corpus["out"] / ".nbgrader" / "autograded" / "honest-large-output" / A / f"{A}.ipynb"
    assert loud.stat().st_size < 2_000_000
    text = "".join("".join(o.get("text", "")) for c in _autograded(corpus, "fills-scratch")["cells"]
                   for o in c.get("outputs", []))
    written = json.loads(text.split("WRITTEN ", 1)[1].splitlines()[0].replace("'", '"'))
    for folder, megabytes in written.items():  # 256 MB each; 2000 MB was tried
        assert megabytes <= 300, f"the kernel wrote {megabytes} MB to {folder}"
    assert "all passed" in lines["fills-scratch"]


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
    return [ln.strip() for ln in block.splitlines() if len(ln.strip()) > 12]


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
    found = "".join("".join(o.get("text", "")) for c in _autograded(corpus, "reads-files")["cells"]
                    for o in c.get("outputs", []))
    assert "FOUND []" in found, f"the kernel found files with tests or answers: {found[-500:]}"


class _ActiveContent(HTMLParser):
    """Collects what could run in a browser: scripts that mention the payload, event
    handlers, javascript: URLs, frames and plugins."""

    def __init__(self, marker: str):
        super().__init__()
        self.marker, self.found, self._script = marker, [], False

    def handle_starttag(self, tag, attrs):
        self._script = tag == "script"
        if tag in ("iframe", "frame", "object", "embed"):
            self.found.append(f"<{tag}>")
        for key, value in attrs:
            if key.startswith("on"):
                self.found.append(f"{tag} {key}=")
            if key in ("href", "src", "action", "formaction") and "javascript:" in (value or "").lower():
                self.found.append(f"{tag} {key}={value}")

    def handle_endtag(self, tag):
        self._script = False

    def handle_data(self, data):
        if self._script and self.marker in data:
            self.found.append(f"script: {data[:80]}")


@needs_sandbox
def test_feedback_carries_no_active_content_from_a_submission(corpus):
    for student in ("active-content", "injected-markdown", "answer-metadata-changed"):
        parser = _ActiveContent("PWNED")
        parser.feed((corpus["out"] / "feedback" / student / f"{A}.html").read_text())
        assert not parser.found, f"{student}: active content reached the feedback page: {parser.found}"
    page = (corpus["out"] / "feedback" / "active-content" / f"{A}.html").read_text()
    assert "&lt;script&gt;PWNED_PRINT" in page  # what the code printed is shown, as text


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
SMALL = ["solved", "hidden-tests-fail", "infinite-loop", "honest-large-output"]


@pytest.fixture(scope="module")
def small_class(tmp_path_factory):
    if PROBLEM:
        pytest.skip(f"no sandbox here: {PROBLEM}")
    tmp = tmp_path_factory.mktemp("small")
    adversarial.build(tmp / "submissions", only=SMALL)
    _grade(tmp / "submissions", tmp / "graded", "--jobs", "2")
    return tmp, (tmp / "graded" / "grades.csv").read_text()


@needs_sandbox
def test_regrading_reuses_results_and_gives_identical_grades(small_class):
    tmp, reference = small_class
    again = _grade(tmp / "submissions", tmp / "graded", "--jobs", "2")
    assert f"resuming: {len(SMALL)} students already graded" in again.stdout
    assert (tmp / "graded" / "grades.csv").read_text() == reference
    # Other numbers of workers, and --force: the interrupted run (1, then 2) and the overloaded
    # one (2 per core) below.


@needs_sandbox
def test_an_interrupted_run_resumes_to_the_same_result(small_class):
    tmp, reference = small_class
    out = tmp / "interrupted"
    env = nbgrader_env()
    cmd = [sys.executable, "-m", "lrgrade.cli", "grade", str(tmp / "submissions"), "--out", str(out),
           "--assignment", A, *LIMITS, "--sandbox", "bwrap", "--jobs", "1"]
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
    resumed = _grade(tmp / "submissions", out, "--jobs", "2")  # one worker before, two now: the same grades
    assert f"resuming: {done} students already graded" in resumed.stdout
    assert (out / "grades.csv").read_text() == reference


@needs_sandbox
def test_an_overloaded_machine_gives_the_same_grades(small_class):
    """Twice as many workers as cores, and a CPU hog on each core: limits are on CPU time,
    so the grades (and the limit hits) are those of the quiet run."""
    tmp, reference = small_class
    hogs = [subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 1500\n"
                              "while time.time() < end:\n    pass\n"]) for _ in range(os.cpu_count() or 2)]
    try:
        loaded = _grade(tmp / "submissions", tmp / "graded", "--force", "--jobs", str(2 * (os.cpu_count() or 2)))
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert "resuming" not in loaded.stdout  # --force: every student graded again
    assert (tmp / "graded" / "grades.csv").read_text() == reference


ATTACKS_FOR_CHECK = ["forges-results", "racing-thread"]


def test_check_gives_the_verdict_grade_gives(tmp_path):
    """`check` (a student's self-check, no sandbox) uses the same trusted path as `grade`."""
    adversarial.build(tmp_path / "subs", only=ATTACKS_FOR_CHECK)
    for student in ATTACKS_FOR_CHECK:  # test_grading.py checks solved copies
        nb = next((tmp_path / "subs" / student).rglob("*.ipynb"))
        proc = lrgrade("check", str(nb), "--cell-cpu", "15")
        assert proc.returncode == 0, proc.stderr
        expected = adversarial.EXPECTED[student][0]
        assert f"total: {expected} / 1" in proc.stdout, f"{student}: {proc.stdout}"


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
