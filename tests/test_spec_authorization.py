"""The spec's `authorization` section: every refusal (the field, the bad value and the fix;
nothing written), the forms accepted, the context it becomes and what config.py bakes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from baking import baked_authorization
from conftest import write_spec

from generator import cli, render
from generator import spec as gspec

R = gspec.rules()
GUID = "3f0c2b1a-7d4e-4c2b-9a1e-2b3c4d5e6f70"
GUID2 = "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
OIDC = {"kind": "oidc", "issuer": "https://id.example.com/realms/acme"}
SECRET = "Zq38Q~Xk2vP9sLmN4bR7tY1wE5uI0oA6dF3gH8jK"  # the shape of an Entra client secret
EVERY_ROLE_CHARACTER = "".join(sorted(R.ROLE_VALUE_CHARS - {"."})) + "."
ROLE_CHARS = "only letters A-Z a-z, digits and ! # $ % & ' ( ) * + , - . / : ; < = > ? @ [ ] ^"

# (id, authorization, authority (None: the spec's Entra one), what the one message must hold:
# its field path first, then the bad value and the fix)
REFUSALS: list[tuple[str, Any, dict[str, str] | None, list[str]]] = [
    ("not-a-mapping", ["Admin"], None,
     ["authorization: expected a mapping, got list ['Admin']",
      f"e.g. authorization: {{roles: [Admin], groups: {{finance: {GUID}}}}}, or {{}} for none"]),
    ("unknown-key", {"role": ["Admin"]}, None,
     ["authorization.role: unknown key 'role' (did you mean 'roles'?)",
      "allowed keys: 'roles', 'groups', 'groups_overage'"]),
    ("secret-key", {"client_secret": "x"}, None,
     ["authorization.client_secret: secrets never go in the spec"]),
    ("roles-not-a-list", {"roles": "Admin"}, None,
     ["authorization.roles: expected a list of app role values, got string 'Admin'",
      "e.g. roles: [Admin, Reader] ([] for none)"]),
    ("role-not-a-string", {"roles": ["Admin", 7]}, None,
     ["authorization.roles[1]: expected a string, got number 7", "quote it"]),
    ("role-empty", {"roles": [""]}, None,
     ["authorization.roles[0]: must not be empty", "the app role's value"]),
    ("role-space", {"roles": ["Task Writer"]}, None,
     ["authorization.roles[0]: 'Task Writer' contains ' ', which Entra ID does not allow in an "
      "app role's value", ROLE_CHARS, "no spaces",
      "exactly as in the app registration's appRoles"]),
    ("role-double-quote", {"roles": ['Say"Hi']}, None,
     ["authorization.roles[0]: 'Say\"Hi' contains '\"'", ROLE_CHARS]),
    ("role-backslash", {"roles": ["Domain\\Admins"]}, None,
     ["authorization.roles[0]: 'Domain\\\\Admins' contains '\\\\'"]),
    ("role-not-ascii", {"roles": ["Café.Read"]}, None,
     ["authorization.roles[0]: 'Café.Read' contains 'é'"]),
    ("role-control-character", {"roles": ["Task\tRead"]}, None,
     ["authorization.roles[0]: 'Task\\tRead' contains '\\t'"]),
    ("role-starts-with-a-dot", {"roles": [".Admin"]}, None,
     ["authorization.roles[0]: '.Admin' starts with '.', which Entra ID does not allow",
      "e.g. 'Task.Write'"]),
    ("role-too-long", {"roles": ["A" * 121]}, None,
     ["authorization.roles[0]: 'AAAA", "is 121 characters; Entra ID allows at most 120"]),
    ("role-twice", {"roles": ["Admin", "Reader", "Admin"]}, None,
     ["authorization.roles[2]: 'Admin' is listed twice (at [0]); list each role once"]),
    ("role-twice-ignoring-case", {"roles": ["Admin", "ADMIN"]}, None,
     ["authorization.roles[1]: 'ADMIN' is listed twice (at [0] as 'Admin', ignoring case)"]),
    ("role-jinja", {"roles": ["{{ 7*7 }}"]}, None,
     ["authorization.roles[0]: '{{ 7*7 }}' contains a Jinja delimiter"]),
    ("role-secret", {"roles": [SECRET]}, None,
     ["authorization.roles[0]: <a value that looks like a secret, not shown> looks like a "
      "secret, not an app role's value", "secrets never go in the spec"]),
    ("groups-not-a-mapping", {"groups": ["finance"]}, None,
     ["authorization.groups: expected a mapping, got list ['finance']",
      f"group name -> group object id, e.g. groups: {{finance: {GUID}}} ({{}} for none)"]),
    ("group-name-upper-case", {"groups": {"Finance": GUID}}, None,
     ["authorization.groups.Finance: group name 'Finance' is not allowed",
      "1-40 lower-case letters, digits and '_', starting with a letter",
      "GROUP_<NAME>_ID and the page /groups/<name>"]),
    ("group-name-dash", {"groups": {"fin-ops": GUID}}, None,
     ["authorization.groups.fin-ops: group name 'fin-ops' is not allowed"]),
    ("group-name-digit-first", {"groups": {"2nd_line": GUID}}, None,
     ["authorization.groups.2nd_line: group name '2nd_line' is not allowed"]),
    ("group-name-too-long", {"groups": {"a" * 41: GUID}}, None,
     ["authorization.groups.aaaa", f"group name '{'a' * 41}' is not allowed", "1-40"]),
    ("group-name-number", {"groups": {7: GUID}}, None,
     ["authorization.groups.7: group name 7 is not allowed"]),
    ("group-id-a-name", {"groups": {"finance": "Finance Team"}}, None,
     ["authorization.groups.finance: 'Finance Team' is not a group object id",
      f"the group's Object ID (a GUID like {GUID}", "not its name"]),
    ("group-id-in-braces", {"groups": {"finance": "{" + GUID + "}"}}, None,
     [f"authorization.groups.finance: '{{{GUID}}}' is not a group object id"]),
    ("group-id-not-a-string", {"groups": {"finance": 42}}, None,
     ["authorization.groups.finance: expected a string, got number 42", f"e.g. {GUID}"]),
    ("group-id-twice", {"groups": {"finance": GUID, "accounts": GUID.upper()}}, None,
     [f"authorization.groups.accounts: '{GUID.upper()}' is already the id of group 'finance'",
      "give each group one name"]),
    ("groups-with-oidc", {"roles": ["Admin"], "groups": {"finance": GUID}}, OIDC,
     ["authorization.groups: needs authority.kind 'entra'", "Microsoft Graph",
      "remove authorization.groups"]),
    ("overage-choice", {"groups": {"finance": GUID}, "groups_overage": "delegated"}, None,
     ["authorization.groups_overage: 'delegated' is not a supported choice; allowed: 'user', "
      "'app'"]),
    ("overage-without-groups", {"roles": ["Admin"], "groups_overage": "app"}, None,
     ["authorization.groups_overage: 'app' is only used with authorization.groups",
      "remove it, or add groups"]),
    ("overage-with-no-groups", {"groups": {}, "groups_overage": "user"}, OIDC,
     ["authorization.groups_overage: 'user' is only used with authorization.groups"]),
]


@pytest.mark.parametrize(("authorization", "authority", "expected"),
                         [case[1:] for case in REFUSALS], ids=[case[0] for case in REFUSALS])
def test_a_bad_section_is_refused_and_nothing_is_written(
        tmp_path: Path, spec: dict[str, Any], capsys: pytest.CaptureFixture[str],
        authorization: Any, authority: dict[str, str] | None, expected: list[str]) -> None:
    spec["authorization"] = authorization
    if authority:
        spec["authority"] = authority
    (message,) = gspec.validate_spec(spec)
    assert message.startswith(expected[0]), message
    assert all(part in message for part in expected), message
    assert SECRET not in message

    out = tmp_path / "out"
    assert cli.main(["new", str(write_spec(tmp_path, spec)), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"error: {message}" in err and "1 problem(s); nothing was written" in err
    assert not out.exists()


def test_every_problem_is_reported_at_once(spec: dict[str, Any]) -> None:
    spec["authority"] = OIDC
    spec["authorization"] = {"roles": ["Admin", "a b", "admin"], "rolez": [],
                             "groups": {"Finance": GUID, "ok": "x"}, "groups_overage": "app"}
    assert [m.split(":")[0] for m in gspec.validate_spec(spec)] == [
        "authorization.rolez", "authorization.roles[1]", "authorization.roles[2]",
        "authorization.groups.Finance", "authorization.groups.ok", "authorization.groups"]


# (id, authorization (absent: not in the spec), authority, the context's `authorization`)
ROLES_ONLY = {"roles": ["Admin"], "groups": {}}  # groups_overage only comes with groups
ACCEPTED: list[tuple[str, Any, dict[str, str] | None, dict[str, Any]]] = [
    ("absent", "absent", None, {}),
    ("null", None, None, {}),
    ("empty", {}, None, {}),
    ("empty-lists", {"roles": [], "groups": {}}, None, {}),
    ("empty-groups-with-oidc", {"roles": [], "groups": {}}, OIDC, {}),
    ("roles", {"roles": ["Admin"]}, None, ROLES_ONLY),
    ("roles-with-oidc", {"roles": ["Admin"]}, OIDC, ROLES_ONLY),
    ("roles-in-their-order", {"roles": ["Reader", "Admin", "Task.Write"]}, None,
     {"roles": ["Reader", "Admin", "Task.Write"], "groups": {}}),
    ("every-character-entra-allows", {"roles": [EVERY_ROLE_CHARACTER, "A" * 120]}, None,
     {"roles": [EVERY_ROLE_CHARACTER, "A" * 120], "groups": {}}),
    ("groups-in-upper-case", {"groups": {"finance": GUID.upper(), "x" * 40: GUID2}}, None,
     {"roles": [], "groups": {"finance": GUID, "x" * 40: GUID2}, "groups_overage": "user"}),
    ("both-app", {"roles": ["Admin"], "groups": {"finance": GUID}, "groups_overage": "app"},
     None, {"roles": ["Admin"], "groups": {"finance": GUID}, "groups_overage": "app"}),
]


@pytest.mark.parametrize(("authorization", "authority", "context"),
                         [case[1:] for case in ACCEPTED], ids=[case[0] for case in ACCEPTED])
def test_accepted_sections_and_their_context(
        spec: dict[str, Any], authorization: Any, authority: dict[str, str] | None,
        context: dict[str, Any]) -> None:
    if authorization != "absent":
        spec["authorization"] = authorization
    if authority:
        spec["authority"] = authority
    assert gspec.validate_spec(spec) == []
    ctx = gspec.spec_to_context(spec)
    assert ctx["authorization"] == context
    # The context read back (what the hook checks) is the same spec again.
    back = R.context_to_spec(ctx)
    assert R.validate_spec(back) == [] and R.spec_to_context(back) == ctx
    assert ("authorization" in back) is bool(context)


def _context(**changes: Any) -> dict[str, Any]:
    """The context of examples/app.yaml (which has roles and groups), changed."""
    example = Path(__file__).resolve().parents[1] / "examples" / "app.yaml"
    return {**gspec.context_for_file(example), **changes}


def test_the_example_has_roles_and_groups() -> None:
    assert _context()["authorization"] == {"roles": ["Admin"], "groups": {"finance": GUID},
                                           "groups_overage": "user"}


@pytest.mark.parametrize(("changes", "expected"), [
    ({"authorization": {"roles": ["a b"]}}, "authorization.roles[0]: 'a b' contains ' '"),
    ({"authorization": {"groups": {"finance": "Finance"}}},
     "authorization.groups.finance: 'Finance' is not a group object id"),
    ({"authority_kind": "oidc", "oidc_issuer": OIDC["issuer"]},
     "authorization.groups: needs authority.kind 'entra'"),
    ({"authorization": {"groups_overage": "app"}},
     "authorization.groups_overage: 'app' is only used with authorization.groups"),
    ({"authorization": json.dumps({"roles": ["Admin"]})}, "authorization: given as text"),
    ({"authorization": '{"roles": '}, "authorization: '{\"roles\": ' is not valid JSON"),
    ({"authorization": ["Admin"]},
     "authorization: expected a JSON object (roles, groups and groups_overage)"),
])
def test_the_hook_words_the_same_refusals(changes: dict[str, Any], expected: str) -> None:
    """Cookiecutter's variable is `authorization` too: the hook's messages name the same paths;
    JSON text (from `authorization='{...}'` on the command line) is refused with the fix."""
    problems = R.context_problems(_context(**changes))
    assert len(problems) == 1 and problems[0].startswith(expected), problems
    if "given as text" in expected:
        assert "--config-file" in problems[0] and "msal-webapp new" in problems[0]


def test_no_message_echoes_a_secret_pasted_into_the_section(spec: dict[str, Any]) -> None:
    spec["authorization"] = {"roles": [SECRET, "Admin"], "groups": {"finance": SECRET},
                             "groups_overage": SECRET}
    messages = gspec.validate_spec(spec)
    assert [m.split(":")[0] for m in messages] == [
        "authorization.roles[0]", "authorization.groups.finance", "authorization.groups_overage"]
    fragments = [SECRET[i:i + 10] for i in range(len(SECRET) - 9)]
    assert not [f for f in fragments if any(f in m for m in messages)], messages


# --------------------------------------------------------------------------- config.py
@pytest.mark.parametrize(("authorization", "authority", "baked"), [
    (None, None, {"roles": [], "groups": {}, "groups_overage": "user"}),
    ({"roles": ["Reader", "Admin's", "<Task>.Write&Read"], "groups_overage": "app",
      "groups": {"finance": GUID.upper(), "class": GUID2}}, None,
     {"roles": ["Reader", "Admin's", "<Task>.Write&Read"],
      "groups": {"finance": GUID, "class": GUID2}, "groups_overage": "app"}),
    ({"roles": ["Admin"]}, OIDC, {**ROLES_ONLY, "groups_overage": "user"}),
], ids=["none", "both-app", "roles-oidc"])
def test_config_py_bakes_the_section(tmp_path: Path, spec: dict[str, Any], authorization: Any,
                                     authority: dict[str, str] | None,
                                     baked: dict[str, Any]) -> None:
    """Always all three keys, normalised (group ids in lower case, roles in order), with the
    comment that says what may change per environment."""
    spec["authorization"] = authorization
    if authority:
        spec["authority"] = authority
    context = gspec.spec_to_context(spec)
    project = render.render(context, tmp_path, gspec.template_dir())
    config_py = project / context["package_name"] / "config.py"
    assert baked_authorization(config_py) == (
        baked, "# App roles are code; each group's object id can be overridden with "
               "GROUP_<NAME>_ID.")
    # The generated AppDefaults takes it, as given.
    done = subprocess.run(
        [sys.executable, "-c", f"from {context['package_name']}.config import DEFAULTS; "
                               "import json; print(json.dumps(DEFAULTS.authorization))"],
        cwd=project, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == baked
