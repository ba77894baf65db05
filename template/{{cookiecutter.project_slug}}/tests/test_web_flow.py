"""Behaviour of the running app, end to end over real HTTP, against the identity stand-in.

Only the `app_under_test` / `make_app` fixtures know which framework serves the app, so this
module is the behavioural contract every adapter must pass unchanged.
"""

from __future__ import annotations

import base64
import html
import json
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from {{ cookiecutter.package_name }}.core.settings import ApiSettings

from devprovider import DEFAULT_USERS, StandIn, TestUser
from tests.browser import Browser, parse_forms
from tests.conftest import AppUnderTest

ALICE, BOB = DEFAULT_USERS[0], DEFAULT_USERS[1]


def cookie(browser: Browser, name: str) -> str:
    value = browser.cookies.get(name)
    assert value, f"no {name} cookie"
    return value


def find(pattern: str, text: str) -> str:
    match = re.search(pattern, text, re.S)
    assert match, f"{pattern!r} not found in:\n{text[:2000]}"
    return match[1]


def signed_in_with(app: AppUnderTest, session_cookie: str, user: TestUser) -> bool:
    """Whether a fresh browser presenting only this session cookie is signed in as `user`."""
    browser = Browser(verify=app.ca_path)
    browser.cookies.set("__Host-session", session_cookie, domain="127.0.0.1", path="/")
    return user.name in browser.get(app.url("/")).text


def home_account_id(app: AppUnderTest, user: TestUser) -> str:
    return f"{user.oid}.{app.standin.tenant_id}"


def sign_in(app: AppUnderTest, browser: Browser, user: TestUser, path: str = "/login"
            ) -> requests.Response:
    """Start at `path`, pick `user` on the provider's page, and land back in the app."""
    final = browser.sign_in(authorize_page(app, browser, path), user.username)
    assert final.url.startswith(app.base_url), final.url
    return final


def authorize_page(app: AppUnderTest, browser: Browser, path: str = "/login"
                   ) -> requests.Response:
    """Open `path` in the app and arrive on the provider's sign-in page."""
    page = browser.get(app.url(path))
    assert urlsplit(page.url).path.endswith("/authorize"), page.url
    return page


def form_post_page(app: AppUnderTest, browser: Browser, user: TestUser) -> requests.Response:
    """The provider's auto-submitting form_post page, not yet submitted to the app."""
    return browser.sign_in(authorize_page(app, browser), user.username, follow=False)


def post_callback(app: AppUnderTest, browser: Browser, fields: dict[str, str]
                  ) -> requests.Response:
    return browser.post(app.url(app.services.settings.redirect_path), data=fields)


def hidden_fields(page: requests.Response) -> dict[str, str]:
    """The fields the provider's form_post page would send to the app."""
    (form,) = parse_forms(page)
    return form.values


def assert_error_page(response: requests.Response, text: str) -> None:
    assert response.status_code == 400, response.text
    assert text.lower() in response.text.lower()
    assert "Traceback" not in response.text
    assert 'href="/login"' in response.text  # a way to try again


def expire_access_tokens(app: AppUnderTest, user: TestUser) -> None:
    """Make every cached access token of `user` look expired, as time would."""
    with app.services.caches.open(home_account_id(app, user)) as cache:
        for entry in list(cache.search(cache.CredentialType.ACCESS_TOKEN)):
            cache.modify(cache.CredentialType.ACCESS_TOKEN, entry,
                         {"expires_on": str(int(time.time()) - 10)})


def custom_api(app: AppUnderTest) -> str | None:
    return next((name for name in app.services.settings.apis if name != "graph"), None)


def api_not_consented_at_sign_in(app: AppUnderTest) -> ApiSettings:
    name = custom_api(app)
    if name is None or name == app.services.settings.sign_in_api:
        pytest.skip("needs an API beyond the one consented at sign-in")
    return app.services.settings.apis[name]


def api_path(app: AppUnderTest) -> str:
    """The page that calls the sign-in API (Graph's profile when Graph is configured)."""
    if "graph" in app.services.settings.apis:
        return "/profile"
    name = app.services.settings.sign_in_api or custom_api(app)
    if name is None:
        pytest.skip("this app calls no API")
    return f"/api/{name}"


