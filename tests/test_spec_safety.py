"""Hostile or careless specs: YAML alias bombs, secrets, documentation placeholders.

The bounds are asserted by counting the nodes any code visits (containers that count what is
read from them), never by timing.
"""

from __future__ import annotations

import json
import re
import resource
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from baking import cli_command
from conftest import ROOT, write_spec
from dotenv import dotenv_values

from generator import cli, render
from generator import spec as gspec

R = gspec.rules()
SECRET = "Zq38Q~Xk2vP9sLmN4bR7tY1wE5uI0oA6dF3gH8jK"  # the shape of an Entra client secret
assert R.ENTRA_SECRET_RE.fullmatch(SECRET)


# ---------------------------------------------------------------------------- node counting
class TooManyNodes(AssertionError):
    pass


class Budget:
    """Counts nodes read from counting containers; stops the walk well past the bound."""

    def __init__(self, stop_at: int) -> None:
        self.count = 0
        self.stop_at = stop_at

    def tick(self) -> None:
        self.count += 1
        if self.count > self.stop_at:
            raise TooManyNodes(f"more than {self.stop_at} nodes visited")


class CountingDict(dict[Any, Any]):
    budget: Budget

    def __iter__(self) -> Iterator[Any]:
        for key in dict.__iter__(self):
            self.budget.tick()
            yield key

    def keys(self) -> Any:
        return list(iter(self))

    def items(self) -> Any:
        result = []
        for item in dict.items(self):
            self.budget.tick()
            result.append(item)
        return result

    def values(self) -> Any:
        return [value for _, value in self.items()]

    def __repr__(self) -> str:
        self.budget.tick()
        return dict.__repr__(self)  # calls repr() of each value, which counts again


class CountingList(list[Any]):
    budget: Budget

    def __iter__(self) -> Iterator[Any]:
        for item in list.__iter__(self):
            self.budget.tick()
            yield item

    def __getitem__(self, index: Any) -> Any:
        self.budget.tick()
        return list.__getitem__(self, index)

    def __repr__(self) -> str:
        self.budget.tick()
        return list.__repr__(self)


def counting(value: Any, budget: Budget, memo: dict[int, Any] | None = None) -> Any:
    """A copy of ``value`` made of counting containers, sharing what the original shares."""
    memo = {} if memo is None else memo
    if id(value) in memo:
        return memo[id(value)]
    if isinstance(value, dict):
        out: Any = CountingDict()
        out.budget = budget
        memo[id(value)] = out
        for key, item in dict.items(value):
            dict.__setitem__(out, key, counting(item, budget, memo))
        return out
    if isinstance(value, list):
        out = CountingList()
        out.budget = budget
        memo[id(value)] = out
        list.extend(out, [counting(item, budget, memo) for item in list.__iter__(value)])
        return out
    return value


