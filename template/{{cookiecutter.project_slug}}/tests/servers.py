"""Serving an app under test from a thread, on an ephemeral port, over http or https.

tests/app_server.py (the one module that knows this app's framework) uses these; the port is
known once the socket is bound, before the app is built, so the app's REDIRECT_URI can name it.
"""

from __future__ import annotations

import contextlib
import functools
import random
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from werkzeug.serving import make_server


def listening_socket() -> socket.socket:
    """A socket listening on 127.0.0.1 at a port the system picks."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    return listener


def free_port() -> int:
    """A port free on 127.0.0.1 now, for a program that binds it itself.

    Chosen below the system's ephemeral range: a port the system picked (bind to port 0) and
    released could be picked again by the next bind to port 0, such as the stand-in's own
    listeners in the program started, which then finds its port taken.
    """
    low, _ = _ephemeral_range()
    for _ in range(100):
        port = random.randrange(max(1024, low - 12000), low)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue  # in use: another try
            return port
    raise RuntimeError("no free port below the ephemeral range after 100 tries")


def wait_for_port(port: int, process: subprocess.Popen[Any],
                  said: Callable[[], str] | None = None, within: float = 60.0) -> None:
    """Wait up to `within` seconds for `process` to listen on 127.0.0.1:`port`. `said` reads
    its output so far (a log file, or what a reader thread of the caller's holds); without
    it, the output is read here once the process has exited."""
    deadline = time.monotonic() + within
    while True:
        if process.poll() is not None:
            output = said() if said is not None else process.communicate()[0]
            raise AssertionError(f"exited with {process.returncode} before listening on "
                                 f"{port}:\n{output}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            assert time.monotonic() < deadline, (
                f"nothing listens on {port} after {within:g} s"
                + (f":\n{said()}" if said is not None else ""))
            time.sleep(0.2)


def _ephemeral_range() -> tuple[int, int]:
    """The ports the system hands out for a bind to port 0 (Linux's default elsewhere)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def base_url_of(listener: socket.socket, cert_files: tuple[str, str] | None, host: str) -> str:
    return f"{'https' if cert_files else 'http'}://{host}:{listener.getsockname()[1]}"


def server_ssl_context(cert_files: tuple[str, str] | None) -> ssl.SSLContext | None:
    return _server_ssl_context(*cert_files) if cert_files else None


@functools.cache
def _server_ssl_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    # One per certificate for the whole process (an app server starts in almost every test).
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


def stop_serving(server: socketserver.BaseServer) -> None:
    """`server.shutdown()` without waiting for the next poll of its `serve_forever` (up to its
    `poll_interval`, for every server every test stops): a listening socket that is shut down
    reads as ready, which wakes the loop, and its `accept` fails, which the loop ignores."""
    try:
        socket.socket.shutdown(server.socket, socket.SHUT_RDWR)  # type: ignore[attr-defined]
    except OSError:
        pass  # closed already
    server.shutdown()


@contextlib.contextmanager
def serve_wsgi(build: Callable[[str], Any], cert_files: tuple[str, str] | None,
               host: str = "localhost") -> Iterator[tuple[str, Any]]:
    """Serve the WSGI app `build(base_url)` returns from a thread (werkzeug's threaded server):
    (base_url, that app)."""
    listener = listening_socket()
    base_url = base_url_of(listener, cert_files, host)
    app = build(base_url)
    server = make_server("127.0.0.1", 0, app, threaded=True, fd=listener.fileno(),
                         ssl_context=server_ssl_context(cert_files))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base_url, app
    finally:
        stop_serving(server)
        thread.join(5)
        server.server_close()
        listener.close()


def gunicorn_server(app: str, fd: int, cert_files: tuple[str, str] | None
                    ) -> tuple[list[str], dict[str, str]]:
    """The documented production server (gunicorn with the shipped gunicorn.conf.py, its
    workers and threads) for `app`, serving the listening socket `fd` over https (plain http
    without `cert_files`: behind a proxy): its command line and the environment variables it
    needs beyond the app's settings. The caller passes `fd` on (`pass_fds`) and stops the
    server with SIGINT (a quick shutdown)."""
    project = Path(__file__).parents[1]
    tls = ["--certfile", cert_files[0], "--keyfile", cert_files[1]] if cert_files else []
    command = [sys.executable, "-m", "gunicorn", "-c", str(project / "gunicorn.conf.py"),
               *tls, app]
    return command, {"BIND": f"fd://{fd}"}
