"""Every valid spec renders an app whose own suite passes.

The default run bakes every file in examples/, examples/app.yaml once per framework and store
(the parity bakes) and a pairwise covering set of spec shapes (see tests/shapes.py); each bake
goes through `msal-webapp new`, then its files are checked and ruff, mypy and the generated
project's own test suite run. Every bake is a test of its own, so xdist spreads them over its
workers (longest first: tests/conftest.py); the parity comparisons are tests of their own too,
run last, on the results the bakes leave in a folder of this run. `--spec-shapes=N` (or the
environment variable MSAL_WEBAPP_SPEC_SHAPES=N) bakes N more shapes drawn by hypothesis from
the schema.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from baking import (
    BEHAVIOURAL_MODULES,
    FRAMEWORK_INDEPENDENT_MODULES,
    FRAMEWORKS,
    GRAPH_SDK_MODULE,
    Bake,
    bake_and_check,
    framework_independent_problems,
    graph_sdk_problems,
    post_gen_hook,
)
from conftest import mypy_seed
from filelock import FileLock
from hypothesis import HealthCheck, Phase, given, settings
from shapes import R, describe, pairwise_shapes, specs

from generator import spec as gspec

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
SHAPES = {shape.id: shape for shape in pairwise_shapes()}
RANDOM_LANES = 4  # hypothesis runs serially: N random shapes are split over lanes for xdist
PARITY_EXAMPLE = ROOT / "examples" / "app.yaml"
PARITY_STORES: tuple[str, ...] = ("memory", *(b for b in R.CACHE_BACKENDS if b != "memory"))
PARITY_FRAMEWORK: str = gspec.load_spec(PARITY_EXAMPLE)["framework"]
# Two instances under their production servers sharing the project's store; a memory store is
# not shared by processes, so a memory project's instances share the filesystem store
# (tests/test_instances.py's BACKEND): the memory bake's whole suite runs the filesystem
# store's instances, and the filesystem bake leaves them to it (the same test text, app code
# and settings; four production server starts, about 10 s of CPU per framework).
INSTANCES_MODULE = "tests/test_instances.py"
INSTANCES_RUN_BY = {"filesystem": "memory"}
# The instances run twice, with the first-level cache (TOKEN_CACHE_L1) on and off. What "off"
# changes is the core's reads of the store (every page reads the session and token cache from
# the store, not an in-process copy), which no adapter touches: the parity framework's bakes
# run it with every store, the examples' whole suites in their own frameworks and stores, and
# the other frameworks' parity bakes leave it out (two production servers fewer each; about
# 4 s of CPU a bake). Their first-level-cache-on pair, where an adapter's requests meet an
# in-process copy another instance may have outdated, runs everywhere.
L1_OFF = "l1-off"


@dataclass(frozen=True)
class Plan:
    """One bake of the default run: what to render and which of its checks to run."""

    id: str
    spec: dict[str, Any] | Path
    about: str
    whole_suite: bool = False  # else without SHAPE_INDEPENDENT_MODULES
    framework: str | None = None  # overrides the spec's
    backend: str | None = None
    modules: tuple[str, ...] = ()  # only these generated modules
    skip: tuple[str, ...] = ()  # never these
    typecheck: bool = True
    keyword: str = ""  # a pytest -k expression: only the tests it selects
    cost: float = 1.0  # expected time, relative: the longest bakes start first


def parity_id(framework: str, backend: str) -> str:
    return f"parity-{framework}-{backend}"


def _framework_cost(framework: str | None) -> float:
    # FastAPI's suites take about a fifth longer (uvicorn's start and stop, async clients).
    return 1.2 if framework == "fastapi" else 1.0


def bake_plans() -> dict[str, Plan]:
    """Every bake of the default run, by test id, the expected longest first."""
    plans = [Plan(f"example-{path.stem}", path, describe(gspec.load_spec(path)),
                  whole_suite=True,
                  cost=3.0 * _framework_cost(gspec.load_spec(path)["framework"]))
             for path in EXAMPLES if path != PARITY_EXAMPLE]
    assert gspec.load_spec(PARITY_EXAMPLE)["cache"]["backend"] == "memory"
    for framework in FRAMEWORKS:
        for backend in PARITY_STORES:
            memory = backend == "memory"
            plans.append(Plan(
                parity_id(framework, backend), PARITY_EXAMPLE,
                f"examples/app.yaml, framework={framework} cache={backend}",
                whole_suite=memory, framework=framework, backend=backend,
                modules=() if memory else tuple(
                    m for m in BEHAVIOURAL_MODULES
                    if m != INSTANCES_MODULE or backend not in INSTANCES_RUN_BY),
                # The modules that test no framework code run in the example's own framework
                # (test_framework_parity checks that they are the same in every framework).
                skip=(FRAMEWORK_INDEPENDENT_MODULES if memory and framework != PARITY_FRAMEWORK
                      else ()),
                # The stores' own code is type-checked in the examples and shapes that have
                # it; the rest is the memory bake's.
                typecheck=memory,
                keyword=(f"not {L1_OFF}" if framework != PARITY_FRAMEWORK
                         and backend not in INSTANCES_RUN_BY else ""),
                # SQL: a migrated database per test process and app, about 1.4x the CPU.
                cost=((3.0 if framework == PARITY_FRAMEWORK else 2.7) if memory
                      else 1.96 if backend == "sql" else 0.9 if backend in INSTANCES_RUN_BY
                      else 1.4)
                * _framework_cost(framework)))
    for shape in SHAPES.values():
        shared_store = shape.spec["cache"]["backend"] in ("redis", "sql")
        plans.append(Plan(shape.id, shape.spec, shape.about,
                          cost=(1.2 if shared_store else 1.0)
                          * _framework_cost(shape.spec["framework"])))
    return {plan.id: plan for plan in scheduled(plans, _xdist_workers())}


def _xdist_workers() -> int:
    return int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)


def scheduled(plans: list[Plan], workers: int) -> list[Plan]:
    """``plans`` longest first, in the order `--dist load` hands out best: it gives each
    worker two tests at the start (the second waits for the first on that worker), then one
    test at a time to the worker that finishes one. So the ``2 * workers`` longest are paired,
    the longest with the shortest of them, and each worker starts one of the ``workers``
    longest: without the pairing, the second longest waited behind the longest."""
    ranked = sorted(plans, key=lambda plan: -plan.cost)
    if workers < 2:
        return ranked
    head, tail = ranked[:2 * workers], ranked[2 * workers:]
    paired = [plan for i in range(len(head) // 2) for plan in (head[i], head[-1 - i])]
    return paired + head[len(paired):] + tail


PLANS = bake_plans()


@pytest.fixture(scope="session")
def mypy_cache(run_folder: Path) -> Path:
    """The mypy caches of this run's bakes, one per package name (shared by the workers, used
    by one bake at a time), each seeded from the run's one analysis of every library that any
    bake imports (`seed_mypy_cache`): libraries are analysed once, not per bake, and a
    project's modules once per text."""
    return run_folder / "mypy-by-package"


