"""The template's Jinja extension (cookiecutter.json `_extensions`): where the template is, for
the hooks, the `env_quoted` filter for values written to .env files and the `graph_base_url`
filter (Microsoft Graph's base URL in the cloud of an Entra instance).

Cookiecutter renders a hook into a temporary file and runs it in the new project's directory, so
the hook cannot find this package from its own path, and the context does not name the template
directory either (`_repo_dir` may be relative to a directory the hook does not know, and cruft
leaves it out). Cookiecutter renders and runs hooks with the template directory as the working
directory (`cookiecutter.hooks.run_hook_from_repo_dir`), and it imports extensions from the
template directory (it adds it to sys.path, as cruft does): so the template's own extension can
name it, absolutely, at the moment the hook is rendered.
"""

from __future__ import annotations

import json
import os
from typing import Any

from jinja2 import Environment
from jinja2.ext import Extension

from msal_webapp_rules.authorities import context_urls
from msal_webapp_rules.mapping import context_problems
from msal_webapp_rules.schema import GRAPH_ROOTS, default_graph_base_url, env_file_problem

GLOBAL_NAME = "msal_webapp_template_dir"


def template_dir_now() -> str:
    """The template directory while cookiecutter renders a hook (its working directory then)."""
    return os.getcwd()


class TemplateDirectory(Extension):
    """Adds `msal_webapp_template_dir()` and `graph_roots_by_host` (GRAPH_ROOTS) to the
    templates' globals, the `env_quoted` filter and the `graph_base_url` filter (an Entra
    instance -> Microsoft Graph's base URL in its cloud)."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.globals[GLOBAL_NAME] = template_dir_now
        environment.filters["env_quoted"] = env_quoted
        environment.filters["graph_base_url"] = default_graph_base_url
        # A b2c or external_id authority's URLs (authorities.py), from the whole context.
        environment.filters["authority_urls"] = context_urls
        # Graph's roots by sign-in host, for core/settings.py (one table for rules and app).
        environment.globals["graph_roots_by_host"] = GRAPH_ROOTS
        environment.globals[CHECK_NAME] = check_answers

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        """The project folder's name (the first thing cookiecutter renders once every answer
        is in, before it makes any folder) checks the answers first."""
        if source == PROJECT_FOLDER:
            return OPEN + f" {CHECK_NAME}(cookiecutter) " + CLOSE + source
        return source


# Cookiecutter makes the project's folder (and a missing -o folder) before it runs the
# pre-generation hook; on a refusal it logs its own traceback and leaves that -o folder behind.
# So the answers are checked while the folder's name is rendered, in cookiecutter's process:
# a refusal prints the hook's messages and stops cookiecutter, before anything is made, with
# the exception it reports in one line. The hook checks again, with the same rules. Jinja
# delimiters are spelled out: this package's files hold none.
OPEN, CLOSE = "{" + "{", "}" + "}"
PROJECT_FOLDER = OPEN + "cookiecutter.project_slug" + CLOSE
CHECK_NAME = "msal_webapp_check_answers"


def check_answers(answers: Any) -> str:
    """Return "" for answers the rules accept; else print the problems and raise."""
    if isinstance(answers, dict):
        refuse(answers)
    return ""


def refuse(answers: dict[str, Any]) -> None:
    """Print the rules' problems with cookiecutter's answers as the hook does, and raise
    cookiecutter's FailedHookException if there are any."""
    # As the hook reads them: through JSON, keys sorted (the same messages, in the same order).
    context = json.loads(json.dumps(answers, sort_keys=True, default=str))
    problems = context_problems(context)
    if not problems:
        return
    from cookiecutter.exceptions import FailedHookException

    for message in problems:
        print(f"ERROR: {message}", flush=True)
    raise FailedHookException(f"{len(problems)} answer(s) refused; nothing was generated")


def env_quoted(value: object) -> str:
    """A value for a line of a .env file: in single quotes, so that python-dotenv (the app) and
    a POSIX shell (`set -a; . .env`) read the same text and the shell runs nothing.

    The rules refuse what cannot be quoted so (env_file_problem) before anything is rendered;
    this refuses it again rather than write a line that reads differently.
    """
    text = str(value)
    problem = env_file_problem(text)
    if problem:
        raise ValueError(f"a value for a .env file {problem}")
    return f"'{text}'"
