"""A slow or silent identity provider or API costs a user an error page after the outbound
deadline, never a hung request, a 500, or (under the shipped gunicorn settings) a restarted
worker that signs everyone out."""

from __future__ import annotations

import os
import runpy
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from {{ cookiecutter.package_name }}.config import DEFAULTS

from devprovider import DEFAULT_USERS, StandIn, TestUser
from tests.browser import Browser
from tests.conftest import CLIENT_ID, AppUnderTest, app_environment, page_of
from tests.test_web_flow import expire_access_tokens, sign_in, sign_in_api_page

ALICE, BOB = DEFAULT_USERS[0], DEFAULT_USERS[1]
DEADLINE = 1  # OUTBOUND_DEADLINE_SECONDS for these tests
MARGIN = 1.0  # scheduling slack; each outbound call gets the whole deadline
TRICKLE = 0.3  # the provider or API sends one byte every this many seconds
PROJECT = Path(__file__).parents[1]


def app_with_deadline(make_app: Callable[..., AppUnderTest], **overrides: str) -> AppUnderTest:
    return make_app(OUTBOUND_DEADLINE_SECONDS=str(DEADLINE), **overrides)


def timed_get(browser: Browser, url: str) -> tuple[requests.Response, float]:
    start = time.monotonic()
    # The client's own timeout only bounds a broken app's hang (the test then fails).
    page = browser.get(url, allow_redirects=False, timeout=15)
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
    sign_in(app, browser, ALICE, page)
    expire_access_tokens(app, ALICE)
    with app.standin.slow(token_path(app), trickle_bytes_every_s=TRICKLE):
        answer, elapsed = timed_get(browser, app.url(page))
    assert answer.status_code == 502, answer.text
    assert "could not be obtained" in answer.text
    # MSAL may try a refresh token per matching cache entry: each call has its own deadline.
    assert elapsed < 2 * DEADLINE + MARGIN
    # Once the provider answers again, so does the page, and the user was never signed out.
    assert browser.get(app.url(page)).status_code == 200


def test_an_api_that_trickles_ends_in_an_error_page(
        make_app: Callable[..., AppUnderTest]) -> None:
    app = app_with_deadline(make_app)
    page = sign_in_api_page(app)
    browser = app.browser()
    sign_in(app, browser, ALICE, page)
    api_path = urlsplit(app.services.settings.apis[api_name_of(page)].base_url).path
    with app.standin.slow(api_path, trickle_bytes_every_s=TRICKLE):
        answer, elapsed = timed_get(browser, app.url(page))
    assert answer.status_code == 502, answer.text
    assert "could not be reached" in answer.text
    assert elapsed < DEADLINE + MARGIN


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
    assert elapsed < DEADLINE + MARGIN


# ------------------------------------------------------------------------------ gunicorn
# The shipped settings plus, for the test, a worker timeout shorter than the slow request: a
# sync worker would be killed by it (and answer 500); a threaded one keeps reporting.
TEST_CONFIG = """
import os
exec(compile(open({shipped!r}).read(), {shipped!r}, "exec"))
timeout = 2
control_socket_disable = True  # gunicorn 25+: no shared ~/.gunicorn/gunicorn.ctl between tests
"""


