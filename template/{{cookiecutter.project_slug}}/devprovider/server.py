"""The stand-in's HTTP side: a threaded HTTP(S) server on loopback and the request plumbing.

Each request is read into a ``_Request`` and handed to the stand-in's ``_route``, which answers
with a ``_Response`` (built with ``_json``, ``_html`` or ``_redirect``). TLS handshakes happen in
the handler's thread. A bug in the stand-in becomes a 500 answer plus a traceback in
``StandIn.errors``, so the tests see it.
"""

from __future__ import annotations

import dataclasses
import io
import json
import socket
import ssl
import threading
import traceback
from collections.abc import Iterable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit


@dataclasses.dataclass
class _Request:
    method: str
    path: str
    query: dict[str, str]
    raw_query: str
    form: dict[str, str]
    headers: Mapping[str, str]
    body: bytes
    origin: str  # scheme://host:port this request arrived on
    # Which listener it arrived on: "main" (https), "browser" (the sign-in pages only) or
    # "msi" (the managed identity endpoint only).
    listener: str = "main"

    @property
    def browser_only(self) -> bool:
        return self.listener == "browser"

    def header(self, name: str) -> str | None:
        """A request header, by its case-insensitive name."""
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)


@dataclasses.dataclass
class _Response:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    # A body made as it is written (a large answer), instead of ``body``: sent with
    # ``stream_length`` as its Content-Length, or chunked when that is None.
    stream: Iterable[bytes] | None = None
    stream_length: int | None = None


def _json(status: int, payload: Any, headers: Sequence[tuple[str, str]] = ()) -> _Response:
    return _Response(status, json.dumps(payload).encode(), "application/json; charset=utf-8",
                     [("Cache-Control", "no-store, no-cache"), ("Pragma", "no-cache"), *headers])


def _html(status: int, text: str, headers: Sequence[tuple[str, str]] = ()) -> _Response:
    return _Response(status, text.encode(), "text/html; charset=utf-8",
                     [("Cache-Control", "no-store"), *headers])


def _redirect(location: str, headers: Sequence[tuple[str, str]] = ()) -> _Response:
    return _Response(302, b"", headers=[("Location", location), *headers])


@dataclasses.dataclass
class Slowness:
    """How slowly to answer (see ``StandIn.slow``): wait ``delay_s``, then send the answer
    (status line, headers and body) one byte every ``trickle_bytes_every_s`` seconds if set.
    ``cancelled`` ends the slowness at once: what is left of the answer goes out in one write."""

    delay_s: float = 0.0
    trickle_bytes_every_s: float | None = None
    cancelled: threading.Event = dataclasses.field(default_factory=threading.Event)


class _Site(Protocol):
    """What the server needs of the stand-in it serves (a ``StandIn``)."""

    verbose: bool
    errors: list[str]

    def _route(self, req: _Request) -> _Response: ...

    def _slowness(self, path: str) -> Slowness | None: ...


class _Server(ThreadingHTTPServer):
    # Many clients connect at once (an app's pool opening a connection per concurrent page):
    # socketserver's default backlog of 5 would drop connections a real service accepts.
    request_queue_size = 128
    daemon_threads = True
    # Do not let a second stand-in steal a port in TIME_WAIT on some platforms.
    allow_reuse_address = False

    def __init__(self, addr: tuple[str, int], standin: _Site, tls: ssl.SSLContext | None,
                 listener: str = "main") -> None:
        self.standin = standin
        self.tls = tls
        self.listener = listener  # see _Request.listener
        super().__init__(addr, _Handler)

    def shutdown(self) -> None:
        """Stop serving now, not at the next poll of ``serve_forever`` (up to its
        ``poll_interval`` later): a listening socket that is shut down reads as ready, which
        wakes the loop, and its ``accept`` fails, which the loop ignores."""
        try:
            self.socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # closed already
        super().shutdown()

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = self.socket.accept()
        if self.tls is not None:
            # Handshake later, in the handler's thread, so one slow client cannot block accept().
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Connection-level failures (a client rejecting our certificate, a reset) are normal
        # and stay quiet; anything else is a bug and is recorded for the tests to see.
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            return
        self.standin.errors.append(traceback.format_exc())


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive: requests sessions reuse connections
    timeout = 30
    # Headers and body go out in two writes; with Nagle + delayed ACK each keep-alive response
    # would stall ~40 ms.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.do_handshake()

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.standin.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _dispatch(self) -> None:
        standin = self.server.standin
        slowness = None
        try:
            raw_length = self.headers.get("Content-Length") or "0"
            length = int(raw_length) if raw_length.isdigit() else -1
            if not 0 <= length <= 4 * 1024 * 1024:
                # Unreadable or huge body: answer 400 and drop the connection (it is out of sync).
                self.close_connection = True
                self._send(_json(400, {"error": "invalid_request",
                                       "error_description": "Bad Content-Length."}))
                return
            body = self.rfile.read(length) if length else b""
            url = urlsplit(self.path)
            form: dict[str, str] = {}
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if ctype == "application/x-www-form-urlencoded" and body:
                form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
            scheme = "https" if self.server.tls is not None else "http"
            host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
            req = _Request(
                method=self.command, path=url.path or "/",
                query=dict(parse_qsl(url.query, keep_blank_values=True)), raw_query=url.query,
                form=form, headers=dict(self.headers.items()), body=body,
                origin=f"{scheme}://{host}", listener=self.server.listener,
            )
            slowness = standin._slowness(req.path)
            resp = standin._route(req)
        except Exception:  # noqa: BLE001 - a stand-in bug: answer 500, make it visible to tests
            standin.errors.append(traceback.format_exc())
            resp = _json(500, {"error": "server_error",
                               "error_description": "The stand-in crashed; see StandIn.errors."})
        self._send(resp, slowness)

    def _send(self, resp: _Response, slowness: Slowness | None = None) -> None:
        wire, collected = self.wfile, io.BytesIO()
        if slowness is not None:
            self.wfile = collected  # collect the whole answer, headers included
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        if resp.stream is None:
            self.send_header("Content-Length", str(len(resp.body)))
        elif resp.stream_length is None:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(resp.stream_length))
        for name, value in resp.headers:
            self.send_header(name, value)
        if self.close_connection or resp.stream is not None:
            # Said, so that a client never sends its next request on a connection closing
            # under it (a race a keep-alive pool loses on a busy machine).
            self.send_header("Connection", "close")
        self.end_headers()
        if resp.stream is not None:
            self._send_stream(resp.stream, chunked=resp.stream_length is None)
            return
        self.wfile.write(resp.body)
        if slowness is None:
            return
        raw, self.wfile = collected.getvalue(), wire
        if slowness.cancelled.wait(slowness.delay_s) or slowness.trickle_bytes_every_s is None:
            wire.write(raw)
            return
        for sent in range(len(raw)):
            wire.write(raw[sent:sent + 1])  # fails once the client has gone
            if slowness.cancelled.wait(slowness.trickle_bytes_every_s):
                wire.write(raw[sent + 1:])
                return

    def _send_stream(self, chunks: Iterable[bytes], *, chunked: bool) -> None:
        """Write a streamed body as it is made; a client that stops reading ends it (its
        connection is dropped, which is not an error)."""
        self.close_connection = True  # a client that stops reading leaves the rest unread
        try:
            for chunk in chunks:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass
