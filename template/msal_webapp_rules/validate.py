"""Validation: every problem of a spec, one message each, '<field path>: <problem; the fix>'."""

from __future__ import annotations

import ipaddress
import itertools
import keyword
import re
import sys
import unicodedata
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from msal_webapp_rules import authorities
from msal_webapp_rules.report import (
    choices,
    is_secret_key,
    looks_like_secret,
    placeholder,
    safe,
    show,
    show_key,
    strong_secret,
    type_name,
    unknown_key,
)
from msal_webapp_rules.schema import (
    API_KEYS,
    API_METHODS,
    API_NAME_RE,
    APP_ROUTE_PREFIXES,
    APP_ROUTES,
    ASSERTION_SOURCES,
    AUTHORITY_KEYS,
    AUTHORITY_KINDS,
    AUTHORIZATION_KEYS,
    CACHE_BACKENDS,
    CALLABLE_EXAMPLE,
    CALLABLE_RE,
    CREDENTIAL_KEYS,
    CREDENTIAL_KINDS,
    CREDENTIAL_PATH_KEYS,
    CREDENTIAL_VARIABLES,
    DEFAULT_INSTANCE,
    DEFAULT_TENANT,
    DOMAIN_RE,
    ENV_FILE_FIX,
    FRAMEWORKS,
    GRAPH,
    GRAPH_API_KEYS,
    GRAPH_APP_ID,
    GRAPH_ME_SCOPES,
    GRAPH_RESOURCE,
    GRAPH_ROOTS,
    GRAPH_VERSIONS,
    GROUP_ID_EXAMPLE,
    GROUP_NAME_RE,
    GROUPS_OVERAGE_CHOICES,
    HEADER_NAME_RE,
    JINJA_MARKERS,
    MAX_API_TIMEOUT_SECONDS,
    MAX_SPEC_DEPTH,
    MAX_SPEC_NODES,
    PACKAGE_RE,
    PASSWORD_KEY_FIX,
    PASSWORD_KEY_WORDS,
    PATH_EXAMPLES,
    PKCS12_SUFFIXES,
    REDIRECT_RE,
    REQUIRED_TOP_KEYS,
    RESERVED_HEADERS,
    RESERVED_SCOPES,
    ROLE_VALUE_CHARS,
    ROLE_VALUE_MAX,
    ROLE_VALUE_SHOWN,
    SAFE_ID_SHOWN,
    SECRET_KEY_FIX,
    SECRET_SHOWN,
    SHADOWED_IMPORTS,
    SLUG_RE,
    SYSTEM_MANAGED_IDENTITY,
    TENANT_KEYWORDS,
    TOP_KEYS,
    UNSAFE_METHODS,
    X5C_CHOICES,
    env_file_problem,
    graph_roots,
    is_guid,
    slugify,
    unsafe_id_chars,
)


def _children(node: Any) -> Iterator[Any]:
    if isinstance(node, dict):
        return itertools.chain.from_iterable(node.items())
    return iter(node)


def _size_problem(value: Any) -> str | None:
    """Refuse a value with more than MAX_SPEC_NODES nodes or deeper than MAX_SPEC_DEPTH.

    Counts the tree as every later walk sees it (a shared object once per use) and stops at
    the bound, so the cost is at most MAX_SPEC_NODES steps whatever the input.
    """
    if not isinstance(value, (dict, list)):
        return None
    count = 1
    stack = [_children(value)]
    while stack:
        child = next(stack[-1], stack)  # the stack itself is the "exhausted" sentinel
        if child is stack:
            stack.pop()
            continue
        count += 1
        if count > MAX_SPEC_NODES:
            return (f"(top level): the spec has more than {MAX_SPEC_NODES} values once its YAML "
                    "aliases are expanded (every use of an alias counts, so aliases of aliases "
                    "multiply, as in a 'billion laughs' document); a real spec has a few dozen. "
                    "Refused without checking further: check its anchors (&) and aliases (*)")
        if isinstance(child, (dict, list)):
            if len(stack) >= MAX_SPEC_DEPTH:
                return ("(top level): the spec nests mappings and lists more than "
                        f"{MAX_SPEC_DEPTH} levels deep; a real spec needs four")
            stack.append(_children(child))
    return None



def _check_keys(path: str, mapping: dict[str, Any], allowed: tuple[str, ...],
                errors: list[str]) -> None:
    for key in mapping:
        if key not in allowed:
            errors.append(unknown_key(path, key, allowed))


def _require_str(path: str, value: Any, errors: list[str], hint: str) -> bool:
    if isinstance(value, str):
        return True
    errors.append(f"{path}: expected a string, got {type_name(value)} {show(value)}; {hint}")
    return False


def _require_mapping(path: str, value: Any, errors: list[str], hint: str) -> bool:
    if isinstance(value, dict):
        return True
    errors.append(f"{path}: expected a mapping, got {type_name(value)} {show(value)}; {hint}")
    return False


def _check_choice(path: str, value: Any, options: tuple[str, ...], errors: list[str]) -> bool:
    if isinstance(value, str) and value in options:
        return True
    errors.append(f"{path}: {show(value)} is not a supported choice; allowed: {choices(options)}")
    return False



def _is_local_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _url_problem(value: str, *, allow_local_http: bool) -> str | None:
    """Return what is wrong with an absolute http(s) URL, or None."""
    if not value or value != value.strip() or any(c.isspace() for c in value):
        return "must be an absolute URL without spaces"
    marks = placeholder(value)
    if marks:
        return f"looks like a placeholder (it contains {marks}); put the real URL"
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme not in ("https", "http"):
        return "must start with https://"
    if not host:
        return "has no host name"
    if parts.scheme == "http" and not (allow_local_http and _is_local_host(host)):
        return "must use https:// (http:// is allowed only for localhost and 127.0.0.1)"
    if parts.fragment or value.endswith("#"):
        return "must not have a #fragment"
    if parts.username or parts.password:
        return "must not contain user:password@"
    return None


