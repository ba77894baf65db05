"""Fixtures: the identity-provider and API stand-ins, and this app served over real HTTP(S).

The behavioural tests (test_web_flow.py) only use `app_under_test` / `make_app`, so they run
unchanged against every framework's adapter: only tests/app_server.py knows the framework.

As with a real tenant, the provider is on another site than the app: the app is served as
`localhost` and the stand-in as `127.0.0.1` (different sites for a browser's SameSite rules),
over https ("https" mode) or, in local development mode ("local"), with the app on
http://localhost and the provider's sign-in pages on http://127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme

from {{ cookiecutter.package_name }}.config import DEFAULTS
from {{ cookiecutter.package_name }}.core.services import Services

from devprovider import StandIn
from devprovider.__main__ import grant_app_only_apis, register_apis
from tests.app_server import serve
from tests.browser import Browser
from tests.services import shared_store

pytest_plugins = ["tests.devprovider_fixtures"]

CLIENT_ID = "6f0c5f6e-3d8c-4a3e-9a7e-0c6d1b2a3f40"


@dataclass
class AppUnderTest:
    """A running app plus what the tests may look at: its URL, its core services, the stand-in."""

    base_url: str
    standin: StandIn
    services: Services
    ca_path: str
    mode: str = "https"  # or "local": local development mode on http://localhost
    browsers: list[Browser] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # the settings the app was built with

    def browser(self, profile: str = "chromium") -> Browser:
        """A new browser with its own cookie jar (one per simulated user)."""
        browser = Browser(verify=self.ca_path, profile=profile)
        self.browsers.append(browser)
        return browser

    def close_browsers(self) -> None:
        for browser in self.browsers:
            browser.close()

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


def app_environment(standin: StandIn, base_url: str, ca_path: str, tmp_path: Path, *,
                    optional_claims: tuple[str, ...] = (), **overrides: str) -> dict[str, str]:
    """The settings of an app served at `base_url`, registered with the stand-in (a new client
    secret; `optional_claims`: the ID token claims the registration asks for)."""
    secret = secrets.token_urlsafe(24)
    # The stand-in speaks as the kind of provider this app was generated for: Entra ID, or a
    # strict standard OpenID Connect provider (its /oidc issuer).
    where = ({"AUTHORITY": "", "OIDC_AUTHORITY": standin.oidc_authority}
             if DEFAULTS.oidc_authority else {"AUTHORITY": standin.authority})
    env = {
        **where,
        "INSTANCE_DISCOVERY": "false",  # a loopback host is not a known Entra instance
        "CLIENT_ID": CLIENT_ID,
        # A secret, whatever kind the project was generated for: test_credentials.py tests
        # every kind, and the other tests need not make certificates or federated tokens.
        "CLIENT_CREDENTIAL": "secret",
        "CLIENT_SECRET": secret,
        "REDIRECT_URI": base_url + DEFAULTS.redirect_path,
        "SECRET_KEY": secrets.token_urlsafe(48),
        "CA_BUNDLE": ca_path,
        "TOKEN_CACHE_DIR": str(tmp_path / "token_cache"),
        # A redis or sql project: the test's own prefix on the machine's real server.
        **shared_store().environment(),
        "LOG_LEVEL": "WARNING",
        **register_apis(standin, DEFAULTS.downstream_apis),
    }
    env.update(overrides)
    # Entra has no separate list of sign-out targets for web apps: the post-logout redirect
    # URI must be one of the redirect URIs.
    standin.register_client(CLIENT_ID, secret, [env["REDIRECT_URI"], base_url + "/"],
                            optional_claims=list(optional_claims),
                            front_channel_logout_url=base_url + DEFAULTS.front_channel_logout_path)
    grant_app_only_apis(standin, CLIENT_ID, DEFAULTS.downstream_apis)
    return env


@pytest.fixture(scope="session", autouse=True)
def _small_default_trust_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The default trust store of this test process: one throwaway CA (REQUESTS_CA_BUNDLE).

    The app adds CA_BUNDLE to the default trust store (REQUESTS_CA_BUNDLE, else certifi's:
    about 140 public CAs) and reads the combined file into a TLS context, about 20 ms of CPU
    each time: once per app, but every test starts new apps (and processes). No test
    reaches a public host, so a store that trusts nothing they serve stands in for the public
    one: what the tests' servers are trusted by is still CA_BUNDLE alone."""
    ca = trustme.CA(organization_name="default trust store of the tests")
    path = tmp_path_factory.mktemp("default-trust") / "ca-bundle.pem"
    ca.cert_pem.write_to_path(str(path))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REQUESTS_CA_BUNDLE", str(path))
        yield str(path)


