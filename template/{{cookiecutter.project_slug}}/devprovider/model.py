"""What the Entra ID stand-in knows and keeps: constants, test users, errors, its records.

The records are app registrations (``_Client``, with their secrets, certificates and federated
identity credentials), registered APIs (``_Api``), pending /authorize requests, authorization
codes and refresh tokens, plus the public records tests read (``ClientAuth``,
``ManagedIdentity``); the helpers at the end read the ``access_token`` part of an OpenID
Connect ``claims`` request.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509

DEFAULT_TENANT_ID = "7d3c5b1e-4f2a-4c8b-9e6d-1a2b3c4d5e6f"
GRAPH_RESOURCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
CODE_LIFETIME = 600  # Entra codes live about 10 minutes
REFRESH_TOKEN_LIFETIME = 90 * 24 * 3600  # 90 days of inactivity (web apps)
CLOCK_SKEW = 300  # leeway for client assertions' exp/nbf, like Entra's 5 minutes
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# The audience Entra expects of federated tokens (public cloud) and managed identities ask for.
TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"
# Entra's discovery for organizations/common publishes this literal in its issuer.
TENANT_PLACEHOLDER = "{tenantid}"
# The tenant-independent authority segments: `organizations` (work or school accounts of any
# tenant) and `common` (those and personal Microsoft accounts, which the stand-in has not).
GENERIC_TENANTS = ("organizations", "common")
# An app registration's signInAudience: who may sign in to it. AzureADMyOrg is a single-tenant
# app (its own tenant's users and guests); the others are multi-tenant. Personal Microsoft
# accounts (`consumers`) are not modelled.
SIGN_IN_AUDIENCES = ("AzureADMyOrg", "AzureADMultipleOrgs", "AzureADandPersonalMicrosoftAccount")
# A JWT carries at most this many groups; above it, an overage claim instead (ID token
# claims reference, "Groups overage claim": 200 for JWTs, 150 for SAML).
GROUPS_CLAIM_LIMIT = 200
# What groupMembershipClaims may say in the stand-in (the manifest also knows DirectoryRole and
# ApplicationGroup, which need directory roles and group assignments the stand-in has not).
GROUP_MEMBERSHIP_CLAIMS = ("None", "SecurityGroup", "All")


def _object_id(value: str) -> str:
    """A directory object id (a GUID) in Graph's form: lower case, hyphenated."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise ValueError(f"not a directory object id (a GUID): {value!r}") from None


@dataclasses.dataclass(frozen=True)
class TestUser:
    """A test user. ``tid`` is the user's HOME tenant (``None``: the stand-in's tenant).

    ``roles``: the app role VALUES assigned to the user (every app registration of the stand-in
    shares them; its ID tokens carry them in ``roles``). ``groups``: the object ids (GUIDs) of
    the groups the user is a member of, TRANSITIVELY (nested memberships already flattened),
    all security groups: what the ``groups`` claim and Graph's ``checkMemberGroups`` /
    ``getMemberObjects`` answer from."""

    __test__ = False  # not a pytest test class, despite the name

    username: str
    name: str
    oid: str
    tid: str | None = None
    given_name: str = ""
    surname: str = ""
    roles: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Derive given name / surname from the display name when not given.
        first, _, last = self.name.partition(" ")
        if not self.given_name:
            object.__setattr__(self, "given_name", first)
        if not self.surname:
            object.__setattr__(self, "surname", last)
        # Lists are accepted too; duplicates go (a membership is a set), order is kept.
        object.__setattr__(self, "roles", tuple(dict.fromkeys(str(r) for r in self.roles)))
        object.__setattr__(self, "groups", tuple(dict.fromkeys(_object_id(g)
                                                               for g in self.groups)))


DEFAULT_USERS: list[TestUser] = [
    TestUser("alice@contoso.test", "Alice Smith", "a11ce000-0000-4000-8000-00000000a11c"),
    TestUser("bob@contoso.test", "Bob Jones", "b0b00000-0000-4000-8000-000000000b0b"),
    TestUser("carol@contoso.test", "Carol Nguyen", "ca201000-0000-4000-8000-0000000ca201"),
]


@dataclasses.dataclass(frozen=True)
class Tenant:
    """A directory of the stand-in: its tenant id (a GUID, the ``tid`` of its tokens) and its
    domain (``contoso.test``: an authority may name a tenant by either)."""

    tenant_id: str
    domain: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "tenant_id", _object_id(self.tenant_id))


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