@pytest.mark.parametrize(("env", "workers"), [
    ({"TOKEN_CACHE_BACKEND": "memory", "WEB_CONCURRENCY": "4"}, 1),
    ({"TOKEN_CACHE_BACKEND": "filesystem"}, 2),
    ({"TOKEN_CACHE_BACKEND": "filesystem", "WEB_CONCURRENCY": "4"}, 4),
    ({}, 1 if DEFAULTS.token_cache_backend == "memory" else 2),
])
def test_the_shipped_gunicorn_settings(env: dict[str, str], workers: int,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """One process for the memory backend (its sessions and caches live in that process)."""
    for name in ("TOKEN_CACHE_BACKEND", "WEB_CONCURRENCY", "BIND", "PORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = runpy.run_path(str(PROJECT / "gunicorn.conf.py"))
    assert settings["workers"] == workers
    assert settings["worker_class"] == "gthread" and settings["threads"] > 1
    assert settings["bind"] == "0.0.0.0:8000"
    monkeypatch.setenv("PORT", "9000")
    assert runpy.run_path(str(PROJECT / "gunicorn.conf.py"))["bind"] == "0.0.0.0:9000"


@dataclass
class Served:
    app: AppUnderTest
    env: dict[str, str]


@pytest.fixture(params=["memory", "filesystem"])
def gunicorn_app(standin: StandIn, server_cert_files: tuple[str, str], ca_bundle_path: str,
                 tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Served]:
    """The app under gunicorn with the shipped gunicorn.conf.py (the app preloaded, then one
    worker for the memory backend, two for the filesystem one), over https on a socket bound
    here (so its port is known before the app's REDIRECT_URI is)."""
    pytest.importorskip("gunicorn")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    base_url = f"https://localhost:{listener.getsockname()[1]}"
    secret = secrets.token_urlsafe(24)
    env = app_environment(standin, base_url, ca_bundle_path, tmp_path, secret,
                          TOKEN_CACHE_BACKEND=request.param, OUTBOUND_DEADLINE_SECONDS="3")
    standin.register_client(CLIENT_ID, secret, [env["REDIRECT_URI"], base_url + "/"])
    config = tmp_path / "gunicorn.test.py"
    config.write_text(TEST_CONFIG.format(shipped=str(PROJECT / "gunicorn.conf.py")))
    server_env = {**env, "PYTHONPATH": str(PROJECT), "PATH": os.environ.get("PATH", ""),
                  "BIND": f"fd://{listener.fileno()}"}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(config), "--certfile", server_cert_files[0],
         "--keyfile", server_cert_files[1],
         "{{ cookiecutter.package_name }}.app:create_app()"],
        cwd=tmp_path, env=server_env, pass_fds=[listener.fileno()], stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    # The socket listens already: the first request waits in its backlog until a worker is up.
    app = AppUnderTest(base_url=base_url, standin=standin, services=None,  # type: ignore[arg-type]
                       ca_path=ca_bundle_path)
    try:
        yield Served(app, env)
    finally:
        for browser in app.browsers:
            browser.close()
        server.send_signal(signal.SIGINT)  # quick shutdown
        output, _ = server.communicate(timeout=30)
        listener.close()
        assert "WORKER TIMEOUT" not in output, output
        assert "Traceback" not in output, output


def signed_in_as(app: AppUnderTest, browser: Browser, user: TestUser) -> bool:
    return user.name in browser.get(app.url("/"), timeout=30).text


def test_the_shipped_gunicorn_settings_survive_a_provider_slower_than_the_worker_timeout(
        gunicorn_app: Served) -> None:
    app = gunicorn_app.app
    name = DEFAULTS.sign_in_api or next(iter(DEFAULTS.downstream_apis), None)
    if name is None:
        pytest.skip("this app calls no API")
    assert app.browser().get(app.url("/"), timeout=30).status_code == 200  # a worker is up
    others = app.browser()
    sign_in(app, others, BOB)
    browser = app.browser()
    sign_in(app, browser, ALICE, page_of(name))
    api_path = urlsplit(gunicorn_app.env[f"API_{name.upper()}_BASE_URL"]).path
    with app.standin.slow(api_path, trickle_bytes_every_s=TRICKLE):
        answer, elapsed = timed_get(browser, app.url(page_of(name)))
    assert answer.status_code == 502, answer.text
    assert "could not be reached" in answer.text
    assert 3 <= elapsed < 3 + MARGIN  # longer than gunicorn's timeout (2 s), yet answered
    # No worker was restarted: the other user's session (in a worker's memory, for the memory
    # backend) is still there. With two workers, the requests above reached both.
    assert signed_in_as(app, others, BOB)
    assert signed_in_as(app, browser, ALICE)
