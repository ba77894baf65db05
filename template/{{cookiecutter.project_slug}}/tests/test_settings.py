"""Start-up refuses a configuration it cannot run with, naming each variable and the fix."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.config import DEFAULTS
from {{ cookiecutter.package_name }}.core.settings import (
    EXIT_BAD_SETTINGS,
    Settings,
    SettingsError,
    load_settings,
)

from tests.app_server import ENTRY_POINT_CODE, build_app
from tests.conftest import environment_for_settings_tests as valid_env
from tests.conftest import names_the_credential


def problems(env: dict[str, str]) -> str:
    with pytest.raises(SettingsError) as caught:
        load_settings(env, DEFAULTS)
    return "\n".join(caught.value.problems)


def test_missing_settings_stop_start_up_naming_each_one() -> None:
    with pytest.raises(SettingsError) as caught:
        build_app({})
    message = str(caught.value)
    for name in ("CLIENT_ID", "REDIRECT_URI", "SECRET_KEY"):
        assert name in message
    assert names_the_credential(message)


def test_the_real_entry_point_fails_clearly_on_an_empty_environment(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-c", ENTRY_POINT_CODE], cwd=tmp_path,
                            env={"PYTHONPATH": str(Path(__file__).parents[1])},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == EXIT_BAD_SETTINGS
    assert names_the_credential(result.stderr)
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"REDIRECT_URI": "https://app.example.com/elsewhere"}, "must end with the path"),
        ({"REDIRECT_URI": "http://app.example.com" + DEFAULTS.redirect_path}, "must use https"),
        ({"AUTHORITY": "http://login.example.com/tenant"}, "MSAL refuses http"),
        ({"AUTHORITY": "https://login.example.com"}, "needs a path"),
        ({"AUTHORITY": "https://a.example/t", "OIDC_AUTHORITY": "https://b.example/x"},
         "both set"),
        ({"AUTHORITY": "", "OIDC_AUTHORITY": "https://id.example.com/realm/"},
         "must not end with '/'"),
        ({"SECRET_KEY": "short"}, "shorter than 32"),
        ({"TOKEN_CACHE_BACKEND": "floppy"}, "TOKEN_CACHE_BACKEND='floppy' is not one of"),
        ({"TOKEN_CACHE_MAX_ENTRIES": "many"}, "TOKEN_CACHE_MAX_ENTRIES='many'"),
        ({"INSTANCE_DISCOVERY": "maybe"}, "INSTANCE_DISCOVERY='maybe' is not a boolean"),
        ({"LOG_LEVEL": "chatty"}, "LOG_LEVEL='CHATTY' is not one of"),
        ({"CA_BUNDLE": "/nonexistent/ca.pem"}, "CA_BUNDLE='/nonexistent/ca.pem'"),
        ({"CLIENT_SECRET": "x", "CLIENT_SECRET_FILE": "/run/secret"}, "both set"),
        ({"CLIENT_SECRET": "", "CLIENT_SECRET_FILE": "/nonexistent"}, "cannot read"),
        ({"SIGN_IN_API": "nope"}, "SIGN_IN_API='nope' is not a configured API"),
        ({"API_GRAPH_SCOPES": "User.Read openid"}, "added by MSAL itself"),
        ({"API_GRAPH_SCOPES": "User.Read api://other/Read"}, "spans several resources"),
        ({"API_GRAPH_SCOPES": "https://graph.microsoft.com/.default User.Read"},
         "mixes .default with named scopes"),
        ({"ALLOWED_TENANT_IDS": "contoso.com"}, "contoso.com are not tenant ids"),
        ({"AUTHORITY": "", "OIDC_AUTHORITY": "https://id.example.com/realm",
          "ALLOWED_TENANT_IDS": "72f988bf-86f1-41af-91ab-2d7cd011db47"},
         "ALLOWED_TENANT_IDS applies to Entra authorities only"),
    ],
)
def test_malformed_settings_are_named_with_the_fix(overrides: dict[str, str],
                                                   expected: str) -> None:
    if "API_GRAPH" in next(iter(overrides)) and "graph" not in DEFAULTS.downstream_apis:
        pytest.skip("this app does not call Microsoft Graph")
    assert expected in problems(valid_env(overrides))


def test_defaults_and_overrides() -> None:
    settings = load_settings(valid_env({"TRUSTED_PROXY_HOPS": "1"}), DEFAULTS)
    assert settings.post_logout_redirect_uri == "https://app.example.com/"
    assert settings.secure_cookies and settings.trusted_proxy_hops == 1
    for api in settings.apis.values():
        assert len({scope.rsplit("/", 1)[0] if "/" in scope else "graph"
                    for scope in api.scopes}) == 1
    local = load_settings(valid_env({"REDIRECT_URI": "http://localhost:5000"
                                     + DEFAULTS.redirect_path}), DEFAULTS)
    assert not local.secure_cookies


@pytest.mark.parametrize("scope", ["https://graph.microsoft.com/User.Read",
                                   "00000003-0000-0000-c000-000000000000/User.Read"])
def test_graph_scopes_are_kept_in_the_form_entra_answers_with(scope: str) -> None:
    """Entra names Graph scopes in short form in its answers, and MSAL looks cached tokens up
    by those names: a full-form scope would miss the cache on every call."""
    if "graph" not in DEFAULTS.downstream_apis:
        pytest.skip("this app does not call Microsoft Graph")
    settings = load_settings(valid_env({"API_GRAPH_SCOPES": f"{scope} Mail.Read"}), DEFAULTS)
    assert settings.apis["graph"].scopes == ("User.Read", "Mail.Read")
    default = load_settings(valid_env({"API_GRAPH_SCOPES": "https://graph.microsoft.com/.default"}),
                            DEFAULTS)
    # Microsoft Graph of the authority's cloud (the global one for this project's defaults,
    # unless it was generated for another cloud).
    assert default.apis["graph"].scopes == (f"{default.graph_resource}/.default",)
    assert default.graph_resource == str(
        DEFAULTS.downstream_apis["graph"]["base_url"]).rstrip("/").rsplit("/", 1)[0]


# (authority host, Microsoft Graph's roots in its cloud, the managed identity token's audience)
CLOUDS = [
    ("login.microsoftonline.com", ("https://graph.microsoft.com",), "api://AzureADTokenExchange"),
    ("login.microsoftonline.us", ("https://graph.microsoft.us", "https://dod-graph.microsoft.us"),
     "api://AzureADTokenExchangeUSGov"),
    ("login.usgovcloudapi.net", ("https://graph.microsoft.us", "https://dod-graph.microsoft.us"),
     "api://AzureADTokenExchangeUSGov"),
    ("login.partner.microsoftonline.cn", ("https://microsoftgraph.chinacloudapi.cn",),
     "api://AzureADTokenExchangeChina"),
    ("login.chinacloudapi.cn", ("https://microsoftgraph.chinacloudapi.cn",),
     "api://AzureADTokenExchangeChina"),
    # Graph's root there is not documented: the app takes the one it is given.
    ("login.sovcloud-identity.fr", (), "api://AzureADTokenExchangeFrance"),
    ("login.sovcloud-identity.de", (), "api://AzureADTokenExchangeGermany"),
]
GRAPH_ROOTS = {root for _, roots, _ in CLOUDS for root in roots}


@pytest.mark.parametrize(("host", "roots", "audience"), CLOUDS, ids=[c[0] for c in CLOUDS])
def test_graph_and_the_token_exchange_audience_follow_the_cloud(
        host: str, roots: tuple[str, ...], audience: str) -> None:
    """AUTHORITY's cloud decides which Graph takes its tokens: its Graph base URLs (v1.0 or
    beta) are taken, another cloud's refused; Graph scopes of the cloud are kept short, its
    `.default` names the cloud's Graph, the app's own Graph token asks for it."""
    cloud = {"AUTHORITY": f"https://{host}/contoso.example", "OIDC_AUTHORITY": ""}
    calls_graph = "graph" in DEFAULTS.downstream_apis
    for root in roots or ("https://graph.sovcloud.example",):
        for version in ("v1.0", "beta"):
            url = f"{root}/{version}"
            settings = load_settings(valid_env({
                **cloud, "API_GRAPH_BASE_URL": url,
                "API_GRAPH_SCOPES": f"{root}/User.Read Mail.Read",
                "GROUPS_OVERAGE_SCOPES": f"{root}/GroupMember.Read.All"}), DEFAULTS)
            assert (settings.graph_base_url, settings.graph_resource) == (url + "/", root)
            assert settings.groups_overage_scopes == ("GroupMember.Read.All",)
            if calls_graph:
                assert settings.apis["graph"].base_url == url + "/"
                assert settings.apis["graph"].scopes == ("User.Read", "Mail.Read")
        if calls_graph:
            for default in (f"{root}/.default", "https://graph.microsoft.com/.default"):
                settings = load_settings(valid_env({
                    **cloud, "API_GRAPH_BASE_URL": f"{root}/v1.0",
                    "API_GRAPH_SCOPES": default}), DEFAULTS)
                assert settings.apis["graph"].scopes == (f"{root}/.default",)
    for other in sorted(GRAPH_ROOTS - set(roots)) if roots else ():
        assert (f"API_GRAPH_BASE_URL='{other}/v1.0' is Microsoft Graph of another cloud than "
                f"AUTHORITY's; use {roots[0]}/v1.0") in problems(valid_env(
                    {**cloud, "API_GRAPH_BASE_URL": f"{other}/v1.0"}))
        assert (f"GRAPH_BASE_URL='{other}/beta' is Microsoft Graph of another cloud") in problems(
            valid_env({**cloud, "API_GRAPH_BASE_URL": f"{roots[0]}/v1.0",
                       "GRAPH_BASE_URL": f"{other}/beta"}))
    if roots:  # by default: the cloud's Graph
        settings = load_settings(valid_env(cloud), DEFAULTS)
        if calls_graph:  # config.py's graph API, moved to this cloud if generated for another
            baked = str(DEFAULTS.downstream_apis["graph"]["base_url"]).rstrip("/")
            root, _, version = baked.rpartition("/")
            expected = f"{root if root in roots else roots[0]}/{version}/"
            assert settings.apis["graph"].base_url == settings.graph_base_url == expected
            assert settings.graph_resource == expected.rsplit("/", 2)[0]
        else:  # the groups overage's
            assert (settings.graph_base_url, settings.graph_resource) == (
                f"{roots[0]}/v1.0/", roots[0])
    identity = load_settings(valid_env({
        **cloud, "API_GRAPH_BASE_URL": f"{(roots or ('https://graph.sovcloud.example',))[0]}/v1.0",
        "CLIENT_CREDENTIAL": "assertion", "CLIENT_SECRET": "",
        "CLIENT_ASSERTION_MANAGED_IDENTITY": "0f5b7a2c-1111-2222-3333-444455556666"}), DEFAULTS)
    assert identity.credentials[0].assertion_audience == audience


# ------------------------------------------------------------------------ an API's description
REPORTS = {"base_url": "https://reports.contoso.com/v1/",
           "scopes": ["api://22222222-2222-3333-4444-555555555555/.default"], "app_only": True}
SINGLE_TENANT = "https://login.microsoftonline.com/contoso.onmicrosoft.com"


def with_reports(env: dict[str, str], **api: object) -> Settings:
    """`load_settings` for an app whose spec had the app-only API `reports` (`api`: more of its
    description), at one tenant."""
    defaults = dataclasses.replace(DEFAULTS, downstream_apis={"reports": {**REPORTS, **api}},
                                   sign_in_api="", authority=SINGLE_TENANT, oidc_authority="")
    return load_settings(valid_env({"AUTHORITY": SINGLE_TENANT, "OIDC_AUTHORITY": "", **env}),
                         defaults)


def reports_problems(env: dict[str, str], **api: object) -> str:
    with pytest.raises(SettingsError) as caught:
        with_reports(env, **api)
    return "\n".join(caught.value.problems)


def test_an_apis_description_comes_from_config_and_its_variables() -> None:
    baked = with_reports({}, path="daily", headers={"X-Format": "compact"}, timeout=5,
                         query={"api-version": "2"}).apis["reports"]
    assert (baked.path, baked.method, baked.timeout_seconds, baked.app_only) == (
        "daily", "GET", 5.0, True)
    assert baked.headers == {"X-Format": "compact"} and baked.query == {"api-version": "2"}
    given = with_reports({"API_REPORTS_PATH": "weekly/summary", "API_REPORTS_METHOD": "head",
                          "API_REPORTS_HEADERS": '{"X-Tenant": "contoso", "Prefer": "x"}',
                          "API_REPORTS_QUERY": '{"top": "10"}', "API_REPORTS_TIMEOUT": "2.5",
                          "API_REPORTS_APP_ONLY": "false",
                          "API_REPORTS_SCOPES": "api://22222222-2222-3333-4444-555555555555/R"},
                         path="daily").apis["reports"]
    assert (given.path, given.method, given.timeout_seconds, given.app_only) == (
        "weekly/summary", "HEAD", 2.5, False)
    assert given.headers == {"X-Tenant": "contoso", "Prefer": "x"} and given.query == {
        "top": "10"}


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"API_REPORTS_SCOPES": "api://22222222-2222-3333-4444-555555555555/Read"},
         "an app-only API needs exactly one scope, its resource's '/.default'"),
        ({"SIGN_IN_API": "reports"}, "SIGN_IN_API='reports' is an app-only API"),
        ({"AUTHORITY": "https://login.microsoftonline.com/organizations"},
         "AUTHORITY ends with /organizations"),
        ({"API_REPORTS_APP_ONLY": "sometimes"},
         "API_REPORTS_APP_ONLY='sometimes' is not a boolean"),
        ({"API_REPORTS_PATH": "../admin"}, "must not hold '.' or '..' segments"),
        ({"API_REPORTS_PATH": "/v2/items"}, "must be relative to base_url"),
        ({"API_REPORTS_PATH": "items?top=1"}, "give query parameters in query"),
        ({"API_REPORTS_METHOD": "POST"}, "without a body; use GET"),
        ({"API_REPORTS_METHOD": "DELETE"}, "every visit of a link"),
        ({"API_REPORTS_METHOD": "FETCH"}, "API_REPORTS_METHOD='FETCH' is not one of"),
        ({"API_REPORTS_HEADERS": "X-A: b"}, "must be a JSON object of strings"),
        ({"API_REPORTS_HEADERS": '{"Authorization": "Basic eA=="}'}, "is set by the app"),
        ({"API_REPORTS_HEADERS": '{"Host": "evil.example"}'}, "is set by the app"),
        ({"API_REPORTS_HEADERS": '{"X-A": "b\\r\\nX-Injected: 1"}'}, "line break"),
        ({"API_REPORTS_HEADERS": '{"Bad Name": "b"}'}, "is not a valid header name"),
        ({"API_REPORTS_HEADERS": '{"X-A": "1", "x-a": "2"}'}, "is given twice"),
        ({"API_REPORTS_QUERY": '{"top": 10}'}, "API_REPORTS_QUERY must be a JSON object"),
        ({"API_REPORTS_TIMEOUT": "0"}, "API_REPORTS_TIMEOUT='0' is not a number of seconds"),
        ({"API_REPORTS_TIMEOUT": "nan"}, "is not a number of seconds"),
        ({"AZURE_REGION": "West US"}, "AZURE_REGION='West US' is not an Azure region name"),
        ({"AZURE_REGION": "westus", "AUTHORITY": "",
          "OIDC_AUTHORITY": "https://id.example.com/realm"}, "AZURE_REGION applies to"),
    ],
)
def test_mistakes_in_an_apis_description_are_named_with_the_fix(env: dict[str, str],
                                                                  expected: str) -> None:
    assert expected in reports_problems(env)


def test_graph_is_never_app_only() -> None:
    """/profile reads /me, which Graph answers for a user's token only."""
    defaults = dataclasses.replace(DEFAULTS, downstream_apis={"graph": {
        "base_url": "https://graph.microsoft.com/v1.0", "scopes": ["User.Read"]}},
        sign_in_api="")
    with pytest.raises(SettingsError) as caught:
        load_settings(valid_env({"API_GRAPH_APP_ONLY": "true"}), defaults)
    assert any("API_GRAPH_APP_ONLY: the graph API is the signed-in user's" in p
               for p in caught.value.problems)
