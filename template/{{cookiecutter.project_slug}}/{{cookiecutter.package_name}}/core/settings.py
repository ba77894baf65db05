# Managed by the msal-webapp template: regenerate rather than edit (your code goes outside core/).
"""Typed settings, read once from environment variables at start-up.

Every problem is collected and reported together, each naming the variable and the fix, so an
operator fixes a deployment in one pass instead of one restart per mistake.
"""

from __future__ import annotations

import inspect
import ipaddress
import json
import math
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .credentials import (
    KINDS,
    X5C_MODES,
    CredentialError,
    CredentialSettings,
    accepts_no_arguments,
    check_callable,
    load_certificate,
    token_exchange_audience,
)
from .stores.encrypted import parse_keys

# MSAL adds these to every sign-in itself and refuses them in a scope list.
RESERVED_SCOPES = frozenset({"openid", "profile", "offline_access"})
GRAPH_RESOURCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"  # Graph's application id, a scope prefix too
# Microsoft Graph's roots in each cloud, by the cloud's sign-in hosts (the hosts MSAL knows;
# learn.microsoft.com/graph/deployments), the default first: the US Government cloud has L4
# (GCC High) and L5 (DoD) Graph behind one sign-in host. The sovcloud-identity clouds' Graph
# is not documented (): API_GRAPH_BASE_URL names it. Another host (a stand-in, a private name)
# is no cloud known here: Graph defaults to the global one, as MSAL treats such hosts. The
# generator's own table, which its rules check specs with.
_GLOBAL_GRAPH = (GRAPH_RESOURCE,)
GRAPH_ROOTS: Mapping[str, tuple[str, ...]] = {
{% for host, roots in graph_roots_by_host.items() %}
    {{ host | tojson }}: ({{ roots | map("tojson") | join(", ") }}{{ "," if roots | length == 1 else "" }}),
{% endfor %}
}
ALL_GRAPH_ROOTS = frozenset(root for roots in GRAPH_ROOTS.values() for root in roots)
# Every project has the memory and filesystem stores; a shared one (redis or sql), with its
# dependencies, only if it was generated with it (AppDefaults.token_cache_backend).
CACHE_BACKENDS = ("memory", "filesystem", "redis", "sql")
SHARED_BACKENDS = ("redis", "sql")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# API_MAX_RESPONSE_BYTES: what the pages read of an API's answer (JSON for a page is KBs).
DEFAULT_API_MAX_RESPONSE_BYTES = 4 * 1024 * 1024


class SettingsError(Exception):
    """Raised when the environment does not describe a runnable app."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"The app cannot start; fix these settings (see .env.example):\n{lines}")


@dataclass(frozen=True)
class ApiSettings:
    """One downstream web API the app calls: on the signed-in user's behalf (their delegated
    token), or with the app's own token (`app_only`: client credentials)."""

    name: str
    base_url: str
    scopes: tuple[str, ...]
    # What `call(name)` and the /api/<name> page send when the caller gives nothing else: the
    # path under base_url, the method, extra headers and query parameters.
    path: str = ""
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    # The most a call of this API may take (seconds); OUTBOUND_DEADLINE_SECONDS bounds it too:
    # the smaller wins. None: OUTBOUND_DEADLINE_SECONDS alone.
    timeout_seconds: float | None = None
    # The app's own token (one `<resource>/.default` scope), not the user's.
    app_only: bool = False

    @property
    def resource(self) -> str:
        return scope_resource(self.scopes[0])


@dataclass(frozen=True)
class Settings:
    app_name: str
    client_id: str
    # The app's credentials, in the order they are tried (see credentials.py).
    credentials: tuple[CredentialSettings, ...]
    # Exactly one of these is set: an Entra-style authority (tenant URL) or a generic OIDC issuer.
    authority: str | None
    oidc_authority: str | None
    instance_discovery: bool
    redirect_uri: str
    redirect_path: str
    post_logout_redirect_uri: str
    secret_key: str
    token_cache_backend: str
    token_cache_dir: Path
    token_cache_prefix: str
    token_cache_max_entries: int
    # Absolute expiry of a token cache entry (from the sign-in that created it).
    token_cache_ttl_seconds: int
    # Sliding: a session unused this long ends (its store entry as well).
    session_lifetime_seconds: int
    sign_in_timeout_seconds: int
    ca_bundle: Path | None
    trusted_proxy_hops: int
    apis: Mapping[str, ApiSettings]
    sign_in_api: str | None
    log_level: str
    # Multi-tenant apps: the only tenants whose accounts may sign in (empty: any tenant).
    allowed_tenant_ids: frozenset[str] = frozenset()
    # An Azure region for MSAL's regional endpoints, or None: no region (see identity.py).
    azure_region: str | None = None
    # Web sessions: their own bound (memory backend) and a limit per account, so that one
    # account signing in again and again cannot evict other users' sessions.
    session_max_entries: int = 100_000
    sessions_per_account: int = 10
    # The largest request body a page reads (the sign-in answer and the sign-out form are a few
    # KB); a bigger one is refused with 413 before it is read.
    max_request_bytes: int = 1024 * 1024
    # The host names the app answers for (Django checks the Host header against them):
    # ALLOWED_HOSTS, by default the host of REDIRECT_URI.
    allowed_hosts: tuple[str, ...] = ()
    # Every call to the provider or an API completes within this, however slowly it trickles.
    outbound_deadline_seconds: int = 10
    # The most an API's answer may hold (its body, decoded): a larger one is an error page.
    api_max_response_bytes: int = DEFAULT_API_MAX_RESPONSE_BYTES
    # The redis or sql backend's URL (it may hold a password: never logged).
    token_cache_url: str = field(default="", repr=False)
    # Sliding expiry of a token cache entry; by default the session lifetime.
    token_cache_sliding_seconds: int = 8 * 3600
    # Absolute expiry of a session, from its sign-in.
    session_absolute_seconds: int = 7 * 24 * 3600
    # In-process copies of token caches and sessions, checked against the store's version on
    # every use.
    token_cache_l1: bool = True
    # AES-256-GCM keys for entries at rest, newest first (empty: not encrypted).
    encryption_keys: tuple[bytes, ...] = field(default=(), repr=False)
    # Who may do what (core/authorization.py). The app role values the code checks, and the
    # named groups: name -> group object id (GROUP_<NAME>_ID overrides one per environment).
    roles: tuple[str, ...] = ()
    groups: Mapping[str, str] = field(default_factory=dict)
    # Above 200 groups Entra sends no `groups` claim (the "groups overage"): the app asks
    # Microsoft Graph with the user's token ("user", these scopes) or its own ("app").
    groups_overage_token: str = "user"
    groups_overage_scopes: tuple[str, ...] = ("User.Read",)
    # How long an account's groups read from Graph are used before Graph is asked again.
    groups_cache_seconds: int = 3600
    graph_base_url: str = "https://graph.microsoft.com/v1.0/"
    # Microsoft Graph's resource (its root) in the app's cloud: the app's own Graph token asks
    # for `<graph_resource>/.default`.
    graph_resource: str = GRAPH_RESOURCE
    # SaaS apps: `package.module:function(tenant_id) -> bool`, asked at sign-in and on guarded
    # pages (its answers kept for tenant_hook_cache_seconds), besides ALLOWED_TENANT_IDS.
    allowed_tenants_hook: str | None = None
    tenant_hook_cache_seconds: int = 60

    # Azure AD B2C's other user flows (names such as B2C_1_passwordreset), None when the app
    # has no such page: a password reset started from the sign-in page's "Forgot your
    # password?" link, and the /edit-profile page.
    b2c_password_reset_flow: str | None = None
    b2c_profile_edit_flow: str | None = None

    # Strict-Transport-Security on responses served over https (web.py `strict_transport_
    # security`): its max-age (0: not sent) and whether it covers the host's subdomains.
    hsts_seconds: int = 365 * 24 * 3600
    hsts_include_subdomains: bool = False

    @property
    def is_b2c(self) -> bool:
        """An Azure AD B2C authority, told apart as MSAL does (msal/authority.py): a b2clogin
        host, or (a custom domain) `https://host/<tenant>/<user flow>` whose last segment starts
        with `b2c_`. Its tokens carry no `tid` (nor `oid`, unless the user flow's application
        claims include the object id), it has no Microsoft Graph, no `cp1`, and it signs out
        the OpenID Connect way (id_token_hint)."""
        return is_b2c_authority(self.authority)

    @property
    def authority_kind(self) -> str:
        """"entra", "b2c", "external_id" (a ciamlogin.com host) or "oidc" (OIDC_AUTHORITY,
        which an External ID tenant behind its custom URL domain uses as well)."""
        if not self.authority:
            return "oidc"
        if self.is_b2c:
            return "b2c"
        host = (urlsplit(self.authority).hostname or "").lower()
        return "external_id" if host.endswith(CIAM_HOST_SUFFIX) else "entra"

    @property
    def b2c_user_flow(self) -> str:
        """The sign-up and sign-in user flow of a B2C authority: its last segment."""
        return (self.authority or "").rstrip("/").rsplit("/", 1)[-1]

    def user_flow_authority(self, flow: str | None) -> str:
        """The B2C authority of another user flow of the same tenant and domain: each user flow
        is an authority of its own (its own discovery, endpoints and tokens). None: AUTHORITY
        itself."""
        if not flow:
            return self.authority or ""
        base = (self.authority or "").rstrip("/").rsplit("/", 1)[0]
        return f"{base}/{flow}"

    @property
    def secure_cookies(self) -> bool:
        """Cookies carry `Secure` unless the app runs on plain http (allowed on localhost only)."""
        return self.redirect_uri.startswith("https://")

    @property
    def sign_in_scopes(self) -> list[str]:
        """Scopes consented and redeemed at sign-in: those of ONE resource (or none)."""
        return list(self.apis[self.sign_in_api].scopes) if self.sign_in_api else []


