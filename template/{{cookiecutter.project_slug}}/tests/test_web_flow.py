"""Behaviour of the running app, end to end over real HTTP, against the identity stand-in.

Only the `app_under_test` / `make_app` fixtures know which framework serves the app, so this
module is the behavioural contract every adapter must pass unchanged. The test browser obeys
browser cookie rules (SameSite, Secure, __Host-), and the provider is on another site than the
app, as with a real tenant. No test names an API of this app: they read the app's settings.
"""

from __future__ import annotations

import base64
import html
import importlib.util
import json
import logging
import re
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from {{ cookiecutter.package_name }}.core.settings import ApiSettings, Settings
from {{ cookiecutter.package_name }}.core.token_cache import AccountCaches
from {{ cookiecutter.package_name }}.core.web import flow_cookie, page_sign_in
from {{ cookiecutter.package_name }}.core.web import session_cookie as session_cookie_spec

from devprovider import DEFAULT_USERS, StandIn, TestUser
from tests.browser import Browser, parse_forms
from tests.conftest import AppUnderTest, page_of, user_apis

ALICE, BOB, CAROL = DEFAULT_USERS[0], DEFAULT_USERS[1], DEFAULT_USERS[2]


# ------------------------------------------------------------------------------ helpers
def oidc_app(app: AppUnderTest) -> bool:
    return bool(app.services.settings.oidc_authority)


def home_account_id(app: AppUnderTest, user: TestUser) -> str:
    return account_id(app.standin, app.services.settings, user)


def account_id(standin: StandIn, settings: Settings, user: TestUser) -> str:
    """MSAL's home account id: `<oid>.<tid>` from Entra's client_info, else the ID token's
    (pairwise) `sub`, as a standard OpenID Connect provider sends no client_info."""
    if settings.oidc_authority:
        return standin._sub(user, settings.client_id)
    return f"{user.oid}.{standin.tenant_id}"


def session_cookie(app: AppUnderTest) -> str:
    return session_cookie_spec(app.services.settings).name


def cookie(browser: Browser, name: str) -> str:
    value = browser.cookies.get(name)
    assert value, f"no {name} cookie"
    return value


def flow_cookies(app: AppUnderTest, browser: Browser) -> dict[str, str]:
    """The browser's flow cookies (one per sign-in in progress), by name."""
    prefix = flow_cookie(app.services.settings).name + "-"
    return {c.name: c.value for c in browser.cookies if c.name.startswith(prefix)}


def plant(app: AppUnderTest, browser: Browser, name: str, value: str) -> None:
    """Give `browser` a cookie of the app's site, with the attributes the app sets on it."""
    flow = name.startswith(flow_cookie(app.services.settings).name)
    browser.cookies.set(name, value, domain=urlsplit(app.base_url).hostname or "", path="/",
                        secure=app.mode == "https", httponly=True,
                        samesite="None" if flow and app.mode == "https" else "Lax")


def find(pattern: str, text: str) -> str:
    match = re.search(pattern, text, re.S)
    assert match, f"{pattern!r} not found in:\n{text[:2000]}"
    return match[1]


def signed_in_with(app: AppUnderTest, session_value: str, user: TestUser) -> bool:
    """Whether a fresh browser presenting only this session cookie is signed in as `user`."""
    browser = app.browser()
    plant(app, browser, session_cookie(app), session_value)
    return user.name in browser.get(app.url("/")).text


def at_provider(app: AppUnderTest, page: requests.Response, endpoint: str = "/authorize"
                ) -> bool:
    """Whether `page` is the provider's sign-in page (or, with `endpoint="/logout"`, its
    sign-out page), on another site than the app."""
    url = urlsplit(page.url)
    return url.netloc != urlsplit(app.base_url).netloc and url.path.endswith(endpoint)


def visit(app: AppUnderTest, browser: Browser, path: str, user: TestUser, *,
          round_trips: int | None = 1) -> requests.Response:
    """Open `path` and, as often as the app sends the browser to the provider, pick `user`
    there. Asserts the number of provider round trips (None: any number up to 3)."""
    page = browser.get(app.url(path))
    trips = 0
    while at_provider(app, page):
        trips += 1
        assert trips <= 3, f"sign-in loop: {[r.url for r in browser.history[-12:]]}"
        page = browser.sign_in(page, user.username)
    if round_trips is not None:
        assert trips == round_trips, f"{trips} provider round trips, expected {round_trips}"
    assert page.url.startswith(app.base_url), page.url
    return page


def sign_in(app: AppUnderTest, browser: Browser, user: TestUser, path: str = "/login"
            ) -> requests.Response:
    """Start at `path`, pick `user` on the provider's page once, and land back in the app."""
    return visit(app, browser, path, user, round_trips=1)


def authorize_page(app: AppUnderTest, browser: Browser, path: str = "/login"
                   ) -> requests.Response:
    """Open `path` in the app and arrive on the provider's sign-in page."""
    page = browser.get(app.url(path))
    assert at_provider(app, page), page.url
    return page


def provider_answer(app: AppUnderTest, browser: Browser, user: TestUser
                    ) -> requests.Response:
    """The provider's answer (its form_post page), not yet delivered to the app."""
    return browser.sign_in(authorize_page(app, browser), user.username, follow=False)


def post_callback(app: AppUnderTest, browser: Browser, fields: dict[str, str], *,
                  initiator: str | None = None, **kwargs: Any) -> requests.Response:
    """Deliver an answer to the redirect URI the way the provider's form_post page does: a
    POST from the provider's site (pass `initiator`) or, by default, a same-site one."""
    return browser.post(app.url(app.services.settings.redirect_path), data=fields,
                        initiator=initiator, **kwargs)


def hidden_fields(page: requests.Response) -> dict[str, str]:
    """The fields the provider's form_post page would send to the app."""
    (form,) = parse_forms(page)
    return form.values