def shared_bake(plan: Plan, folder: Path, workdir: Path, mypy_cache: Path) -> Bake:
    """The bake of ``plan`` in this run: baked here, or by whichever test of this run needed it
    first (waiting while another worker bakes it). A comparison that starts before the bake
    test of a result it needs bakes it itself; that test then checks the same result. The
    results are in ``folder`` (`run_folder`)."""
    result = folder / f"{plan.id}.json"
    with FileLock(str(folder / f"{plan.id}.lock")):
        if result.is_file():
            return Bake.from_json(result.read_text(encoding="utf-8"))
        bake = bake_and_check(plan.id, plan.spec, workdir, mypy_cache,
                              mypy_seed=mypy_seed(folder), whole_suite=plan.whole_suite,
                              framework=plan.framework, backend=plan.backend,
                              modules=plan.modules, skip=plan.skip, typecheck=plan.typecheck,
                              kept_rewrites=folder / "kept-rewrites", keyword=plan.keyword)
        result.write_text(bake.to_json(), encoding="utf-8")
        return bake


def _assert_bake_passed(bake: Bake, about: str, record: Any) -> None:
    record("spec_shape", bake.name)
    record("timings", {k: round(v, 1) for k, v in bake.timings.items()})
    record("cpu", {k: round(v, 1) for k, v in bake.cpu.items()})
    print(f"{bake.name}: {bake.generated_summary} "
          + " ".join(f"{k}={v:.1f}s ({bake.cpu.get(k, 0):.1f}s CPU)"
                     for k, v in bake.timings.items()))
    if bake.problems:
        report = bake.report(about)
        print(report)
        record("spec_shape_failed", report.splitlines()[0])
        record("spec_shape_failed_id", bake.name)
        pytest.fail(report, pytrace=False)