class ErrorPage(OAuthError):
    """An error Entra shows on its own page at /authorize instead of sending it back to the
    redirect URI (the app never sees it)."""


class _TokenRejected(Exception):
    """A bearer token an API stand-in refuses (401 invalid_token / 403 insufficient_scope)."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


@dataclasses.dataclass(frozen=True)
class ClientAuth:
    """One successful client authentication at /token (``StandIn.client_auth_log``).

    ``method`` is ``"secret"``, ``"certificate"`` or ``"federated"``; ``credential`` names the
    credential without revealing it: the secret's key id, the certificate's SHA-256 thumbprint
    (base64url, no padding), or ``"{issuer}|{subject}"`` of the federated token."""

    client_id: str
    method: str
    credential: str
    grant_type: str


@dataclasses.dataclass(frozen=True)
class ManagedIdentity:
    """A managed identity of the App Service emulation (``StandIn.add_managed_identity``):
    its service principal's object id (the ``oid``/``sub`` of its tokens) and its client id."""

    object_id: str
    client_id: str


@dataclasses.dataclass
class _ClientSecret:
    """One of an app's client secrets (Entra's ``passwordCredentials``)."""

    key_id: str  # a GUID, what the portal shows as the "Secret ID"
    value: str
    expires_at: float | None  # epoch seconds on the stand-in's clock; None: never
    # Set on the secret given to register_client: re-registering replaces that one only.
    from_registration: bool = False


@dataclasses.dataclass(frozen=True)
class _FederatedCredential:
    """A federated identity credential: Entra matches all three case-sensitively."""

    issuer: str
    subject: str
    audience: str


@dataclasses.dataclass
class _Client:
    client_id: str
    # Also the allowed sign-out targets: Entra has no separate post-logout list for web apps,
    # and Keycloak's default ("+") is the redirect URIs too.
    redirect_uris: list[str]
    display_name: str
    # ID token optional claims the app registration asks for (e.g. "login_hint").
    optional_claims: frozenset[str] = frozenset()
    # The manifest's groupMembershipClaims: "None" or which groups the ID token's `groups`
    # claim lists ("SecurityGroup", "All": the same here, every test group is a security group).
    group_membership_claims: str = "SecurityGroup"
    # The front-channel logout URL: called with the provider session's `sid` when the user
    # signs out of the provider (from any app), as Entra does.
    front_channel_logout_url: str | None = None
    # The tenant the app is registered in, and its signInAudience (SIGN_IN_AUDIENCES).
    tenant_id: str = ""
    sign_in_audience: str = "AzureADMultipleOrgs"
    secrets: list[_ClientSecret] = dataclasses.field(default_factory=list)
    certs_sha1: dict[str, x509.Certificate] = dataclasses.field(default_factory=dict)
    certs_sha256: dict[str, x509.Certificate] = dataclasses.field(default_factory=dict)
    federated: list[_FederatedCredential] = dataclasses.field(default_factory=list)

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
    # An app-only API's: the app roles (application permissions) it accepts, one of which an
    # app token must hold; empty: a delegated API, taking user tokens only.
    app_roles: list[str] = dataclasses.field(default_factory=list)

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
    # The authority's tenant segment: a tenant id or domain, `organizations` or `common`.
    tenant: str = "organizations"


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
    # What the user granted at /authorize: {resource: scope names}. In the strict OIDC mode a
    # refresh token can never serve more than this (RFC 6749 section 6).
    resources: dict[str, set[str]]
    # The refresh tokens issued from this code (and their rotations) share this family id,
    # so a replayed code or a reused refresh token can revoke all of them.
    family: str
    used: bool = False
    # The tenant whose tokens the code gives (the `tid`): the user's home tenant, or the tenant
    # the authority named, where the user may be a guest. "" : the stand-in's own tenant.
    tid: str = ""


@dataclasses.dataclass
class _RefreshToken:
    client_id: str
    username: str
    sid: str
    expires: float
    mode: str
    family: str
    # OIDC scopes and {resource: scope names} granted with the token's family; only the strict
    # OIDC mode holds a refresh token to them (Entra's serve any consented resource).
    oidc: set[str] = dataclasses.field(default_factory=set)
    resources: dict[str, set[str]] = dataclasses.field(default_factory=dict)
    # access_token claims (name -> values) satisfied by an interactive sign-in (step-up).
    stepped_up: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    revoked: bool = False
    tid: str = ""  # the tenant of the tokens it gives (the code's)
    # Strict OIDC mode: set once the token has been exchanged (rotated); using it again is a
    # reuse, which revokes its whole family.
    rotated: bool = False


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
