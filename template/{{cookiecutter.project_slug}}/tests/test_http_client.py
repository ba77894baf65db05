"""The shared outbound HTTP session: an overall deadline per call, no cookies, and proxy and CA
settings read from the environment once. Real servers on loopback, real sockets, no mocks."""

from __future__ import annotations

import contextlib
import http.server
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import trustme

from {{ cookiecutter.package_name }}.core.downstream import ApiResponse, claims_challenge
from {{ cookiecutter.package_name }}.core.http import (
    DeadlineExceeded,
    OutboundEnvironment,
    OutboundSession,
    build_session,
)

from tests.servers import stop_serving

DEADLINE = 1.0
# How much later than its deadline a cut call may end on a loaded machine (scheduling delays; the
# watchdog itself adds up to 0.05 s). What the tests prove is that the call was cut, and long
# before the server would have finished: every stand-in below keeps going for TRICKLE_FOR
# seconds or more, far beyond any deadline plus this.
SLACK = 10.0
TRICKLE_EVERY = 0.3
TRICKLE_FOR = 30.0  # then the server gives up: a broken deadline fails the test, not hangs it
# A caller's own timeouts, longer than any deadline here plus SLACK: if they governed instead
# of the deadline, the call would last past the bound the tests assert.
LONG_TIMEOUT = (20.0, 60.0)
ANSWER_AFTER = 2.5  # /answer-after waits this long, then answers
# The deadline of the calls a test needs to complete (before or after the one it cuts): on a
# loaded machine a plain call on a new TLS connection can take more than DEADLINE.
ROOMY = 30.0


# ------------------------------------------------------------------------------ servers
@dataclass
class Site:
    """A loopback HTTP(S) server: its base URL and the requests it received."""

    base_url: str
    seen: list[tuple[str, str]] = field(default_factory=list)  # (path, Cookie header)
    ports: list[int] = field(default_factory=list)  # each request's client port, in order
    stop: threading.Event = field(default_factory=threading.Event)
    # Set by a trickling answer when the client hangs up (before the trickle has ended).
    dropped: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str) -> str:
        return self.base_url + path


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so that the client's pool reuses connections
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall
    server: _SiteServer

    def setup(self) -> None:
        super().setup()
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.settimeout(10)
            self.connection.do_handshake()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        site = self.server.site
        site.seen.append((self.path, self.headers.get("Cookie") or ""))
        site.ports.append(self.client_address[1])
        if self.path == "/trickle-headers":
            # A status line that never ends: one byte at a time, forever.
            self._trickle(b"HTTP/1.1 200 OK\r\nX-Slow: " + b"." * 100_000)
        elif self.path == "/trickle-body":
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self._trickle(b"." * 100_000)
        elif self.path == "/stall-in-headers":
            # A complete status line and header line, then nothing (the rest never comes).
            self._stall(b"HTTP/1.1 200 OK\r\nX-Partial: 1\r\n")
        elif self.path == "/stall-in-body":
            # A body without a length ends when the connection does.
            self._stall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\npart of the")
        elif self.path == "/answer-after":
            if not site.stop.wait(ANSWER_AFTER):
                self._answer(200, b"answered late")
        elif self.path == "/set-cookie":
            self._answer(200, b"cookie set", [("Set-Cookie", "sid=alice-session; Path=/")])
        elif self.path == "/set-cookie-and-redirect":
            self._answer(302, b"", [("Set-Cookie", "hop=1; Path=/"), ("Location", "/echo")])
        else:
            self._answer(200, f"direct {self.path}".encode())

    def _answer(self, status: int, body: bytes, headers: Sequence[tuple[str, str]] = ()) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _stall(self, data: bytes) -> None:
        self.close_connection = True
        self.wfile.write(data)
        self.server.site.stop.wait(TRICKLE_FOR)

    def _trickle(self, data: bytes) -> None:
        """Send `data` one byte every TRICKLE_EVERY seconds for TRICKLE_FOR seconds, and tell
        the site if the client hangs up meanwhile."""
        self.close_connection = True
        site = self.server.site
        for index in range(int(TRICKLE_FOR / TRICKLE_EVERY)):
            try:
                self.wfile.write(data[index:index + 1])
            except OSError:  # the client has gone (reset)
                site.dropped.set()
                return
            if site.stop.wait(TRICKLE_EVERY):
                return
            # The client sends nothing more while it waits for this answer: the connection
            # becoming readable means its end-of-file (a closed or cut connection).
            if select.select([self.connection], [], [], 0)[0]:
                site.dropped.set()
                return


