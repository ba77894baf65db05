"""`msal-webapp check`: render specs (or combinations of their option values), then lint,
type-check and test each generated project with its own suite.

One check (`check_spec`) renders a spec with `msal-webapp new` in this process, then runs, each
in a subprocess with the project importable: `ruff check`, the project's own pytest suite (its
JUnit report read back test by test) and `mypy` (a cache per package name, shared by the
checks of a run). By default the tools and the project's dependencies come from the
interpreter that runs this command (install them once: `pip install -e 'PROJECT[dev]'` of one
generated project, or this repository's `[test]` extra); `--venv` makes a virtual environment
per project instead and installs the project into it (slow: minutes each, and needs the
package index).

`run_checks` runs several checks, N at a time, each in a worker process of its own (one check
at a time per process: the CPU time of each step is exact, and the render's output capture
cannot mix two renders); `Display` shows their progress on stderr. The same code runs this
repository's bake tests (tests/baking.py), one check per xdist worker.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import io
import json
import multiprocessing
import os
import re
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any, TextIO

import yaml
from filelock import FileLock
from msal_webapp_rules import record

from generator import pairwise
from generator import spec as gspec

TIMEOUT = 900  # seconds for one step (a project's whole suite takes one to two minutes)
SUMMARY_LINE = re.compile(r"^(FAILED|ERROR) ", re.MULTILINE)
STEPS = ("render", "install", "ruff", "suite", "mypy")
Progress = Callable[[str, str], None]  # (combination, step that starts)


@dataclass
class Check:
    """What happened to one spec: the project (if rendered), one text per failed step."""

    name: str
    spec_file: Path
    project: Path | None = None
    problems: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # the steps that failed (STEPS, or "spec")
    timings: dict[str, float] = field(default_factory=dict)  # wall seconds per step
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds of each step's processes
    generated_summary: str = ""
    # Test ids (module::name[param]) of the generated suite, by outcome, from its JUnit report.
    outcomes: dict[str, str] = field(default_factory=dict)
    about: str = ""  # the combination's option values

    @property
    def passed(self) -> bool:
        return not self.problems

    @property
    def seconds(self) -> float:
        return sum(self.timings.values())

    def fail(self, step: str, problem: str) -> None:
        self.problems.append(problem)
        if step not in self.failed:
            self.failed.append(step)

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "spec_file": str(self.spec_file),
                           "project": str(self.project) if self.project else None})

    @classmethod
    def from_json(cls, text: str) -> Check:
        data = json.loads(text)
        return cls(**{**data, "spec_file": Path(data["spec_file"]),
                      "project": Path(data["project"]) if data["project"] else None})

    def report(self, about: str = "") -> str:
        about = about or self.about
        head = self.name + (f" ({about})" if about else "")
        try:
            spec_text = self.spec_file.read_text(encoding="utf-8")
        except OSError as exc:
            spec_text = f"(unreadable: {exc})"
        return "\n".join([f"{head}: {len(self.problems)} check(s) failed",
                          f"--- spec ({self.spec_file}):", spec_text.rstrip(),
                          *(f"--- {p}" for p in self.problems)])


@dataclass(frozen=True)
class Options:
    """How to check a project (the same for every combination of a run, but for the tests')."""

    pytest_args: tuple[str, ...] = ()  # after the suite's own arguments
    typecheck: bool = True
    mypy_cache: Path | None = None  # a cache per package name inside (else mypy's default)
    mypy_seed: Path | None = None  # see seed_mypy_cache
    suite_pythonpath: tuple[str, ...] = ()  # more import paths for the suite (plugins)
    suite_env: tuple[tuple[str, str], ...] = ()  # more environment variables for the suite
    venv: bool = False  # a virtual environment per project, the project installed in it
    timeout: float = TIMEOUT


def children_cpu() -> float:
    """CPU seconds of this process's finished child processes (and theirs) so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_step(check: Check, name: str, command: list[str], cwd: Path,
             env: dict[str, str] | None = None, timeout: float = TIMEOUT,
             step: str | None = None) -> subprocess.CompletedProcess[str] | None:
    """Run the command ``name`` of ``step`` (STEPS; default: ``name``); its wall and CPU time
    go into ``check``; None after a timeout (a problem of ``check``)."""
    started, cpu = time.perf_counter(), children_cpu()
    try:
        return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        check.fail(step or name, f"{name}: no result after {timeout:.0f}s\n{exc.stdout!r:.3000}")
        return None
    finally:
        check.timings[name] = time.perf_counter() - started
        # Exact while this process runs one step at a time (each worker process does).
        check.cpu[name] = children_cpu() - cpu


def render_spec(spec_file: Path, out: Path, check: Check) -> int:
    """`msal-webapp new SPEC -o OUT` through the CLI's entry point, in this process (its
    output kept for the report)."""
    from generator import cli  # cli imports this module for `check`

    started, cpu = time.perf_counter(), time.process_time() + children_cpu()
    output = io.StringIO()
    try:
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            code = cli.main(["new", str(spec_file), "-o", str(out), "--throwaway"])
    finally:
        check.timings["msal-webapp new"] = time.perf_counter() - started
        check.cpu["msal-webapp new"] = time.process_time() + children_cpu() - cpu
    if code != 0:
        check.fail("render", f"msal-webapp new: exit {code}\n{output.getvalue()[-3000:]}")
    return code


def subprocess_environment(project: Path) -> dict[str, str]:
    """The environment of a check's steps: this one, with the project importable, and
    - no pytest plugins loaded from the environment (xdist, hypothesis, cookiecutter's
      plugin, ...): a generated suite needs none, and importing them (and rewriting their
      assertions) cost about 1.5 s of CPU per run (`--pytest-args="-p xdist -n 2"` loads one);
    - bytecode caches written: each generated suite starts the app in several processes of its
      own (production servers, start-up checks), which compile the same project modules."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "MSAL_WEBAPP_SPEC_SHAPES"))
           and k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env["PYTHONPATH"] = str(project)
    env["COLUMNS"] = "240"  # long enough for the reasons in the "FAILED ..." summary lines
    return env


