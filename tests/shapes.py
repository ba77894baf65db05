"""Spec shapes to bake: a pairwise covering array over the spec's options, and a hypothesis
strategy over the whole schema for the long run (``--spec-shapes=N``).

A "shape" is a valid spec. The fixed set covers every PAIR of option values (any two options,
any values both can take together) in as few specs as can do it (found once by a search and
kept: COVERING_ROWS): every bake costs about half a minute, and most bugs need at most two
options to show. Details that are not options of their own (API names, URLs, tenant forms,
project names, role values, group names) rotate through the rows, so unusual but valid values
are baked too.
"""

from __future__ import annotations

import functools
import itertools
import keyword
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from generator import pairwise
from generator import spec as gspec

R = gspec.rules()
EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.yaml"))

# option -> its values. The order of values is the order rows are searched in.
FACTORS: dict[str, tuple[str, ...]] = {
    "apis": ("0", "1", "2", "3"),  # number of custom (non-Graph) APIs
    "graph": ("yes", "no"),
    "sign_in": ("graph", "custom", "none"),
    # An Entra tenant (a sovereign cloud's instance rotates in), multi-tenant Entra
    # (`organizations` and `common` take turns: the app treats them alike), another OpenID
    # Connect provider, Azure AD B2C and Microsoft Entra External ID.
    "authority": ("tenant", "multi", "oidc", "b2c", "external_id"),
    "cache": R.CACHE_BACKENDS,
    "redirect": ("default", "unusual"),
    "framework": R.FRAMEWORKS,
    # The credential kind; an assertion by its source.
    "credential": ("secret", "certificate", *R.ASSERTION_SOURCES),
    # The authorization section: none, app roles, named Entra groups, or both.
    "authorization": ("none", "roles", "groups", "both"),
}

Row = pairwise.Row  # one value per factor, in FACTORS order
Pair = pairwise.Pair  # ((factor, value), (factor, value))


def row_is_valid(row: Row) -> bool:
    """The hook's rules, as far as the factors see them: sign_in_api must be a configured API,
    a managed identity's assertion and groups are for Entra ID only, and Azure AD B2C has no
    Microsoft Graph."""
    values = dict(zip(FACTORS, row, strict=True))
    if values["sign_in"] == "graph" and values["graph"] == "no":
        return False
    if values["credential"] == "managed_identity" and values["authority"] in ("oidc", "b2c"):
        return False
    if values["authorization"] in ("groups", "both") and values["authority"] in ("oidc", "b2c"):
        return False
    if values["graph"] == "yes" and values["authority"] == "b2c":
        return False
    return not (values["sign_in"] == "custom" and values["apis"] == "0")


def all_valid_rows() -> list[Row]:
    return pairwise.all_valid_rows(FACTORS, row_is_valid)


def pairs_of(row: Row) -> set[Pair]:
    return pairwise.pairs_of(FACTORS, row)


@functools.cache
def valid_pairs() -> set[Pair]:
    """Every pair of values that at least one valid row holds."""
    return pairwise.valid_pairs(FACTORS, row_is_valid)


def row_of_spec(spec: dict[str, Any]) -> Row | None:
    """The factor values of a valid spec (None if one of them is not a factor value)."""
    apis = spec["downstream_apis"]
    custom = [name for name in apis if name != R.GRAPH]
    sign_in = spec.get("sign_in_api", R.GRAPH if R.GRAPH in apis else "")
    authority = spec["authority"]
    tenant = authority.get("tenant", R.DEFAULT_TENANT)
    kind = (authority["kind"] if authority["kind"] in ("oidc", "b2c", "external_id") else
            "multi" if tenant in MULTI_TENANTS else
            None if tenant == "consumers" else "tenant")
    redirect = spec.get("redirect_path", R.DEFAULT_REDIRECT_PATH)
    credential = spec["credential"]
    authorization = spec.get("authorization") or {}
    roles, groups = bool(authorization.get("roles")), bool(authorization.get("groups"))
    row = (str(len(custom)), "yes" if R.GRAPH in apis else "no",
           "graph" if sign_in == R.GRAPH else "custom" if sign_in else "none", kind,
           spec["cache"]["backend"],
           "default" if redirect == R.DEFAULT_REDIRECT_PATH else "unusual", spec["framework"],
           credential["source"] if credential["kind"] == "assertion" else credential["kind"],
           "both" if roles and groups else "roles" if roles else "groups" if groups else "none")
    if any(value not in values for value, values in zip(row, FACTORS.values(), strict=True)):
        return None
    return tuple(str(value) for value in row)


