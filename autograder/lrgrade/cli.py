"""`lrgrade`: build, release, check and grade the course's notebooks (all on nbgrader).

    lrgrade build                 solutions/*/*.py -> solutions/*/*.ipynb (instructor copies)
    lrgrade release               regenerate course/ from solutions/ (nbgrader generate_assignment)
    lrgrade check NOTEBOOK        grade one notebook locally and explain every test
    lrgrade grade SUBMISSIONS     autograde a class: feedback per student and grades.csv
    lrgrade course-dir DIR        a ready nbgrader course directory (formgrader, exchange)
    lrgrade classroom ACTION      a JupyterHub classroom on this machine (setup, start, grade, remove)
    lrgrade mutate [ASSIGNMENT]   do the graded tests catch small bugs in the solutions?
"""
from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import nbformat

from .class_grader import ClassGrader, Settings, printable
from .mutate import DEFAULT_MIN_SHARE, DEFAULT_TIME_LIMIT
from .nbgrader_course import NbgraderCourse, NotebookResult, course_config
from .sandbox import Limits, bwrap_problem
from .notebooks import (COURSE, SOLUTIONS, NotebookError, SourceError, assignment_of, assignments,
                        build_notebook, read_any, source_path, write_notebook)

DEFAULT_NOTEBOOK_TIMEOUT = 3600  # wall-clock backstop for one whole notebook (limits are on CPU time)


def grading_sources(args, only: list[str] | None = None) -> tuple[dict[str, nbformat.NotebookNode], bool]:
    """The notebooks to grade against, and whether they include the hidden tests.

    With ``solutions/`` (an instructor, or a self-paced learner with the whole repo) the
    hidden tests are included; with only ``course/`` (a class handout) just the visible ones.
    """
    if assignments(args.solutions):
        names = [a for a in assignments(args.solutions) if only is None or a in only]
        return {a: build_notebook(source_path(a, args.solutions), a) for a in names}, True
    names = [a for a in assignments(args.course) if only is None or a in only]
    return {a: read_any(args.course / a / f"{a}.ipynb") for a in names}, False


def known_assignments(args) -> list[str]:
    return assignments(args.solutions) or assignments(args.course)


# -- build and release ------------------------------------------------------------------
def cmd_build(args) -> int:
    for a in assignments(args.solutions):
        out = args.solutions / a / f"{a}.ipynb"
        write_notebook(build_notebook(source_path(a, args.solutions), a), out)
        print(f"built {out}")
    return 0


def release(out: Path, solutions: Path = SOLUTIONS) -> list[str]:
    """Generate the student notebooks from ``solutions`` into ``out`` (replacing it)."""
    names = assignments(solutions)
    with tempfile.TemporaryDirectory(prefix="lrgrade-release-") as tmp:
        course = NbgraderCourse(Path(tmp)).create({a: build_notebook(source_path(a, solutions), a)
                                                   for a in names})
        if out.exists():
            for child in out.iterdir():
                if child.is_dir():
                    shutil.rmtree(child)
        out.mkdir(parents=True, exist_ok=True)
        for a in names:
            shutil.copytree(course.root / "release" / a, out / a)
    return names


def cmd_release(args) -> int:
    out = Path(args.out) if args.out else args.course
    for a in release(out, args.solutions):
        print(f"released {out / a / (a + '.ipynb')}")
    return 0


def cmd_course_dir(args) -> int:
    sources, _ = grading_sources(args)
    course = NbgraderCourse(Path(args.directory)).create(sources)
    print(f"nbgrader course directory ready at {course.root} "
          f"(assignments: {', '.join(sources)}). Run nbgrader commands from there.")
    return 0