@dataclass(frozen=True)
class AppDefaults:
    """What the generated `config.py` bakes in; the environment can override every value."""

    app_name: str
    app_slug: str
    redirect_path: str
    authority: str
    oidc_authority: str
    token_cache_backend: str
    downstream_apis: Mapping[str, Mapping[str, Any]]
    sign_in_api: str
    # The first credential's variables (CLIENT_CREDENTIAL, CLIENT_CERTIFICATE_FILE...) and their
    # defaults: the kind and file paths chosen when the project was generated, never a value.
    credential: Mapping[str, str] = field(
        default_factory=lambda: {"CLIENT_CREDENTIAL": "secret"})
    # Who may do what: {"roles": [...], "groups": {name: object id}, "groups_overage": "user"}.
    authorization: Mapping[str, Any] = field(default_factory=dict)
    # The front-channel logout URL's path (register the app's URL with it at the provider).
    front_channel_logout_path: str = "/logout/frontchannel"
    # Azure AD B2C: the password-reset and profile-edit user flows ("" for none).
    b2c_password_reset_flow: str = ""
    b2c_profile_edit_flow: str = ""


# Azure AD B2C's hosts, as MSAL knows them (msal/authority.py WELL_KNOWN_B2C_HOSTS, which also
# lists ciamlogin.com: External ID, told apart here), and External ID's.
B2C_HOST_SUFFIXES = (".b2clogin.com", ".b2clogin.cn", ".b2clogin.us", ".b2clogin.de")
CIAM_HOST_SUFFIX = ".ciamlogin.com"
# A user flow (B2C_1_...) or custom policy (B2C_1A_...) name.
USER_FLOW_RE = re.compile(r"^B2C_1A?_[A-Za-z0-9_.-]{1,100}$", re.IGNORECASE)


def is_b2c_authority(authority: str | None) -> bool:
    """Whether `authority` is Azure AD B2C's (see `Settings.is_b2c`)."""
    if not authority:
        return False
    parts = urlsplit(authority)
    segments = parts.path.strip("/").split("/")
    return (parts.hostname or "").lower().endswith(B2C_HOST_SUFFIXES) or (
        len(segments) == 2 and segments[1].lower().startswith("b2c_"))


def scope_resource(scope: str, graph: str = GRAPH_RESOURCE) -> str:
    """The resource a scope belongs to: `api://x/Read` -> `api://x`; `User.Read` -> Graph
    (`graph`, its root in the app's cloud)."""
    if "/" in scope:
        return scope.rsplit("/", 1)[0]
    return graph


# The methods an API's default call may use. The /api/<name> page makes that call on every
# visit of a link, so only safe methods (RFC 9110 section 9.2.1): a POST, PUT or PATCH would be
# sent without the body it needs, and any of them, DELETE too, would change data whenever a
# link (or a browser's prefetch) is followed. Code calls them with `call(name, method=...)`.
API_METHODS = ("GET", "HEAD", "OPTIONS")
UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
# Headers the app sets itself (the token, the request's framing) or that only the transport
# may send: an API's `headers` may not set them.
RESERVED_HEADERS = frozenset({"authorization", "proxy-authorization", "host", "content-length",
                              "transfer-encoding", "connection", "upgrade", "te", "trailer",
                              "keep-alive"})
HEADER_NAME_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an RFC 9110 token
# A field value: visible characters, spaces and tabs inside (RFC 9110 section 5.5), no CR/LF.
HEADER_VALUE_RE = re.compile(
    r"^[\x21-\x7e\x80-\xff](?:[\x20-\x7e\x80-\xff\t]*[\x21-\x7e\x80-\xff])?$")
