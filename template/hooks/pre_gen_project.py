"""Pre-generation hook: check cookiecutter's answers with the template's rules.

The rules live in the template's `msal_webapp_rules` package (one copy, typed and type-checked,
which `msal-webapp` uses too). Cookiecutter renders this file into a temporary file and runs it
in the new project's directory; the template's Jinja extension (`_extensions` in
cookiecutter.json) names the template directory, which is put on sys.path to import the rules.
Jinja appears only in the two JSON literals below.
"""

import json
import os
import sys

TEMPLATE_DIR_JSON = r'''{{ msal_webapp_template_dir() | tojson }}'''
CONTEXT_JSON = r'''{{ cookiecutter | tojson }}'''


def template_dir() -> str:
    """Where the rules are: the template directory, or this file's (run unrendered)."""
    try:
        found = json.loads(TEMPLATE_DIR_JSON)
    except json.JSONDecodeError:
        found = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not os.path.isfile(os.path.join(found, "msal_webapp_rules", "__init__.py")):
        sys.exit(f"ERROR: the template's rules are not in {found!r} (msal_webapp_rules/); "
                 "run cookiecutter on the whole template directory")
    return str(found)


if __name__ == "__main__":
    sys.path.insert(0, template_dir())
    from msal_webapp_rules.hook import main

    sys.exit(main(CONTEXT_JSON))
