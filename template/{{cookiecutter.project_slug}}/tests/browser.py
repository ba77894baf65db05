"""A scripted "browser" for tests: browser cookie rules, redirects, HTML form submission.

``requests`` keeps cookies the way ``http.cookiejar`` does, which is not how browsers do: it
ignores ``SameSite`` and never sends a ``Secure`` cookie to ``http://localhost``. A test that
drives the app with it would pass where a real browser fails (a ``Lax`` cookie does not come
along with a cross-site POST). So this browser keeps its own cookie store, sends an explicit
``Cookie`` header, and follows redirects itself so that the rules apply to every hop; its
requests go out through ``http.client`` (``_Transport``), with no cookie jar of their own.
What it models (RFC 6265bis, as Chromium, Firefox and Safari do it):

* where a request comes from: the user typing a URL (``get(url)``), a form on a page
  (``submit_form``, ``post(url, initiator=page_url)``), a redirect (the chain keeps its initiator,
  and a chain that crossed sites counts as cross-site), or a subresource (``fetch``);
* a *site* is the scheme plus the registrable domain (for ``localhost`` and IP addresses the host
  itself: ``localhost`` and ``127.0.0.1`` are different sites; ``http`` and ``https`` of one host
  too; ports do not count);
* ``SameSite``: ``Strict`` cookies are never sent cross-site; ``Lax`` ones only with a top-level
  GET navigation; a cookie without the attribute is ``Lax`` in Chromium and ``None`` in Firefox
  and Safari; ``None`` needs ``Secure``. A cross-site subresource response cannot set ``Lax``
  or ``Strict`` cookies;
* ``Secure`` cookies are set and sent over https, and over ``http://localhost`` (and loopback
  addresses) in Chromium and Firefox, not in Safari;
* the ``__Secure-`` and ``__Host-`` prefixes; host-only and ``Domain`` cookies; ``Path``;
  ``Max-Age`` and ``Expires``; a deletion only removes the cookie with the same name, domain and
  path;
* the page's ``Content-Security-Policy: form-action``, which browsers enforce on a form's target
  and on every redirect that follows it (a sign-out form redirected to the provider): a blocked
  navigation raises ``NavigationBlocked``.

It never runs JavaScript: the stand-in's pages work without it (the ``form_post`` page has a
submit button). Each ``Browser`` has its own cookies, so tests can sign in several users side by
side. Responses are ``requests.Response`` objects whose ``history`` holds the redirect hops, each
with its raw ``Set-Cookie`` headers (``resp.raw.headers.getlist("Set-Cookie")``).
"""

from __future__ import annotations

import dataclasses
import functools
import http.client
import http.cookiejar
import ipaddress
import itertools
import json
import ssl
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from html.parser import HTMLParser
from http.cookiejar import http2time  # type: ignore[attr-defined]  # not in typeshed
from typing import Any, Self
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests
import urllib3

PROFILES = ("chromium", "firefox", "safari")
MAX_REDIRECTS = 20  # Chromium and Firefox give up after 20


# ------------------------------------------------------------------------------ sites
def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def registrable_domain(host: str) -> str:
    """The registrable domain ("eTLD+1") of ``host``; for IP addresses and single-label hosts
    such as ``localhost``, the host itself.

    Without a public-suffix list this takes the last two labels, which is right for the hosts
    tests use (``localhost``, ``127.0.0.1``, ``app.test``) but not for ``example.co.uk``.
    """
    host = host.lower().rstrip(".")
    if _is_ip(host) or "." not in host:
        return host
    return ".".join(host.split(".")[-2:])


def site(url: str) -> tuple[str, str]:
    """A URL's site for SameSite purposes: (scheme, registrable domain). Ports do not count;
    the scheme does ("schemeful same-site", as in Chromium and Firefox)."""
    return urlsplit(url).scheme.lower(), registrable_domain(_host(url))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