def test_full_sign_in_lands_on_the_page_first_asked_for(app_under_test: AppUnderTest) -> None:
    app = app_under_test
    browser = app.browser()
    home = browser.get(app.url("/"))
    assert home.status_code == 200 and 'href="/login"' in home.text
    assert home.headers["X-Frame-Options"] == "DENY" and home.headers["Cache-Control"] == "no-store"
    path = api_path(app)
    final = sign_in(app, browser, ALICE, path=path)
    assert urlsplit(final.url).path == path
    assert final.status_code == 200, final.text
    assert ALICE.oid in final.text
    assert app.standin.token_calls["authorization_code"] == 1
    # The API stand-in accepted the call only after checking signature, audience and scope.
    (call,) = app.standin.api_calls
    api = app.services.settings.apis[call["api"]]
    assert call["oid"] == ALICE.oid
    assert {s.rsplit("/", 1)[-1] for s in api.scopes} <= set(call["scopes"])
    assert ALICE.name in browser.get(app.url("/")).text
    # The session holds identifiers only; the tokens are in the per-account cache.
    assert app.services.caches.store.get(app.services.caches.key(home_account_id(app, ALICE)))


def test_cookies_have_production_attributes(app_under_test: AppUnderTest) -> None:
    app = app_under_test
    browser = app.browser()
    started = browser.get(app.url("/login"), allow_redirects=False)
    flow = SimpleCookie(started.headers["Set-Cookie"])
    (name, morsel), = flow.items()
    assert name == "__Host-auth-flow"
    assert morsel["secure"] and morsel["httponly"]
    assert morsel["samesite"] == "None"  # it must come back on the provider's cross-site POST
    assert morsel["path"] == "/" and not morsel["domain"]
    assert 0 < int(morsel["max-age"]) <= 600
    final = browser.sign_in(browser.get(started.headers["Location"]), ALICE.username)
    callback = next(r for r in final.history if r.url == app.url(
        app.services.settings.redirect_path))
    raw = callback.raw.headers.getlist("Set-Cookie")
    session_cookie = next(c for c in raw if c.startswith("__Host-session="))
    cleared_flow = next(c for c in raw if c.startswith("__Host-auth-flow="))
    assert "Secure" in session_cookie and "HttpOnly" in session_cookie
    assert "SameSite=Lax" in session_cookie
    assert "Max-Age=0" in cleared_flow or "expires=Thu, 01 Jan 1970" in cleared_flow


def test_sign_in_rotates_the_session_id(app_under_test: AppUnderTest) -> None:
    app = app_under_test
    browser = app.browser()
    sign_in(app, browser, ALICE)
    first = cookie(browser, "__Host-session")
    sign_in(app, browser, ALICE)
    second = cookie(browser, "__Host-session")
    assert first != second
    assert signed_in_with(app, second, ALICE) and not signed_in_with(app, first, ALICE)


def test_callback_errors_show_a_page_not_a_stack_trace(app_under_test: AppUnderTest) -> None:
    app = app_under_test
    # The user declines at the provider: error=access_denied comes back with the state.
    browser = app.browser()
    assert_error_page(browser.decline(authorize_page(app, browser)), "cancelled")

    # State mismatch: the answer is for another sign-in than the one this browser started.
    browser = app.browser()
    fields = hidden_fields(form_post_page(app, browser, ALICE))
    assert_error_page(post_callback(app, browser, {**fields, "state": "forged"}), "does not match")

    # Missing flow cookie: the answer arrives in a browser that never started a sign-in.
    fields = hidden_fields(form_post_page(app, app.browser(), ALICE))
    assert_error_page(post_callback(app, app.browser(), fields), "not started in this browser")

    # Missing code.
    browser = app.browser()
    fields = hidden_fields(form_post_page(app, browser, ALICE))
    assert_error_page(post_callback(app, browser, {"state": fields["state"]}), "no authorization")

    # Replayed code: a second POST of the same answer, flow cookie and all.
    browser = app.browser()
    fields = hidden_fields(form_post_page(app, browser, ALICE))
    flow_cookie = cookie(browser, "__Host-auth-flow")
    assert post_callback(app, browser, fields).status_code == 200
    replay = Browser(verify=app.ca_path)
    replay.cookies.set("__Host-auth-flow", flow_cookie, domain="127.0.0.1", path="/")
    assert_error_page(post_callback(app, replay, fields), "used already")
    assert app.standin.token_calls["authorization_code"] == 2


