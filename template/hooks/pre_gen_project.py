"""Pre-generation hook: THE single copy of the spec validation rules (stdlib only).

Cookiecutter renders this file with Jinja and runs it as a separate process before any project
file is written. The only Jinja in this file is the raw string below; everything else is plain
Python, so `generator/` imports this module by path and the tests unit-test it unrendered.
Never write a Jinja delimiter (two braces, brace-percent, brace-hash) anywhere else in this file.

Public API (used by `generator/`):
    validate_spec(spec) -> list[str]      one message per problem, "<field path>: <problem>"
    spec_to_context(spec) -> dict         valid spec -> cookiecutter context (defaults filled in)
    context_to_spec(ctx) -> dict          cookiecutter context -> spec; raises SpecError
    context_problems(ctx) -> list[str]    everything wrong with a context, in its own key names
"""

from __future__ import annotations

import difflib
import ipaddress
import itertools
import json
import keyword
import re
import sys
import unicodedata
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

CONTEXT_JSON = r'''{{ cookiecutter | tojson }}'''

# --- choices: the one list of each (cookiecutter.json mirrors them; a test keeps them equal) ---
FRAMEWORKS: tuple[str, ...] = ("flask", "django", "fastapi")
AUTHORITY_KINDS: tuple[str, ...] = ("entra", "oidc")
CREDENTIAL_KINDS: tuple[str, ...] = ("secret", "certificate", "assertion")
ASSERTION_SOURCES: tuple[str, ...] = ("token_file", "managed_identity", "callable")
X5C_CHOICES: tuple[str, ...] = ("leaf", "chain", "none")
CACHE_BACKENDS: tuple[str, ...] = ("memory", "filesystem", "redis", "sql")

DEFAULT_INSTANCE = "https://login.microsoftonline.com"
DEFAULT_TENANT = "organizations"
DEFAULT_REDIRECT_PATH = "/getAToken"
GRAPH = "graph"
GRAPH_BASE_URL = "https://graph.microsoft.com/v1.0"
GRAPH_RESOURCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
DEFAULT_GRAPH_SCOPES: tuple[str, ...] = ("User.Read",)
RESERVED_SCOPES = frozenset({"openid", "profile", "offline_access"})
TENANT_KEYWORDS: tuple[str, ...] = ("organizations", "common", "consumers")
APP_ROUTES: tuple[str, ...] = ("/", "/login", "/logout", "/profile", "/api", "/static")
APP_ROUTE_PREFIXES: tuple[str, ...] = ("/api/", "/static/")
# Top-level imports the generated app and its tests need; a package with one of these names
# would shadow it. Standard-library module names are refused as well (sys.stdlib_module_names).
SHADOWED_IMPORTS = frozenset({
    "flask", "msal", "requests", "jwt", "tests", "devprovider", "cachelib", "filelock",
    "cachetools", "dotenv", "werkzeug", "jinja2", "itsdangerous", "flask_session",
    "cryptography", "trustme", "pytest", "conftest", "cookiecutter", "generator", "urllib3",
    "gunicorn", "certifi", "selenium", "msal_extensions", "redis", "sqlalchemy", "alembic",
    "psycopg", "pymysql", "django", "whitenoise", "fastapi",
    "starlette", "uvicorn", "httpx", "httpcore", "anyio", "sniffio", "multipart",
    "python_multipart", "pydantic", "manage",
})

TOP_KEYS: tuple[str, ...] = (
    "project_name", "project_slug", "package_name", "framework", "authority", "client_id",
    "credential", "cache", "downstream_apis", "sign_in_api", "redirect_path",
)
REQUIRED_TOP_KEYS: tuple[str, ...] = (
    "project_name", "framework", "authority", "credential", "cache", "downstream_apis",
)
AUTHORITY_KEYS: dict[str, tuple[str, ...]] = {
    "entra": ("kind", "tenant", "instance"),
    "oidc": ("kind", "issuer"),
}
API_KEYS: tuple[str, ...] = ("base_url", "scopes")
# credential: the keys of each kind besides `kind`. Of an assertion's, `token_file`,
# `managed_identity` and `callable` each belong to the source of the same name.
CREDENTIAL_KEYS: dict[str, tuple[str, ...]] = {
    "secret": ("secret_file",),
    "certificate": ("certificate_file", "private_key_file", "x5c"),
    "assertion": ("source", "token_file", "managed_identity", "callable"),
}
CREDENTIAL_PATH_KEYS: tuple[str, ...] = (
    "secret_file", "certificate_file", "private_key_file", "token_file",
)
PKCS12_SUFFIXES: tuple[str, ...] = (".pfx", ".p12")
DEFAULT_MANAGED_IDENTITY = "system"
# Spec field of `credential` -> the run-time variable whose default it bakes (config.py), and the
# key of the `credential_defaults` context mapping. `kind`, `source` and `callable` have context
# keys of their own (credential_kind, assertion_source, assertion_callable).
CREDENTIAL_VARIABLES: dict[str, str] = {
    "secret_file": "CLIENT_SECRET_FILE",
    "certificate_file": "CLIENT_CERTIFICATE_FILE",
    "private_key_file": "CLIENT_PRIVATE_KEY_FILE",
    "x5c": "CLIENT_CERTIFICATE_X5C",
    "token_file": "CLIENT_ASSERTION_FILE",
    "managed_identity": "CLIENT_ASSERTION_MANAGED_IDENTITY",
}

