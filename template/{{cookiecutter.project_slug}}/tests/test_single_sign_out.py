"""Single sign-out: the provider's front-channel logout ends the app's sessions of the user's
provider session (`sid`), and removes the account's tokens once no session of it remains.

When a user signs out at the provider (from this app or another), Entra loads each app's
registered front-channel logout URL with the provider session's `sid`, in a hidden iframe of its
sign-out page: a third-party request that carries none of the app's cookies. The stand-in makes
the same requests when a user signs out there (devprovider/identity.py `_call_front_channel`).
The app under test is an Entra-style one (the stand-in's OpenID Connect mode has no
front-channel logout) whose ID tokens carry `login_hint`, so that the provider's sign-out
needs no account picker.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from {{ cookiecutter.package_name }}.config import DEFAULTS

from devprovider import StandIn, TestUser
from tests.browser import Browser
from tests.conftest import AppUnderTest, entra_authority
from tests.test_web_flow import (
    ALICE,
    BOB,
    cached,
    cookie,
    session_cookie,
    sign_in,
    signed_in_with,
)

PATH = DEFAULTS.front_channel_logout_path


@pytest.fixture
def app(make_app: Callable[..., AppUnderTest], standin: StandIn) -> AppUnderTest:
    return make_app(AUTHORITY=standin.authority, OIDC_AUTHORITY="",
                    optional_claims=("login_hint",))


def provider_host(app: AppUnderTest) -> str:
    return urlsplit(app.services.auth.clients.discovery()["end_session_endpoint"]).netloc


def same_provider_session(app: AppUnderTest, source: Browser) -> Browser:
    """A new browser (no cookie of the app) holding `source`'s session at the provider, as a
    second window of the same browser profile: its sign-ins share the provider session's `sid`."""
    browser = app.browser()
    host = urlsplit(f"//{provider_host(app)}").hostname
    for c in source.cookies:
        if c.domain == host:
            browser.cookies.set(c.name, c.value, domain=c.domain, path=c.path, secure=c.secure,
                                httponly=c.httponly, samesite=c.samesite)
    assert len(browser.cookies), "no provider cookie to share"
    return browser


def session_user(app: AppUnderTest, browser: Browser) -> dict[str, str]:
    """The signed-in user as the app keeps it in the browser's session."""
    state = app.services.sessions.load(cookie(browser, session_cookie(app)))
    user = state.get("user")
    assert isinstance(user, dict), "not signed in"
    return user


def sign_out_at_provider(app: AppUnderTest, browser: Browser, user: TestUser
                         ) -> requests.Response:
    """What another app's sign-out does: the browser at the provider's end-session endpoint,
    naming the account (logout_hint)."""
    endpoint = app.services.auth.clients.discovery()["end_session_endpoint"]
    return browser.get(f"{endpoint}?{urlencode({'logout_hint': app.standin.login_hint(user)})}")


def front_channel(app: AppUnderTest, browser: Browser, **params: str) -> requests.Response:
    """The front-channel logout URL as the provider's sign-out page loads it in an iframe in
    `browser`: a third-party subresource request, which carries no Lax cookie of the app."""
    page = f"https://{provider_host(app)}/logout"
    return browser.fetch(app.url(PATH) + "?" + urlencode(params), initiator=page,
                         allow_redirects=False)


def test_signing_out_at_the_provider_ends_every_session_of_that_sid(app: AppUnderTest) -> None:
    first = app.browser()
    sign_in(app, first, ALICE)
    second = same_provider_session(app, first)  # another window: the same provider session
    sign_in(app, second, ALICE)
    other_device = app.browser()  # the same account, another provider session
    sign_in(app, other_device, ALICE)
    sid = session_user(app, first)["sid"]
    assert sid and session_user(app, second)["sid"] == sid
    assert session_user(app, other_device)["sid"] not in ("", sid)
    bob = app.browser()
    sign_in(app, bob, BOB)
    sessions = {name: cookie(b, session_cookie(app)) for name, b in (
        ("first", first), ("second", second), ("other", other_device), ("bob", bob))}

    # Signed out at the provider (as another app's sign-out does): the provider calls this
    # app's front-channel logout URL with the sid, once, and the app answers 200.
    sign_out_at_provider(app, first, ALICE)
    calls = app.standin.front_channel_calls
    assert [(urlsplit(url).path, parse_qs(urlsplit(url).query), status)
            for url, status in calls] == [(PATH, {"sid": [sid]}, 200)]
    # Both sessions of that sid end; the other provider session's and Bob's live on, and so do
    # Alice's tokens, which the other device's session still uses.
    assert not signed_in_with(app, sessions["first"], ALICE)
    assert not signed_in_with(app, sessions["second"], ALICE)
    assert signed_in_with(app, sessions["other"], ALICE)
    assert signed_in_with(app, sessions["bob"], BOB) and cached(app, BOB)
    assert cached(app, ALICE)

    # The last session of the account ends: its tokens go with it.
    app.standin.reset_counts()
    sign_out_at_provider(app, other_device, ALICE)
    assert [status for _, status in app.standin.front_channel_calls] == [200]
    assert not signed_in_with(app, sessions["other"], ALICE)
    assert cached(app, ALICE) is None
    assert signed_in_with(app, sessions["bob"], BOB) and cached(app, BOB)


