"""`msal-webapp new --interactive` (cookiecutter's questions, only those that apply, each answer
checked at once) and plain `cookiecutter` on a refused answer."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from generator import interactive
from generator import spec as gspec

R = gspec.rules()
ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template"
COOKIECUTTER_JSON = json.loads((TEMPLATE / "cookiecutter.json").read_text(encoding="utf-8"))
PROMPTS = COOKIECUTTER_JSON["__prompts__"]


def _prompt(key: str) -> str:
    prompt = PROMPTS[key]
    return str(prompt["__prompt__"] if isinstance(prompt, dict) else prompt)


def _ask(lines: list[str]) -> tuple[dict[str, Any], str]:
    out = io.StringIO()
    answers = interactive.ask(io.StringIO("".join(f"{line}\n" for line in lines)), out)
    return answers, out.getvalue()


def _asked(transcript: str) -> list[str]:
    """The variables whose question the transcript shows, in order."""
    found = [(transcript.find(_prompt(key)), key) for key in interactive.questions()
             if _prompt(key) in transcript]
    return [key for _, key in sorted(found)]


# The answers of one project: another OpenID Connect provider, a certificate, no Graph, an API
# of its own signed in with, app roles (cookiecutter.json's variables; None: the default).
ANSWERS: dict[str, Any] = {
    "project_name": "Fabrikam Tasks", "framework": "fastapi", "authority_kind": "oidc",
    "oidc_issuer": "https://id.fabrikam.com/realms/tasks", "client_id": "fabrikam-web",
    "credential_kind": "certificate",
    "credential_defaults": {"CLIENT_CERTIFICATE_FILE": "/run/secrets/app/client.pem"},
    "cache_backend": "filesystem", "call_graph": False,
    "downstream_apis": {"todo": {"base_url": "https://api.fabrikam.com/",
                                 "scopes": ["api://fabrikam-todo/Todo.Read"]}},
    "sign_in_api": "todo", "authorization": {"roles": ["Admin"]},
}


def _typed(key: str, value: Any) -> str:
    """An answer as typed at the prompt ("" for the default)."""
    raw = COOKIECUTTER_JSON[key]
    if value is None:
        return ""
    if isinstance(raw, list):
        return str(raw.index(value) + 1)
    if isinstance(raw, bool):
        return "y" if value else "n"
    if isinstance(raw, dict):
        return json.dumps(value)
    return str(value)


def _lines_for_new(answers: dict[str, Any]) -> list[str]:
    """What `new --interactive` reads: an answer for each question that applies."""
    given: dict[str, Any] = {}
    lines = []
    for key in interactive.questions():
        value = answers.get(key)
        if interactive.applies(key, given):
            lines.append(_typed(key, value))
        given[key] = value if value is not None else COOKIECUTTER_JSON[key]
        if isinstance(given[key], list):
            given[key] = given[key][0]
    return lines


def _lines_for_cookiecutter(answers: dict[str, Any]) -> list[str]:
    """What cookiecutter reads: every question, the JSON ones last."""
    keys = interactive.questions()
    order = ([k for k in keys if not isinstance(COOKIECUTTER_JSON[k], dict)]
             + [k for k in keys if isinstance(COOKIECUTTER_JSON[k], dict)])
    return [_typed(key, answers.get(key)) for key in order]


def test_asks_only_what_applies_in_cookiecutter_json_order() -> None:
    answers, transcript = _ask(_lines_for_new(ANSWERS))
    assert _asked(transcript) == [
        "project_name", "project_slug", "package_name", "framework", "authority_kind",
        "oidc_issuer", "client_id", "credential_kind", "credential_defaults", "cache_backend",
        "call_graph", "downstream_apis", "sign_in_api", "redirect_path", "authorization"]
    assert R.context_problems(answers) == []
    spec = R.context_to_spec(answers)
    assert spec["authority"] == {"kind": "oidc", "issuer": ANSWERS["oidc_issuer"]}
    assert "graph" not in spec["downstream_apis"]
    assert spec["credential"] == {"kind": "certificate",
                                  "certificate_file": "/run/secrets/app/client.pem"}


def test_b2c_asks_its_options_in_place_and_no_graph() -> None:
    lines = ["Woodgrove", "", "", "1", "3", "woodgrove.onmicrosoft.com",
             '{"sign_up_sign_in": "B2C_1_signupsignin"}', "", "1", "{}", "1", "{}", "", ""]
    answers, transcript = _ask(lines)
    asked = _asked(transcript)
    assert asked[5:7] == ["entra_tenant", "authority_options"]
    assert not {"entra_instance", "oidc_issuer", "call_graph", "graph_scopes",
                "sign_in_api", "assertion_source"} & set(asked)
    assert answers["call_graph"] is False and answers["sign_in_api"] == ""
    assert R.context_problems(answers) == []


def test_a_refused_answer_is_asked_again_with_the_rules_message() -> None:
    lines = _lines_for_new(ANSWERS)
    at = lines.index(ANSWERS["oidc_issuer"])
    lines[at:at] = ["https://id.fabrikam.com/realms/tasks/"]  # a trailing '/': refused
    answers, transcript = _ask(lines)
    assert "refused: oidc_issuer: 'https://id.fabrikam.com/realms/tasks/' must not end " \
           "with '/'" in transcript
    assert transcript.count(_prompt("oidc_issuer")) == 2
    assert answers["oidc_issuer"] == ANSWERS["oidc_issuer"]
    # A cross-field refusal: sign_in_api must name a configured API.
    lines = _lines_for_new(ANSWERS)
    at = lines.index("todo")
    lines[at:at] = ["todos"]
    _, transcript = _ask(lines)
    assert "refused: sign_in_api: 'todos' is not a configured API" in transcript


def test_not_json_and_not_a_choice_are_asked_again() -> None:
    lines = _lines_for_new(ANSWERS)
    lines[3:3] = ["7"]  # framework: no 7th choice
    at = lines.index(json.dumps(ANSWERS["downstream_apis"]))
    lines[at:at] = ["{todo}", "[1]"]
    answers, transcript = _ask(lines)
    assert "Please choose one of 1, 2, 3" in transcript
    assert "Not valid JSON" in transcript and "Give a JSON object" in transcript
    assert answers["downstream_apis"] == ANSWERS["downstream_apis"]


def _run(args: list[str], stdin: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run([sys.executable, *args], input=stdin, cwd=cwd, env=env,
                          capture_output=True, text=True, check=False, timeout=300)


def test_input_ending_early_writes_nothing(tmp_path: Path) -> None:
    made = _run(["-m", "generator.cli", "new", "--interactive", "-o", str(tmp_path / "out")],
                "Fabrikam\n\n", tmp_path)
    assert made.returncode == 2
    assert "the input ended before every question was answered; nothing was written" \
        in made.stderr
    assert not (tmp_path / "out").exists()


def test_new_needs_a_spec_or_interactive(tmp_path: Path) -> None:
    made = _run(["-m", "generator.cli", "new"], "", tmp_path)
    assert made.returncode == 2 and "give either SPEC.yaml or --interactive" in made.stderr
    (tmp_path / "file").write_text("")
    made = _run(["-m", "generator.cli", "new", "-i", "-o", str(tmp_path / "file")], "", tmp_path)
    assert made.returncode == 2 and "is a file, not a directory" in made.stderr
    assert made.stdout == ""  # refused before the first question


def _tree(root: Path) -> dict[str, bytes]:
    """Every file of a project but those that differ by design: the record of how it was made
    and the dependency locks."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != ".msal-webapp.json"
            and p.name not in ("requirements.txt", "requirements-dev.txt")}