# ------------------------------------------------------------------------------------ scopes
def scope_resource(scope: str, graph: tuple[str, ...] = (GRAPH_RESOURCE,)) -> str | None:
    """The resource a scope belongs to, normalised for comparison; None if malformed.

    ``api://x/Todo.Read`` -> ``api://x``; ``https://graph.microsoft.com/User.Read`` ->
    ``https://graph.microsoft.com``; a short name such as ``User.Read`` means Microsoft Graph;
    ``<app-id GUID>/Scope`` -> that GUID (the Graph app id means Graph). Microsoft Graph is
    returned as GRAPH_RESOURCE whichever of the cloud's Graph roots (`graph`) the scope names.
    """
    if "/" not in scope:
        return GRAPH_RESOURCE
    if "://" in scope:
        scheme, rest = scope.split("://", 1)
        if not scheme or "/" not in rest:
            return None
        resource, name = scope.rsplit("/", 1)
        host = rest.split("/", 1)[0]
        if not name or not host:
            return None
        resource = resource.rstrip("/").lower()
        return GRAPH_RESOURCE if resource in graph else resource
    resource, name = scope.rsplit("/", 1)
    if not name or not is_guid(resource):
        return None
    resource = resource.lower()
    return GRAPH_RESOURCE if resource == GRAPH_APP_ID else resource


# The authority kinds of Microsoft's identity platform (Entra app registrations, GUID client ids).
MICROSOFT_KINDS = ("entra", authorities.B2C, authorities.EXTERNAL_ID)

# Every cloud's Microsoft Graph roots: a full-form scope naming another cloud's Graph is refused.
ALL_GRAPH_ROOTS = frozenset(root for roots in GRAPH_ROOTS.values() for root in roots)


def _check_scopes(path: str, api: str, scopes: Any, errors: list[str],
                  graph: tuple[str, ...] = (GRAPH_RESOURCE,)) -> None:
    """`graph`: Microsoft Graph's roots in the app's cloud (full-form Graph scopes name one)."""
    full_form = "'api://<app-id>/<Scope>' or 'https://<host>/<Scope>'"
    if not isinstance(scopes, list):
        errors.append(f"{path}: expected a list of scope strings, got {type_name(scopes)} "
                      f"{show(scopes)}; e.g. [{full_form if api != GRAPH else 'User.Read'}]")
        return
    if not scopes:
        errors.append(f"{path}: an API needs at least one scope; e.g. "
                      f"[{'User.Read' if api == GRAPH else 'api://<app-id>/.default'}]")
        return
    resources: dict[str, list[str]] = {}
    seen: set[str] = set()
    for i, scope in enumerate(scopes):
        p = f"{path}[{i}]"
        if not isinstance(scope, str):
            errors.append(f"{p}: expected a string, got {type_name(scope)} {show(scope)}")
            continue
        if not scope or any(c.isspace() for c in scope):
            errors.append(f"{p}: {show(scope)} is not a scope; a scope is one non-empty word "
                          "without spaces (list each scope separately)")
            continue
        if strong_secret(scope):
            errors.append(f"{p}: {SECRET_SHOWN} looks like a secret, not a scope; "
                          f"{SECRET_KEY_FIX.replace('this key', 'it')}")
            continue
        if env_file_problem(scope):
            errors.append(f"{p}: {show(scope)} {env_file_problem(scope)}; {ENV_FILE_FIX}")
            continue
        marks = placeholder(scope)
        if marks:
            errors.append(f"{p}: {show(scope)} looks like a placeholder (it contains {marks}); "
                          "put the real scope: the API's application ID URI from its app "
                          "registration, '/', the scope name, e.g. "
                          "'api://11111111-2222-3333-4444-555555555555/Todo.Read'")
            continue
        if scope.lower() in RESERVED_SCOPES:
            errors.append(f"{p}: {show(scope)} is reserved (MSAL refuses it); remove it - "
                          "openid, profile and offline_access are added automatically")
            continue
        if scope.lower() in seen:
            errors.append(f"{p}: {show(scope)} is listed twice; list each scope once")
            continue
        seen.add(scope.lower())
        named = scope.rsplit("/", 1)[0].rstrip("/").lower()
        if named in ALL_GRAPH_ROOTS and named not in graph:
            short = safe(scope.rsplit("/", 1)[1])
            errors.append(f"{p}: {show(scope)} is Microsoft Graph of another cloud than "
                          f"authority.instance's; use the short form '{short}'"
                          + (f" or '{graph[0]}/{short}'" if graph else ""))
            continue
        resource = scope_resource(scope, graph)
        if resource is None:
            errors.append(f"{p}: {show(scope)} is not a valid scope; use {full_form}"
                          + (" or a Graph short name like 'User.Read'" if api == GRAPH else ""))
            continue
        if api != GRAPH and "/" not in scope:
            errors.append(f"{p}: short scope {show(scope)} means Microsoft Graph and is only "
                          f"valid for the 'graph' API; for API {api!r} use the full form "
                          f"{full_form}, e.g. 'api://<app-id>/{safe(scope)}'")
            continue
        if api == GRAPH and resource != GRAPH_RESOURCE:
            errors.append(f"{p}: {show(scope)} is not a Microsoft Graph scope; the 'graph' API "
                          "takes Graph scopes such as 'User.Read' or "
                          f"'{graph[0] if graph else GRAPH_RESOURCE}/User.Read' (put other "
                          "resources in their own API)")
            continue
        resources.setdefault(resource, []).append(scope)
    if len(resources) > 1:
        listed = "; ".join(f"{safe(r)}: {', '.join(safe(x) for x in s)}"
                           for r, s in resources.items())
        errors.append(f"{path}: scopes of one API must belong to one resource (a token covers "
                      f"one resource), found {len(resources)}: {listed}; split them into "
                      "separate APIs")
    names = {s.rsplit("/", 1)[-1].lower() for group in resources.values() for s in group}
    if api == GRAPH and names and not names & (GRAPH_ME_SCOPES | {".default"}):
        errors.append(f"{path}: the generated /profile page reads the user's profile (/me), "
                      "which needs one of User.Read, User.ReadBasic.All, User.Read.All, "
                      "User.ReadWrite, User.ReadWrite.All, Directory.Read.All or "
                      "Directory.ReadWrite.All; add 'User.Read'")
    for resource, group in resources.items():
        defaults = [s for s in group if s.rsplit("/", 1)[-1].lower() == ".default"]
        if defaults and len(group) > 1:
            errors.append(f"{path}: {show(defaults[0])} cannot be combined with other scopes "
                          f"of {safe(resource)} "
                          f"({', '.join(safe(s) for s in group if s not in defaults)}); "
                          "use either '.default' alone or the individual scopes")


