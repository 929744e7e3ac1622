"""Time `lrgrade grade` on a synthetic class: one worker, then N, and the ratio.

Not collected by pytest. Run it with ``bin/benchmark-grading`` (sets up ``.venv``
first) or ``.venv/bin/python tests/benchmark_grading.py``. Options::

    --students N     class size (default 100)
    --jobs N         workers for the parallel run (default: the number of CPU cores)
    --keep DIR       keep the class and both outputs in DIR (default: a temporary folder)

The class hands in notebook 00 (tests/adversarial.py builds it), cycling through:
40% solved, 20% partial (passes the visible test, fails the hidden one), 20% blank, and
20% broken (malformed JSON, a kernel that exits, an empty folder, an infinite loop, a
tampered test). It is graded twice, in the sandbox when there is one, with
``--cell-cpu 15`` and ``--force`` (no reuse of results): with ``--jobs 1``, then with
``--jobs N``. It prints both times, per student, the ratio, and whether the two CSVs agree.
"""
from __future__ import annotations

import argparse
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


def grade(subs: Path, out: Path, jobs: int) -> float:
    env = nbgrader_env()
    cmd = [sys.executable, "-m", "lrgrade.cli", "grade", str(subs), "--out", str(out), "--assignment",
           adversarial.A, "--cell-cpu", "15", "--force", "--jobs", str(jobs)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"grading failed:\n{proc.stdout}\n{proc.stderr}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--keep", help="keep the class and the outputs here")
    args = parser.parse_args()
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="lrgrade-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    subs = base / "class"
    if subs.exists():
        shutil.rmtree(subs)
    counts = build_class(subs, args.students)
    problem = bwrap_problem()
    print(f"class: {args.students} students of {adversarial.A}: "
          + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; "
          f"sandbox: {'bubblewrap' if not problem else 'none (' + problem + ')'}")
    one = grade(subs, base / "graded-1", 1)
    print(f"--jobs 1: {one:7.1f} s  ({one / args.students:.2f} s per student)  load {os.getloadavg()[0]:.2f}")
    many = grade(subs, base / f"graded-{args.jobs}", args.jobs)
    print(f"--jobs {args.jobs}: {many:7.1f} s  ({many / args.students:.2f} s per student)  "
          f"load {os.getloadavg()[0]:.2f}")
    print(f"speed-up with {args.jobs} workers: {one / many:.2f}x")
    same = (base / "graded-1" / "grades.csv").read_text() == (base / f"graded-{args.jobs}" / "grades.csv").read_text()
    print(f"grades.csv identical for 1 and {args.jobs} workers: {'yes' if same else 'NO'}")
    if not args.keep:
        shutil.rmtree(base)


if __name__ == "__main__":
    main()
