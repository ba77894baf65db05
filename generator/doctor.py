"""`msal-webapp doctor`: what will bite a generated project, one line per finding with its fix.

Findings:
    edited        a template-managed file changed by hand (or deleted) since it was rendered
    settings      the settings as the app reads them at start-up (its own code, in a subprocess
                  with the project's Python, from the environment and .env) fail to load
    certificate   a certificate credential the settings name expires soon, or has expired
    registration  registration.json no longer says what the recorded spec needs
    dependency    an installed dependency outside the project's pyproject ranges, or missing

Errors make the exit status 1; warnings (edited files, a certificate expiring within
--expiry-days) only with --strict, so CI chooses what fails the build.
"""

from __future__ import annotations

import json
import subprocess
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from msal_webapp_rules import record, registration

from generator.update import project_python

EXIT_OK, EXIT_FINDINGS, EXIT_BAD_PROJECT = 0, 1, 2

# Run with the project's Python in the project's directory: the app's own start-up reading of
# the settings (environment, then .env; services.app_settings), then what doctor checks in the
# project's environment: each certificate's expiry and the installed versions of the
# distributions named on stdin. One JSON object on the last line of stdout.
PROBE = r'''
import importlib.metadata, json, os, platform, sys
names = json.loads(sys.stdin.read())
versions = {}
for name in names:
    try:
        versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        versions[name] = None
environment = {
    "implementation_name": sys.implementation.name,
    "os_name": os.name,
    "platform_machine": platform.machine(),
    "platform_python_implementation": platform.python_implementation(),
    "platform_release": platform.release(),
    "platform_system": platform.system(),
    "platform_version": platform.version(),
    "python_full_version": platform.python_version(),
    "python_version": ".".join(platform.python_version_tuple()[:2]),
    "sys_platform": sys.platform,
}
result = {"versions": versions, "environment": environment, "settings": None,
          "certificates": []}
try:
    from PACKAGE.config import DEFAULTS
    from PACKAGE.core.services import app_settings
except Exception as exc:
    result["settings"] = f"cannot import the app ({type(exc).__name__}: {exc})"
else:
    try:
        settings = app_settings(None, DEFAULTS)
    except SystemExit:
        result["settings"] = "failed"  # the app printed its problems on stderr
    else:
        for credential in settings.credentials:
            if credential.certificate is not None:
                result["certificates"].append({
                    "file": str(credential.certificate_file),
                    "variable": credential.variable,
                    "not_after": credential.certificate.leaf.not_valid_after_utc.isoformat()})
print()
print(json.dumps(result))
'''


@dataclass(frozen=True)
class Finding:
    severity: str  # "error" or "warning"
    kind: str
    message: str  # what is wrong; "fix: ..." included

    def line(self) -> str:
        return f"{self.severity}: {self.kind}: {self.message}"


def edited_files(project: Path, files: dict[str, str]) -> list[Finding]:
    findings = []
    for rel, recorded in files.items():
        path = project / rel
        if not path.is_file():
            findings.append(Finding("warning", "edited", f"{rel}: deleted since it was "
                                    "generated; fix: restore it from version control if the "
                                    "app needs it (`msal-webapp update` leaves it deleted)"))
        elif record.digest(path.read_bytes()) != recorded:
            findings.append(Finding("warning", "edited", f"{rel}: changed by hand since it was "
                                    "generated; fix: none needed if meant (`msal-webapp update` "
                                    "merges template changes into it), else restore it"))
    return findings


def _subset_problems(expected: Any, actual: Any, where: str) -> list[str]:
    """Where `actual` (registration.json) lacks what `expected` (the spec's) has. Lists under
    `web` may hold more (production redirect URIs are added there); other lists must match."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where or 'the file'} is not an object"]
        problems = []
        for key, value in expected.items():
            path = f"{where}.{key}" if where else key
            if key not in actual:
                problems.append(f"{path} is missing")
            else:
                problems += _subset_problems(value, actual[key], path)
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{where} is not a list"]
        problems = [f"{where} lacks {json.dumps(item)}" for item in expected if item not in actual]
        if not where.startswith("web."):
            problems += [f"{where} has {json.dumps(item)}, which the spec does not"
                         for item in actual if item not in expected]
        return problems
    return [] if expected == actual else [f"{where} is {json.dumps(actual)}, the spec says "
                                          f"{json.dumps(expected)}"]


def registration_drift(project: Path, spec: dict[str, Any]) -> list[Finding]:
    expected = registration.describe(spec)
    path = project / registration.FILE_NAME
    fix = ("fix: `msal-webapp update` renders it again from the spec (then `msal-webapp "
           "register` for the app registration)")
    if expected is None:
        return []
    try:
        actual = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return [Finding("error", "registration", f"{registration.FILE_NAME} is missing; {fix}")]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [Finding("error", "registration", f"{registration.FILE_NAME} cannot be read "
                        f"({exc}); {fix}")]
    return [Finding("error", "registration", f"{registration.FILE_NAME}: {problem}; {fix}")
            for problem in _subset_problems(expected, actual, "")]


def requirements(project: Path) -> list[str]:
    """The project's runtime dependencies (pyproject.toml [project] dependencies)."""
    try:
        data = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return []
    found = data.get("project", {}).get("dependencies", [])
    return [str(item) for item in found] if isinstance(found, list) else []


