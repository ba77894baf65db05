"""The downstream API stand-in of the throughput benchmark: a fixed JSON answer, fast.

    python downstream_api.py --fd N --marker TEXT

Serves HTTP/1.1 with keep-alive on an already listening socket (file descriptor N, bound by the
benchmark so it knows the port before anything starts), from one asyncio loop in one process.
Every request under the API path gets the same JSON body (which contains TEXT, so a page showing
it proves the API was called), or 401 without a bearer token. It does not validate tokens: its
cost per call must be fixed and small, the same for every variant and floor. What it does keep is
a count of calls per token (by the token's last characters), so the benchmark can check that a
floor really called it with its fixed token and a variant with a token of its own.

    GET /__stats          {"calls": n, "tokens": {"...last 16 chars": n}}
    GET /__stats?reset=1  the same, then both counts start again from zero
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import signal
import socket

STATUS_TEXT = {200: "OK", 400: "Bad Request", 401: "Unauthorized"}


def fixed_body(marker: str) -> bytes:
    """What every API call answers: a small to-do list, as a typical JSON API would."""
    items = [{"id": i, "title": f"Item {i}", "done": i % 2 == 0} for i in range(1, 6)]
    return json.dumps({"api": "todo", "marker": marker, "items": items}).encode()


class Api:
    def __init__(self, marker: str) -> None:
        self.body = fixed_body(marker)
        self.calls = 0
        self.tokens: collections.Counter[str] = collections.Counter()

    def answer(self, target: str, authorization: str) -> tuple[int, bytes]:
        if target.startswith("/__stats"):
            stats = {"calls": self.calls, "tokens": dict(self.tokens)}
            if "reset=1" in target:
                self.calls = 0
                self.tokens.clear()
            return 200, json.dumps(stats).encode()
        if not authorization.startswith("Bearer ") or len(authorization) < 40:
            return 401, b'{"error": "invalid_token"}'
        self.calls += 1
        self.tokens[authorization[-16:]] += 1
        return 200, self.body


class Connection(asyncio.Protocol):
    """One keep-alive connection: requests are parsed as they arrive, answered in order."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        out = []
        close = False
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head = self.buffer[:end].decode("latin-1").split("\r\n")
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0") or 0)
            if len(self.buffer) < end + 4 + length:
                break  # the body is still on its way
            self.buffer = self.buffer[end + 4 + length:]
            parts = head[0].split(" ")
            if len(parts) != 3:
                status, body, close = 400, b'{"error": "bad_request"}', True
            else:
                status, body = self.api.answer(parts[1], headers.get("authorization", ""))
                close = close or headers.get("connection", "").lower() == "close"
            out.append(b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                       b"Content-Length: %d\r\n\r\n%s"
                       % (status, STATUS_TEXT[status].encode(), len(body), body))
            if close:
                break
        if out:
            self.transport.write(b"".join(out))
        if close:
            self.transport.close()


async def serve(fd: int, marker: str) -> None:
    sock = socket.socket(fileno=fd)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    api = Api(marker)
    server = await loop.create_server(lambda: Connection(api), sock=sock)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fd", type=int, required=True, help="a listening socket to serve on")
    parser.add_argument("--marker", required=True, help="text included in every API answer")
    args = parser.parse_args()
    asyncio.run(serve(args.fd, args.marker))


if __name__ == "__main__":
    main()
