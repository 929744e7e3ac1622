"""Time `lrgrade grade` against plain nbgrader on one class, and project a whole course.

Not collected by pytest. Run it with ``bin/benchmark-grading`` (sets up ``.venv``
first) or ``.venv/bin/python tests/benchmark_grading.py``. Options::

    --students N         class size for the comparison (default 20)
    --jobs N             workers for `grade` (default: the number of CPU cores)
    --course-students K  solved students over every assignment, for the projection
                         (default: --jobs; 0 skips it)
    --keep DIR           keep the classes and outputs in DIR (default: a temporary folder)

The class hands in notebook 00 (tests/adversarial.py builds it), cycling through:
solved, partial (passes the visible test, fails the hidden one), blank, and broken
(malformed JSON, a kernel that exits, an empty folder, an infinite loop, a tampered
test). It is graded twice, with ``--cell-cpu 15`` and no reuse of results:

1. plain nbgrader, as an instructor runs it in a course directory from ``lrgrade
   course-dir``: one ``nbgrader autograde`` over every student, one after the other;
2. ``lrgrade grade --jobs N``, in the sandbox when there is one.

It prints both times, the ratio, and whether the scores agree. Then K solved students
hand in every assignment and ``grade --jobs N`` grades them: the time, scaled linearly
to 100 students, is the projection for a class of 100 over the whole course.
"""
from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "autograder"))

import adversarial  # noqa: E402
from lrgrade.nbgrader_runner import nbgrader_env  # noqa: E402
from lrgrade.sandbox import bwrap_problem  # noqa: E402

MIX = ["solved", "solved", "hidden-tests-fail", "blank", "solved", "solved", "hidden-tests-fail", "blank",
       "malformed-json", "os-exit", "empty-folder", "infinite-loop", "patch-assert-helper", "solved",
       "solved", "solved", "solved", "hidden-tests-fail", "hidden-tests-fail", "blank", "blank"]


def build_class(folder: Path, n: int) -> dict[str, int]:
    """``n`` students cycling through MIX; return how many of each kind."""
    cases = folder / ".cases"
    adversarial.build(cases, only=sorted(set(MIX)))
    counts: dict[str, int] = {}
    for i in range(n):
        kind = MIX[i % len(MIX)]
        counts[kind] = counts.get(kind, 0) + 1
        dest = folder / f"student-{i:03d}-{kind}"
        shutil.copytree(cases / kind, dest)
    shutil.rmtree(cases)
    return counts


def grade(subs: Path, out: Path, jobs: int, assignment: str | None = adversarial.A) -> float:
    cmd = [sys.executable, "-m", "lrgrade.cli", "grade", str(subs), "--out", str(out), "--cell-cpu", "15",
           "--force", "--jobs", str(jobs)] + (["--assignment", assignment] if assignment else [])
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=nbgrader_env(), capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"grading failed:\n{proc.stdout}\n{proc.stderr}")
    return seconds


def nbgrader_serial(subs: Path, course: Path) -> tuple[float, dict[str, float]]:
    """Plain `nbgrader autograde` over the class in a course directory; (seconds, scores)."""
    from nbgrader.api import Gradebook, MissingEntry

    a = adversarial.A
    proc = subprocess.run([sys.executable, "-m", "lrgrade.cli", "course-dir", str(course)], cwd=ROOT,
                          env=nbgrader_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"lrgrade course-dir failed:\n{proc.stderr}")
    with (course / "nbgrader_config.py").open("a") as fh:
        fh.write("c.TrustedExecute.cpu_limit = 15.0\n")  # as --cell-cpu 15 for grade
    students = sorted(p.name for p in subs.iterdir() if p.is_dir())
    for student in students:
        found = sorted((subs / student).rglob("*.ipynb"))
        if found:
            dest = course / "submitted" / student / a / f"{a}.ipynb"
            dest.parent.mkdir(parents=True)
            shutil.copyfile(found[0], dest)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "nbgrader", "autograde", a, "--force"], cwd=course,
                   env=nbgrader_env(), capture_output=True, text=True)  # a malformed notebook fails; it goes on
    seconds = time.perf_counter() - start
    scores = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for student in students:
            try:
                scores[student] = gb.find_submission(a, student).score
            except MissingEntry:
                pass
    return seconds, scores


def csv_scores(out: Path) -> dict[str, float]:
    with (out / "grades.csv").open() as fh:
        return {r["student"]: float(r["score"]) for r in csv.DictReader(fh)}


def solved_course_class(folder: Path, n: int) -> list[str]:
    """``n`` students who hand in every assignment, solved; return the assignments."""
    from lrgrade.notebooks import assignments, build_notebook, source_path, write_notebook

    names = assignments(ROOT / "solutions")
    for i in range(n):
        for a in names:
            write_notebook(build_notebook(source_path(a), a), folder / f"student-{i:03d}" / a / f"{a}.ipynb")
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--course-students", type=int, default=None)
    parser.add_argument("--keep", help="keep the classes and the outputs here")
    args = parser.parse_args()
    course_students = args.jobs if args.course_students is None else args.course_students
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="lrgrade-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    for old in ("class", "nbgrader-course", "graded", "course-class", "course-graded"):
        shutil.rmtree(base / old, ignore_errors=True)
    subs = base / "class"
    counts = build_class(subs, args.students)
    problem = bwrap_problem()
    print(f"class: {args.students} students of {adversarial.A}: "
          + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; "
          f"sandbox for grade: {'bubblewrap' if not problem else 'none (' + problem + ')'}")
    serial, nb_scores = nbgrader_serial(subs, base / "nbgrader-course")
    print(f"nbgrader autograde (serial): {serial:7.1f} s  ({serial / args.students:.2f} s per student)")
    ours = grade(subs, base / "graded", args.jobs)
    print(f"lrgrade grade --jobs {args.jobs}:    {ours:7.1f} s  ({ours / args.students:.2f} s per student)  "
          f"load {os.getloadavg()[0]:.2f}")
    print(f"ratio, nbgrader serial / grade --jobs {args.jobs}: {serial / ours:.2f}x")
    ours_scores = csv_scores(base / "graded")
    differ = sorted(s for s, v in nb_scores.items() if ours_scores.get(s) != v)
    print(f"scores agree for the {len(nb_scores)} students nbgrader graded: "
          + ("yes" if not differ else f"NO: {', '.join(differ)}"))
    if course_students:
        names = solved_course_class(base / "course-class", course_students)
        whole = grade(base / "course-class", base / "course-graded", args.jobs, assignment=None)
        per = whole / course_students
        print(f"whole course ({len(names)} notebooks) x {course_students} solved students, "
              f"--jobs {args.jobs}: {whole:.1f} s ({per:.1f} s per student)")
        print(f"projected for 100 students x {len(names)} notebooks (linear in class size): "
              f"{100 * per / 60:.0f} min")
    if not args.keep:
        shutil.rmtree(base)


if __name__ == "__main__":
    main()
