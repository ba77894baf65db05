"""`msal-webapp` command line: validate a YAML spec and render the template atomically."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from generator import __version__
from generator.render import RenderError, TargetExistsError, render
from generator.spec import SpecError, context_for_file, template_dir

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
    new.add_argument("spec", type=Path, metavar="SPEC.yaml")
    new.add_argument("-o", "--output-dir", type=Path, default=Path("."), metavar="DIR",
                     help="directory to create the project in (default: .)")
    new.add_argument("--force", action="store_true",
                     help="replace an existing project directory (only after a successful render)")
    check = sub.add_parser("validate", help="only validate SPEC")
    check.add_argument("spec", type=Path, metavar="SPEC.yaml")
    return parser


def _error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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
    print(f"Created {context['project_name']!r} in {target}\n"
          "Next steps:\n"
          f"  cd {target}\n"
          "  python -m devprovider   # local development mode: a local sign-in provider, "
          "no app registration needed (see README.md)")
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
