"""Fixtures: the identity-provider and API stand-ins, and this app served over real HTTPS.

The behavioural tests (test_web_flow.py) only use `app_under_test`, so they would run unchanged
against another framework's adapter: only `serve_app` below knows about Flask.
"""

from __future__ import annotations

import contextlib
import secrets
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme
from werkzeug.serving import make_server

from {{ cookiecutter.package_name }}.app import create_app
from {{ cookiecutter.package_name }}.config import DEFAULTS
from {{ cookiecutter.package_name }}.core.web import Services

from devprovider import StandIn
from devprovider.__main__ import register_apis
from tests.browser import Browser

pytest_plugins = ["tests.devprovider_fixtures"]

CLIENT_ID = "6f0c5f6e-3d8c-4a3e-9a7e-0c6d1b2a3f40"


@dataclass
class AppUnderTest:
    """A running app plus what the tests may look at: its URL, its core services, the stand-in."""

    base_url: str
    standin: StandIn
    services: Services
    ca_path: str
    browsers: list[Browser] = field(default_factory=list)

    def browser(self) -> Browser:
        """A new browser with its own cookie jar (one per simulated user)."""
        browser = Browser(verify=self.ca_path)
        self.browsers.append(browser)
        return browser

    def url(self, path: str) -> str:
        return self.base_url + path


@pytest.fixture(scope="session")
def server_cert_files(tls_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory
                      ) -> tuple[str, str]:
    cert = tls_ca.issue_cert("127.0.0.1", "localhost")
    folder = tmp_path_factory.mktemp("tls")
    chain, key = folder / "server.pem", folder / "server.key"
    cert.private_key_and_cert_chain_pem.write_to_path(str(chain))
    cert.private_key_pem.write_to_path(str(key))
    return str(chain), str(key)


@contextlib.contextmanager
def serve_app(build: Callable[[str], Any], cert_files: tuple[str, str] | None,
              host: str = "127.0.0.1") -> Iterator[tuple[str, Any]]:
    """Serve a WSGI app from a thread on an ephemeral port; `build(base_url)` makes the app.

    The port is known only once the socket is bound, and the app's REDIRECT_URI needs it, so the
    server starts with a forwarding WSGI callable that is pointed at the app once it is built.
    """
    holder: dict[str, Any] = {}
    ssl_context = None
    if cert_files:
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(*cert_files)
    server = make_server("127.0.0.1", 0, lambda env, start: holder["app"](env, start),
                         threaded=True, ssl_context=ssl_context)
    base_url = f"{'https' if cert_files else 'http'}://{host}:{server.port}"
    holder["app"] = build(base_url)
    # A short poll interval keeps shutdown (once per test) quick.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield base_url, holder["app"]
    finally:
        server.shutdown()
        thread.join(5)


def app_environment(standin: StandIn, base_url: str, ca_path: str, tmp_path: Path,
                    secret: str, **overrides: str) -> dict[str, str]:
    env = {
        "AUTHORITY": standin.authority,
        "INSTANCE_DISCOVERY": "false",  # a loopback host is not a known Entra instance
        "CLIENT_ID": CLIENT_ID,
        "CLIENT_SECRET": secret,
        "REDIRECT_URI": base_url + DEFAULTS.redirect_path,
        "SECRET_KEY": secrets.token_urlsafe(48),
        "CA_BUNDLE": ca_path,
        "TOKEN_CACHE_DIR": str(tmp_path / "token_cache"),
        "LOG_LEVEL": "WARNING",
        **register_apis(standin, DEFAULTS.downstream_apis),
    }
    env.update(overrides)
    return env


@pytest.fixture
def make_app(standin: StandIn, server_cert_files: tuple[str, str], ca_bundle_path: str,
             tmp_path: Path) -> Iterator[Callable[..., AppUnderTest]]:
    """Start the app against the stand-in; keyword arguments override environment variables."""
    with contextlib.ExitStack() as stack:

        def start(*, https: bool = True, **overrides: str) -> AppUnderTest:
            secret = secrets.token_urlsafe(24)

            def build(base_url: str) -> Any:
                env = app_environment(standin, base_url, ca_bundle_path, tmp_path, secret,
                                      **overrides)
                standin.register_client(CLIENT_ID, secret, [env["REDIRECT_URI"]],
                                        [base_url + "/"])
                return create_app(env)

            base_url, app = stack.enter_context(
                serve_app(build, server_cert_files if https else None))
            return AppUnderTest(base_url=base_url, standin=standin,
                                services=app.extensions["msal_webapp"], ca_path=ca_bundle_path)

        yield start


@pytest.fixture
def app_under_test(make_app: Callable[..., AppUnderTest]) -> AppUnderTest:
    return make_app()


def environment_for_settings_tests(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """A complete, valid environment without any server, for start-up tests."""
    env = {
        "CLIENT_ID": CLIENT_ID,
        "CLIENT_SECRET": "not-a-real-secret",
        "REDIRECT_URI": "https://app.example.com" + DEFAULTS.redirect_path,
        "SECRET_KEY": "k" * 48,
    }
    env.update(overrides or {})
    return env
