"""The spec's JSON Schema (draft 2020-12), made from the rules' own constants (schema.py).

Editors use it to complete and check a spec as it is typed (the YAML language server reads a
`# yaml-language-server: $schema=...` line). It says what a JSON Schema can say: the keys, the
choices, each value's type and pattern, and the keys that only go with one kind. The rules say
more (NOT_EXPRESSED lists what only they check): a spec the schema accepts can still be refused
by `msal-webapp validate`, but a spec the rules accept is always accepted by the schema.

Patterns are written for both Python's `re` and ECMAScript (what editors run): no flags, no
Python-only syntax.
"""

from __future__ import annotations

import json
import keyword
import re
import sys
from typing import Any

import msal_webapp_rules as R
from msal_webapp_rules import authorities

__all__ = ["NOT_EXPRESSED", "SCHEMA_ID", "SCHEMA_FILE", "spec_schema", "text"]

SCHEMA_FILE = "docs/spec.schema.json"
SCHEMA_ID = "https://msal-webapp.invalid/spec.schema.json"  # a name, not fetched
DRAFT = "https://json-schema.org/draft/2020-12/schema"

# What the rules check and this schema does not (a JSON Schema cannot compare two values, parse
# a URL's parts, look for secrets by their look, or fold case the way the rules do).
NOT_EXPRESSED: tuple[str, ...] = (
    "project_name: at least one letter (in any script)",
    "project_slug/package_name: the defaults derived from project_name",
    "sign_in_api: must name one of downstream_apis (or be empty); not an app-only API",
    "scopes: one resource per API, '.default' alone, Graph short names only for 'graph', "
    "User.Read (or another /me permission) for 'graph', no duplicates ignoring case",
    "downstream_apis.graph.base_url: Microsoft Graph of authority.instance's cloud",
    "app_only: a single-tenant Entra authority, exactly one '<resource>/.default' scope",
    "B2C: no Microsoft Graph; a tenant id needs a domain; user flows differ from each other",
    "credential: file paths that look like secrets or placeholders; PKCS#12 with a key file",
    "secrets anywhere (keys named like secrets, values that look like one)",
    "authorization: roles unique ignoring case; each group id given once",
    "headers: names unique ignoring case",
    "the spec's size (values and nesting) after YAML aliases are expanded",
)

_GUID = R.GUID_RE.pattern


def _esc(text: str) -> str:
    """`text` as a literal in a pattern: only the metacharacters escaped (ECMAScript's
    Unicode mode refuses needless escapes such as \\- or \\~)."""
    return re.sub(r"([.^$*+?()\[\]{}|\\])", r"\\\1", text)


def _class(chars: str) -> str:
    """A character class of `chars`."""
    return "[" + re.sub(r"([\]\[\\^-])", r"\\\1", "".join(sorted(set(chars)))) + "]"


_NO_JINJA = {"not": {"pattern": "|".join(_esc(m) for m in R.JINJA_MARKERS)}}
# env_file_problem: what a shell and python-dotenv read differently in single quotes.
_ENV_FILE_SAFE = {"not": {"pattern": r"'|\$\{|\\\\|\\$|[\u0000-\u001f\u007f]"}}


def _anycase(regex: re.Pattern[str]) -> str:
    """`regex`'s pattern without its IGNORECASE flag: each letter outside a class becomes
    [xX]; a class's a-z/A-Z range gets the other case too."""
    source = regex.pattern
    if not regex.flags & re.IGNORECASE:
        return source
    out, i, in_class = [], 0, False
    while i < len(source):
        char = source[i]
        if char == "\\":
            out.append(source[i:i + 2])
            i += 2
            continue
        if in_class:
            if source.startswith("a-z", i) and "A-Z" not in source[i - 10:i + 10]:
                out.append("a-zA-Z")
                i += 3
                continue
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char.isalpha() and not (out and out[-1] == "{"):
            char = f"[{char.lower()}{char.upper()}]"
        out.append(char)
        i += 1
    return "".join(out)


def _words_pattern(words: list[str] | tuple[str, ...], *, anycase: bool = False) -> str:
    pattern = "^(?:" + "|".join(_esc(w) for w in words) + ")$"
    return _anycase(re.compile(pattern, re.IGNORECASE)) if anycase else pattern