def junit_outcomes(report: Path) -> dict[str, str]:
    """{test id: passed | failed | error | skipped} from a pytest JUnit XML report."""
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


# Top-level names of imports that are not third-party libraries: the project's own packages
# (the package's name is a template expression, read as `_package_`), and typeshed's own.
_NOT_LIBRARIES = {"devprovider", "tests", "_package_", "__future__", "_typeshed",
                  # analysed by no mypy run: a Graph SDK project skips it (its pyproject)
                  "msgraph"}


def library_imports() -> list[str]:
    """One import statement (aliased, so that no two names clash) for every third-party module
    or name that the template's Python files import anywhere, in any framework or store: a
    module that makes mypy analyse every library any project type-checks."""
    statements: set[str] = set()
    for path in (gspec.template_dir() / "{{cookiecutter.project_slug}}").rglob("*.py"):
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


def seed_mypy_cache(cache: Path, seed: Path | None, project: Path, check: Check) -> None:
    """Before a mypy run with ``cache`` (under the cache's lock, if it has one): an empty cache
    starts as a copy of ``seed`` (shared by the processes of a run), which the first run that
    needs it makes while the others wait.
    Analysing the libraries (flask, django, msal, sqlalchemy, ...) is most of a first mypy run
    (4-7 s of CPU for each framework and store): the seed analyses those of every framework and
    store at once (`library_imports`, about 11 s), with ``project``'s mypy settings, which are
    every project's but for its own package, so that no check analyses a library again."""
    if seed is None or any(cache.iterdir()):
        return
    with FileLock(f"{seed}.lock"):
        if not seed.is_dir():
            staging = seed.with_name(f"{seed.name}.{os.getpid()}")
            module = staging.with_name(f"{staging.name}.src") / "msal_webapp_mypy_seed.py"
            module.parent.mkdir(parents=True)
            module.write_text("\n".join(library_imports()) + "\n", encoding="utf-8")
            # Its own findings do not matter (exit 1); libraries' cache files are written.
            run_step(check, "mypy (every library, once per run)",
                     [sys.executable, "-m", "mypy", "--cache-dir", str(staging), str(module)],
                     project, subprocess_environment(project), step="mypy")
            staging.mkdir(exist_ok=True)
            staging.rename(seed)
        shutil.copytree(seed, cache, dirs_exist_ok=True)


