"""The rules package (template/msal_webapp_rules) as the generator uses it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, TEMPLATE

from generator import spec as gspec

R = gspec.rules()
API = "api://11111111-2222-3333-4444-555555555555"


def test_rules_come_from_the_template() -> None:
    """The generator uses the template's own rules package: the copy its hooks run."""
    assert Path(R.__file__).resolve() == (TEMPLATE / "msal_webapp_rules" / "__init__.py").resolve()
    assert gspec.template_dir().resolve() == TEMPLATE.resolve()


JINJA = re.compile(r"\{\{|\{%|\{#")


@pytest.mark.parametrize("hook", ["pre_gen_project.py", "post_gen_project.py"])
def test_hooks_have_jinja_only_in_their_literals(hook: str) -> None:
    """The hooks are thin: Jinja only in the literals that carry the context and the template
    directory (the rules package itself is never rendered)."""
    text = (TEMPLATE / "hooks" / hook).read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if JINJA.search(line)]
    literal = re.compile(r"""[A-Z_]+ = (r'''|")\{\{ [^{}]+ \}\}('''|")""")
    assert lines and all(literal.fullmatch(line) for line in lines), lines
    package = TEMPLATE / "msal_webapp_rules"
    assert not [p.name for p in package.glob("*.py") if JINJA.search(p.read_text("utf-8"))]


def test_rules_and_generator_pass_mypy_strict() -> None:
    """The rules package and the generator are typed: `mypy --strict` (pyproject's settings)."""
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert settings["tool"]["mypy"]["strict"] is True
    assert "template/msal_webapp_rules" in settings["tool"]["mypy"]["files"]
    result = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental"], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cookiecutter_json_matches_rules() -> None:
    ctx = json.loads((TEMPLATE / "cookiecutter.json").read_text(encoding="utf-8"))
    assert tuple(k for k in ctx if not k.startswith("_")) == R.CONTEXT_KEYS
    assert tuple(ctx["framework"]) == R.FRAMEWORKS
    assert tuple(ctx["authority_kind"]) == R.AUTHORITY_KINDS
    assert tuple(ctx["credential_kind"]) == R.CREDENTIAL_KINDS
    assert tuple(ctx["assertion_source"]) == R.ASSERTION_SOURCES
    assert ctx["assertion_callable"] == "" and ctx["credential_defaults"] == {}
    prompts = ctx["__prompts__"]
    assert set(prompts["credential_kind"]) == {"__prompt__", *R.CREDENTIAL_KINDS}
    assert set(prompts["assertion_source"]) == {"__prompt__", *R.ASSERTION_SOURCES}
    for key in ("assertion_source", "assertion_callable"):
        prompt = prompts[key]["__prompt__"] if key == "assertion_source" else prompts[key]
        assert "(assertion credentials only" in prompt, prompt
    assert tuple(ctx["cache_backend"]) == R.CACHE_BACKENDS
    assert ctx["entra_instance"] == R.DEFAULT_INSTANCE
    assert ctx["entra_tenant"] == R.DEFAULT_TENANT
    assert ctx["redirect_path"] == R.DEFAULT_REDIRECT_PATH
    assert ctx["graph_scopes"] == " ".join(R.DEFAULT_GRAPH_SCOPES)
    assert ctx["downstream_apis"] == {}
    assert ctx["authorization"] == {}
    assert "authorization" in prompts and "leave {} for none" in prompts["authorization"]


def test_example_context(spec: dict[str, Any]) -> None:
    assert gspec.spec_to_context(spec) == {
        "project_name": "Contoso Portal", "project_slug": "contoso-portal",
        "package_name": "contoso_portal", "framework": "flask", "authority_kind": "entra",
        "entra_instance": "https://login.microsoftonline.com", "entra_tenant": "organizations",
        "oidc_issuer": "", "authority_options": {}, "client_id": "",
        "credential_kind": "secret",
        "assertion_source": "token_file", "assertion_callable": "", "credential_defaults": {},
        "cache_backend": "memory", "call_graph": True, "graph_scopes": "User.Read",
        "graph_base_url": "", "graph_sdk": False,
        "downstream_apis": {"todo": {"base_url": "https://api.contoso.com/",
                                     "scopes": [f"{API}/Todo.Read"]}},
        "sign_in_api": "graph", "redirect_path": "/getAToken", "authorization": {},
    }