def _safe_chars(extra_excluded: str = "") -> str:
    return _class("".join(c for c in R.SAFE_ID_CHARS if c not in extra_excluded))


def _string(description: str, **rules: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **rules}


def _path_value(field: str) -> dict[str, Any]:
    return _string(f"File path; the default of {R.CREDENTIAL_VARIABLES[field]} (e.g. "
                   f"{R.PATH_EXAMPLES[field]})", minLength=1, pattern=r"^\S(?:.*\S)?$",
                   allOf=[_ENV_FILE_SAFE, _NO_JINJA])


def _when(test: dict[str, Any], then: dict[str, Any]) -> dict[str, Any]:
    return {"if": test, "then": then}


def _kind_is(*kinds: str, key: str = "kind") -> dict[str, Any]:
    value = {"const": kinds[0]} if len(kinds) == 1 else {"enum": list(kinds)}
    return {"properties": {key: value}, "required": [key]}


def _host_suffix(*suffixes: str) -> str:
    return _anycase(re.compile("(?:" + "|".join(_esc(x) for x in suffixes) + ")$",
                               re.IGNORECASE))


def _authority() -> dict[str, Any]:
    tenant_name = _anycase(authorities.TENANT_NAME_RE)
    onmicrosoft = tenant_name[:-1] + _anycase(
        re.compile(_esc(authorities.ONMICROSOFT) + "$", re.IGNORECASE))
    domain = {"type": "string", "pattern": R.DOMAIN_RE.pattern,
              "description": "A custom URL domain, e.g. login.contoso.com"}
    values: dict[str, dict[str, Any]] = {
        "kind": {"enum": list(R.AUTHORITY_KINDS), "description": "Who signs users in"},
        "instance": _string(
            "The Entra cloud's sign-in host, https://<host> (entra only)",
            default=R.DEFAULT_INSTANCE, pattern=f"^https://{_safe_chars('/@')}+/?$"),
        "issuer": _string(
            "The OpenID Connect issuer URL (oidc only), e.g. https://id.example.com/realms/acme",
            pattern=(f"^https://{_safe_chars('/@')}+/{_safe_chars()}*"
                     f"{_safe_chars('/')}$")),
        "domain": domain,
        "tenant_id": _string("The External ID tenant's id (a GUID)", pattern=_GUID),
        **{flow: _string(f"A B2C user flow, e.g. {example}",
                         pattern=_anycase(authorities.USER_FLOW_RE))
           for flow, example in authorities.USER_FLOW_EXAMPLES.items()},
    }
    tenants: dict[str, dict[str, Any]] = {
        "entra": {"anyOf": [{"pattern": _GUID}, {"enum": list(R.TENANT_KEYWORDS)}, domain],
                  "type": "string", "default": R.DEFAULT_TENANT,
                  "description": "A tenant id (GUID), a domain, organizations, common or "
                                 "consumers"},
        "b2c": {"anyOf": [{"pattern": tenant_name}, {"pattern": onmicrosoft},
                          {"pattern": _GUID}], "type": "string",
                "not": {"enum": list(R.TENANT_KEYWORDS)},
                "description": "The B2C tenant's name (contoso or contoso.onmicrosoft.com)"},
        "external_id": {"anyOf": [{"pattern": tenant_name}, {"pattern": onmicrosoft}],
                        "type": "string", "not": {"enum": list(R.TENANT_KEYWORDS)},
                        "description": "The ciamlogin.com tenant's name (contoso)"},
    }
    required = {"entra": ["kind"], "oidc": ["kind", "issuer"],
                "b2c": ["kind", "tenant", "sign_up_sign_in"], "external_id": ["kind", "tenant"]}
    per_kind = []
    for kind, keys in R.AUTHORITY_KEYS.items():
        props = {k: (tenants[kind] if k == "tenant" else values[k]) for k in keys}
        then: dict[str, Any] = {"properties": props, "required": required[kind],
                                "additionalProperties": False}
        if kind == authorities.EXTERNAL_ID:
            # A custom domain's authority is https://<domain>/<tenant id>; the ciamlogin.com
            # host is made from the tenant, and a b2clogin.com host is B2C's.
            then["dependentRequired"] = {"domain": ["tenant_id"]}
            then["properties"]["domain"] = {**domain, "not": {"pattern": _host_suffix(
                authorities.CIAM_HOST_SUFFIX, authorities.B2C_HOST_SUFFIX)}}
        elif kind == authorities.B2C:
            # The sign-in host cannot be made from a tenant id: a custom domain is needed.
            then["allOf"] = [_when({"properties": {"tenant": {"pattern": _GUID}},
                                    "required": ["tenant"]}, {"required": ["domain"]})]
            then["properties"]["domain"] = {**domain, "not": {"pattern": _host_suffix(
                authorities.CIAM_HOST_SUFFIX)}}
        per_kind.append(_when(_kind_is(kind), then))
    every = {k: values.get(k, {"type": "string"}) for ks in R.AUTHORITY_KEYS.values()
             for k in ks}
    every["tenant"] = {"type": "string", "description": tenants["entra"]["description"]}
    return {"type": "object", "description": "Who signs users in and where",
            "properties": every, "required": ["kind"], "allOf": per_kind}


