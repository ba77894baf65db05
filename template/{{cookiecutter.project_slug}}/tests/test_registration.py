"""The stand-in registers this app from registration.json, the file `msal-webapp register`
turns into the Azure CLI script for Entra ID: change the file and the stand-in follows it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devprovider import StandIn, registration
from devprovider.__main__ import DEV_CLIENT_ID, start_dev_environment
from tests.devprovider_fixtures import authorize_url, make_http_session, pkce_pair

APP_URL = "http://localhost:5999"
ORIGINAL = registration.load()

pytestmark = pytest.mark.skipif(
    ORIGINAL is None, reason="a generic OpenID Connect provider: no registration.json")


@pytest.fixture
def dev_with(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
             ) -> Iterator[Callable[[dict[str, Any]], tuple[StandIn, dict[str, str]]]]:
    """Start the local development environment with the given registration description."""
    started: list[StandIn] = []

    def start(description: dict[str, Any]) -> tuple[StandIn, dict[str, str]]:
        path = tmp_path / f"registration-{len(started)}.json"
        path.write_text(json.dumps(description), encoding="utf-8")
        monkeypatch.setattr(registration, "registration_file", lambda: path)
        folder = tmp_path / f"run-{len(started)}"
        folder.mkdir()
        standin, env = start_dev_environment(folder, APP_URL)
        started.append(standin)
        return standin, env

    yield start
    for standin in started:
        standin.stop()


def _sign_in_page(standin: StandIn, env: dict[str, str], redirect_uri: str) -> tuple[int, str]:
    _, challenge = pkce_pair()
    with make_http_session(env["CA_BUNDLE"]) as session:  # the dev environment's own CA
        page = session.get(authorize_url(
            standin, client_id=DEV_CLIENT_ID, redirect_uri=redirect_uri, challenge=challenge,
            authority=env["AUTHORITY"] or env["OIDC_AUTHORITY"]), allow_redirects=False)
    return page.status_code, page.text


def _refused(env: dict[str, str]) -> str:
    """The error a redirect URI missing from the registration gets: Entra's, or B2C's own."""
    return "AADB2C90006" if "/b2c_" in env["AUTHORITY"].lower() else "AADSTS50011"


def _copy() -> dict[str, Any]:
    assert ORIGINAL is not None
    return json.loads(json.dumps(ORIGINAL))


def test_the_generated_file_lets_the_app_sign_in(
        dev_with: Callable[[dict[str, Any]], tuple[StandIn, dict[str, str]]]) -> None:
    standin, env = dev_with(_copy())
    status, _ = _sign_in_page(standin, env, env["REDIRECT_URI"])
    assert status == 200  # the sign-in page
    client = standin._clients[DEV_CLIENT_ID]
    assert ORIGINAL is not None
    assert client.optional_claims == frozenset(ORIGINAL["optional_claims"]["id_token"])
    assert client.group_membership_claims == ORIGINAL["group_membership_claims"]
    logout = ORIGINAL["web"]["front_channel_logout_url"]
    assert client.front_channel_logout_url == registration.at_app(logout, APP_URL)


def test_a_redirect_uri_removed_from_the_file_is_refused(
        dev_with: Callable[[dict[str, Any]], tuple[StandIn, dict[str, str]]]) -> None:
    description = _copy()
    path = str(registration.client_registration(description, APP_URL).redirect_uris[0])
    local = description["web"]["redirect_uris"]
    description["web"]["redirect_uris"] = [u for u in local
                                           if registration.at_app(u, APP_URL) != path]
    standin, env = dev_with(description)
    assert env["REDIRECT_URI"] == path  # the app still sends it
    status, text = _sign_in_page(standin, env, env["REDIRECT_URI"])
    assert status == 400 and _refused(env) in text


def test_production_redirect_uris_are_matched_exactly(
        dev_with: Callable[[dict[str, Any]], tuple[StandIn, dict[str, str]]]) -> None:
    description = _copy()
    description["web"]["redirect_uris"].append("https://app.contoso.test/getAToken")
    standin, env = dev_with(description)
    assert _sign_in_page(standin, env, "https://app.contoso.test/getAToken")[0] == 200
    for wrong in ("https://app.contoso.test/getatoken", "https://app.contoso.test:8443/getAToken"):
        status, text = _sign_in_page(standin, env, wrong)
        assert status == 400 and _refused(env) in text, wrong


def test_optional_claims_follow_the_file(
        dev_with: Callable[[dict[str, Any]], tuple[StandIn, dict[str, str]]]) -> None:
    description = _copy()
    description["optional_claims"] = {"id_token": []}
    description["group_membership_claims"] = "None"
    standin, _ = dev_with(description)
    client = standin._clients[DEV_CLIENT_ID]
    assert client.optional_claims == frozenset() and client.group_membership_claims == "None"


def test_only_the_file_s_app_roles_reach_the_users(
        dev_with: Callable[[dict[str, Any]], tuple[StandIn, dict[str, str]]]) -> None:
    description = _copy()
    roles = [r["value"] for r in description["app_roles"]]
    standin, _ = dev_with(description)
    assert list(standin.users["alice@contoso.test"].roles) == roles  # alice has every role
    description["app_roles"] = []
    standin, _ = dev_with(description)
    assert standin.users["alice@contoso.test"].roles == ()
