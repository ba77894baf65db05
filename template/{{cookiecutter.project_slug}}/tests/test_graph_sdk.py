"""Microsoft Graph through its SDK (downstream_apis.graph.sdk): /profile with GraphServiceClient
and the user's credential (core/sdk.py), the SDK's own HTTP stack against the stand-in's Graph.

Skipped in a project without the option (no core/sdk.py, no msgraph-sdk). The pages go through
the app of this project's framework: Flask and Django run the SDK on the process's event loop
thread, FastAPI awaits it.
"""

from __future__ import annotations

import html
import importlib
import json
import subprocess
import sys
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from {{ cookiecutter.package_name }}.core.auth import User
from {{ cookiecutter.package_name }}.core.errors import InteractionRequired

from devprovider import DEFAULT_USERS, StandIn, TestUser
from tests.app_server import PROJECT
from tests.browser import Browser
from tests.conftest import AppUnderTest, user_apis

ALICE, BOB = DEFAULT_USERS[0], DEFAULT_USERS[1]
GRAPH_DEFAULT = "https://graph.microsoft.com/.default"


@pytest.fixture
def sdk() -> ModuleType:
    try:
        return importlib.import_module("{{ cookiecutter.package_name }}.core.sdk")
    except ModuleNotFoundError:
        pytest.skip("this project calls Graph without its SDK (downstream_apis.graph.sdk)")


def sdk_calls(standin: StandIn) -> list[dict[str, Any]]:
    return [c for c in standin.api_calls if c["api"] == "graph" and c["path"] == "/me"]


def signed_in(app: AppUnderTest, user: TestUser = ALICE) -> Browser:
    """A browser of `user`, who signed in on /profile (its page once shown)."""
    browser = app.browser()
    page = browser.get(app.url("/profile"))
    while "/authorize" in page.url:
        page = browser.sign_in(page, user.username)
    assert page.status_code == 200, page.text
    return browser


def core_user(app: AppUnderTest, user: TestUser) -> User:
    """The app's view of a signed-in test user (what its session holds)."""
    standin = app.standin
    return User(home_account_id=f"{user.oid}.{standin.tenant_id}", name=user.name,
                username=user.username, oid=user.oid, tid=standin.tenant_id,
                issuer=standin.issuer_of(standin.tenant_id), subject=user.oid)


def assert_page(page: requests.Response, status: int, text: str) -> None:
    assert page.status_code == status, page.text
    assert text.lower() in html.unescape(page.text).lower(), page.text
    assert "Traceback" not in page.text


def test_profile_is_graph_me_through_the_sdk(sdk: ModuleType,
                                             app_under_test: AppUnderTest) -> None:
    app = app_under_test
    browser = signed_in(app)
    app.standin.reset_counts()
    page = browser.get(app.url("/profile"))
    assert page.status_code == 200
    assert ALICE.name in html.unescape(page.text) and ALICE.oid in page.text
    (call,) = sdk_calls(app.standin)
    # The SDK's own middleware sent it (kiota's User-Agent), with the cached token.
    assert "kiota-python/" in str(call["user_agent"]), call
    assert call["oid"] == ALICE.oid
    assert sum(app.standin.token_calls.values()) == 0


def test_the_first_profile_call_reads_graphs_user_without_importing_the_sdks_models(
        sdk: ModuleType) -> None:
    """The SDK imports the ~1,200 modules `User` refers to (2 s of CPU) when it reads its first
    answer: a fresh process that imported the app has them already, so the first /profile
    call is not charged for them within its deadline."""
    probe = ("import sys, {{ cookiecutter.package_name }}.core.sdk\n"
             "loaded = set(sys.modules)\n"
             "from msgraph.generated.models.user import User\n"
             "User().get_field_deserializers()\n"
             "print(len(set(sys.modules) - loaded))\n")
    found = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT, capture_output=True,
                           text=True, timeout=120, check=True)
    assert found.stdout.strip() == "0", found.stdout + found.stderr


def test_a_user_who_has_not_consented_goes_to_the_provider_with_the_scope(
        sdk: ModuleType, make_app: Any) -> None:
    """Graph not consented at sign-in (another API is): the SDK call's InteractionRequired is
    the consent round trip, for the configured scopes, then the page."""
    first = make_app()
    others = [name for name in user_apis(first.services.settings.apis) if name != "graph"]
    if not others:
        pytest.skip("every sign-in consents to Graph here (no other API to sign in with)")
    app = make_app(SIGN_IN_API=others[0])
    browser = app.browser()
    page = browser.get(app.url("/"))
    page = browser.get(app.url("/login"))
    browser.sign_in(page, ALICE.username)
    consent = browser.get(app.url("/profile"))
    assert "/authorize" in consent.url
    asked = parse_qs(urlsplit(consent.url).query)["scope"][0].split()
    assert set(app.services.settings.apis["graph"].scopes) <= set(asked)
    final = browser.sign_in(consent, ALICE.username)
    assert urlsplit(final.url).path == "/profile" and final.status_code == 200
    assert ALICE.oid in final.text and sdk_calls(app.standin)


def test_a_claims_challenge_from_graph_is_met_or_sent_to_the_provider(
        sdk: ModuleType, app_under_test: AppUnderTest) -> None:
    app = app_under_test
    browser = signed_in(app)
    # Met silently: kiota retries once with the claims, the token is refreshed with them.
    app.standin.demand_claims("graph", {"access_token": {"acrs": {"essential": True,
                                                                  "value": "c1"}}},
                              step_up=False)
    app.standin.reset_counts()
    page = browser.get(app.url("/profile"))
    assert page.status_code == 200 and ALICE.oid in page.text
    assert len(app.standin.api_challenges) == 1 and len(sdk_calls(app.standin)) == 1
    assert app.standin.token_grants["refresh_token"] == 1

    # A step-up: the user is sent to the provider with the claims, and comes back.
    app.standin.demand_claims("graph", {"access_token": {"acrs": {"essential": True,
                                                                  "value": "c2"}}},
                              step_up=True)
    page = browser.get(app.url("/profile"))
    query = parse_qs(urlsplit(page.url).query)
    assert "/authorize" in page.url and "claims" in query
    assert json.loads(query["claims"][0])["access_token"]["acrs"]["value"] == "c2"
    final = browser.sign_in(page, ALICE.username)
    assert final.status_code == 200 and ALICE.oid in final.text