def example_rows() -> list[Row]:
    """The rows of examples/*.yaml: they are baked anyway, so they count toward the covering."""
    rows = []
    for path in EXAMPLES:
        row = row_of_spec(gspec.load_spec(path))
        if row is not None:
            rows.append(row)
    return rows


# The covering rows: found once by `search` (`python tests/shapes.py` prints a new set) and kept
# here, so that collecting the bakes costs nothing and the shape ids never move. They need the
# lower bound of rows plus one (`lower_bound`: 20, as the examples cover 3 of the 23
# (authority, credential) pairs the rules allow, each row holding one; 21 rows a randomized
# search finds in a second, 20 not in minutes): too slow for every test worker to repeat.
# tests/test_shapes.py checks that they, with the examples, cover every valid pair.
COVERING_ROWS: tuple[Row, ...] = (
    ('1', 'yes', 'custom', 'external_id', 'sql', 'unusual', 'flask', 'callable', 'roles'),
    ('3', 'no', 'none', 'oidc', 'memory', 'unusual', 'flask', 'certificate', 'roles'),
    ('1', 'yes', 'custom', 'tenant', 'sql', 'unusual', 'fastapi', 'secret', 'groups'),
    ('3', 'yes', 'none', 'external_id', 'filesystem', 'default', 'flask', 'secret', 'none'),
    ('0', 'yes', 'graph', 'external_id', 'memory', 'default', 'flask',
     'managed_identity', 'groups'),
    ('2', 'no', 'none', 'b2c', 'redis', 'unusual', 'flask', 'callable', 'none'),
    ('3', 'no', 'none', 'tenant', 'memory', 'unusual', 'django', 'callable', 'both'),
    ('3', 'yes', 'graph', 'multi', 'sql', 'unusual', 'fastapi', 'managed_identity', 'none'),
    ('1', 'no', 'none', 'multi', 'redis', 'unusual', 'django', 'managed_identity', 'both'),
    ('2', 'no', 'custom', 'multi', 'memory', 'unusual', 'flask', 'token_file', 'roles'),
    ('2', 'yes', 'custom', 'tenant', 'filesystem', 'default', 'flask',
     'managed_identity', 'roles'),
    ('3', 'no', 'custom', 'b2c', 'memory', 'unusual', 'fastapi', 'token_file', 'none'),
    ('0', 'yes', 'graph', 'multi', 'redis', 'default', 'fastapi', 'certificate', 'groups'),
    ('2', 'yes', 'custom', 'oidc', 'redis', 'unusual', 'django', 'secret', 'roles'),
    ('1', 'no', 'custom', 'b2c', 'filesystem', 'default', 'flask', 'certificate', 'none'),
    ('2', 'no', 'custom', 'external_id', 'sql', 'default', 'fastapi', 'certificate', 'both'),
    ('3', 'no', 'none', 'external_id', 'redis', 'default', 'django', 'token_file', 'groups'),
    ('2', 'yes', 'graph', 'multi', 'filesystem', 'default', 'fastapi', 'callable', 'groups'),
    ('0', 'yes', 'graph', 'oidc', 'filesystem', 'default', 'fastapi', 'callable', 'roles'),
    ('0', 'no', 'none', 'b2c', 'sql', 'default', 'django', 'secret', 'roles'),
    ('0', 'yes', 'graph', 'tenant', 'filesystem', 'unusual', 'django', 'token_file', 'both'),
)


def uncovered_pairs(already: list[Row]) -> set[Pair]:
    """The valid pairs that none of ``already`` holds."""
    return valid_pairs() - set().union(set(), *(pairs_of(row) for row in already))


