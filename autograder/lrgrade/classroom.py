"""A JupyterHub classroom on this machine: local accounts, nbgrader's exchange, one course.

    lrgrade classroom setup        accounts, the exchange, the instructor's course, the hub's config
    lrgrade classroom start        run the hub on 127.0.0.1 (in the foreground; Ctrl-C stops it)
    lrgrade classroom grade A      grade what the instructor collected, sandboxed, into their course
    lrgrade classroom remove       delete the accounts and the classroom folder

Run as root (``bin/classroom`` does): the hub starts each person's server as that person.
Everything the classroom owns is in one folder, ``ROOT`` (default /srv/lr-schedules)::

    ROOT/classroom.json            who is in it, the port, this repository's .venv
    ROOT/accounts.txt              the accounts' first passwords (root only)
    ROOT/jupyterhub_config.py      the hub's config; ROOT/hub/ its database and secrets (root only)
    ROOT/etc/common/               nbgrader config every server reads: the exchange, the course id
    ROOT/etc/instructor/           the instructor's course folder; ROOT/etc/student/ no formgrader
    ROOT/exchange/                 nbgrader's exchange
    ROOT/venv/                     the course's packages on a Python every account can run
    ROOT/graded/                   `lrgrade grade`'s output (grades.csv, feedback; root only)

The instructor's course is ``~INSTRUCTOR/<course id>``, an nbgrader course directory made
as ``lrgrade course-dir`` makes one, owned by the instructor.
"""
from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from .nbgrader_course import NbgraderCourse

DEFAULT_ROOT = Path("/srv/lr-schedules")
REPO_VENV = Path(sys.prefix)
PROXY = REPO_VENV / "hub" / "node_modules" / ".bin" / "configurable-http-proxy"  # bin/setup-hub
API_TOKEN_ENV = "LRGRADE_CLASSROOM_API_TOKEN"  # a token for a script (the tests) to drive the hub


