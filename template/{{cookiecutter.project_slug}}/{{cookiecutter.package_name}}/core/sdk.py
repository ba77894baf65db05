# Managed by the msal-webapp template: regenerate rather than edit (your code goes outside core/).
"""Azure SDK clients and the Microsoft Graph SDK on the signed-in user's behalf.

`UserTokenCredential` (an `azure.core.credentials.TokenCredential`, with `get_token_info`) and
`AsyncUserTokenCredential` (an `AsyncTokenCredential`) give any Azure SDK client the user's
tokens from the account's token cache (`AuthService.acquire_token`, as every API call of the
app). When no token can be had silently they raise the app's own `InteractionRequired`, so an
SDK call that needs consent or has met a claims challenge ends in the same round trip to the
provider as a plain API call (`flows.api_failure`):

    credential = UserTokenCredential(services.auth, user, services.settings.apis["graph"])
    blobs = BlobServiceClient(account_url, credential=credential)

`GraphSdk` runs the Microsoft Graph SDK (`msgraph-sdk`, async only) with that credential,
against the `graph` API's base URL and under the app's outbound rules (core/http.py) where the
SDK lets them in:

- the proxy the environment names for Graph (NO_PROXY included) and the app's CA bundle, on
  one shared httpx client per event loop, without a cookie jar;
- OUTBOUND_DEADLINE_SECONDS bounds the whole call: every request, the SDK's own retries and
  its waits (its RetryHandler honours Retry-After for 429, 503 and 504, at most 3 times); a
  call cut by the deadline while throttled fails as a throttled API call does;
- API_MAX_RESPONSE_BYTES bounds each answer as it arrives (`ResponseTooLarge`), on its
  Content-Length before any of it is read. What is counted is the body as received: the
  client asks for it uncompressed (`Accept-Encoding: identity`), but a server that compresses
  anyway is bounded on its compressed size (the SDK decodes it later, out of reach here);
- not the app's own redirect and retry rules: the SDK's middleware follows redirects (dropping
  `Authorization` on another host) and retries by its own rules (504 too).

Flask and Django pages are synchronous and the SDK is not: `GraphSdk.run` hands the call to one
event loop per process, in a thread of its own, and waits for it (see `LoopThread`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from azure.core.credentials import AccessToken, AccessTokenInfo, TokenRequestOptions
from kiota_abstractions.api_error import APIError
from msgraph import GraphServiceClient
from msgraph.generated.models.user import User as GraphUser
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_request_adapter import options as GRAPH_MIDDLEWARE_OPTIONS
from msgraph_core import GraphClientFactory
from msgraph_core.authentication import AzureIdentityAuthenticationProvider

from . import flows
from .auth import AuthService, User
from .downstream import THROTTLED_STATUSES, claims_json, retry_after
from .errors import DownstreamApiError
from .http import CONNECT_TIMEOUT_SECONDS, DEFAULT_TIMEOUT, BoundedBody, no_cookies
from .services import Services
from .settings import ApiSettings, scope_resource
from .stores import KnownVersion
from .web import api_succeeded

T = TypeVar("T")
GRAPH = "graph"
DEFAULT_SCOPE_SUFFIX = "/.default"
# Errors of the SDK's transport: the API could not be reached (or not within the deadline).
UNREACHABLE: tuple[type[BaseException], ...] = (httpx.HTTPError, TimeoutError)


# ------------------------------------------------------------------------------ credentials
def token_scopes(api: ApiSettings | None, scopes: Iterable[str]) -> tuple[str, ...]:
    """The scopes to ask the token cache for, when an SDK asks for `scopes`.

    SDKs ask for `<resource>/.default` (the Graph SDK: `https://graph.microsoft.com/.default`,
    or `https://<its host>/.default` for another base URL). For the resource of `api` this
    becomes the API's configured scopes: the user consented to those (incrementally, e.g.
    User.Read), and the account's cache holds a token for exactly them, the one the app's own
    calls of the API use. Asking for `.default` instead would miss that cached token (MSAL
    matches a token on its scopes), refresh it on every call, and send a consent round trip
    for the app registration's static permissions rather than the configured ones.
    Microsoft.Identity.Web's Graph client does the same (its GraphAuthenticationProvider asks
    for the configured scopes, User.Read by default, whatever the SDK asks for). Any other
    scope, or `.default` of another resource, is asked for as given.
    """
    asked = tuple(scopes)
    if api is None:
        return asked
    # The API's resource: its scopes' (a short Graph scope such as User.Read is Graph's), and
    # the origin of its base URL (what kiota asks `.default` of without configured scopes).
    own = {scope_resource(s).lower() for s in api.scopes} | {_origin(api.base_url)}
    mapped: list[str] = []
    for scope in asked:
        if scope.endswith(DEFAULT_SCOPE_SUFFIX) and scope[:-len(DEFAULT_SCOPE_SUFFIX)].rstrip(
                "/").lower() in own:
            mapped += [s for s in api.scopes if s not in mapped]
        elif scope not in mapped:
            mapped.append(scope)
    return tuple(mapped)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _claims(claims: str | None) -> str | None:
    """A claims challenge as JSON, as `acquire_token` takes it: azure-core and kiota pass it
    decoded already, but a base64 value (as it stands in WWW-Authenticate) is read too."""
    if not claims:
        return None
    return claims_json(claims) or claims


def _expires_on(token: str, now: float) -> int:
    """When `token` expires (its `exp`, read without verification: it is the provider's
    answer, from the app's own cache), so that an SDK that keeps tokens (azure-core's
    BearerTokenCredentialPolicy) asks again in time; `now` for a token that is no JWT (an
    opaque one): the SDK then asks for every request, and the cache answers."""
    try:
        payload = token.split(".")[1]
        exp = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"]
        return int(exp)
    except (IndexError, ValueError, KeyError, TypeError):
        return int(now)


@dataclass
class UserTokenCredential:
    """A `TokenCredential` (and `SupportsTokenInfo`) for one signed-in user, backed by the
    account's token cache. `api`: the configured API whose `.default` means its configured
    scopes (see `token_scopes`); `known`: the version of the account's cache as this request
    read it (`WebRequest.known`), sparing a store read.

    Raises `InteractionRequired` when only the user can get the token (consent, a claims
    challenge that needs them, a new sign-in), `StoreUnavailable` and `TokenAcquisitionError`
    as `acquire_token` does. `tenant_id` and `enable_cae` are not used: the token is the
    account's, in its tenant, and the app always declares it can answer claims challenges
    (`cp1`)."""

    auth: AuthService
    user: User
    api: ApiSettings | None = None
    known: KnownVersion | None = None

    def get_token(self, *scopes: str, claims: str | None = None, tenant_id: str | None = None,
                  enable_cae: bool = False, **kwargs: Any) -> AccessToken:
        info = self.get_token_info(*scopes, options={"claims": claims} if claims else None)
        return AccessToken(info.token, info.expires_on)

    def get_token_info(self, *scopes: str,
                       options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        token = self.auth.acquire_token(self.user, token_scopes(self.api, scopes),
                                        claims=_claims((options or {}).get("claims")),
                                        known=self.known)
        return AccessTokenInfo(token, _expires_on(token, time.time()))

    def close(self) -> None:
        """Nothing to release (azure-core's credentials may be closed by their clients)."""

    def __enter__(self) -> UserTokenCredential:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


Blocking = Callable[[Callable[[], str]], Awaitable[str]]


async def _in_thread(call: Callable[[], str]) -> str:
    return await asyncio.to_thread(call)


@dataclass
class AsyncUserTokenCredential:
    """`UserTokenCredential` for async SDKs (`AsyncTokenCredential`; the Graph SDK): a token
    that needs no blocking store read comes from MSAL's offline pass on the event loop (as
    FastAPI's API calls get theirs, aio.py); anything else (a store read, a refresh) runs
    `acquire_token` through `run_blocking`, a worker thread (FastAPI: anyio's)."""

    auth: AuthService
    user: User
    api: ApiSettings | None = None
    known: KnownVersion | None = None
    run_blocking: Blocking = _in_thread

    async def get_token(self, *scopes: str, claims: str | None = None,
                        tenant_id: str | None = None, enable_cae: bool = False,
                        **kwargs: Any) -> AccessToken:
        info = await self.get_token_info(*scopes,
                                         options={"claims": claims} if claims else None)
        return AccessToken(info.token, info.expires_on)

    async def get_token_info(self, *scopes: str,
                             options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        wanted = token_scopes(self.api, scopes)
        claims = _claims((options or {}).get("claims"))
        token = None if claims else self.auth.cached_token(self.user, wanted, known=self.known)
        if token is None:
            pending = asyncio.ensure_future(self.run_blocking(partial(
                self.auth.acquire_token, self.user, wanted, claims=claims, known=self.known)))
            state = _CALL.get()
            if state is not None:
                state.token = pending  # see GraphSdk.call: its failure is the call's
            # Shielded: a thread cannot be stopped, so the SDK call's deadline leaves it to end
            # by its own (MSAL's requests are bounded by the same deadline).
            token = await asyncio.shield(pending)
        return AccessTokenInfo(token, _expires_on(token, time.time()))

    async def close(self) -> None:
        """Nothing to release: kiota closes the credential after each token it gets."""

    async def __aenter__(self) -> AsyncUserTokenCredential:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


# ------------------------------------------------------------------------------ transport
@dataclass
class _CallState:
    """What the transport saw of one SDK call: the bound of its answers, its last answer."""

    max_bytes: int
    status: int = 0
    headers: httpx.Headers = field(default_factory=httpx.Headers)
    token: asyncio.Future[str] | None = None  # the token being acquired in a thread, if any


_CALL: ContextVar[_CallState | None] = ContextVar("sdk_call", default=None)


class _BoundedStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.Response, bound: BoundedBody) -> None:
        self._inner = inner
        self._bound = bound

    async def __aiter__(self) -> Any:
        async for chunk in self._inner.aiter_raw():
            self._bound.add(chunk)
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class _BoundedTransport(httpx.AsyncBaseTransport):
    """The innermost transport of the SDK's client: each answer's size bound, and the last
    status seen (to tell a call cut by the deadline while throttled)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        state = _CALL.get()
        if state is None:
            return response
        state.status, state.headers = response.status_code, response.headers
        try:
            bound = BoundedBody(str(request.url), state.max_bytes, response.headers)
        except Exception:
            await response.aclose()
            raise
        return httpx.Response(response.status_code, headers=response.headers,
                              stream=_BoundedStream(response, bound),
                              extensions=response.extensions, request=request)

    async def aclose(self) -> None:
        await self._inner.aclose()


# ------------------------------------------------------------------------------ Graph SDK
@dataclass
class GraphSdk:
    """The Graph SDK for the app's users: one per app (FastAPI: on `app.state`; Flask and
    Django: `graph_sdk(services)`), one pooled httpx client per event loop.

        me = await graph.call(user, lambda client: client.me.get(), known=req.known)
    """

    services: Services
    run_blocking: Blocking = _in_thread
    _clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = field(
        default_factory=weakref.WeakKeyDictionary)

    @property
    def api(self) -> ApiSettings:
        return self.services.settings.apis[GRAPH]

    def _http(self) -> httpx.AsyncClient:
        """The event loop's client, made on first use with the rules of core/http.py and the
        SDK's middleware (retries, redirects, its /me URL rewriting, telemetry headers)."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            http = self.services.clients.http
            url = self.api.base_url
            proxies = http.environment.proxies_for(url)
            proxy = proxies.get(urlsplit(url).scheme.lower()) or proxies.get("all")
            # retries=1: a connection that could not be made is tried once more (httpcore
            # retries only connecting, never a request that was sent).
            transport = _BoundedTransport(httpx.AsyncHTTPTransport(
                verify=http.tls_context(), proxy=proxy, trust_env=False, retries=1))
            client = httpx.AsyncClient(
                transport=transport, trust_env=False, cookies=no_cookies(),
                follow_redirects=False, headers={"Accept-Encoding": "identity"},
                timeout=httpx.Timeout(DEFAULT_TIMEOUT[1], connect=CONNECT_TIMEOUT_SECONDS))
            GraphClientFactory.create_with_default_middleware(client=client,
                                                              options=GRAPH_MIDDLEWARE_OPTIONS)
            self._clients[loop] = client
        return client

    def client(self, user: User, known: KnownVersion | None = None) -> GraphServiceClient:
        """A GraphServiceClient for `user` (cheap: the HTTP client is shared), pointed at the
        `graph` API's base URL; its token goes to that host only."""
        api = self.api
        credential = AsyncUserTokenCredential(self.services.auth, user, api, known,
                                              self.run_blocking)
        provider = AzureIdentityAuthenticationProvider(
            credential, scopes=list(api.scopes),
            allowed_hosts=[urlsplit(api.base_url).hostname or ""])
        adapter = GraphRequestAdapter(provider, client=self._http())
        adapter.base_url = api.base_url.rstrip("/")
        return GraphServiceClient(request_adapter=adapter)

    async def call(self, user: User,
                   request: Callable[[GraphServiceClient], Awaitable[T]], *,
                   known: KnownVersion | None = None) -> T:
        """`request` made with the user's client, within OUTBOUND_DEADLINE_SECONDS. The SDK's
        errors become the app's: an error status `DownstreamApiError` (so the same pages as
        the app's own API calls), the deadline `TimeoutError` (or, cut while throttled,
        `DownstreamApiError` with the status); `InteractionRequired` is raised as is."""
        api = self.api
        state = _CALL.set(_CallState(self.services.settings.api_max_response_bytes))
        try:
            async with asyncio.timeout(self.services.clients.http.deadline_seconds):
                return await request(self.client(user, known))
        except TimeoutError:
            seen = _CALL.get()
            if seen is not None and seen.token is not None:
                # Cut while acquiring the token: what went wrong there (a provider that did
                # not answer in time is TokenAcquisitionError) is the call's error, as for a
                # plain API call, whose token step has a deadline of its own.
                await asyncio.wait([seen.token])
                failure = seen.token.exception()
                if failure is not None:
                    raise failure from None
            if seen is not None and seen.status in THROTTLED_STATUSES:
                raise DownstreamApiError(api.name, seen.status, "", retry_after=retry_after(
                    seen.headers, time.time())) from None
            raise
        except APIError as exc:
            status = exc.response_status_code or 0
            headers = {k.lower(): v for k, v in (exc.response_headers or {}).items()}
            raise DownstreamApiError(api.name, status, str(exc.message or exc), retry_after=(
                retry_after(headers, time.time()) if status in THROTTLED_STATUSES else None)
            ) from None
        finally:
            _CALL.reset(state)

    def run(self, user: User, request: Callable[[GraphServiceClient], Awaitable[T]], *,
            known: KnownVersion | None = None) -> T:
        """`call` from synchronous code (Flask, Django): on the process's event loop thread."""
        return LOOP.run(self.call(user, request, known=known),
                        self.services.clients.http.deadline_seconds + 5)

    async def aclose(self) -> None:
        """Close the current event loop's client (FastAPI: at shutdown)."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()


TOKEN_THREADS = 40


class LoopThread:
    """One event loop per process, in a daemon thread, for synchronous pages' SDK calls.

    Why not `asyncio.run` per call: each run is a new event loop, and an httpx client (its
    pooled connections) belongs to one loop, so every page would open a new connection to
    Graph (a TLS handshake, most of the cost of a cached call: docs/benchmarks.md). Here the
    loop and its client live as long as the process, and many request threads share them; a
    call's blocking token work goes to worker threads (`asyncio.to_thread`), so one user's
    store read or refresh never holds up another's call. Made again in a forked child (a
    thread does not survive fork)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                # The calls' token work (store reads, refreshes waiting on an account's lock)
                # runs here: as many threads as anyio gives FastAPI's, not asyncio's default
                # (CPUs + 4), which is fewer than a gunicorn worker's request threads.
                loop.set_default_executor(ThreadPoolExecutor(TOKEN_THREADS,
                                                             thread_name_prefix="sdk-token"))
                threading.Thread(target=loop.run_forever, name="sdk-event-loop",
                                 daemon=True).start()
                self._loop, self._pid = loop, os.getpid()
            return self._loop

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
        """The coroutine's result (or exception), run on the loop thread; `timeout` is a last
        resort (the call bounds itself by its deadline)."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop())
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise


def load_user_model() -> None:
    """Import now what reading Graph's `User` would import on the first answer parsed.

    The SDK imports each model a type refers to when its first answer is read: for `User`,
    about 1,200 modules and 2 s of CPU. Inside the first /profile call that counted against
    the call's deadline (and on a busy machine ran past it). Done when this module is
    imported instead: with the production server's preload_app, once in gunicorn's master
    for every worker it forks."""
    GraphUser().get_field_deserializers()


load_user_model()
LOOP = LoopThread()
# By the app's Services (by identity: an app's services live as long as the app).
_SYNC: dict[int, GraphSdk] = {}
_SYNC_LOCK = threading.Lock()


def graph_sdk(services: Services) -> GraphSdk:
    """The app's GraphSdk for synchronous pages (one per app)."""
    with _SYNC_LOCK:
        found = _SYNC.get(id(services))
        if found is None or found.services is not services:
            found = _SYNC[id(services)] = GraphSdk(services)
        return found


def call_graph(services: Services, req: flows.WebRequest, user: User,
               request: Callable[[GraphServiceClient], Awaitable[T]]) -> T | flows.Outcome:
    """For synchronous pages: `request` made with the user's Graph client (`GraphSdk.run`),
    or the outcome that takes its place: the consent or claims round trip, or the error page
    of a plain API call (`flows.api_failure`)."""
    try:
        result = graph_sdk(services).run(user, request, known=req.known)
    except Exception as exc:
        return flows.api_failure(services, req, user, GRAPH, exc,
                                 (*flows.UNREACHABLE, *UNREACHABLE))
    api_succeeded(req.session)
    return result


def profile_of(me: Any) -> dict[str, Any]:
    """The Graph SDK's `User` as the profile page shows it (Graph's JSON names)."""
    if me is None:
        return {}
    return {"displayName": me.display_name, "userPrincipalName": me.user_principal_name,
            "id": me.id, "mail": me.mail}