lower_bound = pairwise.lower_bound


def search(size: int, uncovered: set[Pair], seed: int, steps: int = 20_000) -> list[Row] | None:
    """``size`` rows that cover ``uncovered``, or None (`generator.pairwise.search`)."""
    return pairwise.search(FACTORS, row_is_valid, size, uncovered, seed, steps)


def covering_rows(already: list[Row], seeds: int = 1000) -> list[Row]:
    """The fewest rows `search` finds (from the lower bound up) that, with ``already``, cover
    every valid pair. Seconds to minutes: run it to make a new COVERING_ROWS."""
    return pairwise.covering_rows(FACTORS, row_is_valid, already, seeds)


# ----------------------------------------------------------------------- rows -> specs
# Valid API names that are easy to get wrong downstream: one letter, digits, a Python keyword,
# the app's own route names, a YAML boolean word, a soft keyword, and plain ones.
API_NAMES: tuple[str, ...] = (
    "tickets", "a", "my_api2", "class", "login", "static", "true", "import", "api", "match",
    "profile", "x_1", "logout", "none", "orders", "lambda",
)
MULTI_TENANTS: tuple[str, ...] = ("organizations", "common")
TENANTS: tuple[str, ...] = ("0b2e6b5c-6d0e-4e8a-9a41-5f3f0c7d2a11", "fabrikam.onmicrosoft.com")
INSTANCES: tuple[str | None, ...] = (None, "https://login.microsoftonline.com/",
                                     "https://login.microsoftonline.us")
# Azure AD B2C: every user flow, the sign-up and sign-in one only, a custom domain with the
# tenant id and custom policies. External ID: the path-less ciamlogin.com form, with the tenant
# id (its path form).
B2C_AUTHORITIES: tuple[dict[str, str], ...] = (
    {"tenant": "contoso.onmicrosoft.com", "sign_up_sign_in": "B2C_1_signupsignin",
     "password_reset": "B2C_1_passwordreset", "profile_edit": "B2C_1_profileedit"},
    {"tenant": "fabrikamb2c", "sign_up_sign_in": "B2C_1_susi"},
    {"tenant": "0b2e6b5c-6d0e-4e8a-9a41-5f3f0c7d2a11", "domain": "login.contoso.com",
     "sign_up_sign_in": "B2C_1A_signup_signin", "profile_edit": "B2C_1A_ProfileEdit"},
)
EXTERNAL_ID_AUTHORITIES: tuple[dict[str, str], ...] = (
    {"tenant": "contoso"},
    {"tenant": "fabrikam.onmicrosoft.com", "tenant_id": "0b2e6b5c-6d0e-4e8a-9a41-5f3f0c7d2a11"},
)
ISSUERS: tuple[str, ...] = ("https://id.example.com/realms/acme",
                            "https://login.example.org/oauth2/default",
                            "https://sso.example.net:8443/auth/realms/a-b_c")
REDIRECTS: tuple[str, ...] = ("/auth/callback", "/signin-oidc", "/.auth/login/aad/callback",
                              "/API", "/callback/", "/x", "/login2")
PROJECT_NAMES: tuple[str, ...] = ("Contoso Portal", "Ünïcode Café", "O'Brien & Sons <Intranet>",
                                  "Tailwind Traders 2", "a b", "Woodgrove \"Bank\" Portal")
