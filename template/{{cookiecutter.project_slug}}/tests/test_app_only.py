"""App-only APIs: called with the app's own token (client credentials), not the user's.

In a project whose spec has an app-only API (`app_only: true`; the others skip this module):
its /api/<name> page, for signed-in users like every API page, calls it with an app token
the stand-in checks (no `scp`, the application permission in `roles`, `idtyp` "app"), with the
API's default path, query and headers; that token comes from the project's own kind of
credential, and from the next one when the provider refuses it; it is kept in ONE cache in the
store, shared by every instance and asked for once across them; a cached one costs no store
write and no token request. The stand-in's app-only API refuses a user's token, and a
delegated API refuses an app token. AZURE_REGION sends the app's token requests (and only
those) to the regional token service MSAL derives from the authority's host: an HTTP CONNECT
proxy on loopback stands in for DNS, leading that host to the stand-in.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jwt
import pytest
import requests
import trustme

from {{ cookiecutter.package_name }}.config import DEFAULTS
from {{ cookiecutter.package_name }}.core.auth import User
from {{ cookiecutter.package_name }}.core.services import build_services
from {{ cookiecutter.package_name }}.core.settings import ApiSettings, load_settings
from {{ cookiecutter.package_name }}.core.token_cache import APP_TOKENS

from devprovider import DEFAULT_USERS, StandIn
from devprovider.__main__ import APP_ONLY_API_ROLE
from tests.conftest import CLIENT_ID, AppUnderTest, page_of, user_apis
from tests.credential_material import auth_log, credential_setup, own_kind
from tests.test_authority_kinds import ConnectProxy
from tests.test_web_flow import sign_in

ALICE = DEFAULT_USERS[0]
# `DownstreamApis.call` takes the signed-in user; an app-only call does not use it.
NOBODY = User(home_account_id="", name="", username="", oid="", tid="", issuer="", subject="")
APP_ONLY = [name for name, api in DEFAULTS.downstream_apis.items() if api.get("app_only")]
pytestmark = pytest.mark.skipif(not APP_ONLY,
                                reason="the app was generated without an app-only API")


# AZURE_REGION: an authority host of the tests' own (a CONNECT proxy leads it to the stand-in)
# and its regional variant, as MSAL makes it for a host that is not one of Microsoft's public
# ones (`<region>.<host>`; for login.microsoftonline.com and its aliases:
# `<region>.login.microsoft.com`).
REGION = "westus2"
CENTRAL = "login.contoso.test"
REGIONAL = f"{REGION}.{CENTRAL}"


@pytest.fixture(scope="module")
def tls_server_files(tls_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory
                     ) -> tuple[str, str]:
    """The stand-in's certificate, naming the authority's host and its regional one too."""
    folder = tmp_path_factory.mktemp("app-only-tls")
    cert = tls_ca.issue_cert("127.0.0.1", "localhost", CENTRAL, REGIONAL)
    chain, key = folder / "server.pem", folder / "server.key"
    chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(key))
    return str(chain), str(key)


def app_only_api(app: AppUnderTest) -> ApiSettings:
    return app.services.settings.apis[APP_ONLY[0]]


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def client_credentials_grants(app: AppUnderTest) -> int:
    return app.standin.token_grants["client_credentials"]


def test_the_api_page_calls_the_api_with_the_apps_own_token(
        app_under_test: AppUnderTest, monkeypatch: pytest.MonkeyPatch) -> None:
    app = app_under_test
    api = app_only_api(app)
    browser = app.browser()
    sign_in(app, browser, ALICE)
    home = browser.get(app.url("/"))
    assert f'href="{page_of(api.name)}"' in home.text and "the app's own token" in home.text
    app.standin.reset_counts()
    page = browser.get(app.url(page_of(api.name)))
    assert page.status_code == 200, page.text
    assert "this app's own token" in page.text and ALICE.oid not in page.text
    (call,) = app.standin.api_calls
    # The stand-in's app-only API accepted it: an app token with the granted permission.
    assert call["api"] == api.name and call["scopes"] == [] and call["roles"] == [
        APP_ONLY_API_ROLE]
    assert call["path"] == "/" + api.path and call["method"] == api.method
    assert client_credentials_grants(app) == 1 and app.standin.authorize_calls == 0
    assert set(auth_log(app)) == {("secret", app.standin.client_secret_id(
        CLIENT_ID, app.env["CLIENT_SECRET"]))}

    # Cached: the next page neither asks the provider nor writes the store.
    writes: list[str] = []
    store = app.services.caches.store
    original = store.set

    def counted_set(key: str, value: str, *args: Any, **kwargs: Any) -> Any:
        writes.append(key)
        return original(key, value, *args, **kwargs)

    monkeypatch.setattr(store, "set", counted_set)
    again = browser.get(app.url(page_of(api.name)))
    assert again.status_code == 200 and client_credentials_grants(app) == 1
    assert app.services.caches.key(APP_TOKENS) not in writes
    assert len({c["token"] for c in app.standin.api_calls}) == 1  # the same token twice


def test_the_api_description_shapes_the_default_call(app_under_test: AppUnderTest) -> None:
    """Path, query parameters and headers of the API's description reach the API."""
    app = app_under_test
    api = app_only_api(app)
    answer = app.services.apis.call(NOBODY, api.name).json()
    assert answer["path"] == "/" + api.path and answer["idtyp"] == "app"
    for name, value in api.query.items():
        assert answer["query"][name] == value
    sent = {k.lower(): v for k, v in answer["headers"].items()}
    for name, value in api.headers.items():
        if name.lower().startswith("x-"):  # what the stand-in's API echoes
            assert sent[name.lower()] == value


