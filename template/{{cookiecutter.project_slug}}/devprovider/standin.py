"""A local stand-in for Microsoft Entra ID v2.0 and for the web APIs an app calls.

It serves, over real HTTPS on loopback (stdlib ``ThreadingHTTPServer`` + ``ssl``, no framework, so
the same stand-in serves Flask, Django and FastAPI apps):

* Entra-style endpoints under ``/{tenant}/...`` (discovery, JWKS, authorize, token, logout),
* a strict generic OpenID Connect provider under ``/oidc`` (like Keycloak or panva's
  oidc-provider): no ``client_info``, RFC 6749 error JSON without Entra's fields, refresh tokens
  that never widen beyond the scopes granted with them (``invalid_scope``) and that rotate
  (reusing one revokes its family), a replayed code revokes the refresh tokens issued from it,
  and sign-out wants ``id_token_hint`` or ``client_id`` with ``post_logout_redirect_uri``,
* Azure AD B2C's user flows under ``/{tenant}/{B2C_1_flow}/...`` and Microsoft Entra External
  ID's ``ciamlogin.com`` host (``b2c.py``),
* a Microsoft Graph stand-in (``/graph/v1.0/me``) and custom API stand-ins (``/apis/{name}/...``),
* App Service's managed identity endpoint (``identity_endpoint``, plain http on a loopback
  listener of its own, as on App Service; see ``msi.py``).

Client credentials, as an Entra app registration holds them: several client secrets (each with a
key id and an optional expiry), certificates, and federated identity credentials that trust
tokens of an external issuer (``external_issuer``) or of the stand-in's own issuer (its managed
identities). Every successful client authentication at /token is logged in
``client_auth_log`` (which credential, never its value).

It aims to REJECT what Entra rejects (PKCE, redirect URI binding, single-use codes, one resource
per token request, consent, client authentication), with Entra's error JSON and AADSTS codes.
Codes whose exact Entra value is not confirmed by a source are marked ``UNCONFIRMED`` below and
in the code (``identity.py``, ``tokens.py``).

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
suberror bad_token). Client credentials (all invalid_client, 401 unless said): wrong or removed
secret 7000215, expired secret 7000222; certificate assertions: malformed 50027 (UNCONFIRMED),
expired 700024, unknown or unregistered key or bad signature 700027, audience 700023
(UNCONFIRMED), iss/sub 700021 (the same assertion may be used again while valid, as MSAL does);
federated assertions (``iss`` other than the client id): the client has no federated credential
70025 (error value and status UNCONFIRMED), none for the token's issuer 700211, the issuer's keys
cannot be had (a credential names an issuer the stand-in does not know) invalid_request 50166,
400 (UNCONFIRMED for this case), key not among the issuer's 7000272, bad signature 7000274 (text
UNCONFIRMED), expired 700024, a user token of the stand-in's own issuer 700229 (error value
UNCONFIRMED), subject 700213, audience 700212 (subject is checked first: UNCONFIRMED which wins
when both differ). The strict /oidc mode checks private_key_jwt by OpenID Connect Core 1.0
section 9 and RFC 7523: ``aud`` the token endpoint or the issuer, ``iss`` = ``sub`` = the client
id, ``exp`` and ``jti`` required, a ``jti`` used once only while the assertion is valid; its
errors are RFC 6749's ``invalid_client`` (401) without Entra's fields.

Sign-out: ``post_logout_redirect_uri`` must be one of the app's redirect URIs (Entra has no
separate list for web apps). Entra style: without a ``logout_hint`` (the ID token's optional
``login_hint`` claim, issued only when the registration asks for it) the user picks the account to
sign out on a page, as on Entra. OIDC style: a post-logout URI without ``id_token_hint`` or
``client_id`` is refused with an error page (Keycloak 18+), and ``client_id`` alone asks the user
to confirm. Single sign-out (Entra style): each ID token's ``sid`` names the account's session at
the provider (the same for every app signed in to in that browser session); signing out there
calls the ``front_channel_logout_url`` of each app the account signed in to in that session,
with ``?sid=`` only, as Entra does (UNCONFIRMED by its docs: it omits ``iss``).

Tenants (``tenant.py``): the stand-in's own tenant (``tenant_id``, ``tenant_domain``) and any
added with ``add_tenant`` (its id, domain and users, whose home tenant it is), each with its
authority ``{base}/{tenant id or domain}`` and issuer ``issuer_of(tid)``. At ``organizations``
or ``common`` a user gets tokens of their home tenant; at a tenant's own authority a member gets
that tenant's, and a B2B guest (``add_guest``) too: its ``tid`` and issuer, the guest object's
``oid``, ``idp`` = the home tenant's ``https://sts.windows.net/{tid}/`` (UNCONFIRMED for v2
tokens), while ``client_info`` names the HOME account (MSAL's home_account_id). An app
registration's ``sign_in_audience`` decides who may use it (``register_client``): a
single-tenant app (``AzureADMyOrg``) at ``organizations``/``common`` gets invalid_request 50194
sent back to it (it has also been reported on Entra's own page: UNCONFIRMED which when), at
another tenant's authority 700016 on the provider's page; an account that is neither a member
nor a guest of the tenant it must sign in to (the authority's, or a single-tenant app's) gets
50020 on the provider's page after choosing the account (never sent to the app: UNCONFIRMED).
Personal Microsoft accounts (``consumers``) are not modelled.

Claims challenges: an API stand-in that demands claims (``demand_claims``) challenges only tokens
whose ``xms_cc`` holds ``cp1`` (a client that declared it can answer claims challenges; MSAL's
``client_capabilities``), as Graph does; another client's token gets a plain 401
``invalid_token`` without ``claims`` (recorded in ``api_refusals``). Tokens of the generic
``/oidc`` issuer are challenged whatever they carry.

Authorization: test users hold app roles and groups (``TestUser.roles``, ``TestUser.groups``,
the transitive membership; ``add_user``, ``update_user``). Entra-style ID tokens carry ``roles``
and, when the registration's ``group_membership_claims`` asks for them (the default here), the
``groups`` object ids; above 200 groups no ``groups`` but Entra's overage claims
``_claim_names``/``_claim_sources`` (``tenant.py``, ``_groups_claims``). The Graph stand-in answers
``checkMemberGroups`` and ``getMemberObjects`` from the same data, with Graph's permission checks
(``apis.py``). Client credentials tokens carry the application permissions granted with
``grant_app_permissions`` in ``roles``. ``fail()`` makes a path answer an error status for a
while (a Graph outage, throttling, a refusal); ``graph_calls`` counts Graph requests per
operation, whatever their outcome.

The code is split by concern. This module holds ``StandIn``: its configuration, its listeners
and the routing of requests. The rest, one concern per module:

* ``model.py``: constants, test users, ``OAuthError`` and the records the stand-in keeps,
* ``tokens.py``: signing keys, JWKS entries, external issuers, checks of access tokens and
  client assertions,
* ``server.py``: the threaded HTTP(S) server and the request/response plumbing,
* ``tenant.py``: the state the endpoints share (users, apps, consents, keys, clock, URLs) and the
  tokens it mints,
* ``identity.py``: discovery, /authorize, /token grants and logout,
* ``b2c.py``: the B2C and External ID modes,
* ``apis.py``: the Graph and custom API stand-ins and their claims challenges,
* ``msi.py``: managed identities and App Service's managed identity endpoint,
* ``pages.py``: the HTML pages.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime
import ssl
import threading
import uuid
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from . import pages
from .apis import _ApiStandIns
from .b2c import _CustomerEndpoints
from .model import (
    DEFAULT_TENANT_ID,
    DEFAULT_USERS,
    GRAPH_RESOURCE,
    GROUP_MEMBERSHIP_CLAIMS,
    SIGN_IN_AUDIENCES,
    TOKEN_EXCHANGE_AUDIENCE,
    OAuthError,
    TestUser,
    _Api,
    _Client,
    _ClientSecret,
    _FederatedCredential,
)
from .msi import _ManagedIdentityEndpoint
from .server import Slowness, _html, _json, _Request, _Response, _Server
from .tenant import _GRAPH_CASING
from .tokens import ExternalIssuer, _b64url, _SigningKey

# Graph's error code and message per status, for injected failures (Graph's documented error
# codes; Authorization_RequestDenied is what directory calls answer a missing permission with).
_GRAPH_ERRORS = {
    400: ("BadRequest", "Bad request."),
    401: ("InvalidAuthenticationToken", "Access token validation failure."),
    403: ("Authorization_RequestDenied", "Insufficient privileges to complete the operation."),
    404: ("Request_ResourceNotFound", "The resource does not exist."),
    429: ("TooManyRequests", "Too many requests, please retry after the time given."),
    500: ("generalException", "An unspecified error has occurred."),
    502: ("serviceNotAvailable", "The service is temporarily unavailable."),
    503: ("serviceNotAvailable", "The service is temporarily unavailable for maintenance or is "
                                 "overloaded. You may repeat the request after a delay, which "
                                 "may be specified in a Retry-After header."),
    504: ("serviceNotAvailable", "The service did not answer in time."),
}


@dataclasses.dataclass(eq=False)
class Fault:
    """A failure made with ``StandIn.fail``: ``answered`` counts the requests it answered;
    ``undo()`` (or leaving its ``with`` block) ends it. ``remaining`` answers left (``None``:
    no limit), ``until`` when it ends on the stand-in's clock (``None``: never)."""

    standin: StandIn = dataclasses.field(repr=False)
    path_prefix: str
    status: int
    retry_after: int | str | None  # seconds, or an HTTP date (sent as given)
    remaining: int | None
    until: float | None
    answered: int = 0
    body: Any = None  # the JSON answered instead of an error (``StandIn.answer``)
    location: str | None = None  # a redirect's target (``StandIn.redirect``)
    size: int | None = None  # the bytes of a large answer (``StandIn.large_answer``)
    chunked: bool = False  # a large answer sent without Content-Length

    def undo(self) -> None:
        with self.standin._lock:
            if self.standin._faults.get(self.path_prefix) is self:
                del self.standin._faults[self.path_prefix]

    def __enter__(self) -> Fault:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.undo()


