"""The pre-generation hook's entry point: check cookiecutter's answers, print every problem.

template/hooks/pre_gen_project.py is rendered by cookiecutter with the whole context as JSON,
puts the template directory on sys.path and calls `main` with that JSON: cookiecutter, cruft and
pytest-cookies all check a project with the rules that `msal-webapp` uses.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from msal_webapp_rules import registration
from msal_webapp_rules.mapping import context_problems, context_to_spec


def main(context_json: str) -> int:
    """Print one 'ERROR: <variable>: <problem; the fix>' line per problem; 1 if any, else 0."""
    try:
        ctx = json.loads(context_json)
    except json.JSONDecodeError as exc:  # only if the hook was run without being rendered
        print(f"ERROR: the hook was not rendered by cookiecutter ({exc})")
        return 1
    if not isinstance(ctx, dict):
        print(f"ERROR: the hook was given {type(ctx).__name__}, not cookiecutter's context")
        return 1
    problems = context_problems(ctx)
    for message in problems:
        print(f"ERROR: {message}")
    return 1 if problems else 0


def write_registration(project: Path, context: dict[str, Any]) -> None:
    """Write the project's registration.json from a valid cookiecutter context (none for a
    generic OpenID Connect provider)."""
    description = registration.describe(context_to_spec(context))
    if description is not None:
        (project / registration.FILE_NAME).write_text(
            json.dumps(description, indent=2) + "\n", encoding="utf-8")