@pytest.mark.parametrize("plan_id", list(PLANS))
def test_bake_and_its_suite_pass(plan_id: str, run_folder: Path, tmp_path: Path,
                                 mypy_cache: Path, record_property: Any) -> None:
    """One bake: the examples' whole suites; examples/app.yaml in each framework (its whole
    suite with memory, the behavioural modules with each other store); each pairwise shape
    (its suite without SHAPE_INDEPENDENT_MODULES)."""
    plan = PLANS[plan_id]
    _assert_bake_passed(shared_bake(plan, run_folder, tmp_path, mypy_cache), plan.about,
                        record_property)


# ------------------------------------------------------------------------------ parity
def shared_test_modules() -> set[str]:
    """The generated test modules rendered from one copy for every framework (the
    behavioural suite among them), as project paths."""
    folder = ROOT / "template" / "{{cookiecutter.project_slug}}" / "tests"
    only_some = set(post_gen_hook().SHARED_BY)
    return {f"tests/{path.name}" for path in folder.glob("test_*.py")} - only_some


def passed_in(outcomes: dict[str, str], modules: set[str]) -> set[str]:
    """The ids of the tests of ``modules`` that passed."""
    return {test for test, outcome in outcomes.items()
            if outcome == "passed" and test.split("::")[0] in modules}


# Shared tests that one framework alone runs, by framework: the async transport's half of
# the downstream-call tests (httpx, which only a FastAPI project depends on; skipped elsewhere),
# and the instances with the first-level cache off, which the other frameworks' parity bakes
# leave out (L1_OFF).
ONLY_IN: dict[str, re.Pattern[str]] = {
    "fastapi": re.compile(r"^tests/test_downstream\.py::[^\[]+\[httpx\b"),
    PARITY_FRAMEWORK: re.compile(rf"^{re.escape(INSTANCES_MODULE)}::[^\[]+\[{L1_OFF}\]"),
}


def framework_differences(passed: dict[str, set[str]]) -> dict[str, list[str]]:
    """For each framework, the shared tests that passed in it but not in every framework
    (those only it can run, ONLY_IN, aside; they must have passed in it)."""
    differences: dict[str, list[str]] = {}
    for name, pattern in ONLY_IN.items():
        if name in passed and not any(pattern.match(test) for test in passed[name]):
            differences[name] = [f"no test matching {pattern.pattern} passed"]
    passed = {name: {test for test in ids if not any(p.match(test) for p in ONLY_IN.values())}
              for name, ids in passed.items()}
    everywhere = set.intersection(*passed.values())
    differences |= {name: sorted(ids - everywhere) for name, ids in passed.items()
                    if ids - everywhere}
    return differences


def store_differences(outcomes: dict[str, dict[str, str]],
                      modules: set[str]) -> dict[str, dict[str, list[str]]]:
    """For each store whose passing tests of ``modules`` differ from memory's: the ones it
    misses and the ones it passes beyond memory's. Only a network store can go away and come
    back (tests/test_instances.py): such tests skip with memory and are the only ones another
    store may pass beyond memory's."""
    reference = passed_in(outcomes["memory"], modules)
    skipped = {test for test, outcome in outcomes["memory"].items() if outcome == "skipped"}
    differences = {}
    for store, its in outcomes.items():
        ids = passed_in(its, modules)
        if ids - skipped != reference:
            differences[store] = {"missing": sorted(reference - ids),
                                  "extra": sorted(ids - reference - skipped)}
    return differences