def test_an_expired_sign_in_is_refused(app_under_test: AppUnderTest,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    app = app_under_test
    browser = app.browser()
    fields = hidden_fields(form_post_page(app, browser, ALICE))
    later = time.time() + app.services.settings.sign_in_timeout_seconds + 1
    monkeypatch.setattr(app.services.auth, "clock", lambda: later)
    assert_error_page(post_callback(app, browser, fields), "expired")
    assert app.standin.token_calls["authorization_code"] == 0


def test_id_token_with_a_wrong_nonce_is_refused(app_under_test: AppUnderTest) -> None:
    """Fails if the app stops checking the nonce (a replayed or injected ID token)."""
    app = app_under_test
    app.standin.faults.add("wrong_nonce")
    browser = app.browser()
    final = browser.sign_in(authorize_page(app, browser), ALICE.username)
    assert_error_page(final, "could not be trusted")
    assert ALICE.name not in browser.get(app.url("/")).text


def test_an_injected_code_is_refused_thanks_to_pkce(app_under_test: AppUnderTest) -> None:
    """Bob's code, posted into Alice's sign-in, fails: it is bound to Bob's PKCE challenge.

    Fails if the app stops sending its PKCE verifier (or the stand-in stops checking it).
    """
    app = app_under_test
    alice, mallory = app.browser(), app.browser()
    alice_fields = hidden_fields(form_post_page(app, alice, ALICE))
    stolen = hidden_fields(form_post_page(app, mallory, BOB))
    injected = {**alice_fields, "code": stolen["code"]}
    assert_error_page(post_callback(app, alice, injected), "used already")
    assert BOB.name not in alice.get(app.url("/")).text
    assert app.standin.token_calls["authorization_code"] == 1


def test_two_users_interleaved_each_see_only_themselves(app_under_test: AppUnderTest) -> None:
    app = app_under_test
    path = api_path(app)
    browsers = {ALICE.oid: app.browser(), BOB.oid: app.browser()}
    sign_in(app, browsers[ALICE.oid], ALICE, path)
    sign_in(app, browsers[BOB.oid], BOB, path)
    other = {ALICE.oid: BOB.oid, BOB.oid: ALICE.oid}
    for _ in range(3):
        for oid, browser in browsers.items():
            page = browser.get(app.url(path))
            assert page.status_code == 200 and oid in page.text and other[oid] not in page.text
    calls = [c for c in app.standin.api_calls]
    assert {c["oid"] for c in calls} == {ALICE.oid, BOB.oid}
    assert sum(c["oid"] == ALICE.oid for c in calls) == sum(c["oid"] == BOB.oid for c in calls)


def test_second_call_is_served_from_the_cache(app_under_test: AppUnderTest) -> None:
    app = app_under_test
    browser = app.browser()
    path = api_path(app)
    sign_in(app, browser, ALICE, path)
    app.standin.reset_counts()
    assert browser.get(app.url(path)).status_code == 200
    assert sum(app.standin.token_calls.values()) == 0
    assert len(app.standin.api_calls) == 1


def test_expired_token_is_refreshed_once_even_under_concurrency(
        app_under_test: AppUnderTest) -> None:
    app = app_under_test
    browser = app.browser()
    path = api_path(app)
    sign_in(app, browser, ALICE, path)

    expire_access_tokens(app, ALICE)
    app.standin.reset_counts()
    assert browser.get(app.url(path)).status_code == 200
    assert app.standin.token_calls == {"refresh_token": 1}

    expire_access_tokens(app, ALICE)
    app.standin.reset_counts()
    with ThreadPoolExecutor(max_workers=20) as pool:
        pages = list(pool.map(lambda _: browser.get(app.url(path)), range(20)))
    assert [p.status_code for p in pages] == [200] * 20
    assert all(ALICE.oid in p.text for p in pages)
    assert app.standin.token_calls == {"refresh_token": 1}


def test_custom_api_asks_for_consent_then_calls_with_the_right_token(
        app_under_test: AppUnderTest) -> None:
    app = app_under_test
    api = api_not_consented_at_sign_in(app)
    name = api.name
    browser = app.browser()
    sign_in(app, browser, ALICE)
    # Not consented at sign-in: the refresh token cannot buy this API's token, so the app sends
    # the user to consent (with a login hint) and brings them back to the page.
    consent = browser.get(app.url(f"/api/{name}"))
    assert "/authorize" in consent.url
    query = parse_qs(urlsplit(consent.url).query)
    assert set(api.scopes) <= set(query["scope"][0].split())
    assert query["login_hint"] == [ALICE.username]
    final = browser.sign_in(consent, ALICE.username)
    assert urlsplit(final.url).path == f"/api/{name}" and final.status_code == 200
    answer = json.loads(html.unescape(find(r'<pre id="response">(.*?)</pre>', final.text)))
    assert answer["oid"] == ALICE.oid
    assert set(answer["scopes"]) == {s.rsplit("/", 1)[1] for s in api.scopes}
    # Now consented: the next call needs no token request at all.
    app.standin.reset_counts()
    assert browser.get(app.url(f"/api/{name}")).status_code == 200
    assert sum(app.standin.token_calls.values()) == 0


def test_pre_consented_api_token_comes_from_the_refresh_token(
        app_under_test: AppUnderTest) -> None:
    app = app_under_test
    api = api_not_consented_at_sign_in(app)
    name = api.name
    app.standin.grant_consent(ALICE.username, app.services.settings.client_id, list(api.scopes))
    browser = app.browser()
    sign_in(app, browser, ALICE)
    app.standin.reset_counts()
    page = browser.get(app.url(f"/api/{name}"))
    assert page.status_code == 200 and ALICE.oid in page.text
    assert app.standin.token_calls == {"refresh_token": 1}
    assert app.standin.authorize_calls == 0


def test_lost_cache_entry_leads_to_exactly_one_sign_in(app_under_test: AppUnderTest) -> None:
    app = app_under_test
    browser = app.browser()
    path = api_path(app)
    sign_in(app, browser, ALICE, path)
    app.services.caches.remove(home_account_id(app, ALICE))
    app.standin.reset_counts()
    page = browser.get(app.url(path))
    assert "/authorize" in page.url  # the session is alive, but the tokens are gone
    final = browser.sign_in(page, ALICE.username)
    assert urlsplit(final.url).path == path and final.status_code == 200
    assert app.standin.authorize_calls == 1


def test_broken_cache_backend_means_sign_in_again_not_a_loop(
        app_under_test: AppUnderTest, monkeypatch: pytest.MonkeyPatch) -> None:
    app = app_under_test
    browser = app.browser()
    path = api_path(app)
    sign_in(app, browser, ALICE, path)

    def broken(*_: object) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(app.services.caches.store, "get", broken)
    monkeypatch.setattr(app.services.caches.store, "set", broken)
    app.standin.reset_counts()
    page = browser.get(app.url(path))
    assert "/authorize" in page.url
    final = browser.sign_in(page, ALICE.username)
    # Signing in again could not help (nothing can be stored): an error page, not a loop.
    assert final.status_code == 403 and "did not give this app access" in final.text
    assert app.standin.authorize_calls == 1


def test_sign_out_forgets_tokens_and_ends_the_session(app_under_test: AppUnderTest) -> None:
    app = app_under_test
    browser = app.browser()
    sign_in(app, browser, ALICE)
    key = app.services.caches.key(home_account_id(app, ALICE))
    assert app.services.caches.store.get(key)
    old_session = cookie(browser, "__Host-session")
    assert signed_in_with(app, old_session, ALICE)

    refused = browser.post(app.url("/logout"), data={"csrf_token": "wrong"})
    assert refused.status_code == 400 and app.services.caches.store.get(key)

    csrf = find(r'name="csrf_token" value="([^"]+)"', browser.get(app.url("/")).text)
    out = browser.post(app.url("/logout"), data={"csrf_token": csrf}, allow_redirects=False)
    assert out.status_code == 302
    target = urlsplit(out.headers["Location"])
    params = parse_qs(target.query)
    assert target.path.endswith("/logout")
    assert params["post_logout_redirect_uri"] == [app.base_url + "/"]
    assert json.loads(base64.urlsafe_b64decode(
        params["id_token_hint"][0].split(".")[1] + "=="))["oid"] == ALICE.oid
    assert app.services.caches.store.get(key) is None
    assert ALICE.name not in browser.get(app.url("/")).text
    assert not signed_in_with(app, old_session, ALICE)


def test_open_redirects_are_refused(app_under_test: AppUnderTest) -> None:
    app = app_under_test
    browser = app.browser()
    final = sign_in(app, browser, ALICE, "/login?next=https://evil.example/")
    assert final.url == app.url("/")
    final = sign_in(app, browser, ALICE, "/login?next=//evil.example/")
    assert final.url == app.url("/")


def test_claims_challenge_is_answered_once(app_under_test: AppUnderTest) -> None:
    app = app_under_test
    name = "graph" if "graph" in app.services.settings.apis else custom_api(app)
    if name is None:
        pytest.skip("this app calls no API")
    path = "/profile" if name == "graph" else f"/api/{name}"
    browser = app.browser()
    sign_in(app, browser, ALICE, path if name == app.services.settings.sign_in_api else "/login")
    claims = {"access_token": {"acrs": {"essential": True, "value": "c1"}}}
    app.standin.demand_claims(name, claims, step_up=False)
    app.standin.reset_counts()
    page = browser.get(app.url(path))
    if "/authorize" in page.url:  # consent for a custom API first
        page = browser.sign_in(page, ALICE.username)
    assert page.status_code == 200 and ALICE.oid in page.text
    assert app.standin.token_calls["refresh_token"] >= 1

    # A step-up challenge cannot be met silently: the user is sent to the provider with claims.
    app.standin.demand_claims(name, {"access_token": {"acrs": {"essential": True,
                                                               "value": "c2"}}}, step_up=True)
    page = browser.get(app.url(path))
    assert "/authorize" in page.url and "claims" in parse_qs(urlsplit(page.url).query)
    final = browser.sign_in(page, ALICE.username)
    assert final.status_code == 200 and ALICE.oid in final.text


def test_any_openid_connect_provider_by_configuration(make_app: Callable[..., AppUnderTest],
                                                      standin: StandIn) -> None:
    """The same code against a generic OIDC issuer: no client_info, the account id is `sub`."""
    app = make_app(AUTHORITY="", OIDC_AUTHORITY=standin.oidc_authority)
    browser = app.browser()
    final = sign_in(app, browser, ALICE, api_path(app))
    assert final.status_code == 200 and ALICE.oid in final.text
    stored = [k for k in [app.services.caches.key(home_account_id(app, ALICE))]
              if app.services.caches.store.get(k)]
    assert stored == []  # not keyed by <oid>.<tid>: a generic provider has no client_info


def test_provider_outage_and_unreachable_api_show_error_pages(
        make_app: Callable[..., AppUnderTest]) -> None:
    closed_port_url = "https://127.0.0.1:9/"  # discard port: nothing listens there
    app = make_app(**{f"API_{name.upper()}_BASE_URL": closed_port_url
                      for name in ("graph", "orders", "todo")})
    browser = app.browser()
    path = api_path(app)
    final = sign_in(app, browser, ALICE, path)
    assert final.status_code == 502 and "could not be reached" in final.text
    assert "Traceback" not in final.text and 'href="/"' in final.text

    # The token service is down while a refresh is needed: an error page, the session survives.
    expire_access_tokens(app, ALICE)
    app.standin.faults.add("token_unavailable")
    page = browser.get(app.url(path))
    assert page.status_code == 502 and "could not be obtained" in page.text
    assert "Traceback" not in page.text
    assert ALICE.name in browser.get(app.url("/")).text
