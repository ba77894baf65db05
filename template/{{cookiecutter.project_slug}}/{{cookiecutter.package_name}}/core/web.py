# Managed by the msal-webapp template: regenerate rather than edit (your code goes outside core/).
"""Web-facing rules every adapter applies the same way: cookies, CSRF, the consent loop guard.

Adapters translate these into their framework's calls; none of the decisions live in adapters.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from .auth import AuthService, SignInResult, User
from .downstream import DownstreamApis
from .errors import InteractionRequired
from .identity import MsalClients
from .settings import Settings
from .token_cache import AccountCaches, build_store

log = logging.getLogger(__name__)

# Keys this app keeps in the (server-side) session. Never tokens.
SESSION_USER = "user"
SESSION_CSRF = "csrf"
SESSION_INTERACTION = "interaction"

# A consent / re-sign-in round trip that did not make the token obtainable is not repeated
# within this window: the user sees an error page instead of an endless redirect loop.
LOOP_WINDOW_SECONDS = 300


# Sent with every response: pages show personal data and must not be framed, sniffed or cached.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self' "
                               "https: http://localhost:*",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class CookieSpec:
    name: str
    max_age: int
    secure: bool
    samesite: str
    httponly: bool = True
    path: str = "/"


def flow_cookie(settings: Settings) -> CookieSpec:
    """The cookie carrying the in-flight sign-in (like ASP.NET Core's correlation cookie).

    The provider returns with a cross-site POST: only a SameSite=None cookie comes along, and
    browsers accept SameSite=None only with Secure. In local development on http://localhost the
    provider's pages are on the same site, so Lax without Secure works there.
    """
    if settings.secure_cookies:
        # __Host-: the browser enforces Secure, Path=/ and no Domain for this name.
        return CookieSpec("__Host-auth-flow", settings.sign_in_timeout_seconds, True, "None")
    return CookieSpec("auth-flow", settings.sign_in_timeout_seconds, False, "Lax")


def session_cookie_name(settings: Settings) -> str:
    return "__Host-session" if settings.secure_cookies else "session"


def csrf_token(session: MutableMapping[str, Any]) -> str:
    """The session's CSRF token for forms that change state (sign-out)."""
    token = session.get(SESSION_CSRF)
    if not token:
        token = session[SESSION_CSRF] = secrets.token_urlsafe(32)
    return str(token)


def csrf_valid(session: MutableMapping[str, Any], submitted: str | None) -> bool:
    expected = session.get(SESSION_CSRF)
    return bool(expected and submitted and hmac.compare_digest(str(expected), submitted))


def interaction_key(scopes: Sequence[str], claims: str | None) -> str:
    return hashlib.sha256(f"{' '.join(sorted(scopes))}|{claims or ''}".encode()).hexdigest()[:32]


def should_interact(session: MutableMapping[str, Any], error: InteractionRequired) -> bool:
    """False if the user just went through this very round trip and it did not help."""
    last = session.get(SESSION_INTERACTION) or {}
    return not (last.get("key") == interaction_key(error.scopes, error.claims)
                and time.time() - float(last.get("at", 0)) < LOOP_WINDOW_SECONDS)


def begin_session(session: MutableMapping[str, Any], result: SignInResult) -> None:
    """Fill a freshly rotated session after sign-in."""
    session.clear()
    session[SESSION_USER] = result.user.to_dict()
    if result.purpose:
        session[SESSION_INTERACTION] = {"key": result.purpose, "at": time.time()}


def current_user(session: MutableMapping[str, Any]) -> User | None:
    return User.from_dict(session.get(SESSION_USER))


def api_succeeded(session: MutableMapping[str, Any]) -> None:
    if SESSION_INTERACTION in session:
        del session[SESSION_INTERACTION]


@dataclass
class Services:
    """Everything the adapters need, built once per process."""

    settings: Settings
    caches: AccountCaches
    clients: MsalClients
    auth: AuthService
    apis: DownstreamApis


def build_services(settings: Settings) -> Services:
    store = build_store(settings.token_cache_backend, settings.token_cache_dir,
                        settings.token_cache_max_entries, settings.token_cache_ttl_seconds)
    caches = AccountCaches(store, settings.token_cache_prefix)
    clients = MsalClients(settings)
    auth = AuthService(settings, clients, caches)
    return Services(settings=settings, caches=caches, clients=clients, auth=auth,
                    apis=DownstreamApis(settings, auth, clients.http))
