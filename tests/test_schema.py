"""The spec's JSON Schema (`msal-webapp schema`, docs/spec.schema.json) and `msal-webapp options`:
every valid spec is accepted, a spec the rules refuse for a field-level reason is refused too
wherever a JSON Schema can say it."""

from __future__ import annotations

import copy
import functools
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import shapes
from hypothesis import HealthCheck, given, settings

from generator import cli, json_schema, schema_cmd
from generator import spec as gspec

R = gspec.rules()
ROOT = Path(__file__).resolve().parents[1]
GUID = "3f0c2b1a-7d4e-4c2b-9a1e-2b3c4d5e6f70"
API = "api://11111111-2222-3333-4444-555555555555"


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    schema = json_schema.spec_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.fixture
def validator() -> jsonschema.Draft202012Validator:
    return _validator()


def _errors(validator: jsonschema.Draft202012Validator, spec: Any) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message[:200]}"
            for e in validator.iter_errors(spec)]


def test_shipped_schema_is_the_commands_output(capsys: pytest.CaptureFixture[str]) -> None:
    """docs/spec.schema.json is what `msal-webapp schema` prints (regenerate it with
    `msal-webapp schema > docs/spec.schema.json` when the rules change)."""
    assert cli.main(["schema"]) == 0
    printed = capsys.readouterr().out
    assert json.loads(printed)["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert (ROOT / json_schema.SCHEMA_FILE).read_text(encoding="utf-8") == printed


def test_schema_is_made_from_the_rules() -> None:
    """The choices come from schema.py: a new choice there shows in the schema."""
    props = json_schema.spec_schema()["properties"]
    assert props["framework"]["enum"] == list(R.FRAMEWORKS)
    assert props["cache"]["properties"]["backend"]["enum"] == list(R.CACHE_BACKENDS)
    assert props["authority"]["properties"]["kind"]["enum"] == list(R.AUTHORITY_KINDS)
    assert props["credential"]["properties"]["kind"]["enum"] == list(R.CREDENTIAL_KINDS)
    assert props["redirect_path"]["default"] == R.DEFAULT_REDIRECT_PATH
    assert set(props) == set(R.TOP_KEYS)


def test_patterns_are_plain() -> None:
    """Every pattern compiles, uses no Python-only syntax ((?P<...>, inline flags, \\A, \\Z) and
    no escape that ECMAScript's Unicode mode refuses (editors run ECMAScript patterns)."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "pattern" and isinstance(value, str):
                    found.append(value)
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json_schema.spec_schema())
    assert len(found) > 20
    for pattern in found:
        re.compile(pattern)
        assert not re.search(r"\(\?P|\(\?[aiLmsux]|\\[AZ]", pattern), pattern
        escapes = re.findall(r"\\(.)", re.sub(r"\\\\", "", pattern))
        assert set(escapes) <= set("^$\\.*+?()[]{}|/-dDsSwWbBtnrfvu"), (pattern, escapes)


def test_examples_validate_and_name_the_schema(validator: jsonschema.Draft202012Validator
                                               ) -> None:
    assert shapes.EXAMPLES
    for path in shapes.EXAMPLES:
        assert path.read_text(encoding="utf-8").startswith(
            "# yaml-language-server: $schema=../docs/spec.schema.json\n"), path
        assert _errors(validator, gspec.load_spec(path)) == [], path


def test_pairwise_shapes_validate(validator: jsonschema.Draft202012Validator) -> None:
    for shape in shapes.pairwise_shapes():
        assert _errors(validator, shape.spec) == [], shape


@settings(max_examples=20, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(shapes.specs())
def test_drawn_specs_validate(spec: dict[str, Any]) -> None:
    assert _errors(_validator(), spec) == []


def _changed(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """`base` with the field at dotted `path` set to `value` (... = removed)."""
    spec = copy.deepcopy(base)
    *parents, last = path.split(".")
    node = spec
    for part in parents:
        node = node.setdefault(part, {})
    if value is ...:
        node.pop(last, None)
    else:
        node[last] = value
    return spec


BAD: list[tuple[str, Any]] = [
    ("project_name", ""), ("project_name", "x" * 81), ("project_name", "A\nB"),
    ("project_name", 3), ("project_name", "{{ x }}"), ("project_slug", "Contoso"),
    ("project_slug", "a" * 51), ("package_name", "flask"), ("package_name", "class"),
    ("package_name", "json"), ("package_name", "9lives"), ("framework", "bottle"),
    ("framework", ...), ("color", "blue"),
    ("authority.kind", "saml"), ("authority.kind", ...), ("authority.tenant", "not a tenant"),
    ("authority.instance", "http://login.microsoftonline.com"),
    ("authority.instance", "https://login.microsoftonline.com/x"),
    ("authority.issuer", "https://id.example.com/r"), ("authority.sign_up_sign_in", "x"),
    ("client_id", "abc"), ("client_id", 5),
    ("credential.kind", "password"), ("credential.x5c", "all"),
    ("credential.secret_file", ""), ("credential.secret_file", "/a/it's"),
    ("credential.source", "token_file"), ("credential.certificate_file", "/c.pem"),
    ("cache.backend", "mongodb"), ("cache", ...), ("cache.ttl", 5),
    ("downstream_apis", []), ("downstream_apis", ...), ("downstream_apis.Bad-Name", {}),
    ("downstream_apis.graph.scopes", ["openid"]), ("downstream_apis.graph.scopes", []),
    ("downstream_apis.graph.scopes", "User.Read"), ("downstream_apis.graph.sdk", "yes"),
    ("downstream_apis.graph.retries", 3),
    ("downstream_apis.graph.base_url", "https://graph.microsoft.com/v2"),
    ("downstream_apis.todo.scopes", ["Todo.Read"]), ("downstream_apis.todo.base_url", ...),
    ("downstream_apis.todo.base_url", "ftp://api.contoso.com/"),
    ("downstream_apis.todo.method", "POST"), ("downstream_apis.todo.timeout", 0),
    ("downstream_apis.todo.timeout", 601), ("downstream_apis.todo.timeout", True),
    ("downstream_apis.todo.path", "/items"), ("downstream_apis.todo.path", "a/../b"),
    ("downstream_apis.todo.headers", {"Authorization": "x"}),
    ("downstream_apis.todo.headers", {"X-A": " padded"}),
    ("downstream_apis.todo.app_only", "yes"), ("downstream_apis.todo.sdk", True),
    ("sign_in_api", None), ("redirect_path", "/logout"), ("redirect_path", "/api/cb"),
    ("redirect_path", "no-slash"), ("redirect_path", "/a//b"),
    ("authorization", []), ("authorization.roles", ["Task Writer"]),
    ("authorization.roles", [".Admin"]), ("authorization.roles", "Admin"),
    ("authorization.groups", {"Finance": GUID}), ("authorization.groups", {"finance": "x"}),
    ("authorization.groups_overage", "both"), ("authorization.extra", 1),
]
# Refused by the rules for a reason a JSON Schema cannot state (json_schema.NOT_EXPRESSED).
NOT_EXPRESSIBLE: list[tuple[str, Any]] = [
    ("project_name", "1234"),  # a letter of any script
    ("sign_in_api", "nothere"),  # one of downstream_apis' names
    ("downstream_apis.todo.scopes", [f"{API}/A", "api://other/B"]),  # one resource
    ("downstream_apis.todo.scopes", [f"{API}/A", f"{API}/a"]),  # duplicates ignoring case
    ("downstream_apis.graph.scopes", ["Mail.Read"]),  # /profile needs a /me permission
    ("downstream_apis.graph.base_url", "https://graph.microsoft.us/v1.0"),  # another cloud
    ("authorization.roles", ["Admin", "admin"]),  # unique ignoring case
    ("credential.secret_file", "/run/secrets/<name>"),  # a placeholder
]


def _base() -> dict[str, Any]:
    base = gspec.load_spec(ROOT / "examples" / "app.yaml")
    base["downstream_apis"]["todo"]["timeout"] = 5
    return base


@pytest.mark.parametrize(("path", "value"), BAD, ids=[f"{p}={v!r}"[:60] for p, v in BAD])
def test_field_level_refusals_are_the_schemas_too(
        validator: jsonschema.Draft202012Validator, path: str, value: Any) -> None:
    spec = _changed(_base(), path, value)
    assert R.validate_spec(spec), "the rules accept it: not a bad spec"
    assert _errors(validator, spec), f"the schema accepts what the rules refuse: {path}"


@pytest.mark.parametrize(("path", "value"), NOT_EXPRESSIBLE,
                         ids=[f"{p}={v!r}"[:60] for p, v in NOT_EXPRESSIBLE])
def test_what_only_the_rules_refuse(validator: jsonschema.Draft202012Validator, path: str,
                                   value: Any) -> None:
    """The listed gaps are real (the rules refuse, the schema accepts): if the schema learns
    one, move it to BAD."""
    spec = _changed(_base(), path, value)
    assert R.validate_spec(spec)
    assert _errors(validator, spec) == []


@pytest.mark.parametrize(("kind_spec", "extra"), [
    ({"kind": "oidc", "issuer": "https://id.example.com/r"}, ("authority.tenant", "contoso.com")),
    ({"kind": "b2c", "tenant": "contoso", "sign_up_sign_in": "B2C_1_s"},
     ("authority.instance", "https://login.microsoftonline.com")),
    ({"kind": "b2c", "tenant": GUID, "sign_up_sign_in": "B2C_1_s"}, None),  # needs a domain
    ({"kind": "external_id", "tenant": "contoso", "domain": "login.contoso.com"}, None),
    ({"kind": "oidc", "issuer": "https://id.example.com/r"},
     ("authorization.groups", {"finance": GUID})),
], ids=["oidc-tenant", "b2c-instance", "b2c-guid-no-domain", "external-domain-no-id",
        "oidc-groups"])
def test_keys_of_another_kind_are_refused(validator: jsonschema.Draft202012Validator,
                                          kind_spec: dict[str, Any],
                                          extra: tuple[str, Any] | None) -> None:
    spec = _base()
    spec["authority"] = dict(kind_spec)
    spec["downstream_apis"].pop("graph")
    spec["sign_in_api"] = ""
    if extra is None:
        spec.pop("authorization")
    else:
        spec = _changed(spec, *extra)
        if extra[0] != "authorization.groups":
            spec.pop("authorization")
    assert R.validate_spec(spec)
    assert _errors(validator, spec)
    # ...and the same authority without the extra key is accepted by both.
    if extra is not None:
        clean = _changed(spec, extra[0], ...)
        assert R.validate_spec(clean) == [] and _errors(validator, clean) == []


def test_the_credential_kinds_keys(validator: jsonschema.Draft202012Validator) -> None:
    spec = _base()
    spec["credential"] = {"kind": "assertion", "source": "token_file",
                          "managed_identity": GUID}
    assert R.validate_spec(spec) and _errors(validator, spec)
    spec["credential"] = {"kind": "assertion", "source": "callable"}  # callable: missing
    assert R.validate_spec(spec) and _errors(validator, spec)
    spec["credential"]["callable"] = "contoso.credentials:signed_assertion"
    assert R.validate_spec(spec) == [] and _errors(validator, spec) == []


def test_options_lists_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["options"]) == 0
    text = capsys.readouterr().out
    assert text == schema_cmd.options_text()
    paths = [path.split()[0] for path, _, _ in schema_cmd.option_rows()]
    for key in R.TOP_KEYS:
        assert any(p == key or p.startswith(key + ".") for p in paths), key
    for key in {k for keys in R.AUTHORITY_KEYS.values() for k in keys}:
        assert f"authority.{key}" in paths
    for key in {"kind", *(k for keys in R.CREDENTIAL_KEYS.values() for k in keys)}:
        assert f"credential.{key}" in paths
    for key in R.API_KEYS:
        assert f"downstream_apis.<name>.{key}" in paths
    rows = {path.split()[0]: (values, default) for path, values, default
            in schema_cmd.option_rows()}
    assert rows["framework"] == (" | ".join(R.FRAMEWORKS), "required")
    assert rows["cache.backend"][0] == " | ".join(R.CACHE_BACKENDS)
    assert rows["redirect_path"][1] == f"default: {R.DEFAULT_REDIRECT_PATH}"
    assert rows["authority.tenant"][1].startswith(f"default: {R.DEFAULT_TENANT} for entra")
    assert rows["authority.issuer"][1] == "required"
    assert rows["authorization.groups_overage"] == (" | ".join(R.GROUPS_OVERAGE_CHOICES),
                                                    f"default: {R.DEFAULT_GROUPS_OVERAGE}")
    assert rows["downstream_apis.graph.scopes"][1] == 'default: ["User.Read"]'


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js (ECMAScript patterns)")
def test_patterns_compile_as_ecmascript_unicode_patterns(tmp_path: Path) -> None:
    """Editors run the patterns as ECMAScript regular expressions; in Unicode mode (the
    strictest: needless escapes are errors) every one must compile too."""
    script = (
        "const s = JSON.parse(require('fs').readFileSync(process.argv[1], 'utf8'));"
        "const bad = []; let n = 0;"
        "(function walk(x) { if (Array.isArray(x)) return x.forEach(walk);"
        " if (x && typeof x === 'object') for (const [k, v] of Object.entries(x)) {"
        "  if (k === 'pattern' && typeof v === 'string') { n++;"
        "   try { new RegExp(v, 'u'); } catch (e) { bad.push(v); } }"
        "  walk(v); } })(s);"
        "console.log(JSON.stringify({n, bad}));")
    made = subprocess.run(["node", "-e", script, str(ROOT / json_schema.SCHEMA_FILE)],
                          capture_output=True, text=True, check=True, timeout=60)
    result = json.loads(made.stdout)
    assert result["n"] > 20 and result["bad"] == []
