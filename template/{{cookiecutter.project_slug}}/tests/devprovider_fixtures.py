"""pytest fixtures for the local Entra ID stand-in (load with
``pytest_plugins = ["tests.devprovider_fixtures"]``).

* ``tls_ca`` / ``ca_bundle_path``: a throwaway test CA (trustme) and a PEM file holding only it.
* ``tls_server_files``: a server certificate for 127.0.0.1 and localhost, as (cert, key) paths.
* ``standin``: a started stand-in with one client (``CLIENT_ID``) and one API (``todo``).
* ``http_session``: a ``requests.Session`` that trusts the test CA and ignores the environment.
* ``new_browser``: a factory of ``tests.browser.Browser`` objects (one cookie jar each).

Machines here set ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``, which ``requests`` lets override a
``verify=`` argument: every session made here sets ``trust_env = False`` for that reason.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests
import trustme

from devprovider import StandIn
from tests.browser import Browser, auth_response

CLIENT_ID = "6f1e3a52-0b7d-4c1a-9f3e-2d8b7c6a5e41"
CLIENT_SECRET = "test-secret-value"
REDIRECT_URI = "https://app.test/auth/callback"
# A sign-out target: providers accept it only because it is a redirect URI of the client too.
POST_LOGOUT_REDIRECT_URI = "https://app.test/signed-out"
TODO_API = "todo"
TODO_RESOURCE = "api://11111111-2222-3333-4444-555555555555"
TODO_SCOPES = ["Todo.Read", "Todo.ReadWrite"]


def make_http_session(ca_path: str) -> requests.Session:
    """A session trusting only ``ca_path``, immune to REQUESTS_CA_BUNDLE and proxies."""
    session = requests.Session()
    session.trust_env = False
    session.verify = ca_path
    return session


def pkce_pair() -> tuple[str, str]:
    """A PKCE (verifier, S256 challenge) pair."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def authorize_url(standin: StandIn, *, client_id: str = CLIENT_ID,
                  redirect_uri: str = REDIRECT_URI, scope: str = "openid profile offline_access",
                  challenge: str | None = None, state: str = "st4te", nonce: str = "n0nce",
                  response_mode: str = "form_post", authority: str | None = None,
                  **extra: str) -> str:
    """An /authorize URL of ``standin`` (Entra style unless ``authority`` says otherwise)."""
    params = {"client_id": client_id, "response_type": "code", "redirect_uri": redirect_uri,
              "scope": scope, "state": state, "nonce": nonce, "response_mode": response_mode}
    if challenge is not None:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    params.update(extra)
    base = authority or standin.authority
    path = "/authorize" if base.endswith("/oidc") else "/oauth2/v2.0/authorize"
    return f"{base}{path}?{urlencode(params)}"


def authorize(standin: StandIn, browser: Browser, username: str = "alice@contoso.test",
              **kwargs: str) -> dict[str, str]:
    """Run /authorize programmatically: show the page, pick ``username``, and return the
    authorization response (code, state, client_info, session_state) without calling the app."""
    page = browser.get(authorize_url(standin, **kwargs))
    assert page.status_code == 200, page.text
    return auth_response(browser.sign_in(page, username, follow=False))


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def ca_bundle_path(tls_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("devprovider-ca") / "test-ca.pem"
    tls_ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture(scope="session")
def tls_server_files(tls_ca: trustme.CA,
                     tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """(certificate chain path, key path) for 127.0.0.1 and localhost."""
    folder: Path = tmp_path_factory.mktemp("devprovider-tls")
    cert = tls_ca.issue_cert("127.0.0.1", "localhost")
    cert_path, key_path = folder / "server.pem", folder / "server.key"
    cert_path.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(key_path))
    return str(cert_path), str(key_path)


def _check_no_errors(standin: StandIn) -> None:
    # A handler exception is a stand-in bug: fail the test that triggered it.
    assert not standin.errors, "stand-in handler errors:\n" + "\n".join(standin.errors)


@pytest.fixture
def standin(tls_server_files: tuple[str, str]) -> Iterator[StandIn]:
    """A started stand-in with client CLIENT_ID (secret CLIENT_SECRET, redirect URIs
    REDIRECT_URI and POST_LOGOUT_REDIRECT_URI) and the ``todo`` API (TODO_RESOURCE,
    TODO_SCOPES)."""
    cert_path, key_path = tls_server_files
    with StandIn(cert_path, key_path, reuse_keys=True) as s:
        s.register_client(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI, POST_LOGOUT_REDIRECT_URI],
                          display_name="Contoso Test App")
        s.register_api(TODO_API, TODO_RESOURCE, TODO_SCOPES)
        yield s
        _check_no_errors(s)


@pytest.fixture
def http_session(ca_bundle_path: str) -> Iterator[requests.Session]:
    session = make_http_session(ca_bundle_path)
    yield session
    session.close()


@pytest.fixture
def new_browser(ca_bundle_path: str) -> Iterator[Callable[[], Browser]]:
    """Call it for each browser (user) a test needs; each has its own cookie jar."""
    made: list[Browser] = []

    def factory() -> Browser:
        made.append(Browser(ca_bundle_path))
        return made[-1]

    yield factory
    for b in made:
        b.close()
