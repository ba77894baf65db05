"""The project's app registration (``registration.json``) as the stand-in's client.

``msal-webapp register`` turns the same file into the Azure CLI script that registers the app
in Entra ID, so local development and the tests run against the registration that production
gets: its redirect URIs, front-channel logout URL, ID token optional claims,
groupMembershipClaims, app roles, sign-in audience and the delegated permissions an administrator
consents to (devprovider/__main__.py's ``start_dev_environment``). A project for a generic
OpenID Connect provider has no such file.

Local development entries are written ``http://localhost/<path>``, without a port: Entra
ignores the port of http loopback redirect URIs when matching ("Redirect URI (reply URL)
restrictions", localhost exceptions), so one entry serves the app on any port. Here such an
entry stands for the origin the app actually runs on (the stand-in must call the front-channel
logout URL at a real port, and the tests' apps run on https too); every other entry (your
production URLs) is registered as written.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

FILE_NAME = "registration.json"
LOCAL_HOST = "localhost"


def registration_file() -> Path:
    """The project's registration.json (next to pyproject.toml)."""
    return Path(__file__).resolve().parent.parent / FILE_NAME


@dataclasses.dataclass(frozen=True)
class ClientRegistration:
    """What the stand-in's register_client takes from the description."""

    display_name: str
    redirect_uris: list[str]
    front_channel_logout_url: str | None
    optional_claims: tuple[str, ...]
    group_membership_claims: str
    app_roles: tuple[str, ...]
    # signInAudience: who may sign in (the stand-in refuses the others as Entra does).
    sign_in_audience: str = "AzureADMultipleOrgs"
    # Delegated permissions an administrator consents to for the whole tenant (the file's
    # "admin_consent": "required"), as scopes: "User.Read.All", "api://<id>/Todo.Write".
    admin_consented_scopes: tuple[str, ...] = ()


def load(path: Path | None = None) -> dict[str, Any] | None:
    """The description, or None when the project has none (a generic OIDC provider)."""
    path = path or registration_file()
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read it as JSON ({exc}); fix it or regenerate "
                         "the project") from exc
    if not isinstance(data, dict) or not isinstance(data.get("web"), dict):
        raise ValueError(f"{path}: not an app registration description (no 'web' object)")
    return data


def at_app(url: str, app_url: str) -> str:
    """``http://localhost/<path>`` (no port) at the app's origin; any other URL unchanged."""
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname != LOCAL_HOST or parts.port is not None:
        return url
    app = urlsplit(app_url)
    return urlunsplit((app.scheme, app.netloc, parts.path, parts.query, ""))


# signInAudience values the file may hold (Microsoft Graph's application resource type).
SIGN_IN_AUDIENCES = ("AzureADMyOrg", "AzureADMultipleOrgs",
                     "AzureADandPersonalMicrosoftAccount", "PersonalMicrosoftAccount")
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"


def admin_consented_scopes(description: dict[str, Any]) -> tuple[str, ...]:
    """The delegated permissions marked ``"admin_consent": "required"``, as the scopes an app
    asks for: Graph's by name, another API's as ``<resource>/<name>``. Application
    permissions (app-only APIs) are granted apart, to the app itself."""
    scopes: list[str] = []
    for api in description.get("api_permissions", []):
        if api.get("type") != "delegated":
            continue
        resource = str(api.get("resource", ""))
        for permission in api.get("permissions", []):
            if permission.get("admin_consent") != "required":
                continue
            name = str(permission["value"])
            scopes.append(name if resource == GRAPH_APP_ID else f"{resource.rstrip('/')}/{name}")
    return tuple(scopes)


def client_registration(description: dict[str, Any], app_url: str) -> ClientRegistration:
    audience = str(description.get("sign_in_audience", "AzureADMultipleOrgs"))
    if audience not in SIGN_IN_AUDIENCES:
        raise ValueError(f"{FILE_NAME}: sign_in_audience {audience!r} is not one of "
                         f"{', '.join(SIGN_IN_AUDIENCES)}; fix it or regenerate the project")
    web = description["web"]
    logout = web.get("front_channel_logout_url")
    return ClientRegistration(
        display_name=str(description.get("display_name", "")),
        redirect_uris=[at_app(str(u), app_url) for u in web.get("redirect_uris", [])],
        front_channel_logout_url=at_app(str(logout), app_url) if logout else None,
        optional_claims=tuple(str(c) for c in
                              description.get("optional_claims", {}).get("id_token", [])),
        group_membership_claims=str(description.get("group_membership_claims", "None")),
        app_roles=tuple(str(r["value"]) for r in description.get("app_roles", [])),
        sign_in_audience=audience,
        admin_consented_scopes=admin_consented_scopes(description),
    )