def test_defaults_and_normalisation(spec: dict[str, Any]) -> None:
    spec["authority"]["instance"] = "https://login.microsoftonline.us/"
    spec["downstream_apis"] = {"graph": {}}
    del spec["sign_in_api"]
    ctx = gspec.spec_to_context(spec)
    assert ctx["entra_instance"] == "https://login.microsoftonline.us"
    assert ctx["graph_scopes"] == "User.Read" and ctx["sign_in_api"] == "graph"
    spec["downstream_apis"] = {}
    ctx = gspec.spec_to_context(spec)
    assert ctx["call_graph"] is False and ctx["sign_in_api"] == "" and ctx["downstream_apis"] == {}


def test_graph_sdk_option(spec: dict[str, Any]) -> None:
    """downstream_apis.graph.sdk: a boolean of the 'graph' API only; the context's graph_sdk,
    and back from a cookiecutter context."""
    spec["downstream_apis"]["graph"]["sdk"] = True
    assert gspec.validate_spec(spec) == []
    ctx = gspec.spec_to_context(spec)
    assert ctx["graph_sdk"] is True
    assert R.context_to_spec(ctx)["downstream_apis"]["graph"]["sdk"] is True
    spec["downstream_apis"]["graph"]["sdk"] = "yes"
    assert gspec.validate_spec(spec) == [
        "downstream_apis.graph.sdk: expected true or false, got string 'yes'; sdk: true calls "
        "Graph through msgraph-sdk"]
    spec["downstream_apis"]["graph"]["sdk"] = False
    spec["downstream_apis"]["todo"]["sdk"] = True
    (problem,) = gspec.validate_spec(spec)
    assert problem.startswith("downstream_apis.todo.sdk: only the 'graph' API has an SDK page")
    assert R.context_problems({**ctx, "call_graph": False, "sign_in_api": ""}) == [
        "graph_sdk: only used when call_graph is true; set it to no"]


def test_oidc_context() -> None:
    spec = {"project_name": "Ünïcode App!", "framework": "flask",
            "authority": {"kind": "oidc", "issuer": "https://id.example.com/realms/acme"},
            "client_id": "web-app", "credential": {"kind": "secret"},
            "cache": {"backend": "filesystem"}, "downstream_apis": {},
            "redirect_path": "/auth/callback"}
    ctx = gspec.spec_to_context(spec)
    assert ctx["project_slug"] == "unicode-app" and ctx["package_name"] == "unicode_app"
    assert ctx["oidc_issuer"] == "https://id.example.com/realms/acme"
    assert ctx["client_id"] == "web-app" and ctx["redirect_path"] == "/auth/callback"


@pytest.mark.parametrize("mutate", [
    lambda s: None,
    lambda s: s.update(client_id="0000AAAA-0000-0000-0000-000000000000"),
    lambda s: s["authority"].update(tenant="contoso.onmicrosoft.com"),
    lambda s: s.update(sign_in_api="todo", redirect_path="/auth/redirect"),
    lambda s: s.update(downstream_apis={}, sign_in_api=""),
    lambda s: s.update(credential={"kind": "secret", "secret_file": "/run/secrets/s"}),
    lambda s: s.update(credential={"kind": "certificate", "certificate_file": "/c/app.pem",
                                   "private_key_file": "/c/app.key", "x5c": "chain"}),
    lambda s: s.update(credential={"kind": "certificate"}),
    lambda s: s.update(credential={"kind": "assertion", "source": "token_file"}),
    lambda s: s.update(credential={"kind": "assertion", "source": "token_file",
                                   "token_file": "/var/run/t"}),
    lambda s: s.update(credential={"kind": "assertion", "source": "managed_identity"}),
    lambda s: s.update(credential={"kind": "assertion", "source": "managed_identity",
                                   "managed_identity": "11111111-2222-3333-4444-555555555555"}),
    lambda s: s.update(credential={"kind": "assertion", "source": "callable",
                                   "callable": "contoso.credentials:signed_assertion"}),
])
def test_round_trip(spec: dict[str, Any], mutate: Any) -> None:
    mutate(spec)
    ctx = gspec.spec_to_context(spec)
    back = R.context_to_spec(ctx)
    assert R.validate_spec(back) == []
    assert R.spec_to_context(back) == ctx
    assert back["credential"] == spec["credential"]  # the credential comes back as it was given


