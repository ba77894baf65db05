"""tests/processes.py: the processes a test starts are stopped as a whole, and one that outlives
the stop is reported (and killed), not left running after the suite."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from tests.processes import group_members, running, start, stop

# A parent that starts a child and reports when both are up. The child ignores `sys.argv[1]`
# (a signal name, or "none"), as a process stuck in a signal handler does.
PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", CHILD, sys.argv[1]], stdout=subprocess.PIPE,
                         text=True)
child.stdout.readline()
print("ready", flush=True)
time.sleep(600)
"""
CHILD = """
import signal, sys, time
if sys.argv[1] != "none":
    signal.signal(getattr(signal, sys.argv[1]), signal.SIG_IGN)
print("up", flush=True)
time.sleep(600)  # the child
"""


def family(ignored: str) -> subprocess.Popen[str]:
    parent = start([sys.executable, "-c", f"CHILD = {CHILD!r}\n{PARENT}", ignored],
                   stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    assert parent.stdout.readline() == "ready\n"
    assert len(group_members(parent.pid)) == 2
    return parent


@pytest.mark.skipif(sys.platform == "win32", reason="process groups are POSIX")
def test_a_child_that_outlives_its_parent_is_reported_and_killed() -> None:
    parent = family("SIGINT")
    with pytest.raises(AssertionError, match="still running") as failure:
        stop(parent, signal.SIGINT, within=1)  # the parent ends; its child does not
    assert "time.sleep(600)  # the child" in str(failure.value)
    assert parent.returncode is not None
    assert group_members(parent.pid) == []


@pytest.mark.skipif(sys.platform == "win32", reason="process groups are POSIX")
def test_a_family_that_stops_when_told_passes() -> None:
    parent = family("none")
    stop(parent, signal.SIGTERM, whole_group=True)
    assert group_members(parent.pid) == []
    with running([sys.executable, "-c", "print('done')"], stdout=subprocess.PIPE,
                 text=True) as done:
        assert done.communicate(timeout=60)[0] == "done\n"
