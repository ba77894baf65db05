"""The stand-in's tenant: who and what it knows, where it is served, and the tokens it mints.

``_Tenant`` holds the state that the identity endpoints (``identity.py``) and the API stand-ins
(``apis.py``) share: test users, app registrations, registered APIs, consents, issued codes and
refresh tokens, claims demands, the signing keys, trusted external issuers and managed
identities, the clock, the counters and logs tests read, and the URLs. ``StandIn``
(``standin.py``) builds on both and adds the listeners and configuration.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import secrets
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from .model import (
    GENERIC_TENANTS,
    GRAPH_APP_ID,
    GRAPH_RESOURCE,
    GROUPS_CLAIM_LIMIT,
    OIDC_SCOPES,
    ClientAuth,
    ErrorPage,
    ManagedIdentity,
    OAuthError,
    Tenant,
    TestUser,
    _Api,
    _Client,
    _Code,
    _RefreshToken,
)
from .server import _Request
from .tokens import ExternalIssuer, _b64url, _SigningKey

# Graph's delegated scopes are many; these give the registered casing for the usual ones.
# Other Graph scope names are accepted as given.
_GRAPH_KNOWN_SCOPES = (
    "User.Read", "User.ReadBasic.All", "User.Read.All", "User.ReadWrite", "Mail.Read", "Mail.Send",
    "Calendars.Read", "Calendars.ReadWrite", "Files.Read", "Files.ReadWrite", "Group.Read.All",
    "People.Read", "Contacts.Read", "Tasks.ReadWrite", "Sites.Read.All", "GroupMember.Read.All",
    "User.ReadWrite.All", "Group.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All",
)
_GRAPH_CASING = {s.lower(): s for s in _GRAPH_KNOWN_SCOPES}


class _Tenant:
    """The state and shared helpers of a stand-in (see ``StandIn`` for the public side)."""

    def __init__(self, tenant_id: str, users: Sequence[TestUser], access_token_lifetime: int,
                 *, tenant_domain: str, reuse_keys: bool = False) -> None:
        self.tenant_id = tenant_id
        self.tenant_domain = tenant_domain
        # Every tenant of the stand-in by id, its own (`tenant_id`) first; `add_tenant` adds
        # others, whose users (`TestUser.tid`) sign in to multi-tenant apps.
        self.tenants: dict[str, Tenant] = {tenant_id: Tenant(tenant_id, tenant_domain)}
        self.users: dict[str, TestUser] = {
            u.username.lower(): dataclasses.replace(u, tid=u.tid or tenant_id) for u in users
        }
        # B2B guests: (resource tenant id, lower-case username) -> the guest's object id in
        # that tenant (the `oid` of the tokens that tenant issues to the user).
        self._guests: dict[tuple[str, str], str] = {}
        self.access_token_lifetime = access_token_lifetime
        self.clock_offset: float = 0.0
        self.faults: set[str] = set()
        # Claims that replace those of every ID token issued from now on (a test's fault: a token
        # minted for another client, or by another issuer, still signed by the stand-in).
        self.id_token_overrides: dict[str, Any] = {}
        # /token requests per grant type, whatever their outcome...
        self.token_calls: collections.Counter[str] = collections.Counter()
        # ...and the successful ones. MSAL keeps one refresh token per granted scope set and may
        # try several for one refresh, so tests that count refreshes count these.
        self.token_grants: collections.Counter[str] = collections.Counter()
        self.authorize_calls = 0
        self.logout_calls = 0
        self.last_logout: dict[str, str] | None = None
        self.api_calls: list[dict[str, Any]] = []  # calls the API stand-ins accepted
        self.api_challenges: list[dict[str, Any]] = []  # claims challenges they answered
        # Demands they refused with a plain 401 because the client had not declared `cp1`.
        self.api_refusals: list[dict[str, Any]] = []
        # Requests to the Graph stand-in per operation ("POST /me/checkMemberGroups",
        # "POST /users/{id}/getMemberObjects", "GET /me"...), whatever their outcome (a
        # refused token, a fault injected with `fail`): what an app's calls to Graph cost.
        self.graph_calls: collections.Counter[str] = collections.Counter()
        # Display names of group ids, for the sign-in page only (tokens and Graph use ids).
        self.group_names: dict[str, str] = {}

        self._lock = threading.RLock()
        self._clients: dict[str, _Client] = {}
        self._apis: dict[str, _Api] = {}
        self._consents: dict[tuple[str, str, str], set[str]] = {}
        self._codes: dict[str, _Code] = {}
        self._refresh_tokens: dict[str, _RefreshToken] = {}
        # Application permissions (app roles) granted to a client for a resource, as an admin
        # grants them: (client id, canonical resource) -> role values. Client credentials
        # tokens carry them in `roles`.
        self._app_permissions: dict[tuple[str, str], set[str]] = {}
        # API name -> (claims demanded, step_up, "base64" | "json" encoding in the challenge)
        self._demands: dict[str, tuple[dict[str, Any], bool, str]] = {}
        # Browser sessions at the provider: session id (a cookie) -> {username: client ids the
        # user signed in to in that session}. Sign-out uses it to know who and which apps.
        self._sessions: dict[str, dict[str, set[str]]] = {}
        # (session id, username) -> the `sid` of that account's session at the provider: the
        # same in every ID token of that browser session, whichever app asked for it.
        self._provider_sids: dict[tuple[str, str], str] = {}
        # The front-channel logout URLs called at sign-out: (URL with its query, the app's
        # HTTP status, or None when it could not be reached).
        self.front_channel_calls: list[tuple[str, int | None]] = []
        self._hint_secret = secrets.token_bytes(16)
        # Client authentications at /token that succeeded (tests read which credential).
        self.client_auth_log: list[ClientAuth] = []
        # Requests to the managed identity endpoint (App Service emulation), whatever their
        # outcome: {"resource", "client_id" (or None), "api_version"}.
        self.msi_requests: list[dict[str, Any]] = []
        # The App Service emulation's IDENTITY_HEADER: random per stand-in (a GUID there too).
        self.identity_header = str(uuid.uuid4())
        self._reuse_keys = reuse_keys
        self._external_issuers: dict[str, ExternalIssuer] = {}
        self._managed_identities: list[ManagedIdentity] = []
        self._system_identity: ManagedIdentity | None = None
        # Entra documents only user-assigned managed identities as an app's federated
        # credential: the system-assigned identity's token is refused unless this is set.
        self.system_identity_federation = False
        # Strict OIDC mode: (client id, jti) of private_key_jwt assertions used -> until when
        # they would be valid (replays within that time are refused).
        self._used_jtis: dict[tuple[str, str], float] = {}
        # The `uti` of access tokens issued by the generic OpenID Connect endpoints: their Graph
        # tokens name Graph's issuer, yet their APIs treat them as the generic provider's.
        self._generic_token_ids: set[str] = set()
        # Two keys: one published in the JWKS (id tokens, custom API tokens) and one that is NOT
        # published, for Graph tokens: like Entra, an app must not be able to validate those.
        self._key = _SigningKey.shared("jwks") if reuse_keys else _SigningKey()
        self._graph_key = _SigningKey.shared("graph") if reuse_keys else _SigningKey()
        self._base_url: str | None = None
        self._browser_base_url: str | None = None

    # ------------------------------------------------------------------ URLs and clock
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

    @property
    def issuer(self) -> str:
        """The Entra-style issuer of the stand-in's tokens: ``{base}/{tenant id}/v2.0`` (the
        ``iss`` of its ID tokens, v2 access tokens and managed identity tokens)."""
        return f"{self.base_url}/{self.tenant_id}/v2.0"

    @property
    def oidc_issuer(self) -> str:
        """The issuer of the strict generic OpenID Connect mode: ``{base}/oidc``."""
        return self.oidc_authority

    def issuer_of(self, tenant_id: str) -> str:
        """The Entra-style issuer of a tenant's tokens: ``{base}/{tenant id}/v2.0``."""
        return f"{self.base_url}/{tenant_id}/v2.0"

    def _issuer(self, mode: str, tid: str | None = None) -> str:
        return self.oidc_issuer if mode == "oidc" else self.issuer_of(tid or self.tenant_id)

    # ------------------------------------------------------------------ tenants and guests
    def add_tenant(self, tenant_id: str, domain: str, users: Sequence[TestUser] = ()) -> Tenant:
        """Add another tenant (a directory with its own id, domain and users) and its users,
        whose home tenant it is (their ``tid`` is set to it). Its authority is
        ``{base_url}/{tenant id or domain}``; its tokens carry ``tid`` = ``tenant_id`` and the
        issuer ``issuer_of(tenant_id)``."""
        tenant = Tenant(tenant_id, domain)
        with self._lock:
            if any(t.domain.lower() == domain.lower() and t.tenant_id != tenant.tenant_id
                   for t in self.tenants.values()):
                raise ValueError(f"another tenant has the domain {domain!r}")
            self.tenants = {**self.tenants, tenant.tenant_id: tenant}
            self.users = {**self.users, **{u.username.lower(): dataclasses.replace(
                u, tid=tenant.tenant_id) for u in users}}
        return tenant

    def add_guest(self, username: str, tenant_id: str, object_id: str | None = None) -> str:
        """Invite an existing user as a B2B guest of another tenant (an invitation accepted);
        returns the guest's object id in that tenant (new unless given). Signing in at that
        tenant's authority then gives tokens of that tenant (its ``tid`` and issuer, the guest's
        ``oid``, ``idp`` = the home tenant), while ``client_info`` still names the HOME account,
        so MSAL's home_account_id stays ``{home oid}.{home tid}``."""
        user = self._user(username)
        tenant = self._known_tenant(tenant_id)
        if tenant.tenant_id == user.tid:
            raise ValueError(f"{username} is a member of {tenant_id}, not a guest")
        oid = str(uuid.UUID(object_id)) if object_id else str(uuid.uuid4())
        with self._lock:
            self._guests[(tenant.tenant_id, user.username.lower())] = oid
        return oid

    def _known_tenant(self, tenant_id: str) -> Tenant:
        found = self._tenant_of(tenant_id)
        if found is None:
            raise KeyError(f"unknown tenant {tenant_id!r}: add_tenant() first")
        return found

    def _tenant_of(self, segment: str) -> Tenant | None:
        """The tenant an authority's tenant segment names (its id or its domain, any case)."""
        wanted = segment.lower()
        return next((t for t in self.tenants.values()
                     if wanted in (t.tenant_id, t.domain.lower())), None)

    def _tenant_segment_ok(self, segment: str) -> bool:
        return segment.lower() in GENERIC_TENANTS or self._tenant_of(segment) is not None

    def _object_id_in(self, user: TestUser, tid: str) -> str:
        """The user's object id in tenant ``tid``: its own at home, its guest object's else."""
        if tid == (user.tid or self.tenant_id):
            return user.oid
        return self._guests[(tid, user.username.lower())]

    def _user_by_oid(self, oid: object, tid: object) -> TestUser | None:
        """The user whose object id in tenant ``tid`` is ``oid`` (a member or a guest)."""
        for user in self.users.values():
            if user.tid == tid and user.oid == oid:
                return user
            if isinstance(tid, str) and self._guests.get((tid, user.username.lower())) == oid:
                return user
        return None

    def _check_audience(self, client: _Client, segment: str) -> None:
        """Whether the app may be used at this authority, as Entra decides from its
        registration's signInAudience (raised: what Entra answers).

        A single-tenant app (AzureADMyOrg) at ``organizations`` or ``common``: AADSTS50194,
        sent back to the redirect URI as ``invalid_request`` (what apps report receiving; it
        has also been reported on Entra's own page: UNCONFIRMED which when). A single-tenant
        app at another tenant's authority is not found there: AADSTS700016 on Entra's page."""
        if client.sign_in_audience != "AzureADMyOrg":
            return
        home = client.tenant_id or self.tenant_id
        if segment.lower() in GENERIC_TENANTS:
            raise OAuthError(
                "invalid_request", 50194,
                f"Application '{client.client_id}'({client.display_name}) is not configured as "
                "a multi-tenant application. Usage of the /common endpoint is not supported for "
                "such applications created after '10/15/2018'. Use a tenant-specific endpoint or "
                "configure the application to be multi-tenant.")
        tenant = self._tenant_of(segment)
        if tenant is not None and tenant.tenant_id != home:
            raise ErrorPage(
                "unauthorized_client", 700016,
                f"Application with identifier '{client.client_id}' was not found in the "
                f"directory '{tenant.domain}'. This can happen if the application has not been "
                "installed by the administrator of the tenant or consented to by any user in "
                "the tenant. You may have sent your authentication request to the wrong tenant.")

    def _token_tenant(self, user: TestUser, client: _Client, segment: str) -> str:
        """The tenant whose tokens a sign-in at this authority gives ``user`` (its ``tid``).

        At ``organizations``/``common`` Entra signs the user in to their home tenant (a
        multi-tenant app; a single-tenant one was refused at /authorize). At a tenant's own
        authority the user must be a member or a guest of it, else AADSTS50020 on Entra's own
        page after the user has signed in (never sent back to the app: how every report shows
        it; UNCONFIRMED that it never is). A single-tenant app's users must also be of its
        tenant (the same 50020)."""
        home = user.tid or self.tenant_id
        tenant = self._tenant_of(segment)
        target = home if tenant is None else tenant.tenant_id
        if client.sign_in_audience == "AzureADMyOrg":
            target = client.tenant_id or self.tenant_id
        if target == home or (target, user.username.lower()) in self._guests:
            return target
        where = self.tenants[target]
        raise ErrorPage(
            "invalid_request", 50020,
            f"User account '{user.username}' from identity provider "
            f"'https://sts.windows.net/{home}/' does not exist in tenant '{where.domain}' and "
            f"cannot access the application '{client.client_id}'({client.display_name}) in "
            "that tenant. The account needs to be added as an external user in the tenant "
            "first. Sign out and sign in again with a different Azure Active Directory user "
            "account.")

    def _other_issuers(self) -> set[str]:
        """The issuers of the stand-in's other modes (B2C, External ID: b2c.py)."""
        return set()

    def now(self) -> float:
        """The stand-in's clock: ``time.time() + clock_offset``."""
        return time.time() + self.clock_offset

    # ------------------------------------------------------------------ users, scopes and consents
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
                name = (".default" if name.lower() == ".default"
                        else _GRAPH_CASING.get(name.lower(), name))
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

    # ------------------------------------------------------------------ tokens minted
    def _sub(self, user: TestUser, client_id: str, tid: str | None = None) -> str:
        # Entra's sub is pairwise: stable per user and app, different across apps (and, for a
        # guest, the guest object's in the resource tenant).
        oid = self._object_id_in(user, tid) if tid else user.oid
        return _b64url(hashlib.sha256(f"{oid}|{client_id}".encode()).digest())[:43]

    def client_info(self, user: TestUser) -> str:
        """Entra's ``client_info``: base64url JSON with the HOME tenant (``utid``), no padding."""
        return _b64url(json.dumps({"uid": user.oid, "utid": user.tid},
                                  separators=(",", ":")).encode())

    def _sign(self, claims: dict[str, Any], *, graph: bool = False) -> str:
        return (self._graph_key if graph else self._key).sign(claims)

    def _access_token(self, user: TestUser, client_id: str, resource: str, scp: list[str], *,
                      sid: str, extra: Mapping[str, Any] | None = None,
                      lifetime: int | None = None, tid: str | None = None) -> str:
        """An access token for ``user`` in tenant ``tid`` (default: the user's home tenant)."""
        now = int(self.now())
        exp = now + (lifetime if lifetime is not None else self.access_token_lifetime)
        tid = tid or user.tid or self.tenant_id
        common = {
            "iat": now, "nbf": now, "exp": exp, "aio": _b64url(secrets.token_bytes(24)),
            "name": user.name, "oid": self._object_id_in(user, tid), "scp": " ".join(scp),
            "sid": sid, "sub": self._sub(user, client_id, tid), "tid": tid,
            "uti": _b64url(secrets.token_bytes(16)), "rh": "0.stand-in.",
            "given_name": user.given_name, "family_name": user.surname,
            **self._guest_claims(user, tid),
        }
        if resource == GRAPH_RESOURCE:
            # Graph tokens are v1 tokens, signed with an unpublished key (apps must not validate).
            claims = {"aud": GRAPH_RESOURCE, "iss": f"https://sts.windows.net/{tid}/",
                      "appid": client_id, "appidacr": "1", "upn": user.username,
                      "unique_name": user.username, "idtyp": "user", "ver": "1.0", **common}
        else:
            api = self._api_for(resource)
            aud = api.audience if api else resource
            claims = {"aud": aud, "iss": self.issuer_of(tid), "azp": client_id, "azpacr": "1",
                      "preferred_username": user.username, "ver": "2.0", **common}
        claims.update(extra or {})
        return self._sign(claims, graph=resource == GRAPH_RESOURCE)

    def _guest_claims(self, user: TestUser, tid: str) -> dict[str, Any]:
        """What a guest's tokens from a resource tenant add: ``idp``, the identity provider that
        authenticated the user, their home tenant's issuer. Entra's B2B token example shows it
        in the v1 form ``https://sts.windows.net/{home tid}/``; that v2 tokens carry the same
        form is UNCONFIRMED, as is leaving the claim out of members' tokens (the claims
        reference says it equals ``iss`` unless the account is not of the issuer's tenant)."""
        home = user.tid or self.tenant_id
        return {} if tid == home else {"idp": f"https://sts.windows.net/{home}/"}

    def login_hint(self, user: TestUser) -> str:
        """The opaque ``login_hint`` optional claim of ``user``, which the Entra-style logout
        endpoint takes back as ``logout_hint``. Stable per user, meaningless to the app."""
        digest = hashlib.sha256(self._hint_secret + user.oid.encode()).digest()
        return "O." + _b64url(digest)

    def _user_by_login_hint(self, hint: str) -> TestUser | None:
        return next((u for u in self.users.values() if self.login_hint(u) == hint), None)

    def _id_token(self, user: TestUser, client_id: str, oidc: set[str], *, mode: str, sid: str,
                  nonce: str | None, auth_time: int | None, tid: str | None = None) -> str:
        """An ID token for ``user`` from tenant ``tid`` (default: the user's home tenant)."""
        now = int(self.now())
        tid = tid or user.tid or self.tenant_id
        claims: dict[str, Any] = {
            "aud": client_id, "iss": self._issuer(mode, tid), "iat": now, "nbf": now,
            "exp": now + 3600,
            "rh": "0.stand-in.", "sid": sid, "sub": self._sub(user, client_id, tid),
            "tid": tid, "uti": _b64url(secrets.token_bytes(16)), "ver": "2.0",
            "aio": _b64url(secrets.token_bytes(24)),
        }
        if mode == "entra":
            claims.update(self._guest_claims(user, tid))
        if "profile" in oidc:  # Entra: `profile` gates oid, name, preferred_username
            claims.update(oid=self._object_id_in(user, tid), name=user.name,
                          preferred_username=user.username)
            client = self._clients.get(client_id)
            if mode != "oidc" and client is not None and "login_hint" in client.optional_claims:
                # An optional claim: only when the app registration asks for it.
                claims["login_hint"] = self.login_hint(user)
        if "email" in oidc:
            claims["email"] = user.username
        if user.roles:  # like every Entra claim, present only when it has a value
            claims["roles"] = list(user.roles)
        if mode != "oidc":  # Entra, or External ID ("ciam")
            claims.update(self._groups_claims(user, self._clients.get(client_id), tid))
        if nonce is not None:
            claims["nonce"] = nonce
        if auth_time is not None:
            claims["auth_time"] = auth_time
        claims.update(self.id_token_overrides)
        return self._sign(claims)

    def _groups_claims(self, user: TestUser, client: _Client | None,
                       tid: str) -> dict[str, Any]:
        """The ID token's group claims: ``groups`` (object ids) when the registration asks
        for them (groupMembershipClaims) and the user has any; above GROUPS_CLAIM_LIMIT the
        groups overage instead, a distributed claim (OpenID Connect Core 5.6.2) naming where
        the groups can be read.

        The endpoint: tokens seen in the wild name the retired Azure AD Graph,
        ``https://graph.windows.net/{tid}/users/{oid}/getMemberObjects`` (which needs an
        ``api-version`` and a token for graph.windows.net); Microsoft's ID token claims
        reference shows ``https://graph.microsoft.com/v1.0/users/{userID}/getMemberObjects``
        in its example. Which one Entra emits today is UNCONFIRMED; the stand-in emits the
        graph.windows.net one, so an app that follows the link instead of calling Microsoft
        Graph itself fails here too. ``hasgroups`` is not emitted: Entra uses it instead of
        ``groups`` in implicit-flow tokens only (a URL fragment's length limit), never in
        tokens from the token endpoint."""
        if client is None or client.group_membership_claims == "None" or not user.groups:
            return {}
        if len(user.groups) <= GROUPS_CLAIM_LIMIT:
            return {"groups": list(user.groups)}
        endpoint = (f"https://graph.windows.net/{tid}/users/{self._object_id_in(user, tid)}"
                    "/getMemberObjects")
        return {"_claim_names": {"groups": "src1"},
                "_claim_sources": {"src1": {"endpoint": endpoint}}}

    # ------------------------------------------------------------------ errors
    def _error_fields(self, e: OAuthError, req: _Request | None,
                      mode: str = "entra") -> dict[str, Any]:
        """An error's JSON fields: Entra's (AADSTS text, ``error_codes``, ids), or in the
        generic OIDC mode only RFC 6749's ``error`` and ``error_description``."""
        if mode == "oidc":
            return {"error": e.error, "error_description": e.message}
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
