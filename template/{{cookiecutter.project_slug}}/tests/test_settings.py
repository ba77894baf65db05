"""Start-up refuses a configuration it cannot run with, naming each variable and the fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.config import DEFAULTS
from {{ cookiecutter.package_name }}.core.settings import (
    EXIT_BAD_SETTINGS,
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
    assert default.apis["graph"].scopes == ("https://graph.microsoft.com/.default",)
