"""A generated project's CI files: its GitHub Actions workflow, Dependabot's configuration and
pre-commit's.

Every framework and store's rendering is checked against GitHub's schemas (check-jsonschema's
copies, offline) and audited by zizmor (offline); and one project runs its workflow's test job
here, step by step in the workflow's order: every `run:` step as written (the `uses:` steps,
GitHub's own actions, are skipped and named), in a virtual environment of its own that sees
this one's packages, so that the install step installs the project and nothing from the index.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from baking import FRAMEWORKS
from conftest import BASE_SPEC, PROJECT_DIR, TEMPLATE, mypy_seed

from generator import check, render
from generator import spec as gspec

WORKFLOW = ".github/workflows/ci.yml"
DEPENDABOT = ".github/dependabot.yml"
PRE_COMMIT = ".pre-commit-config.yaml"
CI_FILES = (WORKFLOW, DEPENDABOT, PRE_COMMIT)
STORES = ("memory", "filesystem", "redis", "sql")
# What the test job needs from its service containers, by store (tests/services.py).
SERVICES = {"memory": set(), "filesystem": set(), "redis": {"redis"},
            "sql": {"postgres", "mariadb"}}
# The generated suite's own variable: set, a missing server or browser fails its tests; unset,
# they skip. The local run takes it from this process's environment (`.ci/run` sets it), not
# from the workflow: a developer's machine without Chromium still runs this test.
REQUIRE_SERVICES = "MSAL_WEBAPP_REQUIRE_SERVICES"
# The test step runs the whole generated suite; the bakes (tests/test_bake.py) run it for every
# shape, so here it runs a few modules: the health probes and the real browser.
LOCAL_PYTEST_MODULES = "tests/test_health.py tests/test_real_browser.py"


def tool(name: str) -> str:
    """A command-line tool of the generator's [test] extra, from this environment."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found, f"{name} is missing: pip install -e '.[test]'"
    return found


def spec_for(framework: str, store: str) -> dict[str, Any]:
    spec = copy.deepcopy(BASE_SPEC)
    spec["framework"] = framework
    spec["cache"] = {"backend": store}
    return spec


def render_ci_files(framework: str, store: str, out: Path) -> dict[str, Path]:
    """The CI files as `msal-webapp new` renders them for this framework and store (with
    cookiecutter's own Jinja environment, without rendering the whole project)."""
    from cookiecutter.environment import StrictEnvironment

    context = render.cookiecutter_context(gspec.spec_to_context(spec_for(framework, store)),
                                          TEMPLATE, out, [])
    env = StrictEnvironment(context=context, keep_trailing_newline=True)
    files = {}
    for name in CI_FILES:
        text = (TEMPLATE / PROJECT_DIR / name).read_text(encoding="utf-8")
        path = out / f"{framework}-{store}" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(env.from_string(text).render(**context), encoding="utf-8")
        files[name] = path
    return files


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], dict[str, Path]]:
    out = tmp_path_factory.mktemp("ci-files")
    return {(framework, store): render_ci_files(framework, store, out)
            for framework in FRAMEWORKS for store in STORES}


def run(command: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(("schema", "name"), [("vendor.github-workflows", WORKFLOW),
                                              ("vendor.dependabot", DEPENDABOT)])
def test_every_rendering_follows_githubs_schema(
        rendered: dict[tuple[str, str], dict[str, Path]], schema: str, name: str) -> None:
    """check-jsonschema's vendored schemas, offline (no schema for pre-commit's file: its
    keys are checked below)."""
    paths = [str(files[name]) for files in rendered.values()]
    done = run([tool("check-jsonschema"), "--builtin-schema", schema, *paths])
    assert done.returncode == 0, done.stdout + done.stderr


def test_zizmor_finds_nothing_in_any_rendering(
        rendered: dict[tuple[str, str], dict[str, Path]]) -> None:
    """zizmor's audits (its regular persona, offline) of the workflow, Dependabot's file and
    pre-commit's, for every framework and store."""
    folders = sorted({str(files[WORKFLOW].parents[2]) for files in rendered.values()})
    done = run([tool("zizmor"), "--offline", "--collect=all", "--no-progress", "--", *folders])
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_workflow_is_least_privilege_pinned_and_has_the_stores_services(
        rendered: dict[tuple[str, str], dict[str, Path]]) -> None:
    for (framework, store), files in rendered.items():
        workflow = yaml.safe_load(files[WORKFLOW].read_text(encoding="utf-8"))
        assert workflow["permissions"] == {"contents": "read"}
        (job,) = workflow["jobs"].values()
        assert "permissions" not in job  # the workflow's, read only
        assert set(job.get("services", {})) == SERVICES[store], (framework, store)
        assert job["env"][REQUIRE_SERVICES] == "1"
        lines = files[WORKFLOW].read_text(encoding="utf-8").splitlines()
        for step in job["steps"]:
            if "uses" not in step:
                continue
            action, _, sha = step["uses"].partition("@")
            assert len(sha) == 40 and all(c in "0123456789abcdef" for c in sha), step
            line = next(line for line in lines if step["uses"] in line)
            assert line.rstrip().split("#")[-1].strip().startswith("v"), line  # the version
            if action == "actions/checkout":
                assert step["with"]["persist-credentials"] is False
        commands = [step["run"] for step in job["steps"] if "run" in step]
        assert commands[1:] == ["ruff check .", "mypy", "python -m pytest"]
        install = commands[0].splitlines()
        # The locked requirements only, hash-checked, then the project without dependencies.
        assert "python -m pip install --require-hashes -r requirements-dev.txt" in install
        assert "python -m pip install --no-deps --no-build-isolation -e ." in install
        assert "python -m pip check" in install


def test_dependabot_and_pre_commit_cover_what_they_should(
        rendered: dict[tuple[str, str], dict[str, Path]]) -> None:
    files = rendered[("flask", "memory")]
    dependabot = yaml.safe_load(files[DEPENDABOT].read_text(encoding="utf-8"))
    assert {u["package-ecosystem"] for u in dependabot["updates"]} == {"pip", "github-actions"}
    config = yaml.safe_load(files[PRE_COMMIT].read_text(encoding="utf-8"))
    hooks = {hook["id"] for repo in config["repos"] for hook in repo["hooks"]}
    assert {"ruff-check", "mypy", "trailing-whitespace", "end-of-file-fixer",
            "check-yaml", "detect-private-key"} <= hooks
    for repo in config["repos"]:
        assert repo["repo"] == "local" or len(repo["rev"]) == 40, repo  # frozen to a commit


# ------------------------------------------------------------------------------ a local run
def venv_over_this_one(folder: Path) -> Path:
    """A virtual environment whose interpreter also sees this environment's packages (a .pth
    file), so that installing a project with the same dependencies downloads none of them."""
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, timeout=300)
    python = folder / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; "
                              "print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    Path(purelib, "_this_environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n",
                                                      encoding="utf-8")
    return folder / "bin"


