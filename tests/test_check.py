"""`msal-webapp check`: a real render, ruff, mypy and a part of the generated suite on a small
spec; a failing suite and a refused spec; the JUnit report; the matrices, without running."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator import check, cli, pairwise
from generator import spec as gspec

ROOT = Path(__file__).resolve().parents[1]
# The cheapest spec: Flask, a memory store, a secret, no downstream API.
SMALL: dict[str, Any] = {
    "project_name": "Check Small", "framework": "flask",
    "authority": {"kind": "entra", "tenant": "organizations"},
    "credential": {"kind": "secret"}, "cache": {"backend": "memory"},
    "downstream_apis": {}, "sign_in_api": "",
}
# One generated module of a few seconds: the check's suite step, not the whole suite.
SUITE_PART = "tests/test_settings.py"


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The checks of this module render here: their mypy cache (by package name) is shared."""
    return tmp_path_factory.mktemp("check")


def write_spec(folder: Path, name: str, spec: dict[str, Any]) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def junit_cases(path: Path) -> tuple[ET.Element, list[ET.Element]]:
    """The report's one test suite, checked for the JUnit structure CI tools read, and its
    test cases."""
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    (suite,) = list(root)
    assert suite.tag == "testsuite" and suite.get("name") == "msal-webapp check"
    cases = list(suite)
    assert all(case.tag == "testcase" for case in cases)
    assert int(suite.get("tests", "")) == len(cases)
    assert int(suite.get("failures", "")) == sum(
        case.find("failure") is not None for case in cases)
    assert suite.get("errors") == "0" and float(suite.get("time", "")) >= 0
    for case in cases:
        assert case.get("name") and case.get("classname", "").startswith("msal-webapp check.")
        assert float(case.get("time", "")) >= 0
        failure = case.find("failure")
        if failure is not None:
            assert failure.get("message") and failure.text
    return suite, cases


