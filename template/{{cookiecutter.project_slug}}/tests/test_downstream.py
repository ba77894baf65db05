"""Downstream API calls: throttling, redirects and size bounds, the same rules for both
transports (requests: Flask, Django and MSAL; httpx: FastAPI's API calls).

The transport tests drive the core's call plan straight at the stand-in's API with each
transport the project has (httpx where aio.py exists: the FastAPI projects); the page tests go
through the app of this project's framework, and so through the transport it uses.
No test sleeps whole seconds: Retry-After 0 (or a date already past) is retried at once, and
a longer one is beyond the deadline the test sets, which the plan must not wait for.
"""

from __future__ import annotations

import contextlib
import html
import importlib
import logging
import socket
import socketserver
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from email.utils import formatdate
from typing import Any

import pytest

from {{ cookiecutter.package_name }}.core.downstream import (
    DEFAULT_RETRY_SECONDS,
    MAX_RETRIES,
    ApiResponse,
    NeedToken,
    Plan,
    Send,
    call_plan,
    retry_after,
    run_sync,
)
from {{ cookiecutter.package_name }}.core.errors import DownstreamApiError, ResponseTooLarge
from {{ cookiecutter.package_name }}.core.flows import UNREACHABLE
from {{ cookiecutter.package_name }}.core.http import OutboundEnvironment, OutboundSession
from {{ cookiecutter.package_name }}.core.settings import ApiSettings

from devprovider import DEFAULT_USERS, StandIn
from tests.conftest import AppUnderTest, page_of

ALICE = DEFAULT_USERS[0]
LIMIT = 4 * 1024 * 1024  # the default API_MAX_RESPONSE_BYTES
LARGE = 64 * 1024 * 1024
TRANSPORTS = ["requests", "httpx"]


def _aio() -> Any:
    try:
        return importlib.import_module("{{ cookiecutter.package_name }}.aio")
    except ModuleNotFoundError:
        pytest.skip("the httpx transport is FastAPI's (aio.py): not in this project")


Driver = Callable[[Plan], ApiResponse]


@pytest.fixture(params=TRANSPORTS)
def drive(request: pytest.FixtureRequest, app_under_test: AppUnderTest) -> Iterator[Driver]:
    """Runs a plan with one transport, its token minted for ALICE by the stand-in."""
    app = app_under_test
    services = app.services

    def token(step: NeedToken) -> str:
        return app.standin.mint_access_token(ALICE.username, services.settings.client_id,
                                             list(step.scopes))

    if request.param == "requests":
        yield lambda plan: run_sync(plan, token, services.apis.send)
        return
    aio = _aio()
    import anyio  # httpx's, so FastAPI's: not a dependency of the other projects

    async def acquire(step: NeedToken) -> str:
        return token(step)

    async def run(plan: Plan) -> ApiResponse:
        # A client per event loop: its pooled connections belong to the loop.
        apis = aio.AsyncApis(services)
        try:
            response: ApiResponse = await aio.run_async(plan, acquire, apis.send)
        finally:
            await apis.aclose()
        return response

    yield lambda plan: anyio.run(run, plan)


@pytest.fixture
def api(app_under_test: AppUnderTest) -> ApiSettings:
    """A custom API of the app (the stand-in's /apis/<name>/)."""
    custom = [a for a in app_under_test.services.settings.apis.values()
              if a.name != "graph" and not a.app_only]
    if not custom:
        pytest.skip("this app calls no custom API")
    return custom[0]


def prefix(api: ApiSettings) -> str:
    return f"/apis/{api.name}/"


# ------------------------------------------------------------------------------ rules
def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = 1_700_000_000.0
    assert retry_after({"retry-after": "7"}, now) == 7.0
    assert retry_after({"retry-after": formatdate(now + 30, usegmt=True)}, now) == 30.0
    assert retry_after({"retry-after": formatdate(now - 30, usegmt=True)}, now) == 0.0
    assert retry_after({"retry-after": "soon"}, now) is None
    assert retry_after({}, now) is None


def test_an_apis_description_gives_a_calls_defaults_and_its_timeout_shortens_the_deadline(
        ) -> None:
    api = ApiSettings("reports", "https://reports.example.com/v1/", ("api://x/.default",),
                      path="daily", method="HEAD", headers={"X-Format": "compact", "X-Keep": "1"},
                      query={"api-version": "2"}, timeout_seconds=2.0, app_only=True)
    plan = call_plan(api, deadline_seconds=10, clock=lambda: 100.0)
    assert next(plan) == NeedToken(api.scopes)
    step = plan.send("token")
    assert isinstance(step, Send)
    sent = step.request
    assert (sent.method, sent.url) == ("HEAD",
                                       "https://reports.example.com/v1/daily?api-version=2")
    assert sent.headers["X-Format"] == "compact" and sent.until == 102.0
    # What the caller gives wins (a header of the same name in any case), the rest stays; a
    # deadline shorter than the API's timeout stands.
    plan = call_plan(api, "weekly", method="GET", params={"top": "1"},
                     headers={"x-format": "full"}, deadline_seconds=1, clock=lambda: 100.0)
    next(plan)
    step = plan.send("token")
    assert isinstance(step, Send)
    sent = step.request
    assert (sent.method, sent.url) == (
        "GET", "https://reports.example.com/v1/weekly?api-version=2&top=1")
    assert sent.headers["x-format"] == "full" and "X-Format" not in sent.headers
    assert sent.headers["X-Keep"] == "1" and sent.until == 101.0