GRAPH_SCOPES: tuple[list[str] | None, ...] = (
    ["User.Read"], None, ["User.Read", "Mail.Read", "Calendars.Read"],
    ["https://graph.microsoft.com/.default"], ["https://graph.microsoft.com/User.Read"],
)
# The credential's details, rotating with the row: nothing baked (the app's defaults and the
# environment), and the spec's optional fields (a path with a space, a PKCS#12 file, x5c, a
# user-assigned identity, ...).
CREDENTIAL_DETAILS: dict[str, tuple[dict[str, Any], ...]] = {
    "secret": ({}, {"secret_file": "/run/secrets/portal/client-secret"}),
    "certificate": (
        {"certificate_file": "/run/secrets/app/client.pem",
         "private_key_file": "/run/secrets/app/client.key"},
        {},
        {"certificate_file": "/etc/portal certs/client.pfx", "x5c": "chain"},
        {"x5c": "none"},
    ),
    "token_file": ({}, {"token_file": "/var/run/secrets/azure/tokens/azure-identity-token"}),
    "managed_identity": ({}, {"managed_identity": "6e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b"},
                         {"managed_identity": "system"}),
    "callable": ({"callable": "contoso.credentials:signed_assertion"},
                 {"callable": "portal_assertions:token"}),
}
GUIDS: tuple[str, ...] = ("11111111-2222-3333-4444-555555555555",
                          "6e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b",
                          "AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE")
# The authorization's details, rotating with the row: app role values as Entra allows them (one,
# several, dotted, with ':' and '-', mixed case), group names (one letter, digits, a Python
# keyword, the app's own route names, 40 characters) with object ids (upper case too), and
# both ways of reading the groups of a user with too many to list (the default: user).
ROLES: tuple[list[str], ...] = (
    ["Admin"], ["Task.Write", "Task.Read"], ["Orders:Approve", "sales-emea", "Survey.Create"],
    ["reader_2", "ADMIN.All"],
)
GROUPS: tuple[dict[str, str], ...] = (
    {"finance": "3f0c2b1a-7d4e-4c2b-9a1e-2b3c4d5e6f70"},
    {"a": "0D4C2B1A-7D4E-4C2B-9A1E-2B3C4D5E6F71", "class": "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
     "admins_2": "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"},
    {"profile": "7e6d5c4b-3a29-4180-9f8e-7d6c5b4a3928", "x" * 40: GUIDS[1]},
)
GROUPS_OVERAGE: tuple[str | None, ...] = (None, "app", "user")


def custom_api(name: str, index: int) -> dict[str, Any]:
    """A valid custom API; the URL and scope forms rotate with ``index``."""
    host = name.replace("_", "-")
    guid = GUIDS[index % len(GUIDS)]
    forms: list[dict[str, Any]] = [
        {"base_url": "https://api.contoso.com/", "scopes": [f"api://{guid}/{name}.read"]},
        {"base_url": f"https://{host}.example.com", "scopes": [f"https://{host}.example.com/.default"]},
        {"base_url": f"https://api.fabrikam.example:8443/v2/{name}/",
         "scopes": [f"api://fabrikam.example/{name}/Read", f"api://fabrikam.example/{name}/Write"]},
        {"base_url": "http://127.0.0.1:5099/api", "scopes": [f"{guid}/Items.ReadWrite"]},
    ]
    return forms[index % len(forms)]


def app_only_api(name: str, index: int) -> dict[str, Any]:
    """A valid app-only API (the app's own token), its description's fields rotating."""
    guid = GUIDS[index % len(GUIDS)]
    forms: list[dict[str, Any]] = [
        {"path": "reports/today", "query": {"api-version": "2024-01-01"},
         "headers": {"X-Client-Name": "portal"}, "timeout": 5},
        {"method": "GET", "timeout": 2.5},
        {},
    ]
    return {"base_url": f"https://{name.replace('_', '-')}.example.com/v1/",
            "scopes": [f"api://{guid}/.default"], "app_only": True,
            **forms[index % len(forms)]}


@dataclass(frozen=True)
class Shape:
    id: str
    spec: dict[str, Any]
    about: str  # the factor values, for failure reports


