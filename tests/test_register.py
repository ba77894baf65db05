"""registration.json from the spec, and `msal-webapp register`'s Azure CLI script run against a
fake `az` on PATH that records its arguments, each checked against the description."""

from __future__ import annotations

import contextlib
import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from generator import cli
from generator import registration as greg

rreg = greg.rules  # the template's msal_webapp_rules.registration (importable via generator)

APP_ID, OBJECT_ID = "aaaaaaaa-0000-0000-0000-000000000001", "bbbbbbbb-0000-0000-0000-000000000002"

# The fake az: appends its argv as one JSON line to $AZ_LOG, answers the queries the script
# makes (the new app's appId, its object id, a service principal's appId or a permission's id).
FAKE_AZ = f"""#!{sys.executable}
import json, os, sys
args = sys.argv[1:]
with open(os.environ["AZ_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
query = args[args.index("--query") + 1] if "--query" in args else ""
if args[:3] == ["ad", "app", "create"] and query == "appId":
    print("{APP_ID}")
elif args[:3] == ["ad", "app", "show"]:
    print("{OBJECT_ID}")
elif args[:3] == ["ad", "sp", "show"]:
    target = args[args.index("--id") + 1]
    print("sp-" + target if query == "appId" else "perm:" + query)
elif query == "password":
    print("not-a-real-secret")
"""


_PROJECTS: dict[str, Path] = {}


