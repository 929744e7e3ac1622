"""Last step before a student's kernel starts: limits, a new session, an unprivileged user.

    python sandbox_exec.py --uid U --memory-mb M --nproc N --fsize-mb F --cpu-s C -- CMD...

Runs inside the bubblewrap sandbox (or, without one, straight from the grader), with the
standard library only. It sets the resource limits, starts a new session (so a signal
sent to the kernel's process group reaches only the student's processes), drops to the
unprivileged user ``U`` when started as root, and replaces itself with ``CMD``. Nothing
of the instructor's (rights, groups, capabilities) survives into the kernel: changing
every uid from 0 to ``U`` clears the capability sets.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys

MB = 1 << 20


def _limit(which: int, value: int) -> None:
    soft, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)  # an unprivileged caller cannot raise the hard limit
    resource.setrlimit(which, (value, value))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--uid", type=int, default=None)
    parser.add_argument("--memory-mb", type=int, required=True)
    parser.add_argument("--nproc", type=int, required=True)
    parser.add_argument("--fsize-mb", type=int, required=True)
    parser.add_argument("--cpu-s", type=int, required=True)
    parser.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        parser.error("no command to run")

    # Address space, not resident memory: a memory bomb gets a MemoryError in its cell
    # instead of waking the machine's OOM killer (which may pick the grader).
    _limit(resource.RLIMIT_AS, args.memory_mb * MB)
    _limit(resource.RLIMIT_FSIZE, args.fsize_mb * MB)   # no file larger than this
    _limit(resource.RLIMIT_CPU, args.cpu_s)              # a backstop to the wall-clock limits
    _limit(resource.RLIMIT_CORE, 0)                      # a segfault leaves no core file
    if os.getsid(0) != os.getpid():  # not already the leader of a session of its own
        os.setsid()
    if os.getuid() == 0 and args.uid is not None:
        os.setgroups([])
        os.setgid(args.uid)
        os.setuid(args.uid)
        # Counted per user: with a user of its own, a fork bomb stops at this many
        # processes and cannot starve the other students graded at the same time.
        _limit(resource.RLIMIT_NPROC, args.nproc)
    elif os.getuid() != 0:
        _limit(resource.RLIMIT_NPROC, args.nproc + len(pids_of(os.getuid())))  # it counts them all
    os.execvp(cmd[0], cmd)


def pids_of(uid: int) -> list[int]:
    """The processes running as ``uid`` (also used by the grader to clean up after a student)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    pids.append(int(entry))
            except OSError:
                pass
    return pids


if __name__ == "__main__":
    main(sys.argv[1:])
