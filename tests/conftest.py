"""Shared fixtures of the root suite (generator and template hooks)."""

from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template"
PROJECT_DIR = "{{cookiecutter.project_slug}}"

SPEC_SHAPES_ENV = "MSAL_WEBAPP_SPEC_SHAPES"

# No test writes a project's locked requirements (uv against the package index: network-bound)
# unless it says so: tests/test_lock.py removes this for its own runs. Set here, it reaches the
# CLI run in-process, xdist's workers and cookiecutter's post-generation hook alike.
os.environ["MSAL_WEBAPP_NO_LOCK"] = "1"


@pytest.fixture(scope="session")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder shared by the xdist workers of this run: the bakes' results and the run's one
    mypy analysis of every library (`generator.check.seed_mypy_cache`). In the run's base
    temporary folder (each worker's is inside it), so pytest removes it with the rest."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    folder = base / "bake-results"
    folder.mkdir(exist_ok=True)
    return folder


def mypy_seed(run_folder: Path) -> Path:
    """Where the run keeps its one mypy analysis of every library (`seed_mypy_cache`)."""
    return run_folder / "mypy-cache"


def pytest_addoption(parser: pytest.Parser) -> None:
    default = os.environ.get(SPEC_SHAPES_ENV, "0").strip() or "0"
    parser.addoption(
        "--spec-shapes", type=int, default=int(default), metavar="N",
        help="also bake N spec shapes drawn at random by hypothesis from the spec schema, "
             f"each one rendered, linted, type-checked and tested (default: ${SPEC_SHAPES_ENV} "
             "or 0)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "compares_bakes: compares the results of bake tests of this run (runs last)")
    config.addinivalue_line(
        "markers", "lock: needs the package index (PyPI): runs only when selected with "
                   "`-m lock` (.ci/run runs that lane after the default suite)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The comparisons of bakes last: by then their bakes are done or under way on other
    workers (a comparison waits for a bake under way, and bakes one that has not started).
    Tests marked `lock` are left out unless a -m expression names the marker."""
    if "lock" not in (config.option.markexpr or ""):
        lane = [item for item in items if item.get_closest_marker("lock")]
        if lane:
            config.hook.pytest_deselected(items=lane)
            items[:] = [item for item in items if not item.get_closest_marker("lock")]
    items.sort(key=lambda item: item.get_closest_marker("compares_bakes") is not None)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line per failed spec shape at the end of the run (the details are in its report)."""
    failed = [value for report in terminalreporter.stats.get("failed", [])
              for key, value in getattr(report, "user_properties", [])
              if key == "spec_shape_failed"]
    reports = terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", [])
    properties = [(key, value) for report in reports if report.when == "call"
                  for key, value in report.user_properties]
    baked = sum(1 if key == "spec_shape" else value for key, value in properties
                if key in ("spec_shape", "random_shapes"))
    if failed:
        terminalreporter.section("spec shapes that failed")
        for line in failed:
            terminalreporter.write_line(line)
    failed_ids = [value for key, value in properties if key == "spec_shape_failed_id"]
    if baked:
        terminalreporter.write_line(f"spec shapes: {baked} baked; failed: "
                                    + (", ".join(failed_ids) or "none"))


BASE_SPEC: dict[str, Any] = {
    "project_name": "Contoso Portal",
    "framework": "flask",
    "authority": {"kind": "entra", "tenant": "organizations"},
    "credential": {"kind": "secret"},
    "cache": {"backend": "memory"},
    "downstream_apis": {
        "graph": {"scopes": ["User.Read"]},
        "todo": {
            "base_url": "https://api.contoso.com/",
            "scopes": ["api://11111111-2222-3333-4444-555555555555/Todo.Read"],
        },
    },
    "sign_in_api": "graph",
}


@pytest.fixture(autouse=True, scope="session")
def _render_cache(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """`msal-webapp new` keeps each render in a cache of merge bases (generator/update.py): in a
    temporary directory during the tests, not the user's ~/.cache."""
    saved = os.environ.get("MSAL_WEBAPP_CACHE_DIR")
    os.environ["MSAL_WEBAPP_CACHE_DIR"] = str(tmp_path_factory.mktemp("render-cache"))
    yield
    if saved is None:
        del os.environ["MSAL_WEBAPP_CACHE_DIR"]
    else:
        os.environ["MSAL_WEBAPP_CACHE_DIR"] = saved


@pytest.fixture
def spec() -> dict[str, Any]:
    """A fresh copy of a valid spec (examples/app.yaml without its `authorization`)."""
    return copy.deepcopy(BASE_SPEC)


def write_spec(directory: Path, spec: Any, name: str = "spec.yaml") -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False) if not isinstance(spec, str) else spec,
                    encoding="utf-8")
    return path


def make_mini_template(root: Path, files: dict[str, str] | None = None,
                       hooks: dict[str, str] | None = None) -> Path:
    """A small copy of the template: the real cookiecutter.json and hooks, a tiny project."""
    template = root / "mini-template"
    (template / "hooks").mkdir(parents=True)
    context = json.loads((TEMPLATE / "cookiecutter.json").read_text(encoding="utf-8"))
    context["_copy_without_render"] = []
    (template / "cookiecutter.json").write_text(json.dumps(context), encoding="utf-8")
    shutil.copy(TEMPLATE / "hooks" / "pre_gen_project.py", template / "hooks")
    shutil.copytree(TEMPLATE / "msal_webapp_rules", template / "msal_webapp_rules",
                    ignore=shutil.ignore_patterns("__pycache__"))
    project = {
        "README.md": "# {{ cookiecutter.project_name }}\n",
        "pyproject.toml": '[project]\nname = "{{ cookiecutter.project_slug }}"\n',
        "{{cookiecutter.package_name}}/__init__.py":
            "APIS = {{ cookiecutter.downstream_apis | tojson }}\n",
        "settings.json": '{"redirect_path": "{{ cookiecutter.redirect_path }}"}\n',
        "templates/page.html": "{% raw %}{% block body %}{{ user }}{% endblock %}{% endraw %}\n",
    }
    project.update(files or {})
    for rel, text in project.items():
        path = template / PROJECT_DIR / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for name, text in (hooks or {}).items():
        (template / "hooks" / name).write_text(text, encoding="utf-8")
    return template


@pytest.fixture
def mini_template(tmp_path: Path) -> Path:
    return make_mini_template(tmp_path)
