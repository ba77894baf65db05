# Managed by the msal-webapp template: regenerate rather than edit (your code goes outside core/).
"""Calling downstream web APIs by name, on the signed-in user's behalf or, for an app-only API
(`ApiSettings.app_only`), with the app's own token.

Sans-IO: `call_plan` is a generator holding the whole logic (which token, which request, how to
read a claims challenge, which redirect to follow and with what, when to retry a throttled call
and how long to wait). It yields `NeedToken`, `Send` and `Wait` steps and is driven by a thin
transport: `run_sync` here with `requests`, `aio.run_async` with httpx (FastAPI). The transports
only carry the rules out: the deadline and size bound each request carries, the proxies, CA
bundle and TLS context of core/http.py.

The rules, the same for every framework:

- Deadline: a call (all its attempts, redirects and waits) ends within OUTBOUND_DEADLINE_SECONDS
  of its start. Each request carries what is left (`ApiRequest.until`): the transport bounds
  connect, send, headers and body by it. A wait that would end past it is not waited: the call
  fails at once with the API's answer.
- Throttling: a 429 or 503 answer to an idempotent method (RFC 9110 section 9.2.2: GET, HEAD,
  OPTIONS, PUT, DELETE) is sent again at most `MAX_RETRIES` times, after its Retry-After (seconds
  or an HTTP date). Without Retry-After, the Microsoft Graph SDKs' retry handler waits 3 seconds,
  doubling each time: so does this plan (within the deadline, so rarely more than once). POST and
  PATCH are never sent twice (they may have taken effect), nor is any other status retried.
- Redirects: followed here, never by the transport, at most `MAX_REDIRECTS` hops. A hop to
  another origin (scheme, host or port) goes without `Authorization`: the bearer token is for the
  API, never for whoever it redirects to (as requests, httpx and the Graph SDKs' redirect
  handler do; .NET's HttpClient, under Microsoft.Identity.Web, drops it on every redirect, the
  same origin's too, which breaks an API that moves a path within itself). A hop from https to
  http is refused. 303 (and 301/302 after a POST) turns
  the request into a GET without body, as browsers and requests do.
- Size: an answer larger than API_MAX_RESPONSE_BYTES is refused (`ResponseTooLarge`): on its
  announced Content-Length before any of it is read, or as soon as more has arrived.
- Defaults: what the caller does not give comes from the API's description (API_<NAME>_PATH,
  _METHOD, _HEADERS, _QUERY); its _TIMEOUT shortens the deadline (never lengthens it).

    api = DownstreamApis(settings, auth, session)
    response = api.call(user, "todo", "items", method="POST", json={"title": "x"})
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

from .auth import AuthService, User
from .errors import DownstreamApiError
from .http import DEFAULT_DEADLINE_SECONDS, DEFAULT_TIMEOUT, OutboundSession
from .settings import DEFAULT_API_MAX_RESPONSE_BYTES, ApiSettings, Settings
from .stores import KnownVersion

# RFC 9110 section 9.2.2 (TRACE too, which no API call uses).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
THROTTLED_STATUSES = frozenset({429, 503})
MAX_RETRIES = 2  # sends after the first: three attempts at most
# Without Retry-After: the Microsoft Graph SDKs' default delay (the JavaScript SDK's
# RetryHandlerOptions: 3 s, doubled for each retry; the same in the Python SDK's kiota
# RetryHandler is UNCONFIRMED).
DEFAULT_RETRY_SECONDS = 3.0
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class ApiRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None = None
    # The transport's bounds for this request: the call's deadline (time.monotonic()) and the
    # most bytes of the answer's body to read (None: no bound, e.g. for a test's own request).
    until: float | None = None
    max_bytes: int | None = None


@dataclass(frozen=True)
class ApiResponse:
    status: int
    headers: Mapping[str, str]  # lower-case names
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass(frozen=True)
class NeedToken:
    scopes: tuple[str, ...]
    claims: str | None = None


@dataclass(frozen=True)
class Send:
    request: ApiRequest


@dataclass(frozen=True)
class Wait:
    """Sleep this long before going on (the async driver without blocking its event loop)."""

    seconds: float


Step = NeedToken | Send | Wait
Plan = Generator[Step, Any, ApiResponse]


def build_request(api: ApiSettings, path: str, token: str, *, method: str = "GET",
                  json_body: Any = None, params: Mapping[str, str] | None = None,
                  headers: Mapping[str, str] | None = None) -> ApiRequest:
    """A request to `path` relative to the API's base URL; it may not escape that base."""
    url = urljoin(api.base_url, path.lstrip("/"))
    base = urlsplit(api.base_url)
    target = urlsplit(url)
    if (target.scheme, target.netloc) != (base.scheme, base.netloc) or not target.path.startswith(
            base.path) or ".." in path.split("/"):
        raise ValueError(f"path {path!r} leaves the base URL of API {api.name!r}")
    if params:
        url += ("&" if "?" in url else "?") + urlencode(params)
    all_headers = {"Accept": "application/json", **(headers or {}),
                   "Authorization": f"Bearer {token}"}
    body = None
    if json_body is not None:
        body = json.dumps(json_body).encode()
        all_headers["Content-Type"] = "application/json"
    return ApiRequest(method=method.upper(), url=url, headers=all_headers, body=body)