@pytest.mark.parametrize(("scopes", "ok"), [
    (["User.Read", "Mail.Read"], True),
    (["https://graph.microsoft.com/User.Read", "Mail.Read"], True),
    (["https://graph.microsoft.com/.default"], True),
    (["00000003-0000-0000-c000-000000000000/User.Read"], True),
    (["User.ReadBasic.All", "Calendars.Read"], True),
    (["Calendars.Read"], False),  # the generated /profile page reads /me
    (["https://graph.microsoft.com/.default", "User.Read"], False),
    (["User.Read", "User.Read"], False),
    ([], False),
])
def test_graph_scopes(spec: dict[str, Any], scopes: list[str], ok: bool) -> None:
    spec["downstream_apis"]["graph"]["scopes"] = scopes
    assert (gspec.validate_spec(spec) == []) is ok


@pytest.mark.parametrize(("scope", "resource"), [
    ("User.Read", "https://graph.microsoft.com"),
    ("https://graph.microsoft.com/User.Read", "https://graph.microsoft.com"),
    (f"{API}/Todo.Read", API),
    ("https://api.contoso.com/x/Orders.Read", "https://api.contoso.com/x"),
    ("11111111-2222-3333-4444-555555555555/.default", "11111111-2222-3333-4444-555555555555"),
    ("api://x", None), ("api://x/", None), ("not-a-guid/Read", None),
])
def test_scope_resource(scope: str, resource: str | None) -> None:
    assert R.scope_resource(scope) == resource


def test_local_http_base_url_allowed(spec: dict[str, Any]) -> None:
    for url in ("http://localhost:5001/api", "http://127.0.0.1:8000/"):
        spec["downstream_apis"]["todo"]["base_url"] = url
        assert gspec.validate_spec(spec) == []


def test_context_quirks() -> None:
    ctx = gspec.spec_to_context(gspec.parse_spec(
        (TEMPLATE.parent / "examples" / "app.yaml").read_text()))
    ctx["call_graph"] = "yes"
    ctx["downstream_apis"] = {"todo": {"base_url": "https://a.com", "scopes": f"{API}/A {API}/B"}}
    spec = R.context_to_spec(ctx)
    assert spec["downstream_apis"]["todo"]["scopes"] == [f"{API}/A", f"{API}/B"]
    assert "graph" in spec["downstream_apis"]
    ctx["call_graph"] = "maybe"
    with pytest.raises(R.SpecError) as exc:
        R.context_to_spec(ctx)
    assert exc.value.messages == ["call_graph: 'maybe' is not a yes/no value; allowed: yes, no, "
                                  "true, false"]


def test_context_messages_use_variable_names() -> None:
    ctx = json.loads((TEMPLATE / "cookiecutter.json").read_text())
    ctx.update(project_slug="contoso-portal", package_name="contoso_portal", sign_in_api="graph",
               framework="flask", authority_kind="entra", credential_kind="secret",
               cache_backend="memory", entra_tenant="bad tenant", graph_scopes="User.Read openid")
    problems = R.context_problems(ctx)
    assert problems[0].startswith("entra_tenant: 'bad tenant'")
    assert problems[1].startswith("graph_scopes[1]: 'openid' is reserved")


