"""A generated project's locked requirements: every package pinned, with its sha256 hashes.

`uv pip compile --universal --generate-hashes` resolves pyproject.toml's ranges against the
package index into two requirement files that plain pip installs in hash-checking mode
(`pip install --require-hashes -r requirements.txt`), so neither the image nor CI needs uv:

- requirements.txt: the dependencies, the `server` extra (the production server), the SQL
  drivers of a SQL store, and the build backend (the `build` dependency group), which
  `pip install --no-deps --no-build-isolation .` then uses instead of fetching an unhashed one;
- requirements-dev.txt: the same and the `dev` extra (tests, linters, type checker).

--universal: one file for every platform and Python version pyproject.toml allows (markers),
not only for the machine that made it. The `.txt` names are the ones Dependabot, GitHub's
dependency graph and most hosting builders read. uv.lock, uv's own format, is not used: pip
cannot install it.

`msal-webapp new` and the cookiecutter post-generation hook call `write_locks`. The files are
written only when both compiled, each through a temporary file renamed into place: a project
has both complete files or neither (then `write_locks` returns one line with the command).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

RUNTIME, DEV = "requirements.txt", "requirements-dev.txt"
# Set (to anything but "" or "0"), `msal-webapp new` and the hook write no lock.
NO_LOCK_ENV = "MSAL_WEBAPP_NO_LOCK"
# The whole compilation of one file, index look-ups and downloads included. Each HTTP request
# has uv's own timeout (UV_HTTP_TIMEOUT, 10 s here unless set) and one retry (UV_HTTP_RETRIES):
# an index that does not answer is reported in seconds, not after uv's default 30 s and 3 retries.
COMPILE_TIMEOUT = 180.0
HTTP_DEFAULTS = {"UV_HTTP_TIMEOUT": "10", "UV_HTTP_RETRIES": "1"}


def extras(backend: str) -> list[str]:
    """The extras of requirements.txt: the production server, and for a SQL store both drivers
    (the database is chosen by TOKEN_CACHE_SQL_URL when the app runs, not by the spec: one
    image serves PostgreSQL, MySQL/MariaDB and SQLite)."""
    return ["server", *(["postgresql", "mysql"] if backend == "sql" else [])]


def compile_args(backend: str, output: str) -> list[str]:
    """`uv` arguments that write `output` (RUNTIME or DEV), as a user types them."""
    chosen = extras(backend) + (["dev"] if output == DEV else [])
    return ["pip", "compile", "pyproject.toml", "--universal", "--generate-hashes",
            *(arg for extra in chosen for arg in ("--extra", extra)), "--group", "build",
            "-o", output]


def command(backend: str) -> str:
    """The shell command that writes both files in the project's directory (uv installed)."""
    return " && ".join(shlex.join(["uv", *compile_args(backend, name)]) for name in (RUNTIME, DEV))


def disabled() -> bool:
    return os.environ.get(NO_LOCK_ENV, "").strip() not in ("", "0")


def uv_executable() -> str | None:
    """uv's binary: the `uv` package's (a dependency of msal-webapp), else one on PATH."""
    try:
        import uv  # type: ignore[import-not-found, unused-ignore]

        return str(uv.find_uv_bin())
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")


def _environment() -> dict[str, str]:
    """uv's environment: this one; pip's index (PIP_INDEX_URL) when uv's own is not set; short
    HTTP timeouts unless set; the running interpreter for the few checks uv makes with one
    (never a download of another)."""
    env = dict(os.environ)
    if env.get("PIP_INDEX_URL") and not (env.get("UV_INDEX_URL") or env.get("UV_DEFAULT_INDEX")):
        env["UV_INDEX_URL"] = env["PIP_INDEX_URL"]
    for name, value in HTTP_DEFAULTS.items():
        env.setdefault(name, value)
    env.setdefault("UV_PYTHON", sys.executable)
    env.setdefault("UV_PYTHON_DOWNLOADS", "never")
    return env


def _why(stderr: str) -> str:
    """uv's error in one line: its first line, the outermost cause (e.g. the URL it could not
    fetch) and the innermost (e.g. the connection refused)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if not lines:
        return "uv failed without a message"
    first = lines[0].removeprefix("error: ")
    causes = [line.removeprefix("cause: ") for line in lines[1:] if line.startswith("cause:")]
    shown = list(dict.fromkeys(c for c in causes[:1] + causes[-1:] if c not in first))
    text = first + (f" ({'; '.join(shown)})" if shown else "")
    return text if len(text) <= 300 else text[:297] + "..."


def _compile(uv: str, project: Path, backend: str, output: str, env: dict[str, str]) -> str:
    """One file's text, from uv's standard output (nothing is written by uv itself)."""
    args = compile_args(backend, output)
    args = args[:args.index("-o")]  # the text comes on stdout; the header names the file
    header = shlex.join(["uv", *compile_args(backend, output)])
    try:
        done = subprocess.run([uv, *args, "--quiet", "--custom-compile-command", header],
                              cwd=project, env=env, capture_output=True, text=True,
                              timeout=COMPILE_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as exc:
        raise LockError(f"uv did not finish in {COMPILE_TIMEOUT:.0f} s") from exc
    if done.returncode != 0:
        raise LockError(_why(done.stderr))
    if "--hash=sha256:" not in done.stdout:
        raise LockError("uv wrote no hashed requirements")
    return done.stdout


class LockError(Exception):
    """A lock file could not be compiled (no file was written)."""


def write_locks(project: Path, backend: str) -> str | None:
    """Compile and write RUNTIME and DEV in `project`; None when both are written, else one
    line saying why not and the command to write them later (neither file is then written)."""
    uv = uv_executable()
    later = f"write them later in {project.name}/ with: {command(backend)}"
    if uv is None:
        return f"{RUNTIME} and {DEV} not written (uv is not installed: pip install uv); {later}"
    env = _environment()
    temporary: list[Path] = []
    placed: list[Path] = []
    try:
        for name in (RUNTIME, DEV):
            text = _compile(uv, project, backend, name, env)
            handle, temp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=project)
            temporary.append(Path(temp))
            with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as file:
                file.write(text)
        for written, name in zip(temporary, (RUNTIME, DEV), strict=True):
            written.chmod(0o644)  # mkstemp's 0600 would keep it from other readers (an image)
            os.replace(written, project / name)
            placed.append(project / name)
        return None
    except (LockError, OSError) as exc:
        for done in placed:  # never one file without the other
            done.unlink(missing_ok=True)
        return f"{RUNTIME} and {DEV} not written ({exc}); {later}"
    finally:
        for leftover in temporary:
            leftover.unlink(missing_ok=True)