# Keys of template/cookiecutter.json (a test keeps them equal).
CONTEXT_KEYS: tuple[str, ...] = (
    "project_name", "project_slug", "package_name", "framework", "authority_kind",
    "entra_instance", "entra_tenant", "oidc_issuer", "client_id", "credential_kind",
    "assertion_source", "assertion_callable", "credential_defaults", "cache_backend",
    "call_graph", "graph_scopes", "downstream_apis", "sign_in_api", "redirect_path",
)
# Spec field path -> cookiecutter variable, to word messages for people running cookiecutter.
SPEC_TO_CONTEXT_PATH: tuple[tuple[str, str], ...] = (
    ("authority.kind", "authority_kind"),
    ("authority.tenant", "entra_tenant"),
    ("authority.instance", "entra_instance"),
    ("authority.issuer", "oidc_issuer"),
    ("credential.kind", "credential_kind"),
    ("credential.source", "assertion_source"),
    ("credential.callable", "assertion_callable"),
    *((f"credential.{field}", f"credential_defaults.{variable}")
      for field, variable in CREDENTIAL_VARIABLES.items()),
    ("cache.backend", "cache_backend"),
    ("downstream_apis.graph.scopes", "graph_scopes"),
)

GUID_RE = re.compile(r"^[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")
DOMAIN_RE = re.compile(
    r"^(?=.{1,253}$)(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]{2,63}$"
)
SLUG_RE = re.compile(r"^[a-z][a-z0-9-]*$")
PACKAGE_RE = re.compile(r"^[a-z_][a-z0-9_]*$")
API_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
REDIRECT_RE = re.compile(r"^/[A-Za-z0-9._~/-]+$")
# Cookiecutter renders every string of the context as a Jinja template: refuse delimiters.
JINJA_MARKERS: tuple[str, ...] = ("{" + "{", "{" + "%", "{" + "#")
# `cookiecutter ... downstream_apis='{...}'` passes the dict as TEXT. The hook parses and checks it,
# but the project templates iterate a mapping and cannot use text: until they can (e.g. through a
# fromjson filter in `_extensions`), a well-formed JSON string is refused with a clear fix.
JSON_STRING_RENDERS = False
JSON_STRING_FIX = ("downstream_apis: given as text (cookiecutter passes key=value from the "
                   "command line as a string), which the template cannot use; give it as a "
                   "mapping instead: "
                   "answer the prompt interactively, put it under default_context in a "
                   "--config-file YAML, or use `msal-webapp new SPEC.yaml`")
# Characters of documentation placeholders ('api://<app-id>/x', '{tenant}'), never in real values.
PLACEHOLDER_CHARS = "<>{}"
# A spec is a few dozen values. YAML aliases are expanded every time they are used, so aliases
# of aliases multiply ("billion laughs": 1 KB of text, billions of values): every walk over the
# spec is refused past these bounds before anything else looks at it.
MAX_SPEC_NODES = 10_000
MAX_SPEC_DEPTH = 40
# Normalised (lower-case, letters and digits only) parts of key names that hold secrets.
SECRET_KEY_WORDS: tuple[str, ...] = (
    "secret", "password", "passwd", "passphrase", "pwd", "apikey", "token", "privatekey",
    "accesskey", "signingkey", "connectionstring",
)
SECRET_KEY_FIX = ("secrets never go in the spec; set CLIENT_SECRET or CLIENT_SECRET_FILE in the "
                  "environment (or in .env, which is not committed) and remove this key")
SECRET_SHOWN = "<a value that looks like a secret, not shown>"
PASSWORD_KEY_WORDS: tuple[str, ...] = ("password", "passwd", "passphrase", "pwd")
PASSWORD_KEY_FIX = ("passwords never go in the spec; set CLIENT_CERTIFICATE_PASSWORD or "
                    "CLIENT_CERTIFICATE_PASSWORD_FILE in the environment (or in .env, which is "
                    "not committed) and remove this key")
# `package.module:function`, the form of CLIENT_ASSERTION_CALLABLE.
CALLABLE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
                         r":[A-Za-z_][A-Za-z0-9_]*$")
CALLABLE_EXAMPLE = "contoso.credentials:signed_assertion"
PATH_EXAMPLES: dict[str, str] = {
    "secret_file": "/run/secrets/client-secret",
    "certificate_file": "/run/secrets/app/client.pem",
    "private_key_file": "/run/secrets/app/client.key",
    "token_file": "/var/run/secrets/azure/tokens/azure-identity-token",
}
# Entra client secrets: three characters, a digit, 'Q~', then 31-34 more.
ENTRA_SECRET_RE = re.compile(r"[A-Za-z0-9_.~-]{3}[0-9]Q~[A-Za-z0-9_.~-]{31,34}")
DOTTED_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[._-][A-Za-z0-9]+)+$")
TRUE_WORDS = frozenset({"1", "true", "t", "yes", "y", "on"})
FALSE_WORDS = frozenset({"0", "false", "f", "no", "n", "off"})


