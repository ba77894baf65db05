"""The Microsoft authorities besides a workforce Entra tenant: Azure AD B2C (`kind: b2c`) and
Microsoft Entra External ID (`kind: external_id`, ciamlogin.com): their fields' checks and the
authority URLs they make (config.py and .env.example render them through the Jinja extension).

B2C: `https://{domain}/{tenant}/{user flow}`, the domain `{name}.b2clogin.com` unless a custom
domain is given; MSAL tells a B2C authority by its b2clogin host or, on any other host (a custom
domain), by a last path segment starting with `b2c_` (msal/authority.py), which every user flow
(`B2C_1_...`) and custom policy (`B2C_1A_...`) name has. Each user flow is an authority of its
own; the password-reset and profile-edit flows replace the last segment.

External ID: `https://{name}.ciamlogin.com` (MSAL derives the tenant `{name}.onmicrosoft.com`
from the host) or `https://{name}.ciamlogin.com/{tenant id}`; behind a custom URL domain MSAL
takes it as a generic OpenID Connect authority, `oidc_authority=https://{domain}/{tenant id}/v2.0`
(Microsoft's Python samples), whose discovery names the ciamlogin.com issuer, which MSAL accepts.
"""

from __future__ import annotations

import re
from typing import Any

from msal_webapp_rules.report import choices, show, unknown_key
from msal_webapp_rules.schema import DOMAIN_RE, TENANT_KEYWORDS, is_guid

B2C = "b2c"
EXTERNAL_ID = "external_id"
B2C_HOST_SUFFIX = ".b2clogin.com"
CIAM_HOST_SUFFIX = ".ciamlogin.com"
# The authority fields of each kind besides `kind` and `tenant` (the context's
# `authority_options`).
B2C_OPTIONS: tuple[str, ...] = ("domain", "sign_up_sign_in", "password_reset", "profile_edit")
EXTERNAL_ID_OPTIONS: tuple[str, ...] = ("domain", "tenant_id")
OPTIONS: dict[str, tuple[str, ...]] = {B2C: B2C_OPTIONS, EXTERNAL_ID: EXTERNAL_ID_OPTIONS}
# A user flow (B2C_1_...) or custom policy (B2C_1A_...) name as the portal shows it.
USER_FLOW_RE = re.compile(r"^B2C_1A?_[A-Za-z0-9_.-]{1,100}$", re.IGNORECASE)
USER_FLOW_EXAMPLES = {"sign_up_sign_in": "B2C_1_signupsignin",
                      "password_reset": "B2C_1_passwordreset",
                      "profile_edit": "B2C_1_profileedit"}
# A tenant's name: the first label of {name}.onmicrosoft.com, {name}.b2clogin.com, ...
TENANT_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$", re.IGNORECASE)
ONMICROSOFT = ".onmicrosoft.com"
TENANT_ID_EXAMPLE = "aaaabbbb-0000-cccc-1111-dddd2222eeee"


def tenant_name(tenant: str) -> str | None:
    """`contoso` for `contoso` or `contoso.onmicrosoft.com`; None for a tenant id or another
    domain (whose sign-in host cannot be derived)."""
    if is_guid(tenant):
        return None
    if tenant.lower().endswith(ONMICROSOFT):
        tenant = tenant[: -len(ONMICROSOFT)]
    return tenant.lower() if TENANT_NAME_RE.match(tenant) else None


def _domain_problem(domain: str, kind: str) -> str | None:
    if "://" in domain or "/" in domain or not DOMAIN_RE.match(domain):
        return "is not a host name; give the custom domain alone, e.g. login.contoso.com"
    host = domain.lower()
    if kind == B2C and host.endswith(CIAM_HOST_SUFFIX):
        return "is an External ID (ciamlogin.com) host; use authority.kind external_id"
    if kind == EXTERNAL_ID and host.endswith(B2C_HOST_SUFFIX):
        return "is an Azure AD B2C (b2clogin.com) host; use authority.kind b2c"
    if kind == EXTERNAL_ID and host.endswith(CIAM_HOST_SUFFIX):
        return ("is the ciamlogin.com host, not a custom URL domain; remove authority.domain "
                "(the tenant's ciamlogin.com host is made from authority.tenant)")
    return None


def check(kind: str, auth: dict[str, Any], errors: list[str]) -> None:
    """The fields of a `b2c` or `external_id` authority (its keys were checked already)."""
    tenant = auth.get("tenant")
    if tenant is None:
        example = "contoso.onmicrosoft.com" if kind == B2C else "contoso"
        errors.append(f"authority.tenant: missing (required when kind is {kind!r}); e.g. "
                      f"tenant: {example}")
    elif not isinstance(tenant, str):
        errors.append(f"authority.tenant: expected a string, got {show(tenant)}")
        tenant = None
    domain = auth.get("domain")
    if domain is not None:
        if not isinstance(domain, str):
            errors.append(f"authority.domain: expected a host name, got {show(domain)}")
            domain = None
        elif _domain_problem(domain, kind):
            errors.append(f"authority.domain: {show(domain)} {_domain_problem(domain, kind)}")
            domain = None
    if tenant in TENANT_KEYWORDS:
        errors.append(f"authority.tenant: {show(tenant)} is an Entra ID multi-tenant keyword; "
                      f"a {kind} app signs users in to one tenant: give its name, e.g. "
                      f"{'contoso.onmicrosoft.com' if kind == B2C else 'contoso'}")
        tenant = None
    if kind == B2C:
        _check_b2c(auth, tenant, domain, errors)
    else:
        _check_external_id(auth, tenant, domain, errors)


