"""Bad input and abuse: the same answer in every framework, decided by the core.

Part of the behavioural suite (only tests/app_server.py knows the framework): a view written
the way a user of the template writes one, oversized bodies, hostile form and cookie values,
text that tries to forge log lines, and forwarded headers the app must not trust.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import re
import ssl
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from {{ cookiecutter.package_name }}.core.stores import StoreError
from {{ cookiecutter.package_name }}.core.web import signed_in_cookie

from devprovider import DEFAULT_USERS
from tests.app_server import USER_VIEW
from tests.browser import Browser
from tests.conftest import AppUnderTest, page_of, user_apis
from tests.test_web_flow import (
    assert_error_page,
    hidden_fields,
    post_callback,
    provider_answer,
    session_cookie,
    sign_in,
    sign_out_form,
)

ALICE = DEFAULT_USERS[0]


# ------------------------------------------------------------------------------ the one save point
def test_a_view_of_yours_that_changes_the_session_is_saved_once_before_it_answers(
        app_under_test: AppUnderTest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not only the core's pages: a view that changes the session itself gets it saved, once,
    as its response leaves, with the session cookie; a save that fails replaces its answer by
    the error page, with no cookie."""
    app = app_under_test
    store = app.services.sessions.store
    writes: list[str] = []
    real_set = store.set

    def counted_set(key: str, value: str) -> None:
        writes.append(key)
        real_set(key, value)

    monkeypatch.setattr(store, "set", counted_set)
    browser = app.browser()
    for expected in ("1", "2", "3"):
        writes.clear()
        answer = browser.get(app.url(USER_VIEW))
        assert (answer.status_code, answer.text) == (200, expected)
        assert len([key for key in writes if ":session:" in key]) == 1, writes
    assert browser.cookies.get(session_cookie(app))

    # Signed in, the view's change keeps the user (the same session, saved once).
    sign_in(app, browser, ALICE)
    assert browser.get(app.url(USER_VIEW)).text == "1"  # a new session began at sign-in
    assert browser.get(app.url(USER_VIEW)).text == "2"
    assert ALICE.name in browser.get(app.url("/")).text

    def broken(key: str, value: str) -> None:
        raise StoreError("disk full")

    monkeypatch.setattr(store, "set", broken)
    fresh = app.browser()
    page = fresh.get(app.url(USER_VIEW))
    assert_error_page(page, "session storage is not working", status=503)
    assert not fresh.cookies.get(session_cookie(app))


# ------------------------------------------------------------------------------ request bodies
@contextlib.contextmanager
def connection(app: AppUnderTest, timeout: float) -> Iterator[http.client.HTTPConnection]:
    url = urlsplit(app.base_url)
    conn: http.client.HTTPConnection
    if url.scheme == "https":
        context = ssl.create_default_context(cafile=app.ca_path)
        conn = http.client.HTTPSConnection(url.hostname or "", url.port, timeout=timeout,
                                           context=context)
    else:
        conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=timeout)
    try:
        yield conn
    finally:
        conn.close()


