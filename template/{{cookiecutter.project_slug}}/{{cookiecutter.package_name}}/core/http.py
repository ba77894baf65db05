# Managed by the msal-webapp template: regenerate rather than edit (your code goes outside core/).
"""The process-wide HTTP session used to talk to the identity provider and to downstream APIs.

One session is shared by every MSAL client the app builds (one per request, each over one
account's cache) and by the downstream API calls, so connections are pooled and TLS handshakes
are not repeated. Because every user's requests share it, it:

- bounds each call by an overall deadline covering connect, send, headers and body. A read
  timeout alone restarts with every byte: a provider answering one byte every few seconds would
  hold a worker thread for minutes. A call past its deadline raises `DeadlineExceeded`, a
  `requests.exceptions.Timeout`, so callers handle it like any unreachable server;
- keeps no cookies: a Set-Cookie that one user's call receives is never sent with a later call;
- reads the environment (proxies, CA bundle) once, when it is built. `requests` scans os.environ
  and ~/.netrc on every call, a cost that grows with the environment (Kubernetes adds variables
  for every service);
- reads its trust store once: one TLS context per CA bundle verifies every new connection.
  `requests` would read the bundle (certifi's is about 220 KB) into a new TLS context for each
  new connection, about 20 ms of CPU each time.

How the deadline is enforced: each call registers its deadline with one watchdog thread per
process. The connections it uses report their socket to the call; when the deadline passes, the
watchdog shuts that socket down, which wakes the blocked read or write at once, and the call
raises `DeadlineExceeded`. No thread or timer is created per call.
"""

from __future__ import annotations

import atexit
import heapq
import http.cookiejar
import ipaddress
import itertools
import os
import socket
import ssl
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import certifi
import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.cookies import RequestsCookieJar
from requests.utils import DEFAULT_CA_BUNDLE_PATH, select_proxy
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util import connection as urllib3_connection
from urllib3.util.ssl_ import create_urllib3_context

DEFAULT_DEADLINE_SECONDS = 10.0  # a whole call: connect, send, headers and body
CONNECT_TIMEOUT_SECONDS = 5.0
# (connect, read) for requests; the call's deadline cuts both shorter when less time is left.
DEFAULT_TIMEOUT = (CONNECT_TIMEOUT_SECONDS, 30.0)
# The watchdog wakes at most this often: a deadline may be enforced up to this much late.
_WATCHDOG_RESOLUTION_SECONDS = 0.05
_DEFAULT_PORTS = {"http": 80, "https": 443}
_NO_PROXIES: Mapping[str, str] = {}


class DeadlineExceeded(requests.exceptions.Timeout):
    """An outbound call did not complete (connect, send, headers and body) within its deadline."""


# ------------------------------------------------------------------------------ deadlines
class _Call:
    """One outbound call (with its redirects) and the socket it is using right now."""

    __slots__ = ("deadline", "expired", "done", "sock")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.expired = False
        self.done = False
        self.sock: socket.socket | None = None

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


def _cut(sock: socket.socket) -> None:
    """Wake whatever thread is blocked on `sock`: its read sees end-of-file, its write fails."""
    try:
        # The plain socket's method, also for TLS sockets: SSLSocket.shutdown would drop its TLS
        # state under the thread that is still reading.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass  # closed already


