"""`msal-webapp new --interactive`: cookiecutter's questions, only those that apply.

The questions are the template's own (cookiecutter.json: its variables, in its order, their
prompts and choices, their defaults rendered by cookiecutter from the answers so far), so the
same answers make the same context as plain `cookiecutter` would. Unlike cookiecutter it skips
what an earlier answer ruled out (an Entra tenant after choosing another OpenID Connect
provider, Graph's scopes after "no Graph"), asks the JSON questions in their place instead of
last, and checks each answer with the rules at once: a refused answer is asked again, with the
rule's message.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from typing import Any, TextIO

import msal_webapp_rules as R
from msal_webapp_rules import authorities

from generator.paths import template_dir

__all__ = ["NoAnswer", "ask", "applies", "questions"]

Answers = dict[str, Any]


class NoAnswer(Exception):
    """The input ended before every question was answered."""


def _cookiecutter_json() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (template_dir() / "cookiecutter.json").read_text(encoding="utf-8"))
    return data


def questions() -> list[str]:
    """The variables cookiecutter asks about, in cookiecutter.json's order."""
    return [key for key in _cookiecutter_json() if not key.startswith("_")]


# Whether a question applies, given the answers before it (cookiecutter.json's order); each
# condition follows the rules' own tables (the keys each authority and credential kind has).
_APPLIES: dict[str, Callable[[Answers], bool]] = {
    "entra_instance": lambda a: "instance" in R.AUTHORITY_KEYS[a["authority_kind"]],
    "entra_tenant": lambda a: "tenant" in R.AUTHORITY_KEYS[a["authority_kind"]],
    "oidc_issuer": lambda a: "issuer" in R.AUTHORITY_KEYS[a["authority_kind"]],
    "authority_options": lambda a: a["authority_kind"] in authorities.OPTIONS,
    "assertion_source": lambda a: "source" in R.CREDENTIAL_KEYS[a["credential_kind"]],
    "assertion_callable": lambda a: (a["credential_kind"] == "assertion"
                                     and a["assertion_source"] == "callable"),
    # Azure AD B2C issues no tokens for Microsoft Graph (the rules refuse it).
    "call_graph": lambda a: a["authority_kind"] != authorities.B2C,
    "graph_scopes": lambda a: bool(a["call_graph"]),
    "graph_base_url": lambda a: bool(a["call_graph"]),
    "graph_sdk": lambda a: bool(a["call_graph"]),
    # Only "" can be the answer without an API.
    "sign_in_api": lambda a: bool(a["call_graph"] or a["downstream_apis"]),
}
# The answer of a question that does not apply, where its default would not do.
_NOT_ASKED: dict[str, Any] = {"call_graph": False, "sign_in_api": ""}


def applies(key: str, answers: Answers) -> bool:
    rule = _APPLIES.get(key)
    return rule is None or rule(answers)


def _render_default(raw: Any, answers: Answers, env: Any) -> Any:
    """cookiecutter.json's default for a variable, rendered by cookiecutter from the answers
    so far (the first choice of a list)."""
    from cookiecutter.prompt import render_variable

    if isinstance(raw, list):
        return render_variable(env, raw[0], answers)
    return render_variable(env, raw, answers)


def _variable_of(message: str) -> str:
    """The cookiecutter variable a rules message is about ('graph_scopes[1]: ...' ->
    'graph_scopes'); Graph's own API entry is the call_graph question."""
    path = message.split(":", 1)[0]
    if path.startswith(f"downstream_apis.{R.GRAPH}") and not path.startswith(
            f"downstream_apis.{R.GRAPH}_"):
        return "call_graph"
    return re.split(r"[.\[ ]", path, maxsplit=1)[0]


def _mentions(message: str, key: str) -> bool:
    """Whether a rules message names the variable `key` or a spec field it holds."""
    names = {key} | {spec for spec, variable in R.SPEC_TO_CONTEXT_PATH
                     if variable.split(".")[0] == key}
    text = message.split(":", 1)[1] if ":" in message else message
    return any(re.search(rf"(?<![\w.]){re.escape(name)}(?![\w])", text) for name in names)