# ------------------------------------------------------------------------------- validation
def _check_project(spec: dict[str, Any], errors: list[str]) -> None:
    name = spec.get("project_name")
    name_ok = False
    if "project_name" in spec and _require_str(
            "project_name", name, errors, 'quote it, e.g. project_name: "Contoso Portal"'):
        assert isinstance(name, str)
        if not name.strip():
            errors.append("project_name: must not be empty; e.g. 'Contoso Portal'")
        elif len(name) > 80:
            errors.append(f"project_name: {show(name)} is {len(name)} characters; "
                          "allowed: at most 80")
        elif not any(c.isalpha() for c in name):
            errors.append(f"project_name: {show(name)} must contain at least one letter")
        elif any(unicodedata.category(c).startswith("C") for c in name):
            errors.append(f"project_name: {show(name)} contains a control character "
                          "(newline, tab, ...); use one line of plain text")
        else:
            name_ok = True

    slug: Any = spec.get("project_slug")
    if "project_slug" in spec:
        if _require_str("project_slug", slug, errors, "e.g. contoso-portal"):
            if not SLUG_RE.match(slug) or len(slug) > 50:
                errors.append(f"project_slug: {show(slug)} is not allowed; use at most 50 "
                              "lower-case letters, digits and '-', starting with a letter "
                              "(e.g. 'contoso-portal')")
            slug = slug if SLUG_RE.match(slug) else None
        else:
            slug = None
    elif name_ok:
        slug = slugify(str(name))
        if not SLUG_RE.match(slug) or len(slug) > 50:
            errors.append(f"project_slug: the default derived from project_name, {show(slug)}, "
                          "is not allowed (it must start with a letter and have at most 50 "
                          "lower-case letters, digits and '-'); set project_slug explicitly, "
                          "e.g. project_slug: my-portal")
            slug = None

    if "package_name" in spec:
        pkg = spec["package_name"]
        if _require_str("package_name", pkg, errors, "e.g. contoso_portal"):
            _check_package(pkg, "package_name", errors)
    elif isinstance(slug, str):
        _check_package(slug.replace("-", "_"), "package_name (default from project_slug)", errors)


def _check_package(pkg: str, path: str, errors: list[str]) -> None:
    fix = "set package_name to another name, e.g. 'contoso_portal' or '<name>_app'"
    if not PACKAGE_RE.match(pkg):
        errors.append(f"{path}: {show(pkg)} is not allowed; use lower-case letters, digits and "
                      "'_', not starting with a digit (e.g. 'contoso_portal')")
    elif keyword.iskeyword(pkg) or keyword.issoftkeyword(pkg):
        errors.append(f"{path}: {show(pkg)} is a Python keyword; {fix}")
    elif pkg in SHADOWED_IMPORTS or pkg in sys.stdlib_module_names:
        errors.append(f"{path}: {show(pkg)} would shadow the module {pkg!r} that the app or "
                      f"Python needs; {fix}")


def _check_authority(spec: dict[str, Any], errors: list[str]) -> str | None:
    auth = spec["authority"]
    if not _require_mapping("authority", auth, errors,
                            "e.g. authority: {kind: entra, tenant: organizations}"):
        return None
    if "kind" not in auth:
        errors.append(f"authority.kind: missing; allowed: {choices(AUTHORITY_KINDS)}")
        _check_keys("authority", auth, tuple({k for ks in AUTHORITY_KEYS.values() for k in ks}),
                    errors)
        return None
    kind: str = auth["kind"]
    if not _check_choice("authority.kind", kind, AUTHORITY_KINDS, errors):
        return None
    allowed = AUTHORITY_KEYS[kind]
    for key in auth:
        if key in allowed:
            continue
        other = [k for k, ks in AUTHORITY_KEYS.items() if key in ks]
        if other:
            errors.append(f"authority.{key}: only used when authority.kind is {other[0]!r}, "
                          f"not {kind!r}; remove it (allowed keys for {kind!r}: "
                          f"{choices(allowed)})")
        else:
            errors.append(unknown_key("authority", key, allowed))
    if kind in (authorities.B2C, authorities.EXTERNAL_ID):
        authorities.check(kind, auth, errors)
    elif kind == "entra":
        if "tenant" in auth and _require_str("authority.tenant", auth["tenant"], errors,
                                             "e.g. tenant: organizations"):
            tenant = auth["tenant"]
            if not (is_guid(tenant) or tenant in TENANT_KEYWORDS or DOMAIN_RE.match(tenant)):
                errors.append(f"authority.tenant: {show(tenant)} is not a tenant; allowed: a "
                              f"tenant id (GUID), {choices(TENANT_KEYWORDS)}, or a domain "
                              "such as 'contoso.onmicrosoft.com'")
        if "instance" in auth and _require_str("authority.instance", auth["instance"], errors,
                                               f"e.g. {DEFAULT_INSTANCE}"):
            inst = auth["instance"]
            problem = _url_problem(inst, allow_local_http=False)
            if problem is None:
                parts = urlsplit(inst)
                if parts.path not in ("", "/") or parts.query or inst.endswith("?"):
                    problem = "must be just https://<host> (no path or query)"
                elif unsafe_id_chars(inst):
                    problem = (f"contains {unsafe_id_chars(inst)}, which no host name has (and "
                               "a shell reading .env would run)")
            if problem:
                errors.append(f"authority.instance: {show(inst)} {problem}; e.g. "
                              f"{DEFAULT_INSTANCE}")
    else:
        if "issuer" not in auth:
            errors.append("authority.issuer: missing (required when kind is 'oidc'); e.g. "
                          "https://id.example.com/realms/acme")
        elif _require_str("authority.issuer", auth["issuer"], errors,
                          "e.g. https://id.example.com/realms/acme"):
            iss = auth["issuer"]
            problem = _url_problem(iss, allow_local_http=False)
            if problem is None:
                parts = urlsplit(iss)
                if parts.query or iss.endswith("?"):
                    problem = "must not have a ?query"
                elif iss.endswith("/"):
                    problem = "must not end with '/' (it breaks OpenID discovery in MSAL)"
                elif parts.path.strip("/") == "":
                    problem = ("needs at least one path segment (MSAL rejects an authority "
                               "without one)")
                elif unsafe_id_chars(iss):
                    problem = (f"contains {unsafe_id_chars(iss)}, which no issuer has (and a "
                               "shell reading .env would run); an issuer URL is made of "
                               f"{SAFE_ID_SHOWN}")
            if problem:
                errors.append(f"authority.issuer: {show(iss)} {problem}; e.g. "
                              "https://id.example.com/realms/acme")
    return kind


