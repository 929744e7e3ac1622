"""Grade a whole class: in parallel, sandboxed, resumable, into one gradebook and one CSV.

Layout of the output folder ``OUT``::

    OUT/grades.csv                      one row per student and assignment
    OUT/feedback/<student>/<A>.html     what to send back (no hidden tests in it)
    OUT/.nbgrader/                      the merged nbgrader course: gradebook.db, submitted/,
                                        autograded/ (for formgrader and manual grading)
    OUT/.template/                      the course every worker copies (source, release, gradebook)
    OUT/.work/<student>/                one student's private course, and result.json when done

Each student is graded by one worker in a private copy of the course (its own
gradebook), so parallel workers never write to the same SQLite file. When every student
is done, their results are merged, one after the other, into ``OUT/.nbgrader``. A
student's ``result.json`` is written last and atomically, and records a key made of the
submission's bytes, the tests and the settings: a rerun (after an interruption, or of
the same folder) skips the students whose key still matches, and the merge rebuilds the
gradebook and CSV from all the results, so they come out the same.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import queue
import re
import shutil
import tempfile
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import nbformat
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.utils import parse_utc
from sqlalchemy.exc import SAWarning

from . import scan
from .nbgrader_course import NbgraderCourse, NotebookResult, code_digest, course_config, last_error
from .notebooks import NotebookError, assignment_of, read_any
from .preprocessors import CPU_LIMIT, DISK_LIMIT, KERNEL_DIED, WALL_LIMIT, error_outputs
from .sandbox import UID_BASE, Limits, kill_user

RESULT_VERSION = 2


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")


def printable(text, limit: int = 300) -> str:
    """Text from a student's run, safe for a terminal and a CSV cell: control characters
    (colours, cursor moves, newlines, bidirectional overrides) shown as escapes, and cut."""
    text = _CONTROL.sub(lambda m: "\\x%02x" % ord(m.group()) if ord(m.group()) < 256
                        else "\\u%04x" % ord(m.group()), str(text))
    return text if len(text) <= limit else text[:limit] + "..."


@dataclass
class Row:
    """One student's result for one assignment, as it goes into grades.csv."""
    student: str
    assignment: str
    score: float
    max_score: float
    pending_manual: float
    status: str
    flags: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # "test_id (why)" for the report line
    errors: list[str] = field(default_factory=list)  # errors raised in the student's own cells

    @classmethod
    def from_result(cls, r: NotebookResult, flags: list[str], errors: list[str] | None = None) -> "Row":
        failed = [f"{t.grade_id} ({printable(t.message, 80) or 'failed'})" for t in r.tests
                  if not t.passed and not t.manual]
        return cls(printable(r.student), r.assignment, r.score, r.max_score, r.pending_manual, printable(r.status),
                   [printable(f) for f in flags], failed, [printable(e, 120) for e in errors or []])

    def line(self) -> str:
        detail = self.status if self.status != "graded" else (
            f"failed: {'; '.join(self.failed)}" if self.failed else "all passed")
        if self.errors:
            detail += f"; {'; '.join(self.errors)}"
        if self.pending_manual:
            detail += f"; {self.pending_manual:g} points await manual grading"
        if self.flags:
            detail += f"; FLAGGED: {'; '.join(self.flags)}"
        return f"  {self.student:<20} {self.assignment:<28} {self.score:>5g}/{self.max_score:<4g} {detail}"


@dataclass
class Settings:
    cell_timeout: int | None     # wall-clock backstop per cell
    notebook_timeout: int        # wall-clock backstop per notebook
    limits: Limits  # mode and limits; the uid is set per worker
    cell_cpu: float | None = None  # CPU seconds per cell

    def key(self) -> str:
        return json.dumps({"cell": self.cell_timeout, "notebook": self.notebook_timeout, "cpu": self.cell_cpu,
                           "limits": {k: v for k, v in asdict(self.limits).items() if k != "uid"}}, sort_keys=True)


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()


