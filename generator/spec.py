"""Spec loading (YAML) and the validation rules: the template's own `msal_webapp_rules`."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType
from typing import Any

import msal_webapp_rules  # the template's own package (see generator/paths.py)
import yaml
from msal_webapp_rules import SpecError

from generator.paths import template_dir

__all__ = ["MAX_SPEC_BYTES", "SpecError", "context_for_file", "load_spec", "parse_spec", "rules",
           "spec_to_context", "template_dir", "validate_spec"]


# The largest spec file read. Real specs are under 1 KB (examples/) and one with every option,
# thirty APIs and generous comments stays under 20 KB; PyYAML reads about 3 MB of text a
# second here, so at 256 KiB parsing is over in a tenth of a second, while a 50 MB file (a
# mistake or an attack) is refused at once instead of after a minute.
MAX_SPEC_BYTES = 256 * 1024


def rules() -> ModuleType:
    """The rules package (the one copy, which the template's hooks run too)."""
    return msal_webapp_rules


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (PyYAML silently keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                # Merged mappings are copied pair by pair, so merges of merges grow
                # exponentially while being read; plain aliases (shared, counted) are enough.
                raise yaml.constructor.ConstructorError(
                    None, None, "merge keys ('<<') are not supported; repeat the keys, or reuse "
                    "a whole value through an alias (e.g. scopes: *todo_scopes)",
                    key_node.start_mark,
                )
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first on line {seen[key] + 1})",
                    key_node.start_mark,
                )
            if isinstance(key, (str, int, float, bool)):
                seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def parse_spec(text: str, source: str = "<spec>") -> dict[str, Any]:
    """Parse YAML text into a mapping; SpecError with file:line:column on bad YAML."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        # Not chained: the YAML error's frames hold node graphs that a traceback printer
        # would expand alias by alias (a billion-laughs document), and the message has it all.
        raise SpecError([f"{where}: invalid YAML: {problem}"]) from None
    except yaml.YAMLError as exc:
        raise SpecError([f"{source}: invalid YAML: {exc}"]) from exc
    except RecursionError as exc:  # PyYAML composes nested collections recursively
        raise SpecError([f"{source}: the spec nests mappings and lists too deeply to be read "
                         "(a real spec needs four levels)"]) from exc
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise SpecError([f"{source}:1: the spec must be a YAML mapping of settings "
                         f"(project_name: ..., framework: ...), but it is {kind}"])
    return data


def load_spec(path: Path) -> dict[str, Any]:
    """Read and parse a spec file, refusing one over MAX_SPEC_BYTES before parsing any of it."""
    if path.is_dir():
        raise SpecError([f"{path}: SPEC.yaml is a directory, not a spec file; give the YAML file "
                         f"itself (e.g. {path / 'app.yaml'})"])
    try:
        with path.open("rb") as file:
            size = os.fstat(file.fileno()).st_size
            if size > MAX_SPEC_BYTES:
                raise SpecError([_too_big(path, f"is {size:,} bytes, over")])
            # A pipe or a device reports no size: read one byte more than the limit to know.
            data = file.read(MAX_SPEC_BYTES + 1)
    except OSError as exc:
        raise SpecError([f"{path}: cannot read the spec: {exc}"]) from exc
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError([_too_big(path, "is larger than")])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError([f"{path}: cannot read the spec: it is not UTF-8 text ({exc})"]) from exc
    return parse_spec(text, str(path))


def _too_big(path: Path, size: str) -> str:
    """`size`: 'is 52,428,800 bytes, over' or 'is larger than' (a pipe or a device)."""
    return (f"{path}: the spec file {size} the limit of {MAX_SPEC_BYTES:,} bytes "
            f"({MAX_SPEC_BYTES // 1024} KiB; a spec is a few kilobytes of settings), refused "
            "before parsing; check that this is the spec you meant, and remove long comments "
            "or values")


def validate_spec(spec: dict[str, Any]) -> list[str]:
    return msal_webapp_rules.validate_spec(spec)


def spec_to_context(spec: dict[str, Any]) -> dict[str, Any]:
    """Validate, then map to the cookiecutter context; SpecError lists every problem."""
    messages = validate_spec(spec)
    if messages:
        raise SpecError(messages)
    return msal_webapp_rules.spec_to_context(spec)


def context_for_file(path: Path) -> dict[str, Any]:
    return spec_to_context(load_spec(path))
