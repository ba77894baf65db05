"""A TCP proxy on 127.0.0.1 in front of a server, which a test can cut off and bring back.

The app under test is given the proxy's address instead of the server's (a Redis or SQL
store's URL), so that the test can make the server go away and come back while the app runs:

    with TcpProxy(("127.0.0.1", 6379)) as proxy:
        ...  # the app's store URL names 127.0.0.1:<proxy.port>
        proxy.cut()  # every open connection is closed; new ones are reset at once
        ...
        proxy.restore()  # the same port forwards again

While cut, the proxy keeps its listening socket and resets every connection it accepts (a
client sees the server go away at once, not a connection that hangs), so the port stays this
proxy's and `restore` never has to bind it again. Threads: one accepting connections, two per
proxied connection (one each way); all are daemons, and `close` waits for them.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import threading
from collections.abc import Callable
from types import TracebackType

CHUNK = 65536
CONNECT_TIMEOUT_SECONDS = 5.0
JOIN_TIMEOUT_SECONDS = 5.0


def _reset(sock: socket.socket) -> None:
    """Close `sock` with a reset (RST), as a server that went away does, not a clean FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class _Pair:
    """A client connection and its connection to the target, pumped both ways by two threads.

    A clean end of one direction (EOF) is passed on as a half-close; an error or `kill` ends
    both. The last pump to finish closes both sockets (never a socket another thread is still
    reading: `kill` only shuts them down, which wakes the readers)."""

    def __init__(self, client: socket.socket, upstream: socket.socket,
                 on_done: Callable[[_Pair], None]) -> None:
        self.client = client
        self.upstream = upstream
        self._on_done = on_done
        self._running = 2
        self._guard = threading.Lock()
        self.threads = [
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True,
                             name="tcp-proxy-up"),
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True,
                             name="tcp-proxy-down"),
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def kill(self) -> None:
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(CHUNK):
                sink.sendall(data)
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)  # EOF: pass the half-close on
        except OSError:
            self.kill()  # a reset, or killed: end the other direction too
        with self._guard:
            self._running -= 1
            last = self._running == 0
        if last:
            self.client.close()
            self.upstream.close()
            self._on_done(self)


class TcpProxy:
    """Forwards connections to 127.0.0.1:<port> (an ephemeral port) to `target`."""

    def __init__(self, target: tuple[str, int], host: str = "127.0.0.1") -> None:
        self.target = target
        self._listener = socket.socket()
        self._listener.bind((host, 0))
        # Listening from here on: a client may connect as soon as the constructor returns
        # (it waits in the backlog until the accepting thread takes it).
        self._listener.listen(128)
        self.host, self.port = self._listener.getsockname()[:2]
        self._lock = threading.Lock()
        self._pairs: set[_Pair] = set()
        self._serving: set[threading.Thread] = set()
        self._cut = False
        self._closed = False
        self.accepted = 0  # connections accepted since the start (forwarded or reset)
        self._waker, self._wake = socket.socketpair()
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True,
                                          name=f"tcp-proxy-{self.port}")
        self._acceptor.start()

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def is_cut(self) -> bool:
        return self._cut

    @property
    def connections(self) -> int:
        """Proxied connections open now."""
        with self._lock:
            return len(self._pairs)

    # -- control -------------------------------------------------------------------------------
    def cut(self) -> None:
        """Close every proxied connection (both sides) and reset new ones until `restore`.

        When it returns, every connection that was open is closed: none is half-way."""
        with self._lock:
            self._cut = True
            pairs = list(self._pairs)
            serving = list(self._serving)
        for thread in serving:  # connecting now: they see the cut and reset their client
            thread.join(JOIN_TIMEOUT_SECONDS)
        for pair in pairs:
            pair.kill()
        for pair in pairs:
            for thread in pair.threads:
                thread.join(JOIN_TIMEOUT_SECONDS)

    def restore(self) -> None:
        """Forward new connections again, on the same port."""
        with self._lock:
            self._cut = False

    def close(self) -> None:
        """Stop: the port is closed, every connection ends, and the threads are joined."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._cut = True
            pairs = list(self._pairs)
        self._wake.send(b"x")
        self._acceptor.join(JOIN_TIMEOUT_SECONDS)
        self._listener.close()
        for pair in pairs:
            pair.kill()
        with self._lock:
            threads = [t for pair in pairs for t in pair.threads] + list(self._serving)
        for thread in threads:
            thread.join(JOIN_TIMEOUT_SECONDS)
        self._waker.close()
        self._wake.close()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    # -- serving -------------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._waker, selectors.EVENT_READ)
            while True:
                ready = {key.fileobj for key, _ in selector.select()}
                if self._waker in ready or self._closed:
                    return
                try:
                    client, _ = self._listener.accept()
                except OSError:
                    continue  # the client gave up before it was accepted
                self.accepted += 1
                if self._cut:
                    _reset(client)
                    continue
                # Connecting to the target may take a moment: not in this thread.
                thread = threading.Thread(target=self._serve, args=(client,), daemon=True,
                                          name="tcp-proxy-connect")
                with self._lock:
                    self._serving.add(thread)
                thread.start()

    def _serve(self, client: socket.socket) -> None:
        try:
            try:
                upstream = socket.create_connection(self.target, CONNECT_TIMEOUT_SECONDS)
                upstream.settimeout(None)
            except OSError:
                _reset(client)  # the target itself is down: so is the proxy
                return
            pair = _Pair(client, upstream, self._forget)
            with self._lock:
                # Cut (or closed) while connecting: the connection must not survive it.
                if not self._cut:
                    self._pairs.add(pair)
                    pair.start()
                    return
            _reset(client)
            _reset(upstream)
        finally:
            with self._lock:
                self._serving.discard(threading.current_thread())

    def _forget(self, pair: _Pair) -> None:
        with self._lock:
            self._pairs.discard(pair)