def _credential() -> dict[str, Any]:
    values: dict[str, dict[str, Any]] = {
        "kind": {"enum": list(R.CREDENTIAL_KINDS),
                 "description": "How the app proves its identity"},
        **{field: _path_value(field) for field in R.CREDENTIAL_PATH_KEYS},
        "x5c": {"enum": list(R.X5C_CHOICES),
                "description": "Which certificates go in the assertion's x5c header"},
        "source": {"enum": list(R.ASSERTION_SOURCES),
                   "description": "Where the signed assertion comes from"},
        "managed_identity": _string(
            "The user-assigned managed identity's client id, or 'system'",
            anyOf=[{"const": R.SYSTEM_MANAGED_IDENTITY}, {"pattern": _GUID}]),
        "callable": _string(f"package.module:function, e.g. {R.CALLABLE_EXAMPLE}",
                            pattern=R.CALLABLE_RE.pattern,
                            not_={"pattern": r"(?:^|[.:])(?:"
                                  + "|".join(keyword.kwlist) + r")(?:$|[.:])"}),
    }
    per_kind = []
    for kind, keys in R.CREDENTIAL_KEYS.items():
        then: dict[str, Any] = {"properties": {k: values[k] for k in ("kind", *keys)},
                                "additionalProperties": False}
        if kind == "assertion":
            then["required"] = ["source"]
            then["allOf"] = [
                _when(_kind_is(source, key="source"),
                      {"properties": {other: False for other in R.ASSERTION_SOURCES
                                      if other != source},
                       **({"required": ["callable"]} if source == "callable" else {})})
                for source in R.ASSERTION_SOURCES]
        per_kind.append(_when(_kind_is(kind), then))
    return {"type": "object", "description": "The app's credential (never a secret itself)",
            "properties": values, "required": ["kind"], "allOf": per_kind}


def _scopes(graph: bool) -> dict[str, Any]:
    scope = {"type": "string", "pattern": r"^\S+$",
             "not": {"pattern": _words_pattern(sorted(R.RESERVED_SCOPES), anycase=True)},
             "allOf": [_ENV_FILE_SAFE, _NO_JINJA]}
    if not graph:
        scope["pattern"] = r"^\S*/\S+$"  # the full form: resource/scope
    default = {"default": list(R.DEFAULT_GRAPH_SCOPES)} if graph else {}
    return {"type": "array", "items": scope, "minItems": 1, "uniqueItems": True, **default,
            "description": ("Microsoft Graph scopes, e.g. [User.Read]" if graph else
                            "The API's scopes, all of one resource, e.g. "
                            "['api://<app-id>/Scope']")}


# A header's value: no space or tab at either end, no control character but tab.
_HEADER_VALUE = (r"^[^ \t\u0000-\u001f\u007f]"
                 r"(?:[^\u0000-\u0008\u000a-\u001f\u007f]*[^ \t\u0000-\u001f\u007f])?$")


