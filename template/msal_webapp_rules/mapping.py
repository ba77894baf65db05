"""A cookiecutter context read back as a spec, and messages worded with its variable names.

This is what the pre-generation hook checks for people who run cookiecutter (or cruft, or
pytest-cookies) directly: their answers arrive as a context, with cookiecutter's quirks.
"""

from __future__ import annotations

import json
from typing import Any

from msal_webapp_rules import authorities
from msal_webapp_rules.report import show, type_name, unknown_key
from msal_webapp_rules.schema import (
    ASSERTION_SOURCES,
    CONTEXT_KEYS,
    CREDENTIAL_VARIABLES,
    DEFAULT_INSTANCE,
    DEFAULT_REDIRECT_PATH,
    DEFAULT_TENANT,
    FALSE_WORDS,
    GRAPH,
    JSON_STRING_FIX,
    JSON_STRING_RENDERS,
    SPEC_TO_CONTEXT_PATH,
    TRUE_WORDS,
    SpecError,
)
from msal_webapp_rules.validate import validate_spec


def _to_bool(key: str, value: Any, problems: list[str]) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    problems.append(f"{key}: {show(value)} is not a yes/no value; allowed: yes, no, true, false")
    return False


def _scopes_from_context(value: Any) -> Any:
    return value.split() if isinstance(value, str) else value


def _context_mapping(ctx: dict[str, Any], key: str, what: str, example: str,
                     problems: list[str]) -> tuple[dict[Any, Any], bool]:
    """A mapping variable of the context, and whether it came as (JSON) text."""
    raw = ctx.get(key, {})
    as_text = isinstance(raw, str) and bool(raw.strip())
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError as exc:
            problems.append(f"{key}: {show(raw)} is not valid JSON ({exc.msg} at column "
                            f"{exc.colno}); expected a JSON object like {example}")
            raw = {}
    if not isinstance(raw, dict):
        problems.append(f"{key}: expected a JSON object ({what}), got {type_name(raw)} "
                        f"{show(raw)}")
        raw = {}
    return raw, as_text