# An Azure region name as MSAL accepts it (msal/region.py): e.g. westus2.
AZURE_REGION_RE = re.compile(r"^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$")
MAX_API_TIMEOUT_SECONDS = 600
# Entra's tenant aliases for "any tenant": no app-only token can come from those.
MULTI_TENANT_ALIASES = ("common", "organizations", "consumers")


def api_path_problem(path: str) -> str | None:
    """What is wrong with an API's default path (relative to its base URL), or None."""
    if any(ord(c) < 33 or ord(c) == 127 or c == "\\" for c in path):
        return "holds a space, a backslash or a control character"
    if path.startswith("/") or "://" in path:
        return "must be relative to base_url (no leading '/', no scheme), e.g. items/today"
    if "?" in path or "#" in path:
        return "must not hold a query or fragment (give query parameters in query)"
    if any(segment in (".", "..") for segment in path.split("/")):
        return "must not hold '.' or '..' segments: it may not leave base_url"
    return None


def api_header_problem(name: str, value: str) -> str | None:
    """What is wrong with one of an API's extra headers, or None."""
    if not HEADER_NAME_RE.match(name):
        return "is not a valid header name (letters, digits and !#$%&'*+.^_`|~-)"
    if name.lower() in RESERVED_HEADERS:
        return ("is set by the app or its HTTP client itself (the token, the request's "
                "framing); remove it")
    if not HEADER_VALUE_RE.match(value):
        return ("has a value that is empty, starts or ends with a space, or holds a line "
                "break or control character")
    return None


def app_only_scope_problem(scopes: tuple[str, ...]) -> str | None:
    """What keeps `scopes` from being an app-only API's, or None: exactly one
    `<resource>/.default` (client credentials ask for every application permission granted
    for one resource)."""
    if len(scopes) == 1 and scopes[0].endswith("/.default") and len(scopes[0]) > 9:
        return None
    return ("an app-only API needs exactly one scope, its resource's '/.default', e.g. "
            "api://<app-id>/.default")


def graph_roots(authority: str | None) -> tuple[str, ...] | None:
    """Microsoft Graph's roots in the cloud of `authority` (an Entra authority URL), the
    default first; () for a cloud whose Graph is not known here, None for no known cloud."""
    host = (urlsplit(authority).hostname or "").lower() if authority else ""
    return GRAPH_ROOTS.get(host)


def graph_short_form(scope: str, graph: str = GRAPH_RESOURCE) -> str:
    """`https://graph.microsoft.com/User.Read` (or Graph's application id form) -> `User.Read`;
    `.default` keeps its resource, which becomes `graph`, the app's Graph.

    Entra answers Graph scopes in short form, and MSAL finds a cached token by comparing the
    scopes asked for with that answer: a full-form Graph scope would never hit the cache. A
    short scope means Graph in the cloud of the authority, so a full-form scope naming any
    cloud's Graph is asked for in the app's cloud: the app runs against the cloud AUTHORITY
    names (a spec's rules already refuse another cloud's Graph).
    """
    lowered = scope.lower()
    for root in (*ALL_GRAPH_ROOTS, graph, GRAPH_APP_ID):
        prefix = root + "/"
        if lowered.startswith(prefix):
            name = scope[len(prefix):]
            if name != ".default":
                return name
            return scope if root == GRAPH_APP_ID else f"{graph}/.default"
    return scope


@dataclass(frozen=True)
class _GraphAt:
    """Where Microsoft Graph is for this app (see `_graph`)."""

    api_base_url: str | None  # the graph API's default (config.py's, in the authority's cloud)
    base_url: str  # the groups overage's
    resource: str


def _graph(reader: _Reader, defaults: AppDefaults, authority: str | None) -> _GraphAt:
    """Microsoft Graph's base URL: GRAPH_BASE_URL (the groups overage's), else
    API_GRAPH_BASE_URL or config.py's graph API, else Graph v1.0 of the authority's cloud.

    config.py's URL follows AUTHORITY: another cloud's Graph there (a project generated for one
    cloud, run in another) becomes this cloud's, same version; another cloud's Graph given in
    the environment is refused. The resource is the base URL's root when it is a Graph root,
    else (a stand-in, a proxy) the cloud's default one, or the root given in a cloud whose
    Graph is not known here.
    """
    roots = graph_roots(authority)
    baked = (defaults.downstream_apis.get("graph") or {}).get("base_url")
    if baked and roots:
        root, _, version = str(baked).rstrip("/").rpartition("/")
        if root.lower() in ALL_GRAPH_ROOTS and root.lower() not in roots:
            baked = f"{roots[0]}/{version}"
    given = reader.raw("GRAPH_BASE_URL")
    api = reader.raw("API_GRAPH_BASE_URL")
    graph = str(given or api or baked or f"{(roots or _GLOBAL_GRAPH)[0]}/v1.0")
    root = graph.rstrip("/").rpartition("/")[0].lower()
    for variable, value in (("GRAPH_BASE_URL", given), ("API_GRAPH_BASE_URL", api)):
        named = (value or "").rstrip("/").rpartition("/")[0].lower()
        if roots and named in ALL_GRAPH_ROOTS and named not in roots:
            # A token of one cloud is refused by another cloud's Graph.
            reader.problems.append(
                f"{variable}={value!r} is Microsoft Graph of another cloud than AUTHORITY's; "
                f"use {' or '.join(r + '/v1.0' for r in roots)} (or /beta).")
    if root in ALL_GRAPH_ROOTS or roots == ():
        resource = root
    else:
        resource = (roots or _GLOBAL_GRAPH)[0]
    return _GraphAt(str(baked) if baked else None, graph, resource)