def _api(graph: bool) -> dict[str, Any]:
    base_url = _string("The API's base URL", pattern=r"^https?://[^\s#]+$",
                       allOf=[_ENV_FILE_SAFE, _NO_JINJA])
    if graph:
        return {"type": "object", "description": "Microsoft Graph, on the user's behalf",
                "properties": {
                    "base_url": _string("<Graph root>/" + " or /".join(R.GRAPH_VERSIONS)
                                        + " of the authority's cloud",
                                        pattern="^https?://[^\\s#]+/(?:"
                                        + "|".join(_esc(v) for v in R.GRAPH_VERSIONS)
                                        + ")/*$"),
                    "scopes": _scopes(graph=True),
                    "sdk": {"type": "boolean", "default": False,
                            "description": "Call Graph through msgraph-sdk on /profile"}},
                "additionalProperties": False}
    header_names = _words_pattern(sorted(R.RESERVED_HEADERS), anycase=True)
    strings = {"type": "string", "allOf": [_NO_JINJA]}
    return {
        "type": "object", "description": "A web API the app calls",
        "properties": {
            "base_url": base_url,
            "scopes": _scopes(graph=False),
            "path": _string("The default call's path, relative to base_url",
                            pattern=r"^(?:[^/\u0000-\u0020\u007f\\?#][^\u0000-\u0020\u007f\\?#]*)?$",
                            not_={"pattern": r"://|(?:^|/)\.\.?(?:/|$)"}),
            "method": _string("The default call's method (a safe one)",
                              pattern=_words_pattern(R.API_METHODS, anycase=True),
                              default=R.API_METHODS[0]),
            "headers": {"type": "object", "description": "Headers of the default call",
                        "propertyNames": {"pattern": R.HEADER_NAME_RE.pattern,
                                          "not": {"pattern": header_names}},
                        "additionalProperties": {**strings, "pattern": _HEADER_VALUE}},
            "query": {"type": "object", "description": "Query parameters of the default call",
                      "propertyNames": {"minLength": 1}, "additionalProperties": strings},
            "timeout": {"type": "number", "exclusiveMinimum": 0,
                        "maximum": R.MAX_API_TIMEOUT_SECONDS,
                        "description": "Seconds the default call may take"},
            "app_only": {"type": "boolean", "default": False,
                         "description": "Call with the app's own token (client credentials)"},
        },
        "required": ["base_url", "scopes"], "additionalProperties": False}


def _fix_not(schema: Any) -> Any:
    """`not_` (a Python keyword argument) -> `not`, everywhere."""
    if isinstance(schema, dict):
        return {("not" if k == "not_" else k): _fix_not(v) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_fix_not(v) for v in schema]
    return schema


def _authorization() -> dict[str, Any]:
    role_chars = "".join(sorted(R.ROLE_VALUE_CHARS))
    role = {"type": "string", "minLength": 1, "maxLength": R.ROLE_VALUE_MAX,
            "pattern": "^" + _class(role_chars) + "+$",
            "not": {"pattern": r"^\."}}
    return {
        "type": ["object", "null"],
        "description": "App roles and Entra groups the app checks ({} for none)",
        "properties": {
            "roles": {"type": "array", "items": role, "uniqueItems": True,
                      "description": "App role values, as in the app registration's appRoles"},
            "groups": {"type": "object", "propertyNames": {"pattern": R.GROUP_NAME_RE.pattern},
                       "additionalProperties": {"type": "string", "pattern": _GUID},
                       "description": "Group name -> the group's object id (Entra ID only)"},
            "groups_overage": {"enum": list(R.GROUPS_OVERAGE_CHOICES),
                               "default": R.DEFAULT_GROUPS_OVERAGE,
                               "description": "Whose token reads the groups of a user with too "
                                              "many to list"},
        },
        "dependentSchemas": {"groups_overage": {"required": ["groups"],
                                                "properties": {"groups": {"minProperties": 1}}}},
        "additionalProperties": False,
    }