@pytest.mark.parametrize("status", [429, 503, 500])
def test_graph_errors_are_clear_pages(sdk: ModuleType, app_under_test: AppUnderTest,
                                      status: int) -> None:
    app = app_under_test
    browser = signed_in(app)
    app.services.clients.http.deadline_seconds = 1.5  # Retry-After 30 is past it
    with app.standin.fail("/graph/v1.0/me", status, retry_after=30):
        page = browser.get(app.url("/profile"))
    if status == 500:
        assert_page(page, 502, "answered with HTTP 500")
    else:
        assert_page(page, 503, "try again later")
    # Throttled once, with Retry-After 0: the SDK's retry handler sends it again.
    app.services.clients.http.deadline_seconds = 10
    with app.standin.fail("/graph/v1.0/me", 429, times=1, retry_after=0) as fault:
        page = browser.get(app.url("/profile"))
    assert page.status_code == 200 and fault.answered == 1


def test_an_unreachable_graph_is_a_clear_page(sdk: ModuleType, make_app: Any) -> None:
    app = make_app(API_GRAPH_BASE_URL="https://127.0.0.1:9/graph/v1.0/")  # nothing listens
    browser = app.browser()
    page = browser.get(app.url("/profile"))
    while "/authorize" in page.url:
        page = browser.sign_in(page, ALICE.username)
    assert_page(page, 502, "could not be reached")


def test_a_large_graph_answer_is_refused(sdk: ModuleType, app_under_test: AppUnderTest) -> None:
    app = app_under_test
    browser = signed_in(app)
    limit = app.services.settings.api_max_response_bytes
    with app.standin.large_answer("/graph/v1.0/me", 4 * limit, chunked=True):
        page = browser.get(app.url("/profile"))
    assert_page(page, 502, "too large")


# ------------------------------------------------------------------------------ the credential
def test_the_credential_serves_the_cached_token_without_a_provider_call(
        sdk: ModuleType, app_under_test: AppUnderTest) -> None:
    app = app_under_test
    signed_in(app)
    graph = app.services.settings.apis["graph"]
    credential = sdk.UserTokenCredential(app.services.auth, core_user(app, ALICE), graph)
    app.standin.reset_counts()
    token = credential.get_token(GRAPH_DEFAULT)  # .default: the configured scopes' token
    info = credential.get_token_info(*graph.scopes)
    assert sum(app.standin.token_calls.values()) == 0
    assert token.token == info.token and token.expires_on == info.expires_on
    assert token.expires_on > app.standin.now() + 60
    # The same token the app's own REST call of Graph uses.
    assert app.services.auth.acquire_token(core_user(app, ALICE), graph.scopes) == token.token


def test_the_async_credential_serves_the_same_token(sdk: ModuleType,
                                                    app_under_test: AppUnderTest) -> None:
    import asyncio

    app = app_under_test
    signed_in(app)
    graph = app.services.settings.apis["graph"]
    user = core_user(app, ALICE)
    credential = sdk.AsyncUserTokenCredential(app.services.auth, user, graph)
    app.standin.reset_counts()
    token = asyncio.run(credential.get_token(GRAPH_DEFAULT, enable_cae=True))
    assert sum(app.standin.token_calls.values()) == 0
    assert token.token == app.services.auth.acquire_token(user, graph.scopes)


def test_the_credential_raises_interaction_required_when_no_token_can_be_had(
        sdk: ModuleType, app_under_test: AppUnderTest) -> None:
    app = app_under_test
    signed_in(app)
    graph = app.services.settings.apis["graph"]
    # Never signed in here: no account in the cache.
    stranger = sdk.UserTokenCredential(app.services.auth, core_user(app, BOB), graph)
    with pytest.raises(InteractionRequired) as raised:
        stranger.get_token(GRAPH_DEFAULT)
    assert set(raised.value.scopes) == set(graph.scopes)
    # Another API's `.default`, which the user never consented to (only Graph, at sign-in):
    # the consent to ask for, as asked.
    other = next((a for a in app.services.settings.apis.values() if a.name != "graph"), None)
    if other is None:
        return  # this app calls Graph only
    alice = sdk.UserTokenCredential(app.services.auth, core_user(app, ALICE), graph)
    wanted = f"{other.resource}/.default"
    with pytest.raises(InteractionRequired) as raised:
        alice.get_token(wanted)
    assert raised.value.scopes == [wanted]


def test_sdk_scopes_map_to_the_configured_ones(sdk: ModuleType,
                                               app_under_test: AppUnderTest) -> None:
    graph = app_under_test.services.settings.apis["graph"]
    assert sdk.token_scopes(graph, [GRAPH_DEFAULT]) == graph.scopes
    # The stand-in's Graph host, as kiota derives it from the base URL.
    host = urlsplit(graph.base_url)
    assert sdk.token_scopes(graph, [f"{host.scheme}://{host.netloc}/.default"]) == graph.scopes
    assert sdk.token_scopes(graph, ["https://storage.azure.com/.default"]) == (
        "https://storage.azure.com/.default",)
    assert sdk.token_scopes(None, [GRAPH_DEFAULT]) == (GRAPH_DEFAULT,)