class SpecError(ValueError):
    """Raised with every problem found (``messages``) when a context cannot become a spec."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("\n".join(messages))
        self.messages = messages


# ------------------------------------------------------------------------------------ helpers
def _strong_secret(value: str) -> bool:
    """A string in a credential format: an Entra client secret, a JWT, a PEM block."""
    return bool("-----BEGIN" in value or ENTRA_SECRET_RE.search(value)
                or re.match(r"eyJ[A-Za-z0-9_-]{10,}\.", value))


def looks_like_secret(value: str) -> bool:
    """Whether a string could be a credential, so that no message repeats it.

    Errs on the side of hiding: the message still names the field and the problem.
    """
    if _strong_secret(value):
        return True
    if "://" in value and "@" in value:  # user:password@host
        return True
    if len(value) < 20 or any(c.isspace() for c in value) or "/" in value or is_guid(value):
        return False
    classes = sum((any(c.islower() for c in value), any(c.isupper() for c in value),
                   any(c.isdigit() for c in value)))
    # Mixed-case letters and digits in one long word, but not a dotted name like Mail.ReadWrite2.
    return classes == 3 and not DOTTED_NAME_RE.match(value)


def is_secret_key(key: Any) -> bool:
    """Whether a key name says it holds a secret (client_secret, password, api_key, ...)."""
    if not isinstance(key, str):
        return False
    normalised = re.sub(r"[^a-z0-9]", "", key.lower())
    return any(word in normalised for word in SECRET_KEY_WORDS)


def _brief(value: Any, depth: int) -> str:
    """A short repr that visits a bounded number of nodes and hides secret-looking strings."""
    if isinstance(value, str):
        if looks_like_secret(value):
            return SECRET_SHOWN
        return repr(value[:80])
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    if isinstance(value, dict):
        if depth <= 0:
            return "{...}" if value else "{}"
        items = [f"{_brief(k, 0)}: {_brief(v, depth - 1)}"
                 for k, v in itertools.islice(value.items(), 4)]
        return "{" + ", ".join(items) + (", ..." if len(value) > 4 else "") + "}"
    if isinstance(value, list):
        if depth <= 0:
            return "[...]" if value else "[]"
        shown = [_brief(v, depth - 1) for v in itertools.islice(value, 4)]
        return "[" + ", ".join(shown) + (", ..." if len(value) > 4 else "") + "]"
    return f"<{type(value).__name__}>"


def _show(value: Any) -> str:
    text = _brief(value, 2)
    return text if len(text) <= 70 else text[:67] + "..."


def _key(key: Any) -> str:
    """A mapping key as it appears in a field path (bounded, secrets hidden)."""
    text = str(key) if isinstance(key, (str, int, float, bool)) or key is None else _show(key)
    if looks_like_secret(text):
        return SECRET_SHOWN
    return text if len(text) <= 40 else text[:37] + "..."


def _safe(text: str) -> str:
    """A value that passed its checks but is echoed in a message: hide it if it looks secret."""
    return SECRET_SHOWN if looks_like_secret(text) else text


def _placeholder(value: str) -> str | None:
    found = "".join(c for c in PLACEHOLDER_CHARS if c in value)
    return " ".join(repr(c) for c in found) if found else None


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


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "list",
            dict: "mapping"}.get(type(value), type(value).__name__)


def _choices(options: tuple[str, ...] | list[str]) -> str:
    return ", ".join(repr(o) for o in options)


def _unknown_key(path: str, key: Any, allowed: tuple[str, ...] | list[str]) -> str:
    where = f"{path}.{_key(key)}" if path else _key(key)
    if is_secret_key(key):
        return f"{where}: {SECRET_KEY_FIX}"
    msg = f"{where}: unknown key {_show(key)}"
    close = difflib.get_close_matches(str(key), list(allowed), n=1, cutoff=0.6)
    if close:
        msg += f" (did you mean {close[0]!r}?)"
    return msg + f"; allowed keys: {_choices(allowed)}"


def _check_keys(path: str, mapping: dict[str, Any], allowed: tuple[str, ...],
                errors: list[str]) -> None:
    for key in mapping:
        if key not in allowed:
            errors.append(_unknown_key(path, key, allowed))


def _require_str(path: str, value: Any, errors: list[str], hint: str) -> bool:
    if isinstance(value, str):
        return True
    errors.append(f"{path}: expected a string, got {_type_name(value)} {_show(value)}; {hint}")
    return False


def _require_mapping(path: str, value: Any, errors: list[str], hint: str) -> bool:
    if isinstance(value, dict):
        return True
    errors.append(f"{path}: expected a mapping, got {_type_name(value)} {_show(value)}; {hint}")
    return False


def _check_choice(path: str, value: Any, options: tuple[str, ...], errors: list[str]) -> bool:
    if isinstance(value, str) and value in options:
        return True
    errors.append(f"{path}: {_show(value)} is not a supported choice; allowed: {_choices(options)}")
    return False


def slugify(text: str) -> str:
    """ASCII slug: lower-case letters, digits and single '-' (close to cookiecutter's slugify)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def is_guid(value: str) -> bool:
    return bool(GUID_RE.match(value))


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
    marks = _placeholder(value)
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
def scope_resource(scope: str) -> str | None:
    """The resource a scope belongs to, normalised for comparison; None if malformed.

    ``api://x/Todo.Read`` -> ``api://x``; ``https://graph.microsoft.com/User.Read`` ->
    ``https://graph.microsoft.com``; a short name such as ``User.Read`` means Microsoft Graph;
    ``<app-id GUID>/Scope`` -> that GUID (the Graph app id means Graph).
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
        return GRAPH_RESOURCE if resource == GRAPH_RESOURCE else resource
    resource, name = scope.rsplit("/", 1)
    if not name or not is_guid(resource):
        return None
    resource = resource.lower()
    return GRAPH_RESOURCE if resource == GRAPH_APP_ID else resource


# Delegated Microsoft Graph permissions that allow GET /me.
GRAPH_ME_SCOPES = frozenset({"user.read", "user.readbasic.all", "user.read.all", "user.readwrite",
                             "user.readwrite.all", "directory.read.all",
                             "directory.readwrite.all"})


def _check_scopes(path: str, api: str, scopes: Any, errors: list[str]) -> None:
    full_form = "'api://<app-id>/<Scope>' or 'https://<host>/<Scope>'"
    if not isinstance(scopes, list):
        errors.append(f"{path}: expected a list of scope strings, got {_type_name(scopes)} "
                      f"{_show(scopes)}; e.g. [{full_form if api != GRAPH else 'User.Read'}]")
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
            errors.append(f"{p}: expected a string, got {_type_name(scope)} {_show(scope)}")
            continue
        if not scope or any(c.isspace() for c in scope):
            errors.append(f"{p}: {_show(scope)} is not a scope; a scope is one non-empty word "
                          "without spaces (list each scope separately)")
            continue
        if _strong_secret(scope):
            errors.append(f"{p}: {SECRET_SHOWN} looks like a secret, not a scope; "
                          f"{SECRET_KEY_FIX.replace('this key', 'it')}")
            continue
        marks = _placeholder(scope)
        if marks:
            errors.append(f"{p}: {_show(scope)} looks like a placeholder (it contains {marks}); "
                          "put the real scope: the API's application ID URI from its app "
                          "registration, '/', the scope name, e.g. "
                          "'api://11111111-2222-3333-4444-555555555555/Todo.Read'")
            continue
        if scope.lower() in RESERVED_SCOPES:
            errors.append(f"{p}: {_show(scope)} is reserved (MSAL refuses it); remove it - "
                          "openid, profile and offline_access are added automatically")
            continue
        if scope.lower() in seen:
            errors.append(f"{p}: {_show(scope)} is listed twice; list each scope once")
            continue
        seen.add(scope.lower())
        resource = scope_resource(scope)
        if resource is None:
            errors.append(f"{p}: {_show(scope)} is not a valid scope; use {full_form}"
                          + (" or a Graph short name like 'User.Read'" if api == GRAPH else ""))
            continue
        if api != GRAPH and "/" not in scope:
            errors.append(f"{p}: short scope {_show(scope)} means Microsoft Graph and is only "
                          f"valid for the 'graph' API; for API {api!r} use the full form "
                          f"{full_form}, e.g. 'api://<app-id>/{_safe(scope)}'")
            continue
        if api == GRAPH and resource != GRAPH_RESOURCE:
            errors.append(f"{p}: {_show(scope)} is not a Microsoft Graph scope; the 'graph' API "
                          "takes Graph scopes such as 'User.Read' or "
                          "'https://graph.microsoft.com/User.Read' (put other resources in "
                          "their own API)")
            continue
        resources.setdefault(resource, []).append(scope)
    if len(resources) > 1:
        listed = "; ".join(f"{_safe(r)}: {', '.join(_safe(x) for x in s)}"
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
            errors.append(f"{path}: {_show(defaults[0])} cannot be combined with other scopes "
                          f"of {_safe(resource)} "
                          f"({', '.join(_safe(s) for s in group if s not in defaults)}); "
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
            errors.append(f"project_name: {_show(name)} is {len(name)} characters; "
                          "allowed: at most 80")
        elif not any(c.isalpha() for c in name):
            errors.append(f"project_name: {_show(name)} must contain at least one letter")
        elif any(unicodedata.category(c).startswith("C") for c in name):
            errors.append(f"project_name: {_show(name)} contains a control character "
                          "(newline, tab, ...); use one line of plain text")
        else:
            name_ok = True

    slug: Any = spec.get("project_slug")
    if "project_slug" in spec:
        if _require_str("project_slug", slug, errors, "e.g. contoso-portal"):
            if not SLUG_RE.match(slug) or len(slug) > 50:
                errors.append(f"project_slug: {_show(slug)} is not allowed; use at most 50 "
                              "lower-case letters, digits and '-', starting with a letter "
                              "(e.g. 'contoso-portal')")
            slug = slug if SLUG_RE.match(slug) else None
        else:
            slug = None
    elif name_ok:
        slug = slugify(name)
        if not SLUG_RE.match(slug) or len(slug) > 50:
            errors.append(f"project_slug: the default derived from project_name, {_show(slug)}, "
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
        errors.append(f"{path}: {_show(pkg)} is not allowed; use lower-case letters, digits and "
                      "'_', not starting with a digit (e.g. 'contoso_portal')")
    elif keyword.iskeyword(pkg) or keyword.issoftkeyword(pkg):
        errors.append(f"{path}: {_show(pkg)} is a Python keyword; {fix}")
    elif pkg in SHADOWED_IMPORTS or pkg in sys.stdlib_module_names:
        errors.append(f"{path}: {_show(pkg)} would shadow the module {pkg!r} that the app or "
                      f"Python needs; {fix}")


def _check_authority(spec: dict[str, Any], errors: list[str]) -> str | None:
    auth = spec["authority"]
    if not _require_mapping("authority", auth, errors,
                            "e.g. authority: {kind: entra, tenant: organizations}"):
        return None
    if "kind" not in auth:
        errors.append(f"authority.kind: missing; allowed: {_choices(AUTHORITY_KINDS)}")
        _check_keys("authority", auth, tuple({k for ks in AUTHORITY_KEYS.values() for k in ks}),
                    errors)
        return None
    kind = auth["kind"]
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
                          f"{_choices(allowed)})")
        else:
            errors.append(_unknown_key("authority", key, allowed))
    if kind == "entra":
        if "tenant" in auth and _require_str("authority.tenant", auth["tenant"], errors,
                                             "e.g. tenant: organizations"):
            tenant = auth["tenant"]
            if not (is_guid(tenant) or tenant in TENANT_KEYWORDS or DOMAIN_RE.match(tenant)):
                errors.append(f"authority.tenant: {_show(tenant)} is not a tenant; allowed: a "
                              f"tenant id (GUID), {_choices(TENANT_KEYWORDS)}, or a domain "
                              "such as 'contoso.onmicrosoft.com'")
        if "instance" in auth and _require_str("authority.instance", auth["instance"], errors,
                                               f"e.g. {DEFAULT_INSTANCE}"):
            inst = auth["instance"]
            problem = _url_problem(inst, allow_local_http=False)
            if problem is None:
                parts = urlsplit(inst)
                if parts.path not in ("", "/") or parts.query or inst.endswith("?"):
                    problem = "must be just https://<host> (no path or query)"
            if problem:
                errors.append(f"authority.instance: {_show(inst)} {problem}; e.g. "
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
            if problem:
                errors.append(f"authority.issuer: {_show(iss)} {problem}; e.g. "
                              "https://id.example.com/realms/acme")
    return kind


def _check_apis(spec: dict[str, Any], errors: list[str]) -> list[str]:
    apis = spec["downstream_apis"]
    if not _require_mapping("downstream_apis", apis, errors,
                            "use {} for none, or name: {base_url: ..., scopes: [...]}"):
        return []
    names: list[str] = []
    for name, api in apis.items():
        path = f"downstream_apis.{_key(name)}"
        if not isinstance(name, str) or not API_NAME_RE.match(name):
            errors.append(f"{path}: API name {_show(name)} is not allowed; use 1-32 lower-case "
                          "letters, digits and '_', starting with a letter (it becomes a URL "
                          "segment and API_<NAME>_BASE_URL)")
            continue
        names.append(name)
        if not _require_mapping(path, api, errors, "e.g. {base_url: https://..., scopes: [...]}"):
            continue
        _check_keys(path, api, API_KEYS, errors)
        if "base_url" in api:
            url = api["base_url"]
            if _require_str(f"{path}.base_url", url, errors, "e.g. https://api.contoso.com/"):
                problem = _url_problem(url, allow_local_http=True)
                if problem:
                    errors.append(f"{path}.base_url: {_show(url)} {problem}")
                elif name == GRAPH and url.rstrip("/") != GRAPH_BASE_URL:
                    errors.append(f"{path}.base_url: {_show(url)} is not supported for 'graph'; "
                                  f"allowed: {GRAPH_BASE_URL} (or omit it); to call another URL "
                                  "configure it as an API with another name")
        elif name != GRAPH:
            errors.append(f"{path}.base_url: missing; e.g. base_url: https://api.contoso.com/")
        if "scopes" in api:
            _check_scopes(f"{path}.scopes", name, api["scopes"], errors)
        elif name != GRAPH:
            errors.append(f"{path}.scopes: missing; e.g. scopes: ['api://<app-id>/.default']")
    return names


def _path_problem(field: str, value: str) -> str | None:
    """What is wrong with a file path of the credential (its value already shown or hidden)."""
    if any(m in value for m in JINJA_MARKERS):
        return None  # reported by _check_jinja
    if _strong_secret(value) or looks_like_secret(value):
        return (f"{SECRET_SHOWN} looks like a secret, not a file path; secrets never go in the "
                "spec: put it in a file that is not committed and give that file's path here, "
                "or set it in the environment")
    example = f"e.g. {field}: {PATH_EXAMPLES[field]}"
    if not value.strip():
        return (f"must not be empty; give the file's path ({example}), or leave it out and set "
                f"{CREDENTIAL_VARIABLES[field]} in .env later")
    if value != value.strip():
        return f"{_show(value)} must not start or end with whitespace"
    if any(unicodedata.category(c).startswith("C") for c in value):
        return f"{_show(value)} contains a control character (newline, tab, ...); {example}"
    marks = _placeholder(value)
    if marks:
        return f"{_show(value)} looks like a placeholder (it contains {marks}); put the real path"
    return None


def _check_credential(cred: Any, authority_kind: str | None, errors: list[str]) -> None:
    """The `credential` section: its kind, the keys of that kind, and their values."""
    if not _require_mapping("credential", cred, errors, "e.g. credential: {kind: secret}"):
        return
    every_key = ("kind", *(k for keys in CREDENTIAL_KEYS.values() for k in keys))
    kind: str | None = None
    if "kind" not in cred:
        errors.append(f"credential.kind: missing; allowed: {_choices(CREDENTIAL_KINDS)}")
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
                          f"{_choices(allowed)})")
        elif isinstance(key, str) and any(
                w in re.sub(r"[^a-z0-9]", "", key.lower()) for w in PASSWORD_KEY_WORDS):
            errors.append(f"credential.{_key(key)}: {PASSWORD_KEY_FIX}")
        else:
            errors.append(_unknown_key("credential", key, allowed))
    present = [key for key in allowed if key in cred and key != "kind"]

    source: str | None = None
    if kind == "assertion":
        if "source" not in cred:
            errors.append("credential.source: missing (required when kind is 'assertion'); "
                          f"allowed: {_choices(ASSERTION_SOURCES)}")
        elif _check_choice("credential.source", cred["source"], ASSERTION_SOURCES, errors):
            source = cred["source"]
        if source == "managed_identity" and authority_kind == "oidc":
            errors.append("credential.source: 'managed_identity' needs authority.kind 'entra' "
                          "(only Entra ID accepts a managed identity's token as the app's "
                          "credential); with another OpenID Connect provider use 'token_file' "
                          "or 'callable'")
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
            if not (isinstance(value, str) and (value == DEFAULT_MANAGED_IDENTITY
                                                or is_guid(value))):
                errors.append(f"{path}: {_show(value)} is not allowed; use 'system' (the "
                              "system-assigned managed identity) or the client id (a GUID) of "
                              "a user-assigned managed identity")
        elif key == "callable" and _require_str(path, value, errors,
                                                f"e.g. callable: {CALLABLE_EXAMPLE}"):
            names = re.split(r"[.:]", value)
            if not CALLABLE_RE.match(value) or any(keyword.iskeyword(n) for n in names):
                errors.append(f"{path}: {_show(value)} is not an importable function; use "
                              "'package.module:function' (a module path, ':', then a function "
                              "taking no arguments that returns a signed JWT), e.g. "
                              f"{CALLABLE_EXAMPLE}")
    cert, key_file = cred.get("certificate_file"), cred.get("private_key_file")
    if (kind == "certificate" and isinstance(cert, str) and isinstance(key_file, str)
            and cert.lower().endswith(PKCS12_SUFFIXES)):
        errors.append(f"credential.private_key_file: not used with a PKCS#12 certificate_file "
                      f"({_show(cert)} holds the private key); remove private_key_file, or use "
                      "a PEM certificate_file")


def _check_jinja(path: str, value: Any, errors: list[str]) -> None:
    if isinstance(value, str):
        if any(m in value for m in JINJA_MARKERS):
            errors.append(f"{path}: {_show(value)} contains a Jinja delimiter, which cookiecutter "
                          "would evaluate; remove the brace sequence")
    elif isinstance(value, dict):
        for k, v in value.items():
            # A secret key is reported as such; its value is never shown. The credential's file
            # paths (secret_file, token_file, ...) are named like secrets but hold paths.
            if not is_secret_key(k) or (path == "credential" and k in CREDENTIAL_PATH_KEYS):
                _check_jinja(f"{path}.{_key(k)}" if path else _key(k), v, errors)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_jinja(f"{path}[{i}]", v, errors)


def validate_spec(spec: Any) -> list[str]:
    """Every problem of a spec, one message each: '<field path>: <what is wrong; the fix>'."""
    if not isinstance(spec, dict):
        return [f"(top level): expected a mapping of settings, got {_type_name(spec)}"]
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
            if kind == "entra" and not is_guid(cid):
                errors.append(f"client_id: {_show(cid)} is not an Entra application (client) id; "
                              "allowed: a GUID like 00000000-0000-0000-0000-000000000000, or "
                              "leave it out and set CLIENT_ID in .env later")
            elif not cid or any(c.isspace() for c in cid):
                errors.append(f"client_id: {_show(cid)} must be non-empty without whitespace")
            elif _strong_secret(cid):
                errors.append(f"client_id: {SECRET_SHOWN} looks like a client secret, not a "
                              f"client id; {SECRET_KEY_FIX.replace('this key', 'it')}")
            elif _placeholder(cid):
                errors.append(f"client_id: {_show(cid)} looks like a placeholder (it contains "
                              f"{_placeholder(cid)}); put the real client id, or leave it out "
                              "and set CLIENT_ID in .env later")
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
            errors.append(f"{section}.{field}: missing; allowed: {_choices(options)}")
        else:
            _check_choice(f"{section}.{field}", value[field], options, errors)
    names = _check_apis(spec, errors) if "downstream_apis" in spec else None
    if "sign_in_api" in spec:
        sia = spec["sign_in_api"]
        if _require_str("sign_in_api", sia, errors, 'use "" for none or the name of an API'):
            if sia and names is not None and sia not in names:
                errors.append(f"sign_in_api: {_show(sia)} is not a configured API; allowed: "
                              f"{_choices(['', *names])} ('' = sign in with openid/profile only)")
    if "redirect_path" in spec:
        rp = spec["redirect_path"]
        if _require_str("redirect_path", rp, errors, "e.g. /getAToken"):
            bare = rp.rstrip("/") or "/"
            if not REDIRECT_RE.match(rp) or "//" in rp or "/./" in rp + "/" or "/../" in rp + "/":
                errors.append(f"redirect_path: {_show(rp)} is not allowed; use a path starting "
                              "with '/' made of letters, digits and . _ ~ - / (e.g. /getAToken)")
            elif bare in APP_ROUTES or any((bare + "/").startswith(p) for p in APP_ROUTE_PREFIXES):
                errors.append(f"redirect_path: {_show(rp)} clashes with the app's own routes "
                              f"({', '.join(APP_ROUTES)} and anything under /api/ or /static/); "
                              "choose another path, e.g. /getAToken")
    return errors


# --------------------------------------------------------------------------------- mappings
def spec_to_context(spec: dict[str, Any]) -> dict[str, Any]:
    """Cookiecutter context (keys of cookiecutter.json) for a spec that validate_spec accepted."""
    auth = spec["authority"]
    kind = auth["kind"]
    slug = spec.get("project_slug") or slugify(spec["project_name"])
    apis = spec["downstream_apis"]
    graph = apis.get(GRAPH)
    graph_scopes = list((graph or {}).get("scopes") or DEFAULT_GRAPH_SCOPES)
    others = {
        name: {"base_url": api["base_url"], "scopes": list(api["scopes"])}
        for name, api in apis.items() if name != GRAPH
    }
    sign_in_api = spec.get("sign_in_api")
    if sign_in_api is None:
        sign_in_api = GRAPH if graph is not None else ""
    cred = spec["credential"]
    assertion = cred["kind"] == "assertion"
    instance = auth.get("instance", DEFAULT_INSTANCE) if kind == "entra" else DEFAULT_INSTANCE
    if instance.endswith("/"):
        instance = instance[:-1]
    return {
        "project_name": spec["project_name"],
        "project_slug": slug,
        "package_name": spec.get("package_name") or slug.replace("-", "_"),
        "framework": spec["framework"],
        "authority_kind": kind,
        "entra_instance": instance,
        "entra_tenant": auth.get("tenant", DEFAULT_TENANT) if kind == "entra" else DEFAULT_TENANT,
        "oidc_issuer": auth["issuer"] if kind == "oidc" else "",
        "client_id": spec.get("client_id") or "",
        "credential_kind": cred["kind"],
        "assertion_source": cred["source"] if assertion else ASSERTION_SOURCES[0],
        "assertion_callable": cred.get("callable", "") if assertion else "",
        # Only what the spec gives: the app has its own defaults for the rest.
        "credential_defaults": {variable: cred[field]
                                for field, variable in CREDENTIAL_VARIABLES.items()
                                if field in cred},
        "cache_backend": spec["cache"]["backend"],
        "call_graph": graph is not None,
        "graph_scopes": " ".join(graph_scopes),
        "downstream_apis": others,
        "sign_in_api": sign_in_api,
        "redirect_path": spec.get("redirect_path") or DEFAULT_REDIRECT_PATH,
    }


def _to_bool(key: str, value: Any, problems: list[str]) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    problems.append(f"{key}: {_show(value)} is not a yes/no value; allowed: yes, no, true, false")
    return False


def _scopes_from_context(value: Any) -> Any:
    return value.split() if isinstance(value, str) else value


def _context_mapping(ctx: dict[str, Any], key: str, what: str, example: str,
                     problems: list[str]) -> tuple[dict[Any, Any], bool]:
    """A mapping variable of the context, and whether it came as (JSON) text."""
    raw = ctx.get(key, {})
    as_text = isinstance(raw, str) and bool(raw.strip())
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError as exc:
            problems.append(f"{key}: {_show(raw)} is not valid JSON ({exc.msg} at column "
                            f"{exc.colno}); expected a JSON object like {example}")
            raw = {}
    if not isinstance(raw, dict):
        problems.append(f"{key}: expected a JSON object ({what}), got {_type_name(raw)} "
                        f"{_show(raw)}")
        raw = {}
    return raw, as_text


def context_to_spec(ctx: dict[str, Any]) -> dict[str, Any]:
    """Spec for a cookiecutter context (keys starting with '_' are cookiecutter's own).

    Handles cookiecutter's quirks: booleans as yes/no strings, downstream_apis and
    credential_defaults as JSON strings (from `key=value` on the command line), scopes as a
    space-separated string; assertion_source is ignored unless credential_kind is 'assertion'
    (cookiecutter always has a value for it), credential_defaults' variables become the
    credential's fields (CLIENT_CERTIFICATE_FILE -> certificate_file, ...). Raises SpecError
    when the context cannot be read as a spec at all; the spec itself is checked by validate_spec.
    """
    problems: list[str] = []
    for key in ctx:
        if not key.startswith("_") and key not in CONTEXT_KEYS:
            problems.append(_unknown_key("", key, CONTEXT_KEYS))
    kind = ctx.get("authority_kind", "entra")
    authority: dict[str, Any] = {"kind": kind}
    tenant = ctx.get("entra_tenant", DEFAULT_TENANT)
    instance = ctx.get("entra_instance", DEFAULT_INSTANCE)
    issuer = ctx.get("oidc_issuer", "")
    if kind == "oidc":
        if issuer not in ("", None):
            authority["issuer"] = issuer
        if tenant not in ("", DEFAULT_TENANT):
            authority["tenant"] = tenant
        if instance not in ("", DEFAULT_INSTANCE):
            authority["instance"] = instance
    else:
        authority["tenant"] = tenant
        authority["instance"] = instance
        if issuer not in ("", None):
            authority["issuer"] = issuer

    apis_raw, as_text = _context_mapping(
        ctx, "downstream_apis", "name -> base_url and scopes",
        '{"todo": {"base_url": "https://...", "scopes": ["api://<id>/S"]}}', problems)
    defaults_raw, defaults_as_text = _context_mapping(
        ctx, "credential_defaults", "variable name -> default value",
        '{"CLIENT_CERTIFICATE_FILE": "/run/secrets/app/client.pem"}', problems)
    credential_kind = ctx.get("credential_kind")
    credential: dict[str, Any] = {"kind": credential_kind}
    if credential_kind == "assertion":
        credential["source"] = ctx.get("assertion_source", ASSERTION_SOURCES[0])
    if ctx.get("assertion_callable") not in ("", None):
        credential["callable"] = ctx["assertion_callable"]  # refused unless source callable
    field_of = {variable: field for field, variable in CREDENTIAL_VARIABLES.items()}
    for name, value in defaults_raw.items():
        if name in field_of:
            credential[field_of[name]] = value
        elif name in ("CLIENT_CREDENTIAL", "CLIENT_ASSERTION_CALLABLE"):
            own = "credential_kind" if name == "CLIENT_CREDENTIAL" else "assertion_callable"
            problems.append(f"credential_defaults.{name}: set it with {own}, not in "
                            "credential_defaults; remove it")
        else:
            problems.append(_unknown_key("credential_defaults", name, list(field_of)))
    apis: dict[str, Any] = {}
    call_graph = _to_bool("call_graph", ctx.get("call_graph", True), problems)
    if GRAPH in apis_raw:
        problems.append("downstream_apis.graph: configure Microsoft Graph with call_graph and "
                        "graph_scopes, not inside downstream_apis; remove the 'graph' entry")
    if call_graph:
        apis[GRAPH] = {"scopes": _scopes_from_context(ctx.get("graph_scopes", "User.Read"))}
    for name, api in apis_raw.items():
        if name == GRAPH:
            continue
        if isinstance(api, dict) and "scopes" in api:
            api = {**api, "scopes": _scopes_from_context(api["scopes"])}
        apis[name] = api
    if problems:
        raise SpecError(problems)
    if as_text and not JSON_STRING_RENDERS:
        problems.append(JSON_STRING_FIX)
    if defaults_as_text and not JSON_STRING_RENDERS:
        problems.append(JSON_STRING_FIX.replace("downstream_apis", "credential_defaults", 1))

    spec: dict[str, Any] = {
        "project_name": ctx.get("project_name"),
        "project_slug": ctx.get("project_slug"),
        "package_name": ctx.get("package_name"),
        "framework": ctx.get("framework"),
        "authority": authority,
        "credential": credential,
        "cache": {"backend": ctx.get("cache_backend")},
        "downstream_apis": apis,
        "sign_in_api": ctx.get("sign_in_api", ""),
        "redirect_path": ctx.get("redirect_path", DEFAULT_REDIRECT_PATH),
    }
    if ctx.get("client_id") not in (None, ""):
        spec["client_id"] = ctx["client_id"]
    if problems:  # the JSON text itself was fine: report its content problems too
        raise SpecError([to_context_path(m) for m in validate_spec(spec)] + problems)
    return spec


def to_context_path(message: str) -> str:
    """Reword a spec message's leading field path with the cookiecutter variable name."""
    for spec_path, ctx_path in SPEC_TO_CONTEXT_PATH:
        if message.startswith(spec_path) and message[len(spec_path):len(spec_path) + 1] in ":[.":
            return ctx_path + message[len(spec_path):]
    return message


def context_problems(ctx: dict[str, Any]) -> list[str]:
    """Everything wrong with a cookiecutter context, worded with its variable names."""
    try:
        spec = context_to_spec(ctx)
    except SpecError as exc:
        return exc.messages
    return [to_context_path(m) for m in validate_spec(spec)]


def main() -> int:
    try:
        ctx = json.loads(CONTEXT_JSON)
    except json.JSONDecodeError as exc:  # only if this file was run without being rendered
        print(f"ERROR: the hook was not rendered by cookiecutter ({exc})")
        return 1
    problems = context_problems(ctx)
    for message in problems:
        print(f"ERROR: {message}")
    if problems:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