def assert_error_page(response: requests.Response, text: str, status: int = 400) -> None:
    assert response.status_code == status, response.text
    assert text.lower() in html.unescape(response.text).lower(), response.text
    assert "Traceback" not in response.text
    assert re.search(r'href="/(login[^"]*)?"', response.text)  # a way to go on


def expire_access_tokens(app: AppUnderTest, user: TestUser) -> None:
    """Make every cached access token of `user` look expired, as time would."""
    expire_access_tokens_in(app.services.caches, home_account_id(app, user))


def expire_access_tokens_in(caches: AccountCaches, home_account_id: str) -> None:
    """The same in any app's store, as its AccountCaches (an app in another process: the
    test's own AccountCaches on that app's store)."""
    with caches.open(home_account_id) as cache:
        for entry in list(cache.search(cache.CredentialType.ACCESS_TOKEN)):
            cache.modify(cache.CredentialType.ACCESS_TOKEN, entry,
                         {"expires_on": str(int(time.time()) - 10)})


def sign_in_api_page(app: AppUnderTest) -> str:
    """A page that calls the API consented at sign-in (any API when none is)."""
    settings = app.services.settings
    name = settings.sign_in_api or next(iter(user_apis(settings.apis)), None)
    if name is None:
        pytest.skip("this app calls no API")
    return page_of(name)


def api_not_consented_at_sign_in(app: AppUnderTest) -> ApiSettings:
    settings = app.services.settings
    name = next((n for n in sorted(user_apis(settings.apis)) if n != settings.sign_in_api), None)
    if name is None:
        pytest.skip("needs an API beyond the one consented at sign-in")
    return settings.apis[name]


def sent_to_consent(app: AppUnderTest, user: TestUser
                    ) -> tuple[ApiSettings, Browser, requests.Response]:
    """`user` signs in, then opens the page of an API not consented at sign-in and is sent to
    the provider: (that API, the browser, the provider's page)."""
    api = api_not_consented_at_sign_in(app)
    browser = app.browser()
    sign_in(app, browser, user)
    consent = browser.get(app.url(page_of(api.name)))
    assert at_provider(app, consent)
    return api, browser, consent


def assert_scopes_granted(api: ApiSettings, token_scopes: list[str]) -> None:
    """The access token an API accepted carries the API's scopes (for `.default`: the
    permissions granted, whatever they are named)."""
    wanted = {scope.rsplit("/", 1)[-1] for scope in api.scopes}
    if wanted == {".default"}:
        assert token_scopes, "a .default token with no scopes"
    else:
        assert wanted <= set(token_scopes), (wanted, token_scopes)


def sign_out_form(app: AppUnderTest, browser: Browser) -> dict[str, str]:
    """The fields of the sign-out form on the home page, as the browser would send them."""
    forms = parse_forms(browser.get(app.url("/")))
    return next(form.values for form in forms if form.action.endswith("/logout"))


def cached(app: AppUnderTest, user: TestUser) -> str | None:
    entry = app.services.caches.store.get(app.services.caches.key(home_account_id(app, user)))
    return entry.value if entry else None


def grants(app: AppUnderTest, grant_type: str) -> int:
    """Successful grants of a type (MSAL may try several refresh tokens for one refresh)."""
    return app.standin.token_grants[grant_type]


# ------------------------------------------------------------------------------ sign-in
def test_cold_start_on_an_api_page_is_one_round_trip(app_in_each_mode: AppUnderTest) -> None:
    """A signed-out user opening any API page signs in once, with that API's scopes, and lands
    on the page: in https mode (form_post) and in local development mode (query), each with the
    provider on another site."""
    app = app_in_each_mode
    browser = app.browser()
    home = browser.get(app.url("/"))
    assert home.status_code == 200 and 'href="/login"' in home.text
    assert home.headers["X-Frame-Options"] == "DENY" and home.headers["Cache-Control"] == "no-store"
    if not user_apis(app.services.settings.apis):
        pytest.skip("this app calls no API")
    for number, name in enumerate(sorted(user_apis(app.services.settings.apis))):
        user = DEFAULT_USERS[number % len(DEFAULT_USERS)]
        browser = app.browser()
        app.standin.reset_counts()
        final = visit(app, browser, page_of(name), user, round_trips=1)
        assert urlsplit(final.url).path == page_of(name)
        assert final.status_code == 200, final.text
        assert user.oid in final.text
        assert app.standin.authorize_calls == 1 and grants(app, "authorization_code") == 1
        # The API stand-in accepted the call only after checking signature, audience and scope.
        (call,) = app.standin.api_calls
        assert call["api"] == name and call["oid"] == user.oid
        assert_scopes_granted(app.services.settings.apis[name], call["scopes"])
        assert user.name in browser.get(app.url("/")).text
        # The session holds identifiers only; the tokens are in the per-account cache.
        assert cached(app, user)


def test_local_development_mode_answers_by_query_with_lax_cookies(
        make_app: Callable[..., AppUnderTest]) -> None:
    """On http://localhost the flow cookie cannot be Secure (Safari drops it) and a Lax cookie
    is withheld from a cross-site POST: the answer must come as a top-level GET."""
    app = make_app(mode="local")
    browser = app.browser(profile="safari")
    started = browser.get(app.url("/login"), allow_redirects=False)
    (name, morsel), = SimpleCookie(started.headers["Set-Cookie"]).items()
    assert name.startswith("auth-flow-")
    assert morsel["samesite"] == "Lax" and not morsel["secure"] and morsel["httponly"]
    query = parse_qs(urlsplit(started.headers["Location"]).query)
    assert query["response_mode"] == ["query"]
    final = browser.sign_in(browser.get(started.headers["Location"]), ALICE.username)
    assert final.url == app.url("/") and ALICE.name in final.text
    assert not flow_cookies(app, browser)  # single use


