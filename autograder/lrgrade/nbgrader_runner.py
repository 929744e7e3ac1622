"""nbgrader commands run by a long-lived nbgrader process, one after another.

Starting nbgrader took about 5 s of CPU (its imports, and a Python start-up of the
``alembic`` command for each new gradebook), more than a short notebook takes to grade,
and ``python -m nbgrader`` paid it for every command. A ``Runner`` starts one process that
imports nbgrader once and then runs each command in process, the way nbgrader's own tests
run its apps (``nbgrader.tests.run_nbgrader``). It is still a process of its own: a
command that hangs past its timeout is ended by killing that process (and the kernel it
started), and the next command starts a fresh one.

Requests and replies travel on two private pipes, never on the standard streams, which
the kernels inherit: nothing a student's code writes can pass for a reply.

    python -m lrgrade.nbgrader_runner REQUEST_FD REPLY_FD     (started by Runner)
"""
from __future__ import annotations

import atexit
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

SETPRIV = shutil.which("setpriv")  # util-linux, on every Debian and Ubuntu


class NbgraderTimeout(RuntimeError):
    pass


def nbgrader_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with this Python's ``bin`` first on
    PATH: nbgrader calls ``alembic`` (gradebook migrations) and ``jupyter`` by name."""
    env = dict(os.environ if base is None else base)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


class Runner:
    """One nbgrader process with a fixed environment; commands run one at a time."""

    def __init__(self, env: dict[str, str]):
        self.env = dict(env)
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def _start(self) -> None:
        req_r, self._req_w = os.pipe()
        self._reply_r, reply_w = os.pipe()
        self._stderr = tempfile.TemporaryFile()  # the process's own crash, if it has one
        cmd = [sys.executable, "-m", "lrgrade.nbgrader_runner", str(req_r), str(reply_w)]
        if SETPRIV and sys.platform.startswith("linux"):
            # It dies with the grading tool (a Ctrl-C, a kill): it never grades on,
            # orphaned, into a folder that a resumed run is rebuilding.
            cmd = [SETPRIV, "--pdeathsig", "KILL", "--", *cmd]
        self._proc = subprocess.Popen(cmd, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=self._stderr, pass_fds=(req_r, reply_w),
                                      start_new_session=True)  # so a timeout can kill its kernel too
        os.close(req_r)
        os.close(reply_w)
        self._buffer = b""

    def run(self, args: list[str], cwd: Path, timeout: float | None = None) -> subprocess.CompletedProcess:
        """Run ``nbgrader ARGS`` in ``cwd``; its log comes back as stderr."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._start()
            request = json.dumps({"args": list(args), "cwd": str(cwd)}) + "\n"
            try:
                os.write(self._req_w, request.encode())
                reply = self._read_reply(timeout)
            except BrokenPipeError:
                reply = None
            if reply is None:  # the process died (a crash, or a kill from outside)
                code = self._proc.wait()
                self._stderr.seek(0)
                log = self._stderr.read()[-20000:].decode(errors="replace")
                self._reset()
                return subprocess.CompletedProcess(["nbgrader", *args], code, "", log)
            return subprocess.CompletedProcess(["nbgrader", *args], reply["returncode"], "", reply["log"])

    def _read_reply(self, timeout: float | None) -> dict | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buffer:
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                self.close()
                raise NbgraderTimeout(f"took longer than {timeout:.0f} s")
            ready, _, _ = select.select([self._reply_r], [], [], wait)
            if ready:
                chunk = os.read(self._reply_r, 1 << 16)
                if not chunk:
                    return None
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return json.loads(line)

    def _reset(self) -> None:
        for fd in (self._req_w, self._reply_r):
            os.close(fd)
        self._stderr.close()
        self._proc = None

    def close(self) -> None:
        """End the process and every process of its session (a kernel it started)."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            try:
                os.killpg(self._proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._proc.wait()
        self._reset()


_RUNNERS: dict[tuple, Runner] = {}
_RUNNERS_LOCK = threading.Lock()


def runner_for(env: dict[str, str]) -> Runner:
    """The runner for this environment, started on first use and kept until exit.

    A grading worker's environment holds its own sandbox user, so each worker thread
    gets a process of its own."""
    key = tuple(sorted(env.items()))
    with _RUNNERS_LOCK:
        if key not in _RUNNERS:
            _RUNNERS[key] = Runner(env)
        return _RUNNERS[key]


@atexit.register
def close_all() -> None:
    with _RUNNERS_LOCK:
        for runner in _RUNNERS.values():
            runner.close()
        _RUNNERS.clear()


# -- the nbgrader process ---------------------------------------------------------------
def _run_app(args: list[str]) -> tuple[int, str]:
    """One nbgrader command in this process, as ``nbgrader.tests.run_nbgrader`` runs it."""
    import logging
    from io import StringIO

    from jupyter_core.application import NoStart
    from nbgrader.apps import NbGraderApp

    log = StringIO()
    app = NbGraderApp.instance()
    try:
        app.initialize(args)
        app.init_logging(logging.StreamHandler, [log], color=False, subapps=True)
        app.start()
        code = 0
    except NoStart:
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except Exception:  # nbgrader's own fault: report it like a crashed command would
        log.write(traceback.format_exc())
        code = 1
    finally:
        app.reset()
    return code, log.getvalue()


def alembic_head() -> str:
    """The gradebook schema version of the installed nbgrader, read in this process.

    nbgrader asks for it each time it creates a gradebook, by running the ``alembic``
    command (``nbgrader.api.get_alembic_version``): a Python start-up that imports
    SQLAlchemy and nbgrader, about 6 s. The answer is the head revision of nbgrader's own
    migration scripts, which alembic's Python API reads in milliseconds."""
    import nbgrader
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(Path(nbgrader.__file__).parent / "alembic")).get_current_head()


def serve(request_fd: int, reply_fd: int) -> None:
    # Kernels started from here must not inherit the pipes.
    os.set_inheritable(request_fd, False)
    os.set_inheritable(reply_fd, False)
    import nbgrader.api
    import nbgrader.apps  # noqa: F401  (the import this process exists to pay once)

    head = alembic_head()
    nbgrader.api.get_alembic_version = lambda: head

    requests = os.fdopen(request_fd, "rb")
    for line in requests:
        request = json.loads(line)
        os.chdir(request["cwd"])
        code, log = _run_app(request["args"])
        reply = memoryview((json.dumps({"returncode": code, "log": log[-200_000:]}) + "\n").encode())
        while reply:
            reply = reply[os.write(reply_fd, reply):]


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]))