# One item of a WWW-Authenticate header (RFC 9110 section 11.6.1): an auth-param
# `name=value` (the value a token or a quoted string, which may escape characters with "\\"),
# or a bare token: an auth-scheme, which starts the next challenge.
_CHALLENGE_ITEM = re.compile(
    r'\s*,?\s*(?:([!#$%&\'*+.^`|~\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))'
    r'|([!#$%&\'*+.^`|~\w-]+))')


def challenges(header: str) -> list[tuple[str, dict[str, str]]]:
    """A WWW-Authenticate header's challenges, in order: (scheme in lower case, its params
    with lower-case names). Several challenges may share one header (`Bearer ..., PoP ...`)."""
    found: list[tuple[str, dict[str, str]]] = []
    for m in _CHALLENGE_ITEM.finditer(header):
        if m[4]:
            found.append((m[4].lower(), {}))
        elif m[1] and found:
            found[-1][1][m[1].lower()] = (re.sub(r"\\(.)", r"\1", m[2]) if m[2] is not None
                                          else m[3])
    return found


def claims_challenge(response: ApiResponse) -> str | None:
    """The decoded claims JSON of a Bearer `401 insufficient_claims` challenge, else None.

    WWW-Authenticate: Bearer realm="", error="insufficient_claims", claims="eyJhY2Nlc3..."

    The scheme and the error are compared without case (RFC 9110: schemes are case-insensitive;
    Microsoft.Identity.Web compares the error so), and only the Bearer challenge counts when the
    header carries others (e.g. a PoP one) beside it.
    """
    if response.status != 401:
        return None
    for scheme, params in challenges(response.headers.get("www-authenticate", "")):
        if (scheme == "bearer" and params.get("error", "").lower() == "insufficient_claims"
                and params.get("claims")):
            return claims_json(params["claims"])
    return None


