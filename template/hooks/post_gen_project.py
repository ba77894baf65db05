"""Post-generation hook: keep only the chosen framework's and store's files in the project.

The work is `msal_webapp_rules.layout.arrange` (the template's own package, which `msal-webapp`
calls in-process); see pre_gen_project.py for how the template directory is found. Imported
unrendered (as tests do), this module exposes the layout's tables and functions.
"""

import json
import os
import sys
from pathlib import Path

TEMPLATE_DIR_JSON = r'''{{ msal_webapp_template_dir() | tojson }}'''
FRAMEWORK = "{{ cookiecutter.framework }}"
BACKEND = "{{ cookiecutter.cache_backend }}"
PACKAGE = "{{ cookiecutter.package_name }}"
GRAPH_SDK = "{{ cookiecutter.graph_sdk }}"
CONTEXT_JSON = r'''{{ cookiecutter | tojson }}'''


def template_dir() -> str:
    """Where the layout is: the template directory, or this file's (imported unrendered)."""
    try:
        return str(json.loads(TEMPLATE_DIR_JSON))
    except json.JSONDecodeError:
        return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


if template_dir() not in sys.path:
    sys.path.insert(0, template_dir())

from msal_webapp_rules.layout import (  # noqa: E402
    BACKEND_FILES,
    FRAMEWORKS,
    SHARED_BY,
    arrange,
    select_backend,
    select_framework,
)

__all__ = ["BACKEND_FILES", "FRAMEWORKS", "SHARED_BY", "select_backend", "select_framework"]

if __name__ == "__main__":
    problems = arrange(Path.cwd(), FRAMEWORK, BACKEND, PACKAGE, graph_sdk=GRAPH_SDK == "True")
    if not problems:
        from msal_webapp_rules.hook import write_registration

        write_registration(Path.cwd(), json.loads(CONTEXT_JSON))
        from msal_webapp_rules import lock

        if not lock.disabled():
            # The project is complete either way: without the index, one line says how to
            # write the locked requirements later.
            problem = lock.write_locks(Path.cwd(), BACKEND)
            print(f"warning: {problem}" if problem else
                  f"Locked the dependencies: {lock.RUNTIME}, {lock.DEV}")

        from msal_webapp_rules import record  # last: it hashes every file of the project

        record.write(Path.cwd(), json.loads(CONTEXT_JSON), Path(template_dir()))
    for message in problems:
        print(f"ERROR: {message}")
    sys.exit(1 if problems else 0)
