"""tests/tcp_proxy.py against a local echo server: it forwards, cuts, restores and closes."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator

import pytest

from tests.tcp_proxy import TcpProxy

TIMEOUT = 5.0


class EchoServer:
    """Echoes what each connection sends until its end of file, then closes it; counts the
    connections it accepted and those still open."""

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        self.accepted = 0
        self.open = 0
        self.changed = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed
            with self.changed:
                self.accepted += 1
                self.open += 1
                self.changed.notify_all()
            thread = threading.Thread(target=self._echo, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _echo(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            while data := conn.recv(65536):
                conn.sendall(data)
        with self.changed:
            self.open -= 1
            self.changed.notify_all()

    def wait_until_open(self, count: int) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: self.open == count, TIMEOUT), self.open

    def close(self) -> None:
        # shutdown wakes the accepting thread (close alone may not, on Linux)
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._acceptor.join(TIMEOUT)
        for thread in self._threads:
            thread.join(TIMEOUT)


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


def connect(proxy: TcpProxy) -> socket.socket:
    return socket.create_connection(proxy.address, timeout=TIMEOUT)


def round_trip(sock: socket.socket, data: bytes) -> bytes:
    sock.sendall(data)
    received = b""
    while len(received) < len(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    return received


def ended(sock: socket.socket) -> bool:
    """Whether the connection was closed by the other side (end of file or a reset)."""
    try:
        return sock.recv(1) == b""
    except ConnectionError:
        return True


def turned_away(proxy: TcpProxy) -> bool:
    """Whether a new connection is reset (accepted by the proxy, then closed at once: the
    reset may come before the connect call returns, or at the first read)."""
    try:
        sock = connect(proxy)
    except ConnectionError:
        return True
    with sock:
        return ended(sock)


def test_forwards_both_ways_for_many_connections_and_passes_a_half_close_on(
        echo: EchoServer) -> None:
    payloads = [os.urandom(1 << 20) for _ in range(4)]
    results: dict[int, bytes] = {}

    def talk(number: int) -> None:
        with connect(proxy) as sock:
            def send() -> None:
                sock.sendall(payloads[number])
                sock.shutdown(socket.SHUT_WR)

            # Sending while the echo comes back (one thread each), else both buffers fill up.
            sender = threading.Thread(target=send)
            sender.start()
            chunks = []
            while chunk := sock.recv(65536):  # the echo server closes after our half-close
                chunks.append(chunk)
            sender.join(TIMEOUT)
            results[number] = b"".join(chunks)

    with TcpProxy(echo.address) as proxy:
        talkers = [threading.Thread(target=talk, args=(n,)) for n in range(len(payloads))]
        for thread in talkers:
            thread.start()
        for thread in talkers:
            thread.join(30)
        assert results == dict(enumerate(payloads))
        assert echo.accepted == len(payloads) and proxy.accepted == len(payloads)
        echo.wait_until_open(0)


def test_a_cut_closes_every_connection_and_resets_new_ones_until_restored(
        echo: EchoServer) -> None:
    with TcpProxy(echo.address) as proxy:
        port = proxy.port
        first, second = connect(proxy), connect(proxy)
        assert round_trip(first, b"ping") == b"ping"
        assert round_trip(second, b"pong") == b"pong"
        echo.wait_until_open(2)

        proxy.cut()
        assert proxy.is_cut and proxy.connections == 0
        assert ended(first) and ended(second)  # the clients' side
        echo.wait_until_open(0)  # the server's side
        for _ in range(3):
            assert turned_away(proxy)
        assert echo.accepted == 2  # it never reached the server

        proxy.restore()
        assert proxy.port == port
        with connect(proxy) as again:
            assert round_trip(again, b"back") == b"back"
            assert proxy.connections == 1
        first.close()
        second.close()


def test_a_target_that_is_down_resets_the_client() -> None:
    with socket.socket() as unused:  # bound, not listening: connecting to it is refused
        unused.bind(("127.0.0.1", 0))
        with TcpProxy(unused.getsockname()[:2]) as proxy:
            assert turned_away(proxy)
            assert proxy.connections == 0


def test_close_frees_the_port_ends_connections_and_stops_every_thread(
        echo: EchoServer) -> None:
    proxy = TcpProxy(echo.address)
    sock = connect(proxy)
    assert round_trip(sock, b"hello") == b"hello"
    proxy.close()
    assert ended(sock)
    sock.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(proxy.address, timeout=TIMEOUT)
    assert not [t.name for t in threading.enumerate() if t.name.startswith("tcp-proxy")]
    proxy.close()  # twice is harmless
