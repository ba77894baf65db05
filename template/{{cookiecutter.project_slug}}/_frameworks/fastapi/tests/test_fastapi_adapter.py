"""FastAPI-specific behaviour: what the shared behavioural suite cannot see from outside."""

from __future__ import annotations

import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import pytest
from fastapi import Request
from fastapi.responses import PlainTextResponse

from {{ cookiecutter.package_name }}.aio import AsyncApis
from {{ cookiecutter.package_name }}.core.downstream import ApiRequest
from {{ cookiecutter.package_name }}.core.stores import StoreError

from devprovider import DEFAULT_USERS
from tests.app_server import build_app
from tests.conftest import AppUnderTest
from tests.conftest import environment_for_settings_tests as valid_env
from tests.test_http_client import Site
from tests.test_http_client import http_site as cookie_site  # noqa: F401  (a fixture)
from tests.test_time_limits import token_path
from tests.test_web_flow import expire_access_tokens, sign_in, sign_in_api_page

with warnings.catch_warnings():
    # Starlette 1.x deprecates its TestClient over httpx for one over httpx2 (not installed).
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

ALICE, BOB = DEFAULT_USERS[0], DEFAULT_USERS[1]


def test_forwarded_headers_are_honoured_only_when_configured() -> None:
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "portal.example.com",
               "X-Forwarded-For": "203.0.113.7"}
    for hops, expected in (("0", "http://testserver/ testclient"),
                           ("1", "https://portal.example.com/ 203.0.113.7")):
        app, _ = build_app(valid_env({"TRUSTED_PROXY_HOPS": hops}))

        @app.get("/_probe")
        def probe(request: Request) -> PlainTextResponse:
            client = request.client.host if request.client else ""
            return PlainTextResponse(f"{request.base_url} {client}")

        with TestClient(app) as client:
            assert client.get("/_probe", headers=headers).text == expected


def test_no_api_docs_and_error_pages_instead_of_json_or_tracebacks() -> None:
    app, services = build_app(valid_env())

    @app.get("/_boom")
    def boom() -> None:
        raise RuntimeError("a bug")

    with TestClient(app, raise_server_exceptions=False) as client:
        for path in ("/docs", "/redoc", "/openapi.json", "/api/unknown", "/static/nope.css"):
            page = client.get(path)
            assert page.status_code == 404 and "<html" in page.text, path
            assert page.headers["X-Frame-Options"] == "DENY"
        assert client.get("/logout").status_code == 405
        page = client.get("/_boom")
        assert page.status_code == 500 and "Something went wrong" in page.text
        assert "Traceback" not in page.text and "a bug" not in page.text
        assert page.headers["Content-Security-Policy"] == services.security_headers[
            "Content-Security-Policy"]


def test_a_route_that_changes_the_session_itself_is_saved_before_it_answers(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Not only the core's flows: any route's session change is saved before the response
    starts, and one that cannot be saved becomes the error page."""
    app, services = build_app(valid_env())

    @app.get("/_remember")
    def remember(request: Request) -> PlainTextResponse:
        request.session["seen"] = True
        return PlainTextResponse("remembered")

    with TestClient(app) as client:
        answer = client.get("/_remember")
        assert answer.text == "remembered" and services.session_cookie.name in answer.cookies

        def broken(key: str, value: str) -> None:
            raise StoreError("disk full")

        monkeypatch.setattr(services.sessions.store, "set", broken)
        fresh = TestClient(app)
        page = fresh.get("/_remember")
        assert page.status_code == 503 and "remembered" not in page.text
        assert services.session_cookie.name not in page.cookies


def test_a_held_token_refresh_does_not_hold_other_users(app_under_test: AppUnderTest) -> None:
    """MSAL blocks: it runs in a worker thread. Proved by order, not by time: while the
    provider holds one user's token refresh, another user's API page is served."""
    app = app_under_test
    page = sign_in_api_page(app)
    alice, bob = app.browser(), app.browser()
    sign_in(app, alice, ALICE, page)
    sign_in(app, bob, BOB, page)
    expire_access_tokens(app, ALICE)
    refreshes = app.standin.token_calls["refresh_token"]
    with ThreadPoolExecutor(1) as pool:
        with app.standin.slow(token_path(app), delay_s=60):  # held until the block ends
            held = pool.submit(alice.get, app.url(page), timeout=30)
            while app.standin.token_calls["refresh_token"] == refreshes:
                assert not held.done(), held.result()
                time.sleep(0.01)
            # Alice's refresh is at the provider, unanswered: Bob's page is served meanwhile.
            other: Any = bob.get(app.url(page), timeout=30)
            assert other.status_code == 200 and BOB.oid in other.text
            assert not held.done()
        answer = held.result(timeout=30)  # released: Alice's page completes
    assert answer.status_code == 200 and ALICE.oid in answer.text


def test_the_async_api_client_keeps_no_cookies(cookie_site: Site) -> None:  # noqa: F811
    """The app's one httpx client serves every user: an API's Set-Cookie for one user's call
    must never go out with another's (as for the blocking session, test_http_client.py)."""
    _, services = build_app(valid_env())

    async def calls() -> None:
        apis = AsyncApis(services)
        try:
            for path in ("/set-cookie", "/echo", "/set-cookie-and-redirect", "/echo"):
                await apis.send(ApiRequest("GET", cookie_site.url(path), {}))
        finally:
            await apis.aclose()

    anyio.run(calls)
    assert [path for path, _ in cookie_site.seen] == [
        "/set-cookie", "/echo", "/set-cookie-and-redirect", "/echo"]  # redirects not followed
    assert [cookie for _, cookie in cookie_site.seen] == ["", "", "", ""]
