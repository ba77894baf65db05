"""A slow or silent identity provider or API costs a user an error page after the outbound
deadline, never a hung request or a 500 (tests/test_production_server.py: nor a restarted
worker under the shipped server settings)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest
import requests

from devprovider import DEFAULT_USERS
from tests.browser import Browser
from tests.conftest import AppUnderTest
from tests.test_web_flow import expire_access_tokens, sign_in, sign_in_api_page

ALICE, BOB = DEFAULT_USERS[0], DEFAULT_USERS[1]
DEADLINE = 1  # OUTBOUND_DEADLINE_SECONDS for these tests
# How much longer than its outbound calls' deadlines a page may take on a loaded machine. The
# tests prove the page was cut short: the stand-in's trickle (an answer of hundreds of bytes at
# one byte every TRICKLE seconds) or wait (30 s) would last far longer than this, and the
# client gives up after CLIENT_TIMEOUT (a hung app fails the test, not hangs it).
SLACK = 10.0
TRICKLE = 0.3  # the provider or API sends one byte every this many seconds
CLIENT_TIMEOUT = 30.0
# The deadline of the outbound calls a test makes before and after the slow one (signing in,
# checking the page works again): those are not what it times, and on a loaded machine they
# may take longer than DEADLINE.
SETUP_DEADLINE = 30.0


def app_with_deadline(make_app: Callable[..., AppUnderTest], **overrides: str) -> AppUnderTest:
    return make_app(OUTBOUND_DEADLINE_SECONDS=str(DEADLINE), **overrides)


@contextlib.contextmanager
def setting_up(app: AppUnderTest) -> Iterator[None]:
    """The app's outbound calls get SETUP_DEADLINE meanwhile, then DEADLINE again (a change
    applies to the calls that start after it)."""
    http = app.services.clients.http
    assert http.deadline_seconds == DEADLINE  # OUTBOUND_DEADLINE_SECONDS reached the session
    http.deadline_seconds = SETUP_DEADLINE
    try:
        yield
    finally:
        http.deadline_seconds = DEADLINE


def timed_get(browser: Browser, url: str) -> tuple[requests.Response, float]:
    start = time.monotonic()
    # The client's own timeout only bounds a broken app's hang (the test then fails).
    page = browser.get(url, allow_redirects=False, timeout=CLIENT_TIMEOUT)
    return page, time.monotonic() - start


def api_name_of(page: str) -> str:
    return "graph" if page == "/profile" else page.rsplit("/", 1)[1]


def token_path(app: AppUnderTest) -> str:
    settings = app.services.settings
    if settings.oidc_authority:
        return urlsplit(settings.oidc_authority).path + "/token"
    return urlsplit(settings.authority or "").path + "/oauth2/v2.0/token"


# ------------------------------------------------------------------------------ in-process
def test_a_token_refresh_that_trickles_ends_in_an_error_page(
        make_app: Callable[..., AppUnderTest]) -> None:
    app = app_with_deadline(make_app)
    page = sign_in_api_page(app)
    browser = app.browser()
    with setting_up(app):
        sign_in(app, browser, ALICE, page)
    expire_access_tokens(app, ALICE)
    with app.standin.slow(token_path(app), trickle_bytes_every_s=TRICKLE):
        answer, elapsed = timed_get(browser, app.url(page))
    assert answer.status_code == 502, answer.text
    assert "could not be obtained" in answer.text
    # MSAL may try a refresh token per matching cache entry: each call has its own deadline.
    assert DEADLINE <= elapsed < 2 * DEADLINE + SLACK
    # Once the provider answers again, so does the page, and the user was never signed out.
    with setting_up(app):
        assert browser.get(app.url(page)).status_code == 200


def test_an_api_that_trickles_ends_in_an_error_page(
        make_app: Callable[..., AppUnderTest]) -> None:
    app = app_with_deadline(make_app)
    page = sign_in_api_page(app)
    browser = app.browser()
    with setting_up(app):
        sign_in(app, browser, ALICE, page)
    api_path = urlsplit(app.services.settings.apis[api_name_of(page)].base_url).path
    with app.standin.slow(api_path, trickle_bytes_every_s=TRICKLE):
        answer, elapsed = timed_get(browser, app.url(page))
    assert answer.status_code == 502, answer.text
    assert "could not be reached" in answer.text
    assert DEADLINE <= elapsed < DEADLINE + SLACK


@pytest.mark.parametrize("how", ["trickles", "waits", "is down"])
def test_sign_in_while_the_provider_is_slow_or_down_shows_a_clear_page(
        make_app: Callable[..., AppUnderTest], how: str) -> None:
    """/login runs discovery (the first time): a provider that trickles, answers too late or is
    not there gives a page saying so, with a way to try again, never a 500 or a hang."""
    app = app_with_deadline(make_app)
    discovery = urlsplit(app.services.clients.discovery_url).path
    if how == "trickles":
        app.standin.slow(discovery, trickle_bytes_every_s=TRICKLE)
    elif how == "waits":
        app.standin.slow(discovery, delay_s=30)
    else:
        app.standin.stop()
    answer, elapsed = timed_get(app.browser(), app.url("/login"))
    assert answer.status_code == 502, answer.text
    assert "could not be reached" in answer.text and 'href="/' in answer.text
    assert elapsed < DEADLINE + SLACK
    if how != "is down":  # cut at the deadline, not before
        assert elapsed >= DEADLINE