def claims_json(value: str) -> str | None:
    """The claims JSON object of a challenge: base64 (what Entra and Graph send) or raw JSON
    (what some APIs send); None if it is neither."""
    candidates = [value] if value.lstrip().startswith("{") else []
    try:
        candidates.append(base64.urlsafe_b64decode(
            value.replace("+", "-").replace("/", "_") + "=" * (-len(value) % 4)
        ).decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    for candidate in candidates:
        try:
            if isinstance(json.loads(candidate), dict):
                return candidate
        except ValueError:
            continue
    return None


def retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """The seconds a Retry-After header asks to wait (RFC 9110 section 10.2.3: seconds, or an
    HTTP date, compared with `now`, seconds since the epoch); None if absent or unreadable."""
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": UTC (RFC 5322 section 3.3)
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def redirect_of(request: ApiRequest, response: ApiResponse) -> ApiRequest | None:
    """The request that follows `response` if it is a redirect, else None; raises ValueError
    for a redirect that must not be followed (to http from https, or to another scheme)."""
    location = response.headers.get("location")
    if response.status not in _REDIRECTS or not location:
        return None
    url = urljoin(request.url, location.strip())
    here, there = urlsplit(request.url), urlsplit(url)
    if there.scheme not in ("http", "https") or (here.scheme, there.scheme) == ("https",
                                                                                 "http"):
        raise ValueError(f"a redirect to {there.scheme}:// is not followed")
    headers = dict(request.headers)
    if (here.scheme, here.hostname, here.port) != (there.scheme, there.hostname, there.port):
        # Another origin: the token is not for it (nor are cookies, which are never sent).
        headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
    method, body = request.method, request.body
    if (response.status == 303 and method != "HEAD") or (
            response.status in (301, 302) and method == "POST"):
        method, body = "GET", None
        headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
    return replace(request, method=method, url=url, headers=headers, body=body)


def _throttled_delay(request: ApiRequest, response: ApiResponse, retries: int,
                     now: float) -> float | None:
    """How long to wait before sending `request` again, or None: not to be sent again."""
    if (response.status not in THROTTLED_STATUSES or request.method not in IDEMPOTENT_METHODS
            or retries >= MAX_RETRIES):
        return None
    asked = retry_after(response.headers, now)
    return asked if asked is not None else DEFAULT_RETRY_SECONDS * 2 ** retries


def _exchange(api: ApiSettings, request: ApiRequest, clock: Callable[[], float],
              wall_clock: Callable[[], float]) -> Generator[Step, Any, ApiResponse]:
    """Send `request` with its redirects, and again while throttled and time allows."""
    retries = 0
    while True:
        hop, hops = request, 0
        response: ApiResponse = yield Send(hop)
        while True:
            try:
                follow = redirect_of(hop, response)
            except ValueError as exc:
                raise DownstreamApiError(api.name, response.status, str(exc)) from None
            if follow is None:
                break
            hops += 1
            if hops > MAX_REDIRECTS:
                raise DownstreamApiError(api.name, response.status, "too many redirects")
            hop = follow
            response = yield Send(hop)
        delay = _throttled_delay(request, response, retries, wall_clock())
        if delay is None or request.until is None or clock() + delay >= request.until:
            # Not to be retried, or the wait would end past the call's deadline: the answer
            # stands (the page says to try again later), at once.
            return response
        yield Wait(delay)
        retries += 1


def call_plan(api: ApiSettings, path: str = "", *, method: str | None = None,
              json_body: Any = None,
              params: Mapping[str, str] | None = None,
              headers: Mapping[str, str] | None = None,
              deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
              max_bytes: int = DEFAULT_API_MAX_RESPONSE_BYTES,
              clock: Callable[[], float] = time.monotonic,
              wall_clock: Callable[[], float] = time.time) -> Plan:
    """The logic of one API call, all of it within `deadline_seconds` of its start (on `clock`,
    the transports' time.monotonic(); `wall_clock` reads Retry-After dates), or the API's own
    timeout if shorter. `path`, `method`, `params` and `headers` default to the API's (the
    parameters and headers given are added to its own, replacing those of the same name).

    A claims challenge is answered once, with a token carrying the claims; a plain 401 is not
    retried (a new token would be refused the same way). Throttling and redirects: see above.
    """
    until = clock() + min(deadline_seconds, api.timeout_seconds or deadline_seconds)
    all_params = {**api.query, **(params or {})}
    given = {name.lower() for name in headers or {}}
    all_headers = {**{k: v for k, v in api.headers.items() if k.lower() not in given},
                   **(headers or {})}

    def request(token: str) -> ApiRequest:
        built = build_request(api, path or api.path, token, method=method or api.method,
                              json_body=json_body, params=all_params, headers=all_headers)
        return replace(built, until=until, max_bytes=max_bytes)

    token: str = yield NeedToken(api.scopes)
    response = yield from _exchange(api, request(token), clock, wall_clock)
    claims = claims_challenge(response)
    if claims is not None:
        # The token lacks claims the API demands (e.g. after a policy change): get a new one
        # with those claims. If that needs the user, acquiring raises InteractionRequired.
        token = yield NeedToken(api.scopes, claims)
        response = yield from _exchange(api, request(token), clock, wall_clock)
    if response.status >= 400:
        throttled = response.status in THROTTLED_STATUSES
        raise DownstreamApiError(api.name, response.status, response.text, retry_after=(
            retry_after(response.headers, wall_clock()) if throttled else None))
    return response


def run_sync(plan: Plan, acquire: Callable[[NeedToken], str],
             send: Callable[[ApiRequest], ApiResponse],
             sleep: Callable[[float], None] = time.sleep) -> ApiResponse:
    """Drive a plan with blocking I/O."""
    step = next(plan)
    while True:
        result: Any = None
        if isinstance(step, NeedToken):
            result = acquire(step)
        elif isinstance(step, Send):
            result = send(step.request)
        else:
            sleep(step.seconds)
        try:
            step = plan.send(result)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]


@dataclass
class DownstreamApis:
    """Calls configured APIs by name with `requests` (the shared session of core/http.py)."""

    settings: Settings
    auth: AuthService
    session: OutboundSession

    def send(self, request: ApiRequest) -> ApiResponse:
        """One request, no redirect followed (the plan follows them), within its deadline and
        size bound."""
        raw = self.session.fetch(request.method, request.url, headers=request.headers,
                                 body=request.body, until=request.until,
                                 max_bytes=request.max_bytes, timeout=DEFAULT_TIMEOUT)
        return ApiResponse(status=raw.status_code,
                           headers={k.lower(): v for k, v in raw.headers.items()},
                           body=raw.content)

    def call(self, user: User, name: str, path: str = "", *, method: str | None = None,
             json: Any = None, params: Mapping[str, str] | None = None,
             headers: Mapping[str, str] | None = None,
             known: KnownVersion | None = None) -> ApiResponse:
        """Call the API `name` for `user` (with the app's own token if it is an app-only API);
        `known`: the version of the user's token cache as this request already read it
        (core/flows.py `WebRequest.known`), sparing a read."""
        api = self.settings.apis[name]

        def acquire(step: NeedToken) -> str:
            if api.app_only:
                return self.auth.acquire_app_token(step.scopes, claims=step.claims)
            return self.auth.acquire_token(user, step.scopes, claims=step.claims, known=known)

        plan = call_plan(api, path, method=method, json_body=json, params=params,
                         headers=headers, deadline_seconds=self.session.deadline_seconds,
                         max_bytes=self.settings.api_max_response_bytes)
        return run_sync(plan, acquire, self.send)