def test_an_app_only_api_refuses_a_user_token_and_a_delegated_api_an_app_token(
        app_under_test: AppUnderTest, http_session: requests.Session) -> None:
    app = app_under_test
    api = app_only_api(app)
    http = http_session  # trusts the stand-in
    # A user's token, even one carrying the role (a user can be assigned an app role too).
    user_token = app.standin.mint_access_token(ALICE.username, CLIENT_ID, list(api.scopes),
                                               roles=[APP_ONLY_API_ROLE])
    assert "scp" in claims_of(user_token)
    refused = http.get(api.base_url + "x", headers={"Authorization": f"Bearer {user_token}"})
    assert refused.status_code == 403 and "insufficient_scope" in refused.headers.get(
        "WWW-Authenticate", "")
    app_token = app.services.auth.acquire_app_token(api.scopes)
    claims = claims_of(app_token)
    assert "scp" not in claims and claims["idtyp"] == "app"
    assert claims["roles"] == [APP_ONLY_API_ROLE]
    # An app token for a delegated API's resource (the app holds no application permission
    # of it: Entra issues one without `roles`) is refused by it too.
    for other in [app.services.settings.apis[n] for n in user_apis(app.services.settings.apis)
                  if n != "graph"]:
        token = app.services.auth.acquire_app_token([f"{other.resource}/.default"])
        answer = http.get(other.base_url + "x", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 403, (other.name, answer.text)
        assert "scp" not in claims_of(token)
        if other.resource != api.resource:  # else it holds the permission granted for both
            assert "roles" not in claims_of(token)


def test_the_projects_own_credential_kind_gets_the_app_token(
        make_app: Callable[..., AppUnderTest], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    setup = credential_setup(own_kind(), tmp_path / "credentials", monkeypatch)
    app = make_app(**setup.env)
    setup.after_start(app)
    app.standin.reset_counts()
    token = app.services.auth.acquire_app_token(app_only_api(app).scopes)
    assert claims_of(token)["roles"] == [APP_ONLY_API_ROLE]
    assert auth_log(app, "client_credentials") == [setup.expected(app)]


def test_a_revoked_credential_hands_over_to_the_next_for_app_tokens(
        make_app: Callable[..., AppUnderTest]) -> None:
    second = secrets.token_urlsafe(24)
    app = make_app(CLIENT_2_CREDENTIAL="secret", CLIENT_2_SECRET=second)
    app.standin.add_client_secret(CLIENT_ID, second)
    app.standin.remove_client_secret(CLIENT_ID, app.env["CLIENT_SECRET"])
    app.standin.reset_counts()
    token = app.services.auth.acquire_app_token(app_only_api(app).scopes)
    assert claims_of(token)["roles"] == [APP_ONLY_API_ROLE]
    assert auth_log(app, "client_credentials") == [
        ("secret", app.standin.client_secret_id(CLIENT_ID, second))]


@pytest.mark.skipif(DEFAULTS.token_cache_backend == "memory",
                    reason="the memory store is each process's own: nothing to share")
def test_instances_sharing_the_store_ask_for_the_app_token_once(
        app_under_test: AppUnderTest) -> None:
    """Two instances (each its own services: MSAL clients, in-process copies, locks) on the
    store, with a cold cache, asking at once: one token request in all; later ones, from
    either, none."""
    app = app_under_test
    scopes = app_only_api(app).scopes
    other = build_services(load_settings(app.env, DEFAULTS))
    app.standin.reset_counts()
    together = threading.Barrier(4)

    def acquire(number: int) -> str:
        services = (app.services, other)[number % 2]
        together.wait(timeout=30)
        return services.auth.acquire_app_token(scopes)

    with ThreadPoolExecutor(max_workers=4) as pool:
        tokens = list(pool.map(acquire, range(4)))
    assert len(set(tokens)) == 1
    assert client_credentials_grants(app) == 1, app.standin.token_grants
    fresh = build_services(load_settings(app.env, DEFAULTS))  # a third, started later
    assert fresh.auth.acquire_app_token(scopes) == tokens[0]
    assert client_credentials_grants(app) == 1


def test_the_app_token_is_refreshed_once_it_is_about_to_expire(
        app_under_test: AppUnderTest) -> None:
    """MSAL's rule for the app's cached token too: under 5 minutes left, a new one."""
    app = app_under_test
    scopes = app_only_api(app).scopes
    app.standin.reset_counts()
    first = app.services.auth.acquire_app_token(scopes)
    caches = app.services.caches
    with caches.open(APP_TOKENS) as cache:
        for entry in cache.search(cache.CredentialType.ACCESS_TOKEN):
            cache.modify(cache.CredentialType.ACCESS_TOKEN, entry, {
                "expires_on": str(int(app.services.auth.clock()) + 60)})
    second = app.services.auth.acquire_app_token(scopes)
    assert second != first and client_credentials_grants(app) == 2


def test_a_signed_out_visitor_of_the_page_signs_in_first(
        app_under_test: AppUnderTest) -> None:
    """The page is for signed-in users, like every API page; the sign-in asks for no scope of
    the app-only API (its token is never the user's)."""
    app = app_under_test
    api = app_only_api(app)
    browser = app.browser()
    page = browser.get(app.url(page_of(api.name)))
    assert "/authorize" in page.url and api.resource not in unquote(page.url)
    final = browser.sign_in(page, ALICE.username)
    assert final.url == app.url(page_of(api.name)), final.url
    assert final.status_code == 200 and "this app's own token" in final.text


def test_azure_region_sends_only_the_apps_token_requests_to_the_regional_host(
        make_app: Callable[..., AppUnderTest], standin: StandIn,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """MSAL fetches discovery at `<region>.<host>` and asks its token endpoint for the app's
    tokens; a user's sign-in and tokens stay on the central endpoints. With REGION_NAME set as
    Azure sets it (the same region), MSAL logs no region warning."""
    standin.regional_hosts.add(REGIONAL)
    port = int(standin.base_url.rsplit(":", 1)[1])
    with ConnectProxy(("127.0.0.1", port)) as proxy:
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)  # read when the app is built
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        monkeypatch.setenv("REGION_NAME", REGION)
        app = make_app(AUTHORITY=f"https://{CENTRAL}/{standin.tenant_id}", AZURE_REGION=REGION)
        app.standin.reset_counts()
        with caplog.at_level(logging.WARNING, logger="msal"):
            token = app.services.auth.acquire_app_token(app_only_api(app).scopes)
            sign_in(app, app.browser(), ALICE)
        proxy.shutdown()
    assert claims_of(token)["roles"] == [APP_ONLY_API_ROLE]
    assert app.standin.token_hosts[("client_credentials", REGIONAL)] == 1
    assert sum(n for (grant, _), n in app.standin.token_hosts.items()
               if grant == "client_credentials") == 1
    # The user's code is redeemed at the central token endpoint (discovery's, on base_url).
    assert app.standin.token_hosts[("authorization_code", "127.0.0.1")] == 1
    assert f"{REGIONAL}:443" in proxy.hosts
    assert not [r for r in caplog.records if "egion" in r.getMessage()]