def server_process_environment() -> dict[str, str]:
    """What a server process a test starts (with the app's settings as its whole environment)
    takes from this one: PATH, and the tests' default trust store (`_small_default_trust_store`:
    its app reads the store for each new connection too)."""
    return {"PATH": os.environ.get("PATH", ""),
            "REQUESTS_CA_BUNDLE": os.environ.get("REQUESTS_CA_BUNDLE", "")}


@pytest.fixture(scope="session", autouse=True)
def _shared_store_cleanup() -> Iterator[None]:
    """At the end, remove what this test process left in a shared store (if it used one)."""
    yield
    shared_store().close()


@pytest.fixture
def make_app(standin: StandIn, server_cert_files: tuple[str, str], ca_bundle_path: str,
             tls_server_files: tuple[str, str], tmp_path: Path
             ) -> Iterator[Callable[..., AppUnderTest]]:
    """Start the app against the stand-in; keyword arguments override environment variables.

    `mode="local"` runs it in local development mode: the app on http://localhost, and a
    stand-in whose sign-in pages are on http://127.0.0.1 (still another site). `optional_claims`
    are the ID token optional claims the app registration asks for.
    """
    with contextlib.ExitStack() as stack:

        def start(*, mode: str = "https", optional_claims: tuple[str, ...] = (),
                  **overrides: str) -> AppUnderTest:
            built_with: dict[str, str] = {}
            provider = standin
            if mode == "local":
                provider = stack.enter_context(
                    StandIn(*tls_server_files, browser_base_url="http://127.0.0.1:0",
                            reuse_keys=True))

            def env_for(base_url: str) -> dict[str, str]:
                env = app_environment(provider, base_url, ca_bundle_path, tmp_path,
                                      optional_claims=optional_claims, **overrides)
                built_with.update(env)
                return env

            base_url, services = stack.enter_context(serve(
                env_for, server_cert_files if mode == "https" else None, host="localhost"))
            app = AppUnderTest(base_url=base_url, standin=provider, services=services,
                               ca_path=ca_bundle_path, mode=mode, env=built_with)
            # Before the server stops: a server waits for the connections its clients keep.
            stack.callback(app.close_browsers)
            return app

        yield start


@pytest.fixture
def app_under_test(make_app: Callable[..., AppUnderTest]) -> AppUnderTest:
    return make_app()


@pytest.fixture(params=["https", "local"])
def app_in_each_mode(request: pytest.FixtureRequest,
                     make_app: Callable[..., AppUnderTest]) -> AppUnderTest:
    """The app over https, then in local development mode (both with the provider on another
    site)."""
    return make_app(mode=request.param)


def page_of(api: str) -> str:
    """The app's page that calls the API named `api`."""
    return "/profile" if api == "graph" else f"/api/{api}"


def entra_authority(authority: str) -> dict[str, str]:
    """The settings of an Entra app at `authority`. At a multi-tenant one (`organizations`,
    `common`) the app's app-only APIs are called with the user's token instead: the app's own
    token comes from one tenant, and the app refuses to start with them there."""
    env = {"AUTHORITY": authority, "OIDC_AUTHORITY": ""}
    if authority.rstrip("/").rsplit("/", 1)[-1].lower() in ("organizations", "common"):
        env.update({f"API_{name.upper()}_APP_ONLY": "false"
                    for name, api in DEFAULTS.downstream_apis.items() if api.get("app_only")})
    return env


def user_apis(apis: Mapping[str, Any]) -> list[str]:
    """The names of the APIs called with the signed-in user's token (the app-only ones are
    not), in their order: of `Settings.apis` or of config.py's `downstream_apis`."""
    return [name for name, api in apis.items()
            if not (api.get("app_only") if isinstance(api, Mapping) else api.app_only)]


def names_the_credential(message: str) -> bool:
    """Whether a start-up message about an environment without credential variables names the
    credential to set. The project's own kind applies; a managed identity the project names
    needs no variable."""
    baked = DEFAULTS.credential
    if baked.get("CLIENT_CREDENTIAL") == "assertion" and baked.get(
            "CLIENT_ASSERTION_MANAGED_IDENTITY"):
        return True
    return re.search(r"CLIENT_(SECRET|CERTIFICATE_FILE|ASSERTION|CREDENTIAL)", message) is not None


def environment_for_settings_tests(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """A complete, valid environment without any server, for start-up tests."""
    env = {
        "CLIENT_ID": CLIENT_ID,
        "CLIENT_CREDENTIAL": "secret",
        "CLIENT_SECRET": "not-a-real-secret",
        "REDIRECT_URI": "https://app.example.com" + DEFAULTS.redirect_path,
        "SECRET_KEY": "k" * 48,
        **shared_store().local_environment(),
    }
    env.update(overrides or {})
    return env