def _check_b2c(auth: dict[str, Any], tenant: str | None, domain: str | None,
               errors: list[str]) -> None:
    if tenant is not None:
        if not (tenant_name(tenant) or is_guid(tenant)):
            errors.append(f"authority.tenant: {show(tenant)} is not a B2C tenant; allowed: its "
                          "name ('contoso' or 'contoso.onmicrosoft.com') or its tenant id (GUID)")
        elif is_guid(tenant) and "domain" not in auth:
            errors.append(f"authority.tenant: {show(tenant)} is a tenant id, from which the "
                          "sign-in host cannot be made; give the tenant's name "
                          "('contoso.onmicrosoft.com', for contoso.b2clogin.com), or add "
                          "authority.domain (your custom domain)")
    if "sign_up_sign_in" not in auth:
        errors.append("authority.sign_up_sign_in: missing (required when kind is 'b2c'): the "
                      "sign-up and sign-in user flow, e.g. sign_up_sign_in: B2C_1_signupsignin")
    seen: dict[str, str] = {}
    for field, example in USER_FLOW_EXAMPLES.items():
        if field not in auth:
            continue
        flow = auth[field]
        if not isinstance(flow, str) or not USER_FLOW_RE.match(flow):
            errors.append(f"authority.{field}: {show(flow)} is not a user flow name; a user flow "
                          "is named B2C_1_<name> (a custom policy B2C_1A_<name>), letters, "
                          f"digits and _ . -, as the portal lists it, e.g. {example}")
        elif flow.lower() in seen:
            errors.append(f"authority.{field}: {show(flow)} is already "
                          f"authority.{seen[flow.lower()]}; each flow does one thing: give this "
                          "one its own user flow, or remove it")
        else:
            seen[flow.lower()] = field


def _check_external_id(auth: dict[str, Any], tenant: str | None, domain: str | None,
                       errors: list[str]) -> None:
    if tenant is not None and not tenant_name(tenant):
        errors.append(f"authority.tenant: {show(tenant)} is not an External ID tenant name; give "
                      "the name of its ciamlogin.com host ('contoso' for contoso.ciamlogin.com, "
                      "or 'contoso.onmicrosoft.com'); put a tenant id in authority.tenant_id")
    tenant_id = auth.get("tenant_id")
    if tenant_id is not None and not (isinstance(tenant_id, str) and is_guid(tenant_id)):
        errors.append(f"authority.tenant_id: {show(tenant_id)} is not a tenant id; give the "
                      f"External ID tenant's id (a GUID), e.g. {TENANT_ID_EXAMPLE}")
    elif "domain" in auth and tenant_id is None:
        errors.append("authority.tenant_id: missing; a custom URL domain's authority is "
                      "https://<domain>/<tenant id>: add the tenant's id (a GUID), e.g. "
                      f"tenant_id: {TENANT_ID_EXAMPLE}")


def allowed_keys(kind: str) -> tuple[str, ...]:
    return ("kind", "tenant", *OPTIONS[kind])


def options_problems(kind: str, options: Any) -> list[str]:
    """Keys of the context's `authority_options` that the kind does not have."""
    if not isinstance(options, dict):
        return [f"authority_options: expected a mapping of the authority's other fields, got "
                f"{show(options)}"]
    allowed = OPTIONS.get(kind, ())
    problems = []
    for key in options:
        if key not in allowed:
            problems.append(unknown_key("authority_options", key, allowed) if allowed else
                            f"authority_options.{key}: only used when authority_kind is "
                            f"{choices(list(OPTIONS))}; leave authority_options empty")
    return problems


def urls(kind: str, tenant: str, options: dict[str, Any]) -> dict[str, str]:
    """The app's defaults for a valid b2c or external_id authority: `authority` (MSAL's
    `authority`) or `oidc_authority` (a custom External ID domain), and the B2C user flows
    (`password_reset`, `profile_edit`, "" when not configured)."""
    domain = str(options.get("domain") or "")
    out = {"authority": "", "oidc_authority": "", "password_reset": "", "profile_edit": ""}
    if kind == B2C:
        name = tenant_name(tenant)
        host = domain or f"{name}{B2C_HOST_SUFFIX}"
        path = f"{name}{ONMICROSOFT}" if name else tenant.lower()
        out["authority"] = f"https://{host}/{path}/{options['sign_up_sign_in']}"
        out["password_reset"] = str(options.get("password_reset") or "")
        out["profile_edit"] = str(options.get("profile_edit") or "")
    else:
        tenant_id = str(options.get("tenant_id") or "").lower()
        if domain:
            out["oidc_authority"] = f"https://{domain}/{tenant_id}/v2.0"
        else:
            # Path-less: MSAL derives the tenant ({name}.onmicrosoft.com) from the host.
            host = f"https://{tenant_name(tenant)}{CIAM_HOST_SUFFIX}"
            out["authority"] = f"{host}/{tenant_id}" if tenant_id else host
    return out


def context_urls(context: Any) -> dict[str, str]:
    """`urls` for a cookiecutter context (the Jinja extension's `authority_urls` filter);
    empty strings for the entra and oidc kinds, which config.py renders itself."""
    kind = context["authority_kind"]
    if kind not in OPTIONS:
        return {"authority": "", "oidc_authority": "", "password_reset": "", "profile_edit": ""}
    return urls(kind, str(context["entra_tenant"]), dict(context["authority_options"]))