@dataclass
class Classroom:
    root: Path
    instructor: str
    students: list[str]
    course_id: str
    port: int = 8000

    # -- where things are ---------------------------------------------------------------
    @property
    def course_dir(self) -> Path:
        return Path(pwd.getpwnam(self.instructor).pw_dir) / self.course_id

    @property
    def exchange(self) -> Path:
        return self.root / "exchange"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def save(self) -> None:
        data = asdict(self) | {"root": str(self.root)}
        (self.root / "classroom.json").write_text(json.dumps(data, indent=1) + "\n")

    @classmethod
    def load(cls, root: Path) -> "Classroom":
        path = Path(root) / "classroom.json"
        if not path.is_file():
            raise ClassroomError(f"no classroom in {root} (run `bin/classroom setup` first)")
        data = json.loads(path.read_text())
        return cls(**(data | {"root": Path(data["root"])}))

    # -- setup --------------------------------------------------------------------------
    def setup(self, sources: dict) -> dict[str, str]:
        """Make the classroom; return the passwords of the accounts it created."""
        _require_root()
        if not PROXY.is_file():
            raise ClassroomError(f"{PROXY} is missing: run bin/setup-hub (bin/classroom does)")
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        created = {name: self._add_account(name) for name in [self.instructor, *self.students]}
        created = {name: pw for name, pw in created.items() if pw}
        if created:
            fd = os.open(self.root / "accounts.txt", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "a") as fh:  # readable by root only from the start
                fh.writelines(f"{name} {pw}\n" for name, pw in created.items())
        self.exchange.mkdir(exist_ok=True)
        self.exchange.chmod(0o1777)  # anyone may create their course's folder; no one deletes another's
        for sub in ("hub", "graded"):
            (self.root / sub).mkdir(exist_ok=True)
            (self.root / sub).chmod(0o700)
        self._make_environment()
        self._write_jupyter_config()
        self._make_course(sources)
        (self.root / "jupyterhub_config.py").write_text(self.hub_config())
        self.save()
        return created

    def _add_account(self, name: str) -> str | None:
        """A local account with a private home; its password if it is new, else None."""
        try:
            pwd.getpwnam(name)
            return None
        except KeyError:
            pass
        _run(["useradd", "--create-home", "--user-group", "--shell", "/bin/bash", name])
        password = secrets.token_urlsafe(9)
        _run(["chpasswd"], input=f"{name}:{password}\n")
        Path(pwd.getpwnam(name).pw_dir).chmod(0o700)  # no one reads another's work
        return password

    def _make_environment(self) -> None:
        """ROOT/venv: a virtual environment on a Python every account can run, that uses the
        course's ``.venv`` (its packages, Jupyter data and config). The course's own Python
        may be private, such as a pyenv build under /root; the system's Python of the same
        version then runs the same packages."""
        venv, version = self.root / "venv", f"{sys.version_info[0]}.{sys.version_info[1]}"
        candidates = [Path(sys.base_prefix) / "bin" / f"python{version}", Path(f"/usr/bin/python{version}"),
                      Path(f"/usr/local/bin/python{version}")]
        check = f"import sys, venv; assert sys.version_info[:2] == {tuple(sys.version_info[:2])}"
        python = next((p for p in candidates if p.is_file() and self._runs_as(self.instructor, [str(p), "-c", check])),
                      None)
        if python is None:
            raise ClassroomError(f"no Python {version} that every account can run (tried "
                                 f"{', '.join(map(str, candidates))}): install the system's python{version}, "
                                 "or set up the course with a Python outside private homes")
        if venv.exists():
            shutil.rmtree(venv)
        _run([str(python), "-m", "venv", "--without-pip", str(venv)])
        site_dir = venv / "lib" / f"python{version}" / "site-packages"
        course_site = REPO_VENV / "lib" / f"python{version}" / "site-packages"
        (site_dir / "lr-schedules-course.pth").write_text(f"import site; site.addsitedir({str(course_site)!r})\n")
        for name in ("share", "etc"):  # Jupyter's data (kernels, lab extensions, settings) and config
            (venv / name).symlink_to(REPO_VENV / name)
        shebangs = {f"#!{REPO_VENV / 'bin' / name}".encode() for name in ("python", "python3", f"python{version}")}
        for script in sorted((REPO_VENV / "bin").iterdir()):
            target = venv / "bin" / script.name
            if target.exists() or not script.is_file():
                continue
            head, _, body = script.read_bytes().partition(b"\n")
            if head.strip() in shebangs:  # the course's commands (jupyter, nbgrader, ...) on this Python
                target.write_bytes(f"#!{venv / 'bin' / 'python'}\n".encode() + body)
                target.chmod(0o755)
        for path in [venv, *venv.rglob("*")]:
            if not path.is_symlink():
                path.chmod(0o755 if path.is_dir() or os.access(path, os.X_OK) else 0o644)
        imports = "import jupyterhub, nbgrader, lrgrade"
        if not self._runs_as(self.instructor, [str(venv / "bin" / "python"), "-c", imports]):
            raise ClassroomError(f"the accounts cannot read the course's environment ({REPO_VENV}): put the "
                                 "repository where every account can read it (for example under /srv or /opt)")

    @staticmethod
    def _runs_as(name: str, cmd: list[str]) -> bool:
        who = pwd.getpwnam(name)
        # Through a shell: setpriv itself still resolves the program's path with root's rights.
        proc = subprocess.run(["setpriv", f"--reuid={who.pw_uid}", f"--regid={who.pw_gid}", "--clear-groups",
                               "/bin/sh", "-c", 'exec "$@"', "sh", *cmd], capture_output=True, cwd="/", timeout=120)
        return proc.returncode == 0

    def _write_jupyter_config(self) -> None:
        etc = self.root / "etc"
        common = (f"c = get_config()  # noqa: F821\n"
                  f"c.Exchange.root = {str(self.exchange)!r}\n"
                  f"c.CourseDirectory.course_id = {self.course_id!r}\n")
        _write(etc / "common" / "nbgrader_config.py", "# The classroom's exchange (lrgrade classroom).\n" + common)
        _write(etc / "instructor" / "nbgrader_config.py",
               "# The instructor's course (lrgrade classroom).\nc = get_config()  # noqa: F821\n"
               f"c.CourseDirectory.root = {str(self.course_dir)!r}\n"
               "# formgrader's Autograde button would run student code as the instructor: refuse it\n"
               "# (grade with `sudo bin/classroom grade ASSIGNMENT`, in the sandbox).\n"
               "c.SandboxKernelManager.require_sandbox = True\n")
        # Students get the assignment list, not formgrader or the create-assignment tools.
        _write(etc / "student" / "jupyter_server_config.json", json.dumps(
            {"ServerApp": {"jpserver_extensions": {"nbgrader.server_extensions.formgrader": False}}}, indent=1))
        _write(etc / "student" / "labconfig" / "page_config.json", json.dumps(
            {"disabledExtensions": {"@jupyter/nbgrader:formgrader": True,
                                    "@jupyter/nbgrader:create-assignment": True}}, indent=1))
        for path in [etc, *etc.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)

    def _make_course(self, sources: dict) -> None:
        """The instructor's nbgrader course directory, with every student in its gradebook."""
        from nbgrader.api import Gradebook

        course = NbgraderCourse(self.course_dir)
        if not (self.course_dir / "gradebook.db").is_file():
            course.create(sources)
        with Gradebook(f"sqlite:///{self.course_dir / 'gradebook.db'}") as gb:
            for student in self.students:
                gb.update_or_create_student(student)
        owner = pwd.getpwnam(self.instructor)
        for path in [self.course_dir, *self.course_dir.rglob("*")]:
            os.chown(path, owner.pw_uid, owner.pw_gid, follow_symlinks=False)
        self.course_dir.chmod(0o700)

    def hub_config(self) -> str:
        etc = self.root / "etc"
        hub = self.root / "hub"
        return f'''# The classroom's JupyterHub config, written by `lrgrade classroom setup`: rerun that
# command rather than edit this file.
import os

c = get_config()  # noqa: F821
c.JupyterHub.ip = "127.0.0.1"  # loopback only: put a TLS proxy in front to open it to a network
c.JupyterHub.port = {self.port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {self.port + 2}  # the ports after the public one, so that two classrooms never clash
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{self.port + 1}"
c.JupyterHub.db_url = "sqlite:///{hub / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = "{hub / 'jupyterhub_cookie_secret'}"
c.ConfigurableHTTPProxy.command = ["{PROXY}"]
c.ConfigurableHTTPProxy.pid_file = "{hub / 'proxy.pid'}"

# Local accounts (PAM): the instructor is the hub's admin.
c.Authenticator.allowed_users = set({sorted({self.instructor, *self.students})!r})
c.Authenticator.admin_users = {{{self.instructor!r}}}

# Each person's server runs as them, from this course's environment, in their home.
c.Spawner.cmd = ["{self.root / 'venv' / 'bin' / 'jupyterhub-singleuser'}"]
c.Spawner.default_url = "/lab"
c.Spawner.notebook_dir = "~"
c.Spawner.environment = {{
    "PATH": "{self.root / 'venv' / 'bin'}:/usr/local/bin:/usr/bin:/bin",
    "JUPYTER_CONFIG_PATH": lambda spawner: os.pathsep.join(
        ["{etc / 'instructor'}" if spawner.user.name == {self.instructor!r} else "{etc / 'student'}",
         "{etc / 'common'}"]),
}}

# A script may drive the hub with a token of its own (the classroom test does).
if os.environ.get("{API_TOKEN_ENV}"):
    c.JupyterHub.services = [{{"name": "classroom-driver", "api_token": os.environ["{API_TOKEN_ENV}"]}}]
    c.JupyterHub.load_roles = [{{"name": "classroom-driver", "services": ["classroom-driver"],
                                 "scopes": ["admin:users", "admin:servers", "tokens", "access:servers"]}}]
'''

    # -- running ------------------------------------------------------------------------
    def start(self) -> None:
        """Run the hub in the foreground (this process becomes the hub)."""
        _require_root()
        os.chdir(self.root / "hub")
        hub = REPO_VENV / "bin" / "jupyterhub"
        os.execv(str(hub), [str(hub), "-f", str(self.root / "jupyterhub_config.py")])

    def grade_args(self, assignment: str, jobs: int | None = None) -> list[str]:
        """`lrgrade grade` on what the instructor collected, sandboxed, into their course."""
        args = ["grade", str(self.course_dir / "submitted"), "--assignment", assignment,
                "--out", str(self.root / "graded"), "--into", str(self.course_dir), "--sandbox", "bwrap"]
        return args + (["--jobs", str(jobs)] if jobs else [])

    def remove(self) -> None:
        """Delete the accounts (with their homes) and the classroom folder."""
        _require_root()
        for name in [self.instructor, *self.students]:
            try:
                pwd.getpwnam(name)
            except KeyError:
                continue
            subprocess.run(["pkill", "-KILL", "-u", name], check=False)
            _run(["userdel", "--remove", name])
        shutil.rmtree(self.root, ignore_errors=True)


class ClassroomError(RuntimeError):
    pass


def _require_root() -> None:
    if os.getuid() != 0:
        raise ClassroomError("run this as root (sudo bin/classroom ...): the hub starts each "
                             "person's server as that person, and accounts are created with useradd")


def _run(cmd: list[str], input: str | None = None) -> None:
    proc = subprocess.run(cmd, input=input, text=True, capture_output=True)
    if proc.returncode != 0:
        raise ClassroomError(f"{' '.join(cmd)} failed: {proc.stderr.strip()}")


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