def probe(project: Path, package: str, python: str, names: list[str]
          ) -> tuple[dict[str, Any] | None, str]:
    """Run PROBE with the project's Python; (its result, the app's stderr)."""
    try:
        done = subprocess.run([python, "-c", PROBE.replace("PACKAGE", package)], cwd=project,
                              input=json.dumps(names), capture_output=True, text=True,
                              check=False, timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, str(exc)
    lines = done.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1]), done.stderr
    except (IndexError, json.JSONDecodeError):
        return None, (done.stderr.strip().splitlines() or ["no output"])[-1]


def settings_findings(result: dict[str, Any], stderr: str, python: str) -> list[Finding]:
    state = result["settings"]
    if state is None:
        return []
    if state != "failed":
        return [Finding("error", "settings", f"{state}; fix: install the project in the "
                        f"Python that runs it ({python} -m pip install -e .), or give --python")]
    problems = [line.strip()[2:] for line in stderr.splitlines()
                if line.strip().startswith("- ")]
    if not problems:
        problems = [(stderr.strip().splitlines() or ["the app refused its settings"])[-1]]
    return [Finding("error", "settings", f"{problem} (fix it in the environment or .env; "
                    ".env.example lists them)") for problem in problems]


def certificate_findings(result: dict[str, Any], days: int,
                         now: datetime | None = None) -> list[Finding]:
    now = now or datetime.now(UTC)
    findings = []
    for cert in result["certificates"]:
        left = datetime.fromisoformat(cert["not_after"]) - now
        where = f"{cert['variable']}={cert['file']}"
        fix = ("fix: create a new certificate, add it to the app registration, point "
               f"{cert['variable']} at it (or add it as CLIENT_2_... meanwhile)")
        if left.total_seconds() <= 0:
            findings.append(Finding("error", "certificate", f"{where} expired on "
                                    f"{cert['not_after'][:10]}; {fix}"))
        elif left.days < days:
            findings.append(Finding("warning", "certificate", f"{where} expires on "
                                    f"{cert['not_after'][:10]} (in {left.days} day(s)); {fix}"))
    return findings


def dependency_findings(wanted: list[str], result: dict[str, Any]) -> list[Finding]:
    from packaging.requirements import InvalidRequirement, Requirement

    findings = []
    for text in wanted:
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            continue
        if requirement.marker is not None and not requirement.marker.evaluate(
                result["environment"]):
            continue
        installed = result["versions"].get(requirement.name)
        fix = f"fix: pip install '{requirement.name}{requirement.specifier}'"
        if installed is None:
            findings.append(Finding("error", "dependency", f"{requirement.name} is not "
                                    f"installed (pyproject.toml wants {text!r}); {fix}"))
        elif not requirement.specifier.contains(installed, prereleases=True):
            findings.append(Finding("error", "dependency", f"{requirement.name} {installed} is "
                                    f"outside {requirement.specifier} (pyproject.toml); {fix}"))
    return findings


def diagnose(project: Path, *, python: Path | None = None, expiry_days: int = 30,
             run_app: bool = True) -> list[Finding]:
    """Every finding for `project`; raises RecordError when it has no usable record."""
    from packaging.requirements import InvalidRequirement, Requirement

    old = record.load(project)
    spec = old["spec"]
    findings = edited_files(project, old["files"])
    findings += registration_drift(project, spec)
    if run_app:
        wanted = requirements(project)
        names = []
        for text in wanted:
            try:
                names.append(Requirement(text).name)
            except InvalidRequirement:
                findings.append(Finding("error", "dependency", f"pyproject.toml: {text!r} is "
                                        "not a valid requirement; fix: correct it"))
        interpreter = project_python(project, python)
        result, stderr = probe(project, str(spec["package_name"]), interpreter, names)
        if result is None:
            findings.append(Finding("error", "settings", f"{interpreter} could not run the "
                                    f"app's settings check ({stderr}); fix: give the project's "
                                    "Python with --python"))
        else:
            findings += settings_findings(result, stderr, interpreter)
            findings += certificate_findings(result, expiry_days)
            findings += dependency_findings(wanted, result)
    return findings


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "doctor", help="check PROJECT: hand-edited managed files, settings that fail at "
        "start-up, registration drift, certificates near expiry, dependencies out of range")
    parser.add_argument("project", type=Path, nargs="?", default=Path("."), metavar="PROJECT",
                        help="the generated project's directory (default: .)")
    parser.add_argument("--python", type=Path, metavar="PYTHON",
                        help="the Python that runs the app (default: PROJECT/.venv's, else "
                             "this one)")
    parser.add_argument("--expiry-days", type=int, default=30, metavar="DAYS",
                        help="warn about certificates expiring within DAYS (default: 30)")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 on warnings too (edited files, certificates near expiry)")


def command(args: Any) -> int:
    """0: no error (nor warning with --strict); 1: findings; 2: not a generated project."""
    try:
        findings = diagnose(args.project, python=args.python, expiry_days=args.expiry_days)
    except record.RecordError as exc:
        print(f"error: {exc}")
        return EXIT_BAD_PROJECT
    for finding in findings:
        print(finding.line())
    failing = [f for f in findings if f.severity == "error" or args.strict]
    if not findings:
        print(f"{args.project}: no findings")
    return EXIT_FINDINGS if failing else EXIT_OK