def test_cookies_have_production_attributes(app_under_test: AppUnderTest) -> None:
    app = app_under_test
    browser = app.browser()
    started = browser.get(app.url("/login"), allow_redirects=False)
    assert parse_qs(urlsplit(started.headers["Location"]).query)["response_mode"] == [
        "form_post"]
    (name, morsel), = SimpleCookie(started.headers["Set-Cookie"]).items()
    assert name.startswith("__Host-auth-flow-")
    assert morsel["secure"] and morsel["httponly"]
    assert morsel["samesite"] == "None"  # it must come back on the provider's cross-site POST
    assert morsel["path"] == "/" and not morsel["domain"]
    assert 0 < int(morsel["max-age"]) <= 600
    final = browser.sign_in(browser.get(started.headers["Location"]), ALICE.username)
    callback = next(r for r in [*final.history, final]
                    if r.url == app.url(app.services.settings.redirect_path))
    raw = callback.raw.headers.getlist("Set-Cookie")
    session_set = next(c for c in raw if c.startswith("__Host-session="))
    cleared_flow = next(c for c in raw if c.startswith(name + "="))
    assert "Secure" in session_set and "HttpOnly" in session_set
    assert "SameSite=Lax" in session_set
    assert "Max-Age=0" in cleared_flow or "expires=Thu, 01 Jan 1970" in cleared_flow
    assert "Secure" in cleared_flow  # or the browser ignores the deletion of a __Host- cookie
    assert not flow_cookies(app, browser)


def test_two_tabs_signing_in_at_once_both_complete(app_in_each_mode: AppUnderTest) -> None:
    app = app_in_each_mode
    browser = app.browser()
    first, second = authorize_page(app, browser, "/login?next=/one"), authorize_page(
        app, browser, "/login?next=/two")
    assert len(flow_cookies(app, browser)) == 2
    done_second = browser.sign_in(second, ALICE.username)
    assert urlsplit(done_second.url).path == "/two"
    done_first = browser.sign_in(first, ALICE.username)
    assert urlsplit(done_first.url).path == "/one"
    assert grants(app, "authorization_code") == 2
    assert ALICE.name in browser.get(app.url("/")).text
    # Flow cookies stay bounded however many sign-ins are started and abandoned.
    for number in range(10):
        authorize_page(app, browser, f"/login?next=/{number}")
    assert 1 <= len(flow_cookies(app, browser)) <= 4


def test_a_planted_session_id_never_becomes_signed_in(app_in_each_mode: AppUnderTest) -> None:
    """Session fixation: a session id planted before sign-in is not the one signed in."""
    app = app_in_each_mode
    browser = app.browser()
    plant(app, browser, session_cookie(app), "planted-by-an-attacker")
    sign_in(app, browser, ALICE)
    signed_in = cookie(browser, session_cookie(app))
    assert signed_in != "planted-by-an-attacker"
    assert signed_in_with(app, signed_in, ALICE)
    assert not signed_in_with(app, "planted-by-an-attacker", ALICE)
    # Each sign-in gets a new session id and ends the one before it, although over https the
    # provider's answer (a cross-site POST) arrives without the session cookie.
    sign_in(app, browser, ALICE)
    assert cookie(browser, session_cookie(app)) != signed_in
    assert signed_in_with(app, cookie(browser, session_cookie(app)), ALICE)
    assert not signed_in_with(app, signed_in, ALICE)


def test_callback_errors_show_a_page_not_a_stack_trace(app_under_test: AppUnderTest) -> None:
    app = app_under_test
    # The user declines at the provider: error=access_denied comes back with the state.
    browser = app.browser()
    assert_error_page(browser.decline(authorize_page(app, browser)), "cancelled")

    # State mismatch: the answer is for another sign-in than the one this browser started.
    browser = app.browser()
    answer = provider_answer(app, browser, ALICE)
    fields = hidden_fields(answer)
    assert_error_page(post_callback(app, browser, {**fields, "state": "forged"},
                                    initiator=answer.url), "does not match")

    # Missing flow cookie: the answer arrives in a browser that never started a sign-in.
    answer = provider_answer(app, app.browser(), ALICE)
    assert_error_page(post_callback(app, app.browser(), hidden_fields(answer),
                                    initiator=answer.url), "not started in this browser")

    # Missing code.
    browser = app.browser()
    answer = provider_answer(app, browser, ALICE)
    assert_error_page(post_callback(app, browser, {"state": hidden_fields(answer)["state"]},
                                    initiator=answer.url), "no authorization")

    # Replayed code: a second POST of the same answer, flow cookie and all.
    browser = app.browser()
    answer = provider_answer(app, browser, ALICE)
    fields = hidden_fields(answer)
    (name, value), = flow_cookies(app, browser).items()
    assert post_callback(app, browser, fields, initiator=answer.url).status_code == 200
    replay = app.browser()
    plant(app, replay, name, value)
    assert_error_page(post_callback(app, replay, fields, initiator=answer.url), "used already")
    assert app.standin.token_calls["authorization_code"] == 2
    assert grants(app, "authorization_code") == 1


