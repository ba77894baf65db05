# Managed by the msal-webapp template: regenerate rather than edit (your code goes outside core/).
"""Calling downstream web APIs by name, on the signed-in user's behalf.

Sans-IO: `call_plan` is a generator holding the whole logic (which token, which request, how to
read a claims challenge, when to retry). It yields `NeedToken` and `Send` steps and is driven by
a transport: `run_sync` here with `requests`; an async driver can run the same plan with httpx.

    api = DownstreamApis(settings, auth, session)
    response = api.call(user, "todo", "items", method="POST", json={"title": "x"})
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import requests

from .auth import AuthService, User
from .errors import DownstreamApiError
from .http import DEFAULT_TIMEOUT
from .settings import ApiSettings, Settings
from .stores import KnownVersion


@dataclass(frozen=True)
class ApiRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None = None


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


Step = NeedToken | Send
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
            return _claims_json(params["claims"])
    return None


def _claims_json(value: str) -> str | None:
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


def call_plan(api: ApiSettings, path: str = "", *, method: str = "GET", json_body: Any = None,
              params: Mapping[str, str] | None = None,
              headers: Mapping[str, str] | None = None) -> Plan:
    """The logic of one API call.

    A claims challenge is answered once, with a token carrying the claims; a plain 401 is not
    retried (a new token would be refused the same way).
    """
    token: str = yield NeedToken(api.scopes)
    response: ApiResponse = yield Send(build_request(
        api, path, token, method=method, json_body=json_body, params=params, headers=headers))
    claims = claims_challenge(response)
    if claims is not None:
        # The token lacks claims the API demands (e.g. after a policy change): get a new one
        # with those claims. If that needs the user, acquiring raises InteractionRequired.
        token = yield NeedToken(api.scopes, claims)
        response = yield Send(build_request(api, path, token, method=method,
                                            json_body=json_body, params=params,
                                            headers=headers))
    if response.status >= 400:
        raise DownstreamApiError(api.name, response.status, response.text)
    return response


def run_sync(plan: Plan, acquire: Callable[[NeedToken], str],
             send: Callable[[ApiRequest], ApiResponse]) -> ApiResponse:
    """Drive a plan with blocking I/O."""
    step = next(plan)
    while True:
        result = acquire(step) if isinstance(step, NeedToken) else send(step.request)
        try:
            step = plan.send(result)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]


@dataclass
class DownstreamApis:
    """Calls configured APIs by name with `requests`."""

    settings: Settings
    auth: AuthService
    session: requests.Session

    def send(self, request: ApiRequest) -> ApiResponse:
        raw = self.session.request(request.method, request.url, headers=request.headers,
                                   data=request.body, timeout=DEFAULT_TIMEOUT)
        return ApiResponse(status=raw.status_code,
                           headers={k.lower(): v for k, v in raw.headers.items()},
                           body=raw.content)

    def call(self, user: User, name: str, path: str = "", *, method: str = "GET",
             json: Any = None, params: Mapping[str, str] | None = None,
             headers: Mapping[str, str] | None = None,
             known: KnownVersion | None = None) -> ApiResponse:
        """Call the API `name` for `user`; `known`: the version of the user's token cache as
        this request already read it (core/flows.py `WebRequest.known`), sparing a read."""
        api = self.settings.apis[name]

        def acquire(step: NeedToken) -> str:
            return self.auth.acquire_token(user, step.scopes, claims=step.claims, known=known)

        plan = call_plan(api, path, method=method, json_body=json, params=params, headers=headers)
        return run_sync(plan, acquire, self.send)