def _venv_python(check: Check, project: Path, workdir: Path, options: Options) -> str | None:
    """A new virtual environment in ``workdir`` with the project and its `dev` extra
    installed: its interpreter, or None (a problem of ``check``)."""
    venv = workdir / "venv"
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    for command in ([sys.executable, "-m", "venv", str(venv)],
                    [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                     "-e", f"{project}[dev]"]):
        done = run_step(check, "install", command, workdir, None, options.timeout)
        if done is None:
            return None
        if done.returncode != 0:
            check.fail("install", f"install ({shlex.join(command)}): exit {done.returncode}\n"
                       f"{(done.stdout + done.stderr)[-4000:]}")
            return None
    return str(python)


def check_spec(name: str, spec_file: Path, workdir: Path, options: Options = Options(), *,
               after_render: Callable[[Check, Path], None] | None = None,
               progress: Progress | None = None, about: str = "") -> Check:
    """Render ``spec_file`` into ``workdir``/out and run ruff, the project's suite and mypy
    (if ``options.typecheck``) on it. ``after_render(check, project)`` may add problems of
    its own before the tools run; ``progress(name, step)`` hears each step start."""
    check = Check(name, spec_file, about=about)
    notify = progress or (lambda _name, _step: None)
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / "out"
    notify(name, "render")
    if render_spec(spec_file, out, check) != 0:
        return check
    projects = [p for p in out.iterdir() if p.is_dir()]
    if len(projects) != 1:
        check.fail("render", f"msal-webapp new left {[p.name for p in projects]} in {out}")
        return check
    project = check.project = projects[0]
    if after_render is not None:
        after_render(check, project)
    python = sys.executable
    if options.venv:
        notify(name, "install")
        venv_python = _venv_python(check, project, workdir, options)
        if venv_python is None:
            return check
        python = venv_python
    env = subprocess_environment(project)

    notify(name, "ruff")
    ruff = run_step(check, "ruff", [python, "-m", "ruff", "check", "--no-cache", "."], project,
                    env, options.timeout)
    if ruff is not None and ruff.returncode != 0:
        check.fail("ruff", f"ruff check:\n{(ruff.stdout + ruff.stderr)[-4000:]}")

    notify(name, "suite")
    report = workdir / "junit.xml"
    suite_env = {**env, **dict(options.suite_env)}
    suite_env["PYTHONPATH"] = os.pathsep.join([str(project), *options.suite_pythonpath])
    suite = run_step(check, "generated suite",
                     [python, "-m", "pytest", "-q", "-rfE", "-p", "no:cacheprovider",
                      f"--junitxml={report}", *options.pytest_args],
                     project, suite_env, options.timeout, step="suite")
    check.outcomes = junit_outcomes(report)
    if suite is not None:
        lines = suite.stdout.strip().splitlines()
        check.generated_summary = lines[-1] if lines else ""
        if suite.returncode != 0 or not re.search(r"\d+ passed", check.generated_summary):
            failing = [line for line in suite.stdout.splitlines() if SUMMARY_LINE.match(line)]
            detail = "\n".join(failing) if failing else (suite.stdout[-4000:]
                                                         + suite.stderr[-2000:])
            check.fail("suite", f"generated suite (exit {suite.returncode}, "
                                f"{check.generated_summary}); failing tests:\n{detail}")

    # After the suite: a run's first mypy may make the shared library analysis (the seed)
    # while the other processes' suites keep the cores busy.
    if options.typecheck:
        notify(name, "mypy")
        command = [python, "-m", "mypy"]
        lock: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        cache: Path | None = None
        if options.mypy_cache is not None:
            # A cache per package name, used by one check at a time: mypy takes a module of
            # another project from it when its text is the same (most of a project of the same
            # name, whatever the framework), about 2.5 s of a check's 3.5 s of CPU.
            cache = options.mypy_cache / gspec.context_for_file(spec_file)["package_name"]
            cache.mkdir(parents=True, exist_ok=True)
            command += ["--cache-dir", str(cache)]
            lock = FileLock(f"{cache}.lock")
        with lock:
            if cache is not None:
                seed_mypy_cache(cache, options.mypy_seed, project, check)
            mypy = run_step(check, "mypy", command, project, env, options.timeout)
        if mypy is not None and mypy.returncode != 0:
            check.fail("mypy", f"mypy:\n{(mypy.stdout + mypy.stderr)[-4000:]}")
    return check