class _Asker:
    def __init__(self, stdin: TextIO, stdout: TextIO) -> None:
        self.stdin, self.stdout = stdin, stdout
        self.data = _cookiecutter_json()
        self.prompts: dict[str, Any] = self.data.get("__prompts__", {})
        from cookiecutter.environment import StrictEnvironment

        self.env = StrictEnvironment(context={"cookiecutter": self.data})

    def line(self, prompt: str) -> str:
        if self.stdin is sys.stdin and self.stdout is sys.stdout and sys.stdin.isatty():
            try:
                return input(prompt)  # a terminal: line editing (readline) where Python has it
            except EOFError:
                self.stdout.write("\n")
                raise NoAnswer("the input ended before every question was answered") from None
        self.stdout.write(prompt)
        self.stdout.flush()
        text = self.stdin.readline()
        if not text:
            self.stdout.write("\n")
            raise NoAnswer("the input ended before every question was answered")
        return text.rstrip("\r\n")

    def say(self, text: str) -> None:
        self.stdout.write(text + "\n")

    def question(self, key: str) -> str:
        prompt = self.prompts.get(key, key)
        return str(prompt["__prompt__"] if isinstance(prompt, dict) else prompt)

    def one(self, key: str, default: Any) -> Any:
        """One answer, as cookiecutter would take it (until it is a value of the right kind)."""
        raw = self.data[key]
        if isinstance(raw, list):
            labels = self.prompts.get(key, {})
            options = list(raw)
            self.say(self.question(key))
            for number, option in enumerate(options, 1):
                label = labels.get(option, option) if isinstance(labels, dict) else option
                self.say(f"    {number} - {label}")
            numbers = [str(n) for n in range(1, len(options) + 1)]
            while True:
                text = self.line(f"    Choose from {', '.join(numbers)} (1): ").strip()
                if not text:
                    return options[0]
                if text in numbers:
                    return options[int(text) - 1]
                if text in options:
                    return text
                self.say(f"  Please choose one of {', '.join(numbers)}")
        if isinstance(raw, bool):
            shown = "y" if default else "n"
            while True:
                text = self.line(f"{self.question(key)} [y/n] ({shown}): ").strip().lower()
                if not text:
                    return bool(default)
                if text in R.TRUE_WORDS | R.FALSE_WORDS:
                    return text in R.TRUE_WORDS
                self.say("  Please answer yes or no")
        if isinstance(raw, dict):
            while True:
                text = self.line(f"{self.question(key)} ({json.dumps(default)}): ").strip()
                if not text:
                    return default
                try:
                    value = json.loads(text)
                except json.JSONDecodeError as exc:
                    self.say(f"  Not valid JSON ({exc.msg} at column {exc.colno}); give a JSON "
                             "object")
                    continue
                if isinstance(value, dict):
                    return value
                self.say("  Give a JSON object ({...})")
        text = self.line(f"{self.question(key)} ({default}): " if default != ""
                         else f"{self.question(key)}: ")
        return text if text.strip() else default

    def problems_of(self, key: str, answers: Answers) -> list[str]:
        """The rules' messages about `key`, with the answers so far and the defaults of the
        questions still to come."""
        context = dict(answers)
        for name in questions():
            if name not in context:
                context[name] = _render_default(self.data[name], context, self.env)
        to_come = [k for k in questions()[questions().index(key) + 1:] if applies(k, context)]
        # A problem that a later answer can still cure (a B2C tenant id needs a domain, asked
        # next) waits for the end.
        return [m for m in R.context_problems(context) if _variable_of(m) == key
                and not any(_mentions(m, k) for k in to_come)]

    def ask(self, key: str, answers: Answers) -> Any:
        default = _render_default(self.data[key], answers, self.env)
        if key == "entra_tenant" and answers.get("authority_kind") in authorities.OPTIONS:
            default = ""  # one tenant of its own: no default fits
        while True:
            answers[key] = self.one(key, default)
            problems = self.problems_of(key, answers)
            if not problems:
                return answers[key]
            for message in problems:
                self.say(f"  refused: {message}")


def ask(stdin: TextIO, stdout: TextIO) -> dict[str, Any]:
    """Ask the questions that apply; the answers as a cookiecutter context the rules accept.
    Raises NoAnswer if the input ends first."""
    asker = _Asker(stdin, stdout)
    answers: Answers = {}
    for key in questions():
        if applies(key, answers):
            asker.ask(key, answers)
        elif key in _NOT_ASKED:
            answers[key] = _NOT_ASKED[key]
        else:
            answers[key] = _render_default(asker.data[key], answers, asker.env)
    # What only the whole set of answers shows (rare: most rules name the later question).
    for _ in range(len(answers)):
        problems = R.context_problems(answers)
        if not problems:
            return answers
        for message in problems:
            asker.say(f"  refused: {message}")
        keys = [k for k in questions() if applies(k, answers)
                and any(_variable_of(m) == k or _mentions(m, k) for m in problems)]
        if not keys:
            raise R.SpecError(problems)
        for key in keys:
            asker.ask(key, answers)
    raise R.SpecError(R.context_problems(answers))