def spec_schema() -> dict[str, Any]:
    """The JSON Schema of a spec, from the rules' constants."""
    routes = [r.rstrip("/") or "/" for r in R.APP_ROUTES]
    forbidden_packages = sorted({*keyword.kwlist, *keyword.softkwlist, *R.SHADOWED_IMPORTS,
                                 *sys.stdlib_module_names})
    microsoft = [k for k in R.AUTHORITY_KINDS if k != "oidc"]
    properties: dict[str, Any] = {
        "project_name": _string("The app's name, shown on its pages", minLength=1, maxLength=80,
                                pattern=r"^[^\u0000-\u001f\u007f-\u009f]*\S[^\u0000-\u001f"
                                r"\u007f-\u009f]*$", allOf=[_NO_JINJA]),
        "project_slug": _string("The project's folder name (default: from project_name)",
                                pattern=R.SLUG_RE.pattern, maxLength=50),
        "package_name": _string("The Python package's name (default: from project_slug)",
                                pattern=R.PACKAGE_RE.pattern,
                                not_={"enum": forbidden_packages}),
        "framework": {"enum": list(R.FRAMEWORKS), "description": "The web framework"},
        "authority": _authority(),
        "client_id": {"type": ["string", "null"],
                      "description": "The application (client) id (or set CLIENT_ID later)",
                      "pattern": "^(?:" + _safe_chars() + "+)?$"},
        "credential": _credential(),
        "cache": {"type": "object", "description": "Where the per-account token caches live",
                  "properties": {"backend": {"enum": list(R.CACHE_BACKENDS)}},
                  "required": ["backend"], "additionalProperties": False},
        "downstream_apis": {
            "type": "object", "description": "The web APIs the app calls, by name",
            "propertyNames": {"pattern": R.API_NAME_RE.pattern},
            "properties": {R.GRAPH: _api(graph=True)},
            "additionalProperties": _api(graph=False)},
        "sign_in_api": _string("The API whose scopes are consented at sign-in ('' for none; "
                               f"default: {R.GRAPH} when it is configured, else '')",
                               anyOf=[{"const": ""}, {"pattern": R.API_NAME_RE.pattern}]),
        "redirect_path": _string(
            "The redirect path registered in the app registration",
            default=R.DEFAULT_REDIRECT_PATH, pattern=R.REDIRECT_RE.pattern,
            not_={"anyOf": [
                {"pattern": r"//|/\.\.?(?:/|$)"},
                {"pattern": "^(?:" + "|".join(_esc(r) for r in routes if r != "/")
                            + ")?/*$"},
                {"pattern": "^(?:" + "|".join(_esc(p) for p in R.APP_ROUTE_PREFIXES)
                            + ")"}]}),
        "authorization": _authorization(),
    }
    schema: dict[str, Any] = {
        "$schema": DRAFT,
        "$id": SCHEMA_ID,
        "title": "msal-webapp spec",
        "description": "A spec for `msal-webapp new` (docs/spec.md). Generated from the rules "
                       "by `msal-webapp schema`; `msal-webapp validate` checks more.",
        "type": "object",
        "properties": properties,
        "required": list(R.REQUIRED_TOP_KEYS),
        "additionalProperties": False,
        "allOf": [
            # A Microsoft authority's client id is a GUID.
            _when({"properties": {"authority": _kind_is(*microsoft)}, "required": ["authority"]},
                  {"properties": {"client_id": {"anyOf": [
                      {"type": "null"}, {"const": ""}, {"pattern": _GUID}]}}}),
            # Named groups come from Entra ID's groups claim (not oidc or b2c).
            _when({"properties": {"authority": _kind_is("oidc", authorities.B2C)},
                   "required": ["authority"]},
                  {"properties": {"authorization": {"anyOf": [
                      {"type": "null"},
                      {"properties": {"groups": {"maxProperties": 0}}}]}}}),
            # Only Entra ID and External ID take a managed identity's token.
            _when({"properties": {"authority": _kind_is("oidc", authorities.B2C)},
                   "required": ["authority"]},
                  {"properties": {"credential": {"not": _kind_is("managed_identity",
                                                                 key="source")}}}),
        ],
    }
    return _fix_not(schema)  # type: ignore[no-any-return]


def text() -> str:
    """The schema as the file docs/spec.schema.json holds it."""
    return json.dumps(spec_schema(), indent=2, ensure_ascii=True) + "\n"
