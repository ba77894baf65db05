"""The spec's schema: every choice, key, default and pattern the rules and the template share.

Choices are listed once here; template/cookiecutter.json mirrors them (a test keeps them equal).
"""

from __future__ import annotations

import re
import string
import unicodedata
from urllib.parse import urlsplit

__all__ = [
    "API_KEYS",
    "API_METHODS",
    "GRAPH_API_KEYS",
    "HEADER_NAME_RE",
    "MAX_API_TIMEOUT_SECONDS",
    "RESERVED_HEADERS",
    "UNSAFE_METHODS",
    "API_NAME_RE",
    "APP_ROUTES",
    "APP_ROUTE_PREFIXES",
    "ASSERTION_SOURCES",
    "AUTHORIZATION_KEYS",
    "AUTHORITY_KEYS",
    "AUTHORITY_OPTION_KEYS",
    "AUTHORITY_KINDS",
    "CACHE_BACKENDS",
    "CALLABLE_EXAMPLE",
    "CALLABLE_RE",
    "CONTEXT_KEYS",
    "CREDENTIAL_KEYS",
    "CREDENTIAL_KINDS",
    "CREDENTIAL_PATH_KEYS",
    "CREDENTIAL_VARIABLES",
    "DEFAULT_GRAPH_SCOPES",
    "DEFAULT_GROUPS_OVERAGE",
    "DEFAULT_INSTANCE",
    "SYSTEM_MANAGED_IDENTITY",
    "DEFAULT_REDIRECT_PATH",
    "DEFAULT_TENANT",
    "DOMAIN_RE",
    "DOTTED_NAME_RE",
    "ENTRA_SECRET_RE",
    "ENV_FILE_FIX",
    "FALSE_WORDS",
    "FRAMEWORKS",
    "GRAPH",
    "GRAPH_APP_ID",
    "GRAPH_BASE_URL",
    "GRAPH_ME_SCOPES",
    "GRAPH_RESOURCE",
    "GRAPH_ROOTS",
    "GRAPH_VERSIONS",
    "GROUPS_OVERAGE_CHOICES",
    "GROUP_ID_EXAMPLE",
    "GROUP_NAME_RE",
    "GUID_RE",
    "JINJA_MARKERS",
    "JSON_STRING_FIX",
    "JSON_STRING_RENDERS",
    "MAX_SPEC_DEPTH",
    "MAX_SPEC_NODES",
    "PACKAGE_RE",
    "PASSWORD_KEY_FIX",
    "PASSWORD_KEY_WORDS",
    "PATH_EXAMPLES",
    "PKCS12_SUFFIXES",
    "PLACEHOLDER_CHARS",
    "REDIRECT_RE",
    "REQUIRED_TOP_KEYS",
    "RESERVED_SCOPES",
    "ROLE_VALUE_CHARS",
    "ROLE_VALUE_MAX",
    "ROLE_VALUE_SHOWN",
    "SAFE_ID_CHARS",
    "SAFE_ID_SHOWN",
    "SECRET_KEY_FIX",
    "SECRET_KEY_WORDS",
    "SECRET_SHOWN",
    "SHADOWED_IMPORTS",
    "SLUG_RE",
    "SPEC_TO_CONTEXT_PATH",
    "SpecError",
    "TENANT_KEYWORDS",
    "TOP_KEYS",
    "TRUE_WORDS",
    "X5C_CHOICES",
    "default_graph_base_url",
    "env_file_problem",
    "graph_roots",
    "is_guid",
    "slugify",
    "unsafe_id_chars",
]

# --- choices: the one list of each (cookiecutter.json mirrors them; a test keeps them equal) ---
FRAMEWORKS: tuple[str, ...] = ("flask", "django", "fastapi")
AUTHORITY_KINDS: tuple[str, ...] = ("entra", "oidc", "b2c", "external_id")
CREDENTIAL_KINDS: tuple[str, ...] = ("secret", "certificate", "assertion")
ASSERTION_SOURCES: tuple[str, ...] = ("token_file", "managed_identity", "callable")
X5C_CHOICES: tuple[str, ...] = ("leaf", "chain", "none")
CACHE_BACKENDS: tuple[str, ...] = ("memory", "filesystem", "redis", "sql")
# authorization.groups_overage: whose token asks Microsoft Graph for a user's groups when the
# ID token has too many to list them: the user's own delegated token, or the app's.
GROUPS_OVERAGE_CHOICES: tuple[str, ...] = ("user", "app")

