"""Defaults baked in when this project was generated; every one can be overridden by an
environment variable (see .env.example). Yours to edit."""

from .core.settings import AppDefaults

DEFAULTS = AppDefaults(
    app_name={{ cookiecutter.project_name | tojson }},
    app_slug={{ cookiecutter.project_slug | tojson }},
    # The path the identity provider posts the sign-in answer to (REDIRECT_URI must end with it).
    redirect_path={{ cookiecutter.redirect_path | tojson }},
{% if cookiecutter.authority_kind == "entra" %}
    authority={{ (cookiecutter.entra_instance.rstrip("/") ~ "/" ~ cookiecutter.entra_tenant) | tojson }},
    oidc_authority="",
{% elif cookiecutter.authority_kind in ("b2c", "external_id") %}
{% set kind_urls = cookiecutter | authority_urls %}
    authority={{ kind_urls.authority | tojson }},
    oidc_authority={{ kind_urls.oidc_authority | tojson }},
{% if cookiecutter.authority_kind == "b2c" %}
    # Azure AD B2C's other user flows (B2C_PASSWORD_RESET_FLOW, B2C_PROFILE_EDIT_FLOW); "" for
    # none: the sign-up and sign-in flow is AUTHORITY's last segment.
    b2c_password_reset_flow={{ kind_urls.password_reset | tojson }},
    b2c_profile_edit_flow={{ kind_urls.profile_edit | tojson }},
{% endif %}
{% else %}
    authority="",
    oidc_authority={{ cookiecutter.oidc_issuer | tojson }},
{% endif %}
    token_cache_backend={{ cookiecutter.cache_backend | tojson }},
    # Downstream APIs by name: API_<NAME>_BASE_URL, _SCOPES, _PATH, _METHOD, _HEADERS, _QUERY,
    # _TIMEOUT and _APP_ONLY override them (README.md, "Settings"). All scopes of one API belong
    # to one resource (one token serves one resource); an app-only API is called with the
    # app's own token, its one scope `<resource>/.default`.
    downstream_apis={
{% if cookiecutter.call_graph %}
        "graph": {
            # Microsoft Graph in the cloud of the authority's instance (another cloud's Graph
            # would refuse this cloud's tokens).
            "base_url": {{ (cookiecutter.graph_base_url or (cookiecutter.entra_instance | graph_base_url)) | tojson }},
            "scopes": [
{% for scope in cookiecutter.graph_scopes.split() %}
                {{ scope | tojson }},
{% endfor %}
            ],
        },
{% endif %}
{% for name, api in cookiecutter.downstream_apis | dictsort %}
        {{ name | tojson }}: {
            "base_url": {{ api.base_url | tojson }},
            "scopes": [
{% for scope in (api.scopes.split() if api.scopes is string else api.scopes | list) %}
                {{ scope | tojson }},
{% endfor %}
            ],
{% for key in ("path", "method", "headers", "query", "timeout", "app_only") if key in api %}
            {{ key | tojson }}: {{ (api[key] | string) if key == "app_only" else (api[key] | tojson) }},
{% endfor %}
        },
{% endfor %}
    },
    # The API whose scopes are consented at sign-in; the others are consented when first used.
    sign_in_api={{ cookiecutter.sign_in_api | tojson }},
    # How the app proves its identity (credential 1): the kind and where it comes from, never a
    # secret. The environment variables of the same names override these; CLIENT_2_CREDENTIAL
    # (and so on) adds more credentials, tried in order (README.md, "Credentials").
    credential={
        "CLIENT_CREDENTIAL": {{ cookiecutter.credential_kind | tojson }},
{% if cookiecutter.credential_kind == "assertion" %}
{% if cookiecutter.assertion_source == "managed_identity" and "CLIENT_ASSERTION_MANAGED_IDENTITY" not in cookiecutter.credential_defaults %}
        # A managed identity: set CLIENT_ASSERTION_MANAGED_IDENTITY to the client id of the
        # user-assigned identity the app registration trusts (README.md, "Credentials").
        "CLIENT_ASSERTION_MANAGED_IDENTITY": "",
{% elif cookiecutter.assertion_source == "callable" %}
        "CLIENT_ASSERTION_CALLABLE": {{ cookiecutter.assertion_callable | tojson }},
{% endif %}
{% endif %}
{% for name, value in cookiecutter.credential_defaults | dictsort %}
        {{ name | tojson }}: {{ value | tojson }},
{% endfor %}
    },
{% set roles = cookiecutter.authorization.get("roles") or [] %}
{% set groups = cookiecutter.authorization.get("groups") or {} %}
    # App roles are code; each group's object id can be overridden with GROUP_<NAME>_ID.
    authorization={
{% if roles %}
        "roles": [
{% for role in roles %}
            {{ role | tojson }},
{% endfor %}
        ],
{% else %}
        "roles": [],
{% endif %}
{% if groups %}
        "groups": {
{% for name, group_id in groups.items() %}
            {{ name | tojson }}: {{ group_id | lower | tojson }},
{% endfor %}
        },
{% else %}
        "groups": {},
{% endif %}
        "groups_overage": {{ (cookiecutter.authorization.get("groups_overage") or "user") | tojson }},
    },
)