# ---------------------------------------------------------------------------- the matrix
# The options a team's spec can be checked across without any other detail of theirs: the
# framework, the token cache's store and the credential kind (an assertion keeps the spec's
# own source, else a workload identity's token file, which needs no setting).
AXES: tuple[str, ...] = ("framework", "cache", "credential")
CREDENTIAL_KINDS: tuple[str, ...] = ("secret", "certificate", "assertion")


def axis_values(axis: str) -> tuple[str, ...]:
    rules = gspec.rules()
    values: dict[str, tuple[str, ...]] = {"framework": tuple(rules.FRAMEWORKS),
                                          "cache": tuple(rules.CACHE_BACKENDS),
                                          "credential": CREDENTIAL_KINDS}
    return values[axis]


def value_of(spec: dict[str, Any], axis: str) -> str:
    """The spec's own value on ``axis``."""
    if axis == "framework":
        return str(spec["framework"])
    if axis == "cache":
        return str(spec["cache"]["backend"])
    return str(spec["credential"]["kind"])


def with_value(spec: dict[str, Any], axis: str, value: str) -> dict[str, Any]:
    """``spec`` with ``value`` on ``axis`` (the spec's own section when the value is its own)."""
    if value_of(spec, axis) == value:
        return spec
    changed = dict(spec)
    if axis == "framework":
        changed["framework"] = value
    elif axis == "cache":
        changed["cache"] = {"backend": value}
    else:
        changed["credential"] = ({"kind": "assertion", "source": "token_file"}
                                 if value == "assertion" else {"kind": value})
    return changed


@dataclass(frozen=True)
class Combination:
    """One project to check: a spec (as given, or with other option values)."""

    name: str
    source: Path  # the spec file it comes from
    spec: dict[str, Any] | None  # None: the file as it is
    about: str = ""


def combinations(source: Path, spec: dict[str, Any], matrix: str,
                 axes: Sequence[str] = AXES) -> list[Combination]:
    """The combinations of ``spec`` (valid, from ``source``) to check: itself (``none``), a
    pairwise covering set of the values of ``axes`` that starts with the spec's own values
    (``pairwise``), or every valid combination (``full``). Combinations the rules refuse
    (e.g. a managed identity with an authority outside Entra ID) are left out."""
    if matrix == "none":
        return [Combination(source.stem, source, None)]
    factors = {axis: axis_values(axis) for axis in axes}
    verdicts: dict[pairwise.Row, bool] = {}

    def spec_of(row: pairwise.Row) -> dict[str, Any]:
        varied = spec
        for axis, value in zip(axes, row, strict=True):
            varied = with_value(varied, axis, value)
        return varied

    def is_valid(row: pairwise.Row) -> bool:
        if row not in verdicts:
            verdicts[row] = not gspec.validate_spec(spec_of(row))
        return verdicts[row]

    own = tuple(value_of(spec, axis) for axis in axes)
    if matrix == "full" or len(axes) == 1:  # one option: no pairs, every value
        rows = [own, *(row for row in pairwise.all_valid_rows(factors, is_valid) if row != own)]
    else:
        # Few seeds and steps: these matrices are small (a covering set at the lower bound is
        # found in the first seeds), and the answer must come in a second.
        rows = [own, *pairwise.covering_rows(factors, is_valid, [own], seeds=50, steps=5000)]
    return [Combination("-".join([source.stem, *row]), source, spec_of(row),
                        " ".join(f"{axis}={value}" for axis, value in zip(axes, row, strict=True)))
            for row in dict.fromkeys(rows)]


