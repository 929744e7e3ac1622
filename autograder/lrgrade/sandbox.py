"""Run a student's kernel in a bubblewrap sandbox, as an unprivileged user, with limits.

nbgrader itself runs as the instructor (it must read the hidden tests and write the
gradebook); only the kernel, where the student's code runs, is sandboxed. The grading
tool turns this on for each nbgrader process it starts through environment variables
(``Limits.to_env``); ``SandboxKernelManager`` (set up by ``lrgrade.preprocessors``) reads
them when nbgrader starts a kernel.

What the sandbox (Debian's ``bubblewrap``, ``bwrap``) gives the kernel:

* a file system that holds only the system's programs and libraries, Python, the
  course's virtual environment and the folders the config names
  (``SandboxKernelManager.read_only``: for this course ``lrcourse`` and ``data/``), all
  read-only; its working
  folder, ``/tmp`` and ``/dev/shm`` are empty memory-backed folders of a fixed size
  (``scratch_mb`` each), so files count against a limit: not ``solutions/``, the
  gradebook, the submission, the instructor's home or the other students' files;
* no network (a network namespace with only loopback), its own process and IPC
  namespaces, an environment with none of the instructor's variables;
* a user of its own (uid ``LRGRADE_SANDBOX_UID``, one per parallel worker, when the
  grader runs as root), so a fork bomb hits its own process limit;
* limits on address space (memory), process count, file size and CPU time, set by
  ``sandbox_exec.py``, the kernel's last step before it starts.

The kernel talks to nbgrader over Unix sockets in a private run folder (TCP would need
the network the sandbox does not have). Without bwrap (``mode="limits"``) the limits
still apply but the kernel runs as the grader, sees its files and has its network.
"""
from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from traitlets import Bool, List, Unicode

from .sandbox_exec import pids_of

EXEC = Path(__file__).with_name("sandbox_exec.py")
UID_BASE = 61000  # sandbox users are 61000, 61001, ... (one per worker); no login, no files
# Variables any kernel may see; a course adds its own (SandboxKernelManager.pass_env), and
# everything else of the grader's environment stays outside.
PASS_ENV = ("NBGRADER_EXECUTION", "CI", "MPLBACKEND", "LANG", "LC_ALL", "TZ", "OPENBLAS_CORETYPE",
            "OPENBLAS_L2_SIZE")


@dataclass(frozen=True)
class Limits:
    mode: str = "none"       # "bwrap" (sandbox and limits), "limits" (limits only), "none" (a plain kernel)
    uid: int = UID_BASE
    memory_mb: int = 4096    # address space; torch and the course's models need about 700 MB
    nproc: int = 64
    fsize_mb: int = 64
    cpu_s: int = 1800        # the whole kernel, a backstop to the per-cell limit (TrustedExecute)
    scratch_mb: int = 256    # each of the working folder, /tmp and /dev/shm

    def to_env(self) -> dict[str, str]:
        return {f"LRGRADE_SANDBOX_{k.upper()}": str(v) for k, v in asdict(self).items()}

    @classmethod
    def from_env(cls, env=os.environ) -> "Limits":
        values = {}
        for key, default in asdict(cls()).items():
            raw = env.get(f"LRGRADE_SANDBOX_{key.upper()}")
            values[key] = default if raw is None else type(default)(raw)
        return cls(**values)


def find_bwrap() -> str | None:
    return os.environ.get("LRGRADE_BWRAP") or shutil.which("bwrap")


