"""Every valid spec renders an app whose own suite passes.

The default run bakes every file in examples/ and a pairwise covering set of spec shapes (see
tests/shapes.py); each bake goes through `msal-webapp new`, then its files are checked and ruff,
mypy and the generated project's own test suite run. `--spec-shapes=N` (or the environment
variable MSAL_WEBAPP_SPEC_SHAPES=N) bakes N more shapes drawn by hypothesis from the schema.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from baking import BEHAVIOURAL_MODULES, FRAMEWORKS, Bake, bake_and_check, post_gen_hook
from hypothesis import HealthCheck, Phase, given, settings
from shapes import R, describe, pairwise_shapes, specs

from generator import spec as gspec

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
SHAPES = {shape.id: shape for shape in pairwise_shapes()}
RANDOM_LANES = 4  # hypothesis runs serially: N random shapes are split over lanes for xdist


@pytest.fixture(scope="session")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One mypy cache per worker: the stubs of flask, msal, ... are analysed once, not per bake."""
    return tmp_path_factory.mktemp("mypy-cache")


def _assert_bake_passed(bake: Bake, about: str, record: Any) -> None:
    record("spec_shape", bake.name)
    record("timings", {k: round(v, 1) for k, v in bake.timings.items()})
    print(f"{bake.name}: {bake.generated_summary} "
          + " ".join(f"{k}={v:.1f}s" for k, v in bake.timings.items()))
    if bake.problems:
        report = bake.report(about)
        print(report)
        record("spec_shape_failed", report.splitlines()[0])
        record("spec_shape_failed_id", bake.name)
        pytest.fail(report, pytrace=False)


PARITY_EXAMPLE = ROOT / "examples" / "app.yaml"


def shared_test_modules() -> set[str]:
    """The generated test modules rendered from one copy for every framework (the
    behavioural suite among them), as project paths."""
    folder = ROOT / "template" / "{{cookiecutter.project_slug}}" / "tests"
    only_some = set(post_gen_hook().SHARED_BY)
    return {f"tests/{path.name}" for path in folder.glob("test_*.py")} - only_some


@pytest.mark.parametrize("example", [e for e in EXAMPLES if e != PARITY_EXAMPLE],
                         ids=lambda path: f"example-{path.stem}")
def test_example_bakes_and_its_suite_passes(example: Path, tmp_path: Path, mypy_cache: Path,
                                            record_property: Any) -> None:
    bake = bake_and_check(f"example-{example.stem}", example, tmp_path, mypy_cache)
    _assert_bake_passed(bake, describe(yaml.safe_load(example.read_text())), record_property)


def _passed(bake: Bake, modules: set[str]) -> set[str]:
    return {test for test, outcome in bake.outcomes.items()
            if outcome == "passed" and test.split("::")[0] in modules}


def _parity_folder() -> Path:
    """A folder shared by the xdist workers of this run (one per run)."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"pid{os.getpid()}"
    folder = Path(tempfile.gettempdir()) / f"msal-webapp-parity-{run}"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_every_framework_and_store_passes_the_same_tests(framework: str, tmp_path: Path,
                                                         mypy_cache: Path,
                                                         record_property: Any) -> None:
    """examples/app.yaml baked for `framework`: its whole generated suite passes; and the same
    spec with every other store (filesystem, redis, sql): the behavioural modules (web flow,
    store faults, two instances under their production servers) pass with the same test ids
    as with memory. Three bakes run at once (each is mostly waiting on I/O).

    Across frameworks: each framework's memory bake records the ids of the shared modules
    (the behavioural suite, the real-browser test, ...) that passed; the last of the three to
    finish checks that they are the same in all three. Together: every store passes the same
    behavioural tests in every framework."""
    assert gspec.load_spec(PARITY_EXAMPLE)["cache"]["backend"] == "memory"
    stores = ("memory", *(b for b in R.CACHE_BACKENDS if b != "memory"))

    def bake(backend: str) -> Bake:
        return bake_and_check(f"example-app-{framework}-{backend}", PARITY_EXAMPLE,
                              tmp_path / backend, mypy_cache / backend, framework=framework,
                              backend=backend,
                              modules=() if backend == "memory" else BEHAVIOURAL_MODULES,
                              # The stores' own code is type-checked in the examples and
                              # shapes that have it; the rest is the memory bake's.
                              typecheck=backend == "memory")

    # Three at once: with the other xdist workers' bakes, more would starve the suites' own
    # time limits on two cores.
    with ThreadPoolExecutor(max_workers=3) as pool:
        bakes = dict(zip(stores, pool.map(bake, stores), strict=True))
    for backend, done in bakes.items():
        print(f"{framework}/{backend}: {done.generated_summary} "
              + " ".join(f"{k}={v:.1f}s" for k, v in done.timings.items()))
    record_property("spec_shape", f"example-app ({framework}, 4 stores)")
    record_property("timings", {b: round(done.timings.get("generated suite", 0), 1)
                                for b, done in bakes.items()})
    failed = [done for done in bakes.values() if done.problems]
    if failed:
        _assert_bake_passed(failed[0], f"{len(failed)} of {len(bakes)} stores failed",
                            record_property)

    behavioural = set(BEHAVIOURAL_MODULES)
    reference = _passed(bakes["memory"], behavioural)
    assert {t.split("::")[0] for t in reference} == behavioural, sorted(reference)[:5]
    # Only a network store can go away and come back (tests/test_instances.py): such tests
    # skip with memory and filesystem, and are the only ones allowed to pass beyond them.
    skipped = {test for test, outcome in bakes["memory"].outcomes.items()
               if outcome == "skipped"}
    by_store = {backend: {"missing": sorted(reference - ids),
                          "extra": sorted(ids - reference - skipped)}
                for backend, done in bakes.items()
                if (ids := _passed(done, behavioural)) - skipped != reference}
    assert not by_store, f"{framework}: behavioural tests that differ from memory: {by_store}"
    for backend in ("redis", "sql"):  # the outage tests did run there
        assert skipped & _passed(bakes[backend], behavioural), backend

    shared = shared_test_modules()
    mine = _passed(bakes["memory"], shared)
    assert "tests/test_web_flow.py" in {test.split("::")[0] for test in mine}
    folder = _parity_folder()
    (folder / f"{framework}.json").write_text(json.dumps(sorted(mine)))
    recorded = {fw: set(json.loads((folder / f"{fw}.json").read_text()))
                for fw in FRAMEWORKS if (folder / f"{fw}.json").exists()}
    if len(recorded) == len(FRAMEWORKS):  # the last one to finish compares
        everywhere = set.intersection(*recorded.values())
        differences = {fw: sorted(ids - everywhere) for fw, ids in recorded.items()}
        assert not any(differences.values()), f"passed in some frameworks only: {differences}"


@pytest.mark.parametrize("shape_id", sorted(SHAPES))
def test_spec_shape_bakes_and_its_suite_passes(shape_id: str, tmp_path: Path, mypy_cache: Path,
                                               record_property: Any) -> None:
    shape = SHAPES[shape_id]
    bake = bake_and_check(shape.id, shape.spec, tmp_path, mypy_cache, whole_suite=False)
    _assert_bake_passed(bake, shape.about, record_property)


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