def folder_digest(folder: Path) -> bytes:
    """The names and bytes of every file under ``folder``, in a fixed order."""
    items = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            items.append(str(path.relative_to(folder)).encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
        elif path.is_symlink():
            items.append(str(path.relative_to(folder)).encode() + b"\0->" + os.readlink(path).encode())
    return b"\n".join(items)


# What nbgrader's exchange leaves beside a collected notebook (submitted/<student>/<A>/):
# the submission time (late penalties) and the secret that names the student's feedback
# when it is released. Plain text, checked, and nothing else of a submission's files.
RECEIPT_FILES = ("timestamp.txt", "submission_secret.txt")


def exchange_receipt(folder: Path) -> dict[str, str]:
    """The exchange's receipt files in ``folder`` that are well formed (see RECEIPT_FILES)."""
    receipt = {}
    for name in RECEIPT_FILES:
        path = folder / name
        if path.is_symlink() or not path.is_file() or path.stat().st_size > 200:
            continue
        text = path.read_text(errors="replace")
        try:
            if name == "timestamp.txt":
                parse_utc(text.strip())
            elif not re.fullmatch(r"[0-9a-fA-F]{8,}", text.strip()):  # the size check bounds it
                continue
        except (ValueError, OverflowError):
            continue
        receipt[name] = text
    return receipt


def collect(student_dir: Path, all_assignments: list[str]) -> tuple[dict[str, Path | NotebookError], list[str]]:
    """Each assignment's notebook in a student's folder (or why it cannot be read), and
    notes about files that belong to no assignment or to another one."""
    found: dict[str, Path | NotebookError] = {}
    notes: list[str] = []
    notebooks = sorted(p for p in student_dir.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    inside = student_dir.resolve()
    for path in notebooks:
        if path.is_symlink() or inside not in path.resolve().parents:
            # It could point at anything the grader can read (another student's work,
            # the instructor's solutions): only files really in the folder are graded.
            notes.append(f"{path.name} is a symbolic link: not graded (hand in the notebook itself)")
            continue
        try:
            nb, error = read_any(path), None
        except NotebookError as err:
            nb, error = None, err
        try:
            a = assignment_of(nb, path, all_assignments)
        except NotebookError as err:
            notes.append(str(error or err))
            continue
        if a != Path(path).stem.split(" ")[0] and Path(path).stem.split(" ")[0] in all_assignments:
            notes.append(f"{path.name} holds the notebook of {a}")
        if isinstance(found.get(a), Path):
            notes.append(f"{path.name}: a second notebook for {a}; graded {found[a].name}")
            continue
        found[a] = error or path
    return found, notes


def read_run(autograded: Path) -> tuple[list[str], list[str]]:
    """From the executed notebook: the limits the run hit (for the flags column), and the
    errors raised in the student's own cells (for the report line)."""
    if not autograded.is_file():
        return [], []
    nb = nbformat.read(str(autograded), as_version=4)
    limits, errors = [], []
    for index, cell in enumerate(nb.cells):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        name = meta.get("grade_id") or f"#{index}"
        test = meta.get("grade") and not meta.get("solution")
        for out in error_outputs(cell):
            ename = out.get("ename", "")
            if ename == CPU_LIMIT:
                limits.append(f"CPU time limit hit in {name}")
            elif ename == WALL_LIMIT:
                limits.append(f"wall-clock backstop hit in {name}")
            elif ename == DISK_LIMIT:
                limits.append(f"disk limit hit in {name}")
            elif ename == KERNEL_DIED and not test:
                errors.append(f"the kernel died in cell {name}")
            elif not test and ename != KERNEL_DIED:
                errors.append(f"cell {name} raised {ename or 'an error'}")
    return list(dict.fromkeys(limits)), errors


def _student_sources(nb: nbformat.NotebookNode) -> list[str]:
    """The answer cells a submission contributes: the only code of the student's that runs."""
    return [c.source for c in nb.cells if c.cell_type == "code" and isinstance(c.get("source"), str)
            and c.get("metadata", {}).get("nbgrader", {}).get("solution")]


class ClassGrader:
    def __init__(self, submissions: Path, out: Path, sources: dict[str, nbformat.NotebookNode],
                 all_assignments: list[str], settings: Settings, jobs: int = 1,
                 log: Callable[[str], None] = print):
        self.submissions, self.out = Path(submissions).resolve(), Path(out).resolve()
        self.sources, self.all_assignments = sources, all_assignments
        self.settings, self.jobs, self.log = settings, max(1, jobs), log
        # The key of a result: the tests, the settings, and the grader's own code, with the
        # course's code that the kernel reads and that judges results (lrcourse): a new
        # verdict rule or config regrades everyone.
        config = course_config()
        self.protected_names = scan.StaticScan(config=config).protected_names
        self.tests_key = _digest(json.dumps(sources, sort_keys=True).encode(), settings.key().encode(),
                                 code_digest(config))
        self._print = threading.Lock()

    # -- the course every worker copies ---------------------------------------------------
    def template(self) -> NbgraderCourse:
        root = self.out / ".template"
        stamp = root / "key.txt"
        course = NbgraderCourse(root, cell_timeout=self.settings.cell_timeout, cell_cpu=self.settings.cell_cpu)
        if stamp.is_file() and stamp.read_text() == self.tests_key and (root / "gradebook.db").is_file():
            return course
        if root.exists():
            shutil.rmtree(root)
        course.create(self.sources)
        stamp.write_text(self.tests_key)
        return course

    # -- one student ----------------------------------------------------------------------
    def student_key(self, sdir: Path) -> str:
        return _digest(self.tests_key.encode(), folder_digest(sdir))

    def load_result(self, student: str, key: str) -> list[Row] | None:
        path = self.out / ".work" / student / "result.json"
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if data.get("version") != RESULT_VERSION or data.get("key") != key:
            return None
        return [Row(**row) for row in data["rows"]]

    def grade_student(self, template: NbgraderCourse, sdir: Path, uid: int) -> list[Row]:
        student, key = sdir.name, self.student_key(sdir)
        limits = replace(self.settings.limits, uid=uid)
        work = template.clone(self.out / ".work" / student, env=limits.to_env())
        found, notes = collect(sdir, self.all_assignments)
        rows = []
        try:
            for a in self.sources:
                rows.append(self._grade_one(work, student, a, found.get(a), notes))
        finally:
            if limits.mode != "none":
                kill_user(limits.uid)  # anything the student's code left running
                _remove_run_dirs(limits.uid)
        result = {"version": RESULT_VERSION, "key": key, "rows": [asdict(r) for r in rows]}
        tmp = work.root / "result.json.tmp"
        tmp.write_text(json.dumps(result, indent=1))
        os.replace(tmp, work.root / "result.json")  # written last: its presence means "done"
        return rows

    def _grade_one(self, course: NbgraderCourse, student: str, a: str, entry, notes: list[str]) -> Row:
        if entry is None:
            why = "missing: no notebook for this assignment" + (f" ({'; '.join(notes)})" if notes else "")
            return Row.from_result(course.result(student, a, why), [])
        if isinstance(entry, NotebookError):
            return Row.from_result(course.result(student, a, f"not graded: {entry}"), [])
        nb = read_any(entry)
        course.submit(student, a, nb, exchange_receipt(entry.parent))
        status = course.autograde(student, a, timeout=self.settings.notebook_timeout)
        result = course.result(student, a, status)
        autograded = course.root / "autograded" / student / a / f"{a}.ipynb"
        limits, errors = read_run(autograded)
        flags = limits + scan.static_flags(_student_sources(nb), self.protected_names)
        return Row.from_result(result, flags, errors)

    # -- the class --------------------------------------------------------------------------
    def run(self, force: bool = False) -> list[Row]:
        students = sorted(p for p in self.submissions.iterdir() if p.is_dir() and not p.name.startswith("."))
        template = self.template()
        results: dict[str, list[Row]] = {}
        todo = []
        for sdir in students:
            rows = None if force else self.load_result(sdir.name, self.student_key(sdir))
            if rows is None:
                todo.append(sdir)
            else:
                results[sdir.name] = rows
        if results:
            self.log(f"resuming: {len(results)} students already graded with the same submission and tests")
        uids: queue.Queue[int] = queue.Queue()
        locks = claim_sandbox_uids(self.jobs)  # held until this run ends
        for uid in locks:
            uids.put(uid)

        def work(sdir: Path) -> list[Row]:
            uid = uids.get()
            try:
                return self.grade_student(template, sdir, uid)
            except Exception as err:  # a fault of the grader's, not the student's: report it, go on
                why = f"not graded: the grader failed ({type(err).__name__}: {err}); run the command again"
                return [Row.from_result(template.result(sdir.name, a, why), []) for a in self.sources]
            finally:
                uids.put(uid)

        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            futures = {pool.submit(work, sdir): sdir.name for sdir in todo}
            for future in as_completed(futures):
                rows = future.result()
                results[futures[future]] = rows
                with self._print:
                    for row in rows:
                        self.log(row.line())
        for handle in locks.values():
            handle.close()
        rows = [row for s in sorted(results) for row in results[s]]
        self.merge(template, sorted(results))
        return rows

    def merge(self, template: NbgraderCourse, students: list[str]) -> None:
        """One nbgrader course with every student: gradebook, submitted/, autograded/, feedback."""
        main_root = self.out / ".nbgrader"
        for stale in self.out.glob(".nbgrader-*"):  # left by a run interrupted while merging
            shutil.rmtree(stale, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=".nbgrader-", dir=self.out))
        main = template.clone(staging)
        feedback = self.out / "feedback"
        if feedback.exists():
            shutil.rmtree(feedback)
        with Gradebook(f"sqlite:///{main.root / 'gradebook.db'}") as dst, warnings.catch_warnings():
            # nbgrader's add_submission trips SQLAlchemy's autoflush warning; it does so in
            # nbgrader's own autograde as well, and the rows are written correctly.
            warnings.simplefilter("ignore", SAWarning)
            for student in students:
                work = self.out / ".work" / student
                _copy_gradebook(work / "gradebook.db", dst, student)
                for part in ("submitted", "autograded"):
                    if (work / part / student).is_dir():
                        shutil.copytree(work / part / student, main.root / part / student)
        # Feedback for the whole class at once: one nbgrader process per assignment
        # instead of one per student (nbgrader's start-up is most of its cost).
        for a in self.sources:
            if any((main.root / "autograded").glob(f"*/{a}/{a}.ipynb")):
                proc = main.run("generate_feedback", a, "--force", timeout=max(300, 10 * len(students)))
                if proc.returncode != 0:
                    self.log(f"warning: nbgrader generate_feedback {a} reported an error; some feedback "
                             f"pages may be missing: {last_error(proc.stderr)}")
        for html in sorted((main.root / "feedback").glob("*/*/*.html")):
            student, a = html.parent.parent.name, html.parent.name
            (feedback / student).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(html, feedback / student / f"{a}.html")
        main._write_config(main_root)
        if main_root.exists():
            shutil.rmtree(main_root)
        os.replace(staging, main_root)

    def publish(self, course_root: Path, students: list[str]) -> None:
        """Put these students' results into an nbgrader course directory (the one the
        exchange collected them into): its gradebook, ``autograded/`` and ``feedback/``, so
        that formgrader shows them and ``nbgrader release_feedback`` returns them. Files get
        the course directory's owner, as if its instructor had graded."""
        merged, course_root = self.out / ".nbgrader", Path(course_root).resolve()
        owner = course_root.stat()
        _no_links_below(course_root, course_root / "gradebook.db")
        with Gradebook(f"sqlite:///{course_root / 'gradebook.db'}") as dst, warnings.catch_warnings():
            warnings.simplefilter("ignore", SAWarning)
            for student in students:
                _copy_gradebook(merged / "gradebook.db", dst, student)
        for part in ("autograded", "feedback"):
            for folder in sorted((merged / part).glob("*/*")):
                if folder.parent.name not in students or folder.name not in self.sources:
                    continue
                dest = course_root / part / folder.parent.name / folder.name
                _no_links_below(course_root, dest)
                if dest.exists():
                    shutil.rmtree(dest)
                shutil.copytree(folder, dest)
                if os.getuid() == 0:
                    for path in [dest.parent.parent, dest.parent, dest, *dest.rglob("*")]:
                        os.chown(path, owner.st_uid, owner.st_gid, follow_symlinks=False)


def _no_links_below(root: Path, path: Path) -> None:
    """Refuse to write ``path`` if it, or a folder between it and ``root``, is a symbolic link:
    run as root for a course folder that someone else owns, a link could send the write anywhere."""
    for part in [path, *path.parents]:
        if part == root:
            return
        if part.is_symlink():
            raise ValueError(f"{part} is a symbolic link: results are not written through it")
    raise ValueError(f"{path} is not inside {root}")


def claim_sandbox_uids(n: int) -> dict:
    """``n`` sandbox users no other grading run on this machine is using, each held by an
    exclusive lock on a file in the temporary folder (released when this process ends,
    however it ends). Two runs must not share a user: each kills its user's leftover
    processes after every student."""
    claimed = {}
    for uid in range(UID_BASE, UID_BASE + 4096):
        handle = open(Path(tempfile.gettempdir()) / f"lrgrade-sandbox-user-{uid}.lock", "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        claimed[uid] = handle
        if len(claimed) == n:
            return claimed
    raise RuntimeError("no free sandbox user: too many grading runs at once on this machine")


def _remove_run_dirs(uid: int) -> None:
    """Kernel run folders left behind by a kernel that was killed (a notebook timeout)."""
    for path in Path(tempfile.gettempdir()).glob("lrgrade-kernel-*"):
        try:
            if path.stat().st_uid == uid:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            pass


def _copy_gradebook(src_db: Path, dst: Gradebook, student: str) -> None:
    """Copy one student's submissions and scores from a worker's gradebook into ``dst``."""
    if not src_db.is_file():
        return
    with Gradebook(f"sqlite:///{src_db}") as src:
        try:
            who = src.find_student(student)
        except MissingEntry:
            return
        dst.update_or_create_student(student, first_name=who.first_name, last_name=who.last_name,
                                     email=who.email, lms_user_id=who.lms_user_id)
        for sub in who.submissions:
            a = sub.assignment.name
            dst.update_or_create_submission(a, student, timestamp=sub.timestamp, extension=sub.extension)
            for nb in sub.notebooks:
                target = dst.find_submission_notebook(nb.name, a, student)
                target.flagged = nb.flagged
                target.late_submission_penalty = nb.late_submission_penalty
                for g in nb.grades:
                    t = dst.find_grade(g.name, nb.name, a, student)
                    t.auto_score, t.manual_score, t.extra_credit = g.auto_score, g.manual_score, g.extra_credit
                    t.needs_manual_grade = g.needs_manual_grade
                for c in nb.comments:
                    t = dst.find_comment(c.name, nb.name, a, student)
                    t.auto_comment, t.manual_comment = c.auto_comment, c.manual_comment
        dst.db.commit()