def spec_for_row(row: Row, index: int, unusual: int | None = None) -> dict[str, Any]:
    """The spec of a row; ``index`` picks the rotating details, ``unusual`` the redirect path."""
    values = dict(zip(FACTORS, row, strict=True))
    spec: dict[str, Any] = {
        "project_name": PROJECT_NAMES[index % len(PROJECT_NAMES)],
        "framework": values["framework"],
    }
    if index % 4 == 0:
        spec["project_slug"] = f"portal-{index}"
        spec["package_name"] = "portal_app"
    kind = values["authority"]
    if kind == "oidc":
        spec["authority"] = {"kind": "oidc", "issuer": ISSUERS[index % len(ISSUERS)]}
        if index % 2:
            spec["client_id"] = f"portal-{index}"
    elif kind in ("b2c", "external_id"):
        forms = B2C_AUTHORITIES if kind == "b2c" else EXTERNAL_ID_AUTHORITIES
        spec["authority"] = {"kind": kind, **forms[index % len(forms)]}
        if index % 2:
            spec["client_id"] = GUIDS[index % len(GUIDS)]
    else:
        tenant = (TENANTS[index % len(TENANTS)] if kind == "tenant"
                  else MULTI_TENANTS[index % len(MULTI_TENANTS)])
        authority: dict[str, Any] = {"kind": "entra", "tenant": tenant}
        instance = INSTANCES[index % len(INSTANCES)]
        if instance:
            authority["instance"] = instance
        spec["authority"] = authority
        if index % 2:
            spec["client_id"] = GUIDS[index % len(GUIDS)]
    credential = values["credential"]
    details = CREDENTIAL_DETAILS[credential]
    if credential in R.ASSERTION_SOURCES:
        spec["credential"] = {"kind": "assertion", "source": credential,
                              **details[index % len(details)]}
    else:
        spec["credential"] = {"kind": credential, **details[index % len(details)]}
    spec["cache"] = {"backend": values["cache"]}
    apis: dict[str, Any] = {}
    if values["graph"] == "yes":
        scopes = GRAPH_SCOPES[index % len(GRAPH_SCOPES)]
        if scopes and kind != "oidc":  # full-form Graph scopes name the instance's cloud's Graph
            root = R.graph_roots(spec["authority"].get("instance", R.DEFAULT_INSTANCE))[0]
            scopes = [s.replace(R.GRAPH_RESOURCE, root) for s in scopes]
        apis["graph"] = {"scopes": scopes} if scopes else {}
        if kind in ("tenant", "multi") and index % 2 == 0:
            # Graph through msgraph-sdk: every framework has such a row (2, 10, 12, 20).
            apis["graph"]["sdk"] = True
    count = int(values["apis"])
    names = [API_NAMES[(index * 3 + j) % len(API_NAMES)] for j in range(count)]
    for j, name in enumerate(names):
        apis[name] = custom_api(name, index + j)
    spec["downstream_apis"] = apis
    sign_in = values["sign_in"]
    if sign_in == "graph":
        if index % 2:  # the default when Graph is configured
            spec["sign_in_api"] = "graph"
    elif sign_in == "custom":
        spec["sign_in_api"] = names[index % len(names)]
    else:
        spec["sign_in_api"] = ""
    spare = [name for name in names if name != spec.get("sign_in_api")]
    if spare and kind in ("tenant", "external_id"):  # one tenant issues the app's own token
        apis[spare[-1]] = app_only_api(spare[-1], index)
    if values["redirect"] == "unusual":
        spec["redirect_path"] = REDIRECTS[(index if unusual is None else unusual)
                                          % len(REDIRECTS)]
    elif index % 3 == 0:
        spec["redirect_path"] = R.DEFAULT_REDIRECT_PATH
    authorization: dict[str, Any] = {}
    if values["authorization"] in ("roles", "both"):
        authorization["roles"] = ROLES[index % len(ROLES)]
    if values["authorization"] in ("groups", "both"):
        authorization["groups"] = GROUPS[index % len(GROUPS)]
        overage = GROUPS_OVERAGE[index // len(GROUPS) % len(GROUPS_OVERAGE)]
        if overage:
            authorization["groups_overage"] = overage
    if authorization:
        spec["authorization"] = authorization
    elif index % 3:  # none: no section, an empty one or null (all the same)
        spec["authorization"] = {} if index % 3 == 1 else None
    return spec


@functools.cache
def pairwise_shapes() -> list[Shape]:
    shapes = []
    unusual = itertools.count()  # each unusual redirect path in turn
    for index, row in enumerate(COVERING_ROWS):
        about = " ".join(f"{k}={v}" for k, v in zip(FACTORS, row, strict=True))
        spec = spec_for_row(row, index, next(unusual) if "redirect=unusual" in about else None)
        shapes.append(Shape(f"pairwise-{index:02d}", spec, about))
    return shapes


# ----------------------------------------------------------------- hypothesis strategy
def _valid_with(base: dict[str, Any], **changes: Any) -> bool:
    return R.validate_spec({**base, **changes}) == []


_BASE: dict[str, Any] = {"project_name": "Base", "framework": "flask",
                         "authority": {"kind": "entra"}, "credential": {"kind": "secret"},
                         "cache": {"backend": "memory"}, "downstream_apis": {}}

_words = st.text(string.ascii_letters + string.digits + "-", min_size=1, max_size=8)
project_names = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(string.ascii_uppercase),
    st.text(string.ascii_letters + string.digits + " &'<>\"éü.-", max_size=30),
).filter(lambda name: _valid_with(_BASE, project_name=name))
hosts = st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9](\.[a-z][a-z0-9]{1,8}){1,2}", fullmatch=True)
guids = st.uuids().map(str)
api_names = st.from_regex(R.API_NAME_RE, fullmatch=True).filter(lambda n: n != R.GRAPH)
scope_names = st.from_regex(r"[A-Za-z][A-Za-z0-9_.]{0,15}", fullmatch=True).filter(
    lambda s: s.lower() not in R.RESERVED_SCOPES and s.lower() != ".default")