def _named_entries(path: str, mapping: dict[Any, Any], what: str, pattern: re.Pattern[str],
                   errors: list[str], rule: str) -> Iterator[tuple[str, str, Any]]:
    """The entries of a mapping keyed by names (APIs, groups) as (name, field path, value); a
    name that `pattern` does not match is reported with `rule` and skipped."""
    for name, value in mapping.items():
        where = f"{path}.{show_key(name)}"
        if not isinstance(name, str) or not pattern.match(name):
            errors.append(f"{where}: {what} name {show(name)} is not allowed; {rule}")
            continue
        yield name, where, value


def _entra_instance(spec: dict[str, Any]) -> str:
    """The spec's Entra instance (its cloud), DEFAULT_INSTANCE when it gives none usable."""
    auth = spec.get("authority")
    if isinstance(auth, dict) and auth.get("kind", "entra") == "entra":
        instance = auth.get("instance", DEFAULT_INSTANCE)
        if isinstance(instance, str) and instance:
            return instance
    return DEFAULT_INSTANCE


def _graph_base_url_problem(url: str, roots: tuple[str, ...], instance: str) -> str | None:
    """What is wrong with `url` as the 'graph' API's base URL in the cloud whose Graph roots
    are `roots` (() when not known: any https URL of a Graph version is taken)."""
    root, _, version = url.rstrip("/").rpartition("/")
    if version in GRAPH_VERSIONS and (root.lower() in roots or (not roots and root)):
        return None
    allowed = [f"{r}/{v}" for r in roots for v in GRAPH_VERSIONS]
    if not roots:
        return (f"is not a Microsoft Graph base URL; give <Graph root>/"
                f"{' or /'.join(GRAPH_VERSIONS)} of the cloud of {instance}")
    cloud = ("the global cloud" if instance == DEFAULT_INSTANCE
             else f"the cloud of authority.instance {instance}")
    return (f"is not Microsoft Graph in {cloud}; allowed: {choices(allowed)} (or omit it); "
            "to call another URL configure it as an API with another name")


def _check_apis(spec: dict[str, Any], errors: list[str]) -> list[str]:
    apis = spec["downstream_apis"]
    if not _require_mapping("downstream_apis", apis, errors,
                            "use {} for none, or name: {base_url: ..., scopes: [...]}"):
        return []
    instance = _entra_instance(spec).rstrip("/")
    roots = graph_roots(instance)
    auth = spec.get("authority")
    b2c = isinstance(auth, dict) and auth.get("kind") == authorities.B2C
    names: list[str] = []
    for name, path, api in _named_entries(
            "downstream_apis", apis, "API", API_NAME_RE, errors,
            "use 1-32 lower-case letters, digits and '_', starting with a letter (it becomes a "
            "URL segment and API_<NAME>_BASE_URL)"):
        names.append(name)
        if not _require_mapping(path, api, errors, "e.g. {base_url: https://..., scopes: [...]}"):
            continue
        if b2c and name == GRAPH:
            errors.append(f"{path}: Microsoft Graph cannot be called with authority.kind 'b2c': "
                          "Azure AD B2C user flows issue no tokens for Microsoft Graph's "
                          "delegated permissions (only for APIs of your own, registered in the "
                          "B2C tenant); remove downstream_apis.graph (manage users with an "
                          "app-only token from a separate app, outside this sign-in)")
            continue
        if name != GRAPH and "sdk" in api:
            errors.append(f"{path}.sdk: only the 'graph' API has an SDK page; remove it (any "
                          "Azure SDK client can use the user's credential: see the README)")
            api = {k: v for k, v in api.items() if k != "sdk"}
        if name == GRAPH and "sdk" in api and not isinstance(api["sdk"], bool):
            errors.append(f"{path}.sdk: expected true or false, got {type_name(api['sdk'])} "
                          f"{show(api['sdk'])}; sdk: true calls Graph through msgraph-sdk")
        if name == GRAPH and api.get("app_only") is True:
            errors.append(f"{path}.app_only: the graph API is the signed-in user's (/profile "
                          "reads /me, which Microsoft Graph answers for a delegated token only); "
                          "to call Graph with the app's own token add another API, e.g. "
                          "graph_app: {base_url: https://graph.microsoft.com/v1.0, scopes: "
                          "['https://graph.microsoft.com/.default'], app_only: true}")
            continue
        _check_keys(path, api, GRAPH_API_KEYS if name == GRAPH else API_KEYS, errors)
        _check_api_description(path, api, errors)
        if api.get("app_only") is True:
            _check_app_only(path, api, auth if isinstance(auth, dict) else {}, errors)
        graph = roots
        if "base_url" in api:
            url = api["base_url"]
            if _require_str(f"{path}.base_url", url, errors, "e.g. https://api.contoso.com/"):
                problem = _url_problem(url, allow_local_http=True)
                if problem:
                    errors.append(f"{path}.base_url: {show(url)} {problem}")
                elif env_file_problem(url):
                    errors.append(f"{path}.base_url: {show(url)} {env_file_problem(url)}; "
                                  f"{ENV_FILE_FIX}")
                elif name == GRAPH and _graph_base_url_problem(url, roots, instance):
                    errors.append(f"{path}.base_url: {show(url)} "
                                  f"{_graph_base_url_problem(url, roots, instance)}")
                elif name == GRAPH and not roots:
                    graph = (url.rstrip("/").rpartition("/")[0].lower(),)
        elif name == GRAPH and not roots:
            errors.append(f"{path}.base_url: missing; Microsoft Graph's root in the cloud of "
                          f"authority.instance {instance} is not known here: give it, e.g. "
                          f"base_url: https://<Graph host of that cloud>/{GRAPH_VERSIONS[0]}")
        elif name != GRAPH:
            errors.append(f"{path}.base_url: missing; e.g. base_url: https://api.contoso.com/")
        if "scopes" in api:
            _check_scopes(f"{path}.scopes", name, api["scopes"], errors, graph)
            if b2c and isinstance(api["scopes"], list) and any(
                    isinstance(s, str) and "/" in s and scope_resource(s, graph) == GRAPH_RESOURCE
                    for s in api["scopes"]):
                errors.append(f"{path}.scopes: Microsoft Graph scopes cannot be had with "
                              "authority.kind 'b2c' (B2C user flows issue no Graph delegated "
                              "tokens); use the scopes of an API registered in the B2C tenant, "
                              "e.g. 'https://contoso.onmicrosoft.com/tasks-api/tasks.read'")
        elif name != GRAPH:
            errors.append(f"{path}.scopes: missing; e.g. scopes: ['api://<app-id>/.default']")
    return names


