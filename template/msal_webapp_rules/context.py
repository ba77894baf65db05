"""Context building: the cookiecutter context (keys of cookiecutter.json) for a valid spec."""

from __future__ import annotations

from typing import Any

from msal_webapp_rules.schema import (
    ASSERTION_SOURCES,
    AUTHORITY_OPTION_KEYS,
    CREDENTIAL_VARIABLES,
    DEFAULT_GRAPH_SCOPES,
    DEFAULT_GROUPS_OVERAGE,
    DEFAULT_INSTANCE,
    DEFAULT_REDIRECT_PATH,
    DEFAULT_TENANT,
    GRAPH,
    slugify,
)


def authorization_context(section: Any) -> dict[str, Any]:
    """The `authorization` context value of a valid section: {} for none (absent, null, {} or
    no roles and no groups), else `roles` and `groups` (group ids in lower case, as tokens carry
    them; roles and groups in the spec's order: the first role guards /admin) and, with groups,
    `groups_overage` (default filled in). Without groups it is left out: the rules refuse it
    there, and the hook checks this value again. config.py renders all three keys always."""
    section = section or {}
    roles = list(section.get("roles") or [])
    groups = {name: group_id.lower() for name, group_id in (section.get("groups") or {}).items()}
    if not roles and not groups:
        return {}
    context: dict[str, Any] = {"roles": roles, "groups": groups}
    if groups:
        context["groups_overage"] = section.get("groups_overage", DEFAULT_GROUPS_OVERAGE)
    return context


def spec_to_context(spec: dict[str, Any]) -> dict[str, Any]:
    """Cookiecutter context (keys of cookiecutter.json) for a spec that validate_spec accepted."""
    auth = spec["authority"]
    kind = auth["kind"]
    slug = spec.get("project_slug") or slugify(spec["project_name"])
    apis = spec["downstream_apis"]
    graph = apis.get(GRAPH)
    graph_scopes = list((graph or {}).get("scopes") or DEFAULT_GRAPH_SCOPES)
    # base_url and scopes, and the description's other fields where the spec gives them.
    others = {
        name: {**api, "base_url": api["base_url"], "scopes": list(api["scopes"])}
        for name, api in apis.items() if name != GRAPH
    }
    sign_in_api = spec.get("sign_in_api")
    if sign_in_api is None:
        sign_in_api = GRAPH if graph is not None else ""
    cred = spec["credential"]
    assertion = cred["kind"] == "assertion"
    instance = auth.get("instance", DEFAULT_INSTANCE) if kind == "entra" else DEFAULT_INSTANCE
    if instance.endswith("/"):
        instance = instance[:-1]
    return {
        "project_name": spec["project_name"],
        "project_slug": slug,
        "package_name": spec.get("package_name") or slug.replace("-", "_"),
        "framework": spec["framework"],
        "authority_kind": kind,
        "entra_instance": instance,
        "entra_tenant": auth.get("tenant", DEFAULT_TENANT) if kind != "oidc" else DEFAULT_TENANT,
        "oidc_issuer": auth["issuer"] if kind == "oidc" else "",
        # b2c and external_id: their fields besides kind and tenant (authorities.py).
        "authority_options": {key: auth[key] for key in AUTHORITY_OPTION_KEYS if key in auth},
        "client_id": spec.get("client_id") or "",
        "credential_kind": cred["kind"],
        "assertion_source": cred["source"] if assertion else ASSERTION_SOURCES[0],
        "assertion_callable": cred.get("callable", "") if assertion else "",
        # Only what the spec gives: the app has its own defaults for the rest.
        "credential_defaults": {variable: cred[field]
                                for field, variable in CREDENTIAL_VARIABLES.items()
                                if field in cred},
        "cache_backend": spec["cache"]["backend"],
        "call_graph": graph is not None,
        "graph_scopes": " ".join(graph_scopes),
        # "" for the default of the instance's cloud, which config.py renders (graph_base_url).
        "graph_base_url": str((graph or {}).get("base_url") or "").rstrip("/"),
        "graph_sdk": bool((graph or {}).get("sdk", False)),
        "downstream_apis": others,
        "sign_in_api": sign_in_api,
        "redirect_path": spec.get("redirect_path") or DEFAULT_REDIRECT_PATH,
        "authorization": authorization_context(spec.get("authorization")),
    }