# ---------------------------------------------------------------------------- the runner
_events: Any = None  # the worker processes' queue of progress events


def _start_worker(events: Any) -> None:
    global _events
    _events = events


def _check_in_worker(combination: Combination, workdir: Path, options: Options) -> Check:
    return _check_one(combination, workdir, options,
                      lambda name, step: _events.put((name, step)))


def _check_one(combination: Combination, workdir: Path, options: Options,
               progress: Progress | None) -> Check:
    workdir.mkdir(parents=True, exist_ok=True)
    spec_file = combination.source
    if combination.spec is not None:
        spec_file = workdir / "spec.yaml"
        spec_file.write_text(yaml.safe_dump(combination.spec, sort_keys=False,
                                            allow_unicode=True), encoding="utf-8")
    try:
        return check_spec(combination.name, spec_file, workdir, options, progress=progress,
                          about=combination.about)
    except Exception as exc:  # one combination's surprise must not end the others' checks
        check = Check(combination.name, spec_file, about=combination.about)
        check.fail("check", f"check stopped: {type(exc).__name__}: {exc}\n"
                   + "".join(traceback.format_exception(exc))[-3000:])
        return check


def run_checks(todo: Sequence[Combination], root: Path, options: Options, jobs: int = 1,
               display: Display | None = None) -> list[Check]:
    """Check every combination (in ``root``/<name>), ``jobs`` at a time: in this process when
    one at a time, else in worker processes. The results in the order of ``todo``."""
    display = display or Display(len(todo), live=False, stream=io.StringIO())
    if jobs <= 1 or len(todo) <= 1:
        results = []
        for combination in todo:
            results.append(_check_one(combination, root / combination.name, options,
                                      display.step))
            display.done(results[-1])
        return results
    # Spawned, not forked: a fork of a process with threads (the display's) may deadlock.
    context = multiprocessing.get_context("spawn")
    events = context.Queue()
    listener = threading.Thread(target=_listen, args=(events, display), daemon=True)
    listener.start()
    try:
        with ProcessPoolExecutor(min(jobs, len(todo)), mp_context=context,
                                 initializer=_start_worker, initargs=(events,)) as pool:
            futures: list[Future[Check]] = []
            for combination in todo:
                future = pool.submit(_check_in_worker, combination, root / combination.name,
                                     options)
                future.add_done_callback(
                    lambda done: display.done(done.result()) if not done.cancelled()
                    and done.exception() is None else None)
                futures.append(future)
            try:
                return [future.result() for future in futures]
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    finally:
        events.put(None)
        listener.join(timeout=5)


def _listen(events: Any, display: Display) -> None:
    while (event := events.get()) is not None:
        display.step(*event)