def _check_api_description(path: str, api: dict[str, Any], errors: list[str]) -> None:
    """An API's default call: path, method, headers, query and timeout (each optional), and
    app_only's type. The generated core/settings.py checks its API_<NAME>_* variables alike."""
    if "path" in api and _require_str(f"{path}.path", api["path"], errors, "e.g. items/today"):
        value = api["path"]
        if any(ord(c) < 33 or ord(c) == 127 or c == "\\" for c in value):
            errors.append(f"{path}.path: {show(value)} holds a space, a backslash or a control "
                          "character; e.g. items/today")
        elif value.startswith("/") or "://" in value:
            errors.append(f"{path}.path: {show(value)} must be relative to base_url (no leading "
                          "'/', no scheme); e.g. items/today")
        elif "?" in value or "#" in value:
            errors.append(f"{path}.path: {show(value)} must not hold a query or fragment; give "
                          "query parameters in query, e.g. query: {api-version: '1'}")
        elif any(segment in (".", "..") for segment in value.split("/")):
            errors.append(f"{path}.path: {show(value)} must not hold '.' or '..' segments: it "
                          "may not leave base_url")
    if "method" in api and _require_str(f"{path}.method", api["method"], errors,
                                        f"allowed: {choices(API_METHODS)}"):
        method = api["method"].upper()
        if method in UNSAFE_METHODS:
            errors.append(f"{path}.method: {show(api['method'])}: the /api/<name> page makes the "
                          "API's default call on every visit of a link, without a body; use "
                          f"GET (or HEAD, OPTIONS) and call {method} from your own code with "
                          f"call(name, method='{method}')")
        elif method not in API_METHODS:
            errors.append(f"{path}.method: {show(api['method'])} is not allowed; allowed: "
                          f"{choices(API_METHODS)}")
    for field in ("headers", "query"):
        if field in api:
            _check_api_mapping(f"{path}.{field}", api[field], field == "headers", errors)
    if "timeout" in api:
        value = api["timeout"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                0 < value <= MAX_API_TIMEOUT_SECONDS):
            errors.append(f"{path}.timeout: {show(value)} is not a number of seconds above 0 and "
                          f"at most {MAX_API_TIMEOUT_SECONDS}; e.g. timeout: 5 (calls also end "
                          "within OUTBOUND_DEADLINE_SECONDS, 10 by default: the smaller wins)")
    if "app_only" in api and not isinstance(api["app_only"], bool):
        errors.append(f"{path}.app_only: expected true or false, got {type_name(api['app_only'])} "
                      f"{show(api['app_only'])}")


def _check_api_mapping(path: str, value: Any, headers: bool, errors: list[str]) -> None:
    example = "{X-Tenant: contoso}" if headers else "{api-version: '1'}"
    if not _require_mapping(path, value, errors, f"e.g. {example}"):
        return
    seen: set[str] = set()
    for name, text in value.items():
        where = f"{path}.{show_key(name)}"
        if not isinstance(name, str) or not name:
            errors.append(f"{path}: {show_key(name)} is not a name; e.g. {example}")
            continue
        if not isinstance(text, str):
            errors.append(f"{where}: expected a string, got {type_name(text)} {show(text)} "
                          "(quote it)")
            continue
        if looks_like_secret(text) or is_secret_key(name):
            variable = f"API_{path.split('.')[1].upper()}_{'HEADERS' if headers else 'QUERY'}"
            errors.append(f"{where}: an API key or other secret never goes in the spec; set "
                          f"{variable} in the environment (or in .env, which is not committed) "
                          "and remove it here")
            continue
        if not headers:
            continue
        if not HEADER_NAME_RE.match(name):
            errors.append(f"{path}: {show(name)} is not a valid header name (letters, digits "
                          "and !#$%&'*+.^_`|~-)")
        elif name.lower() in RESERVED_HEADERS:
            errors.append(f"{where}: set by the app or its HTTP client itself (the token, the "
                          "request's framing); remove it")
        elif name.lower() in seen:
            errors.append(f"{where}: given twice (header names ignore case); keep one")
        elif (not text or text != text.strip(" \t")
              or any(ord(c) < 32 and c != "\t" or ord(c) == 127 for c in text)):
            errors.append(f"{where}: the value is empty, starts or ends with a space, or holds a "
                          "line break or control character")
        seen.add(name.lower())


