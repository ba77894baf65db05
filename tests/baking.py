"""Bake one spec the way a user does (`msal-webapp new`) and run every check on the result.

The project is rendered by the CLI's own entry point in this process (the command a user types,
without a process start of its own); ruff, mypy and the generated suite run in subprocesses with
this interpreter: one shared virtual environment holds every generated app's dependencies, so no
bake installs anything, and a generated project's conftest, rootdir and package never mix with
the root suite.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from filelock import FileLock

from generator import cli
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
SUMMARY_LINE = re.compile(r"^(FAILED|ERROR) ", re.MULTILINE)
TIMEOUT = 900
# The pytest plugin that keeps the generated suites' rewritten asserts for a run (by content).
BAKE_PLUGINS = Path(__file__).resolve().parent / "bake_plugins"


def cli_command() -> list[str]:
    """The `msal-webapp` command of this environment."""
    script = Path(sys.executable).parent / "msal-webapp"
    return [str(script)] if script.exists() else [sys.executable, "-m", "generator.cli"]


@dataclass
class Bake:
    """What happened to one spec: the project (if rendered) and one text per failed check."""

    name: str
    spec_file: Path
    project: Path | None = None
    problems: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # wall seconds per check
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds of each check's processes
    generated_summary: str = ""
    # Test ids (module::name[param]) of the generated suite, by outcome, from its JUnit report.
    outcomes: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "spec_file": str(self.spec_file),
                           "project": str(self.project) if self.project else None})

    @classmethod
    def from_json(cls, text: str) -> Bake:
        data = json.loads(text)
        return cls(**{**data, "spec_file": Path(data["spec_file"]),
                      "project": Path(data["project"]) if data["project"] else None})

    def report(self, about: str = "") -> str:
        head = f"spec shape {self.name}" + (f" ({about})" if about else "")
        spec_text = self.spec_file.read_text(encoding="utf-8")
        return "\n".join([f"{head}: {len(self.problems)} check(s) failed",
                          f"--- spec ({self.spec_file}):", spec_text.rstrip(),
                          *(f"--- {p}" for p in self.problems)])


def _run(name: str, command: list[str], cwd: Path, bake: Bake,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str] | None:
    started, cpu = time.perf_counter(), _children_cpu()
    try:
        done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired as exc:
        bake.problems.append(f"{name}: no result after {TIMEOUT}s\n{exc.stdout!r:.3000}")
        return None
    finally:
        bake.timings[name] = time.perf_counter() - started
        # Exact while this process runs one check at a time (each xdist worker does).
        bake.cpu[name] = _children_cpu() - cpu
    return done


def _children_cpu() -> float:
    """CPU seconds of this process's finished child processes (and theirs) so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _render(spec_file: Path, out: Path, bake: Bake) -> int:
    """`msal-webapp new SPEC -o OUT` through the CLI's entry point, in this process (its
    output kept for the report)."""
    started, cpu = time.perf_counter(), time.process_time() + _children_cpu()
    output = io.StringIO()
    try:
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            code = cli.main(["new", str(spec_file), "-o", str(out)])
    finally:
        bake.timings["msal-webapp new"] = time.perf_counter() - started
        bake.cpu["msal-webapp new"] = time.process_time() + _children_cpu() - cpu
    if code != 0:
        bake.problems.append(f"msal-webapp new: exit {code}\n{output.getvalue()[-3000:]}")
    return code


