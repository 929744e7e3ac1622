"""A whole class cycle on a real JupyterHub, with nbgrader's exchange and local accounts.

`lrgrade classroom setup` makes one instructor and two students (system accounts) and the
hub's config; the hub runs as root and starts each person's server as that person. The
test drives everything over HTTP, through the hub's proxy, as a browser session would:
the instructor releases and collects with formgrader's API, each student fetches, edits
and submits through their own server's assignment list, `lrgrade classroom grade` grades
in the sandbox, the instructor releases feedback, and a student fetches it. Needs root,
bubblewrap, npm (bin/setup-hub) and free loopback ports; CI has all of them.
"""
from __future__ import annotations

import csv
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "autograder"))
from lrgrade.classroom import API_TOKEN_ENV, PROXY  # noqa: E402
from lrgrade.notebooks import build_notebook, source_path  # noqa: E402

ASSIGNMENT = "00-start-here"  # the shortest notebook: the cycle, not the course, is under test
INSTRUCTOR, ALICE, BOB = "lrt-teacher", "lrt-alice", "lrt-bob"
COURSE_ID = "lr-schedules"

def _private_folder_above(path: Path) -> Path | None:
    """The first folder above ``path`` that other accounts cannot pass through, if any."""
    for folder in [path, *path.parents]:
        if not folder.stat().st_mode & 0o001:
            return folder
    return None


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(_private_folder_above(ROOT) is not None,
                       reason=f"the repository is in a private folder ({_private_folder_above(ROOT)}): the "
                              "classroom's accounts could not read the course"),
    pytest.mark.skipif(os.getuid() != 0, reason="the classroom needs root (accounts, a hub that runs servers as them)"),
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed (bin/setup-sandbox)"),
    pytest.mark.skipif(not PROXY.is_file(), reason="JupyterHub's proxy is not installed (bin/setup-hub)"),
]