def _is_local_host(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Reader:
    """Reads variables and collects problems instead of stopping at the first one."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.problems: list[str] = []

    def raw(self, name: str) -> str | None:
        value = self.environ.get(name)
        return value.strip() if value is not None and value.strip() else None

    def secret(self, name: str, *, required: bool) -> str:
        """A secret from NAME, or from the file named by NAME_FILE (e.g. a mounted secret)."""
        value, file_name = self.raw(name), self.raw(f"{name}_FILE")
        if value and file_name:
            self.problems.append(f"{name} and {name}_FILE are both set: keep one.")
            return ""
        if file_name:
            try:
                value = Path(file_name).read_text(encoding="utf-8").strip()
            except OSError as exc:
                self.problems.append(f"{name}_FILE: cannot read {file_name!r} ({exc.strerror}).")
                return ""
            if not value:
                self.problems.append(f"{name}_FILE: {file_name!r} is empty.")
        if not value and required:
            self.problems.append(f"{name} is missing: set {name} or {name}_FILE.")
        return value or ""

    def text(self, name: str, default: str | None = None) -> str:
        value = self.raw(name) or default
        if value is None:
            self.problems.append(f"{name} is missing.")
            return ""
        return value

    def integer(self, name: str, default: int, minimum: int) -> int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            number = minimum - 1
        if number < minimum:
            self.problems.append(f"{name}={value!r} is not a whole number >= {minimum}.")
            return default
        return number

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        if value.lower() in {"1", "true", "yes", "on"}:
            return True
        if value.lower() in {"0", "false", "no", "off"}:
            return False
        self.problems.append(f"{name}={value!r} is not a boolean: use true or false.")
        return default

    def url(self, name: str, value: str, *, path_required: bool = False) -> str:
        """Check an absolute URL; https everywhere except plain http on localhost."""
        parts = urlsplit(value)
        if parts.scheme not in {"https", "http"} or not parts.hostname:
            self.problems.append(f"{name}={value!r} is not an absolute http(s) URL.")
        elif parts.scheme == "http" and not _is_local_host(parts.hostname):
            self.problems.append(f"{name}={value!r} must use https (plain http only on localhost).")
        elif parts.fragment or parts.query:
            self.problems.append(f"{name}={value!r} must not have a query or fragment.")
        elif path_required and parts.path.strip("/") == "":
            self.problems.append(f"{name}={value!r} needs a path, e.g. https://host/tenant.")
        return value


def _authority(reader: _Reader, defaults: AppDefaults) -> tuple[str | None, str | None]:
    entra, oidc = reader.raw("AUTHORITY"), reader.raw("OIDC_AUTHORITY")
    if entra and oidc:
        reader.problems.append("AUTHORITY and OIDC_AUTHORITY are both set: keep one.")
        return None, None
    if not entra and not oidc:
        entra, oidc = defaults.authority or None, defaults.oidc_authority or None
    for name, value in (("AUTHORITY", entra), ("OIDC_AUTHORITY", oidc)):
        if value is None:
            continue
        # External ID's path-less form (https://contoso.ciamlogin.com): MSAL derives the
        # tenant, contoso.onmicrosoft.com, from the host.
        pathless = (name == "AUTHORITY"
                    and (urlsplit(value).hostname or "").lower().endswith(CIAM_HOST_SUFFIX))
        reader.url(name, value, path_required=not pathless)
        if not value.startswith("https://"):
            # MSAL refuses any authority that is not https, localhost included.
            reader.problems.append(f"{name}={value!r} must use https (MSAL refuses http).")
        if name == "OIDC_AUTHORITY" and value.endswith("/"):
            # MSAL appends "/.well-known/openid-configuration"; a trailing slash breaks discovery.
            reader.problems.append(f"OIDC_AUTHORITY={value!r} must not end with '/'.")
    if entra is None and oidc is None:
        reader.problems.append(
            "AUTHORITY (Entra ID) or OIDC_AUTHORITY (other providers) is missing."
        )
    return (entra.rstrip("/") if entra else None), oidc


def _apis(reader: _Reader, defaults: AppDefaults, graph_at: _GraphAt) -> dict[str, ApiSettings]:
    """The downstream APIs; `graph_at`: where Microsoft Graph is in the app's cloud."""
    apis: dict[str, ApiSettings] = {}
    graph = graph_at.resource
    for name, spec in defaults.downstream_apis.items():
        prefix = f"API_{name.upper()}"
        baked = graph_at.api_base_url if name == "graph" else None
        base_url = reader.text(f"{prefix}_BASE_URL", str(baked or spec["base_url"]))
        reader.url(f"{prefix}_BASE_URL", base_url)
        raw_scopes = reader.raw(f"{prefix}_SCOPES")
        scopes = tuple(graph_short_form(s, graph) for s in (raw_scopes.split() if raw_scopes
                                                            else spec["scopes"]))
        if not scopes:
            reader.problems.append(f"{prefix}_SCOPES is empty: give at least one scope.")
            continue
        reserved = [s for s in scopes if s.lower() in RESERVED_SCOPES]
        if reserved:
            reader.problems.append(
                f"{prefix}_SCOPES: {' '.join(reserved)} are added by MSAL itself; remove them."
            )
        if len({scope_resource(s, graph) for s in scopes}) > 1:
            reader.problems.append(
                f"{prefix}_SCOPES={' '.join(scopes)!r} spans several resources; "
                "one token serves one resource, so split them into separate APIs."
            )
        elif len(scopes) > 1 and any(s.rsplit("/", 1)[-1] == ".default" for s in scopes):
            # Entra refuses a request mixing them (AADSTS70011): ".default" already means
            # "every permission the app registration lists for this resource".
            reader.problems.append(
                f"{prefix}_SCOPES={' '.join(scopes)!r} mixes .default with named scopes of the "
                "same resource; keep either .default alone or only the named scopes."
            )
        app_only = reader.boolean(f"{prefix}_APP_ONLY", bool(spec.get("app_only", False)))
        if app_only:
            problem = app_only_scope_problem(scopes)
            if problem:
                reader.problems.append(f"{prefix}_SCOPES={' '.join(scopes)!r}: {problem}.")
            if name == "graph":
                reader.problems.append(
                    f"{prefix}_APP_ONLY: the graph API is the signed-in user's (/profile reads "
                    "/me, which Graph answers for a delegated token only); call Graph with the "
                    "app's own token as another API, e.g. API_GRAPH_APP with "
                    "https://graph.microsoft.com/.default.")
        apis[name] = ApiSettings(
            name=name, base_url=base_url.rstrip("/") + "/", scopes=scopes,
            path=_api_path(reader, prefix, spec), method=_api_method(reader, prefix, spec),
            headers=_api_mapping(reader, f"{prefix}_HEADERS", spec.get("headers"), header=True),
            query=_api_mapping(reader, f"{prefix}_QUERY", spec.get("query"), header=False),
            timeout_seconds=_api_timeout(reader, prefix, spec), app_only=app_only)
    return apis


def _api_path(reader: _Reader, prefix: str, spec: Mapping[str, Any]) -> str:
    path = reader.raw(f"{prefix}_PATH") or str(spec.get("path") or "")
    problem = api_path_problem(path)
    if problem:
        reader.problems.append(f"{prefix}_PATH={path!r} {problem}.")
        return ""
    return path


def _api_method(reader: _Reader, prefix: str, spec: Mapping[str, Any]) -> str:
    method = (reader.raw(f"{prefix}_METHOD") or str(spec.get("method") or "GET")).upper()
    if method in UNSAFE_METHODS:
        reader.problems.append(
            f"{prefix}_METHOD={method!r}: the /api/<name> page makes the API's default call on "
            "every visit of a link, without a body; use GET (or HEAD, OPTIONS) and call "
            f"{method} from your own code with call(name, method={method!r}).")
    elif method not in API_METHODS:
        reader.problems.append(f"{prefix}_METHOD={method!r} is not one of "
                               f"{', '.join(API_METHODS)}.")
    else:
        return method
    return "GET"


def _api_mapping(reader: _Reader, variable: str, baked: Any, *, header: bool
                 ) -> dict[str, str]:
    """An API's extra headers or query parameters: a JSON object of strings in `variable`,
    else config.py's."""
    raw = reader.raw(variable)
    try:
        value = json.loads(raw) if raw else (baked or {})
    except ValueError:
        value = None
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        example = '"X-Tenant": "contoso"' if header else '"api-version": "1"'
        reader.problems.append(f"{variable} must be a JSON object of strings, e.g. "
                               "{" + example + "}.")
        return {}
    if header:
        seen: set[str] = set()
        for name, text in value.items():
            problem = api_header_problem(name, text)
            if problem is None and name.lower() in seen:
                problem = "is given twice (header names ignore case)"
            seen.add(name.lower())
            if problem:
                reader.problems.append(f"{variable}: {name!r} {problem}.")
                return {}
    elif any(not name for name in value):
        reader.problems.append(f"{variable}: a query parameter needs a name.")
        return {}
    return dict(value)


def _api_timeout(reader: _Reader, prefix: str, spec: Mapping[str, Any]) -> float | None:
    raw = reader.raw(f"{prefix}_TIMEOUT")
    value: Any = raw if raw is not None else spec.get("timeout")
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if not 0 < seconds <= MAX_API_TIMEOUT_SECONDS:  # NaN included
        reader.problems.append(f"{prefix}_TIMEOUT={value!r} is not a number of seconds above 0 "
                               f"and at most {MAX_API_TIMEOUT_SECONDS}.")
        return None
    return seconds


# A credential's variables, without the prefix (CLIENT_ for the first, CLIENT_<n>_ after it), in
# groups: a default baked in config.py applies only when the environment sets none of its group.
_CREDENTIAL_GROUPS = (
    ("SECRET", "SECRET_FILE"),
    ("CERTIFICATE_FILE", "PRIVATE_KEY_FILE"),
    ("CERTIFICATE_X5C",),
    ("ASSERTION_FILE", "ASSERTION_MANAGED_IDENTITY", "ASSERTION_CALLABLE"),
    ("ASSERTION_AUDIENCE",),
)
MAX_CREDENTIALS = 9
_NUMBERED_CREDENTIAL = re.compile(r"^CLIENT_([0-9]+)_CREDENTIAL$")


def _credentials(reader: _Reader, defaults: AppDefaults,
                 authority: str | None) -> tuple[CredentialSettings, ...]:
    """CLIENT_CREDENTIAL and its variables, then CLIENT_2_CREDENTIAL... in order."""
    numbers = sorted(int(m.group(1)) for name in reader.environ
                     if (m := _NUMBERED_CREDENTIAL.match(name)) and reader.raw(name))
    expected = list(range(2, 2 + len(numbers)))
    if numbers != expected or len(numbers) >= MAX_CREDENTIALS:
        reader.problems.append(
            f"CLIENT_<n>_CREDENTIAL: found n = {', '.join(map(str, numbers))}; number further "
            f"credentials 2, 3... without gaps (at most {MAX_CREDENTIALS} in all).")
        numbers = [n for n in expected if n in numbers][:MAX_CREDENTIALS - 1]
    found = [_credential(reader, 1, defaults.credential, authority)]
    found += [_credential(reader, n, {}, authority) for n in numbers]
    return tuple(c for c in found if c is not None)


def _credential(reader: _Reader, number: int, baked: Mapping[str, str],
                authority: str | None) -> CredentialSettings | None:
    prefix = "CLIENT_" if number == 1 else f"CLIENT_{number}_"
    values: dict[str, str] = {}
    for group in _CREDENTIAL_GROUPS:
        # The environment's values of a group, else (first credential) the baked defaults.
        names = [prefix + n for n in group]
        # The variable the AKS workload identity webhook sets wins over a path baked in.
        platform = (["AZURE_FEDERATED_TOKEN_FILE"] if number == 1 and "ASSERTION_FILE" in group
                    else [])
        if not any(reader.raw(name) for name in names + platform):
            values.update({name: baked[name] for name in names if baked.get(name)})
    kind = reader.raw(prefix + "CREDENTIAL") or baked.get("CLIENT_CREDENTIAL", "secret")
    if kind not in KINDS:
        reader.problems.append(f"{prefix}CREDENTIAL={kind!r} is not one of {', '.join(KINDS)}.")
        return None
    merged = {**values, **{k: v for k, v in reader.environ.items() if k.startswith(prefix)}}
    sub = _Reader(merged)

    def problem(name: str, text: str) -> None:
        reader.problems.append(f"{prefix}{name}: {text}")

    if kind == "secret":
        before = len(sub.problems)
        secret = sub.secret(prefix + "SECRET", required=True)
        reader.problems += sub.problems[before:]
        secret_file = sub.raw(prefix + "SECRET_FILE")
        return CredentialSettings(
            number=number, kind=kind, variable=prefix + "SECRET",
            secret="" if secret_file else secret,
            secret_file=Path(secret_file) if secret_file else None)
    if kind == "certificate":
        path = sub.raw(prefix + "CERTIFICATE_FILE")
        key_path = sub.raw(prefix + "PRIVATE_KEY_FILE")
        x5c = (sub.raw(prefix + "CERTIFICATE_X5C") or "leaf").lower()
        if x5c not in X5C_MODES:
            problem("CERTIFICATE_X5C", f"{x5c!r} is not one of {', '.join(X5C_MODES)}.")
        password = reader.secret(prefix + "CERTIFICATE_PASSWORD", required=False) or None
        if not path:
            problem("CERTIFICATE_FILE", "missing: the PEM or PKCS#12 (.pfx) file of the "
                    "certificate registered with the app.")
            return None
        try:
            certificate = load_certificate(Path(path),
                                           Path(key_path) if key_path else None, password)
        except CredentialError as exc:
            problem("CERTIFICATE_FILE", f"{exc}.")
            return None
        return CredentialSettings(number=number, kind=kind, variable=prefix + "CERTIFICATE_FILE",
                                  certificate=certificate, certificate_file=Path(path), x5c=x5c,
                                  private_key_file=Path(key_path) if key_path else None,
                                  certificate_password=password)
    sources = {name: sub.raw(prefix + name) for name in
               ("ASSERTION_FILE", "ASSERTION_MANAGED_IDENTITY", "ASSERTION_CALLABLE")}
    if number == 1 and not any(sources.values()):
        # Kubernetes workload identity's webhook sets this for the pod.
        sources["ASSERTION_FILE"] = reader.raw("AZURE_FEDERATED_TOKEN_FILE")
    chosen = [name for name, value in sources.items() if value]
    if not chosen and prefix + "ASSERTION_MANAGED_IDENTITY" in baked:
        # Generated for a managed identity whose client id is known only where it is deployed.
        problem("ASSERTION_MANAGED_IDENTITY", "missing: the client id (a GUID) of the "
                "user-assigned managed identity that the app registration trusts as a federated "
                "credential (az identity show --query clientId).")
        return None
    if len(chosen) != 1:
        reader.problems.append(
            f"{prefix}CREDENTIAL=assertion needs exactly one of {prefix}ASSERTION_FILE (a "
            f"federated token file), {prefix}ASSERTION_MANAGED_IDENTITY (a user-assigned "
            f"identity's client id) or {prefix}ASSERTION_CALLABLE (package.module:function)"
            + (f"; found {', '.join(prefix + n for n in chosen)}." if chosen else "."))
        return None
    (source,) = chosen
    value = str(sources[source])
    audience = sub.raw(prefix + "ASSERTION_AUDIENCE") or token_exchange_audience(authority)
    if source == "ASSERTION_FILE":
        if not Path(value).is_file():
            problem(source, f"{value!r} is not a readable file.")
        return CredentialSettings(number=number, kind=kind, variable=prefix + source,
                                  assertion_file=Path(value))
    if source == "ASSERTION_MANAGED_IDENTITY":
        identity = value.lower()
        if identity != "system" and not _GUID.match(identity):
            problem(source, f"{value!r} is not the client id (a GUID) of a user-assigned "
                    "managed identity (or 'system', the system-assigned one).")
        if not authority:
            problem(source, "managed identities are Entra ID identities: use AUTHORITY, or "
                    "another credential for an OpenID Connect provider.")
        return CredentialSettings(number=number, kind=kind, variable=prefix + source,
                                  managed_identity=identity, assertion_audience=audience)
    try:
        function = check_callable(value)
    except CredentialError as exc:
        problem(source, f"{exc}.")
        return None
    if not accepts_no_arguments(function):
        problem(source, f"{value} must be callable without arguments (it returns the signed "
                "assertion, a JWT).")
    return CredentialSettings(number=number, kind=kind, variable=prefix + source,
                              assertion_callable=value)


_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
def _accepts_one_argument(function: Any) -> bool:
    try:
        inspect.signature(function).bind("tenant id")
    except TypeError:
        return False
    except ValueError:  # no signature to inspect (some builtins): let the call tell
        return True
    return True


OVERAGE_TOKENS = ("user", "app")


def _authorization(reader: _Reader, defaults: AppDefaults, graph_at: _GraphAt,
                   authority: str | None) -> dict[str, Any]:
    """The Settings fields of core/authorization.py, from config.py and the environment;
    `graph_at`: Microsoft Graph's base URL and resource (`_graph`)."""
    spec = defaults.authorization or {}
    roles = tuple(str(role) for role in spec.get("roles", ()))
    groups: dict[str, str] = {}
    for name, default in dict(spec.get("groups", {})).items():
        variable = f"GROUP_{str(name).upper()}_ID"
        value = reader.text(variable, str(default)).lower()
        if not _GUID.match(value):
            reader.problems.append(f"{variable}={value!r} is not a group object id (a GUID, as "
                                   "the Entra admin center shows it).")
        groups[str(name)] = value
    token = reader.text("GROUPS_OVERAGE_TOKEN", str(spec.get("groups_overage") or "user"))
    if token not in OVERAGE_TOKENS:
        reader.problems.append(f"GROUPS_OVERAGE_TOKEN={token!r} is not one of user, app.")
    graph, resource = graph_at.base_url, graph_at.resource
    reader.url("GRAPH_BASE_URL", graph)
    raw_scopes = reader.raw("GROUPS_OVERAGE_SCOPES")
    scopes = tuple(graph_short_form(s, resource)
                   for s in (raw_scopes.split() if raw_scopes else ("User.Read",)))
    if any(scope_resource(s, resource) != resource for s in scopes):
        reader.problems.append(f"GROUPS_OVERAGE_SCOPES={' '.join(scopes)!r} must be Microsoft "
                               "Graph permissions, e.g. User.Read or GroupMember.Read.All.")
    hook = reader.raw("ALLOWED_TENANTS_HOOK")
    if hook:
        try:
            function = check_callable(hook)
        except CredentialError as exc:
            reader.problems.append(f"ALLOWED_TENANTS_HOOK: {exc}.")
        else:
            if not _accepts_one_argument(function):
                reader.problems.append(f"ALLOWED_TENANTS_HOOK={hook}: the function takes the "
                                       "tenant id (one argument) and returns True or False.")
    # Groups are Entra's (object ids in its `groups` claim): with another provider a page
    # guarded by a group denies everyone, as no token names one.
    if hook and not authority:
        reader.problems.append(
            "ALLOWED_TENANTS_HOOK applies to Entra authorities only (tenant ids come from "
            "Entra's tid claim); use AUTHORITY instead of OIDC_AUTHORITY, or remove it.")
    return {
        "roles": roles,
        "groups": groups,
        "groups_overage_token": token,
        "groups_overage_scopes": scopes,
        "groups_cache_seconds": reader.integer("GROUPS_CACHE_SECONDS", 3600, 0),
        "graph_base_url": graph.rstrip("/") + "/",
        "graph_resource": resource,
        "allowed_tenants_hook": hook,
        "tenant_hook_cache_seconds": reader.integer("TENANT_HOOK_CACHE_SECONDS", 60, 0),
    }


def _tenant_ids(reader: _Reader) -> frozenset[str]:
    raw = reader.raw("ALLOWED_TENANT_IDS")
    ids = frozenset(part.strip().lower() for part in re.split(r"[\s,]+", raw or "") if part)
    bad = sorted(i for i in ids if not _GUID.match(i))
    if bad:
        reader.problems.append(
            f"ALLOWED_TENANT_IDS: {', '.join(bad)} are not tenant ids (GUIDs such as "
            "72f988bf-86f1-41af-91ab-2d7cd011db47), separated by commas or spaces."
        )
    return ids


# gunicorn's "app failed to load" exit status: the master stops instead of re-spawning workers.
EXIT_BAD_SETTINGS = 4


# Where a shared store is when its URL is not set: a local server (compose.yaml starts one), or
# a SQLite file beside the filesystem backend's directory.
DEFAULT_STORE_URLS = {"redis": "redis://localhost:6379/0",
                      "sql": "sqlite:///instance/token_cache.sqlite3"}
STORE_URL_SCHEMES = {"redis": ("redis", "rediss", "unix"),
                     "sql": ("sqlite", "postgresql", "postgresql+psycopg", "mysql",
                             "mysql+pymysql", "mariadb", "mariadb+pymysql")}


def _store_url(reader: _Reader, backend: str) -> str:
    """TOKEN_CACHE_REDIS_URL or TOKEN_CACHE_SQL_URL (or its _FILE, as it may hold a password)
    for a shared backend; "" otherwise."""
    if backend not in SHARED_BACKENDS:
        return ""
    name = f"TOKEN_CACHE_{backend.upper()}_URL"
    url = reader.secret(name, required=False) or DEFAULT_STORE_URLS[backend]
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in STORE_URL_SCHEMES[backend]:
        # Never the URL itself in the message: it may hold a password.
        reader.problems.append(
            f"{name} must start with one of "
            f"{', '.join(s + '://' for s in STORE_URL_SCHEMES[backend])}"
            + (" (SQLAlchemy URLs: postgresql+psycopg://, mysql+pymysql://, sqlite:///)."
               if backend == "sql" else "."))
    return url


# A host name or address as Django's ALLOWED_HOSTS takes it: a name (".example.com" for it and
# its subdomains), an IPv4 address or a bracketed IPv6 one, "*"; an optional port.
_HOST = re.compile(r"(\*|\.?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.?|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?")


def _allowed_hosts(reader: _Reader, redirect_uri: str) -> tuple[str, ...]:
    listed = [host.strip() for host in (reader.raw("ALLOWED_HOSTS") or "").split(",")]
    hosts = tuple(host for host in listed if host)
    for host in hosts:
        if not _HOST.fullmatch(host):
            reader.problems.append(
                f"ALLOWED_HOSTS: {host!r} is not a host name (no scheme or path: "
                "portal.contoso.com, .contoso.com for its subdomains, 10.0.0.5).")
    if hosts:
        return hosts
    redirect_host = urlsplit(redirect_uri).hostname if redirect_uri else None
    return (redirect_host,) if redirect_host else ()


def _encryption_keys(reader: _Reader) -> tuple[bytes, ...]:
    text = reader.secret("TOKEN_CACHE_ENCRYPTION_KEYS", required=False)
    if not text:
        return ()
    try:
        return tuple(parse_keys(text))
    except ValueError as exc:
        reader.problems.append(
            f"TOKEN_CACHE_ENCRYPTION_KEYS: {exc}; a new key: `python -c 'import base64, os; "
            "print(base64.urlsafe_b64encode(os.urandom(32)).decode())'` (newest first, "
            "comma-separated).")
        return ()


def _b2c_flow(reader: _Reader, name: str, baked: str, authority: str | None) -> str | None:
    """A B2C user flow (B2C_PASSWORD_RESET_FLOW, B2C_PROFILE_EDIT_FLOW; set but empty: none),
    else config.py's, which applies to a B2C AUTHORITY only (a project generated for B2C run
    against another authority has no such page); a variable set for another authority is a
    mistake (`_b2c_settings`)."""
    if name in reader.environ:
        return reader.raw(name)
    return (baked if is_b2c_authority(authority) else "") or None


def _b2c_settings(reader: _Reader, settings: Settings) -> None:
    """The B2C user flows: names of user flows, only with a B2C authority; and what has no
    meaning there (tenant allow-lists: B2C tokens carry no `tid`)."""
    for name, flow in (("B2C_PASSWORD_RESET_FLOW", settings.b2c_password_reset_flow),
                       ("B2C_PROFILE_EDIT_FLOW", settings.b2c_profile_edit_flow)):
        if not flow:
            continue
        if not settings.is_b2c:
            reader.problems.append(
                f"{name}={flow!r} applies to Azure AD B2C authorities only "
                "(https://<tenant>.b2clogin.com/<tenant>.onmicrosoft.com/<user flow>); remove it.")
        elif not USER_FLOW_RE.match(flow):
            reader.problems.append(
                f"{name}={flow!r} is not a user flow name: B2C_1_<name> (B2C_1A_<name> for a "
                "custom policy), as the portal lists it.")
        elif flow.lower() == settings.b2c_user_flow.lower():
            reader.problems.append(
                f"{name}={flow!r} is AUTHORITY's sign-up and sign-in user flow; give the "
                "user flow of its own.")
    if settings.is_b2c and (settings.allowed_tenant_ids or settings.allowed_tenants_hook):
        reader.problems.append(
            "ALLOWED_TENANT_IDS and ALLOWED_TENANTS_HOOK do not apply to Azure AD B2C (one "
            "tenant, whose tokens carry no tid); remove them.")


def load_settings_or_exit(environ: Mapping[str, str], defaults: AppDefaults) -> Settings:
    """`load_settings` for a process start-up: a deployment mistake prints its message (naming
    every variable to fix) and exits, without a traceback that would bury it."""
    try:
        return load_settings(environ, defaults)
    except SettingsError as exc:
        print(exc, file=sys.stderr, flush=True)
        raise SystemExit(EXIT_BAD_SETTINGS) from None


def load_settings(environ: Mapping[str, str], defaults: AppDefaults) -> Settings:
    """Build Settings from the environment, or raise SettingsError listing every problem."""
    reader = _Reader(environ)
    authority, oidc_authority = _authority(reader, defaults)
    redirect_uri = reader.text("REDIRECT_URI")
    if redirect_uri:
        reader.url("REDIRECT_URI", redirect_uri)
        if urlsplit(redirect_uri).path != defaults.redirect_path:
            reader.problems.append(
                f"REDIRECT_URI={redirect_uri!r} must end with the path {defaults.redirect_path} "
                "that the app serves (and that the app registration lists)."
            )
    site_root = redirect_uri[: len(redirect_uri) - len(defaults.redirect_path)] + "/"
    post_logout = reader.raw("POST_LOGOUT_REDIRECT_URI") or site_root
    if redirect_uri:
        reader.url("POST_LOGOUT_REDIRECT_URI", post_logout)

    secret_key = reader.secret("SECRET_KEY", required=True)
    if secret_key and len(secret_key) < 32:
        reader.problems.append(
            "SECRET_KEY is shorter than 32 characters: generate one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`."
        )
    backend = reader.text("TOKEN_CACHE_BACKEND", defaults.token_cache_backend)
    available = [b for b in CACHE_BACKENDS
                 if b not in SHARED_BACKENDS or b == defaults.token_cache_backend]
    if backend not in available:
        reader.problems.append(
            f"TOKEN_CACHE_BACKEND={backend!r} is not one of {', '.join(available)}"
            + (" (a redis or sql backend is chosen when the project is generated, with its "
               "dependencies)." if backend in SHARED_BACKENDS else ".")
        )
    store_url = _store_url(reader, backend)
    session_lifetime = reader.integer("SESSION_LIFETIME_SECONDS", 8 * 3600, 60)
    session_absolute = reader.integer("SESSION_ABSOLUTE_SECONDS", 7 * 24 * 3600, 60)
    cache_absolute = reader.integer("TOKEN_CACHE_TTL_SECONDS", 14 * 24 * 3600, 60)
    cache_sliding = reader.integer("TOKEN_CACHE_SLIDING_SECONDS", session_lifetime, 60)
    for sliding, absolute, names in (
            (session_lifetime, session_absolute,
             ("SESSION_LIFETIME_SECONDS", "SESSION_ABSOLUTE_SECONDS")),
            (cache_sliding, cache_absolute,
             ("TOKEN_CACHE_SLIDING_SECONDS", "TOKEN_CACHE_TTL_SECONDS"))):
        if sliding > absolute:
            reader.problems.append(
                f"{names[0]}={sliding} is longer than its absolute limit {names[1]}={absolute}: "
                "shorten it or raise the limit.")
    ca_bundle = reader.raw("CA_BUNDLE")
    if ca_bundle and not Path(ca_bundle).is_file():
        reader.problems.append(f"CA_BUNDLE={ca_bundle!r} is not a readable PEM file.")

    log_level = reader.text("LOG_LEVEL", "INFO").upper()
    if log_level not in LOG_LEVELS:
        reader.problems.append(f"LOG_LEVEL={log_level!r} is not one of {', '.join(LOG_LEVELS)}.")
    graph_at = _graph(reader, defaults, authority)
    apis = _apis(reader, defaults, graph_at)
    sign_in_api = reader.raw("SIGN_IN_API") or defaults.sign_in_api or None
    if sign_in_api and sign_in_api not in apis:
        reader.problems.append(
            f"SIGN_IN_API={sign_in_api!r} is not a configured API ({', '.join(apis) or 'none'})."
        )
    elif sign_in_api and apis[sign_in_api].app_only:
        reader.problems.append(
            f"SIGN_IN_API={sign_in_api!r} is an app-only API (API_{sign_in_api.upper()}_APP_ONLY): "
            "its token is the app's own, never the user's; sign in with another API's scopes, or "
            "none.")
    tenant = (authority or "").rstrip("/").rsplit("/", 1)[-1].lower()
    for name, api in apis.items():
        if api.app_only and tenant in MULTI_TENANT_ALIASES:
            # Client credentials name the tenant whose token the app gets: Entra refuses them
            # at common and organizations (and the app's own tokens come from its home tenant).
            reader.problems.append(
                f"API_{name.upper()}_APP_ONLY: an app-only API's token comes from one tenant, "
                f"and AUTHORITY ends with /{tenant}; use the tenant id or domain of the app's "
                "home tenant, or call this API on the user's behalf.")
    azure_region = reader.raw("AZURE_REGION")
    if azure_region and not AZURE_REGION_RE.match(azure_region):
        reader.problems.append(f"AZURE_REGION={azure_region!r} is not an Azure region name "
                               "(lower-case letters, digits and '-'), e.g. westus2.")
    elif azure_region and (not authority or is_b2c_authority(authority)
                           or CIAM_HOST_SUFFIX in authority):
        reader.problems.append(
            "AZURE_REGION applies to Microsoft Entra ID's token service only (AUTHORITY on "
            "login.microsoftonline.com or a national cloud's host); remove it.")
    settings = Settings(
        app_name=defaults.app_name,
        client_id=reader.text("CLIENT_ID"),
        credentials=_credentials(reader, defaults, authority),
        authority=authority,
        oidc_authority=oidc_authority,
        instance_discovery=reader.boolean("INSTANCE_DISCOVERY", True),
        redirect_uri=redirect_uri,
        redirect_path=defaults.redirect_path,
        post_logout_redirect_uri=post_logout,
        secret_key=secret_key,
        token_cache_backend=backend,
        token_cache_dir=Path(reader.text("TOKEN_CACHE_DIR", "instance/token_cache")),
        token_cache_prefix=reader.text("TOKEN_CACHE_PREFIX", defaults.app_slug),
        token_cache_max_entries=reader.integer("TOKEN_CACHE_MAX_ENTRIES", 10_000, 1),
        token_cache_ttl_seconds=cache_absolute,
        session_lifetime_seconds=session_lifetime,
        sign_in_timeout_seconds=reader.integer("SIGN_IN_TIMEOUT_SECONDS", 600, 30),
        ca_bundle=Path(ca_bundle) if ca_bundle else None,
        trusted_proxy_hops=reader.integer("TRUSTED_PROXY_HOPS", 0, 0),
        apis=apis,
        sign_in_api=sign_in_api if sign_in_api in apis else None,
        log_level=log_level,
        allowed_tenant_ids=_tenant_ids(reader),
        azure_region=azure_region,
        session_max_entries=reader.integer("SESSION_MAX_ENTRIES", 100_000, 100),
        sessions_per_account=reader.integer("SESSIONS_PER_ACCOUNT", 10, 1),
        max_request_bytes=reader.integer("MAX_REQUEST_BYTES", 1024 * 1024, 16 * 1024),
        allowed_hosts=_allowed_hosts(reader, redirect_uri),
        outbound_deadline_seconds=reader.integer("OUTBOUND_DEADLINE_SECONDS", 10, 1),
        api_max_response_bytes=reader.integer("API_MAX_RESPONSE_BYTES",
                                              DEFAULT_API_MAX_RESPONSE_BYTES, 1024),
        token_cache_url=store_url,
        token_cache_sliding_seconds=cache_sliding,
        session_absolute_seconds=session_absolute,
        token_cache_l1=reader.boolean("TOKEN_CACHE_L1", True),
        encryption_keys=_encryption_keys(reader),
        b2c_password_reset_flow=_b2c_flow(reader, "B2C_PASSWORD_RESET_FLOW",
                                          defaults.b2c_password_reset_flow, authority),
        b2c_profile_edit_flow=_b2c_flow(reader, "B2C_PROFILE_EDIT_FLOW",
                                        defaults.b2c_profile_edit_flow, authority),
        **_authorization(reader, defaults, graph_at, authority),
        hsts_seconds=reader.integer("HSTS_SECONDS", 365 * 24 * 3600, 0),
        hsts_include_subdomains=reader.boolean("HSTS_INCLUDE_SUBDOMAINS", False),
    )
    _b2c_settings(reader, settings)
    if settings.allowed_tenant_ids and not settings.authority:
        reader.problems.append(
            "ALLOWED_TENANT_IDS applies to Entra authorities only (tenant ids come from Entra's "
            "tid claim); remove it, or use AUTHORITY instead of OIDC_AUTHORITY."
        )
    if settings.client_id and re.search(r"\s", settings.client_id):
        reader.problems.append("CLIENT_ID must not contain spaces.")
    if reader.problems:
        raise SettingsError(reader.problems)
    return settings