def _is_app_only(apis: Any, name: str) -> bool:
    api = apis.get(name) if isinstance(apis, dict) else None
    return isinstance(api, dict) and api.get("app_only") is True


def _check_app_only(path: str, api: dict[str, Any], auth: dict[str, Any],
                    errors: list[str]) -> None:
    """An app-only API: the app's own token (client credentials), for exactly one
    `<resource>/.default` scope, from one tenant of Microsoft's identity platform."""
    scopes = api.get("scopes")
    kind, tenant = auth.get("kind"), auth.get("tenant", DEFAULT_TENANT)
    if kind == "entra" and isinstance(tenant, str) and tenant.lower() in (
            "common", "organizations", "consumers"):
        errors.append(f"{path}.app_only: an app-only API's token comes from one tenant, and "
                      f"authority.tenant is {show(tenant)}; Entra refuses client credentials "
                      "there: use the tenant id or domain of the app's home tenant, or call "
                      "this API on the user's behalf (remove app_only)")
    elif kind == "oidc":
        errors.append(f"{path}.app_only: app-only calls ask Microsoft's identity platform for "
                      "'<resource>/.default' with the app's credentials; authority.kind 'oidc' "
                      "has no such scope: remove app_only")
    elif isinstance(scopes, list) and not (
            len(scopes) == 1 and isinstance(scopes[0], str) and scopes[0].endswith("/.default")
            and len(scopes[0]) > len("/.default")):
        errors.append(f"{path}.scopes: an app-only API needs exactly one scope, its resource's "
                      "'/.default' (every application permission granted to the app for it), "
                      "e.g. ['api://<app-id>/.default']")


def _path_problem(field: str, value: str) -> str | None:
    """What is wrong with a file path of the credential (its value already shown or hidden)."""
    if any(m in value for m in JINJA_MARKERS):
        return None  # reported by _check_jinja
    if strong_secret(value) or looks_like_secret(value):
        return (f"{SECRET_SHOWN} looks like a secret, not a file path; secrets never go in the "
                "spec: put it in a file that is not committed and give that file's path here, "
                "or set it in the environment")
    example = f"e.g. {field}: {PATH_EXAMPLES[field]}"
    if not value.strip():
        return (f"must not be empty; give the file's path ({example}), or leave it out and set "
                f"{CREDENTIAL_VARIABLES[field]} in .env later")
    if value != value.strip():
        return f"{show(value)} must not start or end with whitespace"
    if any(unicodedata.category(c).startswith("C") for c in value):
        return f"{show(value)} contains a control character (newline, tab, ...); {example}"
    marks = placeholder(value)
    if marks:
        return f"{show(value)} looks like a placeholder (it contains {marks}); put the real path"
    problem = env_file_problem(value)
    if problem:
        return (f"{show(value)} {problem}; {ENV_FILE_FIX} (for a Windows share, write "
                "//server/share/... with forward slashes)")
    return None


def _check_credential(cred: Any, authority_kind: str | None, errors: list[str]) -> None:
    """The `credential` section: its kind, the keys of that kind, and their values."""
    if not _require_mapping("credential", cred, errors, "e.g. credential: {kind: secret}"):
        return
    every_key = ("kind", *(k for keys in CREDENTIAL_KEYS.values() for k in keys))
    kind: str | None = None
    if "kind" not in cred:
        errors.append(f"credential.kind: missing; allowed: {choices(CREDENTIAL_KINDS)}")
    elif _check_choice("credential.kind", cred["kind"], CREDENTIAL_KINDS, errors):
        kind = cred["kind"]
    allowed = every_key if kind is None else ("kind", *CREDENTIAL_KEYS[kind])
    for key in cred:
        if key in allowed:
            continue
        if key in every_key:
            owner = next(k for k, keys in CREDENTIAL_KEYS.items() if key in keys)
            errors.append(f"credential.{key}: only used when credential.kind is {owner!r}, not "
                          f"{kind!r}; remove it (allowed keys for {kind!r}: "
                          f"{choices(allowed)})")
        elif isinstance(key, str) and any(
                w in re.sub(r"[^a-z0-9]", "", key.lower()) for w in PASSWORD_KEY_WORDS):
            errors.append(f"credential.{show_key(key)}: {PASSWORD_KEY_FIX}")
        else:
            errors.append(unknown_key("credential", key, allowed))
    present = [key for key in allowed if key in cred and key != "kind"]

    source: str | None = None
    if kind == "assertion":
        if "source" not in cred:
            errors.append("credential.source: missing (required when kind is 'assertion'); "
                          f"allowed: {choices(ASSERTION_SOURCES)}")
        elif _check_choice("credential.source", cred["source"], ASSERTION_SOURCES, errors):
            source = cred["source"]
        if source == "managed_identity" and authority_kind in ("oidc", authorities.B2C):
            errors.append("credential.source: 'managed_identity' needs authority.kind 'entra' "
                          "or 'external_id' (only Entra ID accepts a managed identity's token as "
                          "the app's credential, and Azure AD B2C takes no federated "
                          "credentials); with another provider use 'token_file' or 'callable' "
                          "where it accepts them, or credential.kind 'secret'")
        for key in ASSERTION_SOURCES:  # each source has the key of its own name
            if key in cred and source is not None and key != source:
                errors.append(f"credential.{key}: only used when credential.source is {key!r}, "
                              f"not {source!r}; remove it")
                present.remove(key)
        if source == "callable" and "callable" not in cred:
            errors.append("credential.callable: missing (required when source is 'callable'): "
                          "the function that returns a signed JWT, as 'package.module:function', "
                          f"e.g. callable: {CALLABLE_EXAMPLE}")

    for key in present:
        path, value = f"credential.{key}", cred[key]
        if key == "source":
            continue
        if key == "x5c":
            _check_choice(path, value, X5C_CHOICES, errors)
        elif key in CREDENTIAL_PATH_KEYS:
            if _require_str(path, value, errors, f"e.g. {key}: {PATH_EXAMPLES[key]}"):
                problem = _path_problem(key, value)
                if problem:
                    errors.append(f"{path}: {problem}")
        elif key == "managed_identity":
            if not (isinstance(value, str) and (value == SYSTEM_MANAGED_IDENTITY
                                                or is_guid(value))):
                errors.append(f"{path}: {show(value)} is not allowed; use the client id (a "
                              "GUID) of the user-assigned managed identity the app registration "
                              "trusts (Entra ID takes only user-assigned identities as an app's "
                              "federated credential), or leave it out and set "
                              "CLIENT_ASSERTION_MANAGED_IDENTITY when you deploy; 'system' "
                              "names the system-assigned identity")
        elif key == "callable" and _require_str(path, value, errors,
                                                f"e.g. callable: {CALLABLE_EXAMPLE}"):
            names = re.split(r"[.:]", value)
            if not CALLABLE_RE.match(value) or any(keyword.iskeyword(n) for n in names):
                errors.append(f"{path}: {show(value)} is not an importable function; use "
                              "'package.module:function' (a module path, ':', then a function "
                              "taking no arguments that returns a signed JWT), e.g. "
                              f"{CALLABLE_EXAMPLE}")
    cert, key_file = cred.get("certificate_file"), cred.get("private_key_file")
    if (kind == "certificate" and isinstance(cert, str) and isinstance(key_file, str)
            and cert.lower().endswith(PKCS12_SUFFIXES)):
        errors.append(f"credential.private_key_file: not used with a PKCS#12 certificate_file "
                      f"({show(cert)} holds the private key); remove private_key_file, or use "
                      "a PEM certificate_file")


