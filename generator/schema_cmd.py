"""`msal-webapp schema` (the spec's JSON Schema) and `msal-webapp options` (every option, its
values and its default), both read from the rules' constants through generator.json_schema."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from typing import Any

from generator import json_schema

__all__ = ["option_rows", "options_text", "schema_text"]


def schema_text() -> str:
    return json_schema.text()


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _values(node: dict[str, Any]) -> str:
    if "enum" in node:
        return " | ".join(str(v) for v in node["enum"])
    if node.get("type") == "boolean":
        return "true | false"
    return str(node.get("description", node.get("type", "")))


def _kinds_of(node: dict[str, Any], key: str) -> list[str]:
    """The kinds whose `if kind == ...` branch allows `key` (authority, credential)."""
    kinds = []
    for branch in node.get("allOf", ()):
        kind = branch["if"]["properties"]["kind"].get("const")
        if key in branch["then"]["properties"] and kind is not None:
            kinds.append(kind)
    return kinds


def option_rows() -> Iterator[tuple[str, str, str]]:
    """(option path, its values, its default or 'required') for every option of a spec."""
    schema = json_schema.spec_schema()
    required = set(schema["required"])
    for name, node in schema["properties"].items():
        if name in ("authority", "credential"):
            for key, sub in node["properties"].items():
                if key == "kind":
                    yield f"{name}.kind", _values(sub), "required"
                    continue
                kinds = _kinds_of(node, key)
                branches = [b["then"] for b in node["allOf"]
                            if b["if"]["properties"]["kind"].get("const") in kinds]
                shown = next(b["properties"][key] for b in branches)
                needed = [k for k, b in zip(kinds, branches, strict=True)
                          if key in b.get("required", ())]
                defaults = [f"default: {_show(b['properties'][key]['default'])}"
                            + ("" if len(kinds) == 1 else f" for {k}")
                            for k, b in zip(kinds, branches, strict=True)
                            if "default" in b["properties"][key]]
                default = "; ".join([*defaults, *(
                    ["required"] if needed == kinds else
                    [f"required for {', '.join(needed)}"] if needed else
                    [] if defaults else ["optional"])])
                yield f"{name}.{key} ({'/'.join(kinds)})", _values(shown), default
        elif name == "cache":
            yield "cache.backend", _values(node["properties"]["backend"]), "required"
        elif name == "downstream_apis":
            yield "downstream_apis", str(node["description"]), "required ({} for none)"
            for api, sub in (("graph", node["properties"]["graph"]),
                             ("<name>", node["additionalProperties"])):
                for key, field in sub["properties"].items():
                    is_required = key in sub.get("required", ())
                    default = ("required" if is_required else f"default: {_show(field['default'])}"
                               if "default" in field else "optional")
                    yield f"downstream_apis.{api}.{key}", _values(field), default
        elif name == "authorization":
            for key, field in node["properties"].items():
                default = (f"default: {_show(field['default'])}" if "default" in field
                           else "optional")
                yield f"authorization.{key}", _values(field), default
        else:
            default = ("required" if name in required else
                       f"default: {_show(node['default'])}" if "default" in node else "optional")
            yield name, _values(node), default


def options_text(width: int = 100) -> str:
    rows = list(option_rows())
    left = max(len(path) for path, _, _ in rows) + 2
    lines = []
    for path, values, default in rows:
        wrapped = textwrap.wrap(f"{values}  [{default}]", width=max(30, width - left))
        lines.append(path.ljust(left) + wrapped[0])
        lines.extend(" " * left + more for more in wrapped[1:])
    return "\n".join(lines) + "\n"
