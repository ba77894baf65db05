"""The health probes and HSTS, the same in every framework (core/health.py, core/web.py).

`/healthz` answers while the process does; `/readyz` while the store answers and once the
provider's discovery document was fetched. Neither reads a session or sets a cookie. The store
faults are real: the filesystem store's directory taken away, a Redis or SQL server cut off by a
proxy (tests/tcp_proxy.py); the provider's outage is the stand-in's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from {{ cookiecutter.package_name }}.config import DEFAULTS
from {{ cookiecutter.package_name }}.core.health import READY_DEADLINE_SECONDS

from devprovider import StandIn
from tests.conftest import AppUnderTest
from tests.test_instances import SHARED_BACKENDS, shared_backend
from tests.test_store_faults import FaultyDirectory
from tests.test_web_flow import ALICE, session_cookie, sign_in

PROBES = {"/healthz": "ok\n", "/readyz": "ready\n"}
RECOVERY_SECONDS = 30.0  # a store or provider back: the probe says so within this
YEAR = 365 * 24 * 3600


def probe(app: AppUnderTest, path: str, **headers: str) -> requests.Response:
    """A probe as a load balancer sends it: no cookie, no redirect followed."""
    return requests.get(app.url(path), headers=headers, verify=app.ca_path, timeout=30,
                        allow_redirects=False)


def until_ready(app: AppUnderTest, status: int) -> requests.Response:
    """`/readyz`, asked until it answers `status` (a check may still be finishing)."""
    give_up = time.monotonic() + RECOVERY_SECONDS
    while True:
        answer = probe(app, "/readyz")
        if answer.status_code == status or time.monotonic() > give_up:
            return answer
        time.sleep(0.2)


def assert_probe(answer: requests.Response, status: int, body: str) -> None:
    assert (answer.status_code, answer.text) == (status, body), answer.text[:300]
    assert answer.headers["Content-Type"].startswith("text/plain")
    assert "Set-Cookie" not in answer.headers
    assert answer.headers["Cache-Control"] == "no-store"


def test_probes_answer_without_a_session_or_a_cookie(app_in_each_mode: AppUnderTest) -> None:
    app = app_in_each_mode
    assert_probe(until_ready(app, 200), 200, PROBES["/readyz"])
    for path, body in PROBES.items():
        assert_probe(probe(app, path), 200, body)
        # A probe comes from an address, not from the app's host name (a kubelet, a balancer).
        assert_probe(probe(app, path, Host="10.0.0.7"), 200, body)


def test_probes_read_no_session(app_under_test: AppUnderTest,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A signed-in browser's probes (its session cookie sent along) leave the store alone."""
    app = app_under_test
    browser = app.browser()
    sign_in(app, browser, ALICE)
    store = app.services.sessions.store
    reads: list[str] = []

    def counting(method: str) -> Callable[..., Any]:
        real = getattr(store, method)

        def counted(*args: Any) -> Any:
            reads.append(method)
            return real(*args)
        return counted

    for method in ("get", "version", "versions_of", "set", "delete"):
        monkeypatch.setattr(store, method, counting(method))
    for path, body in PROBES.items():
        answer = browser.get(app.url(path))
        assert (answer.status_code, answer.text) == (200, body)
        assert "Set-Cookie" not in answer.headers
    assert reads == []
    assert ALICE.name in browser.get(app.url("/")).text and reads  # a page does read it
    assert session_cookie(app) in browser.cookies


@pytest.mark.parametrize("fault", ["absent", "read-only", "full"])
def test_readiness_follows_the_filesystem_store(make_app: Callable[..., AppUnderTest],
                                                tmp_path: Path, fault: str) -> None:
    """The store's directory taken away, made read-only or filled up (tests/test_store_faults.py
    `FaultyDirectory`): 503, saying the store (and nothing about where); back: 200. Liveness
    does not change."""
    folder = FaultyDirectory(tmp_path / "store")
    if fault != "absent":
        folder.mount()
    try:
        app = make_app(TOKEN_CACHE_BACKEND="filesystem", TOKEN_CACHE_DIR=str(folder.path))
        assert_probe(until_ready(app, 200), 200, "ready\n")
        if fault == "absent":
            folder.path.rename(tmp_path / "away")
        elif fault == "read-only":
            folder.read_only()
        else:
            folder.fill()
        assert_probe(until_ready(app, 503), 503, "not ready: the store does not answer\n")
        assert_probe(probe(app, "/healthz"), 200, "ok\n")
        if fault == "absent":
            (tmp_path / "away").rename(folder.path)
        folder.restore()
        assert_probe(until_ready(app, 200), 200, "ready\n")
    finally:
        folder.unmount()