# ------------------------------------------------------------------------------ transports
@pytest.mark.parametrize("after", ["0", "date in the past"])
def test_a_throttled_get_is_sent_again_after_retry_after(
        drive: Driver, api: ApiSettings, standin: StandIn, after: str) -> None:
    value: int | str = 0 if after == "0" else formatdate(time.time() - 60, usegmt=True)
    with standin.fail(prefix(api), 429, times=MAX_RETRIES, retry_after=value) as fault:
        response = drive(call_plan(api, "items", deadline_seconds=5))
    assert response.status == 200 and fault.answered == MAX_RETRIES

    # Throttled on every attempt: the last answer stands, after MAX_RETRIES retries.
    with standin.fail(prefix(api), 503, retry_after=0) as fault, pytest.raises(
            DownstreamApiError) as raised:
        drive(call_plan(api, "items", deadline_seconds=5))
    assert fault.answered == MAX_RETRIES + 1
    assert raised.value.status == 503 and raised.value.retry_after == 0 and raised.value.throttled


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_a_throttled_post_or_patch_is_never_sent_twice(
        drive: Driver, api: ApiSettings, standin: StandIn, method: str) -> None:
    with standin.fail(prefix(api), 429, retry_after=0) as fault, pytest.raises(
            DownstreamApiError) as raised:
        drive(call_plan(api, "items", method=method, json_body={"title": "x"},
                        deadline_seconds=5))
    assert fault.answered == 1 and raised.value.status == 429


@pytest.mark.parametrize("after", [30, "date", None])
def test_a_wait_past_the_deadline_fails_at_once(
        drive: Driver, api: ApiSettings, standin: StandIn, after: int | str | None) -> None:
    """Retry-After (or, without one, the default delay) beyond the call's deadline: the error
    at once, no wait, one request."""
    value = formatdate(time.time() + 30, usegmt=True) if after == "date" else after
    deadline = DEFAULT_RETRY_SECONDS - 1
    started = time.monotonic()
    with standin.fail(prefix(api), 503, retry_after=value) as fault, pytest.raises(
            DownstreamApiError) as raised:
        drive(call_plan(api, "items", deadline_seconds=deadline))
    assert time.monotonic() - started < deadline / 2
    assert fault.answered == 1 and raised.value.status == 503
    if after is not None:
        assert raised.value.retry_after == pytest.approx(30, abs=2)


@pytest.mark.parametrize("status", [302, 307])
def test_a_redirect_to_another_host_carries_no_token(
        drive: Driver, api: ApiSettings, standin: StandIn, status: int) -> None:
    standin.reset_counts()
    with standin.redirect(prefix(api), standin.echo_url("localhost"), status=status):
        response = drive(call_plan(api, "items", deadline_seconds=5))
    assert response.status == 200 and response.json() == {"echo": "/echo/"}
    (arrived,) = standin.echo_requests
    assert arrived["url"].startswith("https://localhost:")
    assert "authorization" not in {k.lower() for k in arrived["headers"]}

    # The same origin (another path of the API's host) gets the token.
    standin.reset_counts()
    with standin.redirect(prefix(api), standin.echo_url("127.0.0.1"), status=status):
        drive(call_plan(api, "items", deadline_seconds=5))
    (arrived,) = standin.echo_requests
    assert {k.lower() for k in arrived["headers"]} >= {"authorization"}


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_large_answer_is_refused_without_reading_it(
        drive: Driver, api: ApiSettings, standin: StandIn, chunked: bool) -> None:
    standin.large_answer(prefix(api), LARGE, chunked=chunked)
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(ResponseTooLarge) as raised:
            drive(call_plan(api, "items", deadline_seconds=10, max_bytes=LIMIT))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        standin.unfail()
    assert raised.value.limit == LIMIT
    assert raised.value.announced == (None if chunked else LARGE)
    assert time.monotonic() - started < 5
    # The bound plus chunks in flight; reading it whole would hold 64 MB at least.
    assert peak < 3 * LIMIT, f"peak {peak / 2**20:.1f} MB"

    # Within the bound, the whole answer.
    with standin.large_answer(prefix(api), LIMIT, chunked=chunked, times=1):
        response = drive(call_plan(api, "items", deadline_seconds=10, max_bytes=LIMIT))
    assert len(response.body) == LIMIT


