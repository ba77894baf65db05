"""The generated projects' locked requirements (msal_webapp_rules/lock.py).

Offline (default suite): an index that does not answer leaves the project complete, without a
lock file, and says in one line how to write the files later; --no-lock asks the index nothing.
With the package index (`-m lock`, run by .ci/run after the default suite): `msal-webapp new`
and the cookiecutter hook write both files, every requirement hashed, and pip installs the
runtime one in hash-checking mode into a fresh environment that then runs the app's package.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from baking import ROOT  # imports the generator, which puts the template's rules on sys.path
from msal_webapp_rules import lock

from generator import cli

TEMPLATE = ROOT / "template"
EXAMPLES = ROOT / "examples"
SQL_SPEC = EXAMPLES / "oidc.yaml"  # FastAPI, SQL store: acme-portal, package acme_portal
LOCKS = (lock.RUNTIME, lock.DEV)


@pytest.fixture
def locking(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """This test's `msal-webapp new` writes locks (conftest.py turns them off for the others)."""
    monkeypatch.delenv(lock.NO_LOCK_ENV, raising=False)
    for name in ("UV_INDEX_URL", "UV_DEFAULT_INDEX", "PIP_INDEX_URL", "UV_HTTP_RETRIES"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released): connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("variable", ["UV_INDEX_URL", "PIP_INDEX_URL"])
def test_an_index_that_does_not_answer_leaves_a_complete_project_and_one_line(
        tmp_path: Path, locking: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        variable: str) -> None:
    """uv, pointed at the index (uv's variable or pip's), is refused: `new` succeeds, the project
    is what --no-lock makes, no lock file (complete or partial) is left, and one line names the
    command that writes them later, which the README gives too."""
    port = closed_port()
    locking.setenv(variable, f"http://127.0.0.1:{port}/simple")
    assert cli.main(["new", str(SQL_SPEC), "-o", str(tmp_path / "a")]) == 0
    out, err = capsys.readouterr()
    project = tmp_path / "a" / "acme-portal"
    assert not [p for p in project.iterdir() if "requirements" in p.name]
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"warning: {lock.RUNTIME} and {lock.DEV} not written ("), err
    assert f"127.0.0.1:{port}" in lines[0]  # uv's own reason: the index it could not reach
    assert lines[0].endswith(f"write them later in acme-portal/ with: {lock.command('sql')}")
    assert "Next steps:" in out and "Locked" not in out
    assert lock.command("sql") in (project / "README.md").read_text(encoding="utf-8")

    assert cli.main(["new", str(SQL_SPEC), "-o", str(tmp_path / "b"), "--no-lock"]) == 0
    assert files(project) == files(tmp_path / "b" / "acme-portal")