def test_a_body_larger_than_the_app_takes_is_refused_before_it_is_read(
        app_under_test: AppUnderTest) -> None:
    """A form POST announcing 200 MB to the redirect URI or the sign-out form gets the 413
    page while the client has sent only its first 64 KB: the app never waits for (or holds)
    the rest. The limit is one setting, MAX_REQUEST_BYTES, in every framework."""
    app = app_under_test
    announced = 200 * 1024 * 1024
    assert app.services.settings.max_request_bytes < announced
    for path in (app.services.settings.redirect_path, "/logout", "/"):
        # The timeout bounds a wrong answer (an app reading the whole body would wait for
        # bytes that never come); a right one arrives at once.
        with connection(app, timeout=60) as conn:
            conn.putrequest("POST", path)
            conn.putheader("Content-Type", "application/x-www-form-urlencoded")
            conn.putheader("Content-Length", str(announced))
            conn.endheaders()
            with contextlib.suppress(OSError):  # the app may close before taking it all
                conn.send(b"code=" + b"x" * (64 * 1024))
            answer = conn.getresponse()
            body = answer.read().decode()
        assert answer.status == 413, (path, answer.status, body[:500])
        assert "more data than this page accepts" in body and "Traceback" not in body

    # Without a length (chunked), the body is not read past the limit either.
    def chunks() -> Iterator[bytes]:
        yield b"state=x&code="
        for _ in range(64):
            yield b"x" * (64 * 1024)  # 4 MB in all

    page = app.browser().post(app.url(app.services.settings.redirect_path), data=chunks(),
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    # 413, or the page of a sign-in answer with no usable fields (a WSGI server hands Django
    # no body without a length); never a page that read 4 MB into a form.
    assert page.status_code in (400, 413), page.status_code
    assert "Traceback" not in page.text


# ------------------------------------------------------------------------------ hostile values
@pytest.mark.parametrize("token", ["é" * 43, "²", "\u202e" * 10, "x" * 5000])
def test_a_hostile_sign_out_token_gets_the_form_expired_page(app_under_test: AppUnderTest,
                                                             token: str) -> None:
    app = app_under_test
    browser = app.browser()
    sign_in(app, browser, ALICE)
    fields = {**sign_out_form(app, browser), "csrf_token": token}
    page = browser.post(app.url("/logout"), data=fields)
    assert_error_page(page, "expired", status=400)
    assert ALICE.name in browser.get(app.url("/")).text  # still signed in


def cookie_header(browser: Browser, extra: dict[str, str]) -> dict[str, str]:
    """A Cookie header with the browser's cookies and `extra`, sent as given: a client other
    than a browser sends any bytes (a browser would refuse some of these values)."""
    cookies = {cookie.name: cookie.value or "" for cookie in browser.cookies} | extra
    return {"Cookie": "; ".join(f"{name}={value}" for name, value in cookies.items())}


# "{now}": the app's current time, so that the count is read too.
@pytest.mark.parametrize("mark", ["9" * 5000 + ".1", "².1", "{now}.²", "{now}." + "9" * 5000,
                                  "1.2.3", "-1.-1", "{now}.-1"])
def test_a_hostile_signed_in_counter_cookie_is_ignored(app_under_test: AppUnderTest,
                                                       mark: str) -> None:
    """The cookie that counts sign-ins in a row is read on pages for signed-in users and at
    the redirect URI: anything but the app's own format counts as none."""
    app = app_under_test
    mark = mark.replace("{now}", str(int(app.services.auth.clock())))
    hostile = {signed_in_cookie(app.services.settings).name: mark}
    browser = app.browser()
    apis = user_apis(app.services.settings.apis)
    page = requests.get(app.url(page_of(apis[0]) if apis else "/login"), verify=app.ca_path,
                        headers=cookie_header(browser, hostile), allow_redirects=False,
                        timeout=30)
    assert page.status_code == 302, (page.status_code, page.text)  # to the provider
    answer = provider_answer(app, browser, ALICE)
    landed = requests.post(app.url(app.services.settings.redirect_path), verify=app.ca_path,
                           data=hidden_fields(answer), headers=cookie_header(browser, hostile),
                           allow_redirects=False, timeout=30)
    assert landed.status_code == 302, (landed.status_code, landed.text)  # signed in


def test_text_from_outside_cannot_forge_log_lines(app_under_test: AppUnderTest,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """A provider's `error_description` (or anything else from outside) reaches the log with
    its control characters escaped: a newline cannot start a line of its own."""
    app = app_under_test
    caplog.set_level(logging.INFO)
    browser = app.browser()
    answer = provider_answer(app, browser, ALICE)
    forged = "declined\nINFO:root:user signed in (home_account_id=forged)\r\x1b[2K"
    page = post_callback(app, browser, {"state": hidden_fields(answer)["state"],
                                        "error": "access_denied",
                                        "error_description": forged}, initiator=answer.url)
    assert_error_page(page, "cancelled")
    # The app's own log lines (not the test server's access log, which is no part of it).
    logged = [record.getMessage() for record in caplog.records
              if record.name.startswith("{{ cookiecutter.package_name }}.")]
    assert any("declined" in message for message in logged), logged  # it was logged...
    assert not [m for m in logged if re.search(r"[\n\r\x1b]", m)], logged  # ...escaped


# ------------------------------------------------------------------------------ forwarded headers
def test_only_the_documented_forwarded_headers_are_trusted(
        make_app: Callable[..., AppUnderTest]) -> None:
    """Behind one trusted proxy (TRUSTED_PROXY_HOPS=1) the app honours X-Forwarded-For,
    -Proto and -Host; X-Forwarded-Prefix (which would move the app's own links to another
    site) and -Port are ignored, in every framework."""
    app = make_app(TRUSTED_PROXY_HOPS="1")
    headers: dict[str, Any] = {"X-Forwarded-Prefix": "//evil.example",
                               "X-Forwarded-Port": "8443",
                               "X-Forwarded-Host": urlsplit(app.base_url).netloc,
                               "X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
    page = app.browser().get(app.url("/"), headers=headers)
    assert page.status_code == 200, page.text
    links = re.findall(r'(?:href|src|action)="([^"]*)"', page.text)
    assert links and "evil.example" not in page.text and ":8443" not in page.text
    assert all(link.startswith("/") and not link.startswith("//") for link in links
               if not link.startswith("http")), links