def test_the_front_channel_request_needs_no_cookie_and_is_never_a_redirect(
        app: AppUnderTest) -> None:
    browser = app.browser()
    sign_in(app, browser, ALICE)
    user = session_user(app, browser)
    held = cookie(browser, session_cookie(app))

    # A sid of no session of this app: 200 all the same (the provider calls every app).
    answer = front_channel(app, browser, sid="00000000-0000-0000-0000-000000000000")
    assert answer.status_code == 200 and "Location" not in answer.headers
    assert signed_in_with(app, held, ALICE)

    # In the user's own browser, as the provider's iframe: no cookie goes with it (Lax), none
    # comes back, and the page may be framed by the provider and nobody else.
    answer = front_channel(app, browser, sid=user["sid"], iss=user["issuer"])
    assert answer.status_code == 200 and "Location" not in answer.headers
    assert "Set-Cookie" not in answer.headers
    policy = answer.headers["Content-Security-Policy"]
    assert f"frame-ancestors https://{provider_host(app)}" in policy, policy
    assert "frame-ancestors 'none'" in requests_to_home(app, browser)
    assert not signed_in_with(app, held, ALICE)
    assert cached(app, ALICE) is None
    # The browser's own session cookie is now of no session: the app shows it signed out.
    assert ALICE.name not in browser.get(app.url("/")).text


def requests_to_home(app: AppUnderTest, browser: Browser) -> str:
    """The app-wide framing policy, on an ordinary page."""
    return browser.get(app.url("/")).headers["Content-Security-Policy"]


@pytest.mark.parametrize("iss", ["https://login.example.com/evil/v2.0", ""])
def test_a_request_of_another_issuer_or_without_sid_is_refused(app: AppUnderTest,
                                                               iss: str) -> None:
    browser = app.browser()
    sign_in(app, browser, ALICE)
    user = session_user(app, browser)
    held = cookie(browser, session_cookie(app))

    refused = front_channel(app, app.browser(), sid=user["sid"], iss=iss)
    assert refused.status_code == 400 and "Location" not in refused.headers
    refused = front_channel(app, app.browser(), iss=user["issuer"])  # no sid
    assert refused.status_code == 400
    assert signed_in_with(app, held, ALICE) and cached(app, ALICE)


@pytest.mark.parametrize("tenant", ["own", "organizations"])
def test_a_sid_ends_only_sessions_of_its_own_issuer(make_app: Callable[..., AppUnderTest],
                                                    standin: StandIn, tenant: str) -> None:
    """A `sid` is unique only within its issuer. The same one with another tenant's issuer:
    refused (400) by a single-tenant app; accepted by a multi-tenant one (its issuer is a
    template, `{tenantid}`), where it ends nothing of this tenant's users."""
    authority = standin.authority if tenant == "own" else f"{standin.base_url}/organizations"
    app = make_app(**entra_authority(authority), optional_claims=("login_hint",))
    browser = app.browser()
    sign_in(app, browser, ALICE)
    user = session_user(app, browser)
    held = cookie(browser, session_cookie(app))
    other = user["issuer"].replace(standin.tenant_id, "0" * 8 + standin.tenant_id[8:])
    assert other != user["issuer"]
    answer = front_channel(app, app.browser(), sid=user["sid"], iss=other)
    assert answer.status_code == (400 if tenant == "own" else 200)
    assert signed_in_with(app, held, ALICE) and cached(app, ALICE)
    # Its own issuer ends it.
    assert front_channel(app, app.browser(), sid=user["sid"], iss=user["issuer"]
                         ).status_code == 200
    assert not signed_in_with(app, held, ALICE) and cached(app, ALICE) is None