@pytest.mark.skipif(DEFAULTS.token_cache_backend not in SHARED_BACKENDS,
                    reason="a Redis or SQL project's store goes away and comes back")
def test_readiness_follows_a_store_server(make_app: Callable[..., AppUnderTest],
                                          tmp_path: Path) -> None:
    """The project's Redis or SQL server cut off: 503; back: 200."""
    with shared_backend(DEFAULTS.token_cache_backend, tmp_path) as backend:
        assert backend.proxy is not None
        app = make_app(**backend.env)
        assert_probe(until_ready(app, 200), 200, "ready\n")
        backend.proxy.cut()
        try:
            answer = until_ready(app, 503)
            assert answer.status_code == 503 and answer.text.startswith("not ready: "), \
                answer.text
            assert backend.env.get("TOKEN_CACHE_REDIS_URL", "\0") not in answer.text
            assert_probe(probe(app, "/healthz"), 200, "ok\n")
        finally:
            backend.proxy.restore()
        assert_probe(until_ready(app, 200), 200, "ready\n")


def test_readiness_waits_for_the_providers_discovery(make_app: Callable[..., AppUnderTest],
                                                     standin: StandIn) -> None:
    """A provider that cannot be reached at start: 503 until its discovery document is
    fetched; after that, ready whatever the provider does (the pages say when it is down)."""
    standin.faults.add("discovery_unavailable")
    try:
        app = make_app()
        answer = until_ready(app, 503)
        assert_probe(answer, 503, "not ready: the identity provider's discovery document "
                                  "could not be fetched\n")
        assert_probe(probe(app, "/healthz"), 200, "ok\n")
    finally:
        standin.faults.discard("discovery_unavailable")
    assert_probe(until_ready(app, 200), 200, "ready\n")
    standin.faults.add("discovery_unavailable")
    try:
        assert_probe(probe(app, "/readyz"), 200, "ready\n")
    finally:
        standin.faults.discard("discovery_unavailable")


def test_a_check_that_hangs_is_a_503_at_the_deadline(make_app: Callable[..., AppUnderTest],
                                                     standin: StandIn) -> None:
    """A provider that does not answer: the probe answers 503 at the deadline, and the probes
    after it wait for the same check instead of starting more; its answer, once it comes,
    makes the app ready."""
    app = make_app()
    discovery = urlsplit(app.services.clients.discovery_url).path
    with standin.slow(discovery, delay_s=120):
        for _ in range(3):
            assert_probe(probe(app, "/readyz"), 503,
                         f"not ready: no answer within {READY_DEADLINE_SECONDS:g} s\n")
        checks = [t for t in threading.enumerate() if t.name == "readiness-check"]
        assert len(checks) == 1
    assert_probe(until_ready(app, 200), 200, "ready\n")


# ------------------------------------------------------------------------------ HSTS
def test_hsts_over_https_only(app_in_each_mode: AppUnderTest) -> None:
    """Every response over https carries HSTS, a page, a probe and an error page alike; none
    over plain http (RFC 6797 7.2)."""
    app = app_in_each_mode
    for path in ("/", "/healthz", "/no-such-page"):
        answer = probe(app, path)
        if app.mode == "https":
            assert answer.headers["Strict-Transport-Security"] == f"max-age={YEAR}", path
        else:
            assert "Strict-Transport-Security" not in answer.headers, path


def test_hsts_follows_its_settings(make_app: Callable[..., AppUnderTest]) -> None:
    longer = make_app(HSTS_SECONDS="600", HSTS_INCLUDE_SUBDOMAINS="true")
    assert probe(longer, "/").headers["Strict-Transport-Security"] == \
        "max-age=600; includeSubDomains"
    off = make_app(HSTS_SECONDS="0")
    assert "Strict-Transport-Security" not in probe(off, "/").headers


def test_hsts_behind_a_tls_terminating_proxy(make_app: Callable[..., AppUnderTest]) -> None:
    """Plain http from a trusted proxy that says the browser used https: HSTS; from one that
    says http, or from an untrusted client saying https: none."""
    behind = make_app(mode="local", TRUSTED_PROXY_HOPS="1")
    assert probe(behind, "/", **{"X-Forwarded-Proto": "https"}).headers[
        "Strict-Transport-Security"] == f"max-age={YEAR}"
    assert "Strict-Transport-Security" not in probe(
        behind, "/", **{"X-Forwarded-Proto": "http"}).headers
    direct = make_app(mode="local")
    assert "Strict-Transport-Security" not in probe(
        direct, "/", **{"X-Forwarded-Proto": "https"}).headers