def missing_results(request: pytest.FixtureRequest, needed: dict[str, str]) -> list[str]:
    """The names in ``needed`` (name -> bake test id) whose bake test is not in this run (left
    out by -k, a node id, ...): without it, no result to compare."""
    selected = {item.callspec.params["plan_id"] for item in request.session.items
                if isinstance(item, pytest.Function)
                and item.originalname == "test_bake_and_its_suite_pass"}
    return [name for name, plan_id in needed.items() if plan_id not in selected]


def parity_bakes(request: pytest.FixtureRequest, needed: dict[str, str], what: str,
                 run_folder: Path, tmp_path: Path, mypy_cache: Path) -> dict[str, Bake]:
    """The bakes ``needed`` for ``what``, each of them run and passed; fails naming the ones
    that are missing from this run or failed."""
    missing = missing_results(request, needed)
    if missing:
        tests = ", ".join(f"test_bake_and_its_suite_pass[{needed[name]}]" for name in missing)
        pytest.fail(f"{what}: no result from {', '.join(missing)}: not in this run: {tests} "
                    "(select them too, e.g. -k parity, or run the whole suite)", pytrace=False)
    bakes = {name: shared_bake(PLANS[plan_id], run_folder, tmp_path / plan_id, mypy_cache)
             for name, plan_id in needed.items()}
    failed = [f"{name} (test_bake_and_its_suite_pass[{needed[name]}])"
              for name, bake in bakes.items() if bake.problems]
    if failed:
        pytest.fail(f"{what}: no result from {', '.join(failed)}: its bake failed",
                    pytrace=False)
    return bakes


def instances_store_of(project: Path) -> str:
    """The store a generated project's tests/test_instances.py shares between its instances:
    the constant that its BACKEND names besides the project's own shared store."""
    tree = ast.parse((project / INSTANCES_MODULE).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", "") for t in node.targets] == [
                "BACKEND"]:
            constants = [c.value for c in ast.walk(node.value)
                         if isinstance(c, ast.Constant) and isinstance(c.value, str)]
            backend = gspec.spec_to_context(gspec.load_spec(PARITY_EXAMPLE))["cache_backend"]
            assert backend == "memory" and len(constants) == 1, constants
            return str(constants[0])
    raise AssertionError(f"{project / INSTANCES_MODULE}: no BACKEND = ...")


def store_outcomes(bakes: dict[str, Bake]) -> dict[str, dict[str, str]]:
    """Each store's test outcomes, by store: its bake's, and for a store whose instances another
    store's bake runs (INSTANCES_RUN_BY), those of that bake's instances tests."""
    outcomes = {store: dict(bake.outcomes) for store, bake in bakes.items()}
    for store, by in INSTANCES_RUN_BY.items():
        if store in outcomes:
            assert not any(test.startswith(f"{INSTANCES_MODULE}::") for test in outcomes[store])
            outcomes[store] |= {test: outcome for test, outcome in outcomes[by].items()
                                if test.startswith(f"{INSTANCES_MODULE}::")}
    return outcomes


@pytest.mark.compares_bakes
@pytest.mark.parametrize("framework", FRAMEWORKS,
                         ids=lambda framework: f"{framework}-{'-'.join(PARITY_STORES)}")
