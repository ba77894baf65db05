"""Calling downstream APIs from async code: the core's sans-IO `call_plan` driven with httpx.

The plan, the error pages and the consent round trip are the blocking driver's (core/downstream.py,
core/flows.py); only the transport differs:

- tokens come from MSAL: a cached token that needs no store read that may block (the memory
  store, or the in-process copy of the account's cache that the session's load found current)
  comes from MSAL's offline pass on the event loop (its HTTP client refuses every call, so it
  cannot wait on the network); everything else (a store read, a refresh) runs `acquire_token`
  in a worker thread;
- requests go out through one `httpx.AsyncClient` per proxy (usually one, direct), shared by
  every request of the app, with the rules of core/http.py: the proxy its environment chooses
  for the URL (NO_PROXY included), its TLS context (the same CA bundle, read once), the
  deadline and size bound each request carries (`BoundedBody`), no redirect followed (the plan
  follows them) and no cookie jar;
- the plan's waits (a throttled API's Retry-After) sleep on the event loop, never blocking it.

    apis = AsyncApis(services)          # once per app; `await apis.aclose()` at shutdown
    outcome = await call_api(services, apis, req, user, "todo", "items")
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
import requests
from anyio.to_thread import run_sync

from .core import flows
from .core.auth import User
from .core.downstream import ApiRequest, ApiResponse, NeedToken, Plan, Send, call_plan
from .core.http import (
    CONNECT_TIMEOUT_SECONDS,
    DEFAULT_TIMEOUT,
    READ_CHUNK_BYTES,
    BoundedBody,
    no_cookies,
)
from .core.services import Services
from .core.stores import KnownVersion
from .core.web import api_succeeded

# An API call that fails with these could not reach the API: the blocking driver's errors
# (MSAL's own calls) plus httpx's, and TimeoutError, the whole-call deadline.
UNREACHABLE: tuple[type[BaseException], ...] = (requests.RequestException, httpx.HTTPError,
                                                TimeoutError)


async def run_async(plan: Plan, acquire: Callable[[NeedToken], Awaitable[str]],
                    send: Callable[[ApiRequest], Awaitable[ApiResponse]]) -> ApiResponse:
    """Drive a plan with async I/O (what `downstream.run_sync` does with blocking I/O)."""
    step = next(plan)
    while True:
        result: Any = None
        if isinstance(step, NeedToken):
            result = await acquire(step)
        elif isinstance(step, Send):
            result = await send(step.request)
        else:
            await anyio.sleep(step.seconds)  # the event loop serves other requests meanwhile
        try:
            step = plan.send(result)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]


class AsyncApis:
    """The configured APIs, called by name with httpx; one per app, shared by its requests."""

    def __init__(self, services: Services) -> None:
        self.services = services
        # The core session's trust store: CA_BUNDLE (merged with the default one), else
        # REQUESTS_CA_BUNDLE, else the default; one context, read once.
        self._tls = services.clients.http.tls_context()
        self._clients: dict[str | None, httpx.AsyncClient] = {}

    def _client(self, url: str) -> httpx.AsyncClient:
        """The client for `url`: direct, or through the proxy the environment names for it
        (read once by core/http.py, NO_PROXY included); made on first use."""
        proxies = self.services.clients.http.environment.proxies_for(url)
        proxy = proxies.get(urlsplit(url).scheme.lower()) or proxies.get("all")
        client = self._clients.get(proxy)
        if client is None:
            # No cookie jar: one user's Set-Cookie must never go out with another's call.
            client = self._clients[proxy] = httpx.AsyncClient(
                verify=self._tls, proxy=proxy, trust_env=False, cookies=no_cookies(),
                follow_redirects=False,
                timeout=httpx.Timeout(DEFAULT_TIMEOUT[1], connect=CONNECT_TIMEOUT_SECONDS))
        return client

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()

    async def send(self, request: ApiRequest) -> ApiResponse:
        """One request, answered in full (headers and body, at most `request.max_bytes` of it)
        by `request.until`, else by the outbound deadline (OUTBOUND_DEADLINE_SECONDS, read at
        each call as core/http.py does): past it, a TimeoutError, whatever the server
        trickles."""
        seconds = self.services.clients.http.deadline_seconds
        if request.until is not None:
            seconds = min(seconds, request.until - time.monotonic())
        with anyio.fail_after(max(seconds, 0.0)):
            client = self._client(request.url)
            outgoing = client.build_request(request.method, request.url,
                                            headers=request.headers, content=request.body)
            raw = await client.send(outgoing, stream=True)
            try:
                if request.max_bytes is None:
                    body = await raw.aread()
                else:
                    bounded = BoundedBody(request.url, request.max_bytes, raw.headers)
                    async for chunk in raw.aiter_bytes(READ_CHUNK_BYTES):
                        bounded.add(chunk)
                    body = bounded.value()
            finally:
                await raw.aclose()  # an unread rest closes the connection
        return ApiResponse(status=raw.status_code,
                           headers={k.lower(): v for k, v in raw.headers.items()}, body=body)

    async def call(self, user: User, name: str, path: str = "", *, method: str | None = None,
                   json: Any = None, params: Mapping[str, str] | None = None,
                   headers: Mapping[str, str] | None = None,
                   known: KnownVersion | None = None) -> ApiResponse:
        """What `DownstreamApis.call` does, without blocking the event loop."""
        api = self.services.settings.apis[name]

        auth = self.services.auth

        async def acquire(step: NeedToken) -> str:
            if not step.claims:
                # A cached token that needs no blocking read: here, without a thread hop.
                token = (auth.cached_app_token(step.scopes) if api.app_only
                         else auth.cached_token(user, step.scopes, known=known))
                if token is not None:
                    return token
            if api.app_only:
                return await run_sync(partial(auth.acquire_app_token, step.scopes,
                                              claims=step.claims))
            return await run_sync(partial(auth.acquire_token, user, step.scopes,
                                          claims=step.claims, known=known))

        plan = call_plan(api, path, method=method, json_body=json, params=params,
                         headers=headers,
                         deadline_seconds=self.services.clients.http.deadline_seconds,
                         max_bytes=self.services.settings.api_max_response_bytes)
        return await run_async(plan, acquire, self.send)


async def call_api(services: Services, apis: AsyncApis, req: flows.WebRequest, user: User,
                   name: str, path: str = "", **options: Any) -> ApiResponse | flows.Outcome:
    """`flows.call_api`, async: the API's response, or the outcome that takes its place, from
    the same mapping of errors to pages (`flows.api_failure`)."""
    try:
        response = await apis.call(user, name, path, known=req.known, **options)
    except Exception as exc:
        # A consent round trip starts a sign-in (MSAL, maybe discovery): in a worker thread.
        return await run_sync(partial(flows.api_failure, services, req, user, name, exc,
                                      UNREACHABLE))
    api_succeeded(req.session)
    return response