def subprocess_environment(project: Path) -> dict[str, str]:
    """The environment of a bake's checks: this one, with the project importable, and
    - no pytest plugins loaded from the environment (the root suite's xdist, hypothesis,
      cookiecutter's plugin, ...): a generated suite needs none, and importing them (and
      rewriting their assertions) cost about 1.5 s of CPU per run;
    - bytecode caches written: each generated suite starts the app in several processes of its
      own (production servers, start-up checks), which compile the same project modules."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "MSAL_WEBAPP_SPEC_SHAPES"))
           and k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env["PYTHONPATH"] = str(project)
    env["COLUMNS"] = "240"  # long enough for the reasons in the "FAILED ..." summary lines
    return env


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


def junit_outcomes(report: Path) -> dict[str, str]:
    """{test id: passed | failed | error | skipped} from a pytest JUnit XML report."""
    import xml.etree.ElementTree as ET

    outcomes: dict[str, str] = {}
    if not report.is_file():
        return outcomes
    for case in ET.parse(report).getroot().iter("testcase"):
        module = case.get("classname", "").replace(".", "/") + ".py"
        kinds = {child.tag for child in case}
        outcome = ("failed" if "failure" in kinds else "error" if "error" in kinds
                   else "skipped" if "skipped" in kinds else "passed")
        outcomes[f"{module}::{case.get('name')}"] = outcome
    return outcomes


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


# Top-level names of imports that are not third-party libraries: the project's own packages
# (the package's name is a template expression, read as `_package_`), and typeshed's own.
_NOT_LIBRARIES = {"devprovider", "tests", "_package_", "__future__", "_typeshed",
                  # analysed by no mypy run: a Graph SDK project skips it (its pyproject)
                  "msgraph"}


def library_imports() -> list[str]:
    """One import statement (aliased, so that no two names clash) for every third-party module
    or name that the template's Python files import anywhere, in any framework or store: a
    module that makes mypy analyse every library any bake type-checks."""
    statements: set[str] = set()
    for path in PROJECT_TEMPLATE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        # Template code out: control lines removed, expressions made a name.
        text = re.sub(r"^[ \t]*\{%.*?%\}[ \t]*$", "", text, flags=re.MULTILINE)
        text = re.sub(r"\{%.*?%\}", "", re.sub(r"\{\{.*?\}\}", "_package_", text))
        for node in ast.walk(ast.parse(text, str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                statements.update(f"from {node.module} import {alias.name}"
                                  for alias in node.names if alias.name != "*")
            elif isinstance(node, ast.Import):
                statements.update(f"import {alias.name}" for alias in node.names)
    return [f"{statement} as _{number}" for number, statement in enumerate(sorted(
        s for s in statements
        if s.split()[1].split(".")[0] not in (*_NOT_LIBRARIES, *sys.stdlib_module_names)))]


@contextlib.contextmanager
def seeded_mypy_cache(cache: Path, seed: Path | None, project: Path,
                      bake: Bake) -> Iterator[None]:
    """Around a mypy run with ``cache``: an empty cache starts as a copy of ``seed`` (shared by
    the workers of a run), which the first run that needs it makes while the others wait.
    Analysing the libraries (flask, django, msal, sqlalchemy, ...) is most of a first mypy run
    (4-7 s of CPU for each framework and store): the seed analyses those of every framework and
    store at once (`library_imports`, about 11 s), with ``project``'s mypy settings, which are
    every project's but for its own package, so that no bake analyses a library again."""
    if seed is None or any(cache.iterdir()):
        yield
        return
    with FileLock(f"{seed}.lock"):
        if not seed.is_dir():
            staging = seed.with_name(f"{seed.name}.{os.getpid()}")
            module = staging.with_name(f"{staging.name}.src") / "msal_webapp_mypy_seed.py"
            module.parent.mkdir(parents=True)
            module.write_text("\n".join(library_imports()) + "\n", encoding="utf-8")
            # Its own findings do not matter (exit 1); libraries' cache files are written.
            _run("mypy (every library, once per run)",
                 [sys.executable, "-m", "mypy", "--cache-dir", str(staging), str(module)],
                 project, bake, subprocess_environment(project))
            staging.mkdir(exist_ok=True)
            staging.rename(seed)
        shutil.copytree(seed, cache, dirs_exist_ok=True)
    yield