def test_store_parity(framework: str, request: pytest.FixtureRequest, run_folder: Path,
                      tmp_path: Path, mypy_cache: Path) -> None:
    """examples/app.yaml in ``framework`` with every store: the behavioural modules (web flow,
    store faults, two instances under their production servers) pass with the same test ids
    as with memory; and with redis and sql, the outage tests that memory skips did run."""
    needed = {backend: parity_id(framework, backend) for backend in PARITY_STORES}
    bakes = parity_bakes(request, needed, f"store parity in {framework}", run_folder,
                         tmp_path, mypy_cache)
    behavioural = set(BEHAVIOURAL_MODULES)
    reference = passed_in(bakes["memory"].outcomes, behavioural)
    assert {t.split("::")[0] for t in reference} == behavioural, sorted(reference)[:5]
    for store, by in INSTANCES_RUN_BY.items():  # `by`'s project puts its instances on `store`
        project = bakes[by].project
        assert project is not None and instances_store_of(project) == store, (by, store)
    differences = store_differences(store_outcomes(bakes), behavioural)
    assert not differences, f"{framework}: behavioural tests that differ from memory: " \
                            f"{differences}"
    skipped = {test for test, outcome in bakes["memory"].outcomes.items()
               if outcome == "skipped"}
    for backend in ("redis", "sql"):  # the outage tests did run there
        assert skipped & passed_in(bakes[backend].outcomes, behavioural), backend


@pytest.mark.compares_bakes
@pytest.mark.parametrize("frameworks", [FRAMEWORKS], ids="-".join)
def test_framework_parity(frameworks: tuple[str, ...], request: pytest.FixtureRequest,
                          run_folder: Path, tmp_path: Path, mypy_cache: Path) -> None:
    """examples/app.yaml with memory in every framework: the same tests of the modules shared
    by every framework (the behavioural suite, the real-browser test, ...) pass in each; the
    modules that test no framework code (FRAMEWORK_INDEPENDENT_MODULES) are the same file in
    every framework's project, use nothing of a framework, and pass in the example's own.
    Fails, naming them, when a framework's bake is not in this run or failed."""
    needed = {framework: parity_id(framework, "memory") for framework in frameworks}
    bakes = parity_bakes(request, needed, "framework parity", run_folder, tmp_path,
                         mypy_cache)
    independent = set(FRAMEWORK_INDEPENDENT_MODULES)
    assert independent <= shared_test_modules()
    problems = framework_independent_problems(
        {framework: bake.project for framework, bake in bakes.items() if bake.project})
    assert not problems, problems
    ran = {test.split("::")[0] for test in passed_in(bakes[PARITY_FRAMEWORK].outcomes,
                                                      independent)}
    assert ran == independent, f"no test passed in {sorted(independent - ran)}"
    shared = shared_test_modules() - independent
    passed = {framework: passed_in(bake.outcomes, shared) for framework, bake in bakes.items()}
    for framework, ids in passed.items():
        assert "tests/test_web_flow.py" in {test.split("::")[0] for test in ids}, framework
    differences = framework_differences(passed)
    assert not differences, f"passed in some frameworks only: {differences}"


def test_the_parity_comparisons_name_what_differs() -> None:
    """The comparison logic alone, on made-up outcomes."""
    same = {"tests/test_web_flow.py::a", "tests/test_web_flow.py::b"}
    l1_off = f"{INSTANCES_MODULE}::test_pair[{L1_OFF}]"  # the parity framework's alone
    flask = {*same, l1_off}
    assert framework_differences({"flask": flask, "django": set(same)}) == {}
    assert framework_differences({"flask": flask, "django": {"tests/test_web_flow.py::a"}}) \
        == {"flask": ["tests/test_web_flow.py::b"]}
    assert framework_differences({"flask": same, "django": same}) == {
        "flask": [f"no test matching {ONLY_IN['flask'].pattern} passed"]}
    httpx = "tests/test_downstream.py::test_retry[httpx-0]"
    assert framework_differences({"flask": flask, "fastapi": {*same, httpx}}) == {}
    assert framework_differences({"flask": flask, "fastapi": same}) == {
        "fastapi": [f"no test matching {ONLY_IN['fastapi'].pattern} passed"]}
    assert framework_differences({"flask": {*flask, httpx}, "fastapi": {*same, httpx}}) == {}
    modules = {"tests/test_web_flow.py", "tests/test_instances.py"}
    memory = {"tests/test_web_flow.py::a": "passed", "tests/test_instances.py::outage": "skipped",
              "tests/test_other.py::x": "passed"}
    redis = {"tests/test_web_flow.py::a": "passed", "tests/test_instances.py::outage": "passed"}
    assert store_differences({"memory": memory, "redis": redis}, modules) == {}
    broken = {"tests/test_instances.py::outage": "passed", "tests/test_web_flow.py::c": "passed",
              "tests/test_web_flow.py::a": "failed"}
    assert store_differences({"memory": memory, "sql": broken}, modules) == {
        "sql": {"missing": ["tests/test_web_flow.py::a"], "extra": ["tests/test_web_flow.py::c"]}}
    # The filesystem store's instances tests are the memory bake's (INSTANCES_RUN_BY).
    memory_bake = Bake("memory", PARITY_EXAMPLE, outcomes=memory)
    filesystem = Bake("filesystem", PARITY_EXAMPLE,
                      outcomes={"tests/test_web_flow.py::a": "passed"})
    outcomes = store_outcomes({"memory": memory_bake, "filesystem": filesystem})
    assert outcomes["filesystem"] == {"tests/test_web_flow.py::a": "passed",
                                      "tests/test_instances.py::outage": "skipped"}
    assert store_differences(outcomes, modules) == {}
    filesystem.outcomes["tests/test_instances.py::outage"] = "skipped"  # ran there too
    with pytest.raises(AssertionError):
        store_outcomes({"memory": memory_bake, "filesystem": filesystem})


