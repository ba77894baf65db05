"""A local stand-in for Microsoft Entra ID v2.0 and for the web APIs an app calls.

It serves, over real HTTPS on loopback (stdlib ``ThreadingHTTPServer`` + ``ssl``, no framework, so
the same stand-in serves Flask, Django and FastAPI apps):

* Entra-style endpoints under ``/{tenant}/...`` (discovery, JWKS, authorize, token, logout),
* a generic OpenID Connect issuer under ``/oidc`` (same behaviour, no ``client_info``),
* a Microsoft Graph stand-in (``/graph/v1.0/me``) and custom API stand-ins (``/apis/{name}/...``).

It aims to REJECT what Entra rejects (PKCE, redirect URI binding, single-use codes, one resource
per token request, consent, client authentication), with Entra's error JSON and AADSTS codes.
Codes whose exact Entra value is not confirmed by a source are marked ``UNCONFIRMED`` below.

Errors (``error`` / AADSTS): /authorize pages (no redirect): unknown client 700016, unregistered
redirect URI 50011. /authorize redirects: no PKCE invalid_request 9002325 (stricter than Entra for
web apps), decline access_denied 65004, unknown resource invalid_resource 500011, unknown scope
invalid_scope 650053, prompt=none login_required 50058 / consent_required 65001. /token: wrong
secret invalid_client 7000215 (401), no credential 7000218 (401), unknown client
unauthorized_client 700016, garbage code or refresh token invalid_grant 9002313, reused code
54005, expired code 70008, PKCE mismatch or missing verifier 501481, redirect_uri differing
500112 (error value UNCONFIRMED: invalid_grant), code or refresh token of another client 70000
(UNCONFIRMED), two resources 28000 (error value UNCONFIRMED: invalid_request), empty scope with a
code invalid_request 28003, no consent invalid_grant 65001 + suberror consent_required, step-up
invalid_grant 50076 + suberror basic_action, refresh token expired 700082 / revoked 50173 (both
suberror bad_token), assertions: expired 700024, unknown key or bad signature 700027, audience
700023 (UNCONFIRMED), iss/sub 700021.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import hashlib
import hmac
import json
import secrets
import socket
import ssl
import threading
import time
import traceback
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self, cast
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa

from . import pages

DEFAULT_TENANT_ID = "7d3c5b1e-4f2a-4c8b-9e6d-1a2b3c4d5e6f"
GRAPH_RESOURCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
CODE_LIFETIME = 600  # Entra codes live about 10 minutes
REFRESH_TOKEN_LIFETIME = 90 * 24 * 3600  # 90 days of inactivity (web apps)
CLOCK_SKEW = 300  # leeway for client assertions' exp/nbf, like Entra's 5 minutes
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Graph's delegated scopes are many; these give the registered casing for the usual ones.
# Other Graph scope names are accepted as given.
_GRAPH_KNOWN_SCOPES = (
    "User.Read", "User.ReadBasic.All", "User.Read.All", "User.ReadWrite", "Mail.Read", "Mail.Send",
    "Calendars.Read", "Calendars.ReadWrite", "Files.Read", "Files.ReadWrite", "Group.Read.All",
    "People.Read", "Contacts.Read", "Tasks.ReadWrite", "Sites.Read.All",
)
_ME_SCOPES = frozenset({"user.read", "user.readbasic.all", "user.read.all", "user.readwrite",
                        "user.readwrite.all", "directory.read.all"})
_SESSION_COOKIE = "devprovider_user"
# Entra's discovery for organizations/common publishes this literal in its issuer.
TENANT_PLACEHOLDER = "{tenantid}"


@dataclasses.dataclass(frozen=True)
class TestUser:
    """A test user. ``tid`` is the user's HOME tenant (``None``: the stand-in's tenant)."""

    __test__ = False  # not a pytest test class, despite the name

    username: str
    name: str
    oid: str
    tid: str | None = None
    given_name: str = ""
    surname: str = ""

    def __post_init__(self) -> None:
        # Derive given name / surname from the display name when not given.
        first, _, last = self.name.partition(" ")
        if not self.given_name:
            object.__setattr__(self, "given_name", first)
        if not self.surname:
            object.__setattr__(self, "surname", last)


DEFAULT_USERS: list[TestUser] = [
    TestUser("alice@contoso.test", "Alice Smith", "a11ce000-0000-4000-8000-00000000a11c"),
    TestUser("bob@contoso.test", "Bob Jones", "b0b00000-0000-4000-8000-000000000b0b"),
    TestUser("carol@contoso.test", "Carol Nguyen", "ca201000-0000-4000-8000-0000000ca201"),
]


class OAuthError(Exception):
    """An error Entra would answer with (``error``, an AADSTS number, an optional suberror)."""

    def __init__(self, error: str, code: int, message: str, *, status: int = 400,
                 suberror: str | None = None) -> None:
        super().__init__(f"{error}: AADSTS{code}: {message}")
        self.error = error
        self.code = code
        self.message = message
        self.status = status
        self.suberror = suberror


class _TokenRejected(Exception):
    """A bearer token an API stand-in refuses (401 invalid_token / 403 insufficient_scope)."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


@dataclasses.dataclass
class _Client:
    client_id: str
    secret: str | None
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    display_name: str
    certs_sha1: dict[str, x509.Certificate] = dataclasses.field(default_factory=dict)
    certs_sha256: dict[str, x509.Certificate] = dataclasses.field(default_factory=dict)

    def redirect_uri_allowed(self, uri: str) -> bool:
        if uri in self.redirect_uris:  # exact, case-sensitive
            return True
        # Entra ignores the port of http loopback redirect URIs (reply-url docs); all else exact.
        got = urlsplit(uri)
        if got.scheme != "http" or got.hostname not in ("localhost", "127.0.0.1"):
            return False
        for registered in self.redirect_uris:
            reg = urlsplit(registered)
            if (reg.scheme, reg.hostname, reg.path, reg.query) == ("http", got.hostname, got.path,
                                                                   got.query):
                return True
        return False


@dataclasses.dataclass
class _Api:
    name: str
    resource: str
    scopes: list[str]

    @property
    def audience(self) -> str:
        # v2 access tokens carry the API's client id as aud; api://<guid> gives that GUID.
        rest = self.resource[len("api://"):] if self.resource.startswith("api://") else ""
        try:
            return str(uuid.UUID(rest))
        except ValueError:
            return self.resource


@dataclasses.dataclass
class _AuthRequest:
    client: _Client
    redirect_uri: str
    response_mode: str
    state: str | None
    nonce: str | None
    scope: str
    oidc: set[str]
    resources: dict[str, set[str]]
    code_challenge: str
    code_challenge_method: str
    claims: dict[str, Any] | None
    login_hint: str | None
    prompt: str | None


@dataclasses.dataclass
class _Code:
    client_id: str
    redirect_uri: str
    code_challenge: str
    code_challenge_method: str
    nonce: str | None
    oidc: set[str]
    username: str
    claims: dict[str, Any] | None
    sid: str
    auth_time: int
    expires: float
    mode: str
    used: bool = False


@dataclasses.dataclass
class _RefreshToken:
    client_id: str
    username: str
    sid: str
    expires: float
    mode: str
    # access_token claims (name -> values) satisfied by an interactive sign-in (step-up).
    stepped_up: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    revoked: bool = False


@dataclasses.dataclass
class _Request:
    method: str
    path: str
    query: dict[str, str]
    raw_query: str
    form: dict[str, str]
    headers: Mapping[str, str]
    body: bytes
    origin: str  # scheme://host:port this request arrived on
    browser_only: bool


@dataclasses.dataclass
class _Response:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: list[tuple[str, str]] = dataclasses.field(default_factory=list)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_b64(n: int) -> str:
    return _b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))


def _json(status: int, payload: Any, headers: Sequence[tuple[str, str]] = ()) -> _Response:
    return _Response(status, json.dumps(payload).encode(), "application/json; charset=utf-8",
                     [("Cache-Control", "no-store, no-cache"), ("Pragma", "no-cache"), *headers])


def _html(status: int, text: str, headers: Sequence[tuple[str, str]] = ()) -> _Response:
    return _Response(status, text.encode(), "text/html; charset=utf-8",
                     [("Cache-Control", "no-store"), *headers])


def _redirect(location: str, headers: Sequence[tuple[str, str]] = ()) -> _Response:
    return _Response(302, b"", headers=[("Location", location), *headers])


