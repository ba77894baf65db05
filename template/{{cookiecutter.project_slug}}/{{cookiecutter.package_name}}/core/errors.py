# Managed by the msal-webapp template: regenerate rather than edit (your code goes outside core/).
"""Exceptions the adapters turn into redirects or error pages, and what they say in a log.

Text from outside (a provider's error description, an API's answer) reaches logs through these
exceptions' messages: `loggable` escapes it, so that it cannot forge log lines.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def loggable(text: object, limit: int = 500) -> str:
    """`text` from outside (a provider's error description, an API's answer, a header) made
    safe for a log line: control characters escaped, so that a newline cannot forge a line of
    its own, and at most `limit` characters."""
    value = str(text)
    if len(value) > limit:
        value = value[:limit] + "..."
    return _CONTROL.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), value)


class SignInError(Exception):
    """The sign-in callback could not complete.

    `reason` is a stable code for logs and tests; `message` is what the user reads.
    """

    def __init__(self, reason: str, message: str, detail: str = "", *,
                 retry: str = "/login", status: int = 400, reference: str = "",
                 admin_consent: str | None = None) -> None:
        super().__init__(f"{reason}: {loggable(detail or message)}")
        self.reason = reason
        self.message = message
        self.detail = detail
        self.retry = retry  # a local URL that lets the user try again
        self.status = status  # 400: the answer was wrong; 502/503: a service behind us failed
        # The provider's error code and ids, to quote to an administrator (provider_errors.py).
        self.reference = reference
        # Entra's admin-consent page for this app, when only an administrator can consent.
        self.admin_consent = admin_consent


class InteractionRequired(Exception):
    """No token can be had silently: the user must sign in or consent, then come back.

    `claims` is a claims challenge (JSON) to pass to the provider, if one caused this.
    """

    def __init__(self, scopes: Sequence[str], *, reason: str, login_hint: str | None = None,
                 claims: str | None = None) -> None:
        super().__init__(f"interaction required ({reason}) for {' '.join(scopes)}")
        self.scopes = list(scopes)
        self.reason = reason
        self.login_hint = login_hint
        self.claims = claims


class TokenAcquisitionError(Exception):
    """The provider refused in a way another sign-in cannot fix (bad credential, outage...)."""

    def __init__(self, error: str, description: str = "") -> None:
        super().__init__(loggable(f"{error}: {description}" if description else error))
        self.error = error
        self.description = description


class CredentialUnavailable(TokenAcquisitionError):
    """The app's own credential could not be produced: its file cannot be read, the managed
    identity endpoint failed, the user's assertion function raised. `label` names the
    credential (never its value)."""

    def __init__(self, label: str, detail: str) -> None:
        super().__init__("credential_unavailable", f"{label}: {detail}")
        self.label = label


class CredentialRejected(TokenAcquisitionError):
    """The identity provider refused the app's credential (and any other one configured).
    Not the user's fault and not fixed by signing in again: an operator must act."""

    def __init__(self, label: str, error: str, description: str) -> None:
        super().__init__(error, f"{label}: {description}")
        self.label = label


class StoreUnavailable(Exception):
    """The session or token-cache store failed (disk full or read-only, server gone...).

    The user gets a page saying so, never a 500 and never a sign-in loop; `what` names the
    store for logs ("session store", "token cache").
    """

    def __init__(self, what: str, detail: str = "") -> None:
        super().__init__(loggable(f"{what} unavailable: {detail}" if detail else
                                  f"{what} unavailable"))
        self.what = what


class DownstreamApiError(Exception):
    """A downstream API answered with an error status (after any retries the call allowed).

    `retry_after`: the seconds the API asked the app to wait (a 429 or 503 with Retry-After,
    which the call could not wait out within its deadline), else None."""

    def __init__(self, api: str, status: int, body: str, *,
                 retry_after: float | None = None) -> None:
        super().__init__(f"API {api!r} answered HTTP {status}" + (
            f" (retry after {retry_after:g} s)" if retry_after is not None else ""))
        self.api = api
        self.status = status
        self.body = body[:2000]
        self.retry_after = retry_after

    @property
    def throttled(self) -> bool:
        """The API is busy or down for a while (429 Too Many Requests, 503 Unavailable)."""
        return self.status in (429, 503)


class ResponseTooLarge(Exception):
    """An API's answer is larger than API_MAX_RESPONSE_BYTES: refused on its Content-Length,
    or cut off as soon as more than that arrived (the rest is never read)."""

    def __init__(self, url: str, limit: int, announced: int | None = None) -> None:
        size = f"announced {announced} bytes" if announced is not None else "more bytes"
        super().__init__(loggable(f"{url}: answer too large ({size}; the limit is {limit})"))
        self.limit = limit
        self.announced = announced
