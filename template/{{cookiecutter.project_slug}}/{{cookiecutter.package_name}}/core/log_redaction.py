"""Codes, verifiers, tokens and secrets out of every log record of the process.

What would otherwise reach a log: the authorization code in the query of the sign-in answer
(`response_mode=query` in local development), which every access log records (werkzeug's,
Django's development server, uvicorn's); MSAL's DEBUG `token_cache` event, which masks the
refresh token and the client secret but not the code or the PKCE verifier; a token in an
error message. Rather than a filter on each handler (every server configures its own, some
after the app is built), the record factory redacts the message and its arguments as each
record is made, whatever logger, handler or formatter it then meets: uvicorn's access log
formats its arguments itself, not the message.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

REDACTED = "[redacted]"
# Names of fields whose values are credentials, in a query or form (`code=...`), as JSON or
# a Python dict (`"code": "..."`), or as a header (`Authorization: Bearer ...`).
_SENSITIVE = (r"code|code_verifier|access_token|refresh_token|id_token|client_secret"
              r"|client_assertion|assertion|password|client_info")
_PATTERNS = (
    # code=abc (query strings, form bodies), not e.g. error_code= or status_code=
    (re.compile(rf"(?<![\w-])((?:{_SENSITIVE})=)[^&\s\"'#;,]+"), rf"\1{REDACTED}"),
    # "code": "abc" and 'code': 'abc' (JSON, dict reprs)
    (re.compile(rf"""((["'])(?:{_SENSITIVE})\2\s*:\s*)(["'])(?:(?!\3).)*\3"""),
     rf"\1\3{REDACTED}\3"),
    # A JWT anywhere (access and ID tokens, client assertions).
    (re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*"), REDACTED),
    (re.compile(r"(?i)(bearer\s+)[\w.~+/-]+=*"), rf"\1{REDACTED}"),
)


def redact(text: str) -> str:
    """`text` with the values of credentials replaced by REDACTED."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redacted(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


def _redacted_args(args: Any) -> Any:
    if isinstance(args, tuple):
        return tuple(_redacted(arg) for arg in args)
    if isinstance(args, Mapping):
        return {key: _redacted(value) for key, value in args.items()}
    return args


class _RedactedRecord(logging.LogRecord):
    def getMessage(self) -> str:  # noqa: N802 (logging's name)
        # Arguments that are not strings (an exception, a URL object) are formatted here.
        return redact(super().getMessage())


_installed = False


def install() -> None:
    """Make every log record of the process from now on a redacted one (idempotent)."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if type(record) is logging.LogRecord:  # another library's own record class is kept
            record.__class__ = _RedactedRecord
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        record.args = _redacted_args(record.args)
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