def _claims_section(claims: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``access_token`` part of an OIDC ``claims`` request (a dict of claim -> spec)."""
    if not claims:
        return {}
    section = claims.get("access_token")
    return dict(section) if isinstance(section, Mapping) else {}


def _spec_values(spec: Any) -> list[str]:
    if not isinstance(spec, Mapping):
        return []
    if "values" in spec and isinstance(spec["values"], list):
        return [str(v) for v in spec["values"]]
    if "value" in spec:
        return [str(spec["value"])]
    return []


def _merge_claims(*requests: Mapping[str, Any] | None) -> dict[str, list[str]]:
    """Claim values asked for in ``claims`` requests, as they go into an access token."""
    out: dict[str, list[str]] = {}
    for req in requests:
        for name, spec in _claims_section(req).items():
            values = _spec_values(spec)
            if values:
                out.setdefault(name, [])
                out[name] += [v for v in values if v not in out[name]]
    return out


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Do not let a second stand-in steal a port in TIME_WAIT on some platforms.
    allow_reuse_address = False

    def __init__(self, addr: tuple[str, int], standin: StandIn, tls: ssl.SSLContext | None,
                 browser_only: bool) -> None:
        self.standin = standin
        self.tls = tls
        self.browser_only = browser_only
        super().__init__(addr, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = self.socket.accept()
        if self.tls is not None:
            # Handshake later, in the handler's thread, so one slow client cannot block accept().
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Connection-level failures (a client rejecting our certificate, a reset) are normal
        # and stay quiet; anything else is a bug and is recorded for the tests to see.
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            return
        self.standin.errors.append(traceback.format_exc())


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive: requests sessions reuse connections
    timeout = 30
    # Headers and body go out in two writes; with Nagle + delayed ACK each keep-alive response
    # would stall ~40 ms.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.do_handshake()

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.standin.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _dispatch(self) -> None:
        standin = self.server.standin
        try:
            raw_length = self.headers.get("Content-Length") or "0"
            length = int(raw_length) if raw_length.isdigit() else -1
            if not 0 <= length <= 4 * 1024 * 1024:
                # Unreadable or huge body: answer 400 and drop the connection (it is out of sync).
                self.close_connection = True
                self._send(_json(400, {"error": "invalid_request",
                                       "error_description": "Bad Content-Length."}))
                return
            body = self.rfile.read(length) if length else b""
            url = urlsplit(self.path)
            form: dict[str, str] = {}
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if ctype == "application/x-www-form-urlencoded" and body:
                form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
            scheme = "https" if self.server.tls is not None else "http"
            host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
            req = _Request(
                method=self.command, path=url.path or "/",
                query=dict(parse_qsl(url.query, keep_blank_values=True)), raw_query=url.query,
                form=form, headers=dict(self.headers.items()), body=body, origin=f"{scheme}://{host}",
                browser_only=self.server.browser_only,
            )
            resp = standin._route(req)
        except Exception:  # noqa: BLE001 - a stand-in bug: answer 500, make it visible to tests
            standin.errors.append(traceback.format_exc())
            resp = _json(500, {"error": "server_error",
                               "error_description": "The stand-in crashed; see StandIn.errors."})
        self._send(resp)

    def _send(self, resp: _Response) -> None:
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(resp.body)))
        for name, value in resp.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(resp.body)


class StandIn:
    """The Entra ID + API stand-in. ``start()`` it (or use it as a context manager)."""

    def __init__(
        self,
        tls_cert_file: str,
        tls_key_file: str,
        tenant_id: str = DEFAULT_TENANT_ID,
        users: Sequence[TestUser] = DEFAULT_USERS,
        browser_base_url: str | None = None,
        access_token_lifetime: int = 3600,
        *,
        tenant_domain: str = "contoso.test",
        verbose: bool = False,
    ) -> None:
        self.tenant_id = tenant_id
        self.tenant_domain = tenant_domain
        self.users: dict[str, TestUser] = {
            u.username.lower(): dataclasses.replace(u, tid=u.tid or tenant_id) for u in users
        }
        self.access_token_lifetime = access_token_lifetime
        self.verbose = verbose
        self.clock_offset: float = 0.0
        self.faults: set[str] = set()
        self.token_calls: collections.Counter[str] = collections.Counter()
        self.authorize_calls = 0
        self.logout_calls = 0
        self.last_logout: dict[str, str] | None = None
        self.api_calls: list[dict[str, Any]] = []
        self.errors: list[str] = []  # tracebacks of stand-in bugs (tests assert it stays empty)

        self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._tls.load_cert_chain(tls_cert_file, tls_key_file)
        self._requested_browser_url = browser_base_url
        self._lock = threading.RLock()
        self._clients: dict[str, _Client] = {}
        self._apis: dict[str, _Api] = {}
        self._consents: dict[tuple[str, str, str], set[str]] = {}
        self._codes: dict[str, _Code] = {}
        self._refresh_tokens: dict[str, _RefreshToken] = {}
        self._demands: dict[str, tuple[dict[str, Any], bool]] = {}
        # Two keys: one published in the JWKS (id tokens, custom API tokens) and one that is NOT
        # published, for Graph tokens: like Entra, an app must not be able to validate those.
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._kid = _b64url(secrets.token_bytes(18))
        self._graph_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._graph_kid = _b64url(secrets.token_bytes(18))
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []
        self._base_url: str | None = None
        self._browser_base_url: str | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Self:
        """Bind 127.0.0.1 on ephemeral ports and serve from daemon threads."""
        if self._servers:
            return self
        main = _Server(("127.0.0.1", 0), self, self._tls, browser_only=False)
        self._servers.append(main)
        self._base_url = f"https://127.0.0.1:{main.server_address[1]}"
        if self._requested_browser_url:
            url = urlsplit(self._requested_browser_url)
            host = url.hostname or "localhost"
            tls = self._tls if url.scheme == "https" else None
            bind = "127.0.0.1" if host in ("localhost", "127.0.0.1") else host
            web = _Server((bind, url.port or 0), self, tls, browser_only=True)
            self._servers.append(web)
            self._browser_base_url = f"{url.scheme}://{host}:{web.server_address[1]}"
        for srv in self._servers:
            t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1},
                                 name="devprovider", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        for srv in self._servers:
            srv.shutdown()
            srv.server_close()
        for t in self._threads:
            t.join(timeout=5)
        self._servers.clear()
        self._threads.clear()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ URLs
    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("StandIn.start() first: the port is chosen when it starts")
        return self._base_url

    @property
    def browser_base_url(self) -> str | None:
        """The plain-http base of the browser-facing pages, when requested (else None)."""
        return self._browser_base_url

    @property
    def authority(self) -> str:
        return f"{self.base_url}/{self.tenant_id}"

    @property
    def oidc_authority(self) -> str:
        return f"{self.base_url}/oidc"

    @property
    def graph_base_url(self) -> str:
        return f"{self.base_url}/graph/v1.0"

    def issuer(self, mode: str = "entra") -> str:
        """The id token issuer: Entra style ``{base}/{tid}/v2.0``, or ``{base}/oidc``."""
        return self.oidc_authority if mode == "oidc" else f"{self.base_url}/{self.tenant_id}/v2.0"

    def now(self) -> float:
        """The stand-in's clock: ``time.time() + clock_offset``."""
        return time.time() + self.clock_offset

    # ------------------------------------------------------------------ configuration
    def register_client(
        self,
        client_id: str,
        client_secret: str | None,
        redirect_uris: list[str],
        post_logout_redirect_uris: list[str] | None = None,
        *,
        display_name: str | None = None,
    ) -> None:
        """Register (or replace) an app registration. ``client_secret=None``: certificate only."""
        with self._lock:
            old = self._clients.get(client_id)
            name = display_name or (old.display_name if old else client_id)
            client = _Client(client_id, client_secret, list(redirect_uris),
                             list(post_logout_redirect_uris or []), name)
            if old is not None:  # keep certificates registered earlier
                client.certs_sha1, client.certs_sha256 = old.certs_sha1, old.certs_sha256
            self._clients[client_id] = client

    def register_client_certificate(self, client_id: str, cert_pem: str | bytes) -> None:
        """Add a certificate credential (private_key_jwt) to a registered client."""
        cert = x509.load_pem_x509_certificate(cert_pem.encode() if isinstance(cert_pem, str)
                                              else cert_pem)
        with self._lock:
            client = self._clients[client_id]
            client.certs_sha1[_b64url(cert.fingerprint(hashes.SHA1()))] = cert
            client.certs_sha256[_b64url(cert.fingerprint(hashes.SHA256()))] = cert

    def register_api(self, name: str, resource: str, scopes: list[str]) -> str:
        """Register a custom API (``resource`` like ``api://<guid>``); returns its base URL."""
        if name == "graph":
            raise ValueError("'graph' is the built-in Microsoft Graph stand-in")
        with self._lock:
            self._apis[name] = _Api(name, resource.rstrip("/"), list(scopes))
        return f"{self.base_url}/apis/{name}"

    def grant_consent(self, username: str, client_id: str, scopes: list[str]) -> None:
        """Pre-consent (like admin consent) scopes, e.g. ``api://x/Todo.Read`` or ``User.Read``."""
        _, resources = self._parse_scopes(" ".join(scopes), client_id)
        with self._lock:
            for resource, names in resources.items():
                self._add_consent(username, client_id, resource, names)

    def revoke_consent(self, username: str, client_id: str, resource: str) -> None:
        """Remove every consented scope of ``resource`` (e.g. ``api://x`` or Graph's URL)."""
        with self._lock:
            self._consents.pop((self._user(username).username, client_id,
                                self._canonical_resource(resource)), None)

    def revoke_refresh_tokens(self, username: str, client_id: str | None = None) -> None:
        """Revoke a user's refresh tokens (all clients, or one), like a password reset."""
        user = self._user(username)
        with self._lock:
            for rt in self._refresh_tokens.values():
                if rt.username == user.username and client_id in (None, rt.client_id):
                    rt.revoked = True

    def demand_claims(self, api: str, claims: dict[str, Any] | None, *, step_up: bool) -> None:
        """Make ``api`` (a registered name or ``"graph"``) answer tokens lacking these claims with
        a 401 ``insufficient_claims`` challenge. ``step_up=True``: a refresh asking for the claims
        fails with ``interaction_required``-style 50076 (the user must sign in interactively);
        ``step_up=False``: a refresh asking for them succeeds and the token carries them.
        ``claims=None`` removes the demand."""
        if api != "graph" and api not in self._apis:
            raise KeyError(f"unknown API {api!r}")
        with self._lock:
            if claims is None:
                self._demands.pop(api, None)
            else:
                self._demands[api] = (claims, step_up)

    def reset_counts(self) -> None:
        with self._lock:
            self.token_calls.clear()
            self.authorize_calls = 0
            self.logout_calls = 0
            self.last_logout = None
            self.api_calls.clear()

    def mint_access_token(self, username: str, client_id: str, scopes: list[str],
                          *, lifetime: int | None = None, **extra_claims: Any) -> str:
        """Issue an access token directly (no consent checks), for API-side tests."""
        _, resources = self._parse_scopes(" ".join(scopes), client_id)
        if len(resources) != 1:
            raise ValueError("scopes must name exactly one resource")
        ((resource, names),) = resources.items()
        return self._access_token(self._user(username), client_id, resource, sorted(names),
                                  sid=str(uuid.uuid4()), extra=extra_claims, lifetime=lifetime)

    # ------------------------------------------------------------------ helpers
    def _user(self, username: str) -> TestUser:
        try:
            return self.users[username.lower()]
        except KeyError:
            raise KeyError(f"unknown test user {username!r}") from None

    def _canonical_resource(self, resource: str) -> str:
        resource = resource.rstrip("/")
        if resource.lower() in (GRAPH_RESOURCE, GRAPH_APP_ID):
            return GRAPH_RESOURCE
        return resource

    def _api_for(self, resource: str) -> _Api | None:
        for api in self._apis.values():
            if api.resource == resource:
                return api
        return None

    def _parse_scopes(self, raw: str, client_id: str) -> tuple[set[str], dict[str, set[str]]]:
        """Split a scope string into OIDC scopes and {resource: {short scope names}}."""
        oidc: set[str] = set()
        resources: dict[str, set[str]] = {}
        for item in raw.split():
            if item.lower() in OIDC_SCOPES:
                oidc.add(item.lower())
                continue
            prefix, sep, name = item.rpartition("/")
            resource = self._canonical_resource(prefix) if sep else GRAPH_RESOURCE
            if resource == GRAPH_RESOURCE:
                known = {s.lower(): s for s in _GRAPH_KNOWN_SCOPES}
                name = ".default" if name.lower() == ".default" else known.get(name.lower(), name)
            else:
                api = self._api_for(resource)
                if api is None:
                    raise OAuthError(
                        "invalid_resource", 500011,
                        f"The resource principal named {resource} was not found in the tenant "
                        f"named {self.tenant_id}. This can happen if the application has not been "
                        "installed by the administrator of the tenant or consented to by any user "
                        "in the tenant. You might have sent your authentication request to the "
                        "wrong tenant.")
                if name.lower() != ".default":
                    registered = {s.lower(): s for s in api.scopes}
                    if name.lower() not in registered:
                        raise OAuthError(
                            "invalid_scope", 650053,
                            f"The application '{client_id}' asked for scope '{name}' that doesn't "
                            f"exist on the resource '{api.audience}'. Contact the app vendor.")
                    name = registered[name.lower()]
                else:
                    name = ".default"
            if not name:
                raise OAuthError("invalid_scope", 70011,
                                 f"The provided value for the input parameter 'scope' is not valid."
                                 f" The scope {raw} is not valid.")
            resources.setdefault(resource, set()).add(name)
        return oidc, resources

    def _add_consent(self, username: str, client_id: str, resource: str, names: set[str]) -> None:
        if ".default" in names:
            # .default at /authorize consents the app's statically configured permissions; the
            # stand-in has no app manifest, so take all of a custom API's scopes, or User.Read.
            api = self._api_for(resource)
            names = (names - {".default"}) | set(api.scopes if api else ["User.Read"])
        key = (self._user(username).username, client_id, resource)
        self._consents.setdefault(key, set()).update(names)

    def _consented(self, username: str, client_id: str, resource: str) -> set[str]:
        return set(self._consents.get((username, client_id, resource), set()))

    def _sub(self, user: TestUser, client_id: str) -> str:
        # Entra's sub is pairwise: stable per user and app, different across apps.
        return _b64url(hashlib.sha256(f"{user.oid}|{client_id}".encode()).digest())[:43]

    def client_info(self, user: TestUser) -> str:
        """Entra's ``client_info``: base64url JSON with the HOME tenant (``utid``), no padding."""
        return _b64url(json.dumps({"uid": user.oid, "utid": user.tid},
                                  separators=(",", ":")).encode())

    def _sign(self, claims: dict[str, Any], *, graph: bool = False) -> str:
        if graph:
            return jwt.encode(claims, self._graph_key, algorithm="RS256",
                              headers={"kid": self._graph_kid, "typ": "JWT"})
        return jwt.encode(claims, self._key, algorithm="RS256",
                          headers={"kid": self._kid, "typ": "JWT"})

    def _access_token(self, user: TestUser, client_id: str, resource: str, scp: list[str], *,
                      sid: str, extra: Mapping[str, Any] | None = None,
                      lifetime: int | None = None) -> str:
        now = int(self.now())
        exp = now + (lifetime if lifetime is not None else self.access_token_lifetime)
        common = {
            "iat": now, "nbf": now, "exp": exp, "aio": _b64url(secrets.token_bytes(24)),
            "name": user.name, "oid": user.oid, "scp": " ".join(scp), "sid": sid,
            "sub": self._sub(user, client_id), "tid": self.tenant_id,
            "uti": _b64url(secrets.token_bytes(16)), "rh": "0.stand-in.",
            "given_name": user.given_name, "family_name": user.surname,
        }
        if resource == GRAPH_RESOURCE:
            # Graph tokens are v1 tokens, signed with an unpublished key (apps must not validate).
            claims = {"aud": GRAPH_RESOURCE, "iss": f"https://sts.windows.net/{self.tenant_id}/",
                      "appid": client_id, "appidacr": "1", "upn": user.username,
                      "unique_name": user.username, "idtyp": "user", "ver": "1.0", **common}
        else:
            api = self._api_for(resource)
            aud = api.audience if api else resource
            claims = {"aud": aud, "iss": self.issuer(), "azp": client_id, "azpacr": "1",
                      "preferred_username": user.username, "ver": "2.0", **common}
        claims.update(extra or {})
        return self._sign(claims, graph=resource == GRAPH_RESOURCE)

    def _id_token(self, user: TestUser, client_id: str, oidc: set[str], *, mode: str, sid: str,
                  nonce: str | None, auth_time: int | None) -> str:
        now = int(self.now())
        claims: dict[str, Any] = {
            "aud": client_id, "iss": self.issuer(mode), "iat": now, "nbf": now, "exp": now + 3600,
            "rh": "0.stand-in.", "sid": sid, "sub": self._sub(user, client_id),
            "tid": self.tenant_id, "uti": _b64url(secrets.token_bytes(16)), "ver": "2.0",
            "aio": _b64url(secrets.token_bytes(24)),
        }
        if "profile" in oidc:  # Entra: `profile` gates oid, name, preferred_username
            claims.update(oid=user.oid, name=user.name, preferred_username=user.username,
                          login_hint=_b64url(user.username.encode()))
        if "email" in oidc:
            claims["email"] = user.username
        if nonce is not None:
            claims["nonce"] = nonce
        if auth_time is not None:
            claims["auth_time"] = auth_time
        return self._sign(claims)

    def _error_fields(self, e: OAuthError, req: _Request | None) -> dict[str, Any]:
        trace = str(uuid.uuid4())
        corr = (req.headers.get("client-request-id") if req else None) or str(uuid.uuid4())
        stamp = datetime.fromtimestamp(self.now(), UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        out: dict[str, Any] = {
            "error": e.error,
            "error_description": (f"AADSTS{e.code}: {e.message}\r\nTrace ID: {trace}\r\n"
                                  f"Correlation ID: {corr}\r\nTimestamp: {stamp}"),
            "error_codes": [e.code], "timestamp": stamp, "trace_id": trace,
            "correlation_id": corr, "error_uri": f"{self.base_url}/error?code={e.code}",
        }
        if e.suberror:
            out["suberror"] = e.suberror
        return out

    # ------------------------------------------------------------------ routing
    def _route(self, req: _Request) -> _Response:
        if "server_crash" in self.faults:  # lets tests prove that handler bugs surface
            raise RuntimeError("fault injected: server_crash")
        segs = [s for s in req.path.split("/") if s]
        if req.browser_only and not (
            not segs or segs == ["error"] or segs in (["oidc", "authorize"], ["oidc", "logout"])
            or (len(segs) == 4 and segs[1:3] == ["oauth2", "v2.0"]
                and segs[3] in ("authorize", "logout"))):
            # The plain-http listener only serves the pages a browser visits.
            return _json(404, {"error": "not_found",
                               "error_description": "Only sign-in and sign-out pages are served "
                                                    "here; use the https base URL."})
        if not segs or segs == ["error"]:
            return self._misc(req, segs)
        if segs[0] == "oidc":
            rest = "/".join(segs[1:])
            if rest == ".well-known/openid-configuration":
                return _json(200, self._discovery("oidc", "oidc"))
            if rest == "keys":
                return _json(200, self._jwks())
            if rest in ("authorize", "logout"):
                return self._browser_endpoint(req, rest, "oidc", "oidc")
            if rest == "token":
                return self._token(req, "oidc")
        elif segs[0] == "graph":
            return self._graph(req, segs[1:])
        elif segs[0] == "apis" and len(segs) >= 2:
            return self._custom_api(req, segs[1], "/" + "/".join(segs[2:]))
        elif len(segs) >= 2:
            tenant, rest = segs[0], "/".join(segs[1:])
            known = rest in ("v2.0/.well-known/openid-configuration", "discovery/v2.0/keys",
                             "oauth2/v2.0/authorize", "oauth2/v2.0/token", "oauth2/v2.0/logout")
            if known and not self._tenant_ok(tenant):
                e = OAuthError("invalid_tenant", 90002,
                               f"Tenant '{tenant}' not found. Check to make sure you have the "
                               "correct tenant ID and are signing into the correct cloud.")
                if rest.endswith(("authorize", "logout")):
                    return self._error_page(400, e, req)
                return _json(400, self._error_fields(e, req))
            if rest == "v2.0/.well-known/openid-configuration":
                return _json(200, self._discovery(tenant, "entra"))
            if rest == "discovery/v2.0/keys":
                return _json(200, self._jwks())
            if rest in ("oauth2/v2.0/authorize", "oauth2/v2.0/logout"):
                return self._browser_endpoint(req, rest.rsplit("/", 1)[1], tenant, "entra")
            if rest == "oauth2/v2.0/token":
                return self._token(req, "entra")
        return _json(404, {"error": "not_found", "error_description": f"No route for {req.path}"})

    def _tenant_ok(self, tenant: str) -> bool:
        return tenant.lower() in (self.tenant_id, "organizations", "common",
                                  self.tenant_domain.lower())

    def _browser_endpoint(self, req: _Request, what: str, tenant: str, mode: str) -> _Response:
        if what == "authorize":
            return self._authorize(req, tenant, mode)
        return self._logout(req)

    def _misc(self, req: _Request, segs: list[str]) -> _Response:
        if segs == ["error"]:
            code = req.query.get("code", "")
            return _html(200, pages.error_page(int(code) if code.isdigit() else 0,
                                               "See the error_description of the response.", {}))
        rows = [("Entra authority", self.authority), ("OIDC authority", self.oidc_authority),
                ("Graph", self.graph_base_url)]
        rows += [(f"API {a.name} ({a.resource})", f"{self.base_url}/apis/{a.name}")
                 for a in self._apis.values()]
        return _html(200, pages.index_page(rows, [(u.username, u.name)
                                                  for u in self.users.values()]))

    def _discovery(self, tenant: str, mode: str) -> dict[str, Any]:
        web = self._browser_base_url or self.base_url
        if mode == "oidc":
            prefix = f"{self.base_url}/oidc"
            issuer = self.issuer("oidc")
            auth, token, keys, logout = (f"{web}/oidc/authorize", f"{prefix}/token",
                                         f"{prefix}/keys", f"{web}/oidc/logout")
        else:
            prefix = f"{self.base_url}/{tenant}"
            # Like Entra: for organizations/common the issuer holds the literal placeholder
            # "{tenantid}" (tokens carry the real tenant id), while the endpoints keep the alias.
            generic = tenant.lower() in ("organizations", "common")
            issuer = (f"{self.base_url}/{TENANT_PLACEHOLDER}/v2.0" if generic
                      else f"{self.base_url}/{self.tenant_id}/v2.0")
            auth = f"{web}/{tenant}/oauth2/v2.0/authorize"
            token = f"{prefix}/oauth2/v2.0/token"
            keys = f"{prefix}/discovery/v2.0/keys"
            logout = f"{web}/{tenant}/oauth2/v2.0/logout"
        return {
            "token_endpoint": token,
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                      "client_secret_basic"],
            "jwks_uri": keys,
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": issuer,
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{self.base_url}/graph/oidc/userinfo",
            "authorization_endpoint": auth,
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": logout,
            "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name",
                                 "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat",
                                 "auth_time", "acr", "nonce", "preferred_username", "name", "tid",
                                 "ver", "at_hash", "c_hash", "email"],
            "code_challenge_methods_supported": ["plain", "S256"],
            "tenant_region_scope": "WW",
            "cloud_instance_name": "stand-in.local",
            "msgraph_host": urlsplit(self.base_url).netloc,
        }

    def _jwks(self) -> dict[str, Any]:
        pub = self._key.public_key().public_numbers()
        return {"keys": [{"kty": "RSA", "use": "sig", "kid": self._kid, "alg": "RS256",
                          "n": _int_b64(pub.n), "e": _int_b64(pub.e),
                          "issuer": self.issuer()}]}

    def _error_page(self, status: int, e: OAuthError, req: _Request) -> _Response:
        fields = self._error_fields(e, req)
        details = {"Request Id": fields["trace_id"], "Correlation Id": fields["correlation_id"],
                   "Timestamp": fields["timestamp"], "Error": e.error}
        return _html(status, pages.error_page(e.code, e.message, details))

    # ------------------------------------------------------------------ /authorize
    def _authorize(self, req: _Request, tenant: str, mode: str) -> _Response:
        with self._lock:
            if req.method == "GET":
                self.authorize_calls += 1
        q = req.query
        client_id = q.get("client_id", "")
        if not client_id:
            return self._error_page(400, OAuthError(
                "invalid_request", 900144,
                "The request body must contain the following parameter: 'client_id'."), req)
        client = self._clients.get(client_id)
        if client is None:
            return self._error_page(400, OAuthError(
                "unauthorized_client", 700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{self.tenant_domain}'. This can happen if the application has not been "
                "installed by the administrator of the tenant or consented to by any user in the "
                "tenant. You may have sent your authentication request to the wrong tenant."), req)
        redirect_uri = q.get("redirect_uri", "")
        if not redirect_uri or not client.redirect_uri_allowed(redirect_uri):
            # Never redirect to an unregistered URI: an error page, like Entra's AADSTS50011.
            return self._error_page(400, OAuthError(
                "invalid_request", 50011,
                f"The redirect URI '{redirect_uri}' specified in the request does not match the "
                f"redirect URIs configured for the application '{client_id}'. Make sure the "
                "redirect URI sent in the request matches one added to your application in the "
                "Azure portal."), req)
        state = q.get("state")
        response_mode = q.get("response_mode") or "query"
        try:
            if response_mode not in ("query", "fragment", "form_post"):
                response_mode = "query"
                # UNCONFIRMED code: Entra's number for an unknown response_mode.
                raise OAuthError("invalid_request", 900144,
                                 "The provided value for the input parameter 'response_mode' is "
                                 "not valid.")
            ar = self._validate_authorize(q, client, redirect_uri, response_mode, state)
            if req.method == "POST":
                return self._authorize_post(req, ar, mode)
            if ar.prompt == "none":
                return self._authorize_silent(req, ar, mode)
        except OAuthError as e:
            return self._auth_response(redirect_uri, response_mode,
                                       self._redirect_error_params(e, state, req))
        return self._sign_in_page(req, ar)

    def _validate_authorize(self, q: Mapping[str, str], client: _Client, redirect_uri: str,
                            response_mode: str, state: str | None) -> _AuthRequest:
        if q.get("response_type") != "code":
            raise OAuthError("unsupported_response_type", 700054,
                             f"response_type '{q.get('response_type', '')}' is not enabled for "
                             "the application.")
        scope = q.get("scope", "").strip()
        if not scope:
            raise OAuthError("invalid_request", 900144,
                             "The request body must contain the following parameter: 'scope'.")
        oidc, resources = self._parse_scopes(scope, client.client_id)
        challenge = q.get("code_challenge", "")
        method = q.get("code_challenge_method") or "plain"  # RFC 7636 default
        if not challenge:
            # Stricter than Entra for confidential web apps (Entra only requires PKCE for SPAs,
            # AADSTS9002325): every generated app uses PKCE, so its absence is a bug.
            raise OAuthError("invalid_request", 9002325,
                             "Proof Key for Code Exchange is required for cross-origin "
                             "authorization code redemption.")
        if method not in ("S256", "plain"):
            # UNCONFIRMED code number.
            raise OAuthError("invalid_request", 501491,
                             "Invalid code_challenge_method; only S256 and plain are supported.")
        if not 43 <= len(challenge) <= 128:
            raise OAuthError("invalid_request", 501491, "Invalid size of Code_Challenge parameter.")
        claims = None
        if q.get("claims"):
            try:
                claims = json.loads(q["claims"])
                if not isinstance(claims, dict):
                    raise TypeError
            except (ValueError, TypeError):
                # UNCONFIRMED code number.
                raise OAuthError("invalid_request", 90100,
                                 "The claims parameter is not valid JSON.") from None
        return _AuthRequest(client, redirect_uri, response_mode, state, q.get("nonce"), scope,
                            oidc, resources, challenge, method, claims, q.get("login_hint"),
                            q.get("prompt"))

    def _redirect_error_params(self, e: OAuthError, state: str | None,
                               req: _Request) -> dict[str, str]:
        fields = self._error_fields(e, req)
        params = {"error": e.error, "error_description": fields["error_description"],
                  "error_uri": fields["error_uri"]}
        if e.suberror:
            params["suberror"] = e.suberror
        if state is not None:
            params["state"] = state
        return params

    def _auth_response(self, redirect_uri: str, response_mode: str, params: dict[str, str],
                       headers: Sequence[tuple[str, str]] = ()) -> _Response:
        if response_mode == "form_post":
            return _html(200, pages.form_post_page(redirect_uri, params), headers)
        url = urlsplit(redirect_uri)
        path = url.path or "/"  # Entra adds a trailing "/" to path-less redirect URIs
        if response_mode == "fragment":
            return _redirect(urlunsplit((url.scheme, url.netloc, path, url.query,
                                         urlencode(params))), headers)
        query = f"{url.query}&{urlencode(params)}" if url.query else urlencode(params)
        return _redirect(urlunsplit((url.scheme, url.netloc, path, query, "")), headers)

    def _sign_in_page(self, req: _Request, ar: _AuthRequest) -> _Response:
        hint = (ar.login_hint or "").lower()
        users = sorted(self.users.values(), key=lambda u: u.username.lower() != hint)
        lines = sorted(ar.oidc - {"offline_access"})
        if "offline_access" in ar.oidc:
            lines.append("offline_access (keep access to data you have given it access to)")
        for resource, names in ar.resources.items():
            if resource == GRAPH_RESOURCE:
                lines += [f"Microsoft Graph: {n}" for n in sorted(names)]
            else:
                lines += [f"{resource}/{n}" for n in sorted(names)]
        action = req.path + ("?" + req.raw_query if req.raw_query else "")
        return _html(200, pages.sign_in_page(
            app_name=ar.client.display_name, form_action=action, scope_lines=lines,
            users=[(u.username, u.name, u.username.lower() == hint) for u in users]))

    def _authorize_post(self, req: _Request, ar: _AuthRequest, mode: str) -> _Response:
        action = req.form.get("action", "")
        if action == "decline":
            raise OAuthError("access_denied", 65004,
                             "User declined to consent to access the app.")
        if action != "accept":
            raise OAuthError("invalid_request", 900144,
                             "The request body must contain the following parameter: 'action'.")
        try:
            user = self._user(req.form.get("username", ""))
        except KeyError:
            # UNCONFIRMED code number; Entra shows its own page for an unknown account.
            raise OAuthError("invalid_request", 50034,
                             "The user account does not exist in the directory.") from None
        with self._lock:
            for resource, names in ar.resources.items():
                self._add_consent(user.username, ar.client.client_id, resource, names)
        cookie = (f"{_SESSION_COOKIE}={_b64url(user.username.encode())}; Path=/; HttpOnly; "
                  "SameSite=Lax")
        return self._issue_code(ar, user, mode, [("Set-Cookie", cookie)])

    def _authorize_silent(self, req: _Request, ar: _AuthRequest, mode: str) -> _Response:
        """``prompt=none``: succeed only with a known user (session cookie or login_hint)
        who has consented to everything asked for."""
        username = ar.login_hint or ""
        for part in (req.headers.get("Cookie") or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == _SESSION_COOKIE and not username:
                try:
                    username = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
                except ValueError:
                    username = ""
        if username.lower() not in self.users:
            raise OAuthError("login_required", 50058,
                             "A silent sign-in request was sent but no user is signed in.")
        user = self._user(username)
        for resource, names in ar.resources.items():
            consented = self._consented(user.username, ar.client.client_id, resource)
            if not (names - {".default"}) <= consented or (".default" in names and not consented):
                raise OAuthError("consent_required", 65001,
                                 f"The user or administrator has not consented to use the "
                                 f"application with ID '{ar.client.client_id}'. Send an "
                                 "interactive authorization request for this user and resource.")
        return self._issue_code(ar, user, mode, [])

    def _issue_code(self, ar: _AuthRequest, user: TestUser, mode: str,
                    headers: list[tuple[str, str]]) -> _Response:
        code = secrets.token_urlsafe(64)
        sid = str(uuid.uuid4())
        now = self.now()
        with self._lock:
            self._codes[code] = _Code(
                client_id=ar.client.client_id, redirect_uri=ar.redirect_uri,
                code_challenge=ar.code_challenge, code_challenge_method=ar.code_challenge_method,
                nonce=ar.nonce, oidc=set(ar.oidc), username=user.username, claims=ar.claims,
                sid=sid, auth_time=int(now), expires=now + CODE_LIFETIME, mode=mode)
        params = {"code": code}
        if mode == "entra":
            params["client_info"] = self.client_info(user)
        if ar.state is not None:
            params["state"] = ar.state
        params["session_state"] = sid
        return self._auth_response(ar.redirect_uri, ar.response_mode, params, headers)

    # ------------------------------------------------------------------ /token
    def _token(self, req: _Request, mode: str) -> _Response:
        form = req.form
        grant = form.get("grant_type", "")
        with self._lock:
            self.token_calls[grant] += 1  # counted whatever the outcome
        if "token_unavailable" in self.faults:
            # An outage of the token service, as Entra reports one (503 + Retry-After).
            return _json(503, {"error": "temporarily_unavailable",
                               "error_description": "AADSTS90033: A transient error has "
                               "occurred. Please try again."}, [("Retry-After", "1")])
        try:
            if req.method != "POST":
                raise OAuthError("invalid_request", 900561,
                                 "The endpoint only accepts POST requests. Received a "
                                 f"{req.method} request.")
            client = self._authenticate_client(req)
            if grant == "authorization_code":
                result = self._grant_code(req, client, mode)
            elif grant == "refresh_token":
                result = self._grant_refresh(req, client, mode)
            elif grant == "client_credentials":
                result = self._grant_client_credentials(req, client)
            elif not grant:
                raise OAuthError("invalid_request", 900144,
                                 "The request body must contain the following parameter: "
                                 "'grant_type'.")
            else:
                raise OAuthError("unsupported_grant_type", 70003,
                                 f"The app requested an unsupported grant type '{grant}'.")
        except OAuthError as e:
            return _json(e.status, self._error_fields(e, req))
        return _json(200, result)

    def _authenticate_client(self, req: _Request) -> _Client:
        form = req.form
        basic_id = basic_secret = None
        auth = req.headers.get("Authorization") or ""
        if auth[:6].lower() == "basic ":
            try:
                raw = base64.b64decode(auth[6:].strip()).decode()
            except ValueError:
                raw = ""
            user, _, password = raw.partition(":")
            # RFC 6749 2.3.1: both parts are form-urlencoded before base64.
            basic_id, basic_secret = unquote_plus(user), unquote_plus(password)
        client_id = basic_id or form.get("client_id", "")
        if not client_id:
            raise OAuthError("invalid_request", 900144,
                             "The request body must contain the following parameter: 'client_id'.")
        client = self._clients.get(client_id)
        if client is None:
            raise OAuthError("unauthorized_client", 700016,
                             f"Application with identifier '{client_id}' was not found in the "
                             f"directory '{self.tenant_domain}'.")
        secret = basic_secret if basic_id else form.get("client_secret")
        assertion = form.get("client_assertion")
        if assertion:
            self._check_assertion(req, client, assertion)
        elif secret is not None:
            if client.secret is None or not hmac.compare_digest(secret.encode(),
                                                                client.secret.encode()):
                raise OAuthError("invalid_client", 7000215,
                                 "Invalid client secret provided. Ensure the secret being sent in "
                                 "the request is the client secret value, not the client secret "
                                 f"ID, for a secret added to app '{client_id}'.", status=401)
        else:
            raise OAuthError("invalid_client", 7000218,
                             "The request body must contain the following parameter: "
                             "'client_assertion' or 'client_secret'.", status=401)
        return client

    def _check_assertion(self, req: _Request, client: _Client, assertion: str) -> None:
        if req.form.get("client_assertion_type") != ASSERTION_TYPE:
            raise OAuthError("invalid_request", 900144,
                             "The request body must contain the following parameter: "
                             "'client_assertion_type'.")
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            # UNCONFIRMED code number.
            raise OAuthError("invalid_client", 50027, "JWT token is invalid or malformed.",
                             status=401) from None
        alg = header.get("alg")
        if alg == "PS256":
            thumb, certs = header.get("x5t#S256"), client.certs_sha256
        elif alg == "RS256":
            thumb, certs = header.get("x5t"), client.certs_sha1
        else:
            raise OAuthError("invalid_client", 50027, f"JWT token is invalid: alg {alg!r}.",
                             status=401)
        # MSAL pads its base64url thumbprints ("...="); Entra accepts either form.
        key = str(thumb or "").rstrip("=").replace("+", "-").replace("/", "_")
        cert = certs.get(key)
        if cert is None:
            raise OAuthError("invalid_client", 700027,
                             "The certificate with identifier used to sign the client assertion "
                             "is not registered on application. [Reason - The key was not found., "
                             f"Thumbprint of key used by client: '{thumb}']", status=401)
        try:
            claims = jwt.decode(assertion, cast(Any, cert.public_key()), algorithms=[alg],
                                options={"verify_exp": False, "verify_nbf": False,
                                         "verify_iat": False, "verify_aud": False,
                                         "verify_iss": False})
        except jwt.InvalidSignatureError:
            raise OAuthError("invalid_client", 700027,
                             "Client assertion failed signature validation.", status=401) from None
        except jwt.PyJWTError:
            raise OAuthError("invalid_client", 50027, "JWT token is invalid or malformed.",
                             status=401) from None
        now = self.now()
        exp, nbf = claims.get("exp"), claims.get("nbf")
        # No nbf is fine (MSAL sends none); the same jti may be reused while valid (MSAL does).
        if not isinstance(exp, int | float) or exp < now - CLOCK_SKEW or (
                isinstance(nbf, int | float) and nbf > now + CLOCK_SKEW):
            raise OAuthError("invalid_client", 700024,
                             "Client assertion is not within its valid time range. Current time: "
                             f"{datetime.fromtimestamp(now, UTC).isoformat()}, expiry "
                             f"time of assertion {exp}.", status=401)
        token_url = self.base_url + req.path
        aud = claims.get("aud")
        if (aud if isinstance(aud, list) else [aud]).count(token_url) == 0:
            # Code 700023 is as reported in the wild (UNCONFIRMED).
            raise OAuthError("invalid_client", 700023,
                             f"Client assertion audience claim does not match Realm issuer. "
                             f"Expected '{token_url}'.", status=401)
        if claims.get("iss") != client.client_id or claims.get("sub") != client.client_id:
            raise OAuthError("invalid_client", 700021,
                             "Client assertion application identifier doesn't match 'client_id' "
                             "parameter.", status=401)

    def _one_resource(self, raw: str, client_id: str) -> tuple[set[str], str, set[str]]:
        oidc, resources = self._parse_scopes(raw, client_id)
        if len(resources) > 1:
            # AADSTS28000 text is Entra's; the `error` value is UNCONFIRMED (invalid_request, as
            # for its sibling 28003).
            raise OAuthError("invalid_request", 28000,
                             "Provided value for the input parameter scope is not valid because "
                             f"it contains more than one resource. Scope {raw} is not valid.")
        if not resources:
            # Only OIDC scopes: Entra issues a Graph token (usable for userinfo) whose scopes
            # are the OIDC ones ("openid profile email") plus what is consented for Graph.
            return oidc, GRAPH_RESOURCE, set()
        ((resource, names),) = resources.items()
        if ".default" in names and len(names) > 1:
            raise OAuthError("invalid_scope", 70011,
                             "The provided value for the input parameter 'scope' is not valid. "
                             f"The scope {raw} is not valid.")
        return oidc, resource, names

    def _consented_scopes(self, user: TestUser, client: _Client, resource: str,
                          names: set[str]) -> list[str]:
        """All consented scopes of ``resource`` (Entra puts all of them in the token), after
        checking that every requested one is consented (else consent_required)."""
        consented = self._consented(user.username, client.client_id, resource)
        wanted = names - {".default"}
        if not wanted <= consented or (".default" in names and not consented):
            raise OAuthError("invalid_grant", 65001,
                             f"The user or administrator has not consented to use the application "
                             f"with ID '{client.client_id}' named '{client.display_name}'. Send an "
                             "interactive authorization request for this user and resource.",
                             suberror="consent_required")
        return sorted(consented)

    def _tokens(self, *, client: _Client, user: TestUser, oidc: set[str], resource: str,
                names: set[str], sid: str, mode: str, id_token: bool, refresh_token: bool,
                nonce: str | None, auth_time: int | None, claims: dict[str, list[str]],
                stepped_up: dict[str, list[str]]) -> dict[str, Any]:
        granted = self._consented_scopes(user, client, resource, names)
        if resource == GRAPH_RESOURCE:
            oidc_granted: list[str] = [s for s in ("openid", "profile") if s in oidc]
            if "openid" in oidc:
                oidc_granted.append("email")  # Entra adds email to Graph tokens with openid
            scp = granted + oidc_granted
            # Graph scopes in short form, like "User.Read profile openid email"
            scope = " ".join(scp)
        else:
            scp = granted
            scope = " ".join(f"{resource}/{s}" for s in granted)  # other APIs: full form
        extra: dict[str, Any] = {}
        for name, values in claims.items():
            # acrs and xms_cc are lists in Entra tokens; other claims carry their value.
            extra[name] = values if name in ("acrs", "xms_cc") or len(values) > 1 else values[0]
        at = self._access_token(user, client.client_id, resource, scp, sid=sid, extra=extra)
        out: dict[str, Any] = {
            "token_type": "Bearer", "scope": scope, "expires_in": self.access_token_lifetime,
            "ext_expires_in": self.access_token_lifetime, "access_token": at,
        }
        if refresh_token:
            rt = secrets.token_urlsafe(96)
            with self._lock:
                self._refresh_tokens[rt] = _RefreshToken(
                    client.client_id, user.username, sid, self.now() + REFRESH_TOKEN_LIFETIME,
                    mode, dict(stepped_up))
            out["refresh_token"] = rt
        if id_token:
            out["id_token"] = self._id_token(user, client.client_id, oidc, mode=mode, sid=sid,
                                             nonce=nonce, auth_time=auth_time)
        if mode == "entra":
            out["client_info"] = self.client_info(user)
        return out

    def _request_claims(self, form: Mapping[str, str]) -> dict[str, Any] | None:
        raw = form.get("claims")
        if not raw:
            return None
        try:
            claims = json.loads(raw)
        except ValueError:
            claims = None
        if not isinstance(claims, dict):
            raise OAuthError("invalid_request", 90100, "The claims parameter is not valid JSON.")
        return claims

    def _grant_code(self, req: _Request, client: _Client, mode: str) -> dict[str, Any]:
        form = req.form
        code_value = form.get("code", "")
        if not code_value:
            raise OAuthError("invalid_request", 900144,
                             "The request body must contain the following parameter: 'code'.")
        with self._lock:  # one lock for check-and-consume: a code is redeemed at most once
            code = self._codes.get(code_value)
            if code is None or code.mode != mode:
                raise OAuthError("invalid_grant", 9002313,
                                 "Invalid request. Request is malformed or invalid.")
            if code.used:
                raise OAuthError("invalid_grant", 54005,
                                 "OAuth2 Authorization code was already redeemed, please retry "
                                 "with a new valid code or use an existing refresh token.")
            if self.now() > code.expires:
                raise OAuthError("invalid_grant", 70008,
                                 "The provided authorization code or refresh token has expired "
                                 "due to inactivity. Send a new interactive authorization request "
                                 "for this user and resource.")
            if code.client_id != client.client_id:
                # UNCONFIRMED: Entra's exact code for a code issued to another app; 70000 is its
                # generic "grant is invalid" (InvalidGrant) code.
                raise OAuthError("invalid_grant", 70000,
                                 "Provided grant is invalid or malformed. The code was issued to "
                                 "another application.")
            if form.get("redirect_uri") != code.redirect_uri:
                # UNCONFIRMED: Entra's error value here; 500112 is its "reply address does not
                # match the one used to request the code" code. invalid_grant per RFC 6749 5.2.
                raise OAuthError("invalid_grant", 500112,
                                 f"The reply address '{form.get('redirect_uri', '')}' does not "
                                 f"match the reply address '{code.redirect_uri}' provided when "
                                 "requesting Authorization code.")
            verifier = form.get("code_verifier", "")
            if code.code_challenge_method == "S256":
                computed = _b64url(hashlib.sha256(verifier.encode("ascii", "replace")).digest())
            else:
                computed = verifier
            if not verifier or not hmac.compare_digest(computed, code.code_challenge):
                raise OAuthError("invalid_grant", 501481,
                                 "The Code_Verifier does not match the code_challenge supplied in "
                                 "the authorization request.")
            raw_scope = form.get("scope", "").strip()
            if not raw_scope:
                raise OAuthError("invalid_request", 28003,
                                 "Provided value for the input parameter scope cannot be empty "
                                 "when requesting an access token using the provided "
                                 "authorization code. Please specify a valid scope.")
            oidc, resource, names = self._one_resource(raw_scope, client.client_id)
            user = self._user(code.username)
            req_claims = self._request_claims(form)
            claims = _merge_claims(code.claims, req_claims)
            nonce = code.nonce
            if nonce is not None and "wrong_nonce" in self.faults:
                nonce = "not-" + nonce
            all_oidc = oidc | code.oidc
            result = self._tokens(
                client=client, user=user, oidc=all_oidc, resource=resource, names=names,
                sid=code.sid, mode=mode, id_token="openid" in all_oidc,
                refresh_token="offline_access" in all_oidc, nonce=nonce,
                auth_time=code.auth_time, claims=claims,
                # An interactive sign-in that asked for claims satisfies a step-up demand.
                stepped_up=_merge_claims(code.claims))
            code.used = True
        return result

    def _grant_refresh(self, req: _Request, client: _Client, mode: str) -> dict[str, Any]:
        form = req.form
        value = form.get("refresh_token", "")
        if not value:
            raise OAuthError("invalid_request", 900144,
                             "The request body must contain the following parameter: "
                             "'refresh_token'.")
        with self._lock:
            rt = self._refresh_tokens.get(value)
        if rt is None or rt.mode != mode:
            raise OAuthError("invalid_grant", 9002313,
                             "Invalid request. Request is malformed or invalid.")
        if rt.client_id != client.client_id:
            # UNCONFIRMED code (see the code grant): refresh tokens are bound to their client.
            raise OAuthError("invalid_grant", 70000,
                             "Provided grant is invalid or malformed. The refresh token was "
                             "issued to another application.")
        if rt.revoked:
            raise OAuthError("invalid_grant", 50173,
                             "The provided grant has expired due to it being revoked, a fresh "
                             "auth token is needed. The user might have changed or reset their "
                             "password.", suberror="bad_token")
        if self.now() > rt.expires:
            raise OAuthError("invalid_grant", 700082,
                             "The refresh token has expired due to inactivity. The token was "
                             "issued on an earlier date and was inactive for 90.00:00:00.",
                             suberror="bad_token")
        raw_scope = form.get("scope", "").strip() or "openid profile offline_access"
        oidc, resource, names = self._one_resource(raw_scope, client.client_id)
        user = self._user(rt.username)
        req_claims = self._request_claims(form)
        claims = _merge_claims(req_claims)
        self._check_step_up(resource, claims, rt)
        return self._tokens(
            client=client, user=user, oidc=oidc, resource=resource, names=names, sid=rt.sid,
            mode=mode, id_token="openid" in oidc, refresh_token=True, nonce=None, auth_time=None,
            claims=claims, stepped_up=rt.stepped_up)

    def _check_step_up(self, resource: str, asked: dict[str, list[str]],
                       rt: _RefreshToken) -> None:
        """A refresh asking for claims that an API demands with step_up=True fails with
        AADSTS50076 / suberror basic_action, unless an interactive sign-in already gave them."""
        for api_name, (demand, step_up) in self._demands.items():
            api_resource = GRAPH_RESOURCE if api_name == "graph" else self._apis[api_name].resource
            if not step_up or api_resource != resource:
                continue
            for name, values in _merge_claims(demand).items():
                if name in asked and not set(values) <= set(rt.stepped_up.get(name, [])):
                    # Entra answers MFA/step-up at the token endpoint with invalid_grant +
                    # suberror basic_action (MSAL maps suberror to `classification`).
                    raise OAuthError("invalid_grant", 50076,
                                     "Due to a configuration change made by your administrator, "
                                     "or because you moved to a new location, you must use "
                                     "multi-factor authentication to access this resource.",
                                     suberror="basic_action")

    def _grant_client_credentials(self, req: _Request, client: _Client) -> dict[str, Any]:
        raw = req.form.get("scope", "").strip()
        oidc, resources = self._parse_scopes(raw, client.client_id)
        if len(resources) != 1 or oidc or next(iter(resources.values())) != {".default"}:
            raise OAuthError("invalid_scope", 1002012,
                             f"The provided value for scope {raw} is not valid. Client credential "
                             "flows must have a scope value with /.default suffixed to the "
                             "resource identifier (application ID URI).")
        ((resource, _),) = resources.items()
        now = int(self.now())
        sp_oid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"sp:{client.client_id}"))
        api = self._api_for(resource)
        claims = {"aud": api.audience if api else resource, "iss": self.issuer(), "iat": now,
                  "nbf": now, "exp": now + self.access_token_lifetime, "azp": client.client_id,
                  "azpacr": "1", "idtyp": "app", "oid": sp_oid, "sub": sp_oid,
                  "tid": self.tenant_id, "roles": [], "ver": "2.0",
                  "uti": _b64url(secrets.token_bytes(16))}
        at = self._sign(claims, graph=resource == GRAPH_RESOURCE)
        return {"token_type": "Bearer", "expires_in": self.access_token_lifetime,
                "ext_expires_in": self.access_token_lifetime, "access_token": at}

    # ------------------------------------------------------------------ /logout
    def _logout(self, req: _Request) -> _Response:
        params = dict(req.query)
        if req.method == "POST":
            params.update(req.form)
        with self._lock:
            self.logout_calls += 1
            self.last_logout = dict(params)
        client_id = params.get("client_id")
        hint = params.get("id_token_hint")
        if hint and not client_id:
            try:  # only trust a hint we signed; its expiry does not matter (OIDC RP logout)
                client_id = jwt.decode(hint, self._key.public_key(), algorithms=["RS256"],
                                       options={"verify_exp": False, "verify_aud": False,
                                                "verify_iat": False, "verify_nbf": False}
                                       ).get("aud")
            except jwt.PyJWTError:
                client_id = None
        client = self._clients.get(client_id or "")
        target = params.get("post_logout_redirect_uri")
        clear = (f"{_SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax")
        if target and client is not None and target in client.post_logout_redirect_uris:
            if params.get("state"):
                sep = "&" if urlsplit(target).query else "?"
                target = f"{target}{sep}{urlencode({'state': params['state']})}"
            return _redirect(target, [("Set-Cookie", clear)])
        note = None
        if target:
            note = ("post_logout_redirect_uri is not registered for this app (or the app is "
                    "unknown), so you are not sent back.")
        return _html(200, pages.signed_out_page(None, note), [("Set-Cookie", clear)])

    # ------------------------------------------------------------------ API stand-ins
    def _validate_bearer(self, req: _Request, *, graph: bool, audiences: Iterable[str]) -> dict[
            str, Any]:
        auth = req.headers.get("Authorization") or ""
        if auth[:7].lower() != "bearer " or not auth[7:].strip():
            raise _TokenRejected(401, "invalid_token", "No bearer token in the request.")
        token = auth[7:].strip()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _TokenRejected(401, "invalid_token", "The token is malformed.") from None
        key = self._graph_key if graph else self._key
        if header.get("kid") != (self._graph_kid if graph else self._kid):
            raise _TokenRejected(401, "invalid_token", "The signing key is not trusted.")
        try:
            claims = jwt.decode(token, key.public_key(), algorithms=["RS256"],
                                options={"verify_exp": False, "verify_nbf": False,
                                         "verify_iat": False, "verify_aud": False,
                                         "verify_iss": False})
        except jwt.InvalidSignatureError:
            raise _TokenRejected(401, "invalid_token", "The token signature is invalid.") from None
        except jwt.PyJWTError:
            raise _TokenRejected(401, "invalid_token", "The token is malformed.") from None
        now = self.now()
        if not isinstance(claims.get("exp"), int) or claims["exp"] <= now:
            raise _TokenRejected(401, "invalid_token",
                                 "Lifetime validation failed, the token is expired.")
        if isinstance(claims.get("nbf"), int) and claims["nbf"] > now + CLOCK_SKEW:
            raise _TokenRejected(401, "invalid_token", "The token is not yet valid.")
        if claims.get("aud") not in set(audiences):
            raise _TokenRejected(401, "invalid_token", "The audience is invalid.")
        issuers = ({f"https://sts.windows.net/{self.tenant_id}/"} if graph
                   else {self.issuer("entra"), self.issuer("oidc")})
        if claims.get("iss") not in issuers:
            raise _TokenRejected(401, "invalid_token", "The issuer is invalid.")
        return claims

    def _missing_claims(self, api_name: str, token: Mapping[str, Any]) -> dict[str, Any] | None:
        demand = self._demands.get(api_name)
        if demand is None:
            return None
        for name, spec in _claims_section(demand[0]).items():
            wanted = _spec_values(spec)
            have = token.get(name)
            have_set = {str(v) for v in have} if isinstance(have, list) else (
                set() if have is None else {str(have)})
            if (wanted and not have_set & set(wanted)) or (not wanted and not have_set):
                return demand[0]
        return None

    def _challenge(self, api_name: str, resource_id: str, e: _TokenRejected,
                   req: _Request) -> _Response:
        auth_uri = f"{self.authority}/oauth2/v2.0/authorize"
        if e.status == 403:
            header = f'Bearer error="insufficient_scope", error_description="{e.description}"'
        else:
            header = (f'Bearer realm="", authorization_uri="{auth_uri}", '
                      f'client_id="{resource_id}", error="{e.error}", '
                      f'error_description="{e.description}"')
        if api_name == "graph":
            code = ("Authorization_RequestDenied" if e.status == 403
                    else "InvalidAuthenticationToken")
            body: dict[str, Any] = {"error": {"code": code, "message": e.description,
                                              "innerError": self._graph_inner(req)}}
        else:
            body = {"error": e.error, "error_description": e.description}
        return _json(e.status, body, [("WWW-Authenticate", header)])

    def _graph_inner(self, req: _Request) -> dict[str, str]:
        return {"date": datetime.fromtimestamp(self.now(), UTC).strftime(
                    "%Y-%m-%dT%H:%M:%S"),
                "request-id": str(uuid.uuid4()),
                "client-request-id": req.headers.get("client-request-id") or str(uuid.uuid4())}

    def _claims_challenge(self, demand: dict[str, Any], api_name: str,
                          req: _Request) -> _Response:
        encoded = base64.b64encode(json.dumps(demand, separators=(",", ":")).encode()).decode()
        header = (f'Bearer realm="", authorization_uri="{self.authority}/oauth2/v2.0/authorize", '
                  f'error="insufficient_claims", claims="{encoded}"')
        if api_name == "graph":
            body: dict[str, Any] = {"error": {
                "code": "InvalidAuthenticationToken",
                "message": "Continuous access evaluation resulted in challenge with result: "
                           "InteractionRequired and code: TokenIssuedBeforeRevocationTimestamp",
                "innerError": self._graph_inner(req)}}
        else:
            body = {"error": "insufficient_claims",
                    "error_description": "The token lacks claims this API demands."}
        return _json(401, body, [("WWW-Authenticate", header)])

    def _record(self, api_name: str, claims: Mapping[str, Any], req: _Request,
                path: str) -> None:
        with self._lock:
            self.api_calls.append({"api": api_name, "oid": claims.get("oid"),
                                   "scopes": str(claims.get("scp", "")).split(),
                                   "method": req.method, "path": path})

    def _graph(self, req: _Request, segs: list[str]) -> _Response:
        if segs == ["oidc", "userinfo"]:
            return self._userinfo(req)
        if segs[:1] != ["v1.0"]:
            return _json(404, {"error": {"code": "BadRequest", "message": "Invalid version."}})
        path = "/" + "/".join(segs[1:])
        try:
            claims = self._validate_bearer(req, graph=True, audiences=(GRAPH_RESOURCE,
                                                                       GRAPH_APP_ID))
            if path != "/me":
                return _json(404, {"error": {"code": "Request_ResourceNotFound",
                                             "message": f"Resource '{path}' does not exist in the"
                                                        " Graph stand-in (only /me).",
                                             "innerError": self._graph_inner(req)}})
            if not {s.lower() for s in str(claims.get("scp", "")).split()} & _ME_SCOPES:
                raise _TokenRejected(403, "insufficient_scope",
                                     "Insufficient privileges to complete the operation.")
        except _TokenRejected as e:
            return self._challenge("graph", GRAPH_APP_ID, e, req)
        demand = self._missing_claims("graph", claims)
        if demand is not None:
            return self._claims_challenge(demand, "graph", req)
        user = next((u for u in self.users.values() if u.oid == claims.get("oid")), None)
        if user is None:
            return _json(404, {"error": {"code": "Request_ResourceNotFound",
                                         "message": "The user no longer exists."}})
        self._record("graph", claims, req, path)
        return _json(200, {
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users/$entity",
            "businessPhones": [], "displayName": user.name, "givenName": user.given_name,
            "jobTitle": None, "mail": user.username, "mobilePhone": None, "officeLocation": None,
            "preferredLanguage": "en-US", "surname": user.surname,
            "userPrincipalName": user.username, "id": user.oid})

    def _userinfo(self, req: _Request) -> _Response:
        try:
            claims = self._validate_bearer(req, graph=True, audiences=(GRAPH_RESOURCE,
                                                                       GRAPH_APP_ID))
            if "openid" not in str(claims.get("scp", "")).split():
                raise _TokenRejected(403, "insufficient_scope", "The openid scope is required.")
        except _TokenRejected as e:
            return self._challenge("graph", GRAPH_APP_ID, e, req)
        user = next(u for u in self.users.values() if u.oid == claims.get("oid"))
        return _json(200, {"sub": claims.get("sub"), "name": user.name,
                           "family_name": user.surname, "given_name": user.given_name,
                           "email": user.username})

    def _custom_api(self, req: _Request, name: str, path: str) -> _Response:
        api = self._apis.get(name)
        if api is None:
            return _json(404, {"error": "not_found", "error_description": f"No API named {name}."})
        try:
            claims = self._validate_bearer(req, graph=False, audiences=(api.audience,
                                                                        api.resource))
            if not set(str(claims.get("scp", "")).split()) & set(api.scopes):
                raise _TokenRejected(403, "insufficient_scope",
                                     f"The token needs one of the scopes {' '.join(api.scopes)}.")
        except _TokenRejected as e:
            return self._challenge(name, api.audience, e, req)
        demand = self._missing_claims(name, claims)
        if demand is not None:
            return self._claims_challenge(demand, name, req)
        body: Any = None
        if req.body:
            try:
                body = json.loads(req.body)
            except ValueError:
                return _json(400, {"error": "invalid_request",
                                   "error_description": "The body is not valid JSON."})
        self._record(name, claims, req, path)
        return _json(200, {"api": name, "method": req.method, "path": path, "query": req.query,
                           "oid": claims.get("oid"), "name": claims.get("name"),
                           "preferred_username": claims.get("preferred_username"),
                           "scopes": str(claims.get("scp", "")).split(), "body": body})