def _braces(text: str) -> str:
    """A YAML flow mapping in a message (written so that no Jinja delimiter is in this file)."""
    return "{" + text + "}"


def _role_problem(role: str) -> str | None:
    """What Entra ID refuses in an app role's value (appRole.value), or None."""
    if any(m in role for m in JINJA_MARKERS):
        return None  # reported by _check_jinja
    if strong_secret(role):
        return (f"{SECRET_SHOWN} looks like a secret, not an app role's value; "
                f"{SECRET_KEY_FIX.replace('this key', 'it')}")
    if not role:
        return "must not be empty; give the app role's value, e.g. 'Admin'"
    bad = sorted({c for c in role if c not in ROLE_VALUE_CHARS})
    if bad:
        return (f"{show(role)} contains {' '.join(repr(c) for c in bad)}, which Entra ID does "
                f"not allow in an app role's value (only {ROLE_VALUE_SHOWN}; no spaces); give "
                "the value exactly as in the app registration's appRoles, e.g. 'Task.Write'")
    if role.startswith("."):
        return (f"{show(role)} starts with '.', which Entra ID does not allow in an app role's "
                "value; e.g. 'Task.Write'")
    if len(role) > ROLE_VALUE_MAX:
        return (f"{show(role)} is {len(role)} characters; Entra ID allows at most "
                f"{ROLE_VALUE_MAX} in an app role's value")
    return None


def _check_roles(roles: Any, errors: list[str]) -> None:
    path = "authorization.roles"
    if not isinstance(roles, list):
        errors.append(f"{path}: expected a list of app role values, got {type_name(roles)} "
                      f"{show(roles)}; e.g. roles: [Admin, Reader] ([] for none)")
        return
    seen: dict[str, int] = {}  # lower-cased value -> its index
    for i, role in enumerate(roles):
        if not _require_str(f"{path}[{i}]", role, errors, "quote it, e.g. 'Admin'"):
            continue
        problem = _role_problem(role)
        if problem:
            errors.append(f"{path}[{i}]: {problem}")
        elif role.lower() in seen:
            first = seen[role.lower()]
            same = "" if roles[first] == role else f" as {show(roles[first])}, ignoring case"
            errors.append(f"{path}[{i}]: {show(role)} is listed twice (at [{first}]{same}); "
                          "list each role once")
        else:
            seen[role.lower()] = i


def _check_groups(groups: Any, errors: list[str]) -> None:
    path = "authorization.groups"
    if not _require_mapping(path, groups, errors,
                            "group name -> group object id, e.g. groups: "
                            + _braces(f"finance: {GROUP_ID_EXAMPLE}") + " ({} for none)"):
        return
    owner: dict[str, str] = {}  # lower-cased group id -> the first name given it
    for name, where, group_id in _named_entries(
            path, groups, "group", GROUP_NAME_RE, errors,
            "use 1-40 lower-case letters, digits and '_', starting with a letter (it becomes "
            "GROUP_<NAME>_ID and the page /groups/<name>), e.g. finance"):
        if not _require_str(where, group_id, errors, f"quote it, e.g. {GROUP_ID_EXAMPLE}"):
            continue
        if not is_guid(group_id):
            errors.append(f"{where}: {show(group_id)} is not a group object id; give the "
                          "group's Object ID (a GUID like "
                          f"{GROUP_ID_EXAMPLE}, on the group's overview page in the Microsoft "
                          "Entra admin center), not its name")
        elif group_id.lower() in owner:
            errors.append(f"{where}: {show(group_id)} is already the id of group "
                          f"{owner[group_id.lower()]!r}; give each group one name: remove one "
                          "of them, or correct the id")
        else:
            owner[group_id.lower()] = name


