"""The pre-gen hook as cookiecutter runs it: rendered text in a subprocess, and real bakes."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jinja2
import pytest
from baking import baked_authorization, baked_credential
from conftest import TEMPLATE, make_mini_template
from msal_webapp_rules.jinja import TemplateDirectory

from generator import spec as gspec

HOOK = TEMPLATE / "hooks" / "pre_gen_project.py"
API = "api://11111111-2222-3333-4444-555555555555"
GUID = "3f0c2b1a-7d4e-4c2b-9a1e-2b3c4d5e6f70"


def _context(**changes: Any) -> dict[str, Any]:
    spec = gspec.parse_spec((TEMPLATE.parent / "examples" / "app.yaml").read_text())
    ctx = gspec.spec_to_context(spec)
    ctx.update({"_template": str(TEMPLATE), "_output_dir": "/tmp/x",
                "_copy_without_render": ["a/*"]})
    ctx.update(changes)
    return ctx


def _run_hook(tmp_path: Path, ctx: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """Render the hook as cookiecutter does (with the template's extension) and run it in a
    directory of its own, as cookiecutter runs it in the new project's directory."""
    env = jinja2.Environment(keep_trailing_newline=True, extensions=[TemplateDirectory])
    script = tmp_path / "pre_gen_project.py"
    with contextlib.chdir(TEMPLATE):  # cookiecutter renders hooks from the template directory
        script.write_text(env.from_string(HOOK.read_text()).render(cookiecutter=ctx))
    (tmp_path / "project").mkdir(exist_ok=True)
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          cwd=tmp_path / "project", check=False)


