"""Slow clients against the documented production set-up: the production server (tests/
app_server.py `production_server`) on loopback behind the shipped deploy/nginx.conf.

A client that trickles its request headers, or stops half-way through a body, ties up one of
gunicorn's threads for as long as it likes (16 of them stop a two-worker gthread server
answering anyone), and uvicorn keeps such connections open for good. nginx reads each request
whole before it reaches the app and drops the slow ones after its header and body timeouts.

Needs nginx (Debian's `nginx-light` or `nginx`): skipped without it, failed where
MSAL_WEBAPP_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from {{ cookiecutter.package_name }}.config import DEFAULTS

from devprovider import DEFAULT_USERS, StandIn
from tests.app_server import PROJECT, production_server
from tests.conftest import AppUnderTest, app_environment, server_process_environment
from tests.processes import start, stop
from tests.servers import free_port, listening_socket
from tests.services import unavailable
from tests.test_web_flow import sign_in

NGINX_CONF = PROJECT / "deploy" / "nginx.conf"
SLOW_CLIENTS = 50
# A normal request is answered at once (tens of milliseconds) while the slow connections are
# open; without the proxy it waits for a thread that none of them frees, i.e. not within any
# bound. 5 s, not 1: on a loaded two-core CI machine a single sign-in page can take a second or
# two; what this tells apart is "answered" from "starved", not fast from slow.
ANSWERED_WITHIN = 5.0
# How much later than its timeout nginx may close a slow connection on a loaded machine.
SLACK = 10.0
# The slow clients send a byte this often: well inside the timeouts, so only the whole-header
# bound (not a pause) ends a trickle.
TRICKLE_EVERY = 0.5

# The rest of an nginx.conf around the shipped server blocks: in the foreground, everything
# in the test's folder.
{% raw %}MAIN_CONF = """
daemon off;
worker_processes 1;
{user}
pid {folder}/nginx.pid;
error_log {folder}/error.log info;
events {{ worker_connections 1024; }}
http {{
    access_log {folder}/access.log;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    include {site};
}}
"""{% endraw %}


def seconds(directive: str) -> float:
    """The value of a `name 10s;` directive of the shipped file."""
    match = re.search(rf"^\s*{directive}\s+(\d+)s;", NGINX_CONF.read_text(), re.MULTILINE)
    assert match, f"{directive} not set in {NGINX_CONF}"
    return float(match.group(1))


def nginx_binary() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        unavailable("nginx is not installed (apt-get install nginx-light)")
    assert found is not None
    return found



@pytest.fixture
def behind_nginx(standin: StandIn, server_cert_files: tuple[str, str], ca_bundle_path: str,
                 tmp_path: Path) -> Iterator[AppUnderTest]:
    """The production server on a loopback socket (plain http), nginx with the shipped file
    on an https port in front of it; both stopped at the end, with nothing left."""
    nginx = nginx_binary()
    https_port, http_port = free_port(), free_port()
    listener = listening_socket()
    app_port = listener.getsockname()[1]
    base_url = f"https://localhost:{https_port}"
    env = app_environment(standin, base_url, ca_bundle_path, tmp_path, TRUSTED_PROXY_HOPS="1")
    # The shipped file with only its addresses and certificate paths replaced.
    site = NGINX_CONF.read_text()
    for pattern, value in (
            (r"server 127\.0\.0\.1:8000", f"server 127.0.0.1:{app_port}"),
            (r"listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;"),
            (r"listen 80;", f"listen 127.0.0.1:{http_port};"),
            (r"ssl_certificate \S+;", f"ssl_certificate {server_cert_files[0]};"),
            (r"ssl_certificate_key \S+;", f"ssl_certificate_key {server_cert_files[1]};")):
        site, count = re.subn(pattern, value, site)
        assert count == 1, f"{pattern!r} not found once in {NGINX_CONF}"
    (tmp_path / "site.conf").write_text(site)
    # As root, nginx's workers would otherwise run as `nobody`, who cannot use the test's folder.
    user = "user root;" if os.geteuid() == 0 else ""
    (tmp_path / "nginx.conf").write_text(
        MAIN_CONF.format(folder=tmp_path, site=tmp_path / "site.conf", user=user))

    fd = listener.fileno()
    command, server_env = production_server(fd, None)
    with (tmp_path / "server.log").open("wb") as out:
        server = start(command, cwd=tmp_path, pass_fds=[fd], stdout=out,
                       stderr=subprocess.STDOUT,
                       env={**env, **server_env, "PYTHONPATH": str(PROJECT),
                            **server_process_environment()})
    with (tmp_path / "nginx.out").open("wb") as out:
        proxy = start([nginx, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                      cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    app = AppUnderTest(base_url=base_url, standin=standin, services=None,  # type: ignore[arg-type]
                       ca_path=ca_bundle_path, env=env)
    try:
        wait_until_answered(app, proxy, tmp_path)
        yield app
    finally:
        app.close_browsers()
        listener.close()
        # Each as its users stop it; whatever is still running then fails the test.
        stop(proxy, signal.SIGQUIT)
        stop(server, signal.SIGINT, whole_group=True)
    output = (tmp_path / "server.log").read_text(errors="replace")
    assert "Traceback" not in output, output


def wait_until_answered(app: AppUnderTest, proxy: subprocess.Popen[bytes], folder: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        if proxy.poll() is not None:
            pytest.fail("nginx stopped:\n" + (folder / "nginx.out").read_text(errors="replace")
                        + (folder / "error.log").read_text(errors="replace"), pytrace=False)
        with contextlib.suppress(requests.RequestException):
            if requests.get(app.url("/healthz"), verify=app.ca_path, timeout=2).ok:
                return
        assert time.monotonic() < deadline, "the app did not answer through nginx within 60 s"
        time.sleep(0.1)


class SlowClients:
    """Connections to `port` over TLS: half send their request headers a byte at a time and
    never finish them; the other half send whole headers of a POST and stop half-way through
    its body."""

    def __init__(self, port: int, ca_path: str, count: int) -> None:
        context = ssl.create_default_context(cafile=ca_path)
        self.trickling: dict[socket.socket, bytes] = {}
        self.stalled: list[socket.socket] = []
        self.closed_after: dict[socket.socket, float] = {}
        self.opened = time.monotonic()
        body = b"state=" + b"x" * 994
        for n in range(count):
            connection = context.wrap_socket(
                socket.create_connection(("127.0.0.1", port), timeout=10),
                server_hostname="localhost")
            if n % 2:
                connection.sendall(b"POST " + DEFAULTS.redirect_path.encode() + b" HTTP/1.1\r\n"
                                   b"Host: localhost\r\nContent-Type: application/x-www-form-"
                                   b"urlencoded\r\nContent-Length: 1000\r\n\r\n" + body[:500])
                self.stalled.append(connection)
            else:
                self.trickling[connection] = (b"GET / HTTP/1.1\r\nHost: localhost\r\n"
                                              + b"X-Slow: " + b"a" * 1000)
        self.selector = selectors.DefaultSelector()
        for opened in self.all():
            opened.setblocking(False)
            self.selector.register(opened, selectors.EVENT_READ)

    def all(self) -> list[socket.socket]:
        return [*self.trickling, *self.stalled]

    def step(self) -> None:
        """Send each trickling connection one more byte; note the ones the server closed."""
        for connection, rest in list(self.trickling.items()):
            if connection in self.closed_after:
                continue
            try:
                connection.send(rest[:1])
                self.trickling[connection] = rest[1:]
            except (OSError, ssl.SSLError):
                self.closed(connection)
        for key, _ in self.selector.select(timeout=TRICKLE_EVERY):
            readable = key.fileobj
            assert isinstance(readable, socket.socket)
            try:
                while readable.recv(4096):
                    pass  # an error answer (408) before the close
                self.closed(readable)
            except (ssl.SSLWantReadError, BlockingIOError):
                pass  # part of a TLS record: the rest comes later
            except (OSError, ssl.SSLError):
                self.closed(readable)

    def closed(self, connection: socket.socket) -> None:
        if connection not in self.closed_after:
            self.closed_after[connection] = time.monotonic() - self.opened
            self.selector.unregister(connection)

    def open_count(self) -> int:
        return len(self.all()) - len(self.closed_after)

    def close(self) -> None:
        for connection in self.all():
            connection.close()
        self.selector.close()


def test_slow_clients_do_not_keep_others_waiting_and_are_dropped(
        behind_nginx: AppUnderTest) -> None:
    app = behind_nginx
    port = int(app.base_url.rsplit(":", 1)[1])
    slow = SlowClients(port, app.ca_path, SLOW_CLIENTS)
    try:
        for _ in range(4):  # the trickles are under way
            slow.step()
        assert slow.open_count() == SLOW_CLIENTS, "nginx closed slow connections at once"
        # A normal request, and a whole sign-in, while all of them are open.
        started = time.monotonic()
        answer = requests.get(app.url("/"), verify=app.ca_path, timeout=30)
        assert answer.status_code == 200
        elapsed = time.monotonic() - started
        assert elapsed < ANSWERED_WITHIN, f"GET / took {elapsed:.1f} s"
        sign_in(app, app.browser(), DEFAULT_USERS[0])  # through nginx: https, forwarded headers
        assert slow.open_count() == SLOW_CLIENTS
        # The server-side bound: every slow connection closed by nginx, none before its timeout
        # (the whole header within client_header_timeout; a body that pauses for
        # client_body_timeout).
        limit = max(seconds("client_header_timeout"), seconds("client_body_timeout"))
        while slow.open_count() and time.monotonic() - slow.opened < limit + SLACK:
            slow.step()
        assert slow.open_count() == 0, f"{slow.open_count()} still open after {limit + SLACK} s"
        earliest = min(slow.closed_after.values())
        assert earliest >= min(seconds("client_header_timeout"),
                               seconds("client_body_timeout")) - 1
    finally:
        slow.close()