def test_the_flow_cookie_hides_its_secrets_and_a_changed_one_is_refused(
        app_under_test: AppUnderTest) -> None:
    """The flow cookie carries the PKCE verifier and the nonce: sealed (encrypted and
    authenticated), not only signed. Nothing of it decodes to text; a changed one is refused."""
    app = app_under_test
    browser = app.browser()
    page = authorize_page(app, browser)
    nonce = parse_qs(urlsplit(page.url).query)["nonce"][0]
    (name, value), = flow_cookies(app, browser).items()
    for part in value.split("."):
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        try:  # itsdangerous compresses with zlib; the bytes of a sealed value are random
            inflated = zlib.decompressobj().decompress(raw)
        except zlib.error:
            inflated = b""
        for candidate in (raw, inflated):
            assert b"code_verifier" not in candidate and b"return_to" not in candidate
    answer = browser.sign_in(page, ALICE.username, follow=False)
    flipped = value[:-2] + ("A" if value[-2] != "A" else "B") + value[-1]
    plant(app, browser, name, flipped)
    assert_error_page(post_callback(app, browser, hidden_fields(answer), initiator=answer.url),
                      "could not be verified")
    assert app.standin.token_calls["authorization_code"] == 0
    assert nonce not in value

    # Its size stays well under the 4 KB a browser keeps, whatever the page to come back to.
    longest = app.browser()
    assert at_provider(app, longest.get(app.url("/login?" + urlencode(
        {"next": "/" + "%" * 5000}))))
    assert at_provider(app, longest.get(app.url("/login?next=/" + "a" * 1023)))
    assert max(len(v) for v in flow_cookies(app, longest).values()) < 3000