def _check_authorization(section: Any, authority_kind: str | None, errors: list[str]) -> None:
    """The `authorization` section: app roles, named Entra groups, and how a user's groups are
    read when the ID token has too many to list them. None or {} means none."""
    if section is None:
        return
    if not _require_mapping("authorization", section, errors,
                            "e.g. authorization: " + _braces(
                                "roles: [Admin], groups: "
                                + _braces(f"finance: {GROUP_ID_EXAMPLE}")) + ", or {} for none"):
        return
    _check_keys("authorization", section, AUTHORIZATION_KEYS, errors)
    if "roles" in section:
        _check_roles(section["roles"], errors)
    groups = section.get("groups")
    if "groups" in section:
        _check_groups(groups, errors)
        if isinstance(groups, dict) and groups and authority_kind in ("oidc", authorities.B2C):
            errors.append(f"authorization.groups: needs authority.kind 'entra' (not "
                          f"{authority_kind!r}): a user's groups "
                          "come from Entra ID's groups claim and Microsoft Graph, which another "
                          "OpenID Connect provider does not have; remove authorization.groups "
                          "(authorization.roles work with any provider that sends a 'roles' "
                          "claim)")
    if "groups_overage" in section:
        overage = section["groups_overage"]
        if _check_choice("authorization.groups_overage", overage, GROUPS_OVERAGE_CHOICES,
                         errors) and not groups:
            errors.append(f"authorization.groups_overage: {show(overage)} is only used with "
                          "authorization.groups (whose token asks Microsoft Graph for a user's "
                          "groups when the ID token has too many to list them); remove it, or "
                          "add groups")


def _check_jinja(path: str, value: Any, errors: list[str]) -> None:
    if isinstance(value, str):
        if any(m in value for m in JINJA_MARKERS):
            errors.append(f"{path}: {show(value)} contains a Jinja delimiter, which cookiecutter "
                          "would evaluate; remove the brace sequence")
    elif isinstance(value, dict):
        for k, v in value.items():
            # A secret key is reported as such; its value is never shown. The credential's file
            # paths (secret_file, token_file, ...) are named like secrets but hold paths.
            if not is_secret_key(k) or (path == "credential" and k in CREDENTIAL_PATH_KEYS):
                _check_jinja(f"{path}.{show_key(k)}" if path else show_key(k), v, errors)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_jinja(f"{path}[{i}]", v, errors)


def validate_spec(spec: Any) -> list[str]:
    """Every problem of a spec, one message each: '<field path>: <what is wrong; the fix>'."""
    if not isinstance(spec, dict):
        return [f"(top level): expected a mapping of settings, got {type_name(spec)}"]
    too_big = _size_problem(spec)
    if too_big:
        return [too_big]
    errors: list[str] = []
    _check_keys("", spec, TOP_KEYS, errors)
    for key in REQUIRED_TOP_KEYS:
        if key not in spec:
            errors.append(f"{key}: missing (required)")
    _check_jinja("", spec, errors)
    _check_project(spec, errors)
    if "framework" in spec:
        _check_choice("framework", spec["framework"], FRAMEWORKS, errors)
    kind = _check_authority(spec, errors) if "authority" in spec else None
    if spec.get("client_id") not in (None, ""):
        cid = spec["client_id"]
        if _require_str("client_id", cid, errors, "quote it"):
            if kind in MICROSOFT_KINDS and not is_guid(cid):
                errors.append(f"client_id: {show(cid)} is not an Entra application (client) id; "
                              "allowed: a GUID like 00000000-0000-0000-0000-000000000000, or "
                              "leave it out and set CLIENT_ID in .env later")
            elif not cid or any(c.isspace() for c in cid):
                errors.append(f"client_id: {show(cid)} must be non-empty without whitespace")
            elif strong_secret(cid):
                errors.append(f"client_id: {SECRET_SHOWN} looks like a client secret, not a "
                              f"client id; {SECRET_KEY_FIX.replace('this key', 'it')}")
            elif placeholder(cid):
                errors.append(f"client_id: {show(cid)} looks like a placeholder (it contains "
                              f"{placeholder(cid)}); put the real client id, or leave it out "
                              "and set CLIENT_ID in .env later")
            elif unsafe_id_chars(cid):
                errors.append(f"client_id: {show(cid)} contains {unsafe_id_chars(cid)}, which no "
                              "client id has (and a shell reading .env would run); give the "
                              "client id exactly as the provider shows it, made of "
                              f"{SAFE_ID_SHOWN}")
    if "credential" in spec:
        _check_credential(spec["credential"], kind, errors)
    for section, field, options in (("cache", "backend", CACHE_BACKENDS),):
        if section not in spec:
            continue
        value = spec[section]
        example = f"e.g. {section}: " + "{" + f"{field}: {options[0]}" + "}"
        if not _require_mapping(section, value, errors, example):
            continue
        _check_keys(section, value, (field,), errors)
        if field not in value:
            errors.append(f"{section}.{field}: missing; allowed: {choices(options)}")
        else:
            _check_choice(f"{section}.{field}", value[field], options, errors)
    names = _check_apis(spec, errors) if "downstream_apis" in spec else None
    if "sign_in_api" in spec:
        sia = spec["sign_in_api"]
        if _require_str("sign_in_api", sia, errors, 'use "" for none or the name of an API'):
            if sia and names is not None and sia not in names:
                errors.append(f"sign_in_api: {show(sia)} is not a configured API; allowed: "
                              f"{choices(['', *names])} ('' = sign in with openid/profile only)")
            elif sia and sia != GRAPH and _is_app_only(spec.get("downstream_apis"), sia):
                errors.append(f"sign_in_api: {show(sia)} is an app-only API: its token is the "
                              "app's own, never the user's; sign in with another API's scopes, "
                              "or '' for none")
    if "redirect_path" in spec:
        rp = spec["redirect_path"]
        if _require_str("redirect_path", rp, errors, "e.g. /getAToken"):
            bare = rp.rstrip("/") or "/"
            if not REDIRECT_RE.match(rp) or "//" in rp or "/./" in rp + "/" or "/../" in rp + "/":
                errors.append(f"redirect_path: {show(rp)} is not allowed; use a path starting "
                              "with '/' made of letters, digits and . _ ~ - / (e.g. /getAToken)")
            elif bare in APP_ROUTES or any((bare + "/").startswith(p) for p in APP_ROUTE_PREFIXES):
                errors.append(f"redirect_path: {show(rp)} clashes with the app's own routes "
                              f"({', '.join(APP_ROUTES)} and anything under /api/ or /static/); "
                              "choose another path, e.g. /getAToken")
    if "authorization" in spec:
        _check_authorization(spec["authorization"], kind, errors)
    return errors


