"""Server-side sessions for FastAPI: an ASGI middleware over the core's session layer.

Starlette's SessionMiddleware keeps the whole session in the cookie, and server-side session
libraries write the store on every response, after the page is decided; here the cookie holds
only the session id, the store is core/sessions.py, and the session is saved once, when the
response starts (core/adapter.py `finish`), whatever route, error handler or view of yours
made it, so that a failed save becomes the core's error page. Store I/O blocks: loading and
saving run in a worker thread when the store waits on I/O.

The session is `request.session` (`scope["session"]`), a core `SessionState`.
"""

from __future__ import annotations

import logging

from anyio.to_thread import run_sync
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .core import adapter, flows
from .core.health import session_id
from .core.services import Services
from .core.sessions import SessionState
from .core.web import body_too_large
from .responses import ADAPTER, respond

log = logging.getLogger(__name__)


class SessionMiddleware:
    """Refuses a body larger than the app takes (413, before it is read; a body without a
    length is counted as it is read), loads the request's session from the store and, when the
    response starts, saves it once and sets or deletes its cookie (core/adapter.py `finish`).

    An exception no handler took becomes the 500 page here, after the save, so that no stack
    trace reaches the browser.
    """

    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        services = self.services
        request = Request(scope)
        limit = services.settings.max_request_bytes
        if body_too_large(services.settings, Headers(scope=scope).get("content-length")):
            scope["session"] = SessionState()
            await respond(request, flows.http_error(413))(scope, receive, send)
            return
        # None for the health probes: they read and write no session (core/health.py).
        sid = session_id(scope["path"], request.cookies.get(services.session_cookie.name))
        blocking = services.sessions.store.blocking
        scope["session"] = (await run_sync(services.sessions.load, sid, SessionState)
                            if blocking else services.sessions.load(sid, SessionState))
        started = replaced = False
        received = 0

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise HTTPException(413)  # the route reading the body answers with the page
            return message

        async def send_finished(message: Message) -> None:
            nonlocal started, replaced
            if replaced:
                return  # the body of the response that a failed save replaced
            if message["type"] == "http.response.start":
                started = True
                response = Response(status_code=message["status"])
                response.raw_headers = list(message.get("headers", []))
                session: SessionState = scope["session"]
                finished = (await run_sync(adapter.finish, ADAPTER, request, response)
                            if blocking and services.sessions.save_due(session)
                            else adapter.finish(ADAPTER, request, response))
                if finished is not response:
                    replaced = True
                    await finished(scope, receive, send)
                    return
                message["headers"] = response.raw_headers
            await send(message)

        try:
            await self.app(scope, receive_limited, send_finished)
        except Exception:
            if started:
                raise
            log.exception("unhandled error")
            # The 500 page, through the one save point like any response.
            await respond(request, flows.http_error(500))(scope, receive, send_finished)
