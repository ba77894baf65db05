"""`msal-webapp` command line: validate a YAML spec and render the template atomically."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from msal_webapp_rules import lock

from generator import __version__, doctor, interactive, registration, schema_cmd, update
from generator.render import RenderError, TargetExistsError, render
from generator.spec import SpecError, context_for_file, rules, spec_to_context, template_dir

EXIT_OK, EXIT_RENDER, EXIT_SPEC, EXIT_INTERRUPTED = 0, 1, 2, 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="msal-webapp",
        description="Generate a Python web app that signs users in with Microsoft Entra ID "
                    "(msal) and calls web APIs, from a YAML spec (see docs/spec.md).",
    )
    parser.add_argument("--version", action="version", version=f"msal-webapp {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    new = sub.add_parser("new", help="validate SPEC and generate the project")
    new.add_argument("spec", type=Path, nargs="?", metavar="SPEC.yaml")
    new.add_argument("-i", "--interactive", action="store_true",
                     help="instead of SPEC, answer the template's questions (only those that "
                          "apply; each answer is checked at once)")
    new.add_argument("-o", "--output-dir", type=Path, default=Path("."), metavar="DIR",
                     help="directory to create the project in (default: .)")
    new.add_argument("--force", action="store_true",
                     help="replace an existing project directory (only after a successful render)")
    new.add_argument("--no-lock", action="store_true",
                     help="do not write the locked requirements (requirements.txt and "
                          f"requirements-dev.txt, compiled by uv from the package index; also "
                          f"{lock.NO_LOCK_ENV}=1); README.md says how to write them later")
    # `msal-webapp check`'s renders: throwaway projects, neither locked nor kept as the merge
    # base of a later `update` (they would push real projects' bases out of its cache).
    new.add_argument("--throwaway", action="store_true", help=argparse.SUPPRESS)
    check = sub.add_parser("validate", help="only validate SPEC")
    check.add_argument("spec", type=Path, metavar="SPEC.yaml")
    sub.add_parser("schema", help="print the spec's JSON Schema (for editors: complete and "
                   "check a spec as you type it; docs/spec.schema.json)")
    sub.add_parser("options", help="list every option of a spec, its values and its default")
    register = sub.add_parser(
        "register", help="print the Azure CLI script that creates the project's app registration "
        "(from its registration.json)")
    register.add_argument("project", type=Path, nargs="?", default=Path("."), metavar="PROJECT",
                          help="the generated project's directory (default: .)")
    register.add_argument("--apply", action="store_true",
                          help="run the script with az (must be on PATH and signed in)")
    register.add_argument("--admin-consent", action="store_true",
                          help="also grant admin consent (needs a tenant administrator)")
    check_command = sub.add_parser(
        "check", help="render SPEC(s), or combinations of their option values, then lint, "
        "type-check and run the own test suite of each project",
        description="Render each SPEC (or, with --matrix, combinations of its framework, "
        "cache store and credential kind), then run ruff, mypy and the project's own test "
        "suite on each, with this interpreter's environment (or --venv). Exit 0 if every "
        "project passed, 1 if one failed or a spec was refused.")
    check_command.add_argument(
        "specs", type=Path, nargs="+", metavar="SPEC.yaml",
        help="spec files, or generated projects (their recorded spec, .msal-webapp.json)")
    check_command.add_argument(
        "--matrix", choices=("none", "pairwise", "full"), default="none",
        help="none: the specs as given (default); pairwise: also other values of the --vary "
        "options, every pair of values in at least one project; full: every combination")
    check_command.add_argument(
        "--vary", default="framework,cache,credential", metavar="OPTIONS",
        help="the options --matrix varies (comma-separated; default: framework,cache,"
        "credential)")
    check_command.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                               help="projects checked at the same time (default: 1)")
    check_command.add_argument("--junit", type=Path, metavar="FILE",
                               help="also write a JUnit XML report (a test case per project)")
    check_command.add_argument(
        "--pytest-args", default="", metavar="ARGS",
        help='more arguments for each project\'s pytest, e.g. --pytest-args="-k web_flow"')
    check_command.add_argument(
        "--venv", action="store_true",
        help="install each project into a virtual environment of its own (slow; needs the "
        "package index) instead of using this interpreter's environment")
    check_command.add_argument(
        "--work-dir", type=Path, metavar="DIR",
        help="render the projects into DIR and keep them (default: a temporary directory, "
        "removed when every project passed)")
    update.add_parser(sub)
    doctor.add_parser(sub)
    return parser


def _register(args: argparse.Namespace) -> int:
    try:
        text = registration.script(registration.load(args.project),
                                   admin_consent=args.admin_consent)
        if not args.apply:
            print(text, end="")
            return EXIT_OK
        return EXIT_OK if registration.apply(text) == 0 else EXIT_RENDER
    except registration.RegistrationError as exc:
        _error(str(exc))
        return EXIT_SPEC


def next_steps(target: Path) -> str:
    """What to type after `new`: a virtual environment, the install, a local run, the tests."""
    bin_dir = ".venv\\Scripts\\" if os.name == "nt" else ".venv/bin/"
    return "\n".join([
        "Next steps:",
        f"  cd {shlex.quote(str(target))}",
        f"  python -m venv .venv && {bin_dir}pip install -e '.[dev]'",
        f"  {bin_dir}python -m devprovider   # run it locally at http://localhost:5000 with a "
        "local sign-in provider (--port to change); no app registration needed",
        f"  {bin_dir}python -m pytest        # its own test suite, offline",
        "  README.md: run it against your own app registration (.env) and deploy it",
    ])


def _error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def _output_dir_problem(output_dir: Path) -> str | None:
    """Why `-o DIR` cannot hold a project (a file, or a file on its path), before rendering:
    else the render would end in a bare "[Errno 17] File exists"."""
    for folder in (output_dir, *output_dir.parents):
        if folder.exists():
            if folder.is_dir():
                return None
            return (f"-o {output_dir}: {folder} is a file, not a directory; give the directory "
                    "to create the project in (it is created if missing)")
    return None


def _interactive_context() -> dict[str, Any] | int:
    """The context of `new --interactive`'s answers, or the exit code when there is none."""
    try:
        answers = interactive.ask(sys.stdin, sys.stdout)
        return spec_to_context(rules().context_to_spec(answers))
    except interactive.NoAnswer as exc:
        _error(f"{exc}; nothing was written")
    except SpecError as exc:
        for message in exc.messages:
            _error(message)
        print(f"{len(exc.messages)} problem(s); nothing was written.", file=sys.stderr)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        _error("interrupted; nothing was written")
        return EXIT_INTERRUPTED
    return EXIT_SPEC


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "register":
        return _register(args)
    if args.command == "update":
        return update.command(args)
    if args.command == "doctor":
        return doctor.command(args)
    if args.command == "check":
        from generator import check  # imports the runner's modules only when it runs

        return check.command(args)
    if args.command in ("schema", "options"):
        text = schema_cmd.schema_text() if args.command == "schema" else schema_cmd.options_text()
        print(text, end="")
        return EXIT_OK
    if args.command == "new" and (args.spec is None) == (not args.interactive):
        parser.error("new: give either SPEC.yaml or --interactive")
    if args.command == "new" and args.interactive:
        problem = _output_dir_problem(args.output_dir)  # before the questions, not after
        if problem:
            _error(problem)
            return EXIT_SPEC
        found = _interactive_context()
        if isinstance(found, int):
            return found
        context = found
    else:
        try:
            context = context_for_file(args.spec)
        except SpecError as exc:
            for message in exc.messages:
                _error(message)
            print(f"{args.spec}: {len(exc.messages)} problem(s); nothing was written.",
                  file=sys.stderr)
            return EXIT_SPEC
    if args.command == "validate":
        print(f"{args.spec}: valid (project {context['project_slug']!r})")
        return EXIT_OK
    problem = _output_dir_problem(args.output_dir)
    if problem:
        _error(problem)
        return EXIT_SPEC
    try:
        target = render(context, args.output_dir, template_dir(), force=args.force)
    except TargetExistsError as exc:
        _error(f"{exc} already exists; choose another -o DIR or project_slug, or pass --force "
               "to replace it")
        return EXIT_SPEC
    except RenderError as exc:
        _error(f"rendering failed, nothing was written: {exc}")
        return EXIT_RENDER
    except KeyboardInterrupt:
        _error("interrupted; nothing was written")
        return EXIT_INTERRUPTED
    except OSError as exc:
        _error(f"cannot write the project: {exc}")
        return EXIT_RENDER
    throwaway = args.command == "new" and args.throwaway
    if not throwaway:
        update.remember(target)  # the merge base of its first update
    print(f"Created {context['project_name']!r} in {target}")
    if not (throwaway or args.no_lock or lock.disabled()):
        # After the project is complete: a lock that cannot be made (no network, no index)
        # leaves the project as it is and says how to make it later.
        problem = lock.write_locks(target, context["cache_backend"])
        if problem is None:
            print(f"Locked the dependencies: {lock.RUNTIME}, {lock.DEV}")
        else:
            print(f"warning: {problem}", file=sys.stderr)
    print(next_steps(target))
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
