"""Server-side sessions for FastAPI: an ASGI middleware over the core's session layer.

Starlette's SessionMiddleware keeps the whole session in the cookie, and server-side session
libraries write the store on every response, after the page is decided; here the cookie holds
only the session id, the store is core/sessions.py, and the session is saved before the
response starts (core/flows.py `finish`, through routes.py), so that a failed save becomes the
core's error page. Store I/O blocks: loading and saving run in a worker thread.

The session is `request.session` (`scope["session"]`), a core `SessionState`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

from anyio.to_thread import run_sync
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .core import flows
from .core.sessions import SessionState
from .core.web import CookieChanges, Services

log = logging.getLogger(__name__)


def web_request(request: Request) -> flows.WebRequest:
    """This request, as the core sees it."""
    query = request.url.query
    return flows.WebRequest(here=request.url.path + (f"?{query}" if query else ""),
                            cookies=request.cookies, session=request.scope["session"])


def cookie_headers(changes: CookieChanges) -> list[tuple[bytes, bytes]]:
    """Set-Cookie headers for core cookie changes (a deletion matches name, path, flags)."""
    response = Response()
    # Starlette checks SameSite case-insensitively and writes it as given ("Lax", "None").
    for spec in changes.delete:
        response.delete_cookie(spec.name, path=spec.path, secure=spec.secure,
                               httponly=spec.httponly,
                               samesite=spec.samesite)  # type: ignore[arg-type]
    for spec, value in changes.set:
        response.set_cookie(spec.name, value, max_age=spec.max_age, path=spec.path,
                            secure=spec.secure, httponly=spec.httponly,
                            samesite=spec.samesite)  # type: ignore[arg-type]
    return [(k, v) for k, v in response.raw_headers if k == b"set-cookie"]


class SessionMiddleware:
    """Loads the request's session from the store and, when the response starts, sets or
    deletes the session cookie as the save decided.

    Routes that answer through `routes.respond` have saved the session already. For one that
    changed the session and returned a response of its own, the session is saved here, still
    before the response leaves; if that fails, `render(page)` replaces the response by the
    error page. An exception no handler took becomes the 500 page here too, after a save, so
    that no stack trace reaches the browser.
    """

    def __init__(self, app: ASGIApp, services: Services,
                 render: Callable[[Request, flows.Page], Response]) -> None:
        self.app = app
        self.services = services
        self.render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        services = self.services
        request = Request(scope)
        sid = request.cookies.get(services.session_cookie.name)
        scope["session"] = (await run_sync(services.sessions.load, sid, SessionState)
                            if services.sessions.blocking
                            else services.sessions.load(sid, SessionState))
        started = replaced = False

        async def send_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self._session_cookie(scope)]
            await send(message)

        async def send_saved(message: Message) -> None:
            nonlocal started, replaced
            if replaced:
                return  # the body of the response that a failed save replaced
            if message["type"] == "http.response.start":
                started = True
                req = web_request(request)
                failed = (await run_sync(flows.session_saved, services, req)
                          if flows.save_due(services, req) else None)
                if failed is not None:
                    replaced = True
                    await self.render(request, failed)(scope, receive, send_cookie)
                    return
            await send_cookie(message)

        try:
            await self.app(scope, receive, send_saved)
        except Exception:
            if started:
                raise
            log.exception("unhandled error")
            outcome = await run_sync(partial(
                flows.finish, services, web_request(request),
                flows.http_error(500)))
            assert isinstance(outcome, flows.Page)
            await self.render(request, outcome)(scope, receive, send_cookie)

    def _session_cookie(self, scope: Scope) -> list[tuple[bytes, bytes]]:
        """The Set-Cookie header for the session id, if the save decided one."""
        session: SessionState = scope["session"]
        spec = self.services.session_cookie
        if session.cookie_action == "set" and session.sid:
            return cookie_headers(CookieChanges(set=((spec, session.sid),)))
        if session.cookie_action == "delete":
            return cookie_headers(CookieChanges(delete=(spec,)))
        return []