def test_a_trickling_answer_is_cut_at_the_call_s_deadline(
        drive: Driver, api: ApiSettings, standin: StandIn) -> None:
    deadline = 1.0
    started = time.monotonic()
    with standin.slow(prefix(api), trickle_bytes_every_s=0.1), pytest.raises(
            (*UNREACHABLE, TimeoutError)):
        drive(call_plan(api, "items", deadline_seconds=deadline))
    assert deadline - 0.1 < time.monotonic() - started < deadline + 1


class _ConnectProxy(socketserver.ThreadingTCPServer):
    """An HTTP proxy for https URLs (CONNECT only) on 127.0.0.1 that records the targets."""

    daemon_threads = True

    def __init__(self) -> None:
        self.targets: list[str] = []
        super().__init__(("127.0.0.1", 0), _ConnectHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ConnectHandler(socketserver.StreamRequestHandler):
    server: _ConnectProxy

    def handle(self) -> None:
        target = self.rfile.readline().split()[1].decode()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass
        self.server.targets.append(target)
        host, port = target.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as upstream:
            self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            pump = threading.Thread(target=_pump, args=(upstream, self.connection), daemon=True)
            pump.start()
            _pump(self.connection, upstream)
            pump.join(5)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


def _use_environment(session: OutboundSession, environ: dict[str, str]) -> None:
    """Give the app's session (and so both transports) another environment's proxy rules."""
    environment = OutboundEnvironment(environ)
    session.environment = environment
    for adapter in session.adapters.values():
        adapter.environment = environment  # type: ignore[attr-defined]


@pytest.mark.parametrize("no_proxy", ["", "127.0.0.0/8"])
def test_the_proxy_and_no_proxy_of_the_environment(
        drive: Driver, api: ApiSettings, app_under_test: AppUnderTest, no_proxy: str) -> None:
    with _ConnectProxy() as proxy:
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        try:
            _use_environment(app_under_test.services.clients.http,
                             {"HTTPS_PROXY": proxy.url, "NO_PROXY": no_proxy})
            assert drive(call_plan(api, "items", deadline_seconds=5)).status == 200
        finally:
            proxy.shutdown()
    port = api.base_url.split(":")[2].split("/")[0]
    assert proxy.targets == ([] if no_proxy else [f"127.0.0.1:{port}"])


# ------------------------------------------------------------------------------ pages
def api_page(app: AppUnderTest, api: ApiSettings) -> str:
    return page_of(api.name)


def signed_in(app: AppUnderTest, api: ApiSettings) -> Any:
    """A browser signed in as ALICE that has seen the API's page once."""
    browser = app.browser()
    page = browser.get(app.url(api_page(app, api)))
    while "/authorize" in page.url:
        page = browser.sign_in(page, ALICE.username)
    assert page.status_code == 200, page.text
    return browser


def test_pages_of_a_throttled_api(app_under_test: AppUnderTest, api: ApiSettings) -> None:
    app = app_under_test
    browser = signed_in(app, api)
    with app.standin.fail(prefix(api), 429, times=1, retry_after=0):
        assert browser.get(app.url(api_page(app, api))).status_code == 200
    app.services.clients.http.deadline_seconds = 1  # Retry-After 30 is past it
    with app.standin.fail(prefix(api), 429, retry_after=30) as fault:
        page = browser.get(app.url(api_page(app, api)))
    assert page.status_code == 503 and fault.answered == 1
    assert "try again later" in html.unescape(page.text) and "Traceback" not in page.text


def test_page_of_a_redirected_api_sends_no_token_elsewhere(app_under_test: AppUnderTest,
                                                           api: ApiSettings) -> None:
    app = app_under_test
    browser = signed_in(app, api)
    app.standin.reset_counts()
    with app.standin.redirect(prefix(api), app.standin.echo_url("localhost"), status=302):
        page = browser.get(app.url(api_page(app, api)))
    assert page.status_code == 200 and "/echo/" in page.text
    (arrived,) = app.standin.echo_requests
    assert "authorization" not in {k.lower() for k in arrived["headers"]}


def test_page_of_a_huge_answer_is_an_error_page_quickly_in_bounded_memory(
        app_under_test: AppUnderTest, api: ApiSettings,
        caplog: pytest.LogCaptureFixture) -> None:
    app = app_under_test
    browser = signed_in(app, api)
    app.standin.large_answer(prefix(api), LARGE, chunked=True)
    tracemalloc.start()  # the app serves from threads of this process
    started = time.monotonic()
    try:
        with caplog.at_level(logging.WARNING):
            page = browser.get(app.url(api_page(app, api)))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        app.standin.unfail()
    assert page.status_code == 502 and "too large" in html.unescape(page.text)
    assert time.monotonic() - started < 5
    assert peak < 3 * LIMIT, f"peak {peak / 2**20:.1f} MB"
    assert "API_MAX_RESPONSE_BYTES" in caplog.text
