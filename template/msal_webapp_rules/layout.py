"""The project's layout: keep only the chosen framework's files, and the chosen shared store's.

The template holds every framework's adapter under `_frameworks/<framework>/`, laid out as in the
project; the chosen one is moved into place and the folder is removed, so that a project holds
no file of a framework it does not use. Files shared by some frameworks only are listed in
SHARED_BY. Idempotent (a project without `_frameworks/` is left as it is).

Every project has the memory and filesystem stores; the redis and sql stores (their modules,
migrations, tests and compose.yaml) only in a project generated with one (BACKEND_FILES).

The post-generation hook runs `arrange` in the rendered project; `msal-webapp new` calls it
in-process.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from msal_webapp_rules.schema import FRAMEWORKS

# The files of each shared store ({package} is the package's folder); folders end with "/".
BACKEND_FILES: dict[str, tuple[str, ...]] = {
    "redis": ("{package}/core/stores/redis.py", "tests/test_redis_store.py",
              "compose.redis.yaml"),
    "sql": ("{package}/core/stores/sql.py", "{package}/core/stores/sql_migrations/",
            "tests/test_sql_store.py", "compose.sql.yaml"),
}

# The files of the Microsoft Graph SDK option (downstream_apis.graph.sdk): they import
# azure-core and msgraph-sdk, which only such a project depends on.
GRAPH_SDK_FILES: tuple[str, ...] = ("{package}/core/sdk.py",)

# Files of the shared template that only some frameworks use (a framework not listed may bring
# its own file of that name in _frameworks/).
SHARED_BY: dict[str, tuple[str, ...]] = {
    "gunicorn.conf.py": ("flask", "django"),
    "tests/test_production_server.py": ("flask", "django"),
}


def select_framework(project: Path, framework: str) -> list[str]:
    """Move `_frameworks/<framework>/` into `project`; problems, if any (nothing is overwritten)."""
    if framework not in FRAMEWORKS:
        return [f"framework: {framework!r} is not one of {', '.join(FRAMEWORKS)}"]
    folder = project / "_frameworks"
    if not folder.is_dir():
        return []
    for name, users in SHARED_BY.items():
        if framework not in users and (project / name).exists():
            (project / name).unlink()
    chosen = folder / framework
    problems = []
    moves = []
    for dirpath, _, filenames in os.walk(chosen):
        for name in filenames:
            source = Path(dirpath) / name
            target = project / source.relative_to(chosen)
            if target.exists():
                problems.append(f"{target.relative_to(project)}: is in the shared template and "
                                f"in _frameworks/{framework}/")
            moves.append((source, target))
    if problems:
        return problems
    for source, target in moves:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(source), str(target))
    shutil.rmtree(folder)
    return []


def select_backend(project: Path, backend: str, package: str) -> None:
    """Remove the other shared stores' files; the chosen one's compose file becomes
    compose.yaml (memory and filesystem projects need no server, so they have none)."""
    for other, files in BACKEND_FILES.items():
        for name in files:
            path = project / name.format(package=package)
            if other == backend:
                if path.name == f"compose.{backend}.yaml" and path.exists():
                    path.replace(project / "compose.yaml")
            elif name.endswith("/"):
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def arrange(project: Path, framework: str, backend: str, package: str, *,
            graph_sdk: bool = False) -> list[str]:
    """Both steps on a rendered project, and the Graph SDK's files out unless `graph_sdk`;
    the problems, if any (then nothing was moved)."""
    problems = select_framework(project, framework)
    if not problems:
        select_backend(project, backend, package)
        if not graph_sdk:
            for name in GRAPH_SDK_FILES:
                (project / name.format(package=package)).unlink(missing_ok=True)
    return problems


def discarded(framework: str, backend: str, graph_sdk: bool = False) -> list[str]:
    """The paths (in the project, `{package}` for the package's folder; folders without a
    trailing '/') that `arrange` removes for this framework and store: they need no rendering."""
    paths = [f"_frameworks/{other}" for other in FRAMEWORKS if other != framework]
    paths += [name for name, users in SHARED_BY.items() if framework not in users]
    paths += [name.rstrip("/") for other, names in BACKEND_FILES.items() if other != backend
              for name in names]
    paths += [] if graph_sdk else list(GRAPH_SDK_FILES)
    return paths