def billion_laughs(levels: int = 9, where: str = "scopes") -> str:
    """About 1 KB of YAML that expands to 9**levels strings when walked."""
    lines = ['lol0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"lol{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    bomb = f"*l{levels - 1}"
    lines = ["x-anchors:", *("  " + line for line in lines)]
    lines += ["project_name: Laughs", "framework: flask", "authority: {kind: entra}",
              "credential: {kind: secret}", "cache: {backend: memory}", "downstream_apis:",
              "  todo:", "    base_url: " + (bomb if where == "base_url" else "https://a.example.com"),
              f"    scopes: {bomb if where == 'scopes' else '[api://a.example.com/Read]'}"]
    if where == "extra":
        lines.append(f"    extra: {bomb}")
    return "\n".join(lines) + "\n"


def test_billion_laughs_is_small_and_huge() -> None:
    text = billion_laughs()
    assert len(text) < 1200
    spec = gspec.parse_spec(text)  # PyYAML shares aliased objects: construction is cheap
    assert spec["x-anchors"]["lol8"][0] is spec["x-anchors"]["lol7"]


@pytest.mark.parametrize("where", ["scopes", "base_url", "extra"])
def test_validation_of_an_alias_bomb_is_bounded(where: str) -> None:
    budget = Budget(stop_at=20 * R.MAX_SPEC_NODES)
    spec = counting(gspec.parse_spec(billion_laughs(where=where)), budget)
    messages = R.validate_spec(spec)
    assert len(messages) == 1, messages
    assert "more than 10000 values" in messages[0] and "aliases" in messages[0]
    assert budget.count <= R.MAX_SPEC_NODES + 20, budget.count


def test_the_cli_refuses_an_alias_bomb_with_bounded_work(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    budget = Budget(stop_at=20 * R.MAX_SPEC_NODES)
    real_parse = gspec.parse_spec
    monkeypatch.setattr(gspec, "parse_spec",
                        lambda text, source="<spec>": counting(real_parse(text, source), budget))
    path = write_spec(tmp_path, billion_laughs())
    out = tmp_path / "out"
    assert cli.main(["new", str(path), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "more than 10000 values once its YAML aliases are expanded" in err
    assert not out.exists()
    assert 0 < budget.count <= R.MAX_SPEC_NODES + 20, budget.count


def _limit_memory() -> None:
    # If the walk ever expands the aliases again, fail with a MemoryError instead of taking
    # the machine's memory (seen before the bound: 375 MB and 73 s for 1 KB).
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def test_the_console_script_refuses_an_alias_bomb(tmp_path: Path) -> None:
    path = write_spec(tmp_path, billion_laughs(levels=12))
    done = subprocess.run([*cli_command(), "validate", str(path)], capture_output=True,
                          text=True, timeout=120, check=False,  # a safety net, not a measure
                          preexec_fn=_limit_memory)
    assert done.returncode == 2
    assert "aliases" in done.stderr and "Traceback" not in done.stderr


def test_the_hook_context_walk_is_bounded() -> None:
    budget = Budget(stop_at=20 * R.MAX_SPEC_NODES)
    spec = gspec.parse_spec(billion_laughs())
    ctx = gspec.spec_to_context(gspec.parse_spec((ROOT / "examples" / "app.yaml").read_text()))
    ctx["downstream_apis"] = {"todo": spec["downstream_apis"]["todo"]}
    problems = R.context_problems(counting(ctx, budget))
    assert len(problems) == 1 and "aliases" in problems[0]
    assert budget.count <= R.MAX_SPEC_NODES + 20


def test_anchors_that_reuse_a_scope_list_are_fine(tmp_path: Path) -> None:
    text = """\
project_name: Contoso Portal
framework: flask
authority: {kind: entra}
credential: {kind: secret}
cache: {backend: memory}
downstream_apis:
  todo:
    base_url: https://api.contoso.com/
    scopes: &todo ["api://11111111-2222-3333-4444-555555555555/Todo.Read"]
  todo_v2:
    base_url: https://api.contoso.com/v2/
    scopes: *todo
"""
    assert cli.main(["validate", str(write_spec(tmp_path, text))]) == 0


def test_merge_keys_are_refused_clearly(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    levels = ["m0: &m0 {a: 1, b: 2}"]
    levels += [f"m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}], k{i}: 1}}" for i in range(1, 40)]
    assert cli.main(["validate", str(write_spec(tmp_path, "\n".join(levels) + "\n"))]) == 2
    err = capsys.readouterr().err
    assert "spec.yaml:2:" in err and "merge keys ('<<') are not supported" in err


@pytest.mark.parametrize("depth", [60, 5000])
def test_deep_nesting_is_refused_without_a_traceback(
        tmp_path: Path, depth: int, capsys: pytest.CaptureFixture[str]) -> None:
    text = ("project_name: Deep\nframework: flask\nauthority: {kind: entra}\n"
            "credential: {kind: secret}\ncache: {backend: memory}\ndownstream_apis: {}\n"
            "extra: " + "[" * depth + "]" * depth + "\n")
    assert cli.main(["validate", str(write_spec(tmp_path, text))]) == 2
    err = capsys.readouterr().err
    assert re.search(r"nests mappings and lists (more than 40 levels|too) deep", err), err


# ---------------------------------------------------------------------------------- secrets
@pytest.mark.parametrize("path", [
    "client_secret", "secret", "password", "clientSecret", "api_key", "access_token",
    "credential.secret", "credential.client_secret", "authority.client_secret",
    "downstream_apis.todo.password", "cache.connection_string",
])
def test_a_secret_key_is_told_where_secrets_go(tmp_path: Path, spec: dict[str, Any], path: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    *parents, last = path.split(".")
    node = spec
    for key in parents:
        node = node[key]
    node[last] = SECRET
    assert cli.main(["validate", str(write_spec(tmp_path, spec))]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert lines == [f"error: {path}: secrets never go in the spec; set CLIENT_SECRET or "
                     "CLIENT_SECRET_FILE in the environment (or in .env, which is not "
                     "committed) and remove this key"], err
    assert "did you mean" not in err and SECRET not in err


# (value, the part that must never be shown: no 10 characters of it in a row)
SECRETS = [
    (SECRET, SECRET),
    ("eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXZhbHVl",
     "eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXZhbHVl"),
    ("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----",
     "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"),
    ("https://admin:Sup3rS3cretPassw0rd@api.contoso.com/", "Sup3rS3cretPassw0rd"),
    ("kP7mQ2xR9vL4nT8wZ3cY6bH1", "kP7mQ2xR9vL4nT8wZ3cY6bH1"),  # a random key
]


@pytest.mark.parametrize(("secret", "core"), SECRETS,
                         ids=["entra", "jwt", "pem", "url", "random"])
def test_no_message_echoes_a_secret_value(tmp_path: Path, spec: dict[str, Any],
                                          secret: str, core: str) -> None:
    """A secret pasted into every wrong place: each place is reported, the value never."""
    spec.update(client_id=secret, framework=secret, project_slug=secret, package_name=secret,
                sign_in_api=secret, redirect_path=secret, password=secret)
    spec["authority"]["tenant"] = secret
    spec["credential"]["kind"] = secret
    spec["cache"] = {"backend": secret, "token": secret}
    spec["downstream_apis"]["todo"] = {"base_url": secret, "scopes": [secret, "Todo.Read"]}
    spec["downstream_apis"]["graph"]["scopes"] = [secret]
    spec["downstream_apis"][secret] = {"base_url": secret, "scopes": [secret]}
    other = {**spec, "authority": secret, "credential": secret, "downstream_apis": [secret],
             "project_name": [secret, {"a": secret}]}
    fragments = [core[i:i + 10] for i in range(len(core) - 9)]
    for number, data in enumerate((spec, other)):
        path = write_spec(tmp_path, data, f"spec{number}.yaml")
        done = subprocess.run([*cli_command(), "validate", str(path)], capture_output=True,
                              text=True, check=False)
        assert done.returncode == 2
        errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
        fields = [line.split()[1] for line in errors]
        expected = (["password:", "framework:", "project_slug:", "client_id:",
                     "authority.tenant:", "credential.kind:", "cache.backend:", "cache.token:",
                     "downstream_apis.todo.base_url:", "downstream_apis.todo.scopes[0]:",
                     "sign_in_api:", "redirect_path:"] if number == 0 else
                    ["authority:", "credential:", "downstream_apis:", "project_name:"])
        assert set(expected) <= set(fields), done.stderr
        shown = [f for f in fragments if f in done.stderr + done.stdout]
        assert not shown, done.stderr


@pytest.mark.parametrize(("secret", "core"), SECRETS,
                         ids=["entra", "jwt", "pem", "url", "random"])
def test_no_credential_field_takes_or_echoes_a_secret(spec: dict[str, Any], secret: str,
                                                      core: str) -> None:
    """A secret pasted into each field of each credential kind: refused, never shown. Its
    file-path keys are named like secrets (secret_file, token_file, private_key_file) but are
    checked as paths; a password key is refused."""
    fragments = [core[i:i + 10] for i in range(len(core) - 9)]
    credentials = [
        ({"kind": "secret", "secret_file": secret}, ["credential.secret_file"]),
        ({"kind": "certificate", "certificate_file": secret, "private_key_file": secret,
          "x5c": secret, "password": secret},
         ["credential.certificate_file", "credential.private_key_file", "credential.x5c",
          "credential.password"]),
        ({"kind": "assertion", "source": "token_file", "token_file": secret},
         ["credential.token_file"]),
        ({"kind": "assertion", "source": "managed_identity", "managed_identity": secret},
         ["credential.managed_identity"]),
        ({"kind": "assertion", "source": "callable", "callable": secret},
         ["credential.callable"]),
        ({"kind": "assertion", "source": secret}, ["credential.source"]),
    ]
    for credential, fields in credentials:
        spec["credential"] = credential
        messages = gspec.validate_spec(spec)
        assert sorted(m.split(":")[0] for m in messages) == sorted(fields), messages
        assert not [f for f in fragments if any(f in m for m in messages)], messages
    spec["credential"] = {"kind": "certificate", "password": "hunter2"}
    assert gspec.validate_spec(spec) == [f"credential.password: {R.PASSWORD_KEY_FIX}"]


def test_the_hook_never_echoes_a_secret() -> None:
    ctx = gspec.spec_to_context(gspec.parse_spec((ROOT / "examples" / "app.yaml").read_text()))
    wrong_values = {**ctx, "client_id": SECRET, "entra_tenant": SECRET,
                    "graph_scopes": f"User.Read {SECRET}", "redirect_path": SECRET}
    problems = R.context_problems(wrong_values)
    assert [p.split(":")[0] for p in problems] == [
        "entra_tenant", "client_id", "graph_scopes[1]", "redirect_path"], problems
    assert not any(SECRET in p for p in problems), problems
    assert R.context_problems({**ctx, "client_secret": SECRET}) == [
        "client_secret: secrets never go in the spec; set CLIENT_SECRET or CLIENT_SECRET_FILE "
        "in the environment (or in .env, which is not committed) and remove this key"]


def test_a_client_secret_given_as_client_id_is_refused(spec: dict[str, Any]) -> None:
    spec["authority"] = {"kind": "oidc", "issuer": "https://id.example.com/realms/acme"}
    spec["client_id"] = SECRET  # an OIDC client id may be any word, but not an Entra secret
    (message,) = gspec.validate_spec(spec)
    assert message.startswith("client_id: ") and "looks like a client secret" in message
    assert SECRET not in message
    spec["client_id"] = "kP7mQ2xR9vL4nT8wZ3cY6bH1"  # e.g. an Auth0 client id: accepted
    assert gspec.validate_spec(spec) == []


# ----------------------------------------------------------------------------- placeholders
API = "api://11111111-2222-3333-4444-555555555555"


def _with(spec: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    """`spec` with the value at a dotted field path replaced."""
    *parents, last = field.split(".")
    node = spec
    for key in parents:
        node = node[key]
    node[last] = value
    return spec


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("downstream_apis.todo.scopes", ["api://<app-id>/Todo.Read"],
     "downstream_apis.todo.scopes[0]: 'api://<app-id>/Todo.Read' looks like a placeholder "
     "(it contains '<' '>')"),
    ("downstream_apis.todo.scopes", ["api://{app-id}/Todo.Read"], "contains '{' '}'"),
    ("downstream_apis.graph.scopes", ["https://graph.microsoft.com/<scope>"],
     "downstream_apis.graph.scopes[0]:"),
    ("downstream_apis.todo.scopes", [f"{API}/Todo Read"], "without spaces"),
    ("downstream_apis.todo.base_url", "https://<your-api>/", "downstream_apis.todo.base_url: "
     "'https://<your-api>/' looks like a placeholder"),
    ("authority", {"kind": "oidc", "issuer": "https://{host}/realms/acme"},
     "authority.issuer: 'https://{host}/realms/acme' looks like a placeholder"),
    ("client_id", "<client-id>", "client_id: '<client-id>' is not an Entra application"),
])
def test_placeholders_are_refused(spec: dict[str, Any], field: str, value: Any,
                                  expected: str) -> None:
    messages = gspec.validate_spec(_with(spec, field, value))
    assert len(messages) == 1 and expected in messages[0], messages


def test_an_oidc_placeholder_client_id_is_refused(spec: dict[str, Any]) -> None:
    spec["authority"] = {"kind": "oidc", "issuer": "https://id.example.com/realms/acme"}
    spec["client_id"] = "<client-id>"
    assert gspec.validate_spec(spec) == [
        "client_id: '<client-id>' looks like a placeholder (it contains '<' '>'); put the real "
        "client id, or leave it out and set CLIENT_ID in .env later"]


def _yaml_blocks(path: Path) -> list[Any]:
    text = path.read_text(encoding="utf-8")
    return [yaml.safe_load(block)
            for block in re.findall(r"^```yaml\n(.*?)^```", text, re.MULTILINE | re.DOTALL)]


@pytest.mark.parametrize("doc", ["README.md", "docs/spec.md"])
def test_the_documented_example_spec_validates(doc: str) -> None:
    specs = [block for block in _yaml_blocks(ROOT / doc)
             if isinstance(block, dict) and "project_name" in block]
    assert specs, f"no example spec found in {doc}"
    for spec in specs:
        assert gspec.validate_spec(spec) == []


# ------------------------------------------------------------------------- shell and .env files
OIDC = {"kind": "oidc", "issuer": "https://id.example.com/realms/acme"}


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("client_id", "$(touch pwned)", "client_id: '$(touch pwned)' must be non-empty without "
     "whitespace"),
    ("client_id", "$(id)", "client_id: '$(id)' contains '$' '(' ')', which no client id has"),
    ("client_id", "app`id`", "client_id: 'app`id`' contains '`'"),
    ("client_id", "app;id", "client_id: 'app;id' contains ';'"),
    ("client_id", "app|id&", "client_id: 'app|id&' contains '&' '|'"),
    ("client_id", "it's", "client_id: \"it's\" contains \"'\""),
    ("authority.issuer", "https://id.example.com/realms/$(id)",
     "authority.issuer: 'https://id.example.com/realms/$(id)' contains '$' '(' ')', which no "
     "issuer has"),
    ("authority.issuer", "https://id.example.com/realms/`id`;x",
     "authority.issuer: 'https://id.example.com/realms/`id`;x' contains ';' '`'"),
])
def test_shell_metacharacters_are_refused_in_ids(spec: dict[str, Any], field: str, value: str,
                                                 expected: str) -> None:
    """Client ids and issuers are written to uncommented lines of .env.example: no real one has
    a shell metacharacter, so none is accepted (the message names the field and the fix)."""
    spec["authority"] = dict(OIDC)
    if field == "client_id":
        spec["client_id"] = value
    else:
        spec["authority"]["issuer"] = value
    messages = gspec.validate_spec(spec)
    assert len(messages) == 1 and messages[0].startswith(expected), messages
    assert "whitespace" in expected or "letters, digits and - . _ ~ : / @ % + =" in messages[0]


def test_an_entra_instance_with_shell_metacharacters_is_refused(spec: dict[str, Any]) -> None:
    spec["authority"]["instance"] = "https://login$(id).example.com"
    assert gspec.validate_spec(spec) == [
        "authority.instance: 'https://login$(id).example.com' contains '$' '(' ')', which no "
        "host name has (and a shell reading .env would run); e.g. "
        "https://login.microsoftonline.com"]


@pytest.mark.parametrize("client_id", [
    "11111111-2222-3333-4444-555555555555", "my-portal", "kP7mQ2xR9vL4nT8wZ3cY6bH1",
    "0oa1b2c3d4EfGhIjK5d7", "123456789-abc.apps.googleusercontent.com",
    "https://app.example.com/client.json", "portal@acme", "base64+id==", "us-east-1_AbC~1",
])
def test_real_client_ids_are_accepted(spec: dict[str, Any], client_id: str) -> None:
    spec["authority"] = dict(OIDC)
    spec["client_id"] = client_id
    assert gspec.validate_spec(spec) == []


@pytest.mark.parametrize(("field", "value", "problem"), [
    ("credential.secret_file", "/run/secrets/it's", "contains ', which would end the quoted"),
    ("credential.secret_file", "\\\\server\\share\\secret", "contains '\\\\' or ends with '\\'"),
    ("credential.secret_file", "C:\\secrets\\", "contains '\\\\' or ends with '\\'"),
    ("downstream_apis.todo.base_url", "https://api.contoso.com/it's/", "contains '"),
    ("downstream_apis.todo.scopes", [f"{API}/Todo.${{X}}"],
     "contains '${', which python-dotenv would expand"),
])
def test_values_a_env_file_cannot_quote_are_refused(spec: dict[str, Any], field: str,
                                                    value: Any, problem: str) -> None:
    messages = gspec.validate_spec(_with(spec, field, value))
    assert len(messages) == 1 and problem in messages[0], messages
    assert messages[0].startswith(field) and "single quotes" in messages[0], messages


def test_the_env_quoted_filter_refuses_what_it_cannot_quote() -> None:
    from msal_webapp_rules.jinja import env_quoted

    assert env_quoted("a b $(c) `d`; e & f | g \\h") == "'a b $(c) `d`; e & f | g \\h'"
    for bad in ("it's", "${HOME}", "a\\\\b", "a\\", "a\nb"):
        with pytest.raises(ValueError, match="a value for a .env file"):
            env_quoted(bad)


# Hostile but valid: every character the rules accept in each value written to .env.example.
HOSTILE_PATH = "/run/secrets/a b;touch pwned;$(touch pwned)`touch pwned`|&*?!#\"\\x$HOME~%"
HOSTILE: dict[str, Any] = {
    "project_name": "Contoso Portal",
    "framework": "flask",
    "authority": {"kind": "oidc", "issuer": "https://id.example.com/realms/a~b%20c+d=e@f"},
    "client_id": "https://app.example.com/c~1%2F+x=y@z",
    "credential": {"kind": "certificate", "certificate_file": HOSTILE_PATH,
                   "private_key_file": "C:\\keys\\app (1).key"},
    "cache": {"backend": "memory"},
    "downstream_apis": {"todo": {
        "base_url": "https://api.contoso.com/v1/$(pwd)`pwd`;a&b|c!*?x=$HOME",
        "scopes": [f"{API}/$(pwd)", f"{API}/`pwd`;x&y|z"],
    }},
    "sign_in_api": "todo",
}


def _sourced(env_file: Path, cwd: Path) -> dict[str, str]:
    """The variables a POSIX shell sets from `set -a; . FILE`, as it gives them to a child."""
    script = 'set -a; . "$1"; exec "$2" -c "import json, os; print(json.dumps(dict(os.environ)))"'
    done = subprocess.run(["bash", "-c", script, "bash", str(env_file), sys.executable],
                          cwd=cwd, capture_output=True, text=True, check=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"})
    return dict(json.loads(done.stdout))


def test_a_shell_and_python_dotenv_read_the_env_file_alike(tmp_path: Path) -> None:
    """.env.example with hostile-but-valid values: sourced by bash (as it is, and with every
    example line uncommented, as people do) it runs nothing and sets exactly what
    python-dotenv (the app's reader) reads."""
    assert gspec.validate_spec(HOSTILE) == []
    project = render.render(gspec.spec_to_context(HOSTILE), tmp_path / "out",
                            gspec.template_dir())
    text = (project / ".env.example").read_text(encoding="utf-8")
    uncommented = tmp_path / "all.env"
    uncommented.write_text(re.sub(r"^# (?=[A-Z][A-Z0-9_]*=)", "", text, flags=re.MULTILINE),
                           encoding="utf-8")
    for env_file in (project / ".env.example", uncommented):
        expected = {k: v for k, v in dotenv_values(env_file, interpolate=True).items()
                    if v is not None}
        sourced = _sourced(env_file, tmp_path)
        assert {k: sourced.get(k) for k in expected} == expected, env_file.name
    assert not list(tmp_path.glob("pwned*"))
    values = dotenv_values(uncommented)
    assert values["CLIENT_ID"] == HOSTILE["client_id"]
    assert values["OIDC_AUTHORITY"] == HOSTILE["authority"]["issuer"]
    assert values["CLIENT_CERTIFICATE_FILE"] == HOSTILE_PATH
    assert values["API_TODO_BASE_URL"] == HOSTILE["downstream_apis"]["todo"]["base_url"]
    assert values["API_TODO_SCOPES"] == " ".join(HOSTILE["downstream_apis"]["todo"]["scopes"])


# ---------------------------------------------------------------------------- spec file size
def test_a_spec_file_over_the_limit_is_refused_before_parsing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 50 MB comment (once accepted after 53 s) is refused unread, naming the file, its size,
    the limit and the fix; a spec just under the limit is read."""
    example = (ROOT / "examples" / "app.yaml").read_text(encoding="utf-8")
    big = tmp_path / "big.yaml"
    with big.open("w", encoding="utf-8") as file:
        file.write(example + "# " + "x" * (50 * 2**20) + "\n")
    parsed: list[str] = []
    real_parse = gspec.parse_spec
    monkeypatch.setattr(gspec, "parse_spec",
                        lambda text, source="<spec>": parsed.append(source) or real_parse(text))
    with pytest.raises(gspec.SpecError) as refused:
        gspec.load_spec(big)
    size = big.stat().st_size
    assert refused.value.messages == [
        f"{big}: the spec file is {size:,} bytes, over the limit of 262,144 bytes (256 KiB; a "
        "spec is a few kilobytes of settings), refused before parsing; check that this is the "
        "spec you meant, and remove long comments or values"]
    assert parsed == []

    padding = gspec.MAX_SPEC_BYTES - len(example.encode()) - 2
    at_limit = write_spec(tmp_path, example + "#" + "x" * padding + "\n", name="limit.yaml")
    assert at_limit.stat().st_size == gspec.MAX_SPEC_BYTES
    assert gspec.load_spec(at_limit)["project_name"] == "Contoso Portal"
    at_limit.write_text(at_limit.read_text() + "\n")
    with pytest.raises(gspec.SpecError, match="262,145 bytes, over the limit"):
        gspec.load_spec(at_limit)


def test_an_endless_spec_file_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """A device or a pipe has no size to check first: at most the limit and one byte is read."""
    assert cli.main(["validate", "/dev/zero"]) == 2
    assert ("/dev/zero: the spec file is larger than the limit of 262,144 bytes"
            in capsys.readouterr().err)
