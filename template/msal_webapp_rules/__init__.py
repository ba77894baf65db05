"""The template's own Python: the spec's rules, shared by `msal-webapp` and the template's hooks.

One rule set, in five parts, each a module:
    schema    the choices, keys, defaults and patterns (cookiecutter.json mirrors the choices)
    validate  validate_spec(spec) -> list[str]: one message per problem, "<field path>: <problem>"
    context   spec_to_context(spec) -> dict: a valid spec -> the cookiecutter context
    mapping   context_to_spec(ctx), context_problems(ctx): a cookiecutter context read back as a
              spec, its problems worded with cookiecutter's variable names
    hook      main(context_json): the pre-generation hook's entry point
and, beside them, `report` (how values appear in messages: briefly, secrets hidden), `layout`
(the post-generation step: keep only the chosen framework's and store's files) and `jinja` (the
extension that tells the hooks where the template directory is).

Standard library only (the hooks run with whatever Python runs cookiecutter), fully typed and
checked with `mypy --strict` (tests/test_spec.py). `msal-webapp` imports this package from the
template directory it renders with (generator/paths.py), the hooks from the same directory.
"""

from __future__ import annotations

from msal_webapp_rules.context import spec_to_context
from msal_webapp_rules.mapping import context_problems, context_to_spec, to_context_path
from msal_webapp_rules.report import looks_like_secret
from msal_webapp_rules.schema import *  # noqa: F403 - the schema is part of the public API
from msal_webapp_rules.schema import __all__ as _schema_names
from msal_webapp_rules.validate import scope_resource, validate_spec

__all__ = [
    *_schema_names,
    "context_problems", "context_to_spec", "looks_like_secret", "scope_resource",
    "spec_to_context", "to_context_path", "validate_spec",
]