class _SiteServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    site: Site
    tls: ssl.SSLContext | None = None

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        if self.tls is not None:  # handshake in the handler's thread, not in accept()
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address


@contextlib.contextmanager
def serve(handler: type[http.server.BaseHTTPRequestHandler],
          tls: ssl.SSLContext | None = None) -> Iterator[Site]:
    server = _SiteServer(("127.0.0.1", 0), handler)
    server.tls = tls
    scheme = "https" if tls else "http"
    server.site = Site(f"{scheme}://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.site
    finally:
        server.site.stop.set()
        stop_serving(server)
        server.server_close()
        thread.join(5)


@pytest.fixture
def tls_context(tls_server_files: tuple[str, str]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*tls_server_files)
    return context


@pytest.fixture(params=["http", "https"])
def site(request: pytest.FixtureRequest, tls_context: ssl.SSLContext) -> Iterator[Site]:
    with serve(_Handler, tls_context if request.param == "https" else None) as running:
        yield running


@pytest.fixture
def http_site() -> Iterator[Site]:
    with serve(_Handler) as running:
        yield running


@pytest.fixture
def session(ca_bundle_path: str) -> Iterator[OutboundSession]:
    """A session trusting the test CA, with a ROOMY deadline and an empty environment."""
    built = build_session(Path(ca_bundle_path), deadline_seconds=ROOMY, environ={})
    yield built
    built.close()


def timed(call: Callable[[], object]) -> tuple[float, BaseException | None]:
    start = time.monotonic()
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - returned for the test to look at
        return time.monotonic() - start, exc
    return time.monotonic() - start, None


def timed_with_deadline(session: OutboundSession, call: Callable[[], object]
                        ) -> tuple[float, BaseException | None]:
    """`timed(call)` with the session's deadline DEADLINE for it, ROOMY again afterwards."""
    session.deadline_seconds = DEADLINE
    try:
        return timed(call)
    finally:
        session.deadline_seconds = ROOMY


# ------------------------------------------------------------------------------ deadline
@pytest.mark.parametrize("path", ["/trickle-headers", "/trickle-body"])
def test_a_trickling_answer_is_cut_at_the_deadline(site: Site, session: OutboundSession,
                                                   path: str) -> None:
    """A read timeout restarts with each byte: only an overall deadline stops a server that
    sends one byte every 0.3 s for 30 s. The call is cut (the server sees the connection
    dropped), not before its deadline and long before the trickle ends; the pool is not
    poisoned by the cut connection."""
    session.get(site.url("/fast"))  # the slow call reuses this pooled connection
    elapsed, error = timed_with_deadline(
        session, lambda: session.get(site.url(path), timeout=LONG_TIMEOUT))
    assert isinstance(error, DeadlineExceeded), repr(error)
    assert isinstance(error, requests.exceptions.Timeout)  # what callers already handle
    assert DEADLINE - 0.05 <= elapsed < DEADLINE + SLACK < TRICKLE_FOR
    assert site.dropped.wait(SLACK), "the server never saw the connection dropped"
    # The same session (and pool) answers the next call.
    assert session.get(site.url("/fast")).text == "direct /fast"


@pytest.mark.parametrize("path", ["/stall-in-headers", "/stall-in-body"])
def test_an_answer_cut_where_http_allows_an_end_is_not_taken_as_complete(
        site: Site, session: OutboundSession, path: str) -> None:
    """The cut reads as end-of-file: after a complete header line, HTTP parsers take that as the
    end of the headers, and as the end of a body sent without a length. The call still fails:
    a truncated answer is never returned as a complete one."""
    elapsed, error = timed_with_deadline(
        session, lambda: session.get(site.url(path), timeout=LONG_TIMEOUT))
    assert isinstance(error, DeadlineExceeded), repr(error)
    assert DEADLINE - 0.05 <= elapsed < DEADLINE + SLACK


def test_every_call_gets_the_whole_deadline(site: Site, session: OutboundSession) -> None:
    """The deadline is per call, not per session: a cut does not shorten the next call's time,
    and a call on a reused connection is not cut by the deadline of an earlier call on it.
    (These slow calls open new connections; the test above reuses one.)"""
    session.deadline_seconds = 0.5
    for _ in range(2):
        elapsed, error = timed(lambda: session.get(site.url("/trickle-body")))
        assert isinstance(error, DeadlineExceeded), repr(error)
        assert elapsed >= 0.45
    # A quick call ends well within its deadline, which stays registered with the watchdog; the
    # next call on the same pooled connection is still waiting for its answer when that
    # deadline passes, and within its own.
    session.deadline_seconds = ANSWER_AFTER - 0.5
    assert session.get(site.url("/fast")).text == "direct /fast"
    session.deadline_seconds = ANSWER_AFTER + SLACK
    assert session.get(site.url("/answer-after")).text == "answered late"
    assert site.ports[-1] == site.ports[-2]  # one connection for both


@pytest.mark.parametrize("timeout", [None, 60, LONG_TIMEOUT])
def test_the_caller_s_timeout_does_not_lift_the_deadline(tls_context: ssl.SSLContext,
                                                         session: OutboundSession,
                                                         timeout: float | tuple[float, float] | None
                                                         ) -> None:
    """MSAL and other callers may pass their own timeout; a silent server (TLS: one that never
    completes the handshake) is still given up at the deadline."""
    with socket.socket() as silent:  # accepts connections (the kernel does) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        session.deadline_seconds = 0.5
        for scheme in ("http", "https"):
            url = f"{scheme}://127.0.0.1:{port}/"
            elapsed, error = timed(lambda u=url: session.get(u, timeout=timeout))  # type: ignore[misc]
            assert isinstance(error, DeadlineExceeded), repr(error)
            assert 0.45 <= elapsed < 0.5 + SLACK


@contextlib.contextmanager
def slow_relay(target: Site) -> Iterator[str]:
    """A TCP relay to `target` that passes the client's bytes on at once and the server's one
    every 0.3 s: a TLS handshake that trickles. Yields the relay's base URL."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    port = int(target.base_url.rsplit(":", 1)[1])

    def pump(source: socket.socket, sink: socket.socket, size: int, pause: float) -> None:
        with contextlib.suppress(OSError), source, sink:
            while not stop.wait(pause):
                data = source.recv(size)
                if not data:
                    break
                sink.sendall(data)

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = listener.accept()
                upstream = socket.create_connection(("127.0.0.1", port))
                for args in ((client, upstream, 65536, 0.0), (upstream, client, 1, TRICKLE_EVERY)):
                    threading.Thread(target=pump, args=args, daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"https://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        listener.close()


def test_a_trickling_tls_handshake_is_cut_at_the_deadline(tls_context: ssl.SSLContext,
                                                          session: OutboundSession) -> None:
    """The relay passes on the server's handshake one byte every 0.3 s: it would take minutes."""
    with serve(_Handler, tls_context) as tls_site, slow_relay(tls_site) as relay:
        elapsed, error = timed_with_deadline(
            session, lambda: session.get(relay + "/fast", timeout=LONG_TIMEOUT))
    assert isinstance(error, DeadlineExceeded), repr(error)
    assert DEADLINE - 0.05 <= elapsed < DEADLINE + SLACK


def test_no_thread_per_call(http_site: Site, session: OutboundSession) -> None:
    session.get(http_site.url("/fast"))
    threads = threading.active_count()
    for _ in range(50):
        session.get(http_site.url("/fast"))
    assert threading.active_count() <= threads


# ------------------------------------------------------------------------------ cookies
def test_a_cookie_one_call_receives_is_never_sent_with_another(site: Site,
                                                               session: OutboundSession) -> None:
    """The session serves every user: an API's or the provider's Set-Cookie for one user's
    call must not ride along with anyone's later calls."""
    assert session.get(site.url("/set-cookie")).headers["Set-Cookie"].startswith("sid=")
    session.get(site.url("/echo"))
    # Nor within one call's redirects.
    assert session.get(site.url("/set-cookie-and-redirect")).url == site.url("/echo")
    assert [cookie for _, cookie in site.seen] == ["", "", "", ""]
    assert len(session.cookies) == 0


# ------------------------------------------------------------------------------ proxies and CA
class _ProxyHandler(_Handler):
    """A forward proxy stand-in: records the absolute URL it is asked for and answers itself."""

    def do_GET(self) -> None:
        self.server.site.seen.append((self.path, ""))
        self._answer(200, f"proxied {self.path}".encode())


@pytest.fixture
def proxy() -> Iterator[Site]:
    with serve(_ProxyHandler) as running:
        yield running


def test_proxy_from_the_environment_given_at_build_time(http_site: Site, proxy: Site) -> None:
    port = http_site.base_url.rsplit(":", 1)[1]
    session = build_session(None, environ={"HTTP_PROXY": proxy.base_url,
                                           "NO_PROXY": "localhost, .example.test"})
    via_proxy = session.get(f"http://127.0.0.1:{port}/a")
    assert via_proxy.text == f"proxied http://127.0.0.1:{port}/a"
    direct = session.get(f"http://localhost:{port}/b")  # NO_PROXY
    assert direct.text == "direct /b"
    assert [path for path, _ in proxy.seen] == [f"http://127.0.0.1:{port}/a"]
    assert [path for path, _ in http_site.seen] == ["/b"]


def test_no_proxy_networks_and_lower_case_names(http_site: Site, proxy: Site) -> None:
    session = build_session(None, environ={"http_proxy": proxy.base_url,
                                           "HTTP_PROXY": "http://127.0.0.1:9/unused",
                                           "no_proxy": "10.0.0.0/8,127.0.0.0/8"})
    assert session.get(http_site.url("/c")).text == "direct /c"
    session = build_session(None, environ={"http_proxy": proxy.base_url,
                                           "HTTP_PROXY": "http://127.0.0.1:9/unused",
                                           "no_proxy": "10.0.0.0/8"})
    assert session.get(http_site.url("/d")).text == "proxied " + http_site.url("/d")


def test_the_environment_is_read_once(http_site: Site, proxy: Site,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Changing os.environ after start-up changes nothing (requests would re-read it on every
    call)."""
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    unproxied = build_session(None)
    monkeypatch.setenv("HTTP_PROXY", proxy.base_url)
    proxied = build_session(None)
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9/unused")
    assert unproxied.get(http_site.url("/e")).text == "direct /e"
    assert proxied.get(http_site.url("/f")).text == "proxied " + http_site.url("/f")


@pytest.mark.parametrize(
    ("no_proxy", "url", "exempt"),
    [
        ("*", "https://login.example.com/x", True),
        ("example.com", "https://login.example.com/x", True),
        ("example.com", "https://example.com/x", True),
        (".example.com", "https://example.com/x", True),
        ("*.example.com", "https://login.example.com/x", True),
        ("example.com", "https://notexample.com/x", False),
        ("EXAMPLE.com", "https://Login.Example.COM./x", True),
        ("example.com:8443", "https://login.example.com:8443/x", True),
        ("example.com:8443", "https://login.example.com/x", False),
        ("example.com:443", "https://login.example.com/x", True),
        ("10.1.0.0/16", "http://10.1.2.3/x", True),
        ("10.1.0.0/16", "http://10.2.2.3/x", False),
        ("10.1.2.3", "http://10.1.2.3:8080/x", True),
        ("10.1.2.3:8080", "http://10.1.2.3/x", False),
        ("::1", "http://[::1]:8080/x", True),
        ("fd00::/8", "http://[fd12::1]/x", True),
        ("", "https://login.example.com/x", False),
    ],
)
def test_no_proxy_rules(no_proxy: str, url: str, exempt: bool) -> None:
    environment = OutboundEnvironment({"HTTPS_PROXY": "http://proxy.test:3128",
                                       "HTTP_PROXY": "http://proxy.test:3128",
                                       "NO_PROXY": no_proxy})
    for _ in range(2):  # the second answer comes from the cache
        assert (not environment.proxies_for(url)) == exempt


def test_proxies_per_scheme_and_all_proxy() -> None:
    environment = OutboundEnvironment({"HTTPS_PROXY": "http://tls.proxy.test:3128",
                                       "ALL_PROXY": "http://any.proxy.test:3128"})
    assert dict(environment.proxies_for("https://a.test/")) == {
        "https": "http://tls.proxy.test:3128", "all": "http://any.proxy.test:3128"}
    cgi = OutboundEnvironment({"HTTP_PROXY": "http://from-a-header.test", "REQUEST_METHOD": "GET"})
    assert not cgi.proxies_for("http://a.test/")  # httpoxy: HTTP_PROXY is ignored under CGI


def test_ca_bundle_from_the_environment_given_at_build_time(
        tls_context: ssl.SSLContext, ca_bundle_path: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    with serve(_Handler, tls_context) as tls_site:
        trusting = build_session(None, environ={"REQUESTS_CA_BUNDLE": ca_bundle_path})
        not_trusting = build_session(None, environ={})
        # The extra CA (CA_BUNDLE) wins over the environment's bundle, which it is added to.
        extra = build_session(Path(ca_bundle_path),
                              environ={"REQUESTS_CA_BUNDLE": "/nonexistent/ca.pem"})
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/ca.pem")
        assert trusting.get(tls_site.url("/g")).status_code == 200
        assert trusting.get(tls_site.url("/g"), verify=True).status_code == 200
        assert extra.get(tls_site.url("/g"), verify=True).status_code == 200
        with pytest.raises(requests.exceptions.SSLError):
            not_trusting.get(tls_site.url("/g"))


class _ClosingHandler(_Handler):
    """Closes each connection after its answer: every call opens a new one."""

    def end_headers(self) -> None:
        self.close_connection = True
        self.send_header("Connection", "close")
        super().end_headers()


def _tls_server(tls_ca: trustme.CA, *names: str) -> ssl.SSLContext:
    """A server TLS context with a certificate from the tests' CA for `names` alone."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls_ca.issue_cert(*names).configure_cert(context)
    return context


def test_the_trust_store_is_read_once_for_all_new_connections(
        tls_context: ssl.SSLContext, ca_bundle_path: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Each new connection verified against a CA file read anew cost ~20 ms of CPU (certifi's
    # bundle); the session reads its trust store into one TLS context, on first use.
    reads: list[object] = []
    load = ssl.SSLContext.load_verify_locations

    def counted(context: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        reads.append(args or kwargs)
        load(context, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counted)
    with serve(_ClosingHandler, tls_context) as tls_site:
        extra = build_session(Path(ca_bundle_path), environ={})
        from_environment = build_session(None, environ={"REQUESTS_CA_BUNDLE": ca_bundle_path})
        for session in (extra, from_environment):
            for _ in range(4):
                assert session.get(tls_site.url("/g")).status_code == 200
    assert len(set(tls_site.ports)) == 8  # every call on a new connection
    assert len(reads) == 2  # once per session


@pytest.mark.parametrize("names", [("elsewhere.test",), ("localhost",)],
                         ids=["another-host-name", "another-host-name-same-ip"])
def test_a_certificate_for_another_host_name_is_refused(
        names: tuple[str, ...], tls_ca: trustme.CA, ca_bundle_path: str) -> None:
    # The CA is trusted; the certificate names another host than the URL's (127.0.0.1).
    with serve(_Handler, _tls_server(tls_ca, *names)) as tls_site:
        session = build_session(Path(ca_bundle_path), environ={})
        with pytest.raises(requests.exceptions.SSLError, match="match|mismatch"):
            session.get(tls_site.url("/g"))
        assert not tls_site.seen


def test_a_certificate_from_an_untrusted_ca_is_refused(ca_bundle_path: str) -> None:
    with serve(_Handler, _tls_server(trustme.CA(), "127.0.0.1")) as tls_site:
        for session in (build_session(Path(ca_bundle_path), environ={}),
                        build_session(None, environ={"REQUESTS_CA_BUNDLE": ca_bundle_path}),
                        build_session(None, environ={})):
            with pytest.raises(requests.exceptions.SSLError, match="verify failed"):
                session.get(tls_site.url("/g"))
        assert not tls_site.seen


@pytest.mark.parametrize(("header", "expected"), [
    ('Bearer realm="", error="insufficient_claims", claims="eyJhIjoxfQ=="', '{"a":1}'),
    # The scheme and the error compared without case (RFC 9110; Microsoft.Identity.Web).
    ('bearer error="INSUFFICIENT_CLAIMS", claims="eyJhIjoxfQ=="', '{"a":1}'),
    # Several challenges in one header: only the Bearer one counts, wherever it is.
    ('PoP nonce="x,y", Bearer error="insufficient_claims", claims="eyJhIjoxfQ=="', '{"a":1}'),
    ('Bearer error="insufficient_claims", claims="eyJhIjoxfQ==", PoP nonce="z"', '{"a":1}'),
    ('PoP error="insufficient_claims", claims="eyJhIjoxfQ=="', None),
    # Raw JSON with escaped quotes; a token value; no claims; another error.
    ('Bearer error="insufficient_claims", claims="{\\"b\\":2}"', '{"b":2}'),
    ('Bearer error=insufficient_claims, claims=eyJhIjoxfQ==', '{"a":1}'),
    ('Bearer error="insufficient_claims"', None),
    ('Bearer error="invalid_token", claims="eyJhIjoxfQ=="', None),
    ('', None),
])
def test_a_claims_challenge_is_read_from_its_bearer_challenge(header: str,
                                                              expected: str | None) -> None:
    answer = ApiResponse(status=401, headers={"www-authenticate": header})
    assert claims_challenge(answer) == expected
    assert claims_challenge(ApiResponse(status=403, headers={"www-authenticate": header})) is None
