"""A generated project's Dockerfile and .dockerignore, for every framework: hadolint (offline)
finds nothing, and the rules the image is built on hold. The container lane
(tests/test_container_image.py) builds and runs the images."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from baking import FRAMEWORKS
from conftest import PROJECT_DIR, TEMPLATE
from test_ci_files import spec_for, tool

from generator import render
from generator import spec as gspec

FILES = ("Dockerfile", ".dockerignore")


def render_files(framework: str, out: Path) -> dict[str, str]:
    """The files as `msal-webapp new` renders them (cookiecutter's Jinja environment)."""
    from cookiecutter.environment import StrictEnvironment

    context = render.cookiecutter_context(gspec.spec_to_context(spec_for(framework, "memory")),
                                          TEMPLATE, out, [])
    env = StrictEnvironment(context=context, keep_trailing_newline=True)
    rendered = {}
    for name in FILES:
        text = (TEMPLATE / PROJECT_DIR / name).read_text(encoding="utf-8")
        rendered[name] = env.from_string(text).render(**context)
        path = out / framework / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rendered[name], encoding="utf-8")
    return rendered


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dockerfiles")
    for framework in FRAMEWORKS:
        render_files(framework, out)
    return {framework: out / framework for framework in FRAMEWORKS}


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", dockerfile.read_text(encoding="utf-8"))
    lines = [line.strip() for line in text.splitlines()]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1])
            for line in lines if line and not line.startswith("#")]


def test_hadolint_finds_nothing(rendered: dict[str, Path]) -> None:
    paths = [str(folder / "Dockerfile") for folder in rendered.values()]
    done = subprocess.run([tool("hadolint"), "--no-color", *paths], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_the_image_is_built_and_started_as_documented(rendered: dict[str, Path],
                                                      framework: str) -> None:
    steps = instructions(rendered[framework] / "Dockerfile")
    kinds = [kind for kind, _ in steps]
    assert steps[0] == ("ARG", "BASE_IMAGE=python:3.12-slim")
    assert all(args.startswith("${BASE_IMAGE}") for kind, args in steps if kind == "FROM"
               and "AS app" not in args), "every stage but the app's starts from BASE_IMAGE"
    runs = [args for kind, args in steps if kind == "RUN"]
    # The dependencies from the hashed lock only, before any of the app's code is copied.
    lock_install = next(i for i, (kind, args) in enumerate(steps)
                        if kind == "RUN" and "-r /tmp/requirements.txt" in args)
    assert "--require-hashes" in steps[lock_install][1]
    first_code = next(i for i, (kind, args) in enumerate(steps)
                      if kind == "COPY" and "pyproject.toml" in args)
    assert lock_install < first_code
    assert sum("--no-deps" in run for run in runs) == 2  # the wheel, then its install
    # A user of its own, numeric (runAsNonRoot can check it), before the command.
    (user,) = [args for kind, args in steps if kind == "USER"]
    assert re.fullmatch(r"[1-9][0-9]*:[1-9][0-9]*", user), user
    assert kinds.index("USER") < kinds.index("CMD")
    (health,) = [args for kind, args in steps if kind == "HEALTHCHECK"]
    assert "/readyz" in health and "python3" in health and "curl" not in health
    (cmd,) = [json.loads(args) for kind, args in steps if kind == "CMD"]
    command = " ".join(cmd)
    if framework == "fastapi":
        assert "uvicorn --factory" in command and "--no-proxy-headers" in command
    else:
        assert command.startswith("gunicorn -c gunicorn.conf.py") or (
            "exec gunicorn -c gunicorn.conf.py" in command)
        assert ("wsgi:application" if framework == "django" else "create_app()") in command
    assert not any(kind in ("ADD",) for kind in kinds), "COPY only: no remote or archive source"


def test_the_build_context_leaves_secrets_and_local_files_out(rendered: dict[str, Path]) -> None:
    """.dockerignore lets in only what the image is built from."""
    for framework, folder in rendered.items():
        patterns = [line.strip() for line in
                    (folder / ".dockerignore").read_text(encoding="utf-8").splitlines()
                    if line.strip() and not line.startswith("#")]
        assert patterns[0] == "*", "everything is left out, then what the build needs let in"
        allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
        assert allowed >= {"requirements.txt", "pyproject.toml", "contoso_portal"}, framework
        assert not allowed & {".env", "devprovider.env", ".venv", ".git", "tests", "instance"}
        for secret in ("**/.env", "**/*.env", "**/*.pem", "**/*.key", "**/*.pfx", "**/*.p12"):
            assert secret in patterns, (framework, secret)
        # Whatever the Dockerfile copies from the context is let in.
        copied = {word.rstrip("/") for kind, args in instructions(folder / "Dockerfile")
                  if kind == "COPY" and "--from=" not in args for word in args.split()[:-1]}
        assert copied <= allowed, (framework, copied - allowed)
