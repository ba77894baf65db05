"""Where the cookiecutter template is, and how its rules package becomes importable."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

RULES_PACKAGE = "msal_webapp_rules"


@functools.cache
def template_dir() -> Path:
    """The cookiecutter template: packaged in the wheel, else the source checkout's template/."""
    here = Path(__file__).resolve().parent
    packaged = here / "template"
    if (packaged / "cookiecutter.json").is_file():
        return packaged
    return here.parent / "template"


def expose_rules() -> None:
    """Put the template directory on sys.path, so that `import msal_webapp_rules` finds the
    template's own rules: the copy its hooks run. Cookiecutter does the same while it renders
    (for a template's local Jinja extensions)."""
    root = str(template_dir())
    if root not in sys.path:
        sys.path.append(root)