class StandIn(_CustomerEndpoints, _ApiStandIns, _ManagedIdentityEndpoint):
    """The Entra ID + API stand-in. ``start()`` it (or use it as a context manager).

    The endpoints are in ``identity.py``, ``apis.py`` and ``msi.py``; the state they share, the
    URLs and the clock in ``tenant.py``.
    """

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
        reuse_keys: bool = False,
        port: int = 0,
    ) -> None:
        """``reuse_keys``: sign with keys shared by every stand-in of this process (fast test
        set-up) instead of keys made for this one; ``external_issuer`` keys too (one per
        issuer URL). ``port``: of the https endpoints (discovery, tokens, APIs); 0 picks a free
        one."""
        self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._tls.load_cert_chain(tls_cert_file, tls_key_file)
        super().__init__(tenant_id, users, access_token_lifetime, tenant_domain=tenant_domain,
                         reuse_keys=reuse_keys)
        self.verbose = verbose
        self.errors: list[str] = []  # tracebacks of stand-in bugs (tests assert it stays empty)
        self._requested_browser_url = browser_base_url
        self._port = port
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []
        self._slow: dict[str, Slowness] = {}  # path prefix -> how slowly to answer
        self._msi_server: _Server | None = None  # started by identity_endpoint
        self._faults: dict[str, Fault] = {}  # path prefix -> the failure it answers with
        # Requests to /echo/... (any host name of the stand-in): method, URL and headers, e.g.
        # what a client sent where a redirect led it.
        self.echo_requests: list[dict[str, Any]] = []
        # Regional token service hosts (`<region>.<host>`, what MSAL makes of an authority's
        # host and AZURE_REGION; the port is not kept: a CONNECT proxy brings 443 here). Asked
        # for discovery there, the stand-in names its endpoints on that host, as a regional
        # token service must for MSAL to use it (UNCONFIRMED: the document Entra's regional
        # hosts serve; MSAL takes its token_endpoint); `token_hosts` counts /token requests by
        # (grant, host).
        self.regional_hosts: set[str] = set()
        self.token_hosts: collections.Counter[tuple[str, str]] = collections.Counter()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Self:
        """Bind 127.0.0.1 (on ephemeral ports unless given) and serve from daemon threads."""
        if self._servers:
            return self
        main = _Server(("127.0.0.1", self._port), self, self._tls)
        self._servers.append(main)
        self._base_url = f"https://127.0.0.1:{main.server_address[1]}"
        if self._requested_browser_url:
            url = urlsplit(self._requested_browser_url)
            host = url.hostname or "localhost"
            tls = self._tls if url.scheme == "https" else None
            bind = "127.0.0.1" if host in ("localhost", "127.0.0.1") else host
            web = _Server((bind, url.port or 0), self, tls, listener="browser")
            self._servers.append(web)
            self._browser_base_url = f"{url.scheme}://{host}:{web.server_address[1]}"
        for srv in self._servers:
            self._serve(srv)
        return self

    def _serve(self, srv: _Server) -> None:
        t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1},
                             name="devprovider", daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self) -> None:
        self.unslow()  # answers still trickling out go out at once
        self.unfail()
        with self._lock:
            servers, self._servers = list(self._servers), []
            threads, self._threads = list(self._threads), []
            self._msi_server = None
        for srv in servers:
            srv.shutdown()
            srv.server_close()
        for t in threads:
            t.join(timeout=5)

    @property
    def identity_endpoint(self) -> str:
        """The managed identity endpoint of the App Service emulation (MSAL's
        ``IDENTITY_ENDPOINT``): ``http://127.0.0.1:<port>/msi/token``, plain http on loopback
        as on App Service. Its listener starts on first use (most tests never need it) and
        serves nothing else. Send ``identity_header`` as ``X-IDENTITY-HEADER``."""
        with self._lock:
            if not self._servers:
                raise RuntimeError("StandIn.start() first: the port is chosen when it starts")
            if self._msi_server is None:
                self._msi_server = _Server(("127.0.0.1", 0), self, None, listener="msi")
                self._servers.append(self._msi_server)
                self._serve(self._msi_server)
            return f"http://127.0.0.1:{self._msi_server.server_address[1]}/msi/token"

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ configuration
    def register_client(
        self,
        client_id: str,
        client_secret: str | None,
        redirect_uris: list[str],
        post_logout_redirect_uris: list[str] | None = None,
        *,
        display_name: str | None = None,
        optional_claims: Sequence[str] = (),
        group_membership_claims: str = "SecurityGroup",
        front_channel_logout_url: str | None = None,
        sign_in_audience: str = "AzureADMultipleOrgs",
        tenant_id: str | None = None,
    ) -> None:
        """Register (or replace) an app registration. ``client_secret=None``: no secret from
        here (a certificate, a federated credential or secrets added with
        ``add_client_secret``).

        ``client_secret`` is the registration's first secret (``client_secret_id`` gives its
        key id). Registering a client again replaces that secret, its redirect URIs and
        optional claims, and keeps the secrets added with ``add_client_secret``, the
        certificates and the federated credentials.

        Sign-out targets are checked against the redirect URIs, as Entra does for web apps (it
        has no separate post-logout list): ``post_logout_redirect_uris`` are simply added to
        ``redirect_uris``. ``optional_claims`` are the ID token optional claims the registration
        asks for; ``"login_hint"`` is the one the Entra-style endpoints know.

        ``group_membership_claims`` is the manifest's ``groupMembershipClaims``: with
        ``"SecurityGroup"`` (the default here, unlike a new Entra registration's ``None``) or
        ``"All"`` the Entra-style ID tokens carry the user's ``groups`` (object ids; every test
        group is a security group) or, above 200, the groups overage claims; ``"None"`` turns
        the claim off. ``roles`` (the user's app roles) are emitted whatever this says.

        ``front_channel_logout_url``: the registration's front-channel logout URL, called with
        the provider session's ``sid`` when the user signs out at the provider (Entra style).

        ``sign_in_audience`` is the registration's signInAudience: ``"AzureADMyOrg"`` (single
        tenant: only users and guests of ``tenant_id``, the tenant it is registered in, by
        default the stand-in's own; AADSTS50194 at ``organizations``/``common``, AADSTS50020
        for other accounts) or a multi-tenant one (the default here, unlike a new Entra
        registration: any tenant's users at ``organizations``/``common``)."""
        if sign_in_audience not in SIGN_IN_AUDIENCES:
            raise ValueError(f"sign_in_audience must be one of {SIGN_IN_AUDIENCES}, "
                             f"not {sign_in_audience!r}")
        home = self._known_tenant(tenant_id).tenant_id if tenant_id else self.tenant_id
        if group_membership_claims not in GROUP_MEMBERSHIP_CLAIMS:
            raise ValueError(f"group_membership_claims must be one of {GROUP_MEMBERSHIP_CLAIMS}, "
                             f"not {group_membership_claims!r}")
        uris = list(redirect_uris)
        uris += [u for u in post_logout_redirect_uris or [] if u not in uris]
        with self._lock:
            old = self._clients.get(client_id)
            name = display_name or (old.display_name if old else client_id)
            client = _Client(client_id, uris, name, frozenset(optional_claims),
                             group_membership_claims, front_channel_logout_url, home,
                             sign_in_audience)
            if old is not None:  # keep the credentials added to it
                client.secrets = [s for s in old.secrets if not s.from_registration]
                client.certs_sha1, client.certs_sha256 = old.certs_sha1, old.certs_sha256
                client.federated = old.federated
            if client_secret:
                same = next((s for s in (old.secrets if old else []) if s.from_registration
                             and s.value == client_secret), None)
                added = next((s for s in client.secrets if s.value == client_secret), None)
                if added is None:
                    # The same value keeps its key id (and expiry) across registrations.
                    client.secrets.insert(0, same or _ClientSecret(
                        str(uuid.uuid4()), client_secret, None, from_registration=True))
            self._clients[client_id] = client

    def _client(self, client_id: str) -> _Client:
        try:
            return self._clients[client_id]
        except KeyError:
            raise KeyError(f"unknown client {client_id!r}: register_client() first") from None

    def add_client_secret(self, client_id: str, secret: str, *,
                          expires_at: float | datetime.datetime | None = None) -> str:
        """Add a client secret (one of Entra's ``passwordCredentials``: an app may hold
        several); returns its key id, a GUID. ``expires_at`` (epoch seconds or an aware
        datetime, on the stand-in's clock ``now()``): from then on the secret is refused with
        AADSTS7000222. Adding a value the client already holds returns that secret's key id
        and sets its expiry to ``expires_at``."""
        if not secret:
            raise ValueError("a client secret cannot be empty")
        when = expires_at.timestamp() if isinstance(expires_at, datetime.datetime) else (
            None if expires_at is None else float(expires_at))
        with self._lock:
            client = self._client(client_id)
            for held in client.secrets:
                if held.value == secret:
                    held.expires_at = when
                    return held.key_id
            held = _ClientSecret(str(uuid.uuid4()), secret, when)
            client.secrets.append(held)
            return held.key_id

    def _held_secret(self, client_id: str, secret: str) -> _ClientSecret:
        found = next((s for s in self._client(client_id).secrets if s.value == secret), None)
        if found is None:
            raise KeyError(f"client {client_id!r} holds no such secret")  # never the value
        return found

    def client_secret_id(self, client_id: str, secret: str) -> str:
        """The key id of one of the client's secrets (``register_client``'s too): what
        ``client_auth_log`` names it by."""
        with self._lock:
            return self._held_secret(client_id, secret).key_id

    def remove_client_secret(self, client_id: str, secret: str) -> None:
        """Revoke a client secret: afterwards it is refused like a wrong one (7000215)."""
        with self._lock:
            client = self._client(client_id)
            client.secrets.remove(self._held_secret(client_id, secret))

    @staticmethod
    def _load_certificate(cert_pem: str | bytes) -> x509.Certificate:
        return x509.load_pem_x509_certificate(cert_pem.encode() if isinstance(cert_pem, str)
                                              else cert_pem)

    def register_client_certificate(self, client_id: str, cert_pem: str | bytes) -> None:
        """Add a certificate credential (private_key_jwt) to a registered client."""
        cert = self._load_certificate(cert_pem)
        with self._lock:
            client = self._client(client_id)
            client.certs_sha1[_b64url(cert.fingerprint(hashes.SHA1()))] = cert
            client.certs_sha256[_b64url(cert.fingerprint(hashes.SHA256()))] = cert

    def unregister_client_certificate(self, client_id: str, cert_pem: str | bytes) -> None:
        """Remove a certificate credential: assertions it signs get AADSTS700027 afterwards."""
        cert = self._load_certificate(cert_pem)
        sha256 = _b64url(cert.fingerprint(hashes.SHA256()))
        with self._lock:
            client = self._client(client_id)
            if sha256 not in client.certs_sha256:
                raise KeyError(f"client {client_id!r} has no certificate {sha256}")
            del client.certs_sha256[sha256]
            del client.certs_sha1[_b64url(cert.fingerprint(hashes.SHA1()))]

    def external_issuer(self, issuer_url: str) -> ExternalIssuer:
        """A token issuer this stand-in trusts for federated credentials (a Kubernetes
        cluster, GitHub Actions...), with its own signing key; the same one for the same URL.
        Its tokens (``mint``) are accepted as client assertions by clients with a matching
        ``add_federated_credential``. Issuer URLs are compared exactly, as Entra does."""
        if issuer_url == self.issuer:
            raise ValueError("the stand-in's own issuer is trusted already (managed identities)")
        with self._lock:
            found = self._external_issuers.get(issuer_url)
            if found is None:
                key = (_SigningKey.shared(f"external {issuer_url}") if self._reuse_keys
                       else _SigningKey())
                found = self._external_issuers[issuer_url] = ExternalIssuer(issuer_url, key,
                                                                            self.now)
            return found

    def add_federated_credential(self, client_id: str, *, issuer: str, subject: str,
                                 audience: str = TOKEN_EXCHANGE_AUDIENCE) -> None:
        """Add a federated identity credential to a client: a token of ``issuer`` for
        ``subject`` and ``audience`` (all compared case-sensitively) authenticates it. One per
        issuer and subject, as in Entra: adding the pair again replaces its audience. For a
        managed identity: ``issuer=standin.issuer, subject=identity.object_id``."""
        record = _FederatedCredential(issuer, subject, audience)
        with self._lock:
            client = self._client(client_id)
            client.federated = [r for r in client.federated
                                if (r.issuer, r.subject) != (issuer, subject)] + [record]

    def remove_federated_credential(self, client_id: str, *, issuer: str, subject: str) -> None:
        """Remove the client's federated credential for ``issuer`` and ``subject``."""
        with self._lock:
            client = self._client(client_id)
            kept = [r for r in client.federated if (r.issuer, r.subject) != (issuer, subject)]
            if len(kept) == len(client.federated):
                raise KeyError(f"client {client_id!r} has no federated credential for "
                               f"{issuer!r} and {subject!r}")
            client.federated = kept

    def register_api(self, name: str, resource: str, scopes: list[str], *,
                     app_roles: Sequence[str] = ()) -> str:
        """Register a custom API (``resource`` like ``api://<guid>``); returns its base URL.

        Names that share a resource share its scopes: in Entra the scopes belong to the
        resource's app registration, whichever of an app's APIs asks for them. ``app_roles``:
        an app-only API, which accepts app tokens (client credentials) holding one of these
        application permissions in ``roles`` (``grant_app_permissions``) and refuses user
        tokens; without them, a delegated API, which refuses app tokens (they carry no
        ``scp``).
        """
        if name == "graph":
            raise ValueError("'graph' is the built-in Microsoft Graph stand-in")
        resource = resource.rstrip("/")
        with self._lock:
            same = [api for api in self._apis.values() if api.resource == resource]
            merged = sorted(set(scopes).union(*(api.scopes for api in same)))
            for api in same:
                api.scopes[:] = merged
            self._apis[name] = _Api(name, resource, merged, list(app_roles))
        return f"{self.base_url}/apis/{name}"

    def add_user(self, user: TestUser) -> TestUser:
        """Add a test user, or replace the one with the same username (case-insensitive);
        returns it as stored (``tid`` filled in). Tokens issued from then on describe it:
        refresh tokens and sessions name users by username."""
        user = dataclasses.replace(user, tid=user.tid or self.tenant_id)
        with self._lock:
            # A new dict, not a change in place: request threads iterate over the users.
            self.users = {**self.users, user.username.lower(): user}
        return user

    def update_user(self, username: str, *, roles: Sequence[str] | None = None,
                    groups: Sequence[str] | None = None) -> TestUser:
        """Change a test user's app roles and/or groups (object ids, the TRANSITIVE
        membership); ``None`` keeps what it has. Tokens issued later (a refresh, a new sign-in)
        and Graph's answers reflect it; tokens issued before do not, as in Entra."""
        with self._lock:
            user = self._user(username)
            changed = dataclasses.replace(
                user, roles=tuple(user.roles if roles is None else roles),
                groups=tuple(user.groups if groups is None else groups))
            return self.add_user(changed)

    def grant_app_permissions(self, client_id: str, resource: str, roles: Sequence[str]) -> None:
        """Grant a client application permissions (app roles of ``resource``, as an admin
        consents to them), e.g. ``grant_app_permissions(app, GRAPH_RESOURCE,
        ["User.Read.All", "GroupMember.Read.All"])``: its client credentials tokens for the
        resource carry them in ``roles``, and the Graph stand-in checks them. Adds to earlier
        grants; tokens issued before keep what they had."""
        canonical = self._canonical_resource(resource)
        names = {_GRAPH_CASING.get(r.lower(), r) if canonical == GRAPH_RESOURCE else r
                 for r in roles}
        with self._lock:
            self._client(client_id)
            self._app_permissions.setdefault((client_id, canonical), set()).update(names)

    def revoke_app_permissions(self, client_id: str, resource: str) -> None:
        """Remove every application permission granted to the client for ``resource``."""
        with self._lock:
            self._app_permissions.pop((client_id, self._canonical_resource(resource)), None)

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

    def demand_claims(self, api: str, claims: dict[str, Any] | None, *, step_up: bool,
                      encoding: str = "base64") -> None:
        """Make ``api`` (a registered name or ``"graph"``) answer tokens lacking these claims with
        a 401 ``insufficient_claims`` challenge. ``step_up=True``: a refresh asking for the claims
        fails with ``interaction_required``-style 50076 (the user must sign in interactively);
        ``step_up=False``: a refresh asking for them succeeds and the token carries them.
        ``encoding``: the challenge's ``claims`` value is base64 JSON (``"base64"``, what Entra
        and Graph send) or raw JSON in a quoted-string (``"json"``, what some APIs send).
        ``claims=None`` removes the demand."""
        if api != "graph" and api not in self._apis:
            raise KeyError(f"unknown API {api!r}")
        if encoding not in ("base64", "json"):
            raise ValueError(f"encoding must be 'base64' or 'json', not {encoding!r}")
        with self._lock:
            if claims is None:
                self._demands.pop(api, None)
            else:
                self._demands[api] = (claims, step_up, encoding)

    def slow(self, path_prefix: str, *, delay_s: float = 0.0,
             trickle_bytes_every_s: float | None = None) -> contextlib.AbstractContextManager[None]:
        """Answer requests whose path starts with ``path_prefix`` slowly: after ``delay_s``
        seconds, and, with ``trickle_bytes_every_s``, one byte (status line, headers, then body)
        every that many seconds: a provider that keeps a connection alive without ever quite
        answering. Lasts until ``unslow()`` or the end of the returned context manager::

            with standin.slow("/oidc/token", trickle_bytes_every_s=0.3):
                ...
        """
        rule = Slowness(delay_s, trickle_bytes_every_s)
        with self._lock:
            old = self._slow.pop(path_prefix, None)
            self._slow[path_prefix] = rule
        if old is not None:
            old.cancelled.set()

        @contextlib.contextmanager
        def undo() -> Iterator[None]:
            try:
                yield
            finally:
                with self._lock:
                    if self._slow.get(path_prefix) is rule:
                        del self._slow[path_prefix]
                rule.cancelled.set()

        return undo()

    def unslow(self) -> None:
        """End every ``slow()``; answers trickling out now are sent at once."""
        with self._lock:
            rules = list(self._slow.values())
            self._slow.clear()
        for rule in rules:
            rule.cancelled.set()

    def _slowness(self, path: str) -> Slowness | None:
        if not self._slow:  # the usual case, without taking the lock
            return None
        with self._lock:
            return next((rule for prefix, rule in self._slow.items()
                         if path.startswith(prefix)), None)

    def fail(self, path_prefix: str, status: int = 503, *, times: int | None = None,
             seconds: float | None = None, retry_after: int | str | None = 1) -> Fault:
        """Answer requests whose path starts with ``path_prefix`` (e.g.
        ``"/graph/v1.0/me/checkMemberGroups"``) with ``status`` instead of serving them: for the
        next ``times`` requests, for ``seconds`` on the stand-in's clock (``now()``, so
        ``clock_offset`` ends it too), or until undone. Under ``/graph/`` the answer is Graph's
        error JSON for that status (403 ``Authorization_RequestDenied``, 429
        ``TooManyRequests``, 503 ``serviceNotAvailable``...), elsewhere an OAuth-style error;
        429 and 503 answers carry ``Retry-After: retry_after``, seconds or an HTTP date
        (``email.utils.formatdate(t, usegmt=True)``; ``None``: no header). Requests
        are still counted (``graph_calls``). A new failure for the same prefix replaces the
        old one. Returns the ``Fault`` (how many it ``answered``; ``undo()``), which is also a
        context manager::

            with standin.fail("/graph/v1.0/me/checkMemberGroups", 503, times=1) as fault:
                ...
            assert fault.answered == 1
        """
        if not 400 <= status <= 599:
            raise ValueError(f"status must be an HTTP error status, not {status}")
        until = None if seconds is None else self.now() + seconds
        fault = Fault(self, path_prefix, status, retry_after, times, until)
        with self._lock:
            self._faults[path_prefix] = fault
        return fault

    def answer(self, path_prefix: str, body: Any, *, status: int = 200,
               times: int | None = None) -> Fault:
        """Answer requests whose path starts with ``path_prefix`` with the JSON ``body`` and
        ``status`` instead of serving them, for the next ``times`` requests or until undone: a
        captive portal's or a proxy's 200 page where a discovery document is expected::

            with standin.answer(discovery_path, {"status": "ok"}, times=1) as fault:
                ...

        Like ``fail()``, it replaces a failure for the same prefix and ``unfail()`` ends it."""
        fault = Fault(self, path_prefix, status, None, times, None, body=body)
        with self._lock:
            self._faults[path_prefix] = fault
        return fault

    def redirect(self, path_prefix: str, location: str, *, status: int = 307,
                 times: int | None = None) -> Fault:
        """Answer requests whose path starts with ``path_prefix`` with a redirect (``status``
        302, 307...) to ``location``, e.g. ``echo_url("localhost")``: another host name of the
        stand-in, whose ``/echo/`` records what arrives (``echo_requests``). Like ``fail()``
        (``times``, ``undo()``, ``unfail()``)."""
        if status not in (301, 302, 303, 307, 308):
            raise ValueError(f"status must be a redirect status, not {status}")
        fault = Fault(self, path_prefix, status, None, times, None, location=location)
        with self._lock:
            self._faults[path_prefix] = fault
        return fault

    def echo_url(self, host: str = "localhost", path: str = "/echo/") -> str:
        """The stand-in's echo endpoint under another host name than ``base_url``'s."""
        return f"https://{host}:{urlsplit(self.base_url).port}{path}"

    def large_answer(self, path_prefix: str, size: int, *, chunked: bool = False,
                     times: int | None = None) -> Fault:
        """Answer requests whose path starts with ``path_prefix`` with a 200 JSON answer of
        ``size`` bytes, made as it is sent (the stand-in holds 64 KB of it at a time), with
        its Content-Length or ``chunked``. Like ``fail()``."""
        fault = Fault(self, path_prefix, 200, None, times, None, size=size, chunked=chunked)
        with self._lock:
            self._faults[path_prefix] = fault
        return fault

    def unfail(self) -> None:
        """End every ``fail()``."""
        with self._lock:
            self._faults.clear()

    def _fault_for(self, path: str) -> Fault | None:
        if not self._faults:  # the usual case, without taking the lock
            return None
        with self._lock:
            for prefix, fault in list(self._faults.items()):
                if fault.until is not None and self.now() >= fault.until:
                    del self._faults[prefix]  # its time is over
                elif path.startswith(prefix):
                    fault.answered += 1
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining <= 0:
                            del self._faults[prefix]
                    return fault
        return None

    def _fault_answer(self, fault: Fault, req: _Request) -> _Response:
        if fault.body is not None:
            return _json(fault.status, fault.body)
        if fault.location is not None:
            return _Response(fault.status, headers=[("Location", fault.location)])
        if fault.size is not None:
            return _Response(200, content_type="application/json",
                             stream=_large_json(fault.size),
                             stream_length=None if fault.chunked else fault.size)
        headers = ([("Retry-After", str(fault.retry_after))]
                   if fault.status in (429, 503) and fault.retry_after is not None else [])
        if req.path.startswith("/graph/"):
            code, message = _GRAPH_ERRORS.get(fault.status, _GRAPH_ERRORS[500])
            return _json(fault.status, {"error": {"code": code, "message": message,
                                                  "innerError": self._graph_inner(req)}},
                         headers)
        error = {503: "temporarily_unavailable", 429: "temporarily_unavailable",
                 403: "access_denied"}.get(fault.status, "server_error")
        return _json(fault.status, {"error": error, "error_description":
                                    f"Fault injected: {fault.status} for {fault.path_prefix}."},
                     headers)

    def _count_graph(self, req: _Request) -> None:
        """Count a Graph request by operation: ``"POST /users/{id}/checkMemberGroups"``."""
        segs = [s for s in req.path.split("/") if s][2:]  # after graph/v1.0
        if len(segs) >= 2 and segs[0] == "users":
            segs[1] = "{id}"
        with self._lock:
            self.graph_calls[f"{req.method} /{'/'.join(segs)}"] += 1

    def reset_counts(self) -> None:
        with self._lock:
            self.token_calls.clear()
            self.token_grants.clear()
            self.token_hosts.clear()
            self.authorize_calls = 0
            self.logout_calls = 0
            self.last_logout = None
            self.front_channel_calls.clear()
            self.api_calls.clear()
            self.api_challenges.clear()
            self.api_refusals.clear()
            self.graph_calls.clear()
            self.client_auth_log.clear()
            self.msi_requests.clear()
            self.echo_requests.clear()

    def mint_access_token(self, username: str, client_id: str, scopes: list[str],
                          *, lifetime: int | None = None, **extra_claims: Any) -> str:
        """Issue an access token directly (no consent checks), for API-side tests."""
        _, resources = self._parse_scopes(" ".join(scopes), client_id)
        if len(resources) != 1:
            raise ValueError("scopes must name exactly one resource")
        ((resource, names),) = resources.items()
        return self._access_token(self._user(username), client_id, resource, sorted(names),
                                  sid=str(uuid.uuid4()), extra=extra_claims, lifetime=lifetime)

    # ------------------------------------------------------------------ routing
    def _route(self, req: _Request) -> _Response:
        if "server_crash" in self.faults:  # lets tests prove that handler bugs surface
            raise RuntimeError("fault injected: server_crash")
        if req.listener == "main" and req.path.startswith("/graph/v1.0/"):
            self._count_graph(req)
        fault = self._fault_for(req.path)
        if fault is not None:
            return self._fault_answer(fault, req)
        if req.listener == "msi":  # the managed identity endpoint's own listener
            return self._msi(req)
        segs = [s for s in req.path.split("/") if s]
        customer = self._customer_route(req, segs)  # B2C and External ID (b2c.py)
        if customer is not None:
            return customer
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
        if segs[0] == "echo":
            with self._lock:
                self.echo_requests.append({"method": req.method, "url": req.origin + req.path,
                                           "headers": dict(req.headers)})
            return _json(200, {"echo": req.path})
        if "discovery_unavailable" in self.faults and req.path.endswith(
                "/.well-known/openid-configuration"):
            # The provider cannot be reached for discovery (an outage, as a 503 answer).
            return _json(503, {"error": "temporarily_unavailable",
                               "error_description": "The service is unavailable."},
                         [("Retry-After", "1")])
        if "discovery_garbled" in self.faults and req.path.endswith(
                "/.well-known/openid-configuration"):
            # A 200 JSON answer that is not a discovery document (a captive portal, a proxy).
            return _json(200, {"status": "ok"})
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
            host = (req.headers.get("Host") or "").split(":", 1)[0].lower()
            if rest == "v2.0/.well-known/openid-configuration":
                document = self._discovery(tenant, "entra")
                if host in self.regional_hosts:
                    ours = f"{self.base_url}/"
                    document.update({k: f"https://{host}/{v[len(ours):]}"
                                     for k, v in document.items()
                                     if k.endswith("_endpoint") and isinstance(v, str)
                                     and v.startswith(ours)})
                return _json(200, document)
            if rest == "discovery/v2.0/keys":
                return _json(200, self._jwks())
            if rest in ("oauth2/v2.0/authorize", "oauth2/v2.0/logout"):
                return self._browser_endpoint(req, rest.rsplit("/", 1)[1], tenant, "entra")
            if rest == "oauth2/v2.0/token":
                with self._lock:
                    self.token_hosts[(req.form.get("grant_type", ""), host)] += 1
                return self._token(req, "entra")
        return _json(404, {"error": "not_found", "error_description": f"No route for {req.path}"})

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


def _large_json(size: int, block: int = 64 * 1024) -> Iterator[bytes]:
    """A JSON document of exactly ``size`` bytes (at least 12): one long string."""
    head, tail = b'{"data": "', b'"}'
    yield head
    left = size - len(head) - len(tail)
    while left > 0:
        n = min(block, left)
        yield b"x" * n
        left -= n
    yield tail
