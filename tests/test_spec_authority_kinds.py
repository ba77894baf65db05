"""Azure AD B2C (`authority.kind: b2c`) and Microsoft Entra External ID (`external_id`): each
field's rules, the authorities a project is rendered with (config.py, .env.example), the rules
that follow the kind (no Microsoft Graph with B2C, no groups, no managed identity), and the
same rules through cookiecutter's context (`authority_options`)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from baking import baked_default
from conftest import BASE_SPEC, TEMPLATE

from generator import render
from generator import spec as gspec

R = gspec.rules()
TENANT_ID = "aaaabbbb-0000-cccc-1111-dddd2222eeee"
TASKS = "https://contoso.onmicrosoft.com/tasks-api/tasks.read"
B2C = {"kind": "b2c", "tenant": "contoso.onmicrosoft.com", "sign_up_sign_in": "B2C_1_susi",
       "password_reset": "B2C_1_reset", "profile_edit": "B2C_1_edit"}


def spec_with(authority: dict[str, Any], **changes: Any) -> dict[str, Any]:
    spec = copy.deepcopy(BASE_SPEC)
    spec["authority"] = authority
    if authority["kind"] == "b2c":
        spec["downstream_apis"] = {"tasks": {"base_url": "https://api.contoso.com/",
                                             "scopes": [TASKS]}}
        spec["sign_in_api"] = "tasks"
    spec.update(changes)
    return spec


def problems(spec: dict[str, Any]) -> list[str]:
    return R.validate_spec(spec)


def rendered(tmp_path: Path, spec: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """(config.py's authority defaults, .env.example) of the project `spec` renders."""
    assert problems(spec) == []
    context = gspec.spec_to_context(spec)
    project = render.render(context, tmp_path, gspec.template_dir())
    config = project / context["package_name"] / "config.py"
    names = ("authority", "oidc_authority", "b2c_password_reset_flow", "b2c_profile_edit_flow")
    defaults = {}
    for name in names:
        try:
            defaults[name] = baked_default(config, name)
        except AssertionError:
            pass  # not baked for this kind
    return defaults, (project / ".env.example").read_text(encoding="utf-8")


# ------------------------------------------------------------------------------ rendering
@pytest.mark.parametrize(("authority", "expected", "env_lines"), [
    (B2C, {"authority": "https://contoso.b2clogin.com/contoso.onmicrosoft.com/B2C_1_susi",
           "oidc_authority": "", "b2c_password_reset_flow": "B2C_1_reset",
           "b2c_profile_edit_flow": "B2C_1_edit"},
     ["AUTHORITY='https://contoso.b2clogin.com/contoso.onmicrosoft.com/B2C_1_susi'",
      "B2C_PASSWORD_RESET_FLOW='B2C_1_reset'", "B2C_PROFILE_EDIT_FLOW='B2C_1_edit'"]),
    ({"kind": "b2c", "tenant": TENANT_ID, "domain": "login.contoso.com",
      "sign_up_sign_in": "B2C_1A_signup_signin"},
     {"authority": f"https://login.contoso.com/{TENANT_ID}/B2C_1A_signup_signin",
      "oidc_authority": "", "b2c_password_reset_flow": "", "b2c_profile_edit_flow": ""},
     [f"AUTHORITY='https://login.contoso.com/{TENANT_ID}/B2C_1A_signup_signin'",
      "B2C_PASSWORD_RESET_FLOW=''"]),
    ({"kind": "external_id", "tenant": "contoso"},
     {"authority": "https://contoso.ciamlogin.com", "oidc_authority": ""},
     ["AUTHORITY='https://contoso.ciamlogin.com'"]),
    ({"kind": "external_id", "tenant": "contoso.onmicrosoft.com", "tenant_id": TENANT_ID},
     {"authority": f"https://contoso.ciamlogin.com/{TENANT_ID}", "oidc_authority": ""},
     [f"AUTHORITY='https://contoso.ciamlogin.com/{TENANT_ID}'"]),
    ({"kind": "external_id", "tenant": "contoso", "tenant_id": TENANT_ID,
      "domain": "login.contoso.com"},
     {"authority": "", "oidc_authority": f"https://login.contoso.com/{TENANT_ID}/v2.0"},
     [f"OIDC_AUTHORITY='https://login.contoso.com/{TENANT_ID}/v2.0'"]),
], ids=["b2c", "b2c-custom-domain", "external-id-path-less", "external-id-tenant-id",
        "external-id-custom-domain"])
def test_each_kind_renders_its_authority(tmp_path: Path, authority: dict[str, Any],
                                         expected: dict[str, str], env_lines: list[str]) -> None:
    defaults, env = rendered(tmp_path, spec_with(authority))
    assert defaults == expected
    lines = env.splitlines()
    for line in env_lines:
        assert line in lines, env[:1500]


# ------------------------------------------------------------------------------ refusals
@pytest.mark.parametrize(("authority", "expected"), [
    ({"kind": "b2c", "sign_up_sign_in": "B2C_1_susi"},
     "authority.tenant: missing (required when kind is 'b2c')"),
    ({"kind": "b2c", "tenant": "contoso"}, "authority.sign_up_sign_in: missing"),
    ({**B2C, "sign_up_sign_in": "signupsignin"},
     "authority.sign_up_sign_in: 'signupsignin' is not a user flow name"),
    ({**B2C, "password_reset": "B2C_1_SUSI"},
     "authority.password_reset: 'B2C_1_SUSI' is already authority.sign_up_sign_in"),
    ({**B2C, "tenant": "organizations"},
     "authority.tenant: 'organizations' is an Entra ID multi-tenant keyword"),
    ({**B2C, "tenant": TENANT_ID}, f"authority.tenant: '{TENANT_ID}' is a tenant id"),
    ({**B2C, "tenant": "not a tenant"}, "authority.tenant: 'not a tenant' is not a B2C tenant"),
    ({**B2C, "domain": "https://login.contoso.com/"},
     "authority.domain: 'https://login.contoso.com/' is not a host name"),
    ({**B2C, "domain": "contoso.ciamlogin.com"},
     "authority.domain: 'contoso.ciamlogin.com' is an External ID (ciamlogin.com) host"),
    ({**B2C, "instance": "https://login.microsoftonline.com"},
     "authority.instance: only used when authority.kind is 'entra', not 'b2c'"),
    ({**B2C, "tenant_id": TENANT_ID},
     "authority.tenant_id: only used when authority.kind is 'external_id', not 'b2c'"),
    ({"kind": "external_id"}, "authority.tenant: missing (required when kind is 'external_id')"),
    ({"kind": "external_id", "tenant": TENANT_ID},
     f"authority.tenant: '{TENANT_ID}' is not an External ID tenant name"),
    ({"kind": "external_id", "tenant": "contoso", "tenant_id": "contoso"},
     "authority.tenant_id: 'contoso' is not a tenant id"),
    ({"kind": "external_id", "tenant": "contoso", "domain": "login.contoso.com"},
     "authority.tenant_id: missing; a custom URL domain's authority"),
    ({"kind": "external_id", "tenant": "contoso", "domain": "contoso.b2clogin.com",
      "tenant_id": TENANT_ID}, "is an Azure AD B2C (b2clogin.com) host; use authority.kind b2c"),
    ({"kind": "external_id", "tenant": "contoso", "sign_up_sign_in": "B2C_1_susi"},
     "authority.sign_up_sign_in: only used when authority.kind is 'b2c', not 'external_id'"),
], ids=lambda value: value if isinstance(value, str) and len(value) < 40 else None)
def test_authority_fields_are_checked(authority: dict[str, Any], expected: str) -> None:
    found = problems(spec_with(authority))
    assert any(message.startswith(expected) or expected in message for message in found), found


def test_b2c_refuses_microsoft_graph_and_what_needs_it() -> None:
    spec = spec_with(B2C)
    spec["downstream_apis"]["graph"] = {"scopes": ["User.Read"]}
    spec["downstream_apis"]["directory"] = {
        "base_url": "https://graph.microsoft.com/v1.0/",
        "scopes": ["https://graph.microsoft.com/User.Read"]}
    spec["authorization"] = {"groups": {"finance": "3f0c2b1a-7d4e-4c2b-9a1e-2b3c4d5e6f70"}}
    spec["credential"] = {"kind": "assertion", "source": "managed_identity"}
    found = problems(spec)
    assert any(m.startswith("downstream_apis.graph: Microsoft Graph cannot be called with "
                            "authority.kind 'b2c'") for m in found), found
    assert any(m.startswith("downstream_apis.directory.scopes: Microsoft Graph scopes cannot be "
                            "had with authority.kind 'b2c'") for m in found), found
    assert any(m.startswith("authorization.groups: needs authority.kind 'entra' (not 'b2c')")
               for m in found), found
    assert any(m.startswith("credential.source: 'managed_identity' needs authority.kind "
                            "'entra' or 'external_id'") for m in found), found


def test_external_id_keeps_graph_and_a_guid_client_id() -> None:
    authority = {"kind": "external_id", "tenant": "contoso"}
    assert problems(spec_with(authority)) == []  # Graph, groups: External ID is Entra
    found = problems(spec_with(authority, client_id="my-app"))
    assert any(m.startswith("client_id: 'my-app' is not an Entra application (client) id")
               for m in found), found


def test_edit_profile_is_an_app_route() -> None:
    found = problems(spec_with(B2C, redirect_path="/edit-profile"))
    assert any(m.startswith("redirect_path: '/edit-profile' clashes with the app's own routes")
               for m in found), found


# ------------------------------------------------------------------------------ cookiecutter
def context_for(authority: dict[str, Any]) -> dict[str, Any]:
    return gspec.spec_to_context(spec_with(authority))


def test_context_round_trip() -> None:
    for authority in (B2C, {"kind": "external_id", "tenant": "contoso", "tenant_id": TENANT_ID,
                            "domain": "login.contoso.com"}):
        context = context_for(authority)
        assert context["authority_kind"] == authority["kind"]
        assert context["entra_tenant"] == authority["tenant"]
        assert context["authority_options"] == {k: v for k, v in authority.items()
                                                if k not in ("kind", "tenant")}
        assert R.context_to_spec(context)["authority"] == authority
        assert R.context_problems(context) == []


def test_context_problems_use_the_context_names() -> None:
    context = context_for(B2C)
    context["authority_options"] = {**B2C, "sign_up_sign_in": "susi", "tenant_id": TENANT_ID}
    del context["authority_options"]["kind"], context["authority_options"]["tenant"]
    found = R.context_problems(context)
    assert any(m.startswith("authority_options.tenant_id: unknown key") for m in found), found
    context["authority_options"].pop("tenant_id")
    found = R.context_problems(context)
    assert any(m.startswith("authority_options.sign_up_sign_in: 'susi' is not a user flow")
               for m in found), found
    entra = context_for({"kind": "entra", "tenant": "organizations"})
    entra["authority_options"] = {"domain": "login.contoso.com"}
    assert any(m.startswith("authority_options.domain: only used when authority_kind is")
               for m in R.context_problems(entra))


def test_cookiecutter_json_lists_the_kinds() -> None:
    import json

    context = json.loads((TEMPLATE / "cookiecutter.json").read_text(encoding="utf-8"))
    assert context["authority_kind"] == list(R.AUTHORITY_KINDS)
    assert context["authority_options"] == {}


def test_cookiecutter_bakes_a_b2c_project(cookies: Any,
                                          capfd: pytest.CaptureFixture[str]) -> None:
    """The answers of a cookiecutter user (the real template, its hooks): a B2C tenant and its
    user flows reach config.py; the Entra default tenant is refused for B2C, with the fix."""
    extra = {"authority_kind": "b2c", "entra_tenant": "contoso.onmicrosoft.com",
             "authority_options": {"sign_up_sign_in": "B2C_1_susi", "profile_edit": "B2C_1_edit"},
             "call_graph": False, "sign_in_api": ""}
    result = cookies.bake(template=str(TEMPLATE), extra_context=extra)
    assert result.exit_code == 0, result.exception
    config = result.project_path / "contoso_portal" / "config.py"
    assert baked_default(config, "authority") == (
        "https://contoso.b2clogin.com/contoso.onmicrosoft.com/B2C_1_susi")
    assert baked_default(config, "b2c_profile_edit_flow") == "B2C_1_edit"
    refused = cookies.bake(template=str(TEMPLATE), extra_context={
        **extra, "entra_tenant": "organizations"})
    assert type(refused.exception).__name__ == "FailedHookException"
    assert ("ERROR: entra_tenant: 'organizations' is an Entra ID multi-tenant keyword"
            in capfd.readouterr().out)