def test_a_module_that_may_depend_on_the_framework_is_named(tmp_path: Path) -> None:
    """`framework_independent_problems`, on made-up projects."""
    projects = {name: tmp_path / name for name in ("flask", "django")}
    for project in projects.values():
        (project / "tests").mkdir(parents=True)
        (project / "tests/test_same.py").write_text("def test_a() -> None:\n    pass\n")
        (project / "tests/test_app.py").write_text("def test_b(app_under_test) -> None:\n")
    (projects["flask"] / "tests/test_differs.py").write_text("import flask\n")
    (projects["django"] / "tests/test_differs.py").write_text("import django\n")
    assert framework_independent_problems(projects, ("tests/test_same.py",)) == []
    assert framework_independent_problems(
        projects, ("tests/test_app.py", "tests/test_differs.py", "tests/test_missing.py")) == [
        "tests/test_app.py: names 'app_under_test', so it may depend on the framework",
        "tests/test_differs.py: not the same file in every framework's project",
        "tests/test_missing.py: not the same file in every framework's project"]
    # Every framework's bake but the example's own leaves them out; nothing else does.
    for plan in PLANS.values():
        left_out = plan.framework not in (None, PARITY_FRAMEWORK) and plan.backend == "memory"
        assert plan.skip == (FRAMEWORK_INDEPENDENT_MODULES if left_out else ()), plan.id
        # The first-level-cache-off instances: left out by the other frameworks' parity bakes
        # that run the instances, and by nothing else (the examples' suites stay whole).
        no_l1_off = plan.framework not in (None, PARITY_FRAMEWORK) and (
            plan.backend not in INSTANCES_RUN_BY)
        assert plan.keyword == (f"not {L1_OFF}" if no_l1_off else ""), plan.id


def test_the_first_level_cache_is_the_cores_alone() -> None:
    """Why the other frameworks' parity bakes may leave the first-level-cache-off instances
    out (L1_OFF): no framework's own file reads the setting or the in-process copies."""
    frameworks = ROOT / "template" / "{{cookiecutter.project_slug}}" / "_frameworks"
    files = [path for path in frameworks.rglob("*.py") if "tests" not in path.parts]
    assert files
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"(?i)token_cache_l1|\bl1\b", text), path


def test_the_longest_bakes_start_first_on_every_worker() -> None:
    """`scheduled`, on made-up costs: with two workers, each starts one of the two longest,
    and what waits behind it is the shortest of the four that are handed out first."""
    plans = [Plan(f"p{cost}", ROOT / "examples" / "app.yaml", "", cost=cost)
             for cost in (1.0, 5.0, 2.0, 4.0, 3.0, 6.0)]
    assert [plan.cost for plan in scheduled(plans, 2)] == [6.0, 3.0, 5.0, 4.0, 2.0, 1.0]
    assert [plan.cost for plan in scheduled(plans, 1)] == [6.0, 5.0, 4.0, 3.0, 2.0, 1.0]
    assert sorted(PLANS) == sorted(plan.id for plan in scheduled(list(PLANS.values()), 3))


