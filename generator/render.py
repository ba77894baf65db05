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
from pathlib import Path
from typing import Any

import msal_webapp_rules as rules  # the template's own package (see generator/paths.py)
import yaml
from msal_webapp_rules.layout import arrange

# A Jinja tag of OUR template left in the output (Jinja in the app's own HTML templates is fine).
LEFTOVER_RE = re.compile(r"\{[{%]-?[^{}\n]*?\bcookiecutter\b")


class TargetExistsError(Exception):
    """The project directory exists and --force was not given."""


class RenderError(Exception):
    """Rendering or a post-render check failed; nothing was left on disk."""


def _files(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            yield Path(dirpath) / name


def check_project(project: Path) -> list[str]:
    """Problems of a rendered project: leftovers of the template, files that do not parse."""
    problems: list[str] = []
    for path in _files(project):
        rel = path.relative_to(project).as_posix()
        if any(m in rel for m in ("{{", "}}", "{%")):
            problems.append(f"{rel}: unrendered Jinja in the file name")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary file
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


def cookiecutter_context(context: dict[str, Any], template: Path,
                         output_dir: Path) -> dict[str, Any]:
    """The context cookiecutter itself would build from `context` (the answers), without
    prompting: cookiecutter.json's own settings (its `_` keys) and the answers, all given.

    The other frameworks' folders are copied without rendering (the layout step removes them
    at once), so no time goes into rendering files the project will not have.
    """
    defaults = json.loads((template / "cookiecutter.json").read_text(encoding="utf-8"))
    values = {key: value for key, value in defaults.items() if key.startswith("_")}
    values.update(context)
    values["_copy_without_render"] = [
        *defaults.get("_copy_without_render", ()),
        *(f"_frameworks/{other}" for other in rules.FRAMEWORKS if other != context["framework"]),
    ]
    values.update({"_template": str(template), "_output_dir": str(output_dir),
                   "_repo_dir": str(template), "_checkout": None})
    return {"cookiecutter": values,
            "_cookiecutter": {k: v for k, v in values.items() if not k.startswith("_")}}


def _generate(context: dict[str, Any], template: Path, out: Path) -> Path:
    """Render the project into `out` with cookiecutter, then arrange its layout in-process.

    The hooks do not run: the spec was validated with the same rules that the pre-generation
    hook applies (msal_webapp_rules), and the post-generation hook's work is called directly.
    """
    from cookiecutter.generate import generate_files

    try:
        result = generate_files(repo_dir=str(template), output_dir=str(out), accept_hooks=False,
                                context=cookiecutter_context(context, template, out))
    except Exception as exc:  # cookiecutter raises many kinds; all mean "not rendered"
        raise RenderError(f"cookiecutter failed: {_describe(exc)}") from exc
    project = Path(result)
    problems = arrange(project, context["framework"], context["cache_backend"],
                       context["package_name"])
    if problems:
        raise RenderError("arranging the project failed: " + "; ".join(problems))
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
        project = _generate(context, template, out)
        if project.resolve() != (out / target.name).resolve() or not project.is_dir():
            raise RenderError(f"cookiecutter produced {project.name!r}, expected {target.name!r}")
        problems = check_project(project)
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