class Display:
    """The progress of a run on ``stream`` (stderr): on a terminal, a status line rewritten
    in place under a line per finished combination; elsewhere (CI logs, files), a plain line
    per step and per result."""

    def __init__(self, total: int, stream: TextIO | None = None,
                 live: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.total, self.finished, self.failed = total, 0, 0
        self.running: dict[str, tuple[str, float]] = {}
        self.started = time.monotonic()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        if self.live:
            threading.Thread(target=self._tick, daemon=True).start()

    def step(self, name: str, step: str) -> None:
        with self.lock:
            self.running[name] = (step, time.monotonic())
            if self.live:
                self._status()
            else:
                self._line(f"[{self.finished}/{self.total}] {name}: {step}")

    def done(self, check: Check) -> None:
        with self.lock:
            self.running.pop(check.name, None)
            self.finished += 1
            self.failed += not check.passed
            result = "passed" if check.passed else f"FAILED ({', '.join(check.failed)})"
            self._line(f"[{self.finished}/{self.total}] {check.name}: {result} "
                       f"in {check.seconds:.1f} s")
            if self.live:
                self._status()

    def close(self) -> None:
        self.stop.set()
        with self.lock:
            if self.live:
                self.stream.write("\r\x1b[K")
                self.stream.flush()

    def _line(self, text: str) -> None:
        self.stream.write(("\r\x1b[K" if self.live else "") + text + "\n")
        self.stream.flush()

    def _status(self) -> None:
        now = time.monotonic()
        parts = [f"{self.finished}/{self.total} done, {self.failed} failed, "
                 f"{now - self.started:.0f} s"]
        parts += [f"{name}: {step} {now - since:.0f} s"
                  for name, (step, since) in self.running.items()]
        width = shutil.get_terminal_size((100, 20)).columns - 1
        self.stream.write("\r\x1b[K" + " | ".join(parts)[:width])
        self.stream.flush()

    def _tick(self) -> None:
        while not self.stop.wait(1.0):
            with self.lock:
                self._status()


# ---------------------------------------------------------------------------- reports
def result_of(check: Check) -> str:
    if check.passed:
        return "passed"
    return f"failed: {', '.join(check.failed) or 'see above'}"


def summary_table(checks: Sequence[Check], wall: float) -> str:
    """One row per combination (combination, result, time) and a closing line."""
    rows = [("combination", "result", "time"), *(
        (check.name, result_of(check), f"{check.seconds:.1f} s") for check in checks)]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:>{widths[2]}}" for a, b, c in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    failed = sum(not check.passed for check in checks)
    lines.append(f"{len(checks) - failed} passed, {failed} failed, in {wall:.1f} s")
    return "\n".join(lines)


def write_junit(path: Path, checks: Sequence[Check], wall: float) -> None:
    """A JUnit XML report: one test case per combination, its failed steps as its failure."""
    suite = ET.Element("testsuite", {
        "name": "msal-webapp check", "tests": str(len(checks)),
        "failures": str(sum(not check.passed for check in checks)), "errors": "0",
        "skipped": "0", "time": f"{wall:.3f}",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())})
    for check in checks:
        case = ET.SubElement(suite, "testcase", {
            "classname": f"msal-webapp check.{check.spec_file.stem}", "name": check.name,
            "time": f"{check.seconds:.3f}"})
        if not check.passed:
            failure = ET.SubElement(case, "failure",
                                    {"message": result_of(check), "type": "check"})
            failure.text = "\n\n".join(check.problems)
        out = ET.SubElement(case, "system-out")
        out.text = "\n".join([*([check.about] if check.about else []),
                              *(f"{step}: {seconds:.1f} s"
                                for step, seconds in check.timings.items()),
                              *([f"suite: {check.generated_summary}"]
                                if check.generated_summary else [])])
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


# ---------------------------------------------------------------------------- the command
def _missing_tools() -> list[str]:
    return [tool for tool in ("ruff", "mypy", "pytest") if find_spec(tool) is None]


def recorded_source(given: Path) -> tuple[Path, Path | None]:
    """``given`` as a spec file, and the generated project whose recorded spec it is (a
    project's directory or its record, `.msal-webapp.json`), else None: a generated project's
    CI checks the current template with its own spec."""
    if given.is_dir() and (given / record.FILE_NAME).is_file():
        return given / record.FILE_NAME, given
    if given.name == record.FILE_NAME:
        return given, given.parent
    return given, None