def bake_and_check(name: str, spec: dict[str, Any] | Path, workdir: Path,
                   mypy_cache: Path, *, mypy_seed: Path | None = None, whole_suite: bool = True,
                   framework: str | None = None, backend: str | None = None,
                   modules: tuple[str, ...] = (), skip: tuple[str, ...] = (),
                   typecheck: bool = True, kept_rewrites: Path | None = None) -> Bake:
    """Render ``spec`` with the CLI into ``workdir`` and run files, ruff, its suite (without
    SHAPE_INDEPENDENT_MODULES unless ``whole_suite``; only ``modules`` if given; never
    ``skip``) and mypy (if ``typecheck``; its cache in ``mypy_cache``, by package name, seeded
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
    bake = Bake(name, spec_file)
    out = workdir / "out"
    if _render(spec_file, out, bake) != 0:
        return bake
    projects = [p for p in out.iterdir() if p.is_dir()]
    if len(projects) != 1:
        bake.problems.append(f"msal-webapp new left {[p.name for p in projects]} in {out}")
        return bake
    project = bake.project = projects[0]

    bake.problems += [f"files: {p}" for p in check_files(project)]
    context = gspec.spec_to_context(gspec.load_spec(spec_file))
    bake.problems += [f"files: {p}" for p in foreign_framework_files(
        project, context["framework"], context["package_name"])]
    bake.problems += [f"files: {p}" for p in foreign_backend_files(
        project, context["cache_backend"], context["package_name"])]
    other_stores = {name for store, files in post_gen_hook().BACKEND_FILES.items()
                    if store != context["cache_backend"] for name in files}
    bake.problems += [f"files: {m} is listed in SHAPE_INDEPENDENT_MODULES but not generated"
                      for m in SHAPE_INDEPENDENT_MODULES
                      if m not in other_stores and not (project / m).is_file()]
    env = subprocess_environment(project)
    ruff = _run("ruff", [sys.executable, "-m", "ruff", "check", "--no-cache", "."], project, bake,
                env)
    if ruff is not None and ruff.returncode != 0:
        bake.problems.append(f"ruff check:\n{(ruff.stdout + ruff.stderr)[-4000:]}")
    report = workdir / "junit.xml"
    suite_env = env
    if kept_rewrites is not None:
        suite_env = {**env, "PYTHONPATH": os.pathsep.join([str(project), str(BAKE_PLUGINS)]),
                     "KEPT_REWRITES_DIR": str(kept_rewrites)}
    suite = _run("generated suite",
                 [sys.executable, "-m", "pytest", "-q", "-rfE", "-p", "no:cacheprovider",
                  *(["-p", "kept_rewrites"] if kept_rewrites is not None else []),
                  f"--junitxml={report}",
                  *([] if whole_suite or modules
                    else [f"--ignore={m}" for m in SHAPE_INDEPENDENT_MODULES]),
                  *[f"--ignore={m}" for m in skip], *modules],
                 project, bake, suite_env)
    bake.outcomes = junit_outcomes(report)
    if suite is not None:
        lines = suite.stdout.strip().splitlines()
        bake.generated_summary = lines[-1] if lines else ""
        if suite.returncode != 0 or not re.search(r"\d+ passed", bake.generated_summary):
            failing = [line for line in suite.stdout.splitlines() if SUMMARY_LINE.match(line)]
            detail = "\n".join(failing) if failing else (suite.stdout[-4000:]
                                                         + suite.stderr[-2000:])
            bake.problems.append(f"generated suite (exit {suite.returncode}, "
                                 f"{bake.generated_summary}); failing tests:\n{detail}")
        bake.problems += graph_sdk_problems(context, bake.outcomes, modules, skip)
    # After the suite: the run's first mypy makes the shared library analysis (the seed) while
    # the other workers' suites keep the cores busy, instead of every worker waiting for it
    # at the start.
    if typecheck:
        # A cache per package name in ``mypy_cache``, used by one bake at a time: mypy takes a
        # module of another bake's project from it when its text is the same (most of a project
        # of the same name, whatever the framework), about 2.5 s of a bake's 3.5 s of CPU.
        cache = mypy_cache / context["package_name"]
        cache.mkdir(parents=True, exist_ok=True)
        with FileLock(f"{cache}.lock"), seeded_mypy_cache(cache, mypy_seed, project, bake):
            mypy = _run("mypy", [sys.executable, "-m", "mypy", "--cache-dir", str(cache)],
                        project, bake, env)
        if mypy is not None and mypy.returncode != 0:
            bake.problems.append(f"mypy:\n{(mypy.stdout + mypy.stderr)[-4000:]}")
    return bake
