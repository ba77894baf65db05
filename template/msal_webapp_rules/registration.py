"""The app registration a spec needs, as one JSON description (the project's registration.json).

`msal-webapp register` turns it into an Azure CLI script; the generated project's local sign-in
provider registers its client from the same file, so what the tests prove is what gets
registered. Generic OpenID Connect providers get no file (their registration is the provider's
own business): `describe` returns None for them.
"""

from __future__ import annotations

from typing import Any

from msal_webapp_rules.schema import DEFAULT_REDIRECT_PATH, GRAPH, GRAPH_APP_ID

FILE_NAME = "registration.json"
FRONT_CHANNEL_LOGOUT_PATH = "/logout/frontchannel"  # core/settings.py's default
# Local development: Entra ignores the port of an http://localhost redirect URI when it matches
# one ("Redirect URI (reply URL) restrictions": localhost exceptions), so one entry serves the
# app on any port. Production URLs are added to the file's lists (https only).
LOCAL_BASE = "http://localhost"

# Delegated Microsoft Graph permissions that only an administrator can consent to (Graph
# permissions reference, "Admin consent required: Yes"). A small list of the ones web apps ask
# for; a scope not listed here is "not required" only when USER_CONSENT_GRAPH_SCOPES lists it.
ADMIN_CONSENT_GRAPH_SCOPES: frozenset[str] = frozenset({
    "Directory.Read.All", "Directory.ReadWrite.All", "Directory.AccessAsUser.All",
    "Group.Read.All", "Group.ReadWrite.All", "GroupMember.Read.All", "GroupMember.ReadWrite.All",
    "User.Read.All", "User.ReadWrite.All", "AuditLog.Read.All", "Application.Read.All",
})
# UNCONFIRMED beyond these two lists: a tenant's consent policy can require admin consent for
# any permission; Graph scopes in neither list are reported as "UNCONFIRMED: check ...".
USER_CONSENT_GRAPH_SCOPES: frozenset[str] = frozenset({
    "openid", "profile", "email", "offline_access", "User.Read", "User.ReadBasic.All",
    "Calendars.Read", "Calendars.ReadWrite", "Mail.Read", "Mail.Send", "Files.Read",
    "Files.ReadWrite", "Contacts.Read", "Tasks.Read", "People.Read",
})
# Who may sign in, by the Entra authority's tenant segment.
AUDIENCES: dict[str, str] = {
    "organizations": "AzureADMultipleOrgs",
    "common": "AzureADandPersonalMicrosoftAccount",
    "consumers": "PersonalMicrosoftAccount",
}


def sign_in_audience(kind: str, tenant: str) -> str:
    """The registration's signInAudience for an authority (one tenant: AzureADMyOrg)."""
    if kind == "entra":
        return AUDIENCES.get(tenant, "AzureADMyOrg")
    if kind == "b2c":
        # B2C apps are registered for "accounts in any identity provider or organizational
        # directory (for authenticating users with user flows)". UNCONFIRMED: that this portal
        # choice is signInAudience AzureADandPersonalMicrosoftAccount.
        return "AzureADandPersonalMicrosoftAccount"
    # External ID: the app is registered in the external tenant, for its accounts only.
    return "AzureADMyOrg"


def _graph_consent(scope: str) -> str:
    if scope in ADMIN_CONSENT_GRAPH_SCOPES:
        return "required"
    if scope in USER_CONSENT_GRAPH_SCOPES:
        return "not required"
    return "UNCONFIRMED: check the Microsoft Graph permissions reference"


def _resource_of(scope: str) -> str:
    """api://<id>/Todo.Read -> api://<id> (a scope is <application ID URI>/<name>)."""
    return scope.rsplit("/", 1)[0] if "/" in scope else ""


def api_permissions(apis: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per downstream API: its resource, delegated scopes or application permission,
    and whether an administrator must consent."""
    out: list[dict[str, Any]] = []
    for name, api in apis.items():
        scopes = [str(s) for s in api.get("scopes", [])]
        if name == GRAPH:
            out.append({"api": name, "resource": GRAPH_APP_ID, "type": "delegated",
                        "permissions": [{"value": s, "admin_consent": _graph_consent(s)}
                                        for s in scopes]})
            continue
        resource = next((_resource_of(s) for s in scopes if _resource_of(s)), "")
        if api.get("app_only"):
            # The token asks for <resource>/.default: the app holds the application permissions
            # (app roles) granted to it; which one the API checks is the API's own choice.
            out.append({"api": name, "resource": resource, "type": "application",
                        "permissions": [{"value": "<app role the API defines>",
                                         "admin_consent": "required"}]})
        else:
            out.append({"api": name, "resource": resource, "type": "delegated",
                        "permissions": [{"value": s.rsplit("/", 1)[-1],
                                         "admin_consent": "depends on the API's registration"}
                                        for s in scopes]})
    return out


def credential(spec_credential: dict[str, Any]) -> dict[str, Any]:
    """The credential to create on the registration."""
    kind = spec_credential.get("kind")
    if kind == "secret":
        return {"kind": "secret"}
    if kind == "certificate":
        return {"kind": "certificate",
                "certificate_file": spec_credential.get("certificate_file", "<client.pem>")}
    source = spec_credential.get("source")
    if source == "managed_identity":
        # A user-assigned managed identity: issuer is the tenant's, subject its object id.
        return {"kind": "federated", "name": "managed-identity",
                "issuer": "https://login.microsoftonline.com/<tenant id>/v2.0",
                "subject": "<object (principal) id of the managed identity>",
                "audiences": ["api://AzureADTokenExchange"]}
    if source == "token_file":
        return {"kind": "federated", "name": "kubernetes",
                "issuer": "<the cluster's OIDC issuer URL>",
                "subject": "system:serviceaccount:<namespace>:<service account>",
                "audiences": ["api://AzureADTokenExchange"]}
    return {"kind": "federated", "name": "<name>", "issuer": "<issuer of your assertions>",
            "subject": "<subject of your assertions>",
            "audiences": ["api://AzureADTokenExchange"]}


def describe(spec: dict[str, Any]) -> dict[str, Any] | None:
    """The registration description of a valid spec; None for a generic OIDC provider."""
    auth = spec["authority"]
    kind = auth["kind"]
    if kind == "oidc":
        return None
    redirect_path = spec.get("redirect_path") or DEFAULT_REDIRECT_PATH
    authz = spec.get("authorization") or {}
    claims = ["login_hint"]
    uses_groups = bool(authz.get("groups"))
    if uses_groups:
        claims.append("groups")
    return {
        "display_name": spec["project_name"],
        "sign_in_audience": sign_in_audience(kind, str(auth.get("tenant", "organizations"))),
        "web": {
            # The sign-out target (the home page) is checked against the redirect URIs too.
            "redirect_uris": [LOCAL_BASE + redirect_path, LOCAL_BASE + "/"],
            "front_channel_logout_url": LOCAL_BASE + FRONT_CHANNEL_LOGOUT_PATH,
        },
        "optional_claims": {"id_token": claims},
        "group_membership_claims": "SecurityGroup" if uses_groups else "None",
        "app_roles": [{"value": r, "display_name": r, "allowed_member_types": ["User"]}
                      for r in authz.get("roles", [])],
        "api_permissions": api_permissions(spec.get("downstream_apis") or {}),
        "credential": credential(spec.get("credential") or {}),
    }