def test_same_answers_same_project_as_cookiecutter(tmp_path: Path) -> None:
    """The answers typed to `new --interactive` and to plain cookiecutter (every question, the
    JSON ones last) make the same project, byte for byte."""
    ours = _run(["-m", "generator.cli", "new", "--interactive", "-o", str(tmp_path / "new")],
                "".join(f"{line}\n" for line in _lines_for_new(ANSWERS)), tmp_path)
    assert ours.returncode == 0, ours.stdout[-2000:] + ours.stderr
    theirs = _run(["-m", "cookiecutter", str(TEMPLATE), "-o", str(tmp_path / "cc")],
                  "".join(f"{line}\n" for line in _lines_for_cookiecutter(ANSWERS)), tmp_path)
    assert theirs.returncode == 0, theirs.stdout[-2000:] + theirs.stderr
    new, cc = _tree(tmp_path / "new" / "fabrikam-tasks"), _tree(tmp_path / "cc" / "fabrikam-tasks")
    assert "fabrikam_tasks/config.py" in new
    assert new.keys() == cc.keys()
    assert [name for name in new if new[name] != cc[name]] == []


@pytest.mark.parametrize("output", ["out", "."], ids=["new-output-dir", "current-dir"])
def test_plain_cookiecutter_refusal_leaves_nothing(tmp_path: Path, output: str) -> None:
    """A refused answer typed to plain cookiecutter: the rules' message, one line from
    cookiecutter, no traceback, and no folder (neither the project's nor a new -o folder)."""
    answers = {**ANSWERS, "oidc_issuer": "https://id.fabrikam.com/realms/tasks/"}
    work = tmp_path / "work"
    work.mkdir()
    made = _run(["-m", "cookiecutter", str(TEMPLATE), "-o", output],
                "".join(f"{line}\n" for line in _lines_for_cookiecutter(answers)), work)
    assert made.returncode == 1
    assert "ERROR: oidc_issuer: 'https://id.fabrikam.com/realms/tasks/' must not end with '/'" \
        in made.stdout
    assert "answer(s) refused; nothing was generated" in made.stdout
    assert "Traceback" not in made.stdout + made.stderr
    assert list(work.iterdir()) == []


def test_a_refusal_a_later_answer_cures_waits_for_it() -> None:
    """A B2C tenant given by its id needs a custom domain, asked next: the tenant is not
    refused before the domain had its turn; without one, the end names both questions."""
    tenant = "aaaabbbb-0000-cccc-1111-dddd2222eeee"
    flows = {"sign_up_sign_in": "B2C_1_signupsignin"}
    head = ["Woodgrove", "", "", "1", "3", tenant]
    tail = ["", "1", "{}", "1", "{}", "", ""]
    answers, transcript = _ask([*head, json.dumps({**flows, "domain": "login.woodgrove.com"}),
                                *tail])
    assert "refused" not in transcript
    assert R.context_to_spec(answers)["authority"]["domain"] == "login.woodgrove.com"
    answers, transcript = _ask([*head, json.dumps(flows), *tail,
                                "woodgrove.onmicrosoft.com", json.dumps(flows)])
    assert f"refused: entra_tenant: '{tenant}' is a tenant id" in transcript
    assert transcript.count(_prompt("authority_options")) == 2
    assert answers["entra_tenant"] == "woodgrove.onmicrosoft.com"