def _no_query(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    return _is_ip(host) and ipaddress.ip_address(host).is_loopback


def _domain_match(host: str, domain: str) -> bool:
    """RFC 6265 domain-match: ``host`` is ``domain`` or a subdomain of it (not for IPs)."""
    return host == domain or (not _is_ip(host) and host.endswith("." + domain))


def _default_path(url: str) -> str:
    path = urlsplit(url).path
    if not path.startswith("/") or path.count("/") == 1:
        return "/"
    return path[: path.rindex("/")]


def _path_match(request_path: str, cookie_path: str) -> bool:
    if request_path == cookie_path:
        return True
    if request_path.startswith(cookie_path):
        return cookie_path.endswith("/") or request_path[len(cookie_path)] == "/"
    return False


# ------------------------------------------------------------------------------ cookies
@dataclasses.dataclass
class Cookie:
    """One stored cookie. ``domain`` has no leading dot; ``host_only`` cookies go to exactly
    that host, the others to its subdomains too. ``samesite`` is "strict", "lax", "none" or
    "unspecified" (no valid attribute; the profile decides what that means)."""

    name: str
    value: str
    domain: str
    host_only: bool = True
    path: str = "/"
    secure: bool = False
    httponly: bool = False
    samesite: str = "unspecified"
    expires: float | None = None  # a Unix time; None: a session cookie
    created: float = dataclasses.field(default_factory=time.time)
    # Equal creation times (a fast test) keep the order cookies were set in.
    order: int = dataclasses.field(default_factory=itertools.count().__next__)

    def expired(self, now: float | None = None) -> bool:
        return self.expires is not None and self.expires <= (time.time() if now is None else now)

    @property
    def key(self) -> tuple[str, str, bool, str]:
        # What makes two cookies "the same" (a new one replaces or deletes the old one).
        return self.name, self.domain, self.host_only, self.path


class NavigationBlocked(AssertionError):
    """The browser refused a navigation (as a real one would, showing an error instead)."""


_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


@dataclasses.dataclass(frozen=True)
class FormAction:
    """A page's CSP ``form-action`` sources, one list per policy that has the directive (a URL
    must match each). CSP Level 3 matching; paths are not checked."""

    page: str
    policies: tuple[tuple[str, ...], ...]

    @classmethod
    def of(cls, response: requests.Response) -> FormAction | None:
        """The policy of an HTML page, or None when it sets no ``form-action``."""
        found = []
        for policy in response.raw.headers.getlist("Content-Security-Policy"):
            for directive in policy.split(";"):
                name, *values = directive.split() or [""]
                if name.lower() == "form-action":
                    found.append(tuple(values))
                    break  # only a policy's first form-action directive counts
        return cls(response.url, tuple(found)) if found else None

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(source for policy in self.policies for source in policy)

    def allows(self, url: str) -> bool:
        return all(any(self._matches(source, url) for source in policy)
                   for policy in self.policies)

    def _matches(self, source: str, url: str) -> bool:
        target, page = urlsplit(url), urlsplit(self.page)
        scheme = target.scheme.lower()
        lowered = source.lower()
        if lowered == "'none'":
            return False
        if lowered == "'self'":
            # Same origin, or its https upgrade.
            return (_origin(url) == _origin(self.page)
                    or (page.scheme == "http" and scheme == "https"
                        and target.hostname == page.hostname))
        if lowered.endswith(":") and "/" not in lowered:  # a scheme source such as "https:"
            wanted = lowered[:-1]
            return scheme == wanted or (wanted == "http" and scheme == "https")
        if "://" in lowered:
            wanted, rest = lowered.split("://", 1)
            if not (scheme == wanted or (wanted == "http" and scheme == "https")):
                return False
        else:  # no scheme: the page's own (or its https upgrade)
            wanted, rest = page.scheme, lowered
            if not (scheme == wanted or (wanted == "http" and scheme == "https")):
                return False
        hostport = rest.split("/", 1)[0]
        host, _, port = hostport.partition(":")
        target_host = (target.hostname or "").lower()
        if host.startswith("*."):
            if not target_host.endswith(host[1:]):
                return False
        elif host != "*" and host != target_host:
            return False
        if port == "*":
            return True
        target_port = target.port or _DEFAULT_PORTS.get(scheme)
        if not port:
            # No port: the scheme's default (http's default also allows https's).
            return target_port == _DEFAULT_PORTS.get(wanted) or (
                wanted == "http" and scheme == "https" and target_port == 443)
        return port.isdigit() and int(port) == target_port


@dataclasses.dataclass(frozen=True)
class RequestContext:
    """What the cookie rules look at for one request (one hop of a redirect chain)."""

    url: str
    method: str = "GET"
    # The page that started the request; None when the user typed the URL.
    initiator: str | None = None
    # URLs requested earlier in the same redirect chain, in order.
    chain: tuple[str, ...] = ()
    navigation: bool = True  # a top-level navigation, not a subresource (fetch, image, ...)
    # For a form submission: the form-action policy of the page the form was on.
    form_action: FormAction | None = None

    @property
    def same_site(self) -> bool:
        """Whether the request is same-site: the initiator and every earlier hop of the redirect
        chain are on the site of ``url`` (a chain that crossed sites counts as cross-site)."""
        here = site(self.url)
        others = [*([self.initiator] if self.initiator is not None else []), *self.chain]
        return all(site(other) == here for other in others)

    @property
    def safe_method(self) -> bool:
        return self.method.upper() in ("GET", "HEAD", "OPTIONS", "TRACE")


class CookieStore:
    """The browser's cookies, kept by browser rules (not ``http.cookiejar``'s).

    ``get(name)`` returns a value or None, ``set(...)`` plants a cookie as if a site had set
    it, iterating yields the live ``Cookie`` objects. ``rejected`` lists each ``Set-Cookie``
    header the browser ignored and why, which helps when a test fails.
    """

    def __init__(self, profile: str) -> None:
        self.profile = profile
        self._cookies: dict[tuple[str, str, bool, str], Cookie] = {}
        self.rejected: list[tuple[str, str]] = []

    # ---- public, for tests
    def __iter__(self) -> Iterator[Cookie]:
        self._purge()
        return iter(list(self._cookies.values()))

    def __len__(self) -> int:
        self._purge()
        return len(self._cookies)

    def __contains__(self, name: object) -> bool:
        return any(c.name == name for c in self)

    def find(self, name: str, *, domain: str | None = None, path: str | None = None
             ) -> list[Cookie]:
        """The live cookies called ``name`` (of ``domain`` / ``path`` if given)."""
        return [c for c in self if c.name == name
                and (domain is None or c.domain == domain.lower().lstrip("."))
                and (path is None or c.path == path)]

    def get(self, name: str, default: str | None = None, *, domain: str | None = None,
            path: str | None = None) -> str | None:
        """The value of the cookie called ``name``, else ``default``. Several cookies of that
        name (other domains or paths) with different values are an error: pass ``domain``."""
        values = {c.value for c in self.find(name, domain=domain, path=path)}
        if len(values) > 1:
            raise LookupError(f"several {name!r} cookies: pass domain= or path=")
        return values.pop() if values else default

    def set(self, name: str, value: str, *, domain: str, path: str = "/", secure: bool = False,
            httponly: bool = False, samesite: str = "Lax", max_age: int | None = None) -> None:
        """Plant a cookie without any rule checks, as if the site had set it: host-only for
        ``domain``, or for ``domain`` and its subdomains if it starts with a dot."""
        host_only = not domain.startswith(".")
        cookie = Cookie(name, value, domain.lower().lstrip("."), host_only, path, secure,
                        httponly, samesite.lower(),
                        None if max_age is None else time.time() + max_age)
        self._cookies[cookie.key] = cookie

    def clear(self) -> None:
        self._cookies.clear()

    # ---- the rules
    def _purge(self) -> None:
        now = time.time()
        for key in [k for k, c in self._cookies.items() if c.expired(now)]:
            del self._cookies[key]

    def secure_origin(self, url: str) -> bool:
        """Whether ``Secure`` cookies may be set by and sent to ``url``: https, and loopback
        over http in Chromium and Firefox (Safari does not allow it)."""
        scheme = urlsplit(url).scheme.lower()
        if scheme in ("https", "wss"):
            return True
        return self.profile != "safari" and _is_loopback(_host(url))

    def _effective_samesite(self, cookie: Cookie) -> str:
        if cookie.samesite != "unspecified":
            return cookie.samesite
        # Chromium treats a cookie without SameSite as Lax; Firefox and Safari as None.
        return "lax" if self.profile == "chromium" else "none"

    def header_for(self, ctx: RequestContext) -> str | None:
        """The ``Cookie`` header this browser sends with the request ``ctx``, if any."""
        host, path = _host(ctx.url), urlsplit(ctx.url).path or "/"
        secure = self.secure_origin(ctx.url)
        same_site = ctx.same_site
        chosen = []
        for cookie in self:
            if not (host == cookie.domain if cookie.host_only
                    else _domain_match(host, cookie.domain)):
                continue
            if not _path_match(path, cookie.path) or (cookie.secure and not secure):
                continue
            if not same_site:
                samesite = self._effective_samesite(cookie)
                if samesite == "strict":
                    continue
                if samesite == "lax" and not (ctx.navigation and ctx.safe_method):
                    continue
            chosen.append(cookie)
        # Longer paths first, then older cookies first (RFC 6265 section 5.4).
        chosen.sort(key=lambda c: (-len(c.path), c.created, c.order))
        return "; ".join(f"{c.name}={c.value}" for c in chosen) or None

    def store(self, header: str, ctx: RequestContext) -> Cookie | None:
        """Apply one ``Set-Cookie`` header received in answer to ``ctx``. Returns the stored
        cookie, or None when it was ignored (the reason goes to ``rejected``) or deleted."""
        try:
            cookie = self._parse(header, ctx)
        except _Rejected as why:
            self.rejected.append((header, str(why)))
            return None
        old = self._cookies.get(cookie.key)
        if cookie.expired():
            # A deletion: only the cookie with the same name, domain and path goes.
            self._cookies.pop(cookie.key, None)
            return None
        if old is not None:
            cookie.created, cookie.order = old.created, old.order
        self._cookies[cookie.key] = cookie
        return cookie

    def _parse(self, header: str, ctx: RequestContext) -> Cookie:
        pair, *attributes = header.split(";")
        if "=" not in pair:
            raise _Rejected("no name=value pair")
        name, value = (part.strip() for part in pair.split("=", 1))
        if not name:
            raise _Rejected("empty name")
        host = _host(ctx.url)
        cookie = Cookie(name, value, host, path=_default_path(ctx.url))
        domain_attribute: str | None = None
        max_age: int | None = None
        expires: float | None = None
        for attribute in attributes:
            key, _, val = attribute.partition("=")
            key, val = key.strip().lower(), val.strip()
            if key == "domain" and val:
                domain_attribute = val.lower().lstrip(".")
            elif key == "path":
                # Not starting with "/" (or empty): the default path (RFC 6265 section 5.2.4).
                cookie.path = val if val.startswith("/") else _default_path(ctx.url)
            elif key == "secure":
                cookie.secure = True
            elif key == "httponly":
                cookie.httponly = True
            elif key == "samesite":
                # An unknown value counts as no attribute at all.
                lowered = val.lower()
                cookie.samesite = lowered if lowered in ("strict", "lax", "none") else "unspecified"
            elif key == "max-age":
                try:
                    max_age = int(val)
                except ValueError:
                    pass  # an invalid Max-Age is ignored
            elif key == "expires":
                expires = http2time(val)
        # Max-Age wins over Expires; Max-Age=0 or less means "already expired".
        if max_age is not None:
            cookie.expires = time.time() + max_age if max_age > 0 else 0.0
        elif expires is not None:
            cookie.expires = expires

        if domain_attribute is not None and domain_attribute != host:
            if _is_ip(host) or not _domain_match(host, domain_attribute):
                raise _Rejected(f"Domain={domain_attribute} does not cover {host}")
            if "." not in domain_attribute:
                raise _Rejected(f"Domain={domain_attribute} is a public suffix")
            cookie.domain, cookie.host_only = domain_attribute, False
        elif domain_attribute is not None and not _is_ip(host) and "." in host:
            cookie.host_only = False  # Domain=<the host itself>: also its subdomains

        secure_origin = self.secure_origin(ctx.url)
        if cookie.secure and not secure_origin:
            raise _Rejected(f"Secure cookie from a non-secure origin ({self.profile})")
        if cookie.samesite == "none" and not cookie.secure:
            raise _Rejected("SameSite=None without Secure")
        lowered_name = name.lower()
        if lowered_name.startswith("__secure-") and not cookie.secure:
            raise _Rejected("__Secure- prefix without Secure")
        if lowered_name.startswith("__host-") and not (
                cookie.secure and cookie.path == "/" and domain_attribute is None):
            raise _Rejected("__Host- prefix needs Secure, Path=/ and no Domain")
        # A response to a cross-site subresource request cannot set SameSite cookies; a
        # top-level navigation's response can (Chromium, RFC 6265bis section 5.7 step 20).
        if (not ctx.navigation and not ctx.same_site
                and self._effective_samesite(cookie) != "none"):
            raise _Rejected("SameSite cookie set by a cross-site subresource response")
        # "Leave Secure cookies alone": a non-secure origin cannot overlay a Secure cookie.
        if not secure_origin:
            for old in self._cookies.values():
                if (old.secure and old.name == name
                        and (_domain_match(old.domain, cookie.domain)
                             or _domain_match(cookie.domain, old.domain))
                        and _path_match(cookie.path, old.path)):
                    raise _Rejected("would overlay a Secure cookie from a non-secure origin")
        return cookie


class _Rejected(Exception):
    """A Set-Cookie header the browser ignores."""


# ------------------------------------------------------------------------------ forms
@dataclasses.dataclass
class Form:
    """One ``<form>``: its absolute action URL, method, field values and submit buttons."""

    action: str
    method: str
    fields: list[tuple[str, str]]
    buttons: list[tuple[str, str]]

    def get(self, name: str) -> str | None:
        """The first value of a field or button named ``name``."""
        for key, value in self.fields + self.buttons:
            if key == name:
                return value
        return None

    @property
    def values(self) -> dict[str, str]:
        return dict(self.fields)


class _FormParser(HTMLParser):
    def __init__(self, base_url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base_url = base_url
        self.forms: list[Form] = []
        self._current: Form | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if tag == "form":
            # An empty or missing action posts back to the page's own URL.
            action = urljoin(self.base_url, a["action"]) if a.get("action") else self.base_url
            self._current = Form(action, (a.get("method") or "get").lower(), [], [])
            self.forms.append(self._current)
            return
        form = self._current
        if form is None or "name" not in a or "disabled" in a:
            return
        if tag == "input":
            kind = a.get("type", "text").lower()
            if kind in ("submit", "image"):
                form.buttons.append((a["name"], a.get("value", "")))
            elif kind in ("checkbox", "radio"):
                if "checked" in a:
                    form.fields.append((a["name"], a.get("value", "on")))
            elif kind not in ("button", "reset", "file"):
                form.fields.append((a["name"], a.get("value", "")))
        elif tag == "button" and a.get("type", "submit").lower() == "submit":
            form.buttons.append((a["name"], a.get("value", "")))
        elif tag == "textarea":
            self._textarea = a["name"]
            form.fields.append((a["name"], ""))

    def handle_data(self, data: str) -> None:
        if self._textarea is not None and self._current is not None:
            name, value = self._current.fields[-1]
            self._current.fields[-1] = (name, value + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None
        elif tag == "textarea":
            self._textarea = None


def parse_forms(response: requests.Response) -> list[Form]:
    """All forms of an HTML response, with actions resolved against the page URL."""
    parser = _FormParser(response.url)
    parser.feed(response.text)
    return parser.forms


# ------------------------------------------------------------------------------ HTTP
@functools.cache
def _tls_context(verify: bool | str) -> ssl.SSLContext:
    """The client TLS context for a ``verify=`` value: trust that CA file alone (checking host
    names), the system's CAs (``True``), or nothing (``False``). One per value for the whole
    test process: the tests open hundreds of connections."""
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=None if verify is True else verify)


_Connection = http.client.HTTPConnection | http.client.HTTPSConnection
_Key = tuple[str, str, int, bool | str, str | None]  # scheme, host, port, verify=, proxy
_BODY_KWARGS = frozenset({"data", "json", "params", "headers", "timeout", "verify"})


def _timeouts(timeout: float | tuple[float, float]) -> tuple[float, float]:
    return timeout if isinstance(timeout, tuple) else (timeout, timeout)


class _Raw:
    """What ``response.raw`` offers here: the headers as sent, repeated ones apart
    (``raw.headers.getlist("Set-Cookie")``), as urllib3's response has them."""

    def __init__(self, headers: urllib3.HTTPHeaderDict) -> None:
        self.headers = headers


class _Transport:
    """One browser's HTTP/1.1 connections, kept alive by origin (and ``verify=`` and proxy):
    ``http.client`` with ``requests``' types on the outside.

    ``requests.Session`` costs about three times the request itself in the client's CPU
    (URL re-encoding, environment and settings merging, hooks, its cookie jar's parsing of
    every ``Set-Cookie``: about 1.3 ms against 0.4 ms per request on a kept-alive
    connection), and a test suite is mostly such requests. The browser
    needs none of that: it keeps its own cookies and follows redirects itself. What it returns
    is still a ``requests.Response``, and failures are ``requests``' exceptions, so tests read
    a browser's answers as they read any other. Never reads the environment (no
    ``HTTPS_PROXY``, no ``REQUESTS_CA_BUNDLE``): ``proxies`` are the only proxies.
    """

    def __init__(self, verify: bool | str) -> None:
        self.verify = verify
        # {"https://host" or "https": "http://proxy:port"}, as requests' ``proxies``; only
        # https targets go through a proxy here (a CONNECT tunnel).
        self.proxies: dict[str, str] = {}
        self._lock = threading.Lock()
        self._idle: dict[_Key, list[_Connection]] = {}
        self._closed = False

    def _connection(self, key: _Key, timeout: float) -> tuple[_Connection, bool]:
        """An idle connection to the origin, kept alive (True), or a new one (False). A
        browser may be used from several threads at once, as a browser's tabs: each request
        has a connection to itself until its answer is read."""
        with self._lock:
            idle = self._idle.get(key)
            if idle:
                return idle.pop(), True
        scheme, host, port, verify, proxy = key
        conn: _Connection
        if scheme == "http":
            if proxy:
                raise ValueError("the browser tunnels https through proxies, not http")
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
        elif proxy:
            where = urlsplit(proxy)
            conn = http.client.HTTPSConnection(where.hostname or "", where.port or 80,
                                               timeout=timeout, context=_tls_context(verify))
            conn.set_tunnel(host, port)
        else:
            conn = http.client.HTTPSConnection(host, port, timeout=timeout,
                                               context=_tls_context(verify))
        return conn, False

    def _release(self, key: _Key, conn: _Connection) -> None:
        if conn.sock is None:  # closed (the answer said so): nothing to keep
            return
        with self._lock:
            if self._closed:
                conn.close()
            else:
                self._idle.setdefault(key, []).append(conn)

    def send(self, method: str, url: str, headers: Mapping[str, str], **kwargs: Any
             ) -> requests.Response:
        unknown = set(kwargs) - _BODY_KWARGS
        if unknown:
            raise TypeError(f"the test browser does not take {sorted(unknown)}")
        params = kwargs.get("params")
        if params:
            parts = urlsplit(url)
            query = "&".join(filter(None, [parts.query, urlencode(params, doseq=True)]))
            url = urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
        sent = {"Accept": "*/*", **headers}
        body: bytes | Iterable[bytes] | None = None
        if kwargs.get("json") is not None:
            body = json.dumps(kwargs["json"]).encode()
            sent.setdefault("Content-Type", "application/json")
        elif kwargs.get("data") is not None:
            data = kwargs["data"]
            if isinstance(data, bytes | str):
                body = data.encode() if isinstance(data, str) else data
            elif isinstance(data, Mapping | list | tuple):  # form fields
                body = urlencode(data, doseq=True).encode()
                sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
            else:  # an iterable of byte chunks: sent chunked, with no length
                body = data
        if body is None and method in ("POST", "PUT", "PATCH"):
            body = b""  # a Content-Length: 0, as browsers send
        connect_timeout, read_timeout = _timeouts(kwargs.get("timeout", 30))
        verify = kwargs.get("verify", self.verify)
        parts = urlsplit(url)
        scheme, host = parts.scheme.lower(), parts.hostname or ""
        if scheme not in ("http", "https"):
            raise requests.exceptions.InvalidSchema(f"no connection for {url!r}")
        port = parts.port or _DEFAULT_PORTS[scheme]
        target = urlunsplit(("", "", parts.path or "/", parts.query, ""))
        proxy = requests.utils.select_proxy(url, self.proxies) if self.proxies else None
        key = (scheme, host, port, verify, proxy)
        for attempt in (1, 2):
            conn, reused = self._connection(key, connect_timeout)
            connecting = not reused
            try:
                if connecting:  # made with the connect timeout (`_connection`)
                    conn.connect()
                    connecting = False
                conn.sock.settimeout(read_timeout)
                try:
                    conn.request(method, target, body=body, headers=sent)
                except (BrokenPipeError, ConnectionResetError):
                    # The server may close its side once it has answered (a body it will
                    # not take): the answer is still there to read, as urllib3 reads it.
                    pass
                answer = conn.getresponse()
                content = answer.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                conn.close()
                if reused and attempt == 1 and isinstance(body, bytes | None):
                    # As browsers do (Chromium's HttpNetworkTransaction::ShouldResendRequest):
                    # a kept-alive connection that the server closed when its keep-alive ran
                    # out, as this request went out, is tried once more on a new connection.
                    continue
                raise requests.ConnectionError(exc) from exc
            except TimeoutError as exc:
                conn.close()
                raise (requests.exceptions.ConnectTimeout if connecting
                       else requests.exceptions.ReadTimeout)(exc) from exc
            except ssl.SSLError as exc:
                conn.close()
                raise requests.exceptions.SSLError(exc) from exc
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                raise requests.ConnectionError(exc) from exc
            break
        if answer.will_close:
            conn.close()
        self._release(key, conn)
        response = requests.Response()
        response.status_code = answer.status
        response.reason = answer.reason
        raw_headers = urllib3.HTTPHeaderDict(answer.getheaders())
        response.raw = _Raw(raw_headers)
        response.headers = requests.structures.CaseInsensitiveDict(raw_headers)
        response.encoding = requests.utils.get_encoding_from_headers(response.headers)
        response._content = content  # read whole: nothing streams here
        response.url = url
        request = requests.PreparedRequest()
        request.method, request.url = method, url
        request.body = body if isinstance(body, bytes | None) else None  # a stream is spent
        request.headers = requests.structures.CaseInsensitiveDict(sent)
        response.request = request
        return response

    def close(self) -> None:
        # Closed now, not when collected: a server stopped after the test would wait for
        # them (uvicorn's graceful shutdown, the TLS close).
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()


# ------------------------------------------------------------------------------ browser
class Browser:
    """A browser for tests: HTTP/1.1 through ``_Transport`` (trusting ``ca_path`` or ``verify``
    only and ignoring the environment: no ``REQUESTS_CA_BUNDLE``, no ``HTTPS_PROXY``), with
    cookies and redirects handled by browser rules; answers are ``requests.Response`` objects.

    ``profile`` is "chromium", "firefox" or "safari": they differ on ``Secure`` cookies over
    http://localhost and on cookies without a ``SameSite`` attribute.
    """

    def __init__(self, ca_path: str | None = None, *, verify: bool | str | None = None,
                 profile: str = "chromium") -> None:
        if profile not in PROFILES:
            raise ValueError(f"profile must be one of {PROFILES}, not {profile!r}")
        self.profile = profile
        self.transport = _Transport(verify if verify is not None else (ca_path or True))
        self.cookies = CookieStore(profile)
        self.history: list[requests.Response] = []
        # How each returned response was reached, so a redirect left unfollowed
        # (allow_redirects=False) can be continued as the same chain (see `follow`).
        self._contexts: weakref.WeakKeyDictionary[requests.Response, RequestContext] = (
            weakref.WeakKeyDictionary())

    # ---- requests
    def get(self, url: str, *, initiator: str | None = None, **kwargs: Any) -> requests.Response:
        """A top-level GET navigation: typed by the user (no ``initiator``), or a link or GET
        form on the page ``initiator``."""
        return self.request("GET", url, initiator=initiator, **kwargs)

    def post(self, url: str, *, initiator: str | None = None, **kwargs: Any
             ) -> requests.Response:
        """A top-level POST navigation: a form on the page ``initiator`` (by default a page of
        ``url``'s own origin, i.e. a same-site form)."""
        return self.request("POST", url, initiator=url if initiator is None else initiator,
                            **kwargs)

    def fetch(self, url: str, *, initiator: str, method: str = "GET", **kwargs: Any
              ) -> requests.Response:
        """A subresource request (``fetch()``, an image, an iframe's content...) made by the
        page ``initiator``: ``Lax`` cookies are not sent to another site."""
        return self.request(method, url, initiator=initiator, navigation=False, **kwargs)

    def request(self, method: str, url: str, *, initiator: str | None = None,
                navigation: bool = True, allow_redirects: bool = True,
                form_action: FormAction | None = None, **kwargs: Any) -> requests.Response:
        """Any request; ``form_action`` is the policy of the page whose form sends it."""
        ctx = RequestContext(url, method.upper(), initiator, (), navigation, form_action)
        return self._run(ctx, allow_redirects=allow_redirects, history=[], **kwargs)

    def follow(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        """Continue a redirect returned with ``allow_redirects=False``, as the same chain
        (same initiator, earlier hops counted for SameSite). A 307/308 after a POST is
        continued without its body: pass ``data=`` again if it matters."""
        if not response.is_redirect:
            raise AssertionError(f"not a redirect: {response.status_code} {response.url}")
        ctx = self._contexts.get(response)
        if ctx is None:  # not made by this browser: as if the user had followed a link
            ctx = RequestContext(response.url, "GET")
        return self._run(self._next_hop(ctx, response), allow_redirects=True,
                         history=[response], **kwargs)

    def _run(self, ctx: RequestContext, *, allow_redirects: bool,
             history: list[requests.Response], **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        headers = {k: v for k, v in (kwargs.pop("headers", None) or {}).items()
                   if k.lower() != "cookie"}
        while True:
            if ctx.form_action is not None and not ctx.form_action.allows(ctx.url):
                # URLs without their query: it may hold tokens (id_token_hint).
                raise NavigationBlocked(
                    f"form-action of {_no_query(ctx.form_action.page)} "
                    f"({' '.join(ctx.form_action.sources)}) blocks {_no_query(ctx.url)}"
                    + (f" (reached by a redirect from {_no_query(ctx.chain[-1])})"
                       if ctx.chain else ""))
            hop_headers = dict(headers)
            cookie = self.cookies.header_for(ctx)
            if cookie:
                hop_headers["Cookie"] = cookie
            if not ctx.safe_method:
                # A form POST carries its page's origin ("null" after a cross-origin redirect).
                crossed = any(_origin(u) != _origin(ctx.url) for u in ctx.chain)
                origin = ctx.initiator if ctx.initiator is not None else ctx.url
                hop_headers["Origin"] = "null" if crossed else _origin(origin)
            resp = self.transport.send(ctx.method, ctx.url, hop_headers, **kwargs)
            for header in resp.raw.headers.getlist("Set-Cookie"):
                self.cookies.store(header, ctx)
            self._contexts[resp] = ctx
            if not (allow_redirects and resp.is_redirect):
                break
            history.append(resp)
            if len(history) > MAX_REDIRECTS:
                raise requests.TooManyRedirects(f"more than {MAX_REDIRECTS} redirects",
                                                response=resp)
            next_ctx = self._next_hop(ctx, resp)
            if next_ctx.method != ctx.method or next_ctx.method == "GET":
                # The body does not follow a redirect that turned into a GET.
                for key in ("data", "json", "files"):
                    kwargs.pop(key, None)
            kwargs.pop("params", None)  # already part of the URL the redirect came from
            ctx = next_ctx
        resp.history = history
        self.history.append(resp)
        return resp

    @staticmethod
    def _next_hop(ctx: RequestContext, resp: requests.Response) -> RequestContext:
        location = urljoin(resp.url, resp.headers["Location"])
        parts = urlsplit(location)
        location = urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, ""))
        method = ctx.method
        # 303 always, and 301/302 after a POST (as browsers do), turn into a GET.
        if (resp.status_code == 303 and method != "HEAD") or (
                resp.status_code in (301, 302) and method == "POST"):
            method = "GET"
        return RequestContext(location, method, ctx.initiator, (*ctx.chain, ctx.url),
                              ctx.navigation, ctx.form_action)

    @property
    def proxies(self) -> dict[str, str]:
        """Proxies by target, as ``requests``' ``proxies`` (``{"https://host": proxy_url}``):
        an https request to a listed host goes through a CONNECT tunnel of that proxy."""
        return self.transport.proxies

    @proxies.setter
    def proxies(self, proxies: Mapping[str, str]) -> None:
        self.transport.proxies = dict(proxies)

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- pages
    def submit_form(
        self,
        response: requests.Response,
        *,
        form_index: int | None = None,
        match: Callable[[Form], bool] | None = None,
        fields: Mapping[str, str] | None = None,
        button: tuple[str, str] | None = None,
        allow_redirects: bool = True,
    ) -> requests.Response:
        """Submit a form of ``response``: the one at ``form_index``, else the first for which
        ``match`` is true, else the first. ``fields`` override or add values; ``button`` picks
        a submit button by (name, value), else the form's first named button is sent. The
        request comes from the page ``response.url`` (which decides SameSite)."""
        forms = parse_forms(response)
        if form_index is not None:
            chosen = forms[form_index]
        else:
            candidates = [f for f in forms if match is None or match(f)]
            if not candidates:
                raise AssertionError(f"no matching form on {response.url}:\n{response.text[:2000]}")
            chosen = candidates[0]
        data = list(chosen.fields)
        if button is not None:
            if button not in chosen.buttons:
                raise AssertionError(f"no button {button} in form {chosen}")
            data.append(button)
        elif chosen.buttons:
            data.append(chosen.buttons[0])
        if fields:
            data = [(k, v) for k, v in data if k not in fields] + list(fields.items())
        policy = FormAction.of(response)
        if chosen.method == "post":
            return self.post(chosen.action, data=data, allow_redirects=allow_redirects,
                             initiator=response.url, form_action=policy)
        return self.get(chosen.action, params=data, allow_redirects=allow_redirects,
                        initiator=response.url, form_action=policy)

    def sign_in(self, response: requests.Response, username: str, *,
                follow: bool = True) -> requests.Response:
        """On the stand-in's sign-in page ``response``, choose ``username`` and accept; then
        (``follow=True``) submit the ``form_post`` page to the app, following redirects, and
        return the final response. With ``follow=False``, return the stand-in's answer (the
        ``form_post`` page, or a 302 in query mode) without contacting the app."""
        answer = self.submit_form(
            response,
            match=lambda f: f.get("username") == username and ("action", "accept") in f.buttons,
            allow_redirects=False,
        )
        if not follow:
            return answer
        return self.follow_auth_response(answer)

    def decline(self, response: requests.Response, *, follow: bool = True) -> requests.Response:
        """Press "Decline" on the stand-in's sign-in page."""
        answer = self.submit_form(response, match=lambda f: ("action", "decline") in f.buttons,
                                  allow_redirects=False)
        return self.follow_auth_response(answer) if follow else answer

    def follow_auth_response(self, answer: requests.Response) -> requests.Response:
        """Deliver the stand-in's authorization response to the app: follow its redirect (query
        mode; a cross-site chain), or submit its ``form_post`` page (a cross-site POST)."""
        if answer.is_redirect:
            return self.follow(answer)
        return self.submit_form(answer, match=lambda f: f.get("code") is not None
                                or f.get("error") is not None)


def auth_response(answer: requests.Response) -> dict[str, str]:
    """The authorization response parameters (code, state, client_info, ... or error) the
    stand-in sends to the redirect URI, read from a ``form_post`` page or a redirect."""
    if answer.is_redirect:
        url = urlsplit(answer.headers["Location"])
        return dict(parse_qsl(url.query or url.fragment, keep_blank_values=True))
    for form in parse_forms(answer):
        if form.get("code") is not None or form.get("error") is not None:
            return form.values
    raise AssertionError(f"not an authorization response: {answer.status_code} {answer.text[:500]}")
