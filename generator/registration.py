"""`msal-webapp register`: the Azure CLI script that creates a project's app registration.

The script is derived from the project's registration.json (see
template/msal_webapp_rules/registration.py), the same file the project's local sign-in
provider registers its client from. Argument names follow the Azure CLI's own parameter table
(azure-cli, command_modules/role/_params.py): `az ad app create --display-name
--sign-in-audience --web-redirect-uris --app-roles --optional-claims`, `az ad app credential
reset --id [--cert @file --append]`, `az ad app federated-credential create --id --parameters`,
`az ad app permission add --id --api --api-permissions <id>=Scope|Role`, `az ad sp show --id`,
`az ad sp create --id`, `az ad app permission admin-consent --id`. The front-channel logout URL
and groupMembershipClaims have no `az ad app` argument: they are set with `az rest` PATCHing
the Microsoft Graph application object (the documented way to change any of its properties).

UNCONFIRMED (not run against a real tenant here): that `az ad sp show --id api://<...>` finds
an API's service principal by its application ID URI (the parameter help says "service
principal name", and an app's identifier URIs are among its servicePrincipalNames); that Entra
accepts an http://localhost front-channel logout URL (the portal may ask for https: set your
production URL in registration.json first); that `az ad app create --app-roles` takes the
Graph appRole shape with our own ids.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

from msal_webapp_rules import registration as rules
from msal_webapp_rules.registration import FILE_NAME

GRAPH_APPLICATIONS = "https://graph.microsoft.com/v1.0/applications"


__all__ = ["RegistrationError", "apply", "load", "rules", "script"]


class RegistrationError(Exception):
    """The project has no usable registration.json, or `az` cannot run."""


def load(project: Path) -> dict[str, Any]:
    path = project / FILE_NAME
    if not path.is_file():
        raise RegistrationError(
            f"{path}: no {FILE_NAME}; give the directory of a generated project (projects for a "
            "generic OpenID Connect provider have none: register the client at that provider)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RegistrationError(f"{path}: cannot read it as JSON ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("web"), dict):
        raise RegistrationError(f"{path}: not a registration description (no 'web' object); "
                                "regenerate it with msal-webapp new")
    return data


def app_role_id(display_name: str, value: str) -> str:
    """A stable id per app role (Graph needs one): the same on every run of the script."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"msal-webapp:{display_name}:role:{value}"))


def _q(value: str) -> str:
    return shlex.quote(value)


def _json(value: Any) -> str:
    return _q(json.dumps(value, separators=(",", ":")))


def script(reg: dict[str, Any], *, admin_consent: bool = False) -> str:
    """A bash script (set -euo pipefail) creating the registration `reg` describes."""
    name = str(reg["display_name"])
    web = reg["web"]
    roles = [{"allowedMemberTypes": r.get("allowed_member_types", ["User"]),
              "description": r.get("display_name", r["value"]),
              "displayName": r.get("display_name", r["value"]), "isEnabled": True,
              "id": app_role_id(name, r["value"]), "value": r["value"]}
             for r in reg.get("app_roles", [])]
    claims = {"idToken": [{"name": c} for c in reg.get("optional_claims", {}).get("id_token", [])]}
    lines = [
        "#!/usr/bin/env bash",
        f"# App registration for {name}, from {FILE_NAME}.",
        "# Sign in first: az login --tenant <tenant>",
        "set -euo pipefail",
        "",
        "APP_ID=$(az ad app create --display-name " + _q(name)
        + " --sign-in-audience " + _q(str(reg["sign_in_audience"]))
        + " --web-redirect-uris " + " ".join(_q(u) for u in web["redirect_uris"])
        + " --app-roles " + _json(roles) + " --optional-claims " + _json(claims)
        + " --query appId --output tsv)",
        "OBJECT_ID=$(az ad app show --id \"$APP_ID\" --query id --output tsv)",
        "# No az ad app argument for these two: PATCH the Graph application object.",
        "az rest --method PATCH --uri \"" + GRAPH_APPLICATIONS + "/$OBJECT_ID\" --headers "
        "'Content-Type=application/json' --body " + _json({
            "web": {"logoutUrl": web.get("front_channel_logout_url")},
            "groupMembershipClaims": reg.get("group_membership_claims", "None")}),
        "az ad sp create --id \"$APP_ID\" --output none  # the enterprise app users sign in to",
        "",
        "# Credential",
    ]
    lines += _credential_lines(reg.get("credential", {}))
    lines += ["", "# API permissions"]
    for api in reg.get("api_permissions", []):
        lines += _permission_lines(api)
    consent = "az ad app permission admin-consent --id \"$APP_ID\""
    needs = [f"{a['api']}: {p['value']}" for a in reg.get("api_permissions", [])
             for p in a["permissions"] if p.get("admin_consent") != "not required"]
    lines += ["", "# Admin consent (a tenant administrator), needed or possibly needed for: "
              + (", ".join(needs) or "none")]
    lines.append(consent if admin_consent else "# " + consent)
    lines.append("echo \"CLIENT_ID=$APP_ID\"")
    return "\n".join(lines) + "\n"