def test_rendered_hook_accepts_valid_context(tmp_path: Path) -> None:
    proc = _run_hook(tmp_path, _context(project_name="O'Brien <&> \"Quotes\" \\ Portal"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == ""


def test_rendered_hook_reports_each_problem(tmp_path: Path) -> None:
    apis = {"todo": {"base_url": "http://api.contoso.com", "scopes": ["Todo.Read", "openid"]}}
    proc = _run_hook(tmp_path, _context(downstream_apis=apis, redirect_path="/static/cb",
                                        entra_tenant="not a tenant"))
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert all(line.startswith("ERROR: ") for line in lines)
    assert len(lines) == 5, lines
    assert any(line.startswith("ERROR: entra_tenant: 'not a tenant'") for line in lines)
    assert any("downstream_apis.todo.scopes[1]: 'openid' is reserved" in ln for ln in lines)


def test_unrendered_hook_fails_clearly(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(HOOK)], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 1 and "was not rendered" in proc.stdout


@pytest.mark.parametrize(("value", "expected"), [
    ('{"todo": ', "downstream_apis: '{\"todo\": ' is not valid JSON"),
    ('["todo"]', "downstream_apis: expected a JSON object"),
    ('{"todo": {"base_url": "https://a.com", "scopes": "Todo.Read"}}',
     "downstream_apis.todo.scopes[0]: short scope 'Todo.Read'"),
    (json.dumps({"todo": {"base_url": "https://a.com", "scopes": [f"{API}/A"]}}),
     "downstream_apis: given as text"),
])
def test_downstream_apis_as_json_string(tmp_path: Path, value: str, expected: str) -> None:
    proc = _run_hook(tmp_path, _context(downstream_apis=value))
    assert proc.returncode == 1
    assert f"ERROR: {expected}" in proc.stdout


# ---------------------------------------------------------------- through cookiecutter itself
# Note: cookiecutter silently ignores extra_context keys that are not in cookiecutter.json
# (a typo such as `cache_backnd` bakes the default); neither the hook nor we can see them.
@pytest.mark.parametrize(("extra", "expected"), [
    ({"entra_tenant": "not a tenant"}, "ERROR: entra_tenant: 'not a tenant' is not a tenant"),
    ({"authority_kind": "oidc"}, "ERROR: oidc_issuer: missing"),
    ({"authority_kind": "oidc", "oidc_issuer": "https://id.example.com/"},
     "ERROR: oidc_issuer: 'https://id.example.com/' must not end with '/'"),
    ({"graph_scopes": "User.Read offline_access"},
     "ERROR: graph_scopes[1]: 'offline_access' is reserved"),
    ({"downstream_apis": {"todo": {"base_url": "https://a.com", "scopes": ["Todo.Read"]}}},
     "ERROR: downstream_apis.todo.scopes[0]: short scope"),
    ({"downstream_apis": {"todo": {"base_url": "https://a.com", "scopes": [f"{API}/A"],
                                   "retries": 3}}},
     "ERROR: downstream_apis.todo.retries: unknown key"),
    ({"sign_in_api": "todo"}, "ERROR: sign_in_api: 'todo' is not a configured API"),
    ({"project_name": "Flask"}, "ERROR: package_name: 'flask' would shadow"),
    ({"redirect_path": "/logout"}, "ERROR: redirect_path: '/logout' clashes"),
    ({"client_id": "abc"}, "ERROR: client_id: 'abc' is not an Entra application"),
    ({"downstream_apis": '{"todo": 1}'}, "ERROR: downstream_apis.todo: expected a mapping"),
    ({"call_graph": False, "sign_in_api": "graph"},
     "ERROR: sign_in_api: 'graph' is not a configured API"),
    ({"credential_kind": "assertion", "assertion_source": "callable"},
     "ERROR: assertion_callable: missing (required when source is 'callable')"),
    ({"authority_kind": "oidc", "oidc_issuer": "https://id.example.com/r",
      "credential_kind": "assertion", "assertion_source": "managed_identity"},
     "ERROR: assertion_source: 'managed_identity' needs authority.kind 'entra'"),
    ({"credential_kind": "certificate",
      "credential_defaults": {"CLIENT_CERTIFICATE_FILE": "/c/app.pfx",
                              "CLIENT_PRIVATE_KEY_FILE": "/c/app.key"}},
     "ERROR: credential_defaults.CLIENT_PRIVATE_KEY_FILE: not used with a PKCS#12"),
    ({"credential_defaults": {"CLIENT_SECRET": "x"}},
     "ERROR: credential_defaults.CLIENT_SECRET: secrets never go in the spec"),
    ({"authorization": {"roles": ["Task Writer"]}},
     "ERROR: authorization.roles[0]: 'Task Writer' contains ' '"),
    # (the hook reads the context as JSON with its keys sorted: accounts first)
    ({"authorization": {"groups": {"finance": GUID, "accounts": GUID}}},
     f"ERROR: authorization.groups.finance: '{GUID}' is already the id of group 'accounts'"),
    ({"authority_kind": "oidc", "oidc_issuer": "https://id.example.com/r",
      "authorization": {"groups": {"finance": GUID}}},
     "ERROR: authorization.groups: needs authority.kind 'entra'"),
    ({"authorization": {"roles": ["Admin"], "groups_overage": "app"}},
     "ERROR: authorization.groups_overage: 'app' is only used with authorization.groups"),
    ({"authorization": '{"roles": ["Admin"]}'}, "ERROR: authorization: given as text"),
])
def test_bake_rejects(cookies: Any, tmp_path: Path, capfd: pytest.CaptureFixture[str],
                      extra: dict[str, Any], expected: str) -> None:
    result = cookies.bake(template=str(TEMPLATE), extra_context=extra)
    out, _ = capfd.readouterr()
    assert result.exit_code != 0
    assert type(result.exception).__name__ == "FailedHookException"
    assert expected in out, out
    assert result.project_path is None
    output_dir = tmp_path / "cookies" / "bake00"  # pytest-cookies' output_dir for this bake
    assert output_dir.is_dir() and not any(output_dir.iterdir())  # no project left behind


def test_bake_invalid_choice_is_cookiecutters(cookies: Any) -> None:
    result = cookies.bake(template=str(TEMPLATE), extra_context={"cache_backend": "mongodb"})
    assert result.exit_code != 0 and isinstance(result.exception, ValueError)
    assert "mongodb provided for choice variable cache_backend" in str(result.exception)


@pytest.mark.parametrize(("extra", "expected"), [
    ({}, {"CLIENT_CREDENTIAL": "secret"}),
    ({"credential_kind": "certificate"}, {"CLIENT_CREDENTIAL": "certificate"}),
    ({"credential_kind": "assertion"}, {"CLIENT_CREDENTIAL": "assertion"}),  # token file
    ({"credential_kind": "assertion", "assertion_source": "managed_identity"},
     # No identity named: the user-assigned one's client id is set where the app runs.
     {"CLIENT_CREDENTIAL": "assertion", "CLIENT_ASSERTION_MANAGED_IDENTITY": ""}),
    ({"credential_kind": "assertion", "assertion_source": "callable",
      "assertion_callable": "contoso.credentials:signed_assertion"},
     {"CLIENT_CREDENTIAL": "assertion",
      "CLIENT_ASSERTION_CALLABLE": "contoso.credentials:signed_assertion"}),
    ({"credential_kind": "certificate",
      "credential_defaults": {"CLIENT_CERTIFICATE_FILE": "/c/app.pfx",
                              "CLIENT_CERTIFICATE_X5C": "chain"}},
     {"CLIENT_CREDENTIAL": "certificate", "CLIENT_CERTIFICATE_FILE": "/c/app.pfx",
      "CLIENT_CERTIFICATE_X5C": "chain"}),
], ids=["default", "certificate", "token-file", "managed-identity", "callable", "defaults"])
def test_bake_the_credential_prompts(cookies: Any, extra: dict[str, Any],
                                     expected: dict[str, str]) -> None:
    """The answers to the credential prompts reach config.py's `credential=` (real template)."""
    result = cookies.bake(template=str(TEMPLATE), extra_context=extra)
    assert result.exit_code == 0, result.exception
    assert baked_credential(result.project_path / "contoso_portal" / "config.py") == expected


@pytest.mark.parametrize(("extra", "expected"), [
    ({}, {"roles": [], "groups": {}, "groups_overage": "user"}),
    ({"authorization": {"roles": ["Task.Write", "Admin"]}},
     {"roles": ["Task.Write", "Admin"], "groups": {}, "groups_overage": "user"}),
    ({"authorization": {"groups": {"finance": GUID.upper()}, "groups_overage": "app"}},
     {"roles": [], "groups": {"finance": GUID}, "groups_overage": "app"}),
], ids=["default", "roles", "groups-app"])
def test_bake_the_authorization_answer(cookies: Any, extra: dict[str, Any],
                                       expected: dict[str, Any]) -> None:
    """A partial `authorization` answer reaches config.py normalised: all three keys, group ids
    in lower case (real template, through cookiecutter and its hooks)."""
    result = cookies.bake(template=str(TEMPLATE), extra_context=extra)
    assert result.exit_code == 0, result.exception
    baked, _ = baked_authorization(result.project_path / "contoso_portal" / "config.py")
    assert baked == expected


def test_bake_mini_template_runs_hook_and_renders(cookies: Any, tmp_path: Path) -> None:
    template = make_mini_template(tmp_path)
    apis = {"todo": {"base_url": "https://a.com", "scopes": [f"{API}/A"]}}
    result = cookies.bake(template=str(template),
                          extra_context={"project_name": "Fabrikam", "downstream_apis": apis,
                                         "sign_in_api": "todo"})
    assert result.exit_code == 0, result.exception
    assert result.project_path.name == "fabrikam"
    assert f"{API}/A" in (result.project_path / "fabrikam" / "__init__.py").read_text()


def _post_gen_hook() -> Any:
    import importlib.util

    path = TEMPLATE / "hooks" / "post_gen_project.py"
    module_spec = importlib.util.spec_from_file_location("post_gen_project", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def test_post_gen_hook_keeps_only_the_chosen_framework(tmp_path: Path) -> None:
    hook = _post_gen_hook()
    assert hook.FRAMEWORKS == gspec.rules().FRAMEWORKS
    for framework in hook.FRAMEWORKS:
        project = tmp_path / framework
        for fw in hook.FRAMEWORKS:
            (project / "_frameworks" / fw / "pkg").mkdir(parents=True)
            (project / "_frameworks" / fw / "pkg" / f"{fw}.py").write_text(fw)
        (project / "gunicorn.conf.py").write_text("shared")
        assert hook.select_framework(project, framework) == []
        assert sorted(p.name for p in (project / "pkg").iterdir()) == [f"{framework}.py"]
        assert not (project / "_frameworks").exists()
        assert (project / "gunicorn.conf.py").exists() == (
            framework in hook.SHARED_BY["gunicorn.conf.py"])
        assert hook.select_framework(project, framework) == []  # idempotent

    # A file in both the shared template and a framework's folder is a template bug: refused,
    # and nothing is moved.
    project = tmp_path / "clash"
    (project / "_frameworks" / "flask").mkdir(parents=True)
    (project / "_frameworks" / "flask" / "README.md").write_text("adapter")
    (project / "README.md").write_text("shared")
    assert hook.select_framework(project, "flask") == [
        "README.md: is in the shared template and in _frameworks/flask/"]
    assert (project / "README.md").read_text() == "shared"
    assert hook.select_framework(project, "rails") == [
        "framework: 'rails' is not one of flask, django, fastapi"]


def test_post_gen_hook_keeps_only_the_chosen_shared_store(tmp_path: Path) -> None:
    """The redis and sql stores' files only in a project generated with that store; its
    compose file becomes compose.yaml; memory and filesystem projects get none."""
    hook = _post_gen_hook()
    every = {name for files in hook.BACKEND_FILES.values() for name in files}
    for backend in gspec.rules().CACHE_BACKENDS:
        project = tmp_path / backend
        for name in every:
            path = project / name.format(package="pkg")
            if name.endswith("/"):
                (path / "versions").mkdir(parents=True)
                (path / "versions" / "0001.py").write_text("")
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(name)
        hook.select_backend(project, backend, "pkg")
        hook.select_backend(project, backend, "pkg")  # idempotent
        left = {p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file()}
        own = {name.format(package="pkg") for name in hook.BACKEND_FILES.get(backend, ())}
        expected = {n for n in own if not n.endswith("/") and not n.startswith("compose.")}
        expected |= {n + "versions/0001.py" for n in own if n.endswith("/")}
        if backend in hook.BACKEND_FILES:
            expected.add("compose.yaml")
            assert (project / "compose.yaml").read_text() == f"compose.{backend}.yaml"
        assert left == expected, backend


# ------------------------------------------------ the plain `cookiecutter` command, as users run it
def _cookiecutter(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "cookiecutter", "--no-input", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)


@pytest.mark.parametrize("where", [("template",), (".", "--directory", "template")],
                         ids=["relative-path", "directory-option"])
def test_cookiecutter_command_with_a_relative_template(tmp_path: Path, where: tuple[str, ...]
                                                       ) -> None:
    """The hooks find the rules package however the template is named: here relative to the
    caller's directory (cookiecutter's `_repo_dir` is then relative, and the hooks run
    elsewhere). Bad answers are refused by the same rules; good ones give a project."""
    root = TEMPLATE.parent
    refused = _cookiecutter(root, *where, "-o", str(tmp_path / "bad"),
                            "entra_tenant=not a tenant", "client_id=$(id)")
    assert refused.returncode != 0
    assert "ERROR: entra_tenant: 'not a tenant' is not a tenant" in refused.stdout
    assert "ERROR: client_id: '$(id)'" in refused.stdout
    assert not (tmp_path / "bad").exists()  # refused before cookiecutter makes any folder

    made = _cookiecutter(root, *where, "-o", str(tmp_path / "good"), "framework=django")
    assert made.returncode == 0, made.stdout + made.stderr
    project = tmp_path / "good" / "contoso-portal"
    assert (project / "manage.py").is_file() and not (project / "_frameworks").exists()


def test_cli_and_cookiecutter_render_the_same_project(tmp_path: Path) -> None:
    """`msal-webapp new` renders with cookiecutter's own machinery but not through its front
    door (no prompts, no hooks: the rules ran already, the layout step runs in-process); the
    project must be byte for byte what plain cookiecutter makes from the same answers."""
    from generator import cli

    example = TEMPLATE.parent / "examples" / "app.yaml"
    assert cli.main(["new", str(example), "-o", str(tmp_path / "cli")]) == 0
    context = gspec.context_for_file(example)
    answers = [f"{key}={value}" for key, value in context.items()
               if not isinstance(value, (dict, bool))]
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({"default_context": {
        k: v for k, v in context.items() if isinstance(v, (dict, bool))}}))
    made = _cookiecutter(TEMPLATE.parent, str(TEMPLATE), "-o", str(tmp_path / "cc"),
                         "--config-file", str(config), *answers)
    assert made.returncode == 0, made.stdout + made.stderr

    def tree(root: Path) -> dict[str, bytes]:
        return {p.relative_to(root).as_posix(): p.read_bytes()
                for p in sorted(root.rglob("*")) if p.is_file()}

    slug = context["project_slug"]
    ours, theirs = tree(tmp_path / "cli" / slug), tree(tmp_path / "cc" / slug)
    assert ours.keys() == theirs.keys()
    assert [name for name in ours if ours[name] != theirs[name]] == []