def stand_in_lock(project: Path) -> str:
    """A requirements-dev.txt for this environment: the project's requirements (dependencies,
    the server and dev extras, the build group) pinned to the versions installed here. pip
    checks hashes only of what it downloads, and installs nothing here: each hash is a stand-in
    (the real lock's install from the index is tests/test_lock.py's, in the `lock` lane)."""
    from importlib.metadata import version

    from packaging.requirements import Requirement

    data = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    extras = data["project"]["optional-dependencies"]
    texts = [*data["project"]["dependencies"], *extras["server"], *extras["dev"],
             *data["dependency-groups"]["build"]]
    names = sorted({Requirement(text).name for text in texts})
    return "".join(f"{name}=={version(name)} \\\n    --hash=sha256:{'0' * 64}\n"
                   for name in names)


def test_the_workflows_test_job_runs_here_step_by_step(tmp_path: Path, run_folder: Path) -> None:
    """One project (Flask, memory store): every `run:` step of its test job, as written and in
    the workflow's order, with the job's environment, in a fresh virtual environment (the
    install step installs the project into it); the `uses:` steps need GitHub and are skipped.
    What ran and what was skipped is printed."""
    project = render.render(gspec.spec_to_context(spec_for("flask", "memory")),
                            tmp_path / "out", gspec.template_dir())
    workflow = yaml.safe_load((project / WORKFLOW).read_text(encoding="utf-8"))
    (job,) = workflow["jobs"].values()
    bin_dir = venv_over_this_one(tmp_path / "venv")
    env = {**os.environ, **{k: str(v) for k, v in job.get("env", {}).items()},
           # python, pip and the project's scripts from the new environment; ruff and mypy
           # (the project's dev tools) from this one, where they are installed already.
           "PATH": os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent),
                                    os.environ.get("PATH", "")]),
           "PYTEST_ADDOPTS": f"-p no:randomly {LOCAL_PYTEST_MODULES}",
           # The Type-check step's cache starts with the libraries analysed, as CI's cache
           # would: the run's one analysis (the bakes' seed), not a first analysis of its own.
           "MYPY_CACHE_DIR": str(tmp_path / "mypy-cache")}
    (tmp_path / "mypy-cache").mkdir()
    check.seed_mypy_cache(tmp_path / "mypy-cache", mypy_seed(run_folder), project,
                          check.Check("workflow", project))
    env.pop(REQUIRE_SERVICES, None)
    if os.environ.get(REQUIRE_SERVICES):
        env[REQUIRE_SERVICES] = os.environ[REQUIRE_SERVICES]
    env.pop("VIRTUAL_ENV", None)
    install = next(step for step in job["steps"] if step.get("name") == "Install")
    missing = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c",
                              install["run"]], cwd=project, env=env, capture_output=True,
                             text=True, timeout=300)
    assert missing.returncode == 1, missing.stdout + missing.stderr
    assert missing.stdout.startswith("::error file=requirements-dev.txt::"), missing.stdout
    assert "README.md's command" in missing.stdout
    (project / "requirements-dev.txt").write_text(stand_in_lock(project), encoding="utf-8")
    ran, skipped = [], []
    for step in job["steps"]:
        name = step.get("name") or step.get("uses") or step["run"]
        if "run" not in step:
            skipped.append(f"{name} (uses: an action, needs GitHub)")
            continue
        started = time.monotonic()
        # GitHub's default shell on Linux: bash, stopping at the first failing command.
        done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c",
                               step["run"]], cwd=project, env={**env, **step.get("env", {})},
                              capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, (f"step {name!r} failed:\n{done.stdout[-3000:]}\n"
                                      f"{done.stderr[-3000:]}")
        ran.append(f"{name} ({time.monotonic() - started:.0f} s)")
    print("ran:", "; ".join(ran), "| skipped:", "; ".join(skipped))
    assert [s.split(" (")[0] for s in ran] == ["Install", "Lint", "Type-check", "Test"]
    assert len(skipped) == 2
    # The install step installed the project into the new environment.
    assert run([str(bin_dir / "python"), "-c", "import contoso_portal"]).returncode == 0
