# Managed by the msal-webapp template: regenerate rather than edit (your code goes outside core/).
"""What the identity provider's error answers say, for pages and logs.

Entra ID answers an error (on the redirect URI, or from its token endpoint) with `error`, an
`error_description` that starts with `AADSTS<code>:` and ends with `Trace ID: ...` and
`Correlation ID: ...` lines, and from the token endpoint also `error_codes`, `trace_id` and
`correlation_id`. The code and the two ids are what Microsoft's support and a tenant's sign-in
logs find a failure by: pages and logs show them (never a token or a code), with the fix for the
common mistakes. Other OpenID Connect providers send `error` and `error_description` only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from .errors import loggable

_CODE = re.compile(r"\bAADSTS(\d{4,9})\b")
_IDS = re.compile(r"\b(Trace|Correlation) ID:\s*([0-9A-Fa-f-]{36})")
_GUID = re.compile(r"^[0-9A-Fa-f-]{36}$")

# Codes that mean a user of the tenant cannot consent for themselves: an administrator must
# (Microsoft's "Unexpected error when performing consent to an application": 90093, 90094; and
# 65001 once an interactive sign-in has not fixed it).
ADMIN_CONSENT_CODES = frozenset({65001, 90093, 90094})

# A log line's room for an error answer: what SignInError keeps of its detail (errors.loggable).
LOG_LIMIT = 500

# The fix of the common mistakes, for the log (the operator) and, where the user can act, the
# page. Codes from Microsoft's AADSTS error reference.
FIXES: dict[int, str] = {
    50011: "the redirect URI is not registered: add REDIRECT_URI exactly (scheme, host, port, "
           "path) under Authentication > Web in the app registration",
    50020: "the account is neither a member nor a guest of the tenant it signed in to: invite "
           "it as a guest of that tenant, or make the registration multi-tenant and set "
           "AUTHORITY to organizations",
    50194: "the registration is single-tenant but AUTHORITY is organizations or common: set "
           "AUTHORITY to the tenant's own authority, or make the registration multi-tenant "
           "(Authentication > Supported account types)",
    65001: "the permission was not consented: an administrator can grant consent for the "
           "organization (Enterprise applications > Permissions), or the user signs in again "
           "and consents",
    90093: "the tenant's consent policy keeps users from consenting: an administrator must "
           "grant consent for the organization",
    90094: "the permission needs an administrator's consent: an administrator must grant "
           "consent for the organization",
    700016: "CLIENT_ID is not an application of this tenant: check CLIENT_ID, the AUTHORITY's "
            "tenant, and the registration's supported account types",
    70021: "no federated credential of the app registration matches the assertion: its "
           "issuer, subject and audience must be the token's exactly (a managed identity: a "
           "user-assigned identity's object id as subject; system-assigned identities are not "
           "documented as federated credentials)",
    7000215: "the client secret is wrong: use the secret's Value (shown once when it was "
             "created), not its Secret ID",
    7000222: "the client secret has expired: create a new one (Certificates & secrets) and "
             "set CLIENT_SECRET, or add it as the next credential first to rotate",
}


@dataclass(frozen=True)
class ProviderError:
    error: str
    summary: str  # the description's first line (Entra: "AADSTS<code>: <what happened>")
    codes: tuple[int, ...]
    trace_id: str
    correlation_id: str

    @classmethod
    def of(cls, answer: Mapping[str, Any]) -> ProviderError:
        """From an error answer (a redirect's fields, or a token endpoint's JSON)."""
        description = str(answer.get("error_description") or "")
        codes = [c for c in answer.get("error_codes") or [] if isinstance(c, int)]
        codes += [int(c) for c in _CODE.findall(description) if int(c) not in codes]
        ids = {kind.lower(): value for kind, value in _IDS.findall(description)}

        def field(name: str, kind: str) -> str:
            value = str(answer.get(name) or ids.get(kind) or "")
            return value if _GUID.match(value) else ""

        return cls(error=str(answer.get("error") or ""),
                   summary=description.strip().splitlines()[0] if description.strip() else "",
                   codes=tuple(codes),
                   trace_id=field("trace_id", "trace"),
                   correlation_id=field("correlation_id", "correlation"))

    @property
    def reference(self) -> str:
        """What to quote to an administrator or to Microsoft's support: "AADSTS90094,
        correlation id ..., trace id ..." (what the answer has of these), or ""."""
        parts = [f"AADSTS{code}" for code in self.codes[:1]]
        if self.correlation_id:
            parts.append(f"correlation id {self.correlation_id}")
        if self.trace_id:
            parts.append(f"trace id {self.trace_id}")
        return ", ".join(parts)

    @property
    def fix(self) -> str | None:
        return next((FIXES[code] for code in self.codes if code in FIXES), None)

    @property
    def needs_admin_consent(self) -> bool:
        return any(code in ADMIN_CONSENT_CODES for code in self.codes)

    def for_log(self, limit: int = LOG_LIMIT) -> str:
        """One log line's worth, at most `limit` characters: the error, what it says, the
        reference and the fix (all escaped). What the provider says gives way to the
        reference and the fix, which are what the operator acts on."""
        head = loggable(self.error or "error")
        tail = f" ({self.reference})" if self.reference else ""
        if self.fix:
            tail += f"; fix: {self.fix}"
        if self.summary:
            room = limit - len(head) - len(tail) - len(": ...")
            head += f": {loggable(self.summary, max(room, 60))}"
        return head + tail


def admin_consent_url(authority: str, client_id: str, scopes: list[str], redirect_uri: str
                      ) -> str:
    """Entra's admin-consent page for this app in the authority's tenant (`organizations`
    lets the administrator's own tenant answer): `scopes` the resource's `.default`, and back
    to `redirect_uri` (a registered one: the site root)."""
    parts = urlsplit(authority)
    tenant = parts.path.strip("/").split("/")[0] or "organizations"
    if tenant == "common":
        tenant = "organizations"  # admin consent is a work or school account's
    query = urlencode({"client_id": client_id, "scope": " ".join(scopes),
                       "redirect_uri": redirect_uri})
    return f"{parts.scheme}://{parts.netloc}/{tenant}/v2.0/adminconsent?{query}"