@functools.lru_cache(maxsize=None)
def bwrap_problem() -> str:
    """"" when a bubblewrap sandbox can be started here, else why not."""
    bwrap = find_bwrap()
    if not bwrap:
        return "bubblewrap (bwrap) is not installed"
    cmd = [bwrap, "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid", "--die-with-parent"]
    if os.getuid() != 0:
        cmd.append("--unshare-user")
    try:
        proc = subprocess.run(cmd + ["true"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"bwrap does not start: {err}"
    if proc.returncode != 0:
        return f"bwrap does not start here: {proc.stderr.strip()[:200]}"
    return ""


def package_dir(name: str) -> Path:
    """The folder of an importable package, found without importing it."""
    spec = importlib.util.find_spec(name)
    return Path(next(iter(spec.submodule_search_locations))).resolve()


SANDBOX_HOME = "/tmp/home"


@functools.lru_cache(maxsize=None)
def font_list() -> Path | None:
    """matplotlib's font list (``fontlist-vNNN.json``), built once per matplotlib version in
    lrgrade's cache folder and handed to every sandboxed kernel read-only. A kernel starts
    with an empty HOME and would build it again, in every notebook. It is built as the
    sandbox would (an empty HOME: only the system's and matplotlib's own fonts). None if it
    cannot be built (the kernel then builds its own)."""
    from importlib.metadata import version

    from .notebooks import cache_dir

    root = cache_dir("fonts")
    if root is None:
        return None
    folder = root / f"matplotlib-{version('matplotlib')}"
    found = sorted(folder.glob("fontlist-*.json"))
    if not found:
        try:
            root.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=root) as tmp:
                env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tmp, "MPLCONFIGDIR": tmp}
                subprocess.run([sys.executable, "-c", "import matplotlib.font_manager"], env=env,
                               capture_output=True, timeout=300, check=True)
                built = next(Path(tmp).glob("fontlist-*.json"))
                folder.mkdir(exist_ok=True)
                os.replace(built, folder / built.name)  # atomic: a grader running beside sees all or nothing
        except (OSError, subprocess.SubprocessError, StopIteration):
            return None
        found = sorted(folder.glob("fontlist-*.json"))
    return found[-1] if found else None