def cmd_classroom(args) -> int:
    from .classroom import Classroom, ClassroomError

    try:
        if args.action == "setup":
            course_id = course_config().CourseDirectory.course_id
            room = Classroom(Path(args.root).resolve(), args.instructor, args.students, course_id, args.port)
            sources, _ = grading_sources(args)
            created = room.setup(sources)
            print(f"classroom ready in {room.root}: instructor {room.instructor}, students "
                  f"{', '.join(room.students)}; course {room.course_dir}")
            if created:
                print(f"first passwords of the new accounts: {room.root / 'accounts.txt'} (root only)")
            print(f"start the hub with `bin/classroom start`, then open {room.url}")
            return 0
        room = Classroom.load(Path(args.root))
        if args.action == "start":
            room.start()
        elif args.action == "grade":
            if args.assignment not in known_assignments(args):
                print(f"lrgrade classroom grade: name the assignment to grade, one of: "
                      f"{', '.join(known_assignments(args))}", file=sys.stderr)
                return 2
            if not list((room.course_dir / "submitted").glob(f"*/{args.assignment}")):
                print(f"lrgrade classroom grade: nothing of {args.assignment} is collected yet: collect it "
                      f"first (formgrader's Collect, or `nbgrader collect {args.assignment}` as "
                      f"{room.instructor})", file=sys.stderr)
                return 2
            return main(["--solutions", str(args.solutions), "--course", str(args.course),
                         *room.grade_args(args.assignment, args.jobs)])
        elif args.action == "remove":
            room.remove()
            print(f"removed the accounts {', '.join([room.instructor, *room.students])} and {room.root}")
        return 0
    except ClassroomError as err:
        print(f"lrgrade classroom: {err}", file=sys.stderr)
        return 2


# -- check: one notebook, for a student ---------------------------------------------------
def _print_table(result: NotebookResult) -> None:
    width = max([len(t.grade_id) for t in result.tests] + [4])
    print(f"{'test':<{width}}  points  result")
    for t in result.tests:
        pts = f"{t.score:g}/{t.max_score:g}"
        if t.manual:
            verdict = t.message or "graded by your instructor"
        else:
            verdict = "passed" if t.passed else f"FAILED: {printable(t.message, 1000) or 'failed'}"
        print(f"{t.grade_id:<{width}}  {pts:>6}  {verdict}")


def cmd_check(args) -> int:
    path = Path(args.notebook).expanduser().resolve()
    try:
        nb = build_notebook(path) if path.suffix == ".py" else read_any(path)
        assignment = assignment_of(nb, path, known_assignments(args))
    except NotebookError as err:
        print(f"lrgrade check: {err}", file=sys.stderr)
        return 2
    sources, hidden = grading_sources(args, [assignment])
    with tempfile.TemporaryDirectory(prefix="lrgrade-check-") as tmp:
        course = NbgraderCourse(Path(tmp), cell_timeout=args.cell_timeout, cell_cpu=args.cell_cpu).create(sources)
        course.submit("me", assignment, nb)
        status = course.autograde("me", assignment, timeout=args.notebook_timeout)
        result = course.result("me", assignment, status)
        html = course.feedback("me", assignment) if not status else None
        print(f"{path.name} ({assignment})")
        if status:
            print(f"could not grade it: {printable(status, 1000)}")
        _print_table(result)
        print(f"total: {result.score:g} / {result.max_score:g}")
        if result.pending_manual:
            print(f"note: {result.pending_manual:g} points are for written answers, graded by a person "
                  "(not included above).")
        if not hidden:
            print("note: solutions/ is not here, so only the visible tests ran; "
                  "your instructor's grade also runs hidden tests.")
        if html:
            dest = path.parent / "feedback" / f"{path.stem}.html"
            dest.parent.mkdir(exist_ok=True)
            shutil.copyfile(html, dest)
            print(f"feedback: {dest}")
    return 0


# -- grade: a whole class, for an instructor ----------------------------------------------
def sandbox_limits(args) -> Limits:
    """The sandbox to grade in: bubblewrap where it works, else limits only (with a warning)."""
    limits = Limits(mode="bwrap", memory_mb=args.memory_mb)
    problem = bwrap_problem() if args.sandbox != "limits-only" else "turned off with --sandbox limits-only"
    if not problem:
        return limits
    if args.sandbox == "bwrap":
        raise SandboxUnavailable(f"--sandbox bwrap: {problem}")
    print(f"WARNING: grading WITHOUT a sandbox ({problem}). Student code runs as you: it can read "
          "your files (solutions/, the gradebook, other students' work) and use the network. The memory, "
          "file-size and time limits still apply. Install Debian's bubblewrap package "
          "(apt-get install bubblewrap) to isolate it; see README, 'Grading safely'.", file=sys.stderr)
    return replace(limits, mode="limits")


class SandboxUnavailable(RuntimeError):
    pass