def test_an_expired_sign_in_is_refused(app_under_test: AppUnderTest,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    app = app_under_test
    browser = app.browser()
    answer = provider_answer(app, browser, ALICE)
    later = time.time() + app.services.settings.sign_in_timeout_seconds + 1
    monkeypatch.setattr(app.services.auth, "clock", lambda: later)
    assert_error_page(post_callback(app, browser, hidden_fields(answer), initiator=answer.url),
                      "expired")
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
    answer = provider_answer(app, alice, ALICE)
    stolen = hidden_fields(provider_answer(app, mallory, BOB))
    injected = {**hidden_fields(answer), "code": stolen["code"]}
    assert_error_page(post_callback(app, alice, injected, initiator=answer.url), "used already")
    assert BOB.name not in alice.get(app.url("/")).text
    assert grants(app, "authorization_code") == 0


def test_only_allowed_tenants_sign_in(make_app: Callable[..., AppUnderTest],
                                      standin: StandIn) -> None:
    """ALLOWED_TENANT_IDS (multi-tenant Entra apps): other tenants' accounts are refused after
    redemption, and nothing of theirs is kept."""
    entra = {"AUTHORITY": standin.authority, "OIDC_AUTHORITY": ""}
    app = make_app(ALLOWED_TENANT_IDS="72f988bf-86f1-41af-91ab-2d7cd011db47", **entra)
    browser = app.browser()
    # Entra gets the app's client capability: it can answer claims challenges (CAE).
    claims = parse_qs(urlsplit(authorize_page(app, browser).url).query)["claims"][0]
    assert json.loads(claims)["access_token"]["xms_cc"]["values"] == ["cp1"]
    final = browser.sign_in(authorize_page(app, browser), ALICE.username)
    assert_error_page(final, "cannot sign in to this app")
    assert ALICE.name not in browser.get(app.url("/")).text
    assert cached(app, ALICE) is None

    app = make_app(ALLOWED_TENANT_IDS=f"72f988bf-86f1-41af-91ab-2d7cd011db47 "
                                      f"{standin.tenant_id}", **entra)
    browser = app.browser()
    assert ALICE.name in sign_in(app, browser, ALICE).text


# ------------------------------------------------------------------------------ tokens and APIs
def test_two_users_interleaved_each_see_only_themselves(app_under_test: AppUnderTest) -> None:
    app = app_under_test
    path = sign_in_api_page(app)
    browsers = {ALICE.oid: app.browser(), BOB.oid: app.browser()}
    visit(app, browsers[ALICE.oid], path, ALICE)
    visit(app, browsers[BOB.oid], path, BOB)
    other = {ALICE.oid: BOB.oid, BOB.oid: ALICE.oid}
    for _ in range(3):
        for oid, browser in browsers.items():
            page = browser.get(app.url(path))
            assert page.status_code == 200 and oid in page.text and other[oid] not in page.text
    calls = list(app.standin.api_calls)
    assert {c["oid"] for c in calls} == {ALICE.oid, BOB.oid}
    assert sum(c["oid"] == ALICE.oid for c in calls) == sum(c["oid"] == BOB.oid for c in calls)


def test_second_call_is_served_from_the_cache(app_under_test: AppUnderTest) -> None:
    app = app_under_test
    browser = app.browser()
    path = sign_in_api_page(app)
    visit(app, browser, path, ALICE)
    app.standin.reset_counts()
    assert browser.get(app.url(path)).status_code == 200
    assert sum(app.standin.token_calls.values()) == 0
    assert len(app.standin.api_calls) == 1


def test_a_token_served_from_an_unchanged_cache_is_not_served_past_its_expiry(
        app_under_test: AppUnderTest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages reuse what MSAL served from an account's unchanged cache copy; when time passes
    the token's expiry and nothing in the store changed, the next page still gets a new token
    (MSAL's clock and the provider's move on; the app's own clock is not needed for this)."""
    app = app_under_test
    browser = app.browser()
    path = sign_in_api_page(app)
    visit(app, browser, path, ALICE)
    for _ in range(2):  # served from the cache, and remembered as served
        assert browser.get(app.url(path)).status_code == 200
    app.standin.reset_counts()
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 2 * 3600)  # past any token
    page = browser.get(app.url(path))
    assert page.status_code == 200 and ALICE.oid in page.text, page.text
    assert grants(app, "refresh_token") == 1


def test_expired_token_is_refreshed_once_even_under_concurrency(
        app_under_test: AppUnderTest) -> None:
    app = app_under_test
    browser = app.browser()
    path = sign_in_api_page(app)
    visit(app, browser, path, ALICE)

    expire_access_tokens(app, ALICE)
    app.standin.reset_counts()
    assert browser.get(app.url(path)).status_code == 200
    assert grants(app, "refresh_token") == 1

    expire_access_tokens(app, ALICE)
    app.standin.reset_counts()
    with ThreadPoolExecutor(max_workers=20) as pool:
        pages = list(pool.map(lambda _: browser.get(app.url(path)), range(20)))
    assert [p.status_code for p in pages] == [200] * 20
    assert all(ALICE.oid in p.text for p in pages)
    assert grants(app, "refresh_token") == 1
    assert sum(app.standin.token_grants.values()) == 1


@pytest.mark.parametrize("provider", ["entra", "oidc"])
def test_default_scope_tokens_come_from_the_cache_and_refresh_once(
        make_app: Callable[..., AppUnderTest], standin: StandIn, provider: str) -> None:
    """`<resource>/.default`: the provider answers with the scopes it granted, never ".default",
    so a naive lookup would never hit the cache; and a strict provider refuses to refresh for
    the named scopes what it granted as ".default"."""
    probe = make_app()
    name = (probe.services.settings.sign_in_api
            or next(iter(user_apis(probe.services.settings.apis)), None))
    if name is None:
        pytest.skip("this app calls no API")
    where = ({"AUTHORITY": standin.authority, "OIDC_AUTHORITY": ""} if provider == "entra"
             else {"AUTHORITY": "", "OIDC_AUTHORITY": standin.oidc_authority})
    resource = probe.services.settings.apis[name].resource
    app = make_app(**where, **{f"API_{name.upper()}_SCOPES": f"{resource}/.default"})
    browser = app.browser()
    visit(app, browser, page_of(name), ALICE)
    app.standin.reset_counts()
    assert browser.get(app.url(page_of(name))).status_code == 200
    assert sum(app.standin.token_calls.values()) == 0
    expire_access_tokens(app, ALICE)
    page = browser.get(app.url(page_of(name)))
    assert page.status_code == 200 and ALICE.oid in page.text
    assert grants(app, "refresh_token") == 1
    app.standin.reset_counts()
    assert browser.get(app.url(page_of(name))).status_code == 200
    assert sum(app.standin.token_calls.values()) == 0


def test_an_api_not_consented_at_sign_in_takes_one_round_trip(
        app_under_test: AppUnderTest) -> None:
    """Entra: the refresh token cannot buy a token without consent (consent_required); a strict
    OpenID Connect provider does not widen a refresh token at all (invalid_scope). Either way the
    user goes to the provider once, with a login hint, and comes back to the page."""
    app = app_under_test
    api, browser, consent = sent_to_consent(app, ALICE)
    query = parse_qs(urlsplit(consent.url).query)
    assert set(api.scopes) <= set(query["scope"][0].split())
    assert query["login_hint"] == [ALICE.username]
    final = browser.sign_in(consent, ALICE.username)
    assert urlsplit(final.url).path == page_of(api.name) and final.status_code == 200
    if api.name != "graph":
        answer = json.loads(html.unescape(find(r'<pre id="response">(.*?)</pre>', final.text)))
        assert answer["oid"] == ALICE.oid
        assert_scopes_granted(api, answer["scopes"])
    # Now granted: the next call needs no token request at all.
    app.standin.reset_counts()
    assert browser.get(app.url(page_of(api.name))).status_code == 200
    assert sum(app.standin.token_calls.values()) == 0


def test_standard_oidc_provider_gets_one_round_trip_per_api(
        make_app: Callable[..., AppUnderTest], standin: StandIn) -> None:
    """A strict OpenID Connect provider answers invalid_scope to a refresh for scopes it did not
    grant with that refresh token: the app asks the user once per API, never loops."""
    app = make_app(AUTHORITY="", OIDC_AUTHORITY=standin.oidc_authority)
    names = sorted(user_apis(app.services.settings.apis))
    if len(names) < 2:
        pytest.skip("needs two APIs")
    browser = app.browser()
    visit(app, browser, page_of(names[0]), ALICE, round_trips=1)
    app.standin.reset_counts()
    final = visit(app, browser, page_of(names[1]), ALICE, round_trips=1)
    assert final.status_code == 200 and ALICE.oid in final.text
    assert app.standin.token_calls["refresh_token"] >= 1 and grants(app, "refresh_token") == 0
    assert grants(app, "authorization_code") == 1


def test_pre_consented_api_token_comes_from_the_refresh_token(
        app_under_test: AppUnderTest) -> None:
    app = app_under_test
    if oidc_app(app):
        pytest.skip("a standard OpenID Connect provider never widens a refresh token")
    api = api_not_consented_at_sign_in(app)
    app.standin.grant_consent(ALICE.username, app.services.settings.client_id, list(api.scopes))
    browser = app.browser()
    sign_in(app, browser, ALICE)
    app.standin.reset_counts()
    page = browser.get(app.url(page_of(api.name)))
    assert page.status_code == 200 and ALICE.oid in page.text
    assert app.standin.authorize_calls == 0
    # One refresh; none for named Graph scopes after a sign-in that asked for no API, because
    # Entra then answers with a Graph token carrying every consented Graph permission. Graph's
    # `.default` still takes one: it means every permission of the app registration, which
    # that token need not carry.
    from_sign_in = (api.name == "graph" and not app.services.settings.sign_in_scopes
                    and not api.scopes[0].endswith("/.default"))
    assert grants(app, "refresh_token") == (0 if from_sign_in else 1)


def test_a_round_trip_answered_by_another_account_does_not_switch_users(
        app_under_test: AppUnderTest) -> None:
    """Carol, sent to consent, picks Alice at the provider: she stays Carol, is offered to sign
    in as Alice, and nothing of Alice's is kept."""
    app = app_under_test
    _, browser, consent = sent_to_consent(app, CAROL)
    final = browser.sign_in(consent, ALICE.username)
    assert_error_page(final, f"signed in as {CAROL.username}")
    offer = find(r'href="(/login\?[^"]+)"', final.text)
    assert parse_qs(urlsplit(html.unescape(offer)).query)["login_hint"] == [ALICE.username]
    home = browser.get(app.url("/")).text
    assert CAROL.name in home and ALICE.name not in home
    assert cached(app, ALICE) is None


def test_lost_cache_entry_leads_to_exactly_one_sign_in(app_under_test: AppUnderTest) -> None:
    app = app_under_test
    browser = app.browser()
    path = sign_in_api_page(app)
    visit(app, browser, path, ALICE)
    app.services.caches.remove(home_account_id(app, ALICE))
    app.standin.reset_counts()
    final = visit(app, browser, path, ALICE, round_trips=1)  # the session lives, tokens are gone
    assert urlsplit(final.url).path == path and final.status_code == 200
    assert app.standin.authorize_calls == 1


def test_a_round_trip_that_does_not_help_is_not_repeated(
        app_under_test: AppUnderTest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A token cache that silently drops what it is given: the sign-in comes back without a
    token, so does the one round trip for the API's token that follows, and then the page says
    so instead of sending the user round again. (When the page's API is not the one consented
    at sign-in, the sign-in itself is that round trip.)"""
    app = app_under_test
    path = sign_in_api_page(app)
    name = next(n for n in app.services.settings.apis if page_of(n) == path)
    _, purpose = page_sign_in(app.services.settings, name)
    trips = 1 if purpose else 2
    monkeypatch.setattr(app.services.caches.store, "set", lambda key, value: None)
    browser = app.browser()
    app.standin.reset_counts()
    final = visit(app, browser, path, ALICE, round_trips=trips)
    assert_error_page(final, "did not give this app access", status=403)
    assert app.standin.authorize_calls == trips


@pytest.mark.parametrize("encoding", ["base64", "json"])
def test_claims_challenge_is_answered_once(app_under_test: AppUnderTest, encoding: str) -> None:
    app = app_under_test
    path = sign_in_api_page(app)
    name = next(n for n in app.services.settings.apis if page_of(n) == path)
    if encoding == "json" and name == "graph" and importlib.util.find_spec(
            "{{ cookiecutter.package_name }}.core.sdk"):
        pytest.skip("Graph sends its claims in base64, the only form its SDK reads (kiota's "
                    "HttpxRequestAdapter base64-decodes them): raw JSON is other APIs'")
    browser = app.browser()
    visit(app, browser, path, ALICE)
    claims = {"access_token": {"acrs": {"essential": True, "value": "c1"}}}
    app.standin.demand_claims(name, claims, step_up=False, encoding=encoding)
    app.standin.reset_counts()
    page = browser.get(app.url(path))
    assert page.status_code == 200 and ALICE.oid in page.text
    assert grants(app, "refresh_token") == 1
    # Refused once with the challenge, then accepted with the new token.
    assert len(app.standin.api_challenges) == 1 and len(app.standin.api_calls) == 1

    # A step-up challenge cannot be met silently: the user is sent to the provider with claims.
    app.standin.demand_claims(name, {"access_token": {"acrs": {"essential": True,
                                                               "value": "c2"}}},
                              step_up=True, encoding=encoding)
    page = browser.get(app.url(path))
    query = parse_qs(urlsplit(page.url).query)
    assert at_provider(app, page) and "claims" in query
    # As Microsoft.Identity.Web does: the user's kind of account, so Entra goes straight to it.
    assert query.get("domain_hint") == (["organizations"] if app.services.settings.authority
                                        else None)
    final = browser.sign_in(page, ALICE.username)
    assert final.status_code == 200 and ALICE.oid in final.text


def test_azure_region_warning_is_not_logged(app_under_test: AppUnderTest,
                                            monkeypatch: pytest.MonkeyPatch,
                                            caplog: pytest.LogCaptureFixture) -> None:
    """On Azure hosts REGION_NAME is set; MSAL would warn on every client build unless told
    that no region is used."""
    app = app_under_test
    monkeypatch.setenv("REGION_NAME", "westus2")
    browser = app.browser()
    with caplog.at_level(logging.WARNING, logger="msal"):
        visit(app, browser, sign_in_api_page(app), ALICE)
        browser.get(app.url(sign_in_api_page(app)))
    assert not [r for r in caplog.records if "egion" in r.getMessage()]


# ------------------------------------------------------------------------------ sign-out
def test_sign_out_forgets_tokens_and_ends_the_session(app_in_each_mode: AppUnderTest) -> None:
    app = app_in_each_mode
    browser = app.browser()
    sign_in(app, browser, ALICE)
    assert cached(app, ALICE)
    old_session = cookie(browser, session_cookie(app))
    assert signed_in_with(app, old_session, ALICE)

    # The sign-out form with a token that is not the session's (any CSRF token of the
    # framework's own is kept, so that it is the app's check that refuses).
    forged = {**sign_out_form(app, browser), "csrf_token": "wrong"}
    refused = browser.post(app.url("/logout"), data=forged)
    assert refused.status_code == 400 and cached(app, ALICE)

    # The page's own sign-out form (the browser applies the page's CSP form-action to it and
    # to the redirect to the provider that follows).
    back = browser.submit_form(browser.get(app.url("/")),
                               match=lambda form: form.action.endswith("/logout"))
    assert cached(app, ALICE) is None
    if at_provider(app, back, "/logout"):
        # Without the login_hint optional claim Entra asks which account to sign out of.
        back = browser.submit_form(back, match=lambda form: form.get("logout_hint") is not None)
    # The provider accepts the post-logout target (a registered redirect URI) and sends the
    # browser back to the app, signed out.
    assert back.url == app.url("/") and ALICE.name not in back.text
    assert not signed_in_with(app, old_session, ALICE)


def test_sign_out_sends_what_each_provider_documents(make_app: Callable[..., AppUnderTest],
                                                     standin: StandIn) -> None:
    def sign_out_url(app: AppUnderTest) -> dict[str, list[str]]:
        browser = app.browser()
        sign_in(app, browser, ALICE)
        out = browser.post(app.url("/logout"), data=sign_out_form(app, browser),
                           allow_redirects=False)
        return parse_qs(urlsplit(out.headers["Location"]).query)

    # Entra: post_logout_redirect_uri, plus logout_hint when the ID token has login_hint.
    entra = {"AUTHORITY": standin.authority, "OIDC_AUTHORITY": ""}
    params = sign_out_url(make_app(optional_claims=("login_hint",), **entra))
    assert set(params) == {"post_logout_redirect_uri", "logout_hint"}
    assert params["logout_hint"][0] and params["post_logout_redirect_uri"][0].endswith("/")
    assert set(sign_out_url(make_app(**entra))) == {"post_logout_redirect_uri"}

    # OpenID Connect RP-initiated logout: id_token_hint, client_id, post_logout_redirect_uri.
    app = make_app(AUTHORITY="", OIDC_AUTHORITY=standin.oidc_authority)
    params = sign_out_url(app)
    assert set(params) == {"post_logout_redirect_uri", "id_token_hint", "client_id"}
    assert params["client_id"] == [app.services.settings.client_id]
    payload = params["id_token_hint"][0].split(".")[1]
    assert json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))[
        "sub"] == home_account_id(app, ALICE)


def test_open_redirects_are_refused(app_under_test: AppUnderTest) -> None:
    app = app_under_test
    browser = app.browser()
    final = sign_in(app, browser, ALICE, "/login?next=https://evil.example/")
    assert final.url == app.url("/")
    final = sign_in(app, browser, ALICE, "/login?next=//evil.example/")
    assert final.url == app.url("/")


def test_unknown_pages_and_wrong_methods_get_the_error_page(app_under_test: AppUnderTest
                                                             ) -> None:
    """The framework's own errors (no such page or file, a method the page does not take) are
    the app's error page, with its headers, in every framework."""
    app = app_under_test
    browser = app.browser()
    for path in ("/no-such-page", "/api/no-such-api", "/static/no-such-file.css"):
        page = browser.get(app.url(path))
        assert_error_page(page, "There is no page at this address", status=404)
        assert page.headers["X-Frame-Options"] == "DENY", path
    wrong = browser.get(app.url("/logout"))
    assert_error_page(wrong, "does not take that kind of request", status=405)
    assert "POST" in wrong.headers["Allow"]
    assert browser.get(app.url("/static/style.css")).status_code == 200


# ------------------------------------------------------------------------------ other providers
def test_any_openid_connect_provider_by_configuration(make_app: Callable[..., AppUnderTest],
                                                      standin: StandIn) -> None:
    """The same code against a generic OIDC issuer: no client_info, the account id is `sub`."""
    app = make_app(AUTHORITY="", OIDC_AUTHORITY=standin.oidc_authority)
    browser = app.browser()
    page = authorize_page(app, browser)
    # Entra's client capabilities ("cp1" in a claims request) are not sent to other providers.
    assert "claims" not in parse_qs(urlsplit(page.url).query)
    final = visit(app, browser, sign_in_api_page(app), ALICE)
    assert final.status_code == 200 and ALICE.oid in final.text
    assert cached(app, ALICE)
    assert app.services.caches.store.get(
        app.services.caches.key(f"{ALICE.oid}.{standin.tenant_id}")) is None


# ------------------------------------------------------------------------------ outages
def test_provider_outage_and_unreachable_api_show_error_pages(
        make_app: Callable[..., AppUnderTest], standin: StandIn) -> None:
    closed_port_url = "https://127.0.0.1:9/"  # discard port: nothing listens there
    app = make_app()
    app = make_app(**{f"API_{name.upper()}_BASE_URL": closed_port_url
                      for name in app.services.settings.apis})
    browser = app.browser()
    path = sign_in_api_page(app)
    final = visit(app, browser, path, ALICE)
    assert final.status_code == 502 and "could not be reached" in final.text
    assert "Traceback" not in final.text and 'href="/"' in final.text

    # The token service is down while a refresh is needed: an error page, the session survives.
    expire_access_tokens(app, ALICE)
    app.standin.faults.add("token_unavailable")
    page = browser.get(app.url(path))
    assert page.status_code == 502 and "could not be obtained" in page.text
    assert "Traceback" not in page.text
    assert ALICE.name in browser.get(app.url("/")).text


@pytest.mark.parametrize("fault", ["discovery_unavailable", "discovery_garbled"])
def test_unreachable_provider_gives_pages_not_errors(make_app: Callable[..., AppUnderTest],
                                                     standin: StandIn, fault: str) -> None:
    """Discovery fails (a 503, or a 200 answer that is no discovery document): /login shows a
    page (not a 500), and an answer arriving meanwhile is reported as an unreachable provider,
    not as a state mismatch."""
    app = make_app()
    browser = app.browser()
    answer = provider_answer(app, browser, ALICE)
    app.services.clients._http_cache.clear()  # MSAL would otherwise reuse its discovery
    standin.faults.add(fault)
    try:
        page = browser.get(app.url("/login"))
        assert_error_page(page, "could not be reached", status=502)
        callback = post_callback(app, browser, hidden_fields(answer), initiator=answer.url)
        assert_error_page(callback, "could not be reached", status=502)
        assert "does not match" not in callback.text
    finally:
        standin.faults.discard(fault)


@pytest.mark.parametrize("claim", ["aud", "iss"])
def test_an_id_token_for_another_app_or_from_another_issuer_is_refused(
        app_under_test: AppUnderTest, claim: str) -> None:
    """MSAL checks the ID token's nonce only: the app checks that it is for this client and
    from the provider's issuer (the discovery document's, its `{tenantid}` filled in)."""
    app = app_under_test
    wrong = {"aud": "00000000-0000-4000-8000-0000000000ff",
             "iss": "https://login.example.net/someone-else/v2.0"}[claim]
    app.standin.id_token_overrides[claim] = wrong
    browser = app.browser()
    page = browser.sign_in(authorize_page(app, browser), ALICE.username)
    assert_error_page(page, "could not be trusted", status=400)
    assert ALICE.name not in browser.get(app.url("/")).text
    app.standin.id_token_overrides.clear()
    assert ALICE.name in sign_in(app, browser, ALICE).text


TRACE, CORRELATION = "0a1b2c3d-0000-4000-8000-00000000a7ce", "c0de0000-0000-4000-8000-00000000c0de"


def answer_with_entra_error(app: AppUnderTest, browser: Browser, error: str, code: int,
                            text: str) -> requests.Response:
    """Deliver Entra's error answer for a sign-in `browser` started, its `error_description`
    as Entra shapes them (code, text, trace and correlation ids, timestamp)."""
    answer = provider_answer(app, browser, ALICE)
    description = (f"AADSTS{code}: {text}\r\nTrace ID: {TRACE}\r\n"
                   f"Correlation ID: {CORRELATION}\r\nTimestamp: 2026-12-06 18:40:00Z")
    return post_callback(app, browser, {"state": hidden_fields(answer)["state"], "error": error,
                                        "error_description": description},
                         initiator=answer.url)


def test_a_provider_error_page_quotes_its_code_and_ids_for_the_administrator(
        app_under_test: AppUnderTest, caplog: pytest.LogCaptureFixture) -> None:
    app = app_under_test
    caplog.set_level(logging.INFO)
    page = answer_with_entra_error(app, app.browser(), "invalid_request", 50126,
                                   "Error validating credentials.")
    assert_error_page(page, "Error validating credentials", status=400)
    text = html.unescape(page.text)
    assert f"AADSTS50126, correlation id {CORRELATION}, trace id {TRACE}" in text
    assert "Timestamp" not in text and "adminconsent" not in text
    logged = [r.getMessage() for r in caplog.records if "sign-in failed" in r.getMessage()]
    assert logged and "AADSTS50126" in logged[-1] and CORRELATION in logged[-1], logged


def test_when_only_an_administrator_can_consent_the_page_gives_the_admin_consent_link(
        app_under_test: AppUnderTest) -> None:
    """AADSTS90094 (or 90093, or 65001 after a consent attempt): no loop back to the provider,
    a page that says so with the tenant's admin-consent link for this app."""
    app = app_under_test
    settings = app.services.settings
    if not settings.authority:
        pytest.skip("admin consent is Entra's")
    page = answer_with_entra_error(app, app.browser(), "access_denied", 90094,
                                   "The grant requires admin permission.")
    assert_error_page(page, "only an administrator", status=400)
    links = re.findall(r'href="([^"]*adminconsent[^"]*)"', page.text)
    assert len(links) == 1, page.text
    link = urlsplit(html.unescape(links[0]))
    query = parse_qs(link.query)
    assert link.path.endswith("/v2.0/adminconsent")
    assert link.netloc == urlsplit(settings.authority).netloc
    assert query["client_id"] == [settings.client_id]
    assert query["redirect_uri"] == [settings.post_logout_redirect_uri]
    assert query["scope"][0].endswith("/.default")
    assert not at_provider(app, page)


def test_a_long_lived_token_is_refreshed_from_its_refresh_in_not_only_at_expiry(
        app_under_test: AppUnderTest) -> None:
    """Entra gives long-lived tokens (continuous access evaluation) a `refresh_in`: once it has
    passed the app refreshes, once, while the token is still valid, and serves the new one."""
    app = app_under_test
    path = sign_in_api_page(app)
    app.standin.access_token_lifetime = 24 * 3600
    browser = app.browser()
    visit(app, browser, path, ALICE)
    hid = home_account_id(app, ALICE)
    with app.services.caches.open(hid) as cache:
        (entry,) = [e for e in cache.search(cache.CredentialType.ACCESS_TOKEN)]
        assert int(entry["refresh_on"]) - int(entry["cached_at"]) == 12 * 3600
        cache.modify(cache.CredentialType.ACCESS_TOKEN, entry,
                     {"refresh_on": str(int(time.time()) - 10)})  # as 12 hours passing would
    app.standin.reset_counts()
    assert browser.get(app.url(path)).status_code == 200
    assert browser.get(app.url(path)).status_code == 200
    assert grants(app, "refresh_token") == 1
    first, second = (call["token"] for call in app.standin.api_calls)
    assert first == second  # the refreshed token, served from the cache the second time


@pytest.mark.parametrize("bad_answer", ["not_a_document", "unavailable"])
def test_bad_discovery_answer_is_not_kept(make_app: Callable[..., AppUnderTest],
                                          bad_answer: str) -> None:
    """A process's first discovery request gets a 200 JSON that is no discovery document (a
    captive portal, a proxy's page) or a 503: /login shows the error page once, and the next
    /login, the provider being healthy again, reaches it. MSAL keeps 2xx answers to GETs for a
    day: the bad 200 must not be kept."""
    app = make_app()
    app.services.clients._http_cache.clear()  # as in a new process: no discovery fetched yet
    path = urlsplit(app.services.clients.discovery_url).path
    fault = (app.standin.answer(path, {"status": "ok", "portal": "Accept the terms first."},
                                times=1)
             if bad_answer == "not_a_document" else app.standin.fail(path, 503, times=1))
    browser = app.browser()
    with fault:
        assert_error_page(browser.get(app.url("/login")), "could not be reached", status=502)
        assert fault.answered == 1
    started = browser.get(app.url("/login"), allow_redirects=False)
    assert started.status_code in (302, 303), started.text
    final = browser.sign_in(browser.get(started.headers["Location"]), ALICE.username)
    assert final.url == app.url("/") and ALICE.name in final.text