def test_a_spec_is_rendered_linted_type_checked_and_tested(
        tmp_path: Path, work_dir: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    spec = write_spec(tmp_path, "small", SMALL)
    renders = tmp_path / "render-cache"
    monkeypatch.setenv("MSAL_WEBAPP_CACHE_DIR", str(renders))
    junit = tmp_path / "report" / "check.xml"
    code = cli.main(["check", str(spec), f"--pytest-args={SUITE_PART}", "--junit", str(junit),
                     "--work-dir", str(work_dir)])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    table = out.splitlines()
    assert table[0].split() == ["combination", "result", "time"]
    assert table[2].split()[:2] == ["small", "passed"]
    assert table[-1].startswith("1 passed, 0 failed")
    # Progress on stderr, plain lines (not a terminal): each step, then the result.
    for step in ("render", "ruff", "suite", "mypy"):
        assert f"small: {step}\n" in err
    assert "[1/1] small: passed in " in err
    project = work_dir / "small" / "out" / "check-small"
    assert (project / "check_small" / "config.py").is_file()
    # The suite's own report: only the selected module ran, and passed.
    outcomes = check.junit_outcomes(work_dir / "small" / "junit.xml")
    assert outcomes and {test.split("::")[0] for test in outcomes} == {SUITE_PART}
    assert "passed" in outcomes.values()
    assert not {"failed", "error"} & set(outcomes.values())
    suite, (case,) = junit_cases(junit)
    assert suite.get("failures") == "0" and case.get("name") == "small"
    assert case.find("failure") is None
    assert "mypy: " in (case.findtext("system-out") or "")
    # A throwaway render: not kept as a merge base for `update` (the cache keeps the newest
    # 50, which would then be check's renders rather than the user's projects).
    assert not list(renders.rglob("*.tar.gz"))


def test_a_failing_test_fails_the_check_naming_it(
        tmp_path: Path, work_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_spec(tmp_path, "failing", SMALL)
    extra = tmp_path / "test_extra.py"
    extra.write_text("def test_the_team_rule() -> None:\n    assert 1 + 1 == 3\n")
    junit = tmp_path / "check.xml"
    code = cli.main(["check", str(spec), f"--pytest-args={SUITE_PART} {extra}",
                     "--junit", str(junit), "--work-dir", str(work_dir)])
    out, err = capsys.readouterr()
    assert code == 1, out + err
    assert out.splitlines()[2].split()[:3] == ["failing", "failed:", "suite"]
    # The report names the failing test and why.
    assert "FAILED ::test_the_team_rule - assert (1 + 1) == 3" in err
    _, (case,) = junit_cases(junit)
    failure = case.find("failure")
    assert failure is not None and failure.get("message") == "failed: suite"
    assert "test_the_team_rule" in (failure.text or "")
    assert (work_dir / "failing" / "out" / "check-small").is_dir()  # kept to look at


def test_a_refused_spec_stops_the_run_before_anything_renders(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write_spec(tmp_path, "good", SMALL)
    bad = write_spec(tmp_path, "bad", {**SMALL, "framework": "rails"})
    junit, work = tmp_path / "check.xml", tmp_path / "work"
    code = cli.main(["check", str(good), str(bad), "--matrix", "pairwise", "--junit",
                     str(junit), "--work-dir", str(work)])
    out, err = capsys.readouterr()
    assert code == 1
    assert f"error: {bad}: " in err and "framework" in err and "rails" in err
    assert "1 spec(s) refused by the rules; nothing was checked." in err
    assert out == "" and not work.exists()
    _, (case,) = junit_cases(junit)
    assert case.get("name") == "bad" and "framework" in (case.findtext("failure") or "")


def test_usage_problems_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_spec(tmp_path, "small", SMALL)
    assert cli.main(["check", str(spec), "--vary", "framework,colour"]) == 2
    assert "--vary 'framework,colour': choose from framework, cache, credential" in \
        capsys.readouterr().err
    assert cli.main(["check", str(spec), "--jobs", "0"]) == 2
    (tmp_path / "work" / "small").mkdir(parents=True)
    assert cli.main(["check", str(spec), "--work-dir", str(tmp_path / "work")]) == 2
    assert "small already there" in capsys.readouterr().err


# ------------------------------------------------------------------------ the matrices
def rows_of(todo: list[check.Combination], axes: tuple[str, ...] = check.AXES
            ) -> list[tuple[str, ...]]:
    rows = []
    for combination in todo:
        assert combination.spec is not None
        rows.append(tuple(check.value_of(combination.spec, axis) for axis in axes))
    return rows


def test_pairwise_covers_every_pair_of_option_values_in_few_projects() -> None:
    source = ROOT / "examples" / "app.yaml"
    spec = gspec.load_spec(source)
    todo = check.combinations(source, spec, "pairwise")
    rows = rows_of(todo)
    factors = {axis: check.axis_values(axis) for axis in check.AXES}
    # The spec as given first; every pair of values in some project; as few projects as
    # the two largest options' values multiplied (4 stores x 3 frameworks or credentials).
    assert rows[0] == ("flask", "memory", "secret") and todo[0].name == "app-flask-memory-secret"
    held = set().union(*(pairwise.pairs_of(factors, row) for row in rows))
    assert held == pairwise.valid_pairs(factors, lambda row: True)
    assert len(rows) == len(set(rows)) == 12
    assert len({c.name for c in todo}) == len(todo)
    for combination in todo:  # valid specs, the rest of the spec unchanged
        assert combination.spec is not None and gspec.validate_spec(combination.spec) == []
        assert combination.spec["downstream_apis"] == spec["downstream_apis"]
        assert combination.about.startswith("framework=")
    assert len(check.combinations(source, spec, "full")) == 3 * 4 * 3
    (as_given,) = check.combinations(source, spec, "none")
    assert as_given.spec is None and as_given.name == "app"
    # One option: every value of it.
    assert sorted(row[0] for row in rows_of(check.combinations(
        source, spec, "pairwise", ("framework",)), ("framework",))) == sorted(
        check.axis_values("framework"))


def test_the_specs_own_details_stay_in_every_combination() -> None:
    """An OpenID Connect spec whose assertion comes from a callable: the callable stays in
    every combination with an assertion, and every combination is a spec the rules accept."""
    source = ROOT / "examples" / "oidc.yaml"
    spec = gspec.load_spec(source)
    spec["credential"] = {"kind": "assertion", "source": "callable",
                          "callable": "acme.tokens:assertion"}
    todo = check.combinations(source, spec, "full")
    assert len(todo) == 36
    for combination in todo:
        assert combination.spec is not None and gspec.validate_spec(combination.spec) == []
        assert combination.spec["authority"] == spec["authority"]
        assert combination.spec["client_id"] == "acme-portal"
    assertion = [c.spec for c in todo if c.spec and c.spec["credential"]["kind"] == "assertion"]
    assert len(assertion) == 12
    assert all(s["credential"] == spec["credential"] for s in assertion)
    other = [c.spec for c in todo if c.spec and c.spec["credential"]["kind"] == "secret"]
    assert all(s["credential"] == {"kind": "secret"} for s in other)


def test_the_runner_uses_worker_processes_and_keeps_the_order(tmp_path: Path) -> None:
    """Two combinations two at a time (each in a worker process): specs the render refuses,
    so that nothing but the runner's own work is timed."""
    todo = [check.Combination(f"c{i}", tmp_path / f"c{i}.yaml",
                              {**SMALL, "framework": "rails", "project_name": f"C {i}"})
            for i in range(2)]
    stream = io.StringIO()
    results = check.run_checks(todo, tmp_path, check.Options(), jobs=2,
                               display=check.Display(2, stream=stream, live=False))
    assert [r.name for r in results] == ["c0", "c1"]
    for result in results:
        assert result.failed == ["render"] and "framework" in result.problems[0]
        assert result.timings["msal-webapp new"] > 0
    lines = stream.getvalue().splitlines()
    assert "[0/2] c0: render" in lines or "[1/2] c0: render" in lines  # a worker's event
    assert sum(": FAILED (render) in " in line for line in lines) == 2


def test_the_progress_display_rewrites_one_line_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    display = check.Display(2, stream=terminal)
    assert display.live
    display.step("a", "suite")
    done = check.Check("a", Path("a.yaml"), timings={"ruff": 1.0, "generated suite": 2.5})
    display.done(done)
    display.close()
    text = terminal.getvalue()
    assert "\r\x1b[K1/2 done, 0 failed" in text or "\r\x1b[K0/2 done, 0 failed" in text
    assert "a: suite 0 s" in text and "\r\x1b[K[1/2] a: passed in 3.5 s\n" in text
    assert text.endswith("\r\x1b[K")
    plain = io.StringIO()
    display = check.Display(1, stream=plain)
    display.step("b", "ruff")
    display.done(check.Check("b", Path("b.yaml"), problems=["ruff: E501"], failed=["ruff"]))
    assert plain.getvalue() == "[0/1] b: ruff\n[1/1] b: FAILED (ruff) in 0.0 s\n"


def test_a_generated_project_is_checked_with_its_recorded_spec(tmp_path: Path) -> None:
    """A project's directory or its `.msal-webapp.json` as SPEC: the record's spec, under the
    project's name (a generated project's CI checks the current template with it); a record
    that cannot be read refuses the run naming it."""
    assert cli.main(["new", str(write_spec(tmp_path, "small", SMALL)),
                     "-o", str(tmp_path / "out")]) == 0
    (project,) = (tmp_path / "out").iterdir()
    recorded = json.loads((project / ".msal-webapp.json").read_text(encoding="utf-8"))["spec"]
    for given in (project, project / ".msal-webapp.json"):
        (only,), refused = check.plan([given], "none", check.AXES)
        assert not refused and only.name == project.name and only.spec == recorded
    todo, refused = check.plan([project], "pairwise", check.AXES)
    assert not refused and len(todo) > 1
    assert todo[0].spec == recorded and all(c.name.startswith(project.name) for c in todo)
    (project / ".msal-webapp.json").write_text("{}", encoding="utf-8")
    todo, (bad,) = check.plan([project], "none", check.AXES)
    assert not todo and bad.failed == ["spec"] and ".msal-webapp.json" in bad.problems[0]