def cmd_grade(args) -> int:
    submissions = Path(args.submissions).resolve()
    if not submissions.is_dir():
        print(f"lrgrade grade: {submissions} is not a folder", file=sys.stderr)
        return 2
    out = Path(args.out).resolve() if args.out else submissions.parent / (submissions.name + "-graded")
    if out == submissions or submissions in out.parents:
        print("lrgrade grade: --out must be outside the submissions folder (submissions are never written to)",
              file=sys.stderr)
        return 2
    into = Path(args.into).resolve() if args.into else None
    if into and not (into / "gradebook.db").is_file():
        print(f"lrgrade grade: --into {into} is not an nbgrader course directory (no gradebook.db)",
              file=sys.stderr)
        return 2
    students = sorted(p for p in submissions.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not students:
        print(f"lrgrade grade: no student folders in {submissions}", file=sys.stderr)
        return 2
    try:
        limits = sandbox_limits(args)
    except SandboxUnavailable as err:
        print(f"lrgrade grade: {err}", file=sys.stderr)
        return 2
    sources, hidden = grading_sources(args, args.assignment or None)
    settings = Settings(args.cell_timeout, args.notebook_timeout, limits, args.cell_cpu)
    out.mkdir(parents=True, exist_ok=True)
    grader = ClassGrader(submissions, out, sources, known_assignments(args), settings, jobs=args.jobs)
    print(f"grading {len(students)} students x {len(sources)} assignments "
          f"({'with' if hidden else 'WITHOUT'} hidden tests; {args.jobs} worker(s); "
          f"sandbox: {'bubblewrap' if limits.mode == 'bwrap' else 'none, limits only'})")
    rows = grader.run(force=args.force)
    csv_path = out / "grades.csv"
    tmp = csv_path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["student", "assignment", "score", "max_score", "pending_manual", "status", "flags"])
        for r in rows:
            writer.writerow([r.student, r.assignment, f"{r.score:g}", f"{r.max_score:g}",
                             f"{r.pending_manual:g}", r.status, "; ".join(r.flags)])
    os.replace(tmp, csv_path)
    if into:
        try:
            grader.publish(into, [s.name for s in students])
        except ValueError as err:
            print(f"lrgrade grade: --into {into}: {err} (grades.csv and feedback/ are in {out})", file=sys.stderr)
            return 2
        print(f"results written into the course {into} (gradebook, autograded/, feedback/): "
              "formgrader shows them, and `nbgrader release_feedback` returns the feedback")
    flagged = sorted({r.student for r in rows if r.flags})
    total = {s.name: sum(r.score for r in rows if r.student == s.name) for s in students}
    print(f"grades: {csv_path}\nfeedback: {out / 'feedback'}/<student>/<assignment>.html\n"
          f"gradebook: {out / '.nbgrader' / 'gradebook.db'} (an nbgrader course folder)")
    print("totals: " + ", ".join(f"{s}={v:g}" for s, v in total.items()))
    if flagged:
        print(f"flagged for a closer look: {', '.join(flagged)} (see the flags column)")
    return 0