DEFAULT_INSTANCE = "https://login.microsoftonline.com"
DEFAULT_TENANT = "organizations"
DEFAULT_REDIRECT_PATH = "/getAToken"
GRAPH = "graph"
GRAPH_BASE_URL = "https://graph.microsoft.com/v1.0"
GRAPH_RESOURCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
# Microsoft Graph's roots in each cloud, by the sign-in host of that cloud (every host MSAL
# knows; learn.microsoft.com/graph/deployments). The US Government cloud has two Graph
# deployments on one sign-in host: L4 (GCC High) and L5 (DoD); L4 is the default. Other hosts
# MSAL knows (login.sovcloud-identity.fr/.de/.sg) have no Graph root documented: a spec for
# them names its Graph base URL. A host MSAL does not know is treated as the global cloud, as
# MSAL does (it asks the global cloud's instance discovery about it).
_GLOBAL_GRAPH = ("https://graph.microsoft.com",)
_US_GOV_GRAPH = ("https://graph.microsoft.us", "https://dod-graph.microsoft.us")
_CHINA_GRAPH = ("https://microsoftgraph.chinacloudapi.cn",)
GRAPH_ROOTS: dict[str, tuple[str, ...]] = {
    "login.microsoftonline.com": _GLOBAL_GRAPH,
    "login.microsoft.com": _GLOBAL_GRAPH,
    "login.windows.net": _GLOBAL_GRAPH,
    "sts.windows.net": _GLOBAL_GRAPH,
    "login.microsoftonline.us": _US_GOV_GRAPH,
    "login.usgovcloudapi.net": _US_GOV_GRAPH,
    "login-us.microsoftonline.com": _US_GOV_GRAPH,
    "login.partner.microsoftonline.cn": _CHINA_GRAPH,
    "login.chinacloudapi.cn": _CHINA_GRAPH,
    "login.sovcloud-identity.fr": (),
    "login.sovcloud-identity.de": (),
    "login.sovcloud-identity.sg": (),
}
# The Graph versions an app may call (the 'graph' API's base URL is <root>/<version>).
GRAPH_VERSIONS: tuple[str, ...] = ("v1.0", "beta")
DEFAULT_GRAPH_SCOPES: tuple[str, ...] = ("User.Read",)
RESERVED_SCOPES = frozenset({"openid", "profile", "offline_access"})
TENANT_KEYWORDS: tuple[str, ...] = ("organizations", "common", "consumers")
# "/logout/frontchannel": the front-channel logout URL's default path (core/settings.py).
# "/edit-profile": Azure AD B2C's profile-edit user flow (authority.kind b2c).
APP_ROUTES: tuple[str, ...] = ("/", "/login", "/logout", "/logout/frontchannel", "/profile", "/api",
                               "/static", "/edit-profile")
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
    "credential", "cache", "downstream_apis", "sign_in_api", "redirect_path", "authorization",
)
REQUIRED_TOP_KEYS: tuple[str, ...] = (
    "project_name", "framework", "authority", "credential", "cache", "downstream_apis",
)
AUTHORITY_KEYS: dict[str, tuple[str, ...]] = {
    "entra": ("kind", "tenant", "instance"),
    "oidc": ("kind", "issuer"),
    # authorities.py checks these and makes their URLs.
    "b2c": ("kind", "tenant", "domain", "sign_up_sign_in", "password_reset", "profile_edit"),
    "external_id": ("kind", "tenant", "domain", "tenant_id"),
}
# The authority fields the context carries in `authority_options` (b2c and external_id).
AUTHORITY_OPTION_KEYS: tuple[str, ...] = ("domain", "sign_up_sign_in", "password_reset",
                                          "profile_edit", "tenant_id")
API_KEYS: tuple[str, ...] = ("base_url", "scopes", "path", "method", "headers", "query",
                             "timeout", "app_only")
# The graph API's: the rest would not reach it (the context carries Graph's on its own keys, and
# /profile makes its own call).
GRAPH_API_KEYS: tuple[str, ...] = ("base_url", "scopes", "sdk")
# `sdk` (graph only): its /profile page through the Microsoft Graph SDK (msgraph-sdk) instead of
# a plain REST call.
# An API's default method: the /api/<name> page calls it on every visit of a link, so only safe
# methods (RFC 9110 section 9.2.1); the generated core/settings.py has the same list.
API_METHODS: tuple[str, ...] = ("GET", "HEAD", "OPTIONS")
UNSAFE_METHODS: tuple[str, ...] = ("POST", "PUT", "PATCH", "DELETE")
# Headers the app or its HTTP client sets itself (core/settings.py RESERVED_HEADERS).
RESERVED_HEADERS: frozenset[str] = frozenset({
    "authorization", "proxy-authorization", "host", "content-length", "transfer-encoding",
    "connection", "upgrade", "te", "trailer", "keep-alive"})
HEADER_NAME_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an RFC 9110 token
MAX_API_TIMEOUT_SECONDS = 600
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
# `managed_identity` names a user-assigned identity by its client id (a GUID). Entra's page
# "Configure an application to trust a managed identity" says only user-assigned identities can
# be an app's federated credential, so the system-assigned one is only taken when named.
SYSTEM_MANAGED_IDENTITY = "system"

AUTHORIZATION_KEYS: tuple[str, ...] = ("roles", "groups", "groups_overage")
DEFAULT_GROUPS_OVERAGE = GROUPS_OVERAGE_CHOICES[0]
# An app role's value (the app registration's appRoles[].value, what the `roles` claim carries),
# as Microsoft Graph's appRole resource documents it: at most 120 characters, letters A-Z a-z,
# digits and the ASCII punctuation below (every printable one but " and \), no space or other
# character, and not starting with '.'.
ROLE_VALUE_MAX = 120
ROLE_VALUE_CHARS = frozenset(string.ascii_letters + string.digits
                             + "!#$%&'()*+,-./:;<=>?@[]^_`{|}~")
