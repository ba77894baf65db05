"""Processes the tests start: each in a session (and so a process group) of its own, stopped as
a whole, with a check that nothing of it is left.

A server stopped by signalling its main process alone can leave children behind: a gunicorn
worker that hangs on its way out outlives a master killed after a timeout, reparented to PID 1,
holding its port and its memory after the suite has ended. Here the test asks the server to
stop the way its users do (one signal to its main process, or to the group as Ctrl-C does),
waits, then kills the whole group, and fails if anything of the group had to be killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

# How long a server gets to stop on its own. Far above what a healthy one needs (a few
# seconds), so that only a hang, not a loaded machine, reaches it.
STOP_SECONDS = 60.0
_PROC = Path("/proc")


def start(command: Sequence[str], **popen: Any) -> subprocess.Popen[Any]:
    """`subprocess.Popen(command, **popen)` in a new session: the process and every process
    it starts share a process group of their own (its id is the process's id)."""
    return subprocess.Popen(command, start_new_session=True, **popen)


def require_ctrl_c() -> None:
    """Fail at once, naming the cause, when this process ignores SIGINT: what it starts
    inherits that (a non-interactive shell's `command &` sets it), so a Python program's
    Ctrl-C (KeyboardInterrupt) cannot be tried; without this check the test would wait for a
    stop that cannot come."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        raise AssertionError(
            "SIGINT is ignored in the test process, and so in the processes it starts (a "
            "background job of a shell without job control): run the suite in the "
            "foreground, or with `set -m` in a script")


def group_members(group: int) -> list[str]:
    """The live (not zombie) processes of process group `group`, as "pid command line"."""
    if not _PROC.is_dir():  # no /proc (macOS): ask the kernel whether the group has anyone
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return []
        except PermissionError:
            pass
        return [f"process group {group}"]
    members = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
            state, _ppid, pgrp = stat.rpartition(")")[2].split()[:3]
            if int(pgrp) != group or state == "Z":
                continue  # the command line is read for the group's processes alone
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                errors="replace").strip()
        except OSError:
            continue  # ended meanwhile
        members.append(f"{entry.name} {command}")
    return members


def stop(process: subprocess.Popen[Any], stop_signal: int = signal.SIGTERM, *,
         whole_group: bool = False, within: float = STOP_SECONDS) -> None:
    """Stop `process` (started by `start`) and every process of its group.

    `stop_signal` goes to the process (or, with `whole_group`, to every process of the group,
    as a terminal's Ctrl-C does); the group then has `within` seconds to end. Whatever is left
    is sent SIGTERM, then SIGKILL, and the call fails naming it.
    """
    group = process.pid
    with contextlib.suppress(ProcessLookupError):
        if whole_group:
            os.killpg(group, stop_signal)
        else:
            process.send_signal(stop_signal)
    left = _wait_for_group(process, within)
    if not left:
        return
    for last_resort, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, last_resort)
        if not _wait_for_group(process, grace):
            break
    raise AssertionError(
        f"{len(left)} process(es) of the group were still running {within:g} s after "
        f"{signal.Signals(stop_signal).name} (then killed):\n" + "\n".join(left))


def _wait_for_group(process: subprocess.Popen[Any], within: float) -> list[str]:
    """Wait up to `within` seconds for the process (reaped here) and its whole group to end:
    what is still running then."""
    deadline = time.monotonic() + within
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=within)
    while True:
        left = group_members(process.pid)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


@contextlib.contextmanager
def running(command: Sequence[str], stop_signal: int = signal.SIGTERM, *,
            whole_group: bool = False, within: float = STOP_SECONDS,
            **popen: Any) -> Iterator[subprocess.Popen[Any]]:
    """`start(command, **popen)`, and `stop` it (see there) when the block ends."""
    process = start(command, **popen)
    try:
        yield process
    finally:
        # A failure in the block is the one to report (and its processes get little time to
        # stop: they may be why it failed); a process left behind is reported when the block
        # itself passed.
        failing = sys.exc_info()[0] is not None
        try:
            stop(process, stop_signal, whole_group=whole_group,
                 within=min(within, 5.0) if failing else within)
        except AssertionError:
            if not failing:
                raise