@st.composite
def base_urls(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        return f"http://{draw(st.sampled_from(['localhost', '127.0.0.1']))}:" \
               f"{draw(st.integers(1024, 65535))}{draw(st.sampled_from(['', '/', '/api']))}"
    port = draw(st.sampled_from(["", ":443", ":8443"]))
    path = draw(st.sampled_from(["", "/", "/v1", "/api/v2/", "/a_b/c-d"]))
    return f"https://{draw(hosts)}{port}{path}"


@st.composite
def custom_scopes(draw: st.DrawFn) -> list[str]:
    resource = draw(st.one_of(
        guids.map(lambda g: f"api://{g}"), hosts.map(lambda h: f"api://{h}"),
        hosts.map(lambda h: f"https://{h}/app"), guids,
    ))
    if draw(st.booleans()):
        return [f"{resource}/.default"]
    names = draw(st.lists(scope_names, min_size=1, max_size=3,
                          unique_by=lambda s: s.lower()))
    return [f"{resource}/{name}" for name in names]


@st.composite
def authorities(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["entra", "entra", "oidc", "b2c", "external_id"]))
    if kind == "oidc":
        issuer = draw(st.builds(lambda h, p: f"https://{h}/{p}", hosts,
                                st.from_regex(r"[a-z0-9]+(/[a-z0-9._-]+){0,2}", fullmatch=True)))
        return {"kind": "oidc", "issuer": issuer}
    if kind in ("b2c", "external_id"):
        return draw(customer_authorities(kind))
    authority: dict[str, Any] = {"kind": "entra"}
    tenant = draw(st.one_of(st.none(), st.sampled_from(R.TENANT_KEYWORDS), guids,
                            hosts.filter(lambda h: bool(R.DOMAIN_RE.match(h)))))
    if tenant is not None:
        authority["tenant"] = tenant
    instance = draw(st.sampled_from([None, "https://login.microsoftonline.com",
                                     "https://login.microsoftonline.us/",
                                     "https://login.partner.microsoftonline.cn"]))
    if instance:
        authority["instance"] = instance
    return authority


tenant_names = st.from_regex(r"[a-z][a-z0-9]{1,12}", fullmatch=True).filter(
    lambda n: n not in R.TENANT_KEYWORDS)
user_flows = st.from_regex(r"B2C_1A?_[A-Za-z0-9_.-]{1,20}", fullmatch=True)