def test_no_lock_asks_no_index(tmp_path: Path, locking: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    locking.setenv("UV_INDEX_URL", f"http://127.0.0.1:{closed_port()}/simple")
    assert cli.main(["new", str(SQL_SPEC), "-o", str(tmp_path), "--no-lock"]) == 0
    assert capsys.readouterr().err == ""
    locking.setenv(lock.NO_LOCK_ENV, "1")
    assert cli.main(["new", str(SQL_SPEC), "-o", str(tmp_path), "--force"]) == 0
    assert capsys.readouterr().err == ""


def test_the_cookiecutter_hook_says_the_same_without_an_index(
        tmp_path: Path, locking: pytest.MonkeyPatch) -> None:
    port = closed_port()
    locking.setenv("UV_INDEX_URL", f"http://127.0.0.1:{port}/simple")
    made = subprocess.run([sys.executable, "-m", "cookiecutter", "--no-input", str(TEMPLATE),
                           "-o", str(tmp_path), "cache_backend=redis"],
                          capture_output=True, text=True, check=False)
    assert made.returncode == 0, made.stdout + made.stderr
    project = tmp_path / "contoso-portal"
    assert (project / "pyproject.toml").is_file()
    assert not [p for p in project.iterdir() if "requirements" in p.name]
    (line,) = [x for x in made.stdout.splitlines() if x.startswith("warning:")]
    assert f"127.0.0.1:{port}" in line and line.endswith(lock.command("redis"))
    assert lock.command("redis") in (project / "README.md").read_text(encoding="utf-8")


# ------------------------------------------------------------------ with the package index
REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==\S+")


def requirements(path: Path) -> dict[str, str]:
    """Each requirement of a compiled file: its name and its whole entry (continuation lines
    joined). Fails on an entry without a sha256 hash."""
    entries: dict[str, str] = {}
    text = path.read_text(encoding="utf-8").replace("\\\n", " ")
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = REQUIREMENT.match(line)
        assert match, f"{path.name}: not a pinned requirement: {line!r}"
        assert "--hash=sha256:" in line, f"{path.name}: no hash: {line!r}"
        entries[match.group(1).lower()] = line
    return entries


@pytest.mark.lock
def test_new_writes_hashed_locks_that_pip_installs(tmp_path: Path,
                                                   locking: pytest.MonkeyPatch) -> None:
    """FastAPI + SQL: both files, each requirement pinned and hashed; the runtime one holds
    both SQL drivers and the build backend, not the dev tools. A fresh environment takes it
    with hashes required, then the project without dependencies nor build isolation (as the
    image does), passes `pip check` and imports the app."""
    assert cli.main(["new", str(SQL_SPEC), "-o", str(tmp_path)]) == 0
    project = tmp_path / "acme-portal"
    runtime, dev = requirements(project / lock.RUNTIME), requirements(project / lock.DEV)
    assert {"fastapi", "uvicorn", "msal", "sqlalchemy", "psycopg", "psycopg-binary", "pymysql",
            "hatchling", "editables"} <= runtime.keys()
    assert "pytest" not in runtime and "gunicorn" not in runtime
    assert runtime.keys() < dev.keys() and {"pytest", "ruff", "mypy"} <= dev.keys()
    header = (project / lock.RUNTIME).read_text(encoding="utf-8").splitlines()[1]
    assert header.strip("# ") == lock.command("sql").split(" && ")[0]

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    pip = [sys.executable, "-m", "pip", "--python", python, "install", "--no-compile", "-q"]
    for args in (["--require-hashes", "-r", lock.RUNTIME],
                 ["--no-deps", "--no-build-isolation", "."]):
        done = subprocess.run([*pip, *args], cwd=project, capture_output=True, text=True,
                              timeout=600, check=False)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    checked = subprocess.run([sys.executable, "-m", "pip", "--python", python, "check"],
                             capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    imported = subprocess.run([python, "-c", "from acme_portal.app import create_app; "
                               "import psycopg, pymysql, acme_portal; print(acme_portal.__file__)"],
                              cwd=tmp_path, capture_output=True, text=True, check=False)
    assert imported.returncode == 0, imported.stderr
    assert str(venv) in imported.stdout  # the installed package, not the checkout


@pytest.mark.lock
def test_the_cookiecutter_hook_writes_the_locks(tmp_path: Path,
                                                locking: pytest.MonkeyPatch) -> None:
    """Flask + Redis through plain cookiecutter: the post-generation hook writes both files."""
    made = subprocess.run([sys.executable, "-m", "cookiecutter", "--no-input", str(TEMPLATE),
                           "-o", str(tmp_path), "cache_backend=redis"],
                          capture_output=True, text=True, check=False)
    assert made.returncode == 0, made.stdout + made.stderr
    assert f"Locked the dependencies: {lock.RUNTIME}, {lock.DEV}" in made.stdout
    project = tmp_path / "contoso-portal"
    runtime = requirements(project / lock.RUNTIME)
    assert {"flask", "gunicorn", "redis", "hiredis", "hatchling"} <= runtime.keys()
    assert {"psycopg", "pymysql"}.isdisjoint(runtime)
    assert {"pytest", "selenium"} <= requirements(project / lock.DEV).keys()


@pytest.mark.lock
def test_one_file_that_cannot_be_compiled_leaves_neither(
        tmp_path: Path, locking: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """requirements.txt compiles, requirements-dev.txt cannot (a constraint no pytest meets):
    neither file is written, nor any temporary one, and the line says uv's reason."""
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("pytest<0.1\n", encoding="utf-8")
    locking.setenv("UV_CONSTRAINT", str(constraints))
    assert cli.main(["new", str(SQL_SPEC), "-o", str(tmp_path / "out")]) == 0
    project = tmp_path / "out" / "acme-portal"
    assert not [p for p in project.iterdir() if "requirements" in p.name]
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"warning: {lock.RUNTIME} and {lock.DEV} not written (")
    assert "pytest" in line and line.endswith(lock.command("sql"))
