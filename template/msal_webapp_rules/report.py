"""How a value of the spec appears in a message: briefly, and never when it looks like a secret."""

from __future__ import annotations

import difflib
import itertools
import re
from typing import Any

from msal_webapp_rules.schema import (
    DOTTED_NAME_RE,
    ENTRA_SECRET_RE,
    PLACEHOLDER_CHARS,
    SECRET_KEY_FIX,
    SECRET_KEY_WORDS,
    SECRET_SHOWN,
    is_guid,
)


def strong_secret(value: str) -> bool:
    """A string in a credential format: an Entra client secret, a JWT, a PEM block."""
    return bool("-----BEGIN" in value or ENTRA_SECRET_RE.search(value)
                or re.match(r"eyJ[A-Za-z0-9_-]{10,}\.", value))


def looks_like_secret(value: str) -> bool:
    """Whether a string could be a credential, so that no message repeats it.

    Errs on the side of hiding: the message still names the field and the problem.
    """
    if strong_secret(value):
        return True
    if "://" in value and "@" in value:  # user:password@host
        return True
    if len(value) < 20 or any(c.isspace() for c in value) or "/" in value or is_guid(value):
        return False
    classes = sum((any(c.islower() for c in value), any(c.isupper() for c in value),
                   any(c.isdigit() for c in value)))
    # Mixed-case letters and digits in one long word, but not a dotted name like Mail.ReadWrite2.
    return classes == 3 and not DOTTED_NAME_RE.match(value)


def is_secret_key(key: Any) -> bool:
    """Whether a key name says it holds a secret (client_secret, password, api_key, ...)."""
    if not isinstance(key, str):
        return False
    normalised = re.sub(r"[^a-z0-9]", "", key.lower())
    return any(word in normalised for word in SECRET_KEY_WORDS)


def brief(value: Any, depth: int) -> str:
    """A short repr that visits a bounded number of nodes and hides secret-looking strings."""
    if isinstance(value, str):
        if looks_like_secret(value):
            return SECRET_SHOWN
        return repr(value[:80])
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    if isinstance(value, dict):
        if depth <= 0:
            return "{...}" if value else "{}"
        items = [f"{brief(k, 0)}: {brief(v, depth - 1)}"
                 for k, v in itertools.islice(value.items(), 4)]
        return "{" + ", ".join(items) + (", ..." if len(value) > 4 else "") + "}"
    if isinstance(value, list):
        if depth <= 0:
            return "[...]" if value else "[]"
        shown = [brief(v, depth - 1) for v in itertools.islice(value, 4)]
        return "[" + ", ".join(shown) + (", ..." if len(value) > 4 else "") + "]"
    return f"<{type(value).__name__}>"


def show(value: Any) -> str:
    text = brief(value, 2)
    return text if len(text) <= 70 else text[:67] + "..."


def show_key(key: Any) -> str:
    """A mapping key as it appears in a field path (bounded, secrets hidden)."""
    text = str(key) if isinstance(key, (str, int, float, bool)) or key is None else show(key)
    if looks_like_secret(text):
        return SECRET_SHOWN
    return text if len(text) <= 40 else text[:37] + "..."


def safe(text: str) -> str:
    """A value that passed its checks but is echoed in a message: hide it if it looks secret."""
    return SECRET_SHOWN if looks_like_secret(text) else text


def placeholder(value: str) -> str | None:
    found = "".join(c for c in PLACEHOLDER_CHARS if c in value)
    return " ".join(repr(c) for c in found) if found else None



def type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "list",
            dict: "mapping"}.get(type(value), type(value).__name__)


def choices(options: tuple[str, ...] | list[str]) -> str:
    return ", ".join(repr(o) for o in options)


def unknown_key(path: str, key: Any, allowed: tuple[str, ...] | list[str]) -> str:
    where = f"{path}.{show_key(key)}" if path else show_key(key)
    if is_secret_key(key):
        return f"{where}: {SECRET_KEY_FIX}"
    msg = f"{where}: unknown key {show(key)}"
    close = difflib.get_close_matches(str(key), list(allowed), n=1, cutoff=0.6)
    if close:
        msg += f" (did you mean {close[0]!r}?)"
    return msg + f"; allowed keys: {choices(allowed)}"