def context_to_spec(ctx: dict[str, Any]) -> dict[str, Any]:
    """Spec for a cookiecutter context (keys starting with '_' are cookiecutter's own).

    Handles cookiecutter's quirks: booleans as yes/no strings, downstream_apis,
    credential_defaults and authorization as JSON strings (from `key=value` on the command
    line), scopes as a space-separated string; assertion_source is ignored unless
    credential_kind is 'assertion' (cookiecutter always has a value for it),
    credential_defaults' variables become the credential's fields (CLIENT_CERTIFICATE_FILE ->
    certificate_file, ...). Raises SpecError when the context cannot be read as a spec at all;
    the spec itself is checked by validate_spec.
    """
    problems: list[str] = []
    for key in ctx:
        if not key.startswith("_") and key not in CONTEXT_KEYS:
            problems.append(unknown_key("", key, CONTEXT_KEYS))
    kind = ctx.get("authority_kind", "entra")
    authority: dict[str, Any] = {"kind": kind}
    tenant = ctx.get("entra_tenant", DEFAULT_TENANT)
    instance = ctx.get("entra_instance", DEFAULT_INSTANCE)
    issuer = ctx.get("oidc_issuer", "")
    options, options_as_text = _context_mapping(
        ctx, "authority_options", "the authority's other fields",
        '{"sign_up_sign_in": "B2C_1_signupsignin"}', problems)
    if kind in authorities.OPTIONS:
        problems += authorities.options_problems(kind, options)
        authority["tenant"] = tenant
        authority.update(options)
        if instance not in ("", DEFAULT_INSTANCE):
            authority["instance"] = instance
        if issuer not in ("", None):
            authority["issuer"] = issuer
    elif options:
        problems += authorities.options_problems(kind, options)
    elif kind == "oidc":
        if issuer not in ("", None):
            authority["issuer"] = issuer
        if tenant not in ("", DEFAULT_TENANT):
            authority["tenant"] = tenant
        if instance not in ("", DEFAULT_INSTANCE):
            authority["instance"] = instance
    else:
        authority["tenant"] = tenant
        authority["instance"] = instance
        if issuer not in ("", None):
            authority["issuer"] = issuer

    apis_raw, as_text = _context_mapping(
        ctx, "downstream_apis", "name -> base_url and scopes",
        '{"todo": {"base_url": "https://...", "scopes": ["api://<id>/S"]}}', problems)
    defaults_raw, defaults_as_text = _context_mapping(
        ctx, "credential_defaults", "variable name -> default value",
        '{"CLIENT_CERTIFICATE_FILE": "/run/secrets/app/client.pem"}', problems)
    authorization, authorization_as_text = _context_mapping(
        ctx, "authorization", "roles, groups and groups_overage",
        '{"roles": ["Admin"], "groups": {"finance": "<group object id>"}}', problems)
    credential_kind = ctx.get("credential_kind")
    credential: dict[str, Any] = {"kind": credential_kind}
    if credential_kind == "assertion":
        credential["source"] = ctx.get("assertion_source", ASSERTION_SOURCES[0])
    if ctx.get("assertion_callable") not in ("", None):
        credential["callable"] = ctx["assertion_callable"]  # refused unless source callable
    field_of = {variable: field for field, variable in CREDENTIAL_VARIABLES.items()}
    for name, value in defaults_raw.items():
        if name in field_of:
            credential[field_of[name]] = value
        elif name in ("CLIENT_CREDENTIAL", "CLIENT_ASSERTION_CALLABLE"):
            own = "credential_kind" if name == "CLIENT_CREDENTIAL" else "assertion_callable"
            problems.append(f"credential_defaults.{name}: set it with {own}, not in "
                            "credential_defaults; remove it")
        else:
            problems.append(unknown_key("credential_defaults", name, list(field_of)))
    apis: dict[str, Any] = {}
    call_graph = _to_bool("call_graph", ctx.get("call_graph", True), problems)
    if GRAPH in apis_raw:
        problems.append("downstream_apis.graph: configure Microsoft Graph with call_graph and "
                        "graph_scopes, not inside downstream_apis; remove the 'graph' entry")
    graph_base_url = ctx.get("graph_base_url", "")
    graph_sdk = _to_bool("graph_sdk", ctx.get("graph_sdk", False), problems)
    if call_graph:
        apis[GRAPH] = {"scopes": _scopes_from_context(ctx.get("graph_scopes", "User.Read"))}
        if graph_base_url not in ("", None):
            apis[GRAPH]["base_url"] = graph_base_url
        if graph_sdk:
            apis[GRAPH]["sdk"] = True
    else:
        if graph_base_url not in ("", None):
            problems.append("graph_base_url: only used when call_graph is true; remove it")
        if graph_sdk:
            problems.append("graph_sdk: only used when call_graph is true; set it to no")
    for name, api in apis_raw.items():
        if name == GRAPH:
            continue
        if isinstance(api, dict) and "scopes" in api:
            api = {**api, "scopes": _scopes_from_context(api["scopes"])}
        apis[name] = api
    if problems:
        raise SpecError(problems)
    if as_text and not JSON_STRING_RENDERS:
        problems.append(JSON_STRING_FIX)
    if defaults_as_text and not JSON_STRING_RENDERS:
        problems.append(JSON_STRING_FIX.replace("downstream_apis", "credential_defaults", 1))
    if options_as_text and not JSON_STRING_RENDERS:
        problems.append(JSON_STRING_FIX.replace("downstream_apis", "authority_options", 1))
    if authorization_as_text and not JSON_STRING_RENDERS:
        problems.append(JSON_STRING_FIX.replace("downstream_apis", "authorization", 1))

    spec: dict[str, Any] = {
        "project_name": ctx.get("project_name"),
        "project_slug": ctx.get("project_slug"),
        "package_name": ctx.get("package_name"),
        "framework": ctx.get("framework"),
        "authority": authority,
        "credential": credential,
        "cache": {"backend": ctx.get("cache_backend")},
        "downstream_apis": apis,
        "sign_in_api": ctx.get("sign_in_api", ""),
        "redirect_path": ctx.get("redirect_path", DEFAULT_REDIRECT_PATH),
    }
    if ctx.get("client_id") not in (None, ""):
        spec["client_id"] = ctx["client_id"]
    if authorization:
        spec["authorization"] = authorization
    if problems:  # the JSON text itself was fine: report its content problems too
        raise SpecError([to_context_path(m) for m in validate_spec(spec)] + problems)
    return spec


def to_context_path(message: str) -> str:
    """Reword a spec message's leading field path with the cookiecutter variable name."""
    for spec_path, ctx_path in SPEC_TO_CONTEXT_PATH:
        if message.startswith(spec_path) and message[len(spec_path):len(spec_path) + 1] in ":[.":
            return ctx_path + message[len(spec_path):]
    return message


def context_problems(ctx: dict[str, Any]) -> list[str]:
    """Everything wrong with a cookiecutter context, worded with its variable names."""
    try:
        spec = context_to_spec(ctx)
    except SpecError as exc:
        return exc.messages
    return [to_context_path(m) for m in validate_spec(spec)]


