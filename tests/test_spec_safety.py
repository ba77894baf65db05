"""Hostile or careless specs: YAML alias bombs, secrets, documentation placeholders.

The bounds are asserted by counting the nodes any code visits (containers that count what is
read from them), never by timing.
"""

from __future__ import annotations

import re
import resource
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from baking import cli_command
from conftest import ROOT, write_spec

from generator import cli
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
    *parents, last = field.split(".")
    node = spec
    for key in parents:
        node = node[key]
    node[last] = value
    messages = gspec.validate_spec(spec)
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