def bwrap_command(kernel_cmd: list[str], limits: Limits, cwd: Path, rundir: Path,
                  read_only: list[str] = (), pass_env: list[str] = (), fonts: Path | None = None) -> list[str]:
    """The bwrap command line that starts ``kernel_cmd`` in the sandbox described above,
    with the folders ``read_only`` readable, the variables ``pass_env`` (besides
    ``PASS_ENV``) kept, and ``fonts`` (see ``font_list``) as matplotlib's font cache."""
    args = [find_bwrap(), "--die-with-parent", "--unshare-ipc", "--unshare-pid", "--unshare-net",
            "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox"]
    if os.getuid() != 0:
        args.append("--unshare-user")  # an unprivileged grader: bwrap needs a user namespace
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    # /etc holds only the files named here; made first, as bwrap would make it 0700 for them, and
    # the kernel's user could read none (no ld.so.cache, no fonts.conf: fc-list complained).
    args += ["--ro-bind", "/usr", "/usr", "--perms", "0755", "--dir", "/etc"]
    for name in ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime", "passwd",
                 "group", "nsswitch.conf", "hosts", "fonts", "matplotlibrc"):
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    # Memory-backed folders of a fixed size: what the student's code writes there counts
    # against a limit (an unsized tmpfs would be memory outside the address-space limit).
    size = str(limits.scratch_mb * 1024 * 1024)
    args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", size, "--tmpfs", "/tmp",
             "--perms", "1777", "--size", size, "--tmpfs", "/dev/shm", "--perms", "1777", "--dir", SANDBOX_HOME]
    if fonts is not None:  # where matplotlib looks with HOME set so; its folder stays writable
        cache = f"{SANDBOX_HOME}/.cache/matplotlib"
        args += ["--perms", "1777", "--dir", f"{SANDBOX_HOME}/.cache", "--perms", "1777", "--dir", cache,
                 "--ro-bind", str(fonts), f"{cache}/{fonts.name}"]
    for dev in sorted(Path("/dev").glob("nvidia*")):  # a GPU grading machine keeps its GPU
        args += ["--dev-bind-try", str(dev), str(dev)]
    read_only = {Path(sys.base_prefix).resolve(), Path(sys.prefix), Path(sys.prefix).resolve(),
                 *(Path(p).resolve() for p in read_only)}
    # bwrap creates the folders above a mount point as it finds them (e.g. /root 0700,
    # which the sandbox user could not enter): create them first, open to all.
    parents = {p for path in read_only | {EXEC, rundir, cwd} for p in Path(path).parents if p != Path("/")}
    for parent in sorted(parents - {Path("/tmp")}, key=lambda p: len(p.parts)):
        args += ["--perms", "0755", "--dir", str(parent)]
    for path in sorted(read_only):
        args += ["--ro-bind", str(path), str(path)]
    args += ["--ro-bind", str(EXEC), str(EXEC),
             "--bind", str(rundir), str(rundir),
             "--perms", "1777", "--size", size, "--tmpfs", str(cwd), "--chdir", str(cwd),
             "--clearenv", "--setenv", "HOME", SANDBOX_HOME, "--setenv", "PATH",
             f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin"]
    for key in dict.fromkeys([*PASS_ENV, *pass_env]):
        if key in os.environ:
            args += ["--setenv", key, os.environ[key]]
    return args + ["--", *_exec_prefix(limits), *kernel_cmd]


def _exec_prefix(limits: Limits, switch_user: bool = True) -> list[str]:
    user = ["--uid", str(limits.uid)] if switch_user else []
    return [sys.executable, str(EXEC), *user, "--memory-mb", str(limits.memory_mb), "--nproc", str(limits.nproc),
            "--fsize-mb", str(limits.fsize_mb), "--cpu-s", str(limits.cpu_s), "--"]


def kill_user(uid: int) -> int:
    """SIGKILL every process left running as the sandbox user ``uid``; return how many."""
    if os.getuid() != 0 or uid == 0:
        return 0
    killed = 0
    for pid in pids_of(uid):
        try:
            os.kill(pid, signal.SIGKILL)
            killed += 1
        except ProcessLookupError:
            pass
    return killed


class SandboxRequired(RuntimeError):
    """A kernel was to start outside the sandbox where ``require_sandbox`` forbids it."""


class SandboxKernelManager(AsyncKernelManager):
    """A kernel manager that starts the kernel through ``bwrap`` and ``sandbox_exec.py``.

    What the kernel may read and which variables it keeps are the course's to say, in
    ``nbgrader_config.py``; the limits come from the grading tool (``Limits.from_env``).
    """

    read_only = List(Unicode(), help="Folders the sandboxed kernel may read (read-only) besides the "
                                     "system, Python and its environment: the course's own packages "
                                     "and data").tag(config=True)
    pass_env = List(Unicode(), help="Environment variables the sandboxed kernel keeps, besides "
                                    "lrgrade.sandbox.PASS_ENV").tag(config=True)
    require_sandbox = Bool(False, help="Refuse to start a kernel outside bubblewrap: for an instructor "
                                       "whose formgrader (nbgrader's own Autograde) would otherwise run "
                                       "student code as them, unsandboxed").tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._limits = Limits.from_env()
        self._rundir: Path | None = None
        if self._limits.mode == "bwrap":
            self._rundir = Path(tempfile.mkdtemp(prefix="lrgrade-kernel-"))
            self.transport = "ipc"
            self.cache_ports = False
            self.ip = str(self._rundir / "ipc")
            self.connection_file = str(self._rundir / "kernel.json")

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments)
        if self.require_sandbox and self._limits.mode != "bwrap":
            raise SandboxRequired("this course grades student code only in the sandbox: collect the "
                                  "submissions, then grade them with `sudo bin/classroom grade ASSIGNMENT` "
                                  "(or `bin/grade`), not with nbgrader's own autograde")
        if self._limits.mode == "none":
            return cmd
        # A SIGINT for the process group would hit bwrap, not the kernel: interrupt a
        # cell that runs too long with a message on the control channel instead.
        self.kernel_spec.interrupt_mode = "message"
        if self._limits.mode != "bwrap":
            # No sandbox: the kernel stays the grader's user (another user could not even
            # reach this Python, e.g. under /root), with the limits.
            return _exec_prefix(self._limits, switch_user=False) + cmd
        # The working folder is an empty scratch folder at the path of the student's
        # folder: the kernel sees none of the files there (the submission, the graded copy).
        cwd = Path((self._launch_args or {}).get("cwd") or os.getcwd()).resolve()
        if os.getuid() == 0:
            for path in [self._rundir, *self._rundir.rglob("*")]:
                os.chown(path, self._limits.uid, self._limits.uid, follow_symlinks=False)
        return bwrap_command(cmd, self._limits, cwd, self._rundir, self.read_only, self.pass_env, font_list())

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if self._rundir is not None and not restart:
            shutil.rmtree(self._rundir, ignore_errors=True)