def plan(specs: Sequence[Path], matrix: str, axes: Sequence[str]
         ) -> tuple[list[Combination], list[Check]]:
    """The combinations of every spec, and a failed Check per spec the rules refuse."""
    todo: list[Combination] = []
    refused: list[Check] = []
    for given in specs:
        source, project = recorded_source(given)
        try:
            if project is None:
                spec = gspec.load_spec(source)
            else:
                spec = record.load(project)["spec"]
            gspec.spec_to_context(spec)
        except (gspec.SpecError, record.RecordError) as exc:
            check = Check(project.name if project else source.stem, source)
            for message in getattr(exc, "messages", None) or [str(exc)]:
                check.fail("spec", f"spec: {message}")
            refused.append(check)
            continue
        found = combinations(source, spec, matrix, axes)
        if project is not None:
            # The spec is the record's, not the file's text: each is written out to render,
            # named after the project.
            found = [dataclasses.replace(
                c, name=project.name + c.name.removeprefix(source.stem),
                spec=c.spec if c.spec is not None else spec) for c in found]
        todo += found
    # Names unique in the run (two specs may share a file name).
    seen: dict[str, int] = {}
    for i, combination in enumerate(todo):
        count = seen[combination.name] = seen.get(combination.name, 0) + 1
        if count > 1:
            todo[i] = dataclasses.replace(combination, name=f"{combination.name}-{count}")
    return todo, refused


def command(args: argparse.Namespace) -> int:
    """`msal-webapp check` (generator/cli.py parses the arguments): 0 if every combination
    passed, 1 if one failed or a spec was refused, 2 on a usage problem."""
    axes = [axis.strip() for axis in args.vary.split(",") if axis.strip()]
    unknown = [axis for axis in axes if axis not in AXES]
    if unknown or not axes:
        print(f"error: --vary {args.vary!r}: choose from {', '.join(AXES)} "
              "(comma-separated)", file=sys.stderr)
        return 2
    if args.jobs < 1:
        print(f"error: --jobs {args.jobs}: give 1 or more", file=sys.stderr)
        return 2
    missing = [] if args.venv else _missing_tools()
    if missing:
        print(f"error: {', '.join(missing)} not installed in this environment "
              f"({sys.executable}): install a generated project's dev extra here "
              "(pip install -e 'PROJECT[dev]') or pass --venv", file=sys.stderr)
        return 2
    started = time.monotonic()
    todo, refused = plan(args.specs, args.matrix, axes)
    if refused:
        # Nothing runs: a refused spec is fixed first (every problem of every spec listed).
        for check in refused:
            for problem in check.problems:
                print(f"error: {check.spec_file}: {problem.removeprefix('spec: ')}",
                      file=sys.stderr)
        print(f"{len(refused)} spec(s) refused by the rules; nothing was checked.",
              file=sys.stderr)
        if args.junit:
            write_junit(args.junit, refused, time.monotonic() - started)
        return 1
    if args.work_dir is not None:
        root, keep = args.work_dir, True
        taken = [c.name for c in todo if (root / c.name).exists()]
        if taken:
            print(f"error: --work-dir {root}: {', '.join(taken)} already there; choose another "
                  "directory or remove them", file=sys.stderr)
            return 2
    else:
        root, keep = Path(tempfile.mkdtemp(prefix="msal-webapp-check-")), False
    options = Options(pytest_args=tuple(shlex.split(args.pytest_args)),
                      mypy_cache=root / ".mypy-cache", venv=args.venv)
    print(f"checking {len(todo)} project(s) ({args.matrix} matrix, {args.jobs} at a time) "
          f"in {root}", file=sys.stderr)
    display = Display(len(todo))
    try:
        checks = run_checks(todo, root, options, args.jobs, display)
    except KeyboardInterrupt:
        display.close()
        print(f"interrupted; the projects are in {root}", file=sys.stderr)
        return 130
    display.close()
    wall = time.monotonic() - started
    for check in checks:
        if not check.passed:
            print(check.report(), file=sys.stderr)
    print(summary_table(checks, wall))
    if args.junit:
        write_junit(args.junit, checks, wall)
    failed = any(not check.passed for check in checks)
    if failed or keep:
        print(f"the projects are in {root}", file=sys.stderr)
    else:
        shutil.rmtree(root, ignore_errors=True)
    return 1 if failed else 0

