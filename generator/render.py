"""Atomic rendering: cookiecutter into a temporary sibling directory, check, then move.

Cookiecutter is imported when a project is rendered, not when a spec is only validated.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from msal_webapp_rules import record
from msal_webapp_rules.hook import write_registration
from msal_webapp_rules.layout import arrange, discarded
from msal_webapp_rules.schema import JINJA_MARKERS

# A Jinja tag of OUR template left in the output (Jinja in the app's own HTML templates is fine).
LEFTOVER_RE = re.compile(r"\{[{%]-?[^{}\n]*?\bcookiecutter\b")


class TargetExistsError(Exception):
    """The project directory exists and --force was not given."""


class RenderError(Exception):
    """Rendering or a post-render check failed; nothing was left on disk."""


def _files(root: Path, skip: set[str] | None = None) -> Iterator[Path]:
    """Every file under `root`, sorted; `skip`: relative paths of files or folders left out."""
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames
                             if not skip or (here / d).relative_to(root).as_posix() not in skip)
        for name in sorted(filenames):
            if not skip or (here / name).relative_to(root).as_posix() not in skip:
                yield here / name


def check_project(project: Path, verbatim: frozenset[str] = frozenset()) -> list[str]:
    """Problems of a rendered project: leftovers of the template, files that do not parse.

    A file whose text is in `verbatim` is one of the template's files without Jinja, copied as
    it is: rendering cannot have broken it (the root suite bakes, lints and tests them).
    """
    problems: list[str] = []
    for path in _files(project):
        rel = path.relative_to(project).as_posix()
        if any(m in rel for m in ("{{", "}}", "{%")):
            problems.append(f"{rel}: unrendered Jinja in the file name")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary file
        if text in verbatim:
            continue
        match = LEFTOVER_RE.search(text)
        if match:
            line = text.count("\n", 0, match.start()) + 1
            problems.append(f"{rel}:{line}: unrendered template code {match.group(0)!r}")
        suffix = path.suffix.lower()
        try:
            if suffix == ".py":
                compile(text, str(path), "exec", dont_inherit=True)
            elif suffix == ".toml":
                tomllib.loads(text)
            elif suffix == ".json":
                json.loads(text)
            elif suffix in (".yaml", ".yml"):
                list(yaml.safe_load_all(text))
        except SyntaxError as exc:
            problems.append(f"{rel}:{exc.lineno}: does not compile: {exc.msg}")
        except (ValueError, yaml.YAMLError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            problems.append(f"{rel}: does not parse: {first}")
    return problems


def _describe(exc: Exception) -> str:
    """One short line for a cookiecutter exception (some embed the whole context)."""
    from cookiecutter.exceptions import UndefinedVariableInTemplate

    if isinstance(exc, UndefinedVariableInTemplate):
        detail = f"{exc.message}: {getattr(exc.error, 'message', exc.error)}"
    else:
        text = str(exc).strip()
        detail = text.splitlines()[0] if text else ""
    if len(detail) > 300:
        detail = detail[:297] + "..."
    return type(exc).__name__ + (f": {detail}" if detail else "")


@dataclass(frozen=True)
class Unrendered:
    """Files of the project template that rendering cannot change or that the project drops."""

    patterns: list[str]  # for cookiecutter's `_copy_without_render` (fnmatch, escaped)
    verbatim: frozenset[str]  # the texts of the template's files without any Jinja


def _fnmatch_escape(path: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", path)


def unrendered(template: Path, context: dict[str, Any]) -> Unrendered:
    """What cookiecutter can copy instead of rendering, for this context: the files the layout
    step removes at once, and every file without a Jinja delimiter (Jinja renders such a text
    to itself, so copying it gives the same bytes)."""
    project_template = next(p for p in template.iterdir()
                            if p.is_dir() and "{{" in p.name and "cookiecutter" in p.name)
    package = "{{cookiecutter.package_name}}"
    dropped = [path.format(package=package)
               for path in discarded(context["framework"], context["cache_backend"],
                                     bool(context.get("graph_sdk")))]
    patterns = [_fnmatch_escape(path) for path in dropped]
    verbatim: set[str] = set()
    for path in _files(project_template, skip=set(dropped)):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary: cookiecutter copies it anyway
        if not any(marker in text for marker in JINJA_MARKERS):
            patterns.append(_fnmatch_escape(path.relative_to(project_template).as_posix()))
            verbatim.add(text)
    return Unrendered(patterns, frozenset(verbatim))


def cookiecutter_context(context: dict[str, Any], template: Path, output_dir: Path,
                         copy_only: list[str]) -> dict[str, Any]:
    """The context cookiecutter itself would build from `context` (the answers), without
    prompting: cookiecutter.json's own settings (its `_` keys) and the answers, all given;
    `copy_only` is added to its `_copy_without_render`."""
    defaults = json.loads((template / "cookiecutter.json").read_text(encoding="utf-8"))
    values = {key: value for key, value in defaults.items() if key.startswith("_")}
    values.update(context)
    values["_copy_without_render"] = [*defaults.get("_copy_without_render", ()), *copy_only]
    values.update({"_template": str(template), "_output_dir": str(output_dir),
                   "_repo_dir": str(template), "_checkout": None})
    return {"cookiecutter": values,
            "_cookiecutter": {k: v for k, v in values.items() if not k.startswith("_")}}


def _generate(context: dict[str, Any], template: Path, out: Path, skip: Unrendered) -> Path:
    """Render the project into `out` with cookiecutter, then arrange its layout in-process.

    The hooks do not run: the spec was validated with the same rules that the pre-generation
    hook applies (msal_webapp_rules), and the post-generation hook's work is called directly.
    """
    from cookiecutter.generate import generate_files

    try:
        result = generate_files(
            repo_dir=str(template), output_dir=str(out), accept_hooks=False,
            context=cookiecutter_context(context, template, out, skip.patterns))
    except Exception as exc:  # cookiecutter raises many kinds; all mean "not rendered"
        raise RenderError(f"cookiecutter failed: {_describe(exc)}") from exc
    project = Path(result)
    problems = arrange(project, context["framework"], context["cache_backend"],
                       context["package_name"], graph_sdk=bool(context.get("graph_sdk")))
    if problems:
        raise RenderError("arranging the project failed: " + "; ".join(problems))
    write_registration(project, {k: v for k, v in context.items() if not k.startswith("_")})
    record.write(project, context, template)  # last: it hashes every file above
    return project


def render(context: dict[str, Any], output_dir: Path, template: Path, *,
           force: bool = False) -> Path:
    """Render ``template`` with ``context`` to ``output_dir/<project_slug>``, all or nothing.

    Raises TargetExistsError (nothing touched), RenderError (nothing left behind), and lets
    KeyboardInterrupt through after cleaning up.
    """
    output_dir = Path(os.path.abspath(output_dir))
    target: Path = output_dir / context["project_slug"]
    if (target.exists() or target.is_symlink()) and not force:
        raise TargetExistsError(str(target))
    created: list[Path] = []
    for parent in [output_dir, *output_dir.parents]:
        if parent.exists():
            break
        created.append(parent)
    output_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".msal-webapp-tmp",
                                 dir=output_dir))
    done = False
    try:
        out = work / "out"
        out.mkdir()
        skip = unrendered(template, context)
        project = _generate(context, template, out, skip)
        if project.resolve() != (out / target.name).resolve() or not project.is_dir():
            raise RenderError(f"cookiecutter produced {project.name!r}, expected {target.name!r}")
        problems = check_project(project, skip.verbatim)
        if problems:
            raise RenderError(f"the rendered project failed {len(problems)} check(s): "
                              + "; ".join(problems[:5]) + (" ..." if len(problems) > 5 else ""))
        if target.exists() or target.is_symlink():
            old = work / "old"
            os.rename(target, old)
            try:
                os.rename(project, target)
            except BaseException:
                os.rename(old, target)
                raise
        else:
            os.rename(project, target)
        done = True
        return target
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not done:
            for directory in created:
                try:
                    directory.rmdir()
                except OSError:
                    break