@st.composite
def customer_authorities(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    """Any valid Azure AD B2C or External ID authority (docs/spec.md)."""
    name = draw(tenant_names)
    domain = draw(st.one_of(st.none(), hosts.filter(
        lambda h: bool(R.DOMAIN_RE.match(h)) and not h.endswith((".ciamlogin.com",
                                                                  ".b2clogin.com")))))
    authority: dict[str, Any] = {"kind": kind}
    if kind == "b2c":
        tenant = draw(st.sampled_from([name, f"{name}.onmicrosoft.com"]))
        authority["tenant"] = draw(guids) if domain and draw(st.booleans()) else tenant
        flows = draw(st.lists(user_flows, min_size=3, max_size=3, unique_by=str.lower))
        authority["sign_up_sign_in"] = flows[0]
        for field, flow in (("password_reset", flows[1]), ("profile_edit", flows[2])):
            if draw(st.booleans()):
                authority[field] = flow
    else:
        authority["tenant"] = draw(st.sampled_from([name, f"{name}.onmicrosoft.com"]))
        if domain or draw(st.booleans()):
            authority["tenant_id"] = draw(guids)
    if domain:
        authority["domain"] = domain
    return authority


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    """Any valid spec the schema allows (docs/spec.md), built field by field."""
    spec: dict[str, Any] = {"project_name": draw(project_names),
                            "framework": draw(st.sampled_from(R.FRAMEWORKS))}
    spec["authority"] = draw(authorities())
    if draw(st.booleans()):
        spec["client_id"] = draw(guids if spec["authority"]["kind"] != "oidc"
                                 else st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True))
    spec["credential"] = draw(credentials(spec["authority"]["kind"]))
    spec["cache"] = {"backend": draw(st.sampled_from(R.CACHE_BACKENDS))}
    apis: dict[str, Any] = {}
    if spec["authority"]["kind"] != "b2c" and draw(st.booleans()):  # B2C: no Graph
        graph: dict[str, Any] = {}
        # Microsoft Graph of the instance's cloud (the global one for oidc).
        root = R.graph_roots(spec["authority"].get("instance", R.DEFAULT_INSTANCE))[0]
        base_url = f"{root}/v1.0"
        if draw(st.booleans()):
            graph["base_url"] = draw(st.sampled_from([base_url, base_url + "/",
                                                      root + "/beta"]))
        choice = draw(st.sampled_from(["default", "names", "full", ".default"]))
        if choice == "names":
            # One that can read /me (the generated /profile page does), then any others.
            me = draw(st.sampled_from(["User.Read", "User.ReadBasic.All", "Directory.Read.All"]))
            others = ["Mail.Read", "Calendars.Read", "Files.Read.All"]
            graph["scopes"] = [me, *draw(st.lists(st.sampled_from(others), max_size=2,
                                                  unique=True))]
        elif choice == "full":
            graph["scopes"] = [f"{root}/User.Read"]
        elif choice == ".default":
            graph["scopes"] = [f"{root}/.default"]
        apis["graph"] = graph
    for name in draw(st.lists(api_names, max_size=4, unique=True)):
        apis[name] = {"base_url": draw(base_urls()), "scopes": draw(custom_scopes())}
    spec["downstream_apis"] = apis
    sign_in = draw(st.sampled_from([None, "", *apis]))
    if sign_in is not None:
        spec["sign_in_api"] = sign_in
    if draw(st.booleans()):
        spec["redirect_path"] = draw(
            st.from_regex(r"/[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,12}(/[A-Za-z0-9_~-]{1,8}){0,2}/?",
                          fullmatch=True)
            .filter(lambda p: _valid_with(_BASE, redirect_path=p)))
    if draw(st.booleans()):
        spec["authorization"] = draw(authorizations(spec["authority"]["kind"]))
    return spec


# App role values of every character Entra ID allows (the rules say which: a few drawn strings
# are refused, e.g. one with a Jinja delimiter).
role_values = st.text(sorted(R.ROLE_VALUE_CHARS), min_size=1, max_size=24).filter(
    lambda role: _valid_with(_BASE, authorization={"roles": [role]}))
group_names = st.from_regex(R.GROUP_NAME_RE, fullmatch=True)


