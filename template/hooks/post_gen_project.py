"""Keep only the chosen framework's files in the generated project.

The template holds every framework's adapter under `_frameworks/<framework>/`, laid out as in the
project; the chosen one is moved into place and the folder is removed, so that a project holds
no file of a framework it does not use. Files shared by some frameworks only are listed in
SHARED_BY. Runs in the rendered project folder; stdlib only, and idempotent (a project without
`_frameworks/` is left as it is).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

FRAMEWORK = "{{ cookiecutter.framework }}"
FRAMEWORKS = ("flask", "django", "fastapi")

# Files of the shared template that only some frameworks use (a framework not listed may bring
# its own file of that name in _frameworks/).
SHARED_BY: dict[str, tuple[str, ...]] = {
    "gunicorn.conf.py": ("flask", "django"),
    "tests/test_production_server.py": ("flask", "django"),
}


def select_framework(project: Path, framework: str) -> list[str]:
    """Move `_frameworks/<framework>/` into `project`; problems, if any (nothing is overwritten)."""
    if framework not in FRAMEWORKS:
        return [f"framework: {framework!r} is not one of {', '.join(FRAMEWORKS)}"]
    folder = project / "_frameworks"
    if not folder.is_dir():
        return []
    for name, users in SHARED_BY.items():
        if framework not in users and (project / name).exists():
            (project / name).unlink()
    chosen = folder / framework
    problems = []
    moves = []
    for dirpath, _, filenames in os.walk(chosen):
        for name in filenames:
            source = Path(dirpath) / name
            target = project / source.relative_to(chosen)
            if target.exists():
                problems.append(f"{target.relative_to(project)}: is in the shared template and "
                                f"in _frameworks/{framework}/")
            moves.append((source, target))
    if problems:
        return problems
    for source, target in moves:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(source), str(target))
    shutil.rmtree(folder)
    return []


def main() -> int:
    problems = select_framework(Path.cwd(), FRAMEWORK)
    for message in problems:
        print(f"ERROR: {message}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
