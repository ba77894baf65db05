"""Bake one spec the way a user does (`msal-webapp new`) and run every check on the result.

Each check runs in a subprocess with this interpreter: one shared virtual environment holds every
generated app's dependencies, so no bake installs anything, and a generated project's conftest,
rootdir and package never mix with the root suite.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

UNRENDERED = re.compile(r"\{\{\s*cookiecutter\.|\{%[^%]*cookiecutter\.")
SUMMARY_LINE = re.compile(r"^(FAILED|ERROR) ", re.MULTILINE)
TIMEOUT = 900


def cli_command() -> list[str]:
    script = Path(sys.executable).parent / "msal-webapp"
    return [str(script)] if script.exists() else [sys.executable, "-m", "generator.cli"]


@dataclass
class Bake:
    """What happened to one spec: the project (if rendered) and one text per failed check."""

    name: str
    spec_file: Path
    project: Path | None = None
    problems: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    generated_summary: str = ""

    def report(self, about: str = "") -> str:
        head = f"spec shape {self.name}" + (f" ({about})" if about else "")
        spec_text = self.spec_file.read_text(encoding="utf-8")
        return "\n".join([f"{head}: {len(self.problems)} check(s) failed",
                          f"--- spec ({self.spec_file}):", spec_text.rstrip(),
                          *(f"--- {p}" for p in self.problems)])


def _run(name: str, command: list[str], cwd: Path, bake: Bake,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str] | None:
    started = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired as exc:
        bake.problems.append(f"{name}: no result after {TIMEOUT}s\n{exc.stdout!r:.3000}")
        return None
    finally:
        bake.timings[name] = time.perf_counter() - started
    return done


def check_files(project: Path) -> list[str]:
    """Every file rendered (no template code left) and parsing; .env.example but no .env."""
    problems = []
    files = [p for p in project.rglob("*") if p.is_file() and ".ruff_cache" not in p.parts]
    if not files:
        problems.append("no files")
    for path in files:
        rel = path.relative_to(project)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        if UNRENDERED.search(text):
            problems.append(f"{rel}: unrendered template code")
        try:
            if path.suffix == ".py":
                compile(text, str(path), "exec")
            elif path.suffix == ".toml":
                tomllib.loads(text)
            elif path.suffix == ".json":
                json.loads(text)
            elif path.suffix in {".yaml", ".yml"}:
                yaml.safe_load(text)
        except (SyntaxError, ValueError, yaml.YAMLError) as exc:
            problems.append(f"{rel}: does not parse: {exc}")
    if not (project / ".env.example").is_file():
        problems.append(".env.example is missing")
    if (project / ".env").exists():
        problems.append(".env was generated (it must only be created by the user)")
    return problems


# Generated test modules that test core code and test tools whose text is the same for every spec
# (only the package name differs): the HTTP client and its deadlines, the stores, sessions and
# token caches, the test browser. The examples run them; spec shapes, which exist to catch what
# depends on the spec, skip them (about half of a generated suite's time, mostly deadline waits).
SHAPE_INDEPENDENT_MODULES = (
    "tests/test_http_client.py", "tests/test_time_limits.py", "tests/test_stores.py",
    "tests/test_sessions.py", "tests/test_token_cache.py", "tests/test_browser.py",
)


def bake_and_check(name: str, spec: dict[str, Any] | Path, workdir: Path,
                   mypy_cache: Path, *, whole_suite: bool = True) -> Bake:
    """Render ``spec`` with the CLI into ``workdir`` and run files, ruff, mypy and its suite
    (without SHAPE_INDEPENDENT_MODULES unless ``whole_suite``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    if isinstance(spec, Path):
        spec_file = spec
    else:
        spec_file = workdir / "spec.yaml"
        spec_file.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True),
                             encoding="utf-8")
    bake = Bake(name, spec_file)
    out = workdir / "out"
    done = _run("msal-webapp new", [*cli_command(), "new", str(spec_file), "-o", str(out)],
                workdir, bake)
    if done is None:
        return bake
    if done.returncode != 0:
        bake.problems.append(f"msal-webapp new: exit {done.returncode}\n{done.stderr[-3000:]}")
        return bake
    projects = [p for p in out.iterdir() if p.is_dir()]
    if len(projects) != 1:
        bake.problems.append(f"msal-webapp new left {[p.name for p in projects]} in {out}")
        return bake
    project = bake.project = projects[0]

    bake.problems += [f"files: {p}" for p in check_files(project)]
    bake.problems += [f"files: {m} is listed in SHAPE_INDEPENDENT_MODULES but not generated"
                      for m in SHAPE_INDEPENDENT_MODULES if not (project / m).is_file()]
    ruff = _run("ruff", [sys.executable, "-m", "ruff", "check", "--no-cache", "."], project, bake)
    if ruff is not None and ruff.returncode != 0:
        bake.problems.append(f"ruff check:\n{(ruff.stdout + ruff.stderr)[-4000:]}")
    mypy = _run("mypy", [sys.executable, "-m", "mypy", "--cache-dir", str(mypy_cache)],
                project, bake)
    if mypy is not None and mypy.returncode != 0:
        bake.problems.append(f"mypy:\n{(mypy.stdout + mypy.stderr)[-4000:]}")

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "MSAL_WEBAPP_SPEC_SHAPES"))}
    env["PYTHONPATH"] = str(project)
    env["COLUMNS"] = "240"  # long enough for the reasons in the "FAILED ..." summary lines
    suite = _run("generated suite",
                 [sys.executable, "-m", "pytest", "-q", "-rfE", "-p", "no:cacheprovider",
                  "-p", "no:xdist", "-p", "no:randomly",
                  *([] if whole_suite else [f"--ignore={m}" for m in SHAPE_INDEPENDENT_MODULES])],
                 project, bake, env)
    if suite is not None:
        lines = suite.stdout.strip().splitlines()
        bake.generated_summary = lines[-1] if lines else ""
        if suite.returncode != 0 or not re.search(r"\d+ passed", bake.generated_summary):
            failing = [line for line in suite.stdout.splitlines() if SUMMARY_LINE.match(line)]
            detail = "\n".join(failing) if failing else (suite.stdout[-4000:]
                                                         + suite.stderr[-2000:])
            bake.problems.append(f"generated suite (exit {suite.returncode}, "
                                 f"{bake.generated_summary}); failing tests:\n{detail}")
    return bake