# -- mutate: are the tests strong enough? ------------------------------------------------
def cmd_mutate(args) -> int:
    from . import mutate
    try:
        report = mutate.run_mutation_check(args.assignment or None, min_share=args.min_share,
                                           time_limit=args.time_limit, jobs=args.jobs, solutions=args.solutions,
                                           use_cache=not args.no_cache)
    except ValueError as err:
        print(f"lrgrade mutate: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lrgrade mutate: interrupted", file=sys.stderr)
        return 130
    print(mutate.format_report(report, verbose=args.verbose))
    if args.json:
        import json
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=1))
    if report.errors:
        return 2
    return 0 if report.share >= args.min_share else 1


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lrgrade", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--solutions", type=Path, default=None,
                        help="the instructor's sources (default: $LRGRADE_SOLUTIONS, else solutions/)")
    parser.add_argument("--course", type=Path, default=None,
                        help="the student notebooks (default: $LRGRADE_COURSE, else course/)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build solutions/*/*.ipynb from the .py sources").set_defaults(func=cmd_build)
    p = sub.add_parser("release", help="regenerate course/ from solutions/")
    p.add_argument("--out", help="where to write (default: course/)")
    p.set_defaults(func=cmd_release)
    p = sub.add_parser("check", help="grade one notebook locally and explain every test")
    p.add_argument("notebook")
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("grade", help="autograde a class: SUBMISSIONS/<student>/**/<notebook>.ipynb")
    p.add_argument("submissions")
    p.add_argument("--out", help="output folder (default: SUBMISSIONS-graded next to it)")
    p.add_argument("--assignment", action="append", help="grade only this assignment (repeatable)")
    p.add_argument("--jobs", "-j", type=_positive, default=os.cpu_count() or 1,
                   help="worker processes, each grading one student at a time (default: the CPU count)")
    p.add_argument("--into", metavar="COURSE_DIR",
                   help="also write the results into this nbgrader course directory (the one the exchange "
                        "collected SUBMISSIONS into): its gradebook, autograded/ and feedback/")
    p.add_argument("--force", action="store_true",
                   help="regrade everyone (default: keep results whose submission and tests are unchanged)")
    p.add_argument("--sandbox", choices=("auto", "bwrap", "limits-only"), default="auto",
                   help="auto: bubblewrap if it works here, else limits only with a warning (default); "
                        "bwrap: refuse to grade without it; limits-only: the limits, no sandbox")
    p.add_argument("--memory-mb", type=int, default=Limits.memory_mb,
                   help=f"address-space limit of a student's kernel (default {Limits.memory_mb})")
    p.set_defaults(func=cmd_grade)
    p = sub.add_parser("course-dir", help="write an nbgrader course directory for formgrader/exchange")
    p.add_argument("directory")
    p.set_defaults(func=cmd_course_dir)
    p = sub.add_parser("classroom", help="a JupyterHub classroom on this machine (as root)")
    p.add_argument("action", choices=("setup", "start", "grade", "remove"))
    p.add_argument("assignment", nargs="?", help="for grade: the assignment to grade")
    p.add_argument("--root", default="/srv/lr-schedules", help="the classroom's folder (default /srv/lr-schedules)")
    p.add_argument("--instructor", default="instructor", help="setup: the instructor's account (default instructor)")
    p.add_argument("--students", type=lambda text: [s for s in text.split(",") if s],
                   default=["student1", "student2", "student3"],
                   help="setup: the students' accounts, comma-separated (default student1,student2,student3)")
    p.add_argument("--port", type=int, default=8000,
                   help="setup: the hub's port on 127.0.0.1 (default 8000); it also uses the next two")
    p.add_argument("--jobs", "-j", type=_positive, default=None, help="grade: worker processes")
    p.set_defaults(func=cmd_classroom)
    p = sub.add_parser("mutate", help="mutation check: do the graded tests catch small bugs in the solutions?")
    p.add_argument("assignment", nargs="*", help="NN-topic or a path to a source (default: all of solutions/)")
    p.add_argument("--min-share", type=float, default=DEFAULT_MIN_SHARE,
                   help=f"exit 1 if fewer of the mutants are caught (default {DEFAULT_MIN_SHARE:g})")
    p.add_argument("--time-limit", type=float, default=DEFAULT_TIME_LIMIT,
                   help=f"seconds per mutant (default {DEFAULT_TIME_LIMIT:g})")
    p.add_argument("--no-cache", action="store_true",
                   help="check every notebook again, even one whose inputs did not change since a kept report")
    p.add_argument("--jobs", "-j", type=_positive, default=None,
                   help="worker processes, each checking one notebook at a time (default: the CPU count)")
    p.add_argument("--json", help="also write the full results to this file")
    p.add_argument("-v", "--verbose", action="store_true", help="list caught mutants too, and why")
    p.set_defaults(func=cmd_mutate)
    for p in (sub.choices["check"], sub.choices["grade"]):
        p.add_argument("--cell-cpu", type=float, default=None,
                       help="CPU seconds per cell (default: autograder/nbgrader_config.py, 60)")
        p.add_argument("--cell-timeout", type=int, default=None,
                       help="wall-clock backstop per cell, in seconds, for code that waits without "
                            "computing (default: autograder/nbgrader_config.py, 600)")
        p.add_argument("--notebook-timeout", type=int, default=DEFAULT_NOTEBOOK_TIMEOUT,
                       help=f"wall-clock backstop per notebook, in seconds (default {DEFAULT_NOTEBOOK_TIMEOUT})")
    args = parser.parse_args(argv)
    # Read here, when the command runs, never at import: a caller in this process (a test)
    # can change them between two calls.
    args.solutions = Path(args.solutions or os.environ.get("LRGRADE_SOLUTIONS") or SOLUTIONS).resolve()
    args.course = Path(args.course or os.environ.get("LRGRADE_COURSE") or COURSE).resolve()
    try:
        return args.func(args)
    except SourceError as err:
        print(f"lrgrade: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
