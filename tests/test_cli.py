"""The `msal-webapp` CLI: every validation rule (exit 2, nothing written) and atomic rendering."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, make_mini_template, write_spec

import generator
from generator import cli, render
from generator import spec as gspec

Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    def mutate(spec: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = spec
        for key in parents:
            node = node[key]
        node[last] = value
    return mutate


def _del(path: str) -> Mutation:
    def mutate(spec: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = spec
        for key in parents:
            node = node[key]
        del node[last]
    return mutate


def _todo_scopes(*scopes: Any) -> Mutation:
    return _set("downstream_apis.todo.scopes", list(scopes))


def _oidc(**extra: Any) -> Mutation:
    return _set("authority", {"kind": "oidc", **extra})


def _cred(kind: str, **fields: Any) -> Mutation:
    return _set("credential", {"kind": kind, **fields})


API = "api://11111111-2222-3333-4444-555555555555"

# (id, mutation, substrings the one error line must contain: field path, bad value, allowed)
RULES: list[tuple[str, Mutation, list[str]]] = [
    ("unknown-top-key", _set("projct_slug", "x"), ["projct_slug", "did you mean 'project_slug'"]),
    ("unknown-nested-key", _set("cache.backnd", "memory"),
     ["cache.backnd", "did you mean 'backend'"]),
    ("unknown-api-key", _set("downstream_apis.todo.scope", ["x"]),
     ["downstream_apis.todo.scope", "allowed keys: 'base_url', 'scopes'"]),
    ("missing-required", _del("framework"), ["framework: missing (required)"]),
    ("missing-cache-backend", _set("cache", {}), ["cache.backend: missing", "'filesystem'"]),
    ("wrong-type-authority", _set("authority", "entra"), ["authority: expected a mapping"]),
    ("wrong-type-name", _set("project_name", 42), ["project_name: expected a string", "42"]),
    ("project-name-empty", _set("project_name", "  "), ["project_name: must not be empty"]),
    ("project-name-long", _set("project_name", "A" * 81), ["project_name:", "at most 80"]),
    ("project-name-no-letter", _set("project_name", "1234"),
     ["project_name: '1234'", "at least one letter"]),
    ("project-name-jinja", _set("project_name", "A {{ 7*7 }}"),
     ["project_name:", "Jinja delimiter"]),
    ("slug-bad", _set("project_slug", "Contoso_Portal"),
     ["project_slug: 'Contoso_Portal'", "starting with a letter"]),
    ("slug-too-long", _set("project_slug", "a" * 51), ["project_slug:", "at most 50"]),
    ("slug-default-digit", _set("project_name", "3D Viewer"),
     ["project_slug: the default", "'3d-viewer'", "set project_slug"]),
    ("package-bad", _set("package_name", "Contoso-Portal"),
     ["package_name: 'Contoso-Portal'", "lower-case letters, digits and '_'"]),
    ("package-keyword", _set("package_name", "import"), ["package_name: 'import'", "keyword"]),
    ("package-shadows-dep", _set("package_name", "flask"),
     ["package_name: 'flask'", "shadow", "e.g. 'contoso_portal'"]),
    ("package-shadows-stdlib", _set("package_name", "email"), ["package_name: 'email'", "shadow"]),
    ("package-default-shadows", _set("project_name", "Requests"),
     ["package_name (default from project_slug): 'requests'", "shadow"]),
    ("framework-choice", _set("framework", "rails"),
     ["framework: 'rails' is not a supported choice", "allowed: 'flask', 'django', 'fastapi'"]),
    ("authority-kind-choice", _set("authority.kind", "adfs"),
     ["authority.kind: 'adfs'", "allowed: 'entra', 'oidc'"]),
    ("authority-kind-missing", _set("authority", {"tenant": "common"}),
     ["authority.kind: missing", "'entra', 'oidc'"]),
    ("tenant-bad", _set("authority.tenant", "my tenant"),
     ["authority.tenant: 'my tenant'", "'organizations', 'common', 'consumers'"]),
    ("instance-http", _set("authority.instance", "http://login.microsoftonline.com"),
     ["authority.instance:", "https://"]),
    ("instance-path", _set("authority.instance", "https://login.microsoftonline.com/common"),
     ["authority.instance:", "no path"]),
    ("entra-with-issuer", _set("authority.issuer", "https://id.example.com/realms/a"),
     ["authority.issuer: only used when authority.kind is 'oidc'"]),
    ("oidc-missing-issuer", _oidc(), ["authority.issuer: missing"]),
    ("oidc-with-tenant", _oidc(issuer="https://id.example.com/r", tenant="common"),
     ["authority.tenant: only used when authority.kind is 'entra'"]),
    ("issuer-no-path", _oidc(issuer="https://id.example.com"),
     ["authority.issuer: 'https://id.example.com'", "path segment"]),
    ("issuer-trailing-slash", _oidc(issuer="https://id.example.com/realms/acme/"),
     ["authority.issuer:", "must not end with '/'"]),
    ("issuer-query", _oidc(issuer="https://id.example.com/r?x=1"), ["authority.issuer:", "query"]),
    ("issuer-http", _oidc(issuer="http://id.example.com/r"), ["authority.issuer:", "https://"]),
    ("client-id-not-guid", _set("client_id", "my-app"),
     ["client_id: 'my-app'", "GUID like 00000000-0000-0000-0000-000000000000"]),
    ("client-id-oidc-space", lambda s: (_oidc(issuer="https://id.example.com/r")(s),
                                        _set("client_id", "my app")(s)),
     ["client_id: 'my app'", "without whitespace"]),
    ("credential-choice", _set("credential.kind", "x509"),
     ["credential.kind: 'x509'", "allowed: 'secret', 'certificate', 'assertion'"]),
    # credential: each refusal names the field and the fix
    ("credential-kind-missing", _set("credential", {}),
     ["credential.kind: missing", "'secret', 'certificate', 'assertion'"]),
    ("credential-field-of-another-kind", _cred("secret", certificate_file="/run/app/c.pem"),
     ["credential.certificate_file: only used when credential.kind is 'certificate', not "
      "'secret'", "allowed keys for 'secret': 'kind', 'secret_file'"]),
    ("credential-unknown-key", _cred("certificate", thumbprint="AB12"),
     ["credential.thumbprint: unknown key", "'kind', 'certificate_file', 'private_key_file', "
      "'x5c'"]),
    ("credential-password-key", _cred("certificate", certificate_password="pw"),
     ["credential.certificate_password: passwords never go in the spec",
      "CLIENT_CERTIFICATE_PASSWORD or CLIENT_CERTIFICATE_PASSWORD_FILE"]),
    ("credential-path-type", _cred("secret", secret_file=42),
     ["credential.secret_file: expected a string", "/run/secrets/client-secret"]),
    ("credential-path-empty", _cred("secret", secret_file=""),
     ["credential.secret_file: must not be empty", "set CLIENT_SECRET_FILE in .env later"]),
    ("credential-path-whitespace", _cred("certificate", certificate_file=" /run/c.pem"),
     ["credential.certificate_file: ' /run/c.pem' must not start or end with whitespace"]),
    ("credential-path-control", _cred("certificate", private_key_file="/run/c\tkey"),
     ["credential.private_key_file:", "control character"]),
    ("credential-path-placeholder", _cred("assertion", source="token_file",
                                          token_file="/var/run/<token>"),
     ["credential.token_file: '/var/run/<token>' looks like a placeholder", "real path"]),
    ("credential-path-jinja", _cred("secret", secret_file="/run/{{ name }}"),
     ["credential.secret_file:", "Jinja delimiter"]),
    ("credential-path-secret", _cred("secret", secret_file="kP7mQ2xR9vL4nT8wZ3cY6bH1"),
     ["credential.secret_file: <a value that looks like a secret, not shown>",
      "not a file path", "give that file's path"]),
    ("credential-pkcs12-with-key", _cred("certificate", certificate_file="/run/app/c.PFX",
                                         private_key_file="/run/app/c.key"),
     ["credential.private_key_file: not used with a PKCS#12 certificate_file",
      "remove private_key_file, or use a PEM certificate_file"]),
    ("credential-x5c", _cred("certificate", x5c="full"),
     ["credential.x5c: 'full' is not a supported choice", "'leaf', 'chain', 'none'"]),
    ("credential-source-missing", _cred("assertion"),
     ["credential.source: missing (required when kind is 'assertion')",
      "'token_file', 'managed_identity', 'callable'"]),
    ("credential-source-choice", _cred("assertion", source="env"),
     ["credential.source: 'env' is not a supported choice"]),
    ("credential-managed-identity-oidc",
     lambda s: (_oidc(issuer="https://id.example.com/r")(s),
                _cred("assertion", source="managed_identity")(s)),
     ["credential.source: 'managed_identity' needs authority.kind 'entra'",
      "use 'token_file' or 'callable'"]),
    ("credential-managed-identity-malformed",
     _cred("assertion", source="managed_identity", managed_identity="my-identity"),
     ["credential.managed_identity: 'my-identity'", "'system'", "client id (a GUID)"]),
    ("credential-key-of-another-source",
     _cred("assertion", source="token_file", callable="contoso.credentials:signed_assertion"),
     ["credential.callable: only used when credential.source is 'callable', not "
      "'token_file'; remove it"]),
    ("credential-callable-without-assertion", _cred("secret", callable="contoso.a:b"),
     ["credential.callable: only used when credential.kind is 'assertion'"]),
    ("credential-callable-missing", _cred("assertion", source="callable"),
     ["credential.callable: missing (required when source is 'callable')",
      "contoso.credentials:signed_assertion"]),
    ("credential-callable-malformed",
     _cred("assertion", source="callable", callable="contoso.credentials.signed_assertion"),
     ["credential.callable: 'contoso.credentials.signed_assertion' is not an importable "
      "function", "'package.module:function'"]),
    ("credential-callable-keyword",
     _cred("assertion", source="callable", callable="contoso.class:sign"),
     ["credential.callable: 'contoso.class:sign' is not an importable function"]),
    ("cache-choice", _set("cache.backend", "mongodb"),
     ["cache.backend: 'mongodb'", "allowed: 'memory', 'filesystem', 'redis', 'sql'"]),
    ("apis-wrong-type", _set("downstream_apis", ["graph"]),
     ["downstream_apis: expected a mapping"]),
    ("api-name", _set("downstream_apis.To-Do", {"base_url": "https://x.com", "scopes": ["a/b"]}),
     ["downstream_apis.To-Do: API name 'To-Do'", "lower-case letters, digits and '_'"]),
    ("base-url-missing", _del("downstream_apis.todo.base_url"),
     ["downstream_apis.todo.base_url: missing"]),
    ("base-url-http", _set("downstream_apis.todo.base_url", "http://api.contoso.com"),
     ["downstream_apis.todo.base_url: 'http://api.contoso.com'", "localhost"]),
    ("base-url-no-host", _set("downstream_apis.todo.base_url", "https:///x"),
     ["downstream_apis.todo.base_url:", "no host"]),
    ("base-url-fragment", _set("downstream_apis.todo.base_url", "https://api.contoso.com/#x"),
     ["downstream_apis.todo.base_url:", "fragment"]),
    ("base-url-scheme", _set("downstream_apis.todo.base_url", "ftp://api.contoso.com"),
     ["downstream_apis.todo.base_url:", "https://"]),
    ("base-url-malformed", _set("downstream_apis.todo.base_url", "https://[::1"),
     ["downstream_apis.todo.base_url:", "not a valid URL"]),
    ("graph-base-url", _set("downstream_apis.graph.base_url", "https://graph.microsoft.us/v1.0"),
     ["downstream_apis.graph.base_url:", "https://graph.microsoft.com/v1.0"]),
    ("scopes-missing", _del("downstream_apis.todo.scopes"),
     ["downstream_apis.todo.scopes: missing"]),
    ("scopes-empty", _todo_scopes(), ["downstream_apis.todo.scopes:", "at least one scope"]),
    ("scopes-not-list", _set("downstream_apis.todo.scopes", f"{API}/A"),
     ["downstream_apis.todo.scopes: expected a list"]),
    ("scope-whitespace", _todo_scopes(f"{API}/A {API}/B"),
     ["downstream_apis.todo.scopes[0]:", "without spaces"]),
    ("scope-not-string", _todo_scopes(f"{API}/A", 7),
     ["downstream_apis.todo.scopes[1]: expected a string"]),
    ("scope-reserved", _todo_scopes(f"{API}/A", "offline_access"),
     ["downstream_apis.todo.scopes[1]: 'offline_access' is reserved", "added automatically"]),
    ("scope-reserved-case", _set("downstream_apis.graph.scopes", ["User.Read", "OpenID"]),
     ["downstream_apis.graph.scopes[1]: 'OpenID' is reserved"]),
    ("scope-short-custom", _todo_scopes("Todo.Read"),
     ["downstream_apis.todo.scopes[0]: short scope 'Todo.Read'", "api://<app-id>/Todo.Read"]),
    ("scope-two-resources", _todo_scopes(f"{API}/A", "api://other/B"),
     ["downstream_apis.todo.scopes:", "one resource", "api://other"]),
    ("scope-default-mixed", _todo_scopes(f"{API}/.default", f"{API}/A"),
     ["downstream_apis.todo.scopes:", ".default", "cannot be combined"]),
    ("scope-graph-foreign", _set("downstream_apis.graph.scopes", [f"{API}/A"]),
     ["downstream_apis.graph.scopes[0]:", "not a Microsoft Graph scope"]),
    ("scope-duplicate", _todo_scopes(f"{API}/A", f"{API}/a"),
     ["downstream_apis.todo.scopes[1]:", "listed twice"]),
    ("scope-malformed", _todo_scopes("api://x/"), ["downstream_apis.todo.scopes[0]:", "api://"]),
    ("sign-in-api-unknown", _set("sign_in_api", "mail"),
     ["sign_in_api: 'mail' is not a configured API", "'', 'graph', 'todo'"]),
    ("sign-in-api-type", _set("sign_in_api", None), ["sign_in_api: expected a string"]),
    ("redirect-no-slash", _set("redirect_path", "getAToken"),
     ["redirect_path: 'getAToken'", "starting with '/'"]),
    ("redirect-root", _set("redirect_path", "/"), ["redirect_path: '/'"]),
    ("redirect-bad-chars", _set("redirect_path", "/get token?x"), ["redirect_path:", "/getAToken"]),
    ("redirect-app-route", _set("redirect_path", "/login"),
     ["redirect_path: '/login' clashes with the app's own routes"]),
    ("redirect-under-api", _set("redirect_path", "/api/callback"),
     ["redirect_path: '/api/callback' clashes", "/api/"]),
]


def _run(tmp_path: Path, spec: Any, *extra: str) -> tuple[int, Path]:
    out = tmp_path / "out"
    rc = cli.main(["new", str(write_spec(tmp_path, spec)), "-o", str(out), *extra])
    return rc, out


@pytest.mark.parametrize(("mutate", "expected"), [(m, e) for _, m, e in RULES],
                         ids=[i for i, _, _ in RULES])
def test_rule_rejected_without_output(tmp_path: Path, spec: dict[str, Any], mutate: Mutation,
                                      expected: list[str], capsys: pytest.CaptureFixture[str]
                                      ) -> None:
    mutate(spec)
    rc, out = _run(tmp_path, spec)
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert any(all(s in line for s in expected) for line in lines), err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]


def test_all_errors_reported_at_once(tmp_path: Path, spec: dict[str, Any],
                                     capsys: pytest.CaptureFixture[str]) -> None:
    spec["framework"] = "pyramid"
    spec["cache"]["backend"] = "mongodb"
    spec["redirect_path"] = "/logout"
    rc, out = _run(tmp_path, spec)
    err = capsys.readouterr().err
    assert rc == 2 and not out.exists()
    assert len([line for line in err.splitlines() if line.startswith("error: ")]) == 3


@pytest.mark.parametrize(("text", "expected"), [
    ("project_name: [unclosed\n", "spec.yaml:2:1: invalid YAML"),
    ("project_name: a\n  bad: indent\n", "spec.yaml:2:6: invalid YAML"),
    ("- a\n- b\n", "must be a YAML mapping"),
    ("", "it is empty"),
    ("project_name: a\nproject_name: b\n", "spec.yaml:2:1: invalid YAML: duplicate key"),
])
def test_yaml_problems(tmp_path: Path, text: str, expected: str,
                       capsys: pytest.CaptureFixture[str]) -> None:
    rc, out = _run(tmp_path, text)
    err = capsys.readouterr().err
    assert rc == 2 and not out.exists()
    assert expected in err


def test_missing_spec_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["validate", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read the spec" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["new", "validate"])
def test_a_directory_as_the_spec_is_named(tmp_path: Path, command: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([command, str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path}: SPEC.yaml is a directory, not a spec file" in err
    assert "Errno" not in err


@pytest.mark.parametrize("output", ["a-file", "a-file/below"])
def test_a_file_as_the_output_dir_is_named(tmp_path: Path, spec: dict[str, Any], output: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a-file").write_text("kept")
    target = tmp_path / output
    assert cli.main(["new", str(write_spec(tmp_path, spec)), "-o", str(target)]) == 2
    err = capsys.readouterr().err
    assert f"-o {target}: {tmp_path / 'a-file'} is a file, not a directory" in err
    assert "Errno" not in err
    assert (tmp_path / "a-file").read_text() == "kept"


def test_validate_only(tmp_path: Path, spec: dict[str, Any],
                       capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["validate", str(write_spec(tmp_path, spec))]) == 0
    assert "valid" in capsys.readouterr().out
    spec["framework"] = "rails"
    assert cli.main(["validate", str(write_spec(tmp_path, spec))]) == 2
    assert "framework: 'rails'" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]


@pytest.mark.parametrize("example", sorted((ROOT / "examples").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_examples_are_valid(example: Path) -> None:
    assert cli.main(["validate", str(example)]) == 0


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"msal-webapp {generator.__version__}"


def test_console_script(tmp_path: Path, spec: dict[str, Any]) -> None:
    spec["cache"]["backend"] = "mongodb"
    script = Path(sys.executable).parent / "msal-webapp"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "generator.cli"]
    proc = subprocess.run([*command, "new", str(write_spec(tmp_path, spec)), "-o",
                           str(tmp_path / "out")], capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert "error: cache.backend: 'mongodb'" in proc.stderr
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------ atomic rendering
@pytest.fixture
def use_template(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], None]:
    def use(template: Path) -> None:
        monkeypatch.setattr(cli, "template_dir", lambda: template)
    return use


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_render_success(tmp_path: Path, spec: dict[str, Any], mini_template: Path,
                        use_template: Callable[[Path], None],
                        capsys: pytest.CaptureFixture[str]) -> None:
    use_template(mini_template)
    rc, out = _run(tmp_path, spec)
    assert rc == 0, capsys.readouterr().err
    project = out / "contoso-portal"
    assert _leftovers(out) == ["contoso-portal"]  # no temp dir left
    assert (project / "README.md").read_text() == "# Contoso Portal\n"
    assert "api://11111111" in (project / "contoso_portal" / "__init__.py").read_text()
    assert (project / "templates" / "page.html").read_text().startswith("{% block body %}")
    printed = capsys.readouterr().out
    steps = printed.split("Next steps:\n", 1)[1].splitlines()
    assert [line.split("#")[0].strip() for line in steps[:5]] == [
        f"cd {project}",
        "python -m venv .venv && .venv/bin/pip install -e '.[dev]'",
        ".venv/bin/python -m devprovider",
        ".venv/bin/python -m pytest",
        "README.md: run it against your own app registration (.env) and deploy it",
    ]


def test_existing_target_refused_and_kept(tmp_path: Path, spec: dict[str, Any],
                                          mini_template: Path,
                                          use_template: Callable[[Path], None],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    use_template(mini_template)
    existing = tmp_path / "out" / "contoso-portal"
    existing.mkdir(parents=True)
    (existing / "mine.txt").write_text("keep me")
    rc, out = _run(tmp_path, spec)
    err = capsys.readouterr().err
    assert rc == 2
    assert str(existing) in err and "--force" in err
    assert _leftovers(existing) == ["mine.txt"]
    assert _leftovers(out) == ["contoso-portal"]


def test_force_replaces(tmp_path: Path, spec: dict[str, Any], mini_template: Path,
                        use_template: Callable[[Path], None]) -> None:
    use_template(mini_template)
    existing = tmp_path / "out" / "contoso-portal"
    existing.mkdir(parents=True)
    (existing / "mine.txt").write_text("old")
    rc, out = _run(tmp_path, spec, "--force")
    assert rc == 0
    assert not (existing / "mine.txt").exists()
    assert (existing / "README.md").exists()
    assert _leftovers(out) == ["contoso-portal"]


def _assert_failed_cleanly(tmp_path: Path, rc: int, out: Path, err: str, *expected: str) -> None:
    assert rc == 1, err
    assert not out.exists(), _leftovers(out)
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and all(s in lines[0] for s in expected), err


@pytest.mark.parametrize(("files", "hooks", "expected"), [
    ({"broken.txt": "{% if %}\n"}, None, ["TemplateSyntaxError"]),
    ({"x.txt": "{{ cookiecutter.nope }}\n"}, None, ["UndefinedVariableInTemplate"]),
    ({"_frameworks/flask/README.md": "mine\n"}, None,
     ["arranging the project failed: README.md: is in the shared template and in "
      "_frameworks/flask/"]),
    # What rendering made of a templated file is checked (a file without Jinja is copied as it
    # is: the bakes lint and test those).
    ({"bad.py": "def f({{ cookiecutter.package_name }}:\n"}, None,
     ["bad.py:1: does not compile"]),
    ({"bad.toml": "a = {{ cookiecutter.project_name }}\n"}, None, ["bad.toml: does not parse"]),
    ({"bad.json": "{'a': {{ cookiecutter.call_graph | tojson }}}\n"}, None,
     ["bad.json: does not parse"]),
    ({"bad.yaml": "a: [{{ cookiecutter.redirect_path }}\n"}, None, ["bad.yaml: does not parse"]),
    ({"left.md": "{% raw %}{{ cookiecutter.project_name }}{% endraw %}\n"}, None,
     ["left.md:1: unrendered template code"]),
])
def test_render_failure_leaves_nothing(tmp_path: Path, spec: dict[str, Any],
                                       use_template: Callable[[Path], None],
                                       files: dict[str, str] | None, hooks: dict[str, str] | None,
                                       expected: list[str],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    use_template(make_mini_template(tmp_path / "t", files, hooks))
    rc, out = _run(tmp_path, spec)
    _assert_failed_cleanly(tmp_path, rc, out, capsys.readouterr().err, *expected)


def test_failure_with_force_keeps_old(tmp_path: Path, spec: dict[str, Any],
                                      use_template: Callable[[Path], None]) -> None:
    use_template(make_mini_template(tmp_path / "t", {"bad.py": "{# bad #}def f(:\n"}))
    existing = tmp_path / "out" / "contoso-portal"
    existing.mkdir(parents=True)
    (existing / "mine.txt").write_text("old")
    rc, out = _run(tmp_path, spec, "--force")
    assert rc == 1
    assert _leftovers(out) == ["contoso-portal"]
    assert (existing / "mine.txt").read_text() == "old"


def test_keyboard_interrupt_leaves_nothing(tmp_path: Path, spec: dict[str, Any],
                                           mini_template: Path,
                                           use_template: Callable[[Path], None],
                                           monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    use_template(mini_template)
    real = render.arrange

    def interrupted(project: Path, *args: Any, **kwargs: Any) -> list[str]:
        assert real(project, *args, **kwargs) == [] and project.is_dir()
        raise KeyboardInterrupt

    monkeypatch.setattr(render, "arrange", interrupted)
    out = tmp_path / "deep" / "out"
    rc = cli.main(["new", str(write_spec(tmp_path, spec)), "-o", str(out)])
    assert rc == 130
    assert "interrupted" in capsys.readouterr().err
    assert not (tmp_path / "deep").exists()  # the -o directories it created are gone too


@pytest.mark.parametrize("example", sorted((ROOT / "examples").glob("*.yaml")),
                         ids=lambda path: path.stem)
def test_real_template_renders_every_example(tmp_path: Path, example: Path) -> None:
    """Each shipped example through the CLI and the real template (bakes run the app tests)."""
    out = tmp_path / "out"
    assert cli.main(["new", str(example), "-o", str(out)]) == 0
    (project,) = [out / name for name in _leftovers(out)]
    assert (project / "pyproject.toml").is_file() and (project / ".env.example").is_file()
    # What "Next steps" tells the user to run exists: the dev extra with pytest, the stand-in.
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    dev = pyproject["project"]["optional-dependencies"]["dev"]
    assert any(req.startswith("pytest") for req in dev), dev
    assert (project / "devprovider" / "__main__.py").is_file()
    assert "--port" in (project / "devprovider" / "__main__.py").read_text(encoding="utf-8")


def test_next_steps_quote_the_path_and_name_the_venv() -> None:
    steps = cli.next_steps(Path("/tmp/my projects/contoso-portal"))
    assert "cd '/tmp/my projects/contoso-portal'\n" in steps
    assert "python -m venv .venv && " in steps and "pip install -e '.[dev]'" in steps


def test_check_skips_only_the_templates_own_verbatim_files(tmp_path: Path) -> None:
    """A file identical to one of the template's Jinja-free files is not parsed again; the same
    broken text elsewhere, or any other broken file, is reported."""
    (tmp_path / "copied.py").write_text("def f(:\n")
    (tmp_path / "rendered.py").write_text("def g(:\n")
    assert render.check_project(tmp_path, frozenset({"def f(:\n"})) == [
        "rendered.py:1: does not compile: invalid syntax"]
    assert len(render.check_project(tmp_path)) == 2


def test_only_what_rendering_can_change_is_rendered() -> None:
    """Files without Jinja and the files the layout step drops are copied, not rendered."""
    context = gspec.context_for_file(ROOT / "examples" / "app.yaml")  # flask, memory store
    skip = render.unrendered(gspec.template_dir(), context)
    assert "_frameworks/django" in skip.patterns and "_frameworks/flask" not in skip.patterns
    assert "compose.redis.yaml" in skip.patterns
    assert "{{cookiecutter.package_name}}/core/stores/sql_migrations" in skip.patterns
    assert "{{cookiecutter.package_name}}/core/web.py" in skip.patterns  # no Jinja in it
    assert "{{cookiecutter.package_name}}/config.py" not in skip.patterns  # templated
    assert "tests/test_web_flow.py" not in skip.patterns
