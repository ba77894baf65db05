"""The stand-in registers this app from registration.json, the file `msal-webapp register`
turns into the Azure CLI script for Entra ID: change the file and the stand-in follows it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from devprovider import GRAPH_RESOURCE, StandIn, TestUser, registration
from devprovider.__main__ import DEV_CLIENT_ID, start_dev_environment
from tests.devprovider_fixtures import authorize_url, make_http_session, pkce_pair

APP_URL = "http://localhost:5999"
ORIGINAL = registration.load()
# An account of another tenant (not a guest of the stand-in's).
NORTHWIND = "a0e7b000-0000-4000-8000-0000000a0e7b"
NINA = TestUser("nina@northwind.test", "Nina North", "a1aa0000-0000-4000-8000-00000000a1aa")

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


def _authorize(standin: StandIn, env: dict[str, str], authority: str,
               username: str | None = None) -> requests.Response:
    """GET the sign-in page at ``authority`` (the answer comes back in the query), or, with
    ``username``, sign in there as that account (the page's form)."""
    _, challenge = pkce_pair()
    url = authorize_url(standin, client_id=DEV_CLIENT_ID, redirect_uri=env["REDIRECT_URI"],
                        challenge=challenge, authority=authority, response_mode="query")
    with make_http_session(env["CA_BUNDLE"]) as session:
        if username is None:
            return session.get(url, allow_redirects=False)
        return session.post(url, data={"username": username, "action": "accept"},
                            allow_redirects=False)


def _answer(response: requests.Response) -> dict[str, str]:
    """The authorization answer the provider redirects the browser to the app with."""
    assert response.status_code == 302, (response.status_code, response.text[:500])
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["Location"]).query).items()}


def test_the_sign_in_audience_follows_the_file(
        dev_with: Callable[[dict[str, Any]], tuple[StandIn, dict[str, str]]]) -> None:
    """Entra's answers from the file's sign_in_audience. Multi-tenant: another tenant's account
    signs in at `organizations`. Single-tenant (AzureADMyOrg): `organizations` is refused
    with AADSTS50194, sent back to the app, and at the app's own tenant the other tenant's
    account is stopped on the provider's page with AADSTS50020."""
    for audience in ("AzureADMultipleOrgs", "AzureADMyOrg"):
        description = _copy()
        description["sign_in_audience"] = audience
        standin, env = dev_with(description)
        if "/b2c_" in env["AUTHORITY"].lower():
            pytest.skip("Azure AD B2C: user flows decide who signs in, not signInAudience")
        assert standin._clients[DEV_CLIENT_ID].sign_in_audience == audience
        standin.add_tenant(NORTHWIND, "northwind.test", [NINA])
        generic = f"{standin.base_url}/organizations"
        own = f"{standin.base_url}/{standin.tenant_id}"
        if audience == "AzureADMultipleOrgs":
            assert _authorize(standin, env, generic).status_code == 200  # the sign-in page
            assert "code" in _answer(_authorize(standin, env, generic, NINA.username))
        else:
            refused = _answer(_authorize(standin, env, generic))
            assert refused["error"] == "invalid_request"
            assert refused["error_description"].startswith("AADSTS50194:"), refused
            assert _authorize(standin, env, own).status_code == 200
            stopped = _authorize(standin, env, own, NINA.username)
            assert stopped.status_code == 400 and "AADSTS50020" in stopped.text


def test_an_unknown_sign_in_audience_is_named(
        dev_with: Callable[[dict[str, Any]], tuple[StandIn, dict[str, str]]]) -> None:
    description = _copy()
    description["sign_in_audience"] = "AzureADMyOrgs"
    with pytest.raises(ValueError, match="sign_in_audience 'AzureADMyOrgs' is not one of"):
        dev_with(description)


def test_admin_consent_follows_the_file(
        dev_with: Callable[[dict[str, Any]], tuple[StandIn, dict[str, str]]]) -> None:
    """The delegated permissions the file marks "admin_consent": "required" are consented for
    every user of the tenant (what `msal-webapp register --admin-consent` grants); the others
    wait for each user's consent on the sign-in page."""
    description = _copy()
    description["api_permissions"] = [
        a for a in description.get("api_permissions", []) if a.get("api") != "graph"]
    description["api_permissions"].append({
        "api": "graph", "resource": registration.GRAPH_APP_ID, "type": "delegated",
        "permissions": [{"value": "User.Read.All", "admin_consent": "required"},
                        {"value": "User.Read", "admin_consent": "not required"}]})
    standin, _ = dev_with(description)
    assert standin.users  # every test user, whatever the app's roles
    for username in standin.users:
        assert standin._consented(username, DEV_CLIENT_ID, GRAPH_RESOURCE) == {"User.Read.All"}

    description["api_permissions"][-1]["permissions"][0]["admin_consent"] = "not required"
    standin, _ = dev_with(description)
    for username in standin.users:
        assert standin._consented(username, DEV_CLIENT_ID, GRAPH_RESOURCE) == set()