class _Watchdog:
    """One daemon thread that cuts the sockets of calls past their deadline.

    Calls that finish in time stay in the heap until the thread next wakes (removing them at
    once would cost more than skipping them); the heap holds at most the calls of the last
    deadline period.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._heap: list[tuple[float, int, _Call]] = []
        self._order = itertools.count()  # ties never compare _Call objects
        self._thread: threading.Thread | None = None

    def register(self, call: _Call) -> None:
        with self._lock:
            heapq.heappush(self._heap, (call.deadline, next(self._order), call))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="http-deadlines",
                                                daemon=True)
                self._thread.start()
            elif self._heap[0][2] is call:  # earlier than what the thread waits for
                self._wake.notify()

    def attach(self, call: _Call, sock: socket.socket) -> None:
        """`call` now waits on `sock` (cut at once if its deadline has passed already)."""
        with self._lock:
            call.sock = sock
            expired = call.expired
        if expired:
            _cut(sock)

    def finish(self, call: _Call) -> bool:
        """`call` has ended: whether its deadline passed first (its socket may have been cut)."""
        with self._lock:
            call.done = True
            call.sock = None
            return call.expired

    def _run(self) -> None:
        with self._lock:
            while True:
                now = time.monotonic()
                # Past their deadline, or finished (whatever their deadline): then the thread
                # sleeps until the earliest deadline of a call still running, instead of
                # waking for each finished call's deadline (20 times a second under load).
                while self._heap and (self._heap[0][0] <= now or self._heap[0][2].done):
                    call = heapq.heappop(self._heap)[2]
                    if not call.done:
                        call.expired = True
                        if call.sock is not None:
                            _cut(call.sock)
                self._wake.wait(max(self._heap[0][0] - now, _WATCHDOG_RESOLUTION_SECONDS)
                                if self._heap else None)


_watchdog = _Watchdog()
_current = threading.local()  # .call: the _Call this thread is making, if any


def _reset_after_fork() -> None:
    # A forked child (a gunicorn worker) has no watchdog thread, and the lock may have been held
    # by a thread that does not exist in the child: start afresh.
    global _watchdog, _current
    _watchdog, _current = _Watchdog(), threading.local()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def _active_call() -> _Call | None:
    call: _Call | None = getattr(_current, "call", None)
    return call


def _bounded(timeout: Any, remaining: float) -> float:
    """`timeout` (seconds, None or urllib3's default sentinel) cut down to `remaining`."""
    remaining = max(remaining, 0.001)
    return min(timeout, remaining) if isinstance(timeout, int | float) else remaining


def _connect(conn: HTTPConnection, create: Callable[[], socket.socket]) -> socket.socket:
    """Open `conn`'s socket within the current call's deadline and report it to the call.

    urllib3 gives EACH address of a host the full connect timeout, so a blackholed host with
    eight addresses takes eight times as long: here the addresses are tried one by one within
    what is left of the deadline. A TLS handshake that follows is bounded by the same (clamped)
    connect timeout, which Python's ssl module applies to the handshake as a whole; the TLS
    socket is reported to the call once it exists (see `_HTTPSConnection.connect`).
    """
    call = _active_call()
    if call is None:
        return create()
    try:
        addresses = [info[4][0] for info in socket.getaddrinfo(
            conn.host.strip("[]"), conn.port, urllib3_connection.allowed_gai_family(),
            socket.SOCK_STREAM)]
    except (OSError, UnicodeError):
        sock = create()  # urllib3 resolves again and reports the failure its way
    else:
        sock = _connect_to_any(conn, call, addresses)
    _watchdog.attach(call, sock)  # e.g. for a proxy's answer to CONNECT, before TLS
    return sock


def _connect_to_any(conn: HTTPConnection, call: _Call, addresses: list[Any]) -> socket.socket:
    connect_timeout = conn.timeout
    error: Exception | None = None
    for address in addresses:
        if call.remaining() <= 0:
            break
        limit = _bounded(connect_timeout, call.remaining())
        try:
            sock = urllib3_connection.create_connection(
                (str(address), conn.port), limit, source_address=conn.source_address,
                socket_options=conn.socket_options)
        except TimeoutError:
            error = ConnectTimeoutError(
                conn, f"Connection to {conn.host} timed out. (connect timeout={limit})")
        except OSError as exc:
            error = NewConnectionError(conn, f"Failed to establish a new connection: {exc}")
        else:
            sys.audit("http.client.connect", conn, conn.host, conn.port)
            return sock
    raise error or ConnectTimeoutError(conn, f"Connection to {conn.host}: no time left.")


class _Watched:
    """What both connection classes add: a connect bound by the call's deadline, and the
    connection's socket watched for the call using it."""

    sock: socket.socket | None

    def _new_conn(self) -> socket.socket:
        return _connect(cast(HTTPConnection, self), super()._new_conn)  # type: ignore[misc]

    def _watch(self) -> None:
        call = _active_call()
        if call is not None and self.sock is not None:
            _watchdog.attach(call, self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        # A pooled connection is reused by later calls: each one watches its socket.
        self._watch()
        super().request(*args, **kwargs)  # type: ignore[misc]


class _HTTPConnection(_Watched, HTTPConnection):
    pass


class _HTTPSConnection(_Watched, HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        # The TLS socket: it took over the plain socket's file descriptor.
        self._watch()


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOL_CLASSES = {"http": _HTTPPool, "https": _HTTPSPool}


def _clamp(timeout: Any, remaining: float) -> Any:
    """A requests timeout (None, seconds or a (connect, read) pair) cut down to `remaining`."""
    if timeout is None:
        return (_bounded(CONNECT_TIMEOUT_SECONDS, remaining), _bounded(None, remaining))
    if isinstance(timeout, tuple):
        connect, read = timeout
        return (_bounded(connect, remaining), _bounded(read, remaining))
    if isinstance(timeout, int | float):
        return (_bounded(timeout, remaining), _bounded(timeout, remaining))
    return timeout  # a urllib3 Timeout object: the watchdog still applies


# ------------------------------------------------------------------------------ environment
class _NoProxyRule:
    __slots__ = ("network", "domain", "port")

    def __init__(self, entry: str) -> None:
        self.network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
        self.domain = ""
        self.port = 0
        try:
            self.network = ipaddress.ip_network(entry.strip("[]"), strict=False)
            return
        except ValueError:
            pass
        host, sep, port = entry.rpartition(":")
        if sep and port.isdigit() and host:
            entry, self.port = host, int(port)
            try:  # "[::1]:8080" or "10.0.0.1:8080"
                self.network = ipaddress.ip_network(entry.strip("[]"), strict=False)
                return
            except ValueError:
                pass
        self.domain = entry.lstrip("*").lstrip(".").rstrip(".")

    def matches(self, host: str, ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None,
                port: int) -> bool:
        if self.port and self.port != port:
            return False
        if self.network is not None:
            return ip is not None and ip in self.network
        return bool(self.domain) and (host == self.domain or host.endswith("." + self.domain))


class OutboundEnvironment:
    """Proxy and CA settings, read once from an environment as `requests` would read them.

    Proxies: `<scheme>_proxy` variables in either case (lower case wins), `ALL_PROXY`, and
    `NO_PROXY` entries: `*`, a host or domain (which also covers its subdomains; a leading `.`
    or `*.` is optional), an IP address or CIDR network, each optionally with `:port`.
    CA: REQUESTS_CA_BUNDLE, else CURL_CA_BUNDLE.
    """

    def __init__(self, environ: Mapping[str, str]) -> None:
        proxies = _proxies_from(environ)
        no_proxy = proxies.pop("no", "")
        entries = [e for e in no_proxy.replace(" ", "").lower().split(",") if e]
        self.bypass_all = "*" in entries
        self.no_proxy = tuple(_NoProxyRule(e) for e in entries if e != "*")
        self.proxies: Mapping[str, str] = proxies
        self.ca_bundle = environ.get("REQUESTS_CA_BUNDLE") or environ.get("CURL_CA_BUNDLE") or None
        # (scheme, host, port) -> whether NO_PROXY exempts it. Bounded: cleared when full.
        self._bypass: dict[tuple[str, str, int], bool] = {}

    def proxies_for(self, url: str) -> Mapping[str, str]:
        """The proxies for `url` (for requests' `proxies=`): none if NO_PROXY exempts it."""
        if not self.proxies or self.bypass_all:
            return _NO_PROXIES
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").rstrip(".")
        try:
            port = parts.port or _DEFAULT_PORTS.get(scheme, 0)
        except ValueError:
            port = 0
        key = (scheme, host, port)
        bypass = self._bypass.get(key)
        if bypass is None:
            bypass = self._exempt(host, port)
            if len(self._bypass) >= 1024:
                self._bypass.clear()
            self._bypass[key] = bypass
        return _NO_PROXIES if bypass else self.proxies

    def _exempt(self, host: str, port: int) -> bool:
        if not host:
            return True  # as requests: no host, no proxy
        try:
            ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
        except ValueError:
            ip = None
        return any(rule.matches(host, ip, port) for rule in self.no_proxy)


def _proxies_from(environ: Mapping[str, str]) -> dict[str, str]:
    """What urllib.request.getproxies_environment() reads, from `environ` instead of os.environ:
    `<scheme>_proxy` in any case, then lower-case names again so that they win."""
    proxies: dict[str, str] = {}
    for name, value in environ.items():
        if value and name.lower().endswith("_proxy"):
            proxies[name[:-6].lower()] = value
    if "REQUEST_METHOD" in environ:
        # Under CGI, HTTP_PROXY can come from a client's "Proxy:" header (httpoxy).
        proxies.pop("http", None)
    for name, value in environ.items():
        if name.endswith("_proxy"):
            if value:
                proxies[name[:-6].lower()] = value
            else:
                proxies.pop(name[:-6].lower(), None)
    return proxies


# ------------------------------------------------------------------------------ session
class _RefuseCookies(http.cookiejar.DefaultCookiePolicy):
    """Stores and sends nothing: the session is shared by every user's requests."""

    def set_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False

    def return_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False


class _NoCookies(RequestsCookieJar):
    """A jar that never holds a cookie, so it has nothing to add to a request and nothing to
    take from a response: both are skipped (the cookie jar's own work, its lock and expiry
    sweep, was a measurable part of each call). Its policy refuses too, for any other path."""

    def add_cookie_header(self, request: Any) -> None:
        return None

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None

    def set_cookie(self, cookie: http.cookiejar.Cookie, *args: Any, **kwargs: Any) -> None:
        return None


# Holds nothing, ever: one for every session and call.
_NO_COOKIES = _NoCookies(policy=_RefuseCookies())


def no_cookies() -> RequestsCookieJar:
    """The jar that never holds a cookie (also for an async client: it is a CookieJar)."""
    return _NO_COOKIES


class _TrustStore:
    """What `_Adapter` passes requests as `verify=` for a call verified by one of its TLS
    contexts: the pools get the context, and no CA file to read for each connection."""

    __slots__ = ("context",)

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context


class _Adapter(HTTPAdapter):
    """Pools whose connections report their sockets to the call's deadline, proxies chosen per
    URL from the environment read at start-up, and one TLS context per CA bundle."""

    def __init__(self, environment: OutboundEnvironment) -> None:
        self.environment = environment
        # verify= (True: requests' default bundle; or a CA file's path) -> its TLS context.
        self._tls: dict[bool | str, ssl.SSLContext] = {}
        # Pool size above the default 10 so concurrent requests do not queue for a connection.
        super().__init__(pool_connections=8, pool_maxsize=32)

    def tls_context(self, verify: Any) -> ssl.SSLContext | None:
        """The context that verifies servers against `verify` (requests' meaning: True for its
        default bundle, or a CA file), made on first use; None for anything else (no
        verification, a directory, a missing file), which requests handles its own way."""
        if verify is True:
            cafile = DEFAULT_CA_BUNDLE_PATH
        elif isinstance(verify, str) and os.path.isfile(verify):
            cafile = verify
        else:
            return None
        context = self._tls.get(verify)
        if context is None:
            # What urllib3 would make for each connection (TLS 1.2 or later, host names
            # checked, certificates required), with the bundle read into it once.
            context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
            context.load_verify_locations(cafile=cafile)
            context = self._tls.setdefault(verify, context)  # a concurrent first use: one wins
        return context

    def _trust_store(self, request: requests.PreparedRequest, verify: Any, cert: Any,
                     proxies: Mapping[str, str]) -> _TrustStore | None:
        """The shared context for this call, where it verifies exactly as requests would:
        https, no client certificate (urllib3 would load it into the shared context), and no
        https:// proxy (urllib3 verifies such a proxy with the CA file it gets per pool)."""
        url = request.url or ""
        if cert or not url.lower().startswith("https:"):
            return None
        proxy = select_proxy(url, dict(proxies))
        if proxy and not proxy.lower().startswith("http:"):
            return None
        context = self.tls_context(verify)
        return _TrustStore(context) if context is not None else None

    def build_connection_pool_key_attributes(self, request: requests.PreparedRequest,
                                             verify: Any, cert: Any = None
                                             ) -> tuple[Any, Any]:
        if isinstance(verify, _TrustStore):
            # Pools are keyed by their context (one per CA bundle), not by a CA file.
            host_params, pool_kwargs = super().build_connection_pool_key_attributes(
                request, True, cert)
            pool_kwargs.pop("ca_certs", None)
            pool_kwargs["ssl_context"] = verify.context
            return host_params, pool_kwargs
        return super().build_connection_pool_key_attributes(request, verify, cert)

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        if isinstance(verify, _TrustStore):
            # requests would name a CA file here, and urllib3 would read it into the shared
            # context for every new connection: the context holds the trust store already.
            conn.cert_reqs = "CERT_REQUIRED"
            conn.ca_certs = None
            conn.ca_cert_dir = None
            return
        cast(Any, super()).cert_verify(conn, url, verify, cert)  # untyped in requests' stubs

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOL_CLASSES

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):  # SOCKS managers bring their own connections
            manager.pool_classes_by_scheme = _POOL_CLASSES
        return manager

    def send(self, request: requests.PreparedRequest, stream: bool = False,
             timeout: Any = None, verify: Any = True, cert: Any = None,
             proxies: Mapping[str, str] | None = None) -> requests.Response:
        call = _active_call()
        if call is not None:
            remaining = call.remaining()
            if remaining <= 0:  # e.g. the next hop of a redirect
                raise DeadlineExceeded(_late(request), request=request)
            timeout = _clamp(timeout, remaining)
        # Chosen per URL here, not per session call, so that each redirect hop gets its own.
        chosen = self.environment.proxies_for(request.url or "")
        if proxies:  # the caller's own proxies win
            chosen = {**chosen, **proxies}
        verify = self._trust_store(request, verify, cert, chosen) or verify
        return super().send(request, stream=stream, timeout=timeout, verify=verify, cert=cert,
                            proxies=dict(chosen))


def _late(request: requests.PreparedRequest) -> str:
    url = urlsplit(request.url or "")
    # No query string: it may carry tokens or codes, and this message is logged.
    return f"{request.method} {url.scheme}://{url.netloc}{url.path}: no complete answer in time"


class OutboundSession(requests.Session):
    """The shared session: deadline per call, no cookies, environment read once.

    `deadline_seconds` may be changed at any time; it applies to calls that start afterwards.
    With `stream=True` only the headers are within the deadline (the body is read later).
    """

    def __init__(self, environment: OutboundEnvironment, deadline_seconds: float) -> None:
        super().__init__()
        self.trust_env = False  # see OutboundEnvironment: read once, not on every call
        self.environment = environment
        self.deadline_seconds = deadline_seconds
        # The extra CA (CA_BUNDLE) folded into the default trust store; it wins over verify=.
        self.ca_bundle: str | None = None
        self.cookies = no_cookies()
        adapter = _Adapter(environment)
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any,
                                   cert: Any) -> Any:
        merged = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if self.ca_bundle:
            merged["verify"] = self.ca_bundle
        elif merged["verify"] is True and self.environment.ca_bundle:
            merged["verify"] = self.environment.ca_bundle  # what requests does with trust_env
        return merged

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        prepared = super().prepare_request(request)
        # The jar a call's redirects would collect cookies in (and send them on) refuses too.
        prepared._cookies = no_cookies()  # type: ignore[attr-defined]
        return prepared

    def request(self, method: str | bytes, url: str | bytes, *args: Any,
                **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", DEFAULT_TIMEOUT)
        return super().request(method, url, *args, **kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if _active_call() is not None:  # a redirect hop, within the call that followed it
            return super().send(request, **kwargs)
        call = _Call(time.monotonic() + self.deadline_seconds)
        _watchdog.register(call)
        _current.call = call
        try:
            # Without stream=True this reads the body too: the whole answer is within the call.
            response = super().send(request, **kwargs)
        except DeadlineExceeded:
            raise
        except (OSError, urllib3.exceptions.HTTPError) as exc:  # RequestException is an OSError
            if call.expired or call.remaining() <= 0:
                raise DeadlineExceeded(f"{_late(request)} ({self.deadline_seconds:g} s)",
                                       request=request) from exc
            raise
        finally:
            _current.call = None
            expired = _watchdog.finish(call)
        if expired:
            # The cut reads as end-of-file, which HTTP accepts in places (after any complete
            # header line; a body without a length): what arrived may be a truncated answer.
            response.close()
            raise DeadlineExceeded(f"{_late(request)} ({self.deadline_seconds:g} s)",
                                   request=request)
        return response


def combined_ca_bundle(extra_ca: Path, environ: Mapping[str, str] | None = None) -> str:
    """Write the default trust store plus `extra_ca` to one PEM file and return its path.

    The default trust store is REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE from `environ` (os.environ by
    default) if it names a file, else certifi's. Trust is added, never removed: TLS verification
    stays on for every host.
    """
    env = os.environ if environ is None else environ
    base = env.get("REQUESTS_CA_BUNDLE") or env.get("CURL_CA_BUNDLE")
    base_path = Path(base) if base and Path(base).is_file() else Path(certifi.where())
    pem = base_path.read_text(encoding="ascii") + "\n" + extra_ca.read_text(encoding="ascii")
    fd, path = tempfile.mkstemp(prefix="ca-bundle-", suffix=".pem")
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(pem)
    atexit.register(lambda: Path(path).unlink(missing_ok=True))
    return path


def build_session(extra_ca: Path | None, *, deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
                  environ: Mapping[str, str] | None = None) -> OutboundSession:
    """The shared session. `environ` (default: os.environ) is read now and never again."""
    env = os.environ if environ is None else environ
    session = OutboundSession(OutboundEnvironment(env), deadline_seconds)
    if extra_ca is not None:
        session.ca_bundle = combined_ca_bundle(extra_ca, env)
    session.verify = session.ca_bundle or session.environment.ca_bundle or True
    return session
