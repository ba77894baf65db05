"""scripts/demo.sh: a second run while the first still serves stops before touching demo/."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of the script in a repository-shaped folder, with a demo/ already in place and a
    stub .venv python that records what it is asked to do (so nothing is installed)."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "demo.sh", tmp_path / "scripts" / "demo.sh")
    (tmp_path / "demo" / "contoso-portal").mkdir(parents=True)
    (tmp_path / "demo" / "contoso-portal" / "served.txt").write_text("the running demo")
    stub = tmp_path / ".venv" / "bin" / "python"
    stub.parent.mkdir(parents=True)
    stub.write_text(f'#!/bin/sh\necho "$@" >> "{tmp_path}/calls.txt"\nexit 3\n')
    stub.chmod(0o755)
    return tmp_path


def _run(repo: Path, port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(repo / "scripts" / "demo.sh")], capture_output=True,
                          text=True, timeout=60, check=False,
                          env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable,
                               "PORT": str(port)})


def test_a_busy_port_is_reported_before_demo_is_replaced(repo: Path) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        done = _run(repo, port)
    assert done.returncode == 1
    assert f"port {port} is already in use" in done.stderr
    assert (repo / "demo" / "contoso-portal" / "served.txt").read_text() == "the running demo"
    assert not (repo / "calls.txt").exists()  # nothing installed or generated


def test_a_free_port_goes_on_to_install_and_generate(repo: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = _run(repo, port)
    assert done.returncode == 3, done.stderr  # the stub's answer to the first install
    assert "-m pip install --quiet -e ." in (repo / "calls.txt").read_text()


def test_a_port_that_is_not_a_number_is_refused(repo: Path) -> None:
    done = subprocess.run(["bash", str(repo / "scripts" / "demo.sh")], capture_output=True,
                          text=True, timeout=60, check=False,
                          env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable, "PORT": "50a"})
    assert done.returncode == 2 and "PORT must be a number" in done.stderr