def _credential_lines(cred: dict[str, Any]) -> list[str]:
    kind = cred.get("kind")
    if kind == "secret":
        return ["# Prints the new secret once: put it in CLIENT_SECRET (or its secret file), "
                "never in git.",
                "az ad app credential reset --id \"$APP_ID\" --append --display-name "
                "msal-webapp --query password --output tsv"]
    if kind == "certificate":
        return ["# Uploads the public certificate only (never the private key).",
                "az ad app credential reset --id \"$APP_ID\" --append --cert "
                + _q("@" + str(cred.get("certificate_file", "client.pem")))]
    params = {"name": cred.get("name", "federated"), "issuer": cred.get("issuer"),
              "subject": cred.get("subject"), "audiences": cred.get("audiences")}
    return ["# Replace the <...> placeholders with your platform's issuer and subject first.",
            "az ad app federated-credential create --id \"$APP_ID\" --parameters "
            + _json(params)]


def _permission_lines(api: dict[str, Any]) -> list[str]:
    """`az ad app permission add` for one API; the permission ids are looked up on the API's
    service principal (by appId or application ID URI) at run time."""
    resource = str(api["resource"])
    kind, collection = (("Role", "appRoles") if api["type"] == "application"
                        else ("Scope", "oauth2PermissionScopes"))
    var = "API_" + "".join(c if c.isalnum() else "_" for c in str(api["api"])).upper()
    lines = [f"# {api['api']} ({api['type']})",
             f"{var}=$(az ad sp show --id {_q(resource)} --query appId --output tsv)"]
    for perm in api["permissions"]:
        value = str(perm["value"])
        if value.startswith("<"):
            lines.append(f"# {api['api']}: grant the app role the API defines: "
                         f"az ad app permission add --id \"$APP_ID\" --api \"${var}\" "
                         f"--api-permissions <role id>={kind}")
            continue
        query = f"{collection}[?value=='{value}'].id | [0]"
        lines.append(f"az ad app permission add --id \"$APP_ID\" --api \"${var}\" "
                     f"--api-permissions \"$(az ad sp show --id {_q(resource)} --query "
                     f"{_q(query)} --output tsv)={kind}\"")
    return lines


def apply(text: str) -> int:
    """Run the script with bash; RegistrationError when `az` is not on PATH."""
    if shutil.which("az") is None:
        raise RegistrationError("az (the Azure CLI) is not on PATH: install it "
                                "(https://learn.microsoft.com/cli/azure/install-azure-cli), run "
                                "az login, then run this again; or run the printed script "
                                "yourself")
    bash = shutil.which("bash")
    if bash is None:
        raise RegistrationError("bash is not on PATH: run the printed script in a bash shell")
    return subprocess.run([bash, "-c", text], check=False).returncode