def _project(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """The project of examples/<name>, generated once per test session."""
    if name not in _PROJECTS:
        out = tmp_path_factory.mktemp("register")
        with contextlib.redirect_stdout(io.StringIO()):
            assert cli.main(["new", str(ROOT / "examples" / name), "-o", str(out)]) == 0
        _PROJECTS[name] = next(out.iterdir())
    return _PROJECTS[name]


def _run_with_fake_az(tmp_path: Path, text: str) -> list[list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    az = bin_dir / "az"
    az.write_text(FAKE_AZ)
    az.chmod(az.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "az.log"
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "AZ_LOG": str(log)}
    done = subprocess.run(["bash", "-c", text], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert f"CLIENT_ID={APP_ID}" in done.stdout
    return [json.loads(line) for line in log.read_text().splitlines()]


def _option(args: list[str], name: str) -> list[str]:
    """The values after `name` up to the next --option."""
    rest = args[args.index(name) + 1:]
    end = next((i for i, a in enumerate(rest) if a.startswith("--")), len(rest))
    return rest[:end]


def _calls(calls: list[list[str]], *prefix: str) -> list[list[str]]:
    return [c for c in calls if c[:len(prefix)] == list(prefix)]


def test_registration_json_follows_the_spec(tmp_path_factory: pytest.TempPathFactory) -> None:
    reg = json.loads((_project(tmp_path_factory, "app.yaml") / "registration.json").read_text())
    assert reg["sign_in_audience"] == "AzureADMultipleOrgs"  # tenant: organizations
    assert reg["web"]["redirect_uris"] == ["http://localhost/getAToken", "http://localhost/"]
    assert reg["web"]["front_channel_logout_url"] == "http://localhost/logout/frontchannel"
    assert reg["optional_claims"] == {"id_token": ["login_hint", "groups"]}  # it uses groups
    assert reg["group_membership_claims"] == "SecurityGroup"
    assert [r["value"] for r in reg["app_roles"]] == ["Admin"]
    graph, todo = reg["api_permissions"]
    assert (graph["resource"], graph["type"]) == (rreg.GRAPH_APP_ID, "delegated")
    assert graph["permissions"] == [{"value": "User.Read", "admin_consent": "not required"}]
    assert todo["resource"] == "api://11111111-2222-3333-4444-555555555555"
    assert todo["permissions"][0]["admin_consent"] == "depends on the API's registration"
    assert reg["credential"] == {"kind": "secret"}


@pytest.mark.parametrize(("tenant", "audience"), [
    ("organizations", "AzureADMultipleOrgs"), ("common", "AzureADandPersonalMicrosoftAccount"),
    ("contoso.onmicrosoft.com", "AzureADMyOrg"),
    ("72f988bf-86f1-41af-91ab-2d7cd011db47", "AzureADMyOrg")])
def test_sign_in_audience_from_the_authority(tenant: str, audience: str) -> None:
    assert rreg.sign_in_audience("entra", tenant) == audience


def test_consent_and_credentials_per_kind() -> None:
    perms = rreg.api_permissions({
        "graph": {"scopes": ["User.Read", "GroupMember.Read.All"]},
        "orders": {"scopes": ["api://orders/.default"], "app_only": True}})
    assert [p["admin_consent"] for p in perms[0]["permissions"]] == ["not required", "required"]
    assert perms[1]["type"] == "application" and perms[1]["resource"] == "api://orders"
    assert perms[1]["permissions"][0]["admin_consent"] == "required"
    mi = rreg.credential({"kind": "assertion", "source": "managed_identity"})
    k8s = rreg.credential({"kind": "assertion", "source": "token_file"})
    assert mi["kind"] == k8s["kind"] == "federated"
    assert k8s["subject"].startswith("system:serviceaccount:")
    assert mi["audiences"] == ["api://AzureADTokenExchange"]


def test_no_registration_json_for_a_generic_oidc_provider(
        tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]) -> None:
    project = _project(tmp_path_factory, "oidc.yaml")
    assert not (project / "registration.json").exists()
    assert cli.main(["register", str(project)]) == cli.EXIT_SPEC
    assert "register the client at that provider" in capsys.readouterr().err


def test_printed_script_against_a_fake_az(
        tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
        capsys: pytest.CaptureFixture[str]) -> None:
    project = _project(tmp_path_factory, "app.yaml")
    reg = greg.load(project)
    assert cli.main(["register", str(project)]) == 0
    calls = _run_with_fake_az(tmp_path, capsys.readouterr().out)

    [create] = _calls(calls, "ad", "app", "create")
    assert _option(create, "--display-name") == [reg["display_name"]]
    assert _option(create, "--sign-in-audience") == [reg["sign_in_audience"]]
    assert _option(create, "--web-redirect-uris") == reg["web"]["redirect_uris"]
    roles = json.loads(_option(create, "--app-roles")[0])
    assert [(r["value"], r["allowedMemberTypes"]) for r in roles] == [
        (r["value"], r["allowed_member_types"]) for r in reg["app_roles"]]
    claims = json.loads(_option(create, "--optional-claims")[0])
    assert [c["name"] for c in claims["idToken"]] == reg["optional_claims"]["id_token"]

    [patch] = _calls(calls, "rest")
    assert _option(patch, "--uri") == [f"{greg.GRAPH_APPLICATIONS}/{OBJECT_ID}"]
    body = json.loads(_option(patch, "--body")[0])
    assert body["web"]["logoutUrl"] == reg["web"]["front_channel_logout_url"]
    assert body["groupMembershipClaims"] == reg["group_membership_claims"]
    assert _calls(calls, "ad", "sp", "create") == [["ad", "sp", "create", "--id", APP_ID,
                                                    "--output", "none"]]
    [secret] = _calls(calls, "ad", "app", "credential", "reset")
    assert _option(secret, "--id") == [APP_ID] and "--cert" not in secret

    added = _calls(calls, "ad", "app", "permission", "add")
    wanted = [(f"sp-{api['resource']}", p["value"]) for api in reg["api_permissions"]
              for p in api["permissions"]]
    assert len(added) == len(wanted)
    for call, (api, value) in zip(added, wanted, strict=True):
        assert _option(call, "--id") == [APP_ID] and _option(call, "--api") == [api]
        [permission] = _option(call, "--api-permissions")
        assert permission.startswith("perm:oauth2PermissionScopes[?value==")
        assert f"'{value}'" in permission and permission.endswith("=Scope")
    assert not _calls(calls, "ad", "app", "permission", "admin-consent")  # not without the flag


def test_certificate_federated_and_admin_consent(
        tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
        capsys: pytest.CaptureFixture[str]) -> None:
    project = _project(tmp_path_factory, "certificate.yaml")
    reg = greg.load(project)
    assert reg["sign_in_audience"] == "AzureADMyOrg"
    assert cli.main(["register", "--admin-consent", str(project)]) == 0
    calls = _run_with_fake_az(tmp_path, capsys.readouterr().out)
    [cert] = _calls(calls, "ad", "app", "credential", "reset")
    assert _option(cert, "--cert") == ["@" + reg["credential"]["certificate_file"]]
    assert _calls(calls, "ad", "app", "permission", "admin-consent") == [
        ["ad", "app", "permission", "admin-consent", "--id", APP_ID]]

    fed = {**reg, "credential": rreg.credential({"kind": "assertion", "source": "token_file"})}
    (tmp_path / "bin").rename(tmp_path / "bin-cert")
    (tmp_path / "az.log").unlink()
    calls = _run_with_fake_az(tmp_path, greg.script(fed))
    [create] = _calls(calls, "ad", "app", "federated-credential", "create")
    params = json.loads(_option(create, "--parameters")[0])
    assert {k: params[k] for k in ("issuer", "subject", "audiences")} == {
        k: fed["credential"][k] for k in ("issuer", "subject", "audiences")}


def test_apply_without_az_is_a_clear_error(
        tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    project = _project(tmp_path_factory, "app.yaml")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert cli.main(["register", "--apply", str(project)]) == cli.EXIT_SPEC
    assert "az (the Azure CLI) is not on PATH" in capsys.readouterr().err