@st.composite
def authorizations(draw: st.DrawFn, authority_kind: str) -> dict[str, Any] | None:
    """Any valid `authorization` section for an authority of ``authority_kind`` (groups only
    with Entra ID): none (null, {} or no roles), roles, named groups (ids in either case), or
    both."""
    form = draw(st.sampled_from(["none", "roles", "groups", "both"]))
    if form == "none":
        return draw(st.sampled_from([None, {}, {"roles": []}]))
    section: dict[str, Any] = {}
    groups = authority_kind in ("entra", "external_id")
    if form in ("roles", "both") or not groups:
        section["roles"] = draw(st.lists(role_values, min_size=1, max_size=4,
                                         unique_by=str.lower))
    if form in ("groups", "both") and groups:
        names = draw(st.lists(group_names, min_size=1, max_size=4, unique=True))
        any_case = st.tuples(guids, st.booleans()).map(lambda g: g[0].upper() if g[1] else g[0])
        ids = draw(st.lists(any_case, min_size=len(names), max_size=len(names),
                            unique_by=str.lower))
        section["groups"] = dict(zip(names, ids, strict=True))
        if draw(st.booleans()):
            section["groups_overage"] = draw(st.sampled_from(R.GROUPS_OVERAGE_CHOICES))
    return section


@st.composite
def credentials(draw: st.DrawFn, authority_kind: str) -> dict[str, Any]:
    """Any valid `credential` section for an authority of ``authority_kind``."""
    kind = draw(st.sampled_from(R.CREDENTIAL_KINDS))
    credential: dict[str, Any] = {"kind": kind}
    paths = st.from_regex(r"/[a-z][a-z0-9_-]{0,8}(/[a-z0-9][a-z0-9._ -]{0,10}[a-z0-9]){1,3}",
                          fullmatch=True)
    if kind == "secret" and draw(st.booleans()):
        credential["secret_file"] = draw(paths)
    elif kind == "certificate":
        suffix = draw(st.sampled_from([".pem", ".crt", ".pfx", ".P12"]))
        if draw(st.booleans()):
            credential["certificate_file"] = draw(paths) + suffix
        if suffix in (".pem", ".crt") and draw(st.booleans()):
            credential["private_key_file"] = draw(paths) + ".key"
        if draw(st.booleans()):
            credential["x5c"] = draw(st.sampled_from(R.X5C_CHOICES))
    elif kind == "assertion":
        sources = [s for s in R.ASSERTION_SOURCES
                   if not (s == "managed_identity" and authority_kind in ("oidc", "b2c"))]
        source = credential["source"] = draw(st.sampled_from(sources))
        if source == "token_file" and draw(st.booleans()):
            credential["token_file"] = draw(paths)
        elif source == "managed_identity" and draw(st.booleans()):
            credential["managed_identity"] = draw(st.one_of(st.just("system"), guids))
        elif source == "callable":
            name = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True).filter(
                lambda n: not keyword.iskeyword(n))
            modules = draw(st.lists(name, min_size=1, max_size=3))
            credential["callable"] = ".".join(modules) + ":" + draw(name)
    return credential


def describe(spec: dict[str, Any]) -> str:
    apis = spec["downstream_apis"]
    credential = spec["credential"]
    authorization = spec.get("authorization") or {}
    return (f"framework={spec['framework']} "
            f"authority={spec['authority']['kind']} cache={spec['cache']['backend']} "
            f"credential={credential['kind']}"
            + (f"/{credential.get('source')}" if credential["kind"] == "assertion" else "")
            + " "
            f"apis={','.join(apis) or '-'} sign_in_api={spec.get('sign_in_api', '(default)')!r} "
            f"redirect={spec.get('redirect_path', '(default)')} "
            f"roles={','.join(authorization.get('roles') or []) or '-'} "
            f"groups={','.join(authorization.get('groups') or {}) or '-'}"
            + (f" groups_overage={authorization['groups_overage']}"
               if "groups_overage" in authorization else ""))


if __name__ == "__main__":  # print a new COVERING_ROWS (after changing FACTORS or the examples)
    for found in covering_rows(example_rows()):
        print(f"    {found!r},")
