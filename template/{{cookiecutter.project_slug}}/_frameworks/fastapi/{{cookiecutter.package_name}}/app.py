"""FastAPI application factory: wires the core services into FastAPI.

    uvicorn --factory {{ cookiecutter.package_name }}.app:create_app --no-proxy-headers
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

{% if cookiecutter.graph_sdk %}
from anyio.to_thread import run_sync
{% endif %}
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .aio import AsyncApis
from .config import DEFAULTS
from .core import flows
{% if cookiecutter.graph_sdk %}
from .core.sdk import GraphSdk
{% endif %}
from .core.services import Services, app_settings, build_services
from .core.web import forwarded
from .dependencies import Interrupt
from .responses import respond
from .routes import router
from .sessions import SessionMiddleware


def _raw(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


class SecurityHeaders:
    """Adds the core's security headers to every response (those it has not set itself); over
    https (as the forwarded headers, if trusted, say), with HSTS."""

    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self.headers = _raw(services.security_headers)
        self.https_headers = _raw(services.https_headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        add = self.https_headers if scope.get("scheme") == "https" else self.headers

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in add if k not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class ForwardedHeaders:
    """Honours X-Forwarded-For, -Proto and -Host as set by the `hops` proxies in front of the
    app (TRUSTED_PROXY_HOPS), counted as in every framework of this template (core/web.py
    `forwarded`, like werkzeug's ProxyFix). uvicorn's own proxy support trusts addresses, not
    hops, and ignores X-Forwarded-Host."""

    def __init__(self, app: ASGIApp, hops: int) -> None:
        self.app = app
        self.hops = hops

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            headers = dict(scope["headers"])
            found = forwarded(lambda name: headers.get(name.encode("latin-1"), b"").decode(
                "latin-1") or None, self.hops)
            scope = dict(scope)
            if "for" in found:
                scope["client"] = (found["for"], 0)
            if "proto" in found:
                scope["scheme"] = found["proto"]
            if "host" in found:
                scope["headers"] = [(k, v) for k, v in scope["headers"] if k != b"host"] + [
                    (b"host", found["host"].encode("latin-1"))]
        await self.app(scope, receive, send)


def create_app(environ: Mapping[str, str] | None = None) -> FastAPI:
    """Build the app from `environ` (default: os.environ plus a .env file in development)."""
    settings = app_settings(environ, DEFAULTS)
    services = build_services(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await app.state.apis.aclose()
{% if cookiecutter.graph_sdk %}
        await app.state.graph_sdk.aclose()
{% endif %}

    # No /docs, /redoc or /openapi.json: this is a signed-in web app, not a public API.
    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.services = services
    app.state.apis = AsyncApis(services)  # one shared httpx client (per proxy) for the app
{% if cookiecutter.graph_sdk %}
    # The Graph SDK (/profile): its token work in anyio's worker threads, as the API calls'.
    app.state.graph_sdk = GraphSdk(services, run_blocking=run_sync)
{% endif %}
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    _handle_errors(app)
    # Added innermost first: the forwarded headers are applied, then the security headers
    # wrap everything, including the pages the session middleware answers with.
    app.add_middleware(SessionMiddleware, services=services)
    app.add_middleware(SecurityHeaders, services=services)
    if settings.trusted_proxy_hops:
        app.add_middleware(ForwardedHeaders, hops=settings.trusted_proxy_hops)
    return app


def _handle_errors(app: FastAPI) -> None:
    """Error pages, never a stack trace or FastAPI's JSON errors."""

    @app.exception_handler(Interrupt)
    async def interrupted(request: Request, exc: Interrupt) -> Response:
        return respond(request, exc.outcome)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        response = respond(request, flows.http_error(exc.status_code))
        response.headers.update(exc.headers or {})  # e.g. Allow, with 405
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        return respond(request, flows.http_error(400))
