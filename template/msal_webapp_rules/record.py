"""The project's record of where it came from: `.msal-webapp.json` at its root.

Written by `msal-webapp new` / `update` and by the post-generation hook (cookiecutter, cruft),
read by `msal-webapp update` and `doctor`. It holds:

    format            this file's format (1)
    generator         {"version": the generator's version, "template_commit": the git commit
                      of the template, or null when unknown (not a git checkout, or one with
                      uncommitted changes to the generator or the template)}
    spec              the validated, normalised spec (the rules' `context_to_spec` of the
                      context the project was rendered with): `update` re-renders from it
    files             every template-managed file (path -> "sha256:<hex>"): `update` tells a
                      file the user never edited from an edited one, `doctor` lists the edited

The record is the same bytes whichever way the project was rendered (no time, no path), so a
render is reproducible and two renders of one spec and template compare equal. Files made after
rendering (the lock files) and files the user adds are not template-managed.

Standard library only: the hooks run it with whatever Python runs cookiecutter.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

from msal_webapp_rules.mapping import context_to_spec

FILE_NAME = ".msal-webapp.json"
FORMAT = 1
# Written into a project after rendering (hashed dependency locks), never by the template.
UNMANAGED = frozenset({FILE_NAME, "requirements.txt", "requirements-dev.txt"})
_VERSION_RE = re.compile(r'^__version__\s*=\s*["\']([^"\']+)["\']', re.MULTILINE)


class RecordError(Exception):
    """The project has no readable record: its message says what is wrong and the fix."""


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def managed_files(project: Path) -> dict[str, str]:
    """Every file of a freshly rendered project but the unmanaged ones: relative POSIX path ->
    digest, sorted."""
    hashes: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(project):
        dirnames.sort()
        for name in filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(project).as_posix()
            if rel not in UNMANAGED:
                hashes[rel] = digest(path.read_bytes())
    return dict(sorted(hashes.items()))


def generator_version(template: Path) -> str | None:
    """The generator's version beside the template: a source checkout's generator/__init__.py
    (template/ beside generator/), or the wheel's (the template inside the generator package)."""
    for init in (template.parent / "generator" / "__init__.py", template.parent / "__init__.py"):
        try:
            match = _VERSION_RE.search(init.read_text(encoding="utf-8"))
        except OSError:
            continue
        if match:
            return match.group(1)
    return None


def _git(cwd: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                              check=False, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def template_commit(template: Path) -> str | None:
    """The git commit the template (and the generator beside it) is at, if both are exactly
    that commit: None outside a git checkout or with uncommitted changes to either."""
    commit = _git(template, "rev-parse", "HEAD")
    if not commit:
        return None
    paths = [str(template)] + [str(p) for p in (template.parent / "generator",) if p.is_dir()]
    status = _git(template, "status", "--porcelain", "--", *paths)
    return commit if status == "" else None


def build(project: Path, context: dict[str, Any], template: Path) -> dict[str, Any]:
    """The record of a freshly rendered `project` (its files as they are now)."""
    spec = context_to_spec({k: v for k, v in context.items() if not k.startswith("_")})
    return {
        "format": FORMAT,
        "generator": {"version": generator_version(template),
                      "template_commit": template_commit(template)},
        "spec": spec,
        "files": managed_files(project),
    }


def dumps(record: dict[str, Any]) -> str:
    # Sorted keys: the same spec gives the same bytes, whatever order its mappings came in.
    return json.dumps(record, indent=2, sort_keys=True) + "\n"


def write(project: Path, context: dict[str, Any], template: Path) -> dict[str, Any]:
    """Write the record of a freshly rendered project; returns it."""
    record = build(project, context, template)
    (project / FILE_NAME).write_text(dumps(record), encoding="utf-8")
    return record


def load(project: Path) -> dict[str, Any]:
    """The project's record; RecordError naming the problem and the fix."""
    path = project / FILE_NAME
    if not project.is_dir():
        raise RecordError(f"{project}: not a directory; give the generated project's directory")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecordError(
            f"{path}: missing: {project} was not generated by msal-webapp (or before it recorded "
            "its origin); generate the project again with `msal-webapp new` and move your code "
            "over") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordError(f"{path}: cannot be read ({exc}); restore it from version "
                          "control") from exc
    problems = []
    if not isinstance(record, dict):
        problems.append("not a JSON object")
    else:
        if record.get("format") != FORMAT:
            problems.append(f"format {record.get('format')!r} is not {FORMAT} (a newer "
                            "generator wrote it? upgrade msal-webapp-generator)")
        if not isinstance(record.get("spec"), dict):
            problems.append("'spec' is not an object")
        files = record.get("files")
        if not isinstance(files, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
            problems.append("'files' is not an object of path -> digest")
        if not isinstance(record.get("generator"), dict):
            problems.append("'generator' is not an object")
    if problems:
        raise RecordError(f"{path}: " + "; ".join(problems) + "; restore it from version control")
    return dict(record)