def test_credential_context(spec: dict[str, Any]) -> None:
    """The credential's context keys: the kind, the assertion's source and callable (prompts),
    and the spec's optional fields as `credential_defaults` (variable -> default)."""
    spec["credential"] = {"kind": "assertion", "source": "managed_identity",
                          "managed_identity": "system"}
    ctx = gspec.spec_to_context(spec)
    assert {k: ctx[k] for k in ("credential_kind", "assertion_source", "assertion_callable",
                                "credential_defaults")} == {
        "credential_kind": "assertion", "assertion_source": "managed_identity",
        "assertion_callable": "",
        "credential_defaults": {"CLIENT_ASSERTION_MANAGED_IDENTITY": "system"}}
    spec["credential"] = {"kind": "certificate", "certificate_file": "/c/app.pfx", "x5c": "none"}
    ctx = gspec.spec_to_context(spec)
    assert ctx["credential_defaults"] == {"CLIENT_CERTIFICATE_FILE": "/c/app.pfx",
                                          "CLIENT_CERTIFICATE_X5C": "none"}
    assert ctx["assertion_source"] == "token_file" and ctx["assertion_callable"] == ""

    # Cookiecutter always has an assertion_source: it is ignored unless the kind is assertion.
    for source in R.ASSERTION_SOURCES:
        assert R.context_to_spec({**ctx, "assertion_source": source})["credential"] == {
            "kind": "certificate", "certificate_file": "/c/app.pfx", "x5c": "none"}


@pytest.mark.parametrize(("changes", "expected"), [
    ({"credential_kind": "assertion", "assertion_source": "callable"},
     "assertion_callable: missing (required when source is 'callable')"),
    ({"credential_kind": "assertion", "assertion_source": "callable",
      "assertion_callable": "no colon"}, "assertion_callable: 'no colon' is not an importable"),
    ({"assertion_callable": "contoso.a:b"},
     "assertion_callable: only used when credential.kind is 'assertion', not 'secret'"),
    ({"credential_kind": "assertion", "assertion_source": "token_file",
      "assertion_callable": "contoso.a:b"},
     "assertion_callable: only used when credential.source is 'callable', not 'token_file'"),
    ({"authority_kind": "oidc", "oidc_issuer": "https://id.example.com/r",
      "credential_kind": "assertion", "assertion_source": "managed_identity"},
     "assertion_source: 'managed_identity' needs authority.kind 'entra'"),
    ({"credential_kind": "certificate",
      "credential_defaults": {"CLIENT_CERTIFICATE_FILE": "/c/app.p12",
                              "CLIENT_PRIVATE_KEY_FILE": "/c/app.key"}},
     "credential_defaults.CLIENT_PRIVATE_KEY_FILE: not used with a PKCS#12 certificate_file"),
    ({"credential_defaults": {"CLIENT_CERTIFICATE_FILE": "/c/app.pem"}},
     "credential_defaults.CLIENT_CERTIFICATE_FILE: only used when credential.kind is "
     "'certificate', not 'secret'"),
    ({"credential_defaults": {"CLIENT_SECRET": "x"}},
     "credential_defaults.CLIENT_SECRET: secrets never go in the spec"),
    ({"credential_defaults": {"CLIENT_CREDENTIAL": "certificate"}},
     "credential_defaults.CLIENT_CREDENTIAL: set it with credential_kind"),
    ({"credential_defaults": {"CLIENT_ASERTION_FILE": "/t"}},
     "credential_defaults.CLIENT_ASERTION_FILE: unknown key 'CLIENT_ASERTION_FILE' (did you mean "
     "'CLIENT_ASSERTION_FILE'?)"),
    ({"credential_defaults": '{"CLIENT_SECRET_FILE": "/run/s"}'},
     "credential_defaults: given as text"),
    ({"credential_defaults": '{"CLIENT_SECRET_FILE": '},
     "credential_defaults: '{\"CLIENT_SECRET_FILE\": ' is not valid JSON"),
    ({"credential_defaults": ["CLIENT_SECRET_FILE"]},
     "credential_defaults: expected a JSON object (variable name -> default value)"),
])
def test_credential_context_problems(spec: dict[str, Any], changes: dict[str, Any],
                                     expected: str) -> None:
    """What the hook tells a cookiecutter user, in the context's own names."""
    ctx = gspec.spec_to_context(spec)
    problems = R.context_problems({**ctx, **changes})
    assert len(problems) == 1 and problems[0].startswith(expected), problems
