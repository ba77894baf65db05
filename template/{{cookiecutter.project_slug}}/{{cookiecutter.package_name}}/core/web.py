# Managed by the msal-webapp template: regenerate rather than edit (your code goes outside core/).
"""The rules of the web, the same for every framework: cookies, headers, CSRF, the consent loop
guard, forwarded headers, request limits.

Plain functions of settings, request values and time: core/flows.py puts them together into
what each page does, core/services.py builds the app, and the adapters only translate (see
core/adapter.py). Time comes in as an argument (the clock given to `build_services`), never
read here.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast
from urllib.parse import urlsplit

from .auth import SignInResult, SignInStart, User, flow_id
from .errors import InteractionRequired
from .sessions import CookieAction, SessionState
from .settings import Settings

log = logging.getLogger(__name__)

# Keys this app keeps in the (server-side) session. Never tokens.
SESSION_USER = "user"
SESSION_CSRF = "csrf"
SESSION_INTERACTION = "interaction"

# A consent / re-sign-in round trip that did not make the token obtainable is not repeated
# within this window: the user sees an error page instead of an endless redirect loop.
LOOP_WINDOW_SECONDS = 300


def security_headers(settings: Settings) -> dict[str, str]:
    """Sent with every response: pages show personal data and must not be framed, sniffed or
    cached. `form-action` also governs the redirects after a form is sent: sign-out posts to
    the app, which redirects to the provider's sign-out page (https; in local development a
    provider on a loopback address, over plain http)."""
    form_targets = "'self' https:"
    if not settings.secure_cookies:
        form_targets += " http://localhost:* http://127.0.0.1:* http://[::1]:*"
    return {
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; "
                                   f"form-action {form_targets}",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
    }


def strict_transport_security(settings: Settings) -> dict[str, str]:
    """HSTS (RFC 6797): browsers then reach the app over https only, for HSTS_SECONDS. Sent
    with responses served over https only (section 7.2: never over plain http), as the app
    sees the request: behind a TLS-terminating proxy, through TRUSTED_PROXY_HOPS' forwarded
    scheme. The default, a year, is what browsers' preload lists ask as a minimum; the app
    runs on https anyway (plain http is refused outside localhost), so there is no http site
    to come back to. Subdomains only when asked (HSTS_INCLUDE_SUBDOMAINS): they may be other
    teams' sites, some still on http. No `preload`: that is the domain owner's decision."""
    if not settings.hsts_seconds:
        return {}
    value = f"max-age={settings.hsts_seconds}"
    if settings.hsts_include_subdomains:
        value += "; includeSubDomains"
    return {"Strict-Transport-Security": value}


def front_channel_headers(settings: Settings) -> dict[str, str]:
    """The front-channel sign-out page's own headers, in place of `security_headers`' CSP.

    The provider loads that page in a hidden iframe of its sign-out page, so the provider's
    origin (the authority's) may frame it, and no other: `frame-ancestors` names it. The page
    loads nothing (`default-src 'none'`). X-Frame-Options stays DENY, the app-wide header: it
    cannot name an origin, and a browser that knows `frame-ancestors` ignores X-Frame-Options
    when a policy has it (HTML standard, "check a navigation response's adherence to
    X-Frame-Options"). A browser that refuses the frame has still sent the request, which is
    what signs out: the provider cannot read the frame's content (another origin) anyway.
    """
    parts = urlsplit(settings.authority or settings.oidc_authority or "")
    provider = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else "'none'"
    return {"Content-Security-Policy": f"default-src 'none'; frame-ancestors {provider}"}


@dataclass(frozen=True)
class CookieSpec:
    name: str
    max_age: int
    secure: bool
    samesite: str
    httponly: bool = True
    path: str = "/"


# Sign-ins in progress at once in one browser (tabs), each with its own flow cookie; starting
# one more drops the oldest, so a browser never piles up cookies.
MAX_SIGN_INS_IN_PROGRESS = 4


def _reaches_redirect_uri(settings: Settings, name: str, max_age: int) -> CookieSpec:
    """A cookie the browser must send with the provider's answer to the redirect URI.

    Over https the provider returns with a cross-site POST: only a SameSite=None cookie comes
    along, and browsers accept SameSite=None only with Secure. In local development on
    http://localhost the answer is a top-level GET (response_mode=query, see auth.py), which
    carries a Lax cookie in every browser, and the cookie does without Secure, which Safari
    refuses on plain http.
    """
    if settings.secure_cookies:
        # __Host-: the browser enforces Secure, Path=/ and no Domain for this name.
        return CookieSpec(f"__Host-{name}", max_age, True, "None")
    return CookieSpec(name, max_age, False, "Lax")


def flow_cookie(settings: Settings) -> CookieSpec:
    """The cookie carrying the in-flight sign-in (like ASP.NET Core's correlation cookie); its
    name is a prefix, completed by `flow_id` so that sign-ins in two tabs do not collide."""
    return _reaches_redirect_uri(settings, "auth-flow", settings.sign_in_timeout_seconds)


def _flow_cookie_named(settings: Settings, name: str) -> CookieSpec:
    """The flow cookie spec under one sign-in's full cookie name."""
    return replace(flow_cookie(settings), name=name)


def _flow_cookie_name(settings: Settings, flow: str) -> str:
    return f"{flow_cookie(settings).name}-{flow}"


def _flow_cookies_in(settings: Settings, cookies: Mapping[str, str]) -> dict[str, str]:
    prefix = _flow_cookie_name(settings, "")
    return {name: value for name, value in cookies.items() if name.startswith(prefix)}


@dataclass(frozen=True)
class CookieChanges:
    """Cookies an adapter sets (spec, value) and deletes (spec: the same name, path and flags)."""

    set: tuple[tuple[CookieSpec, str], ...] = ()
    delete: tuple[CookieSpec, ...] = ()


def sign_in_cookies(settings: Settings, start: SignInStart, request_cookies: Mapping[str, str],
                    flow_expiry: Callable[[str], float], now: float) -> CookieChanges:
    """The new sign-in's flow cookie, and the old flow cookies to drop: expired or unverifiable
    ones (`flow_expiry` of a cookie's value), and the oldest beyond MAX_SIGN_INS_IN_PROGRESS."""
    ages = {name: flow_expiry(value)
            for name, value in _flow_cookies_in(settings, request_cookies).items()}
    live = sorted((name for name, expiry in ages.items() if expiry >= now),
                  key=lambda name: ages[name], reverse=True)
    drop = [name for name in ages if name not in live[:MAX_SIGN_INS_IN_PROGRESS - 1]]
    new = _flow_cookie_named(settings, _flow_cookie_name(settings, start.flow_id))
    return CookieChanges(
        set=((new, start.flow_cookie),),
        delete=tuple(_flow_cookie_named(settings, name) for name in drop),
    )


@dataclass(frozen=True)
class CallbackCookies:
    flow_cookie: str | None  # the flow cookie of the sign-in this answer belongs to
    others_in_progress: bool  # flow cookies of other sign-ins are present
    used: CookieChanges  # delete the used flow cookie: it is single-use, whatever the outcome


def callback_cookies(settings: Settings, request_cookies: Mapping[str, str],
                     auth_response: Mapping[str, str]) -> CallbackCookies:
    """Find the flow cookie of the sign-in that the provider's answer (its `state`) ends."""
    state = auth_response.get("state") or ""
    spec = (_flow_cookie_named(settings, _flow_cookie_name(settings, flow_id(state)))
            if state else None)
    in_progress = _flow_cookies_in(settings, request_cookies)
    value = in_progress.get(spec.name) if spec else None
    return CallbackCookies(
        flow_cookie=value,
        others_in_progress=bool(set(in_progress) - {spec.name if spec else ""}),
        used=CookieChanges(delete=(spec,) if spec and value is not None else ()),
    )


def session_cookie(settings: Settings) -> CookieSpec:
    """The session cookie: only the session's random id (the session is server-side)."""
    return CookieSpec("__Host-session" if settings.secure_cookies else "session",
                      settings.session_lifetime_seconds, settings.secure_cookies, "Lax")


def session_cookie_changes(spec: CookieSpec, action: CookieAction, sid: str | None
                           ) -> CookieChanges:
    """What a session save asks of the session cookie, as the changes every outcome carries."""
    if action == "set" and sid:
        return CookieChanges(set=((spec, sid),))
    if action == "delete":
        return CookieChanges(delete=(spec,))
    return CookieChanges()


# Sign-ins completed in a row, each within this window of the first, after which a page that
# finds no session shows an error instead of starting yet another one: the session store is
# losing sessions (evicting them, failing to read them back) and another round trip would only
# come back to the same place.
SIGNED_IN_GUARD_SECONDS = 60
SIGN_INS_BEFORE_GUARD = 2


def signed_in_cookie(settings: Settings) -> CookieSpec:
    """A counter, no credential; read at the redirect URI, like the flow cookie."""
    return _reaches_redirect_uri(settings, "signed-in", SIGNED_IN_GUARD_SECONDS)


# "<first sign-in, epoch seconds>.<count>", ASCII digits only and short: the cookie comes from
# the browser, and `int()` takes other scripts' digits ("²") and refuses over 4,300 of them.
_SIGN_INS_MARK = re.compile(r"([0-9]{1,12})\.([0-9]{1,4})")


def _sign_ins(mark: str | None, now: float) -> tuple[float, int]:
    """(time of the first, count) of the sign-ins in a row that `mark` records."""
    parsed = _SIGN_INS_MARK.fullmatch(mark or "")
    if parsed is None or not 0 <= now - int(parsed[1]) < SIGNED_IN_GUARD_SECONDS:
        return now, 0
    return int(parsed[1]), int(parsed[2])


def signed_in_cookies(settings: Settings, cookies: Mapping[str, str], now: float
                      ) -> CookieChanges:
    """Set at each completed sign-in: counts sign-ins in a row for `sign_in_refused`."""
    spec = signed_in_cookie(settings)
    first, count = _sign_ins(cookies.get(spec.name), now)
    return CookieChanges(set=((spec, f"{int(first)}.{count + 1}"),))


def signed_out_cookies(settings: Settings) -> CookieChanges:
    return CookieChanges(delete=(signed_in_cookie(settings),))


SESSION_STORE_DOWN = ("This app's session storage is not working, so you cannot stay signed in. "
                      "Please sign in again in a few minutes.")


def sign_in_refused(settings: Settings, session: SessionState, cookies: Mapping[str, str],
                    now: float) -> str | None:
    """Why a page must not send a signed-out user to sign in automatically, or None.

    Either the session store cannot be read, or sign-ins just completed, more than once, and
    their session is already gone: a new sign-in would come back to the same place.
    """
    if session.load_failed:
        return SESSION_STORE_DOWN
    _, count = _sign_ins(cookies.get(signed_in_cookie(settings).name), now)
    return SESSION_STORE_DOWN if count >= SIGN_INS_BEFORE_GUARD else None


def csrf_token(session: MutableMapping[str, Any]) -> str:
    """The session's CSRF token for forms that change state (sign-out)."""
    token = session.get(SESSION_CSRF)
    if not token:
        token = session[SESSION_CSRF] = secrets.token_urlsafe(32)
    return str(token)


def csrf_valid(session: MutableMapping[str, Any], submitted: str | None) -> bool:
    """Whether a form's token is the session's. Compared as bytes: the form is the browser's,
    and `compare_digest` refuses non-ASCII strings."""
    expected = session.get(SESSION_CSRF)
    return bool(expected and submitted and hmac.compare_digest(
        str(expected).encode(), submitted.encode("utf-8", "replace")))


def interaction_key(scopes: Sequence[str], claims: str | None) -> str:
    return hashlib.sha256(f"{' '.join(sorted(scopes))}|{claims or ''}".encode()).hexdigest()[:32]


def should_interact(session: MutableMapping[str, Any], error: InteractionRequired,
                    now: float) -> bool:
    """False if the user just went through this very round trip and it did not help."""
    last = session.get(SESSION_INTERACTION) or {}
    return not (last.get("key") == interaction_key(error.scopes, error.claims)
                and now - float(last.get("at", 0)) < LOOP_WINDOW_SECONDS)


def page_sign_in(settings: Settings, api: str | None) -> tuple[list[str], str]:
    """(scopes, purpose) of the sign-in that a signed-out user opening a page starts.

    A page that calls API X signs in with X's scopes: one provider round trip from a cold start
    instead of a sign-in followed by a consent round trip. The purpose arms the loop guard in
    case X's token still cannot be had afterwards. An app-only API's token is the app's own: the
    user signs in as for any page.
    """
    if (api is None or api == settings.sign_in_api or api not in settings.apis
            or settings.apis[api].app_only):
        return settings.sign_in_scopes, ""
    scopes = list(settings.apis[api].scopes)
    return scopes, interaction_key(scopes, None)


def begin_session(session: MutableMapping[str, Any], result: SignInResult, now: float) -> None:
    """Fill a freshly rotated session after sign-in."""
    session.clear()
    session[SESSION_USER] = result.user.to_dict()
    csrf_token(session)  # now, so that the pages that show the sign-out form write nothing
    if result.purpose:
        session[SESSION_INTERACTION] = {"key": result.purpose, "at": now}


def current_user(session: MutableMapping[str, Any]) -> User | None:
    """The signed-in user of the session, if any."""
    data = session.get(SESSION_USER)
    if not isinstance(session, SessionState):
        return User.from_dict(data)
    # Asked several times per request (the view, the page's template, the save): parsed once.
    derived = session.derived.get(SESSION_USER)
    if derived is None or derived[0] is not data:
        derived = session.derived[SESSION_USER] = (data, User.from_dict(data))
    return cast(User | None, derived[1])


def api_succeeded(session: MutableMapping[str, Any]) -> None:
    if SESSION_INTERACTION in session:
        del session[SESSION_INTERACTION]


# -- requests from outside ---------------------------------------------------------------------
# The forwarded headers the app honours behind TRUSTED_PROXY_HOPS proxies, and no others: the
# client's address, the scheme and the host the browser used. X-Forwarded-Prefix, -Port and
# -Server, and `Forwarded`, are ignored whatever the hops: a client could send them through
# a proxy that does not overwrite them (a prefix would rewrite the app's own links).
FORWARDED_HEADERS = {"for": "x-forwarded-for", "proto": "x-forwarded-proto",
                     "host": "x-forwarded-host"}


def forwarded(header: Callable[[str], str | None], hops: int) -> dict[str, str]:
    """The forwarded values ("for", "proto", "host") set by the outermost of the `hops`
    trusted proxies in front of the app, as werkzeug's ProxyFix counts them: each proxy
    appends what it saw, so the `hops`-th value from the right is the outermost trusted one's
    and values further left came from the client. `header(name)`: a request header (lower-case
    name) or None. A header with fewer values than `hops` is ignored."""
    found: dict[str, str] = {}
    if hops <= 0:
        return found
    for key, name in FORWARDED_HEADERS.items():
        values = [v.strip() for v in (header(name) or "").split(",")]
        if len(values) >= hops and values[-hops]:
            found[key] = values[-hops].lower() if key == "proto" else values[-hops]
    if found.get("proto") not in (None, "http", "https"):
        del found["proto"]
    return found


def apply_forwarded(environ: MutableMapping[str, Any], hops: int) -> None:
    """`forwarded` applied to a WSGI environ (the Flask and Django adapters): the client's
    address, the scheme and the host as the outermost trusted proxy saw them."""
    found = forwarded(lambda name: environ.get("HTTP_" + name.upper().replace("-", "_")), hops)
    if "for" in found:
        environ["REMOTE_ADDR"] = found["for"]
    if "proto" in found:
        environ["wsgi.url_scheme"] = found["proto"]
    if "host" in found:
        environ["HTTP_HOST"] = found["host"]


def body_too_large(settings: Settings, content_length: str | None) -> bool:
    """Whether a request announcing `content_length` must be refused (413) before its body
    is read. A body without a length (chunked) is counted as it is read, by the adapter."""
    if not content_length:
        return False
    if not content_length.isascii() or not content_length.isdigit():
        return True  # malformed: the server would refuse it too
    return len(content_length) > 18 or int(content_length) > settings.max_request_bytes