ROLE_VALUE_SHOWN = ("letters A-Z a-z, digits and ! # $ % & ' ( ) * + , - . / : ; < = > ? @ [ ] "
                    "^ _ ` { | } ~")
# A group's name in the spec becomes GROUP_<NAME>_ID (its id per environment) and /groups/<name>.
GROUP_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
GROUP_ID_EXAMPLE = "3f0c2b1a-7d4e-4c2b-9a1e-2b3c4d5e6f70"

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
    "entra_instance", "entra_tenant", "oidc_issuer", "authority_options", "client_id",
    "credential_kind",
    "assertion_source", "assertion_callable", "credential_defaults", "cache_backend",
    "call_graph", "graph_scopes", "graph_base_url", "graph_sdk", "downstream_apis", "sign_in_api",
    "redirect_path", "authorization",
)
# Spec field path -> cookiecutter variable, to word messages for people running cookiecutter.
SPEC_TO_CONTEXT_PATH: tuple[tuple[str, str], ...] = (
    ("authority.kind", "authority_kind"),
    ("authority.tenant", "entra_tenant"),
    ("authority.instance", "entra_instance"),
    ("authority.issuer", "oidc_issuer"),
    *((f"authority.{key}", f"authority_options.{key}") for key in AUTHORITY_OPTION_KEYS),
    ("credential.kind", "credential_kind"),
    ("credential.source", "assertion_source"),
    ("credential.callable", "assertion_callable"),
    *((f"credential.{field}", f"credential_defaults.{variable}")
      for field, variable in CREDENTIAL_VARIABLES.items()),
    ("cache.backend", "cache_backend"),
    ("downstream_apis.graph.scopes", "graph_scopes"),
    ("downstream_apis.graph.base_url", "graph_base_url"),
    ("downstream_apis.graph.sdk", "graph_sdk"),
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


# The characters of a client id, an issuer URL or an instance URL: what real ones are made of.
# Anything else (the shell's $ ` ; & | ( ) ' " \\ and spaces among them) is refused: these values
# are written to uncommented lines of .env.example, which people also read with `set -a; . .env`.
SAFE_ID_CHARS = frozenset(string.ascii_letters + string.digits + "-._~:/@%+=")
SAFE_ID_SHOWN = "letters, digits and - . _ ~ : / @ % + ="
# The values written to .env.example (paths, API URLs and scopes too, on commented lines that
# people uncomment) are single-quoted there; what python-dotenv and a shell read differently in
# single quotes is refused (env_file_problem).
ENV_FILE_FIX = ("every value is written to .env.example in single quotes, which a shell and "
                "python-dotenv read alike only without ', ${, \\\\ or a final \\")


# Delegated Microsoft Graph permissions that allow GET /me.
GRAPH_ME_SCOPES = frozenset({"user.read", "user.readbasic.all", "user.read.all", "user.readwrite",
                             "user.readwrite.all", "directory.read.all",
                             "directory.readwrite.all"})


def graph_roots(instance: str) -> tuple[str, ...]:
    """Microsoft Graph's roots in the cloud of the Entra instance `instance` (https://<host>),
    the default first; () for a cloud whose Graph root is not known."""
    host = urlsplit(instance).hostname or ""
    return GRAPH_ROOTS.get(host, _GLOBAL_GRAPH)


def default_graph_base_url(instance: str) -> str:
    """The 'graph' API's base URL in the cloud of `instance`; "" if it has no known Graph."""
    roots = graph_roots(instance)
    return f"{roots[0]}/{GRAPH_VERSIONS[0]}" if roots else ""


def slugify(text: str) -> str:
    """ASCII slug: lower-case letters, digits and single '-' (close to cookiecutter's slugify)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def is_guid(value: str) -> bool:
    return bool(GUID_RE.match(value))


def unsafe_id_chars(value: str) -> str | None:
    """The characters of `value` outside SAFE_ID_CHARS, shown one by one; None if none."""
    found = sorted({c for c in value if c not in SAFE_ID_CHARS})
    return " ".join(repr(c) for c in found) if found else None


def env_file_problem(value: str) -> str | None:
    """Why `value` cannot be written to a .env file as '<value>' so that python-dotenv and a
    POSIX shell (`set -a; . .env`) read the same text; None when it can.

    In single quotes a shell takes every character as it is and a quote cannot be escaped;
    python-dotenv reads backslash escapes (\\\\ and \\') and expands ${VARIABLE} in any value.
    """
    if "'" in value:
        return "contains ', which would end the quoted value"
    if "${" in value:
        return "contains '${', which python-dotenv would expand as a variable (a shell would not)"
    if "\\\\" in value or value.endswith("\\"):
        return ("contains '\\\\' or ends with '\\', which python-dotenv would read as an escape "
                "(a shell would not)")
    if any(unicodedata.category(c).startswith("C") for c in value):
        return "contains a control character (newline, tab, ...)"
    return None