def _free_ports() -> int:
    """A port that is free on 127.0.0.1, with the two after it (the hub uses all three)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            for p in (port, port + 1, port + 2):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
            return port
        except OSError:
            continue
    raise RuntimeError("no three free ports in a row on 127.0.0.1")


def lrgrade(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(ROOT / ".venv" / "bin" / "lrgrade"), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)
    assert proc.returncode == 0, f"lrgrade {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def readable_by(name: str, path: Path) -> bool:
    """Whether the account ``name`` can list or read ``path`` (which exists)."""
    assert path.exists(), path
    who = pwd.getpwnam(name)
    # Through a shell: setpriv itself still resolves the program's path with root's rights.
    proc = subprocess.run(["setpriv", f"--reuid={who.pw_uid}", f"--regid={who.pw_gid}", "--init-groups",
                           "/bin/sh", "-c", 'ls -- "$1" && cat -- "$1"/* ', "sh", str(path)],
                          capture_output=True, text=True, timeout=60, cwd="/")
    return proc.returncode == 0 or bool(proc.stdout.strip())


class Hub:
    """A running classroom hub, and an HTTP session per person."""

    def __init__(self, root: Path, port: int):
        self.root, self.url = root, f"http://127.0.0.1:{port}"
        self.token = secrets.token_hex(32)
        env = dict(os.environ, **{API_TOKEN_ENV: self.token})
        self.log = open(root / "hub.log", "w")
        self.proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "lrgrade"), "classroom", "start", "--root",
                                      str(root)], env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.api = requests.Session()
        self.api.headers["Authorization"] = f"token {self.token}"
        self.wait(lambda: self.api.get(f"{self.url}/hub/api/").ok, "the hub to answer", 120)
        self.people: dict[str, requests.Session] = {}

    def wait(self, ready, what: str, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"the hub exited:\n{self.tail()}"
            try:
                if ready():
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what}:\n{self.tail()}")

    def tail(self) -> str:
        self.log.flush()
        return (self.root / "hub.log").read_text()[-4000:]

    def start_server(self, name: str) -> requests.Session:
        """Start ``name``'s server and return a session that acts as them (their own token)."""
        reply = self.api.post(f"{self.url}/hub/api/users/{name}/tokens", json={"note": "classroom test"})
        assert reply.status_code == 201, reply.text
        person = requests.Session()
        person.headers["Authorization"] = f"token {reply.json()['token']}"
        reply = self.api.post(f"{self.url}/hub/api/users/{name}/server")
        assert reply.status_code in (201, 202), f"{reply.text}\n{self.tail()}"
        self.wait(lambda: self.api.get(f"{self.url}/hub/api/users/{name}").json()["servers"].get("", {})
                  .get("ready"), f"{name}'s server", 180)
        self.people[name] = person
        return person

    def post(self, name: str, path: str, **data) -> dict | list:
        reply = self.people[name].post(f"{self.url}/user/{name}/{path}", data=data, timeout=300)
        assert reply.ok, f"POST /user/{name}/{path}: {reply.status_code} {reply.text[:2000]}"
        return reply.json()

    def assignments(self, name: str, action: str) -> list[dict]:
        """A student's action in the assignment list (fetch, submit, fetch_feedback); what it then lists."""
        reply = self.post(name, f"assignments/{action}", course_id=COURSE_ID, assignment_id=ASSIGNMENT)
        assert reply.get("success"), f"{name}: {action} failed: {reply}"
        return reply["value"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # the hub stops every server and its proxy
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                pass
        try:  # whatever is left of its session (a proxy whose hub crashed)
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.log.close()


def _solved(released: dict) -> dict:
    """The released notebook with the solution's answer cells, as a student would fill it in."""
    solution = build_notebook(source_path(ASSIGNMENT))
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in solution.cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    for cell in released["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell["source"] = answers[grade_id]
    return released


@pytest.fixture
def classroom():
    root = Path(tempfile.mkdtemp(prefix="lrclassroom-", dir="/tmp"))
    root.chmod(0o755)
    try:
        lrgrade("classroom", "setup", "--root", str(root), "--instructor", INSTRUCTOR,
                "--students", f"{ALICE},{BOB}", "--port", str(_free_ports()))
        yield root
    finally:
        subprocess.run([str(ROOT / ".venv" / "bin" / "lrgrade"), "classroom", "remove", "--root", str(root)],
                       capture_output=True, timeout=120)
        shutil.rmtree(root, ignore_errors=True)


def test_a_class_cycle_on_jupyterhub(classroom):
    started = time.monotonic()
    room = json.loads((classroom / "classroom.json").read_text())
    teacher_home, alice_home, bob_home = (Path(pwd.getpwnam(n).pw_dir) for n in (INSTRUCTOR, ALICE, BOB))
    course = teacher_home / COURSE_ID
    exchange = classroom / "exchange" / COURSE_ID
    hub = Hub(classroom, room["port"])
    try:
        for name in (INSTRUCTOR, ALICE, BOB):
            hub.start_server(name)

        # People log in with their account's password (PAM), from accounts.txt.
        passwords = dict(line.split() for line in (classroom / "accounts.txt").read_text().splitlines())
        browser = requests.Session()
        browser.get(f"{hub.url}/hub/login")
        form = {"username": BOB, "_xsrf": browser.cookies.get("_xsrf")}
        assert browser.post(f"{hub.url}/hub/login", data=form | {"password": "wrong"}).status_code == 403
        reply = browser.post(f"{hub.url}/hub/login", data=form | {"password": passwords[BOB]})
        assert reply.ok and reply.url.startswith(f"{hub.url}/user/{BOB}/"), (reply.status_code, reply.url)

        # Students have no formgrader; the instructor's formgrader sees the course.
        reply = hub.people[ALICE].get(f"{hub.url}/user/{ALICE}/formgrader/api/assignments")
        assert reply.status_code == 404, "a student's server must not serve formgrader"
        assignments = hub.people[INSTRUCTOR].get(f"{hub.url}/user/{INSTRUCTOR}/formgrader/api/assignments").json()
        assert ASSIGNMENT in [a["name"] for a in assignments]

        # 1. The instructor releases the assignment to the exchange.
        assert hub.post(INSTRUCTOR, f"formgrader/api/assignment/{ASSIGNMENT}/release")["success"]
        assert (exchange / "outbound" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").is_file()

        # 2. Each student fetches it into their home, works on it and submits it.
        for name, home in ((ALICE, alice_home), (BOB, bob_home)):
            listed = hub.assignments(name, "fetch")
            assert any(a["assignment_id"] == ASSIGNMENT and a["status"] == "fetched" for a in listed), listed
            fetched = home / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
            assert fetched.is_file() and fetched.stat().st_uid == pwd.getpwnam(name).pw_uid
        contents = f"{hub.url}/user/{ALICE}/api/contents/{ASSIGNMENT}/{ASSIGNMENT}.ipynb"
        model = hub.people[ALICE].get(contents).json()
        reply = hub.people[ALICE].put(contents, json={"type": "notebook", "format": "json",
                                                      "content": _solved(model["content"])})
        assert reply.ok, reply.text
        for name in (ALICE, BOB):
            listed = hub.assignments(name, "submit")
            assert any(a["assignment_id"] == ASSIGNMENT and a["status"] == "submitted" for a in listed), listed

        # Students cannot read each other's work, what was handed in, or the instructor's course.
        private = [alice_home, teacher_home, course / "source", exchange / "inbound"]
        seen = [str(path) for path in private if readable_by(BOB, path)]
        assert not seen, f"{BOB} can read {seen}"

        # 3. Nothing is graded before it is collected. The instructor collects; root grades in
        #    the sandbox, into the instructor's course.
        early = subprocess.run([str(ROOT / ".venv" / "bin" / "lrgrade"), "classroom", "grade", ASSIGNMENT,
                                "--root", str(classroom)], capture_output=True, text=True, timeout=120)
        assert early.returncode == 2 and "collect it first" in early.stderr, early.stderr
        assert hub.post(INSTRUCTOR, f"formgrader/api/assignment/{ASSIGNMENT}/collect")["success"]
        for name in (ALICE, BOB):
            folder = course / "submitted" / name / ASSIGNMENT
            assert (folder / f"{ASSIGNMENT}.ipynb").is_file() and (folder / "timestamp.txt").is_file()
        # formgrader's own Autograde would run the student's code as the instructor: refused.
        reply = hub.people[INSTRUCTOR].post(
            f"{hub.url}/user/{INSTRUCTOR}/formgrader/api/submission/{ASSIGNMENT}/{ALICE}/autograde").json()
        said = reply.get("log", "") + reply.get("error", "")
        assert not reply["success"] and "only in the sandbox" in said, said[-3000:]
        assert not list((course / "autograded").rglob("*.ipynb")), "formgrader graded outside the sandbox"
        graded = time.monotonic()
        report = lrgrade("classroom", "grade", ASSIGNMENT, "--root", str(classroom)).stdout
        grading_s = time.monotonic() - graded
        assert "sandbox: bubblewrap" in report, report
        rows = {r["student"]: r for r in csv.DictReader((classroom / "graded" / "grades.csv").open())}
        assert (rows[ALICE]["score"], rows[BOB]["score"]) == ("1", "0"), rows
        # The instructor's formgrader shows the scores, from their own gradebook.
        for name, score in ((ALICE, 1), (BOB, 0)):
            sub = hub.people[INSTRUCTOR].get(
                f"{hub.url}/user/{INSTRUCTOR}/formgrader/api/submission/{ASSIGNMENT}/{name}").json()
            assert sub["score"] == score and sub["autograded"], sub
        teacher = pwd.getpwnam(INSTRUCTOR).pw_uid
        for path in [course / "gradebook.db", *(course / "autograded").rglob("*"), *(course / "feedback").rglob("*")]:
            assert path.stat().st_uid == teacher, f"{path} should belong to the instructor"

        # 4. The instructor releases the feedback, and each student fetches their own.
        assert hub.post(INSTRUCTOR, f"formgrader/api/assignment/{ASSIGNMENT}/release_feedback")["success"]
        for name, home, score in ((ALICE, alice_home, "1"), (BOB, bob_home, "0")):
            hub.assignments(name, "fetch_feedback")
            pages = list((home / ASSIGNMENT / "feedback").glob(f"*/{ASSIGNMENT}.html"))
            assert len(pages) == 1, f"{name} got {pages}"
            text = pages[0].read_text()
            assert f"Score: {score}.0 / 1.0" in text or f"{score} / 1" in text, text[:3000]
            assert "HIDDEN TESTS" not in text
        cycle_s = time.monotonic() - started
        print(f"\nclassroom cycle, 2 students: {cycle_s:.1f} s in all, of which grading {grading_s:.1f} s")
    finally:
        hub.stop()
    for name in (INSTRUCTOR, ALICE, BOB):
        left = subprocess.run(["pgrep", "-u", name], capture_output=True, text=True).stdout.split()
        assert not left, f"processes of {name} still running after the hub stopped: {left}"
