"""Bake one spec the way a user does (`msal-webapp new`) and run every check on the result.

The render, ruff, the generated suite and mypy are `msal-webapp check`'s own (generator/check.py:
`check_spec`): the project is rendered by the CLI's entry point in this process; ruff, mypy and
the generated suite run in subprocesses with this interpreter: one shared virtual environment
holds every generated app's dependencies, so no bake installs anything, and a generated
project's conftest, rootdir and package never mix with the root suite. Here: the checks of the
rendered files that only this repository makes (every file rendered, nothing of another
framework or store), and the lists of generated modules that each kind of bake runs.
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

import yaml

from generator import check
from generator import spec as gspec

ROOT = Path(__file__).resolve().parents[1]
PROJECT_TEMPLATE = ROOT / "template" / "{{cookiecutter.project_slug}}"
FRAMEWORKS: tuple[str, ...] = gspec.rules().FRAMEWORKS
# Imports that give away a framework's code: none may be left in another framework's project.
FRAMEWORK_IMPORT = re.compile(r"^\s*(?:from|import)\s+(flask|django|fastapi|starlette|uvicorn)\b",
                              re.MULTILINE)
FRAMEWORK_OF_IMPORT = {"flask": "flask", "django": "django", "fastapi": "fastapi",
                       "starlette": "fastapi", "uvicorn": "fastapi"}
UNRENDERED = re.compile(r"\{\{\s*cookiecutter\.|\{%[^%]*cookiecutter\.")
# The pytest plugin that keeps the generated suites' rewritten asserts for a run (by content).
BAKE_PLUGINS = Path(__file__).resolve().parent / "bake_plugins"


def cli_command() -> list[str]:
    """The `msal-webapp` command of this environment."""
    script = Path(sys.executable).parent / "msal-webapp"
    return [str(script)] if script.exists() else [sys.executable, "-m", "generator.cli"]


# One bake's result: `msal-webapp check`'s record of a check (results JSON, report, CPU times).
Bake = check.Check


# PEM blocks of keys and certificates (the text "-----BEGIN " followed by what it begins).
SECRET_MATERIAL = re.compile(r"-----BEGIN (?:[A-Z]+ )?(?:PRIVATE KEY|CERTIFICATE)-----")


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
        if SECRET_MATERIAL.search(text) or path.suffix.lower() in {".pfx", ".p12", ".key"}:
            # Tests make their keys and certificates at run time; a project ships none.
            problems.append(f"{rel}: holds key or certificate material")
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


def baked_default(config_py: Path, name: str) -> Any:
    """The `name=` value of a generated config.py's AppDefaults (read, not imported)."""
    import ast

    for node in ast.walk(ast.parse(config_py.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "AppDefaults":
            for keyword in node.keywords:
                if keyword.arg == name:
                    return ast.literal_eval(keyword.value)
    raise AssertionError(f"{config_py}: no AppDefaults({name}=...)")


def baked_credential(config_py: Path) -> dict[str, str]:
    """The `credential=` mapping of a generated config.py's AppDefaults (read, not imported)."""
    value: dict[str, str] = baked_default(config_py, "credential")
    return value


def baked_authorization(config_py: Path) -> tuple[Any, str]:
    """The `authorization=` mapping of a generated config.py's AppDefaults (read, not imported)
    and the comment line above it."""
    import ast

    text = config_py.read_text(encoding="utf-8")
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "AppDefaults":
            for keyword in node.keywords:
                if keyword.arg == "authorization":
                    comment = text.splitlines()[keyword.value.lineno - 2].strip()
                    return ast.literal_eval(keyword.value), comment
    raise AssertionError(f"{config_py}: no AppDefaults(authorization=...)")


def post_gen_hook() -> Any:
    """The post-generation hook as a module (it runs nothing when imported)."""
    import importlib.util

    path = gspec.template_dir() / "hooks" / "post_gen_project.py"
    module_spec = importlib.util.spec_from_file_location("post_gen_project", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def framework_files(framework: str, package: str) -> set[str]:
    """The project paths of a framework's own files (template/…/_frameworks/<framework>/)."""
    folder = PROJECT_TEMPLATE / "_frameworks" / framework
    return {path.relative_to(folder).as_posix().replace("{{cookiecutter.package_name}}", package)
            for path in folder.rglob("*") if path.is_file() and "__pycache__" not in path.parts}


def foreign_framework_files(project: Path, framework: str, package: str) -> list[str]:
    """Files or imports of a framework other than `framework` left in the project."""
    problems = []
    if (project / "_frameworks").exists():
        problems.append("_frameworks/ was left in the project")
    own = framework_files(framework, package)
    shared_by: dict[str, tuple[str, ...]] = post_gen_hook().SHARED_BY
    for other in FRAMEWORKS:
        if other == framework:
            continue
        for rel in sorted(framework_files(other, package) - own):
            if framework in shared_by.get(rel, ()):
                continue  # the shared template's file of that name, which this framework uses
            if (project / rel).exists():
                problems.append(f"{rel}: a file of the {other} adapter")
    for rel, users in shared_by.items():
        if framework not in users and rel not in own and (project / rel).exists():
            problems.append(f"{rel}: only for {', '.join(users)}")
    for path in project.rglob("*.py"):
        for match in FRAMEWORK_IMPORT.finditer(path.read_text(encoding="utf-8")):
            if FRAMEWORK_OF_IMPORT[match[1]] != framework:
                problems.append(f"{path.relative_to(project)}: imports {match[1]}")
    return problems


def foreign_backend_files(project: Path, backend: str, package: str) -> list[str]:
    """Files of a shared store other than `backend`'s left in the project, or its own missing."""
    problems = []
    shared: dict[str, tuple[str, ...]] = post_gen_hook().BACKEND_FILES
    for other, files in shared.items():
        for name in files:
            path = project / name.format(package=package)
            if other != backend and path.exists():
                problems.append(f"{path.relative_to(project)}: a file of the {other} store")
            elif other == backend and not name.startswith("compose.") and not path.exists():
                problems.append(f"{path.relative_to(project)}: missing for the {other} store")
    if (project / "compose.yaml").exists() != (backend in shared):
        problems.append(f"compose.yaml: {'missing' if backend in shared else 'not expected'} "
                        f"for the {backend} store")
    return problems


# Generated test modules that test core code and test tools whose text is the same for every spec
# (only the package name differs): the HTTP client and its deadlines, the stores, sessions and
# token caches, the test browser, the local provider's own conformance tests; and the slow
# end-to-end modules whose outcome hardly depends on the spec:
# - the production server (its process and configuration) and the real browser;
# - bad input and abuse, and a store that fails or holds entries of the wrong shape (the
#   framework's and the store's code: the parity bakes run them with every store in every
#   framework);
# - the health probes and HSTS (the same: the provider's discovery URL, the one part that
#   depends on the authority, is test_authority_kinds.py's);
# - several tenants (an Entra app at `organizations` whatever the spec's authority; with every
#   store too);
# - the rules of a downstream API call (throttling, redirects, bounded answers: each
#   framework's transport, whatever the spec's APIs);
# - every credential kind end to end (the project's own kind, its baked defaults and its
#   provider's rotation rules are in test_credentials.py, which shapes run).
# The examples run them (examples/app.yaml in every framework); spec shapes, which exist to
# catch what depends on the spec, skip them (about half of a generated suite's time, mostly
# deadline waits and process starts).
SHAPE_INDEPENDENT_MODULES = (
    "tests/test_http_client.py", "tests/test_time_limits.py", "tests/test_stores.py",
    "tests/test_sessions.py", "tests/test_token_cache.py", "tests/test_browser.py",
    "tests/test_devprovider.py", "tests/test_production_server.py", "tests/test_real_browser.py",
    "tests/test_credential_kinds.py", "tests/test_redis_store.py", "tests/test_sql_store.py",
    "tests/test_tcp_proxy.py", "tests/test_instances.py", "tests/test_processes.py",
    "tests/test_bad_input.py", "tests/test_downstream.py", "tests/test_tenants.py",
    "tests/test_store_faults.py", "tests/test_health.py",
    "tests/test_slow_clients.py",
)
# What a page does with each store, in every framework: the web flow, store faults, two app
# instances under their production servers sharing a store, and bad input (a view of the
# user's saving the session, oversized bodies, hostile values), who may do what, and single
# sign-out. The backend parity test runs these (and only these) for every store in every
# framework and compares their test ids.
BEHAVIOURAL_MODULES = ("tests/test_web_flow.py", "tests/test_store_faults.py",
                       "tests/test_instances.py", "tests/test_bad_input.py",
                       "tests/test_authorization.py", "tests/test_single_sign_out.py",
                       "tests/test_tenants.py", "tests/test_health.py")


# The Graph SDK's tests (downstream_apis.graph.sdk) are in no list above: they depend on the spec
# (every test skips in a project without the option, examples/app.yaml among them), so the
# shapes and examples with the option run them; those must run them, not skip them all.
GRAPH_SDK_MODULE = "tests/test_graph_sdk.py"


def graph_sdk_problems(context: dict[str, Any], outcomes: dict[str, str],
                       modules: tuple[str, ...] = (), skip: tuple[str, ...] = ()) -> list[str]:
    """Why a bake's suite did not test the Graph SDK although its spec has it (no test of
    GRAPH_SDK_MODULE passed), when that module was to run."""
    if not context.get("graph_sdk") or GRAPH_SDK_MODULE in skip or (
            modules and GRAPH_SDK_MODULE not in modules):
        return []
    if any(test.startswith(f"{GRAPH_SDK_MODULE}::") and outcome == "passed"
           for test, outcome in outcomes.items()):
        return []
    return [f"generated suite: downstream_apis.graph.sdk is set but no test of "
            f"{GRAPH_SDK_MODULE} passed (all skipped or missing)"]


# Generated test modules that exercise no framework code: the HTTP client, the stores, sessions and
# token caches, the test browser and tools, the local provider. Rendered from one text for every
# framework, they import nothing of a framework's own files and use no app fixture
# (`framework_independent_problems` checks that on the parity bakes' projects). Their outcome is
# the same in every framework: the parity bakes run them in examples/app.yaml's own framework
# only (and every example's whole suite runs them in the example's framework).
FRAMEWORK_INDEPENDENT_MODULES = (
    "tests/test_http_client.py", "tests/test_stores.py", "tests/test_sessions.py",
    "tests/test_token_cache.py", "tests/test_browser.py", "tests/test_devprovider.py",
    "tests/test_tcp_proxy.py", "tests/test_processes.py",
)
# What makes a test module depend on the framework: the module that serves this framework's app
# (tests/app_server.py), the app fixtures (tests/conftest.py), a framework's own package.
_FRAMEWORK_DEPENDENCY = re.compile(
    r"\b(?:app_server|make_app|app_under_test|app_in_each_mode|create_app|flask|django|"
    r"fastapi|starlette|uvicorn|gunicorn)\b")


def framework_independent_problems(projects: dict[str, Path],
                                   modules: tuple[str, ...] = FRAMEWORK_INDEPENDENT_MODULES
                                   ) -> list[str]:
    """Why ``modules`` may depend on the framework, given one project of the same spec per
    framework (framework -> project): a module whose text differs between them, or that names
    a framework's app server, an app fixture or a framework."""
    problems = []
    for module in modules:
        texts = {name: (project / module).read_text(encoding="utf-8")
                 if (project / module).is_file() else None
                 for name, project in projects.items()}
        if None in texts.values() or len(set(texts.values())) != 1:
            problems.append(f"{module}: not the same file in every framework's project")
            continue
        found = _FRAMEWORK_DEPENDENCY.search(next(iter(texts.values())) or "")
        if found:
            problems.append(f"{module}: names {found[0]!r}, so it may depend on the framework")
    return problems


def bake_and_check(name: str, spec: dict[str, Any] | Path, workdir: Path,
                   mypy_cache: Path, *, mypy_seed: Path | None = None, whole_suite: bool = True,
                   framework: str | None = None, backend: str | None = None,
                   modules: tuple[str, ...] = (), skip: tuple[str, ...] = (),
                   typecheck: bool = True, kept_rewrites: Path | None = None,
                   keyword: str = "") -> Bake:
    """Render ``spec`` with the CLI into ``workdir`` and run files, ruff, its suite (without
    SHAPE_INDEPENDENT_MODULES unless ``whole_suite``; only ``modules`` if given; never
    ``skip``; only the tests that the pytest ``-k`` expression ``keyword`` selects, if given)
    and mypy (if ``typecheck``; its cache in ``mypy_cache``, by package name, seeded
    from ``mypy_seed``); ``framework`` and ``backend`` override the spec's. ``kept_rewrites``: a
    folder that keeps the suite's rewritten asserts for the bakes of a run
    (bake_plugins/kept_rewrites.py)."""
    workdir.mkdir(parents=True, exist_ok=True)
    if framework is not None or backend is not None:
        spec = dict(gspec.load_spec(spec) if isinstance(spec, Path) else spec)
        if framework is not None:
            spec["framework"] = framework
        if backend is not None:
            spec["cache"] = {"backend": backend}
    if isinstance(spec, Path):
        spec_file = spec
    else:
        spec_file = workdir / "spec.yaml"
        spec_file.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True),
                             encoding="utf-8")
    context = gspec.spec_to_context(gspec.load_spec(spec_file))
    options = check.Options(
        pytest_args=(*(["-p", "kept_rewrites"] if kept_rewrites is not None else []),
                     *([] if whole_suite or modules
                       else [f"--ignore={m}" for m in SHAPE_INDEPENDENT_MODULES]),
                     *[f"--ignore={m}" for m in skip], *(["-k", keyword] if keyword else []),
                     *modules),
        typecheck=typecheck, mypy_cache=mypy_cache, mypy_seed=mypy_seed,
        suite_pythonpath=(str(BAKE_PLUGINS),) if kept_rewrites is not None else (),
        suite_env=(("KEPT_REWRITES_DIR", str(kept_rewrites)),)
        if kept_rewrites is not None else ())

    def check_files_of(bake: Bake, project: Path) -> None:
        for problem in rendered_file_problems(project, context):
            bake.fail("files", f"files: {problem}")

    bake = check.check_spec(name, spec_file, workdir, options, after_render=check_files_of)
    if "generated suite" in bake.timings and not any(
            p.startswith("generated suite: no result") for p in bake.problems):
        for problem in graph_sdk_problems(context, bake.outcomes, modules, skip):
            bake.fail("suite", problem)
    return bake


def rendered_file_problems(project: Path, context: dict[str, Any]) -> list[str]:
    """What is wrong with a rendered project's files (`check_files`), the files of another
    framework or store it holds, and the SHAPE_INDEPENDENT_MODULES it misses."""
    problems = check_files(project)
    problems += foreign_framework_files(project, context["framework"], context["package_name"])
    problems += foreign_backend_files(project, context["cache_backend"], context["package_name"])
    other_stores = {name for store, files in post_gen_hook().BACKEND_FILES.items()
                    if store != context["cache_backend"] for name in files}
    problems += [f"{m} is listed in SHAPE_INDEPENDENT_MODULES but not generated"
                 for m in SHAPE_INDEPENDENT_MODULES
                 if m not in other_stores and not (project / m).is_file()]
    return problems