@pytest.mark.parametrize("lane", range(RANDOM_LANES))
def test_random_spec_shapes(lane: int, request: pytest.FixtureRequest, mypy_cache: Path,
                            tmp_path: Path, record_property: Any) -> None:
    """--spec-shapes=N: N specs drawn by hypothesis, each baked and checked (no shrinking)."""
    total: int = request.config.getoption("spec_shapes")
    count = total // RANDOM_LANES + (1 if lane < total % RANDOM_LANES else 0)
    if count == 0:
        pytest.skip("random spec shapes run only with --spec-shapes=N or MSAL_WEBAPP_SPEC_SHAPES=N")
    failures: list[str] = []
    baked = 0

    @settings(max_examples=count, phases=[Phase.explicit, Phase.generate], deadline=None,
              database=None, suppress_health_check=list(HealthCheck))
    @given(specs())
    def bake_one(spec: dict[str, Any]) -> None:
        nonlocal baked
        baked += 1
        name = f"random-{lane}-{baked:03d}"
        problems = R.validate_spec(spec)
        workdir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=tmp_path))
        if problems:  # the strategy drew a spec the rules refuse: one of the two is wrong
            (workdir / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
            failures.append(f"{name}: the rules refuse a drawn spec: {problems}\n"
                            + yaml.safe_dump(spec, sort_keys=False))
            return
        bake = bake_and_check(name, spec, workdir, mypy_cache, whole_suite=False)
        print(f"{name}: {bake.generated_summary} ({describe(spec)})")
        if bake.problems:
            failures.append(bake.report(describe(spec)))
        else:
            shutil.rmtree(workdir, ignore_errors=True)  # keep only failing bakes to look at

    bake_one()
    record_property("random_shapes", baked)
    if failures:
        record_property("spec_shape_failed",
                        f"lane {lane}: {len(failures)} of {baked} random shapes failed")
        record_property("spec_shape_failed_id", f"{len(failures)} random (lane {lane})")
        pytest.fail(f"{len(failures)} of {baked} random spec shapes failed:\n\n"
                    + "\n\n".join(failures), pytrace=False)


def test_the_documented_cookiecutter_command(tmp_path: Path) -> None:
    """`cookiecutter <repo> --directory template` on defaults, and a bad answer refused."""
    command = [sys.executable, "-m", "cookiecutter", str(ROOT), "--directory", "template",
               "--no-input", "-o", str(tmp_path)]
    env = {**os.environ, "HOME": str(tmp_path)}  # no user config or replay files leak in
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    config = (tmp_path / "contoso-portal" / "contoso_portal" / "config.py").read_text()
    assert '"graph"' in config and "https://login.microsoftonline.com/organizations" in config

    refused = subprocess.run([*command, "entra_tenant=not a tenant!",
                              "project_name=Second"], capture_output=True, text=True, env=env)
    assert refused.returncode != 0
    assert "ERROR: entra_tenant" in refused.stdout + refused.stderr
    assert not (tmp_path / "second").exists()



def test_a_graph_sdk_bake_must_run_its_sdk_tests() -> None:
    """The check alone, on made-up outcomes: a spec with downstream_apis.graph.sdk whose SDK
    tests all skipped is a problem; without the option, or when the module was not to run,
    nothing is."""
    sdk_test = f"{GRAPH_SDK_MODULE}::test_profile"
    assert graph_sdk_problems({"graph_sdk": True}, {sdk_test: "passed"}) == []
    (problem,) = graph_sdk_problems({"graph_sdk": True}, {sdk_test: "skipped"})
    assert "no test of tests/test_graph_sdk.py passed" in problem
    assert graph_sdk_problems({"graph_sdk": False}, {sdk_test: "skipped"}) == []
    assert graph_sdk_problems({"graph_sdk": True}, {}, modules=BEHAVIOURAL_MODULES) == []
