"""The test browser's cookie rules, each proven against real servers on loopback.

One plain-http server and one https server (a trustme certificate) are each reached as
`localhost` and as `127.0.0.1`: four origins and four sites, since `localhost` and `127.0.0.1`
are different sites and so are http and https of one host. The server sets the cookies a test
asks for (`/set?c=<Set-Cookie value>`), redirects (`/redirect?to=...`), serves form pages
(`/form?action=...&csp=...`) and echoes the `Cookie` header it received (any other path).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import socket
import ssl
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
import requests
import trustme
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests import browser as browser_module
from tests.browser import Browser, NavigationBlocked, RequestContext, site


# ------------------------------------------------------------------------------ servers
@Request.application
def cookie_lab(request: Request) -> Response:
    if request.path.endswith("/set"):
        to = request.args.get("to")
        response = Response("set", status=int(request.args.get("status", 302)) if to else 200)
        if to:
            response.headers["Location"] = to
        for value in request.args.getlist("c"):
            response.headers.add("Set-Cookie", value)
        return response
    if request.path == "/redirect":
        response = Response("", status=int(request.args.get("status", 302)))
        response.headers["Location"] = request.args["to"]
        return response
    if request.path == "/form":
        method = request.args.get("method", "post")
        page = (f'<form method="{method}" action="{escape(request.args["action"])}">'
                '<input name="field" value="v"><button name="go" value="1">Go</button></form>')
        response = Response(page, content_type="text/html")
        if "csp" in request.args:
            response.headers["Content-Security-Policy"] = request.args["csp"]
        return response
    body = {"cookie": request.headers.get("Cookie", ""), "method": request.method,
            "origin": request.headers.get("Origin"), "form": request.form.to_dict()}
    return Response(json.dumps(body), content_type="application/json")


@contextlib.contextmanager
def serve(ssl_context: ssl.SSLContext | None) -> Iterator[int]:
    server = make_server("127.0.0.1", 0, cookie_lab, threaded=True, ssl_context=ssl_context)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield server.port
    finally:
        server.shutdown()
        thread.join(5)


@dataclass(frozen=True)
class Origins:
    http_localhost: str
    http_ip: str
    https_localhost: str
    https_ip: str
    ca_path: str


@pytest.fixture(scope="module")
def origins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Origins]:
    ca = trustme.CA()
    folder: Path = tmp_path_factory.mktemp("browser-tls")
    ca_path = folder / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    with serve(None) as http_port, serve(context) as https_port:
        yield Origins(f"http://localhost:{http_port}", f"http://127.0.0.1:{http_port}",
                      f"https://localhost:{https_port}", f"https://127.0.0.1:{https_port}",
                      str(ca_path))


def make_browser(origins: Origins, profile: str = "chromium") -> Browser:
    return Browser(origins.ca_path, profile=profile)


def set_cookies(browser: Browser, origin: str, *headers: str, path: str = "/set"
                ) -> requests.Response:
    """Have `origin` set cookies with a page the user opens."""
    resp = browser.get(f"{origin}{path}?{urlencode([('c', h) for h in headers])}")
    assert resp.status_code == 200
    return resp


def sent(resp: requests.Response) -> set[str]:
    """The cookie names the server received."""
    header = resp.json()["cookie"]
    return {part.split("=", 1)[0] for part in header.split("; ") if part}


def names(cookies: Iterable[Any]) -> set[str]:
    return {c.name for c in cookies}


# ------------------------------------------------------------------------------ sites
def test_sites_are_scheme_and_registrable_domain() -> None:
    assert site("http://localhost:1/x") == site("http://localhost:2/y")  # ports do not count
    assert site("http://localhost:1") != site("http://127.0.0.1:1")
    assert site("http://localhost") != site("https://localhost")  # schemeful
    assert site("https://a.app.test") == site("https://b.app.test") == ("https", "app.test")


# ------------------------------------------------------------------------------ SameSite
def test_lax_cookie_not_sent_with_a_cross_site_post(origins: Origins) -> None:
    browser = make_browser(origins)
    set_cookies(browser, origins.http_localhost, "lax=1; Path=/; SameSite=Lax")
    target = origins.http_localhost + "/echo"
    # A form on the other site (127.0.0.1) posting to localhost: no Lax cookie.
    page = browser.get(f"{origins.http_ip}/form?{urlencode({'action': target})}")
    resp = browser.submit_form(page)
    assert resp.json()["method"] == "POST" and resp.json()["form"]["field"] == "v"
    assert sent(resp) == set()
    assert resp.json()["origin"] == origins.http_ip
    # The same form on localhost's own site: the cookie comes along.
    page = browser.get(f"{origins.http_localhost}/form?{urlencode({'action': target})}")
    assert sent(browser.submit_form(page)) == {"lax"}
    assert sent(browser.post(target)) == {"lax"}  # a same-site form by default


def test_lax_cookie_sent_with_a_cross_site_top_level_get(origins: Origins) -> None:
    browser = make_browser(origins)
    set_cookies(browser, origins.http_localhost, "lax=1; SameSite=Lax", "strict=1; SameSite=Strict")
    target = origins.http_localhost + "/echo"
    page = browser.get(f"{origins.http_ip}/form?{urlencode({'action': target, 'method': 'get'})}")
    assert sent(browser.submit_form(page)) == {"lax"}
    assert sent(browser.get(target, initiator=origins.http_ip + "/")) == {"lax"}
    assert sent(browser.get(target)) == {"lax", "strict"}  # typed by the user


def test_lax_cookie_not_sent_with_a_cross_site_subresource(origins: Origins) -> None:
    browser = make_browser(origins)
    set_cookies(browser, origins.http_localhost, "lax=1; SameSite=Lax")
    target = origins.http_localhost + "/echo"
    assert sent(browser.fetch(target, initiator=origins.http_ip + "/")) == set()
    assert sent(browser.fetch(target, initiator=origins.http_localhost + "/")) == {"lax"}


def test_strict_cookie_never_sent_cross_site(origins: Origins) -> None:
    browser = make_browser(origins)
    set_cookies(browser, origins.https_localhost,
                "strict=1; SameSite=Strict", "none=1; SameSite=None; Secure")
    target = origins.https_localhost + "/echo"
    assert sent(browser.get(target, initiator=origins.https_ip + "/")) == {"none"}
    assert sent(browser.post(target, initiator=origins.https_ip + "/")) == {"none"}
    # http and https of the same host are different sites too.
    assert sent(browser.get(target, initiator=origins.http_localhost + "/")) == {"none"}
    assert sent(browser.get(target, initiator=origins.https_localhost + "/page")) == {
        "strict", "none"}


def test_redirect_chain_that_crossed_sites_is_cross_site(origins: Origins) -> None:
    browser = make_browser(origins)
    set_cookies(browser, origins.http_localhost, "lax=1; SameSite=Lax", "strict=1; SameSite=Strict")
    # Typed localhost URL -> 127.0.0.1 -> back to localhost: the last hop is cross-site.
    back = origins.http_localhost + "/echo"
    via = f"{origins.http_ip}/redirect?{urlencode({'to': back})}"
    resp = browser.get(f"{origins.http_localhost}/redirect?{urlencode({'to': via})}")
    assert resp.url == back and len(resp.history) == 2
    assert sent(resp) == {"lax"}
    # A redirect that stays on the site keeps the request same-site.
    resp = browser.get(f"{origins.http_localhost}/redirect?{urlencode({'to': back})}")
    assert sent(resp) == {"lax", "strict"}


def test_cookie_without_samesite_is_lax_in_chromium_only(origins: Origins) -> None:
    for profile, expected in [("chromium", set()), ("firefox", {"plain"}), ("safari", {"plain"})]:
        browser = make_browser(origins, profile)
        set_cookies(browser, origins.http_localhost, "plain=1")
        resp = browser.post(origins.http_localhost + "/echo", initiator=origins.http_ip + "/")
        assert sent(resp) == expected, profile


def test_samesite_none_needs_secure(origins: Origins) -> None:
    browser = make_browser(origins)
    set_cookies(browser, origins.https_localhost,
                "insecure=1; SameSite=None", "secure=1; SameSite=None; Secure")
    assert names(browser.cookies) == {"secure"}
    assert browser.cookies.rejected[0][0] == "insecure=1; SameSite=None"
    # The valid one goes with a cross-site POST and a cross-site subresource request.
    target = origins.https_localhost + "/echo"
    assert sent(browser.post(target, initiator=origins.https_ip + "/")) == {"secure"}
    assert sent(browser.fetch(target, initiator=origins.https_ip + "/")) == {"secure"}


def test_cross_site_subresource_cannot_set_samesite_cookies(origins: Origins) -> None:
    browser = make_browser(origins)
    url = f"{origins.https_localhost}/set?" + urlencode(
        [("c", "lax=1; SameSite=Lax"), ("c", "none=1; SameSite=None; Secure")])
    browser.fetch(url, initiator=origins.https_ip + "/")
    assert names(browser.cookies) == {"none"}
    browser.get(url, initiator=origins.https_ip + "/")  # a top-level navigation can
    assert names(browser.cookies) == {"lax", "none"}


# ------------------------------------------------------------------------------ Secure
@pytest.mark.parametrize("profile", ["chromium", "firefox", "safari"])
def test_secure_cookies_on_http_localhost(origins: Origins, profile: str) -> None:
    browser = make_browser(origins, profile)
    set_cookies(browser, origins.http_localhost, "s=1; Secure; SameSite=Lax")
    set_cookies(browser, origins.https_localhost, "t=1; Secure; SameSite=Lax")
    on_http = sent(browser.get(origins.http_localhost + "/echo"))
    on_https = sent(browser.get(origins.https_localhost + "/echo"))
    if profile == "safari":
        # Safari neither accepts nor sends Secure cookies on http://localhost.
        assert names(browser.cookies) == {"t"} and on_http == set() and on_https == {"t"}
    else:
        assert names(browser.cookies) == {"s", "t"} and on_http == on_https == {"s", "t"}


def test_secure_cookie_refused_from_a_non_secure_origin() -> None:
    # A non-loopback http origin: no server needed, as the rule is decided on the URL alone.
    store = Browser().cookies
    store.store("s=1; Secure", RequestContext("http://app.test/set"))
    store.store("plain=1", RequestContext("http://app.test/set"))
    assert names(store) == {"plain"}
    assert store.header_for(RequestContext("http://app.test/")) == "plain=1"
    store.store("s=1; Secure", RequestContext("https://app.test/set"))
    assert store.header_for(RequestContext("http://app.test/")) == "plain=1"
    assert store.header_for(RequestContext("https://app.test/")) == "plain=1; s=1"


# ------------------------------------------------------------------------------ prefixes
def test_host_prefix_needs_secure_root_path_and_no_domain(origins: Origins) -> None:
    browser = make_browser(origins)
    set_cookies(browser, origins.https_localhost,
                "__Host-nosecure=1; Path=/",
                "__Host-subpath=1; Secure; Path=/sub",
                "__Host-domain=1; Secure; Path=/; Domain=localhost",
                "__Secure-nosecure=1; Path=/",
                "__Host-ok=1; Secure; Path=/; SameSite=Lax",
                "__Secure-ok=1; Secure; Path=/sub")
    assert names(browser.cookies) == {"__Host-ok", "__Secure-ok"}
    assert len(browser.cookies.rejected) == 4
    # Chromium and Firefox accept them from http://localhost too (a secure context).
    chromium = make_browser(origins)
    set_cookies(chromium, origins.http_localhost, "__Host-ok=1; Secure; Path=/")
    assert chromium.cookies.get("__Host-ok") == "1"


# ------------------------------------------------------------------------------ scoping
def test_host_only_cookies_stay_on_their_host(origins: Origins) -> None:
    browser = make_browser(origins)
    set_cookies(browser, origins.http_localhost, "mine=localhost")
    set_cookies(browser, origins.http_ip, "mine=ip")
    assert browser.get(origins.http_localhost + "/echo").json()["cookie"] == "mine=localhost"
    assert browser.get(origins.http_ip + "/echo").json()["cookie"] == "mine=ip"
    with pytest.raises(LookupError):
        browser.cookies.get("mine")
    assert browser.cookies.get("mine", domain="127.0.0.1") == "ip"
    assert browser.cookies.get("absent") is None


def test_domain_cookies_reach_subdomains_host_only_ones_do_not() -> None:
    store = Browser().cookies
    at = RequestContext("https://www.app.test/set")
    store.store("wide=1; Domain=app.test", at)
    store.store("narrow=1", at)
    store.store("foreign=1; Domain=other.test", at)  # not a parent of www.app.test
    store.store("suffix=1; Domain=test", at)  # a public suffix
    assert names(store) == {"wide", "narrow"}
    assert store.header_for(RequestContext("https://api.app.test/")) == "wide=1"
    assert store.header_for(RequestContext("https://www.app.test/")) == "wide=1; narrow=1"


def test_path_matching(origins: Origins) -> None:
    browser = make_browser(origins)
    set_cookies(browser, origins.http_localhost, "explicit=1; Path=/a")
    # Without Path, the default path is the directory of the URL that set it.
    set_cookies(browser, origins.http_localhost, "implicit=1", path="/b/c/set")
    base = origins.http_localhost
    assert sent(browser.get(base + "/a/echo")) == {"explicit"}
    assert sent(browser.get(base + "/a")) == {"explicit"}
    assert sent(browser.get(base + "/ab/echo")) == set()
    assert sent(browser.get(base + "/b/c/echo")) == {"implicit"}
    assert sent(browser.get(base + "/b/echo")) == set()
    # Longer paths first.
    set_cookies(browser, base, "explicit=2; Path=/a/x")
    assert browser.get(base + "/a/x/echo").json()["cookie"] == "explicit=2; explicit=1"


# ------------------------------------------------------------------------------ expiry
def test_max_age_and_expires_delete(origins: Origins) -> None:
    browser = make_browser(origins)
    base = origins.http_localhost
    set_cookies(browser, base, "a=1", "b=1", "c=1; Max-Age=3600",
                "d=1; Expires=not a date")  # ignored: a session cookie
    assert names(browser.cookies) == {"a", "b", "c", "d"}
    set_cookies(browser, base, "a=; Max-Age=0", "b=; Expires=Thu, 01 Jan 1970 00:00:00 GMT")
    assert names(browser.cookies) == {"c", "d"}
    assert sent(browser.get(base + "/echo")) == {"c", "d"}
    # Max-Age wins over Expires.
    set_cookies(browser, base, "c=2; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=60")
    assert browser.cookies.get("c") == "2"


def test_cookies_expire_with_time(origins: Origins, monkeypatch: pytest.MonkeyPatch) -> None:
    browser = make_browser(origins)
    set_cookies(browser, origins.http_localhost, "short=1; Max-Age=60", "session=1")
    later = browser_module.time.time() + 61
    monkeypatch.setattr(browser_module.time, "time", lambda: later)
    assert sent(browser.get(origins.http_localhost + "/echo")) == {"session"}


def test_deletion_matches_name_domain_and_path(origins: Origins) -> None:
    browser = make_browser(origins)
    base = origins.https_localhost
    set_cookies(browser, base, "x=1; Path=/a")
    set_cookies(browser, base, "x=; Path=/; Max-Age=0")  # another path: x stays
    set_cookies(browser, origins.https_ip, "x=; Path=/a; Max-Age=0")  # another host
    assert browser.cookies.get("x") == "1"
    set_cookies(browser, base, "x=; Path=/a; Max-Age=0")
    assert browser.cookies.get("x") is None
    # A __Host- cookie is only deleted by a Set-Cookie that is itself a valid __Host- one.
    set_cookies(browser, base, "__Host-f=1; Secure; Path=/")
    set_cookies(browser, base, "__Host-f=; Path=/; Max-Age=0")
    assert browser.cookies.get("__Host-f") == "1"
    set_cookies(browser, base, "__Host-f=; Secure; Path=/; Max-Age=0")
    assert browser.cookies.get("__Host-f") is None


def test_replacing_keeps_one_cookie(origins: Origins) -> None:
    browser = make_browser(origins)
    set_cookies(browser, origins.http_localhost, "v=1")
    set_cookies(browser, origins.http_localhost, "v=2")
    assert [c.value for c in browser.cookies] == ["2"]


# ------------------------------------------------------------------------------ plumbing
def test_redirect_hops_keep_their_set_cookie_headers(origins: Origins) -> None:
    browser = make_browser(origins)
    base = origins.http_localhost
    resp = browser.get(f"{base}/set?" + urlencode(
        [("c", "hop=1; Path=/"), ("c", "two=2; Path=/"), ("to", base + "/echo")]))
    (hop,) = resp.history
    assert hop.status_code == 302
    assert hop.raw.headers.getlist("Set-Cookie") == ["hop=1; Path=/", "two=2; Path=/"]
    assert sent(resp) == {"hop", "two"}  # set on one hop, sent on the next
    assert resp.request.headers["Cookie"] == "hop=1; two=2"


def test_redirects_change_post_to_get_except_307(origins: Origins) -> None:
    browser = make_browser(origins)
    echo = origins.http_localhost + "/echo"
    for status, method, form in [(302, "GET", {}), (303, "GET", {}), (307, "POST", {"k": "v"})]:
        url = f"{origins.http_localhost}/redirect?{urlencode({'to': echo, 'status': status})}"
        body = browser.post(url, data={"k": "v"}).json()
        assert (body["method"], body["form"]) == (method, form), status


def test_follow_continues_the_chain(origins: Origins) -> None:
    browser = make_browser(origins)
    set_cookies(browser, origins.http_localhost, "strict=1; SameSite=Strict",
                "lax=1; SameSite=Lax")
    back = origins.http_localhost + "/echo"
    # A POST on the other site answered with a redirect to localhost, as a provider does.
    answer = browser.post(f"{origins.http_ip}/redirect?{urlencode({'to': back})}",
                          allow_redirects=False)
    assert answer.is_redirect and answer.history == []
    final = browser.follow(answer)
    assert final.history == [answer] and sent(final) == {"lax"}


def test_form_action_is_enforced_on_the_target_and_on_redirects(origins: Origins) -> None:
    browser = make_browser(origins)
    elsewhere = origins.http_ip + "/echo"
    via_self = f"{origins.http_localhost}/redirect?{urlencode({'to': elsewhere})}"

    def form(action: str, csp: str) -> requests.Response:
        return browser.get(f"{origins.http_localhost}/form?"
                           + urlencode({"action": action, "csp": csp}))

    policy = "default-src 'self'; form-action 'self' https: http://localhost:*"
    assert browser.submit_form(form(origins.http_localhost + "/echo", policy)).status_code == 200
    with pytest.raises(NavigationBlocked, match="127.0.0.1"):
        browser.submit_form(form(elsewhere, policy))
    # A redirect after the form's own-origin target is checked too (as a sign-out redirected to
    # the provider is).
    with pytest.raises(NavigationBlocked, match="redirect"):
        browser.submit_form(form(via_self, policy))
    allowed = f"form-action 'self' http://127.0.0.1:{urlsplit(elsewhere).port}"
    assert browser.submit_form(form(via_self, allowed)).url == elsewhere
    with pytest.raises(NavigationBlocked):  # another port
        browser.submit_form(form(via_self, "form-action 'self' http://127.0.0.1:1"))
    assert browser.submit_form(form(via_self, "form-action 'self' http://127.0.0.1:*")).url == (
        elsewhere)
    assert browser.submit_form(form(via_self, "form-action 'self' http:")).url == elsewhere
    with pytest.raises(NavigationBlocked):
        browser.submit_form(form(origins.http_localhost + "/echo", "form-action 'none'"))
    # No form-action directive: anything goes.
    assert browser.submit_form(form(via_self, "default-src 'self'")).url == elsewhere


def test_profiles_are_checked() -> None:
    with pytest.raises(ValueError):
        Browser(profile="netscape")


def test_a_kept_alive_connection_closed_by_the_server_is_retried_once_on_a_new_one() -> None:
    """The server answers the first request with keep-alive, then closes that connection as
    the second request arrives on it (its keep-alive ran out): the browser sends the request
    again on a new connection, once, as browsers do. A server that closes every connection
    without answering still fails."""
    for answers_again in (True, False):
        connections = 0
        done = threading.Event()

        def serve(listener: socket.socket, done: threading.Event = done,
                  answers_again: bool = answers_again) -> None:
            nonlocal connections
            listener.settimeout(0.1)
            while not done.is_set():
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    continue
                with conn:
                    connections += 1
                    conn.recv(65536)
                    if connections > 1 and not answers_again:
                        continue  # closed without an answer
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                                 b"Connection: keep-alive\r\n\r\nok")
                    if connections == 1:
                        conn.recv(65536)  # the next request, on this connection: closed

        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(8)
            url = f"http://127.0.0.1:{listener.getsockname()[1]}"
            thread = threading.Thread(target=serve, args=(listener,), daemon=True)
            thread.start()
            browser = Browser()
            try:
                assert browser.get(url + "/", timeout=10).text == "ok"
                if answers_again:
                    assert browser.get(url + "/again", timeout=10).text == "ok"
                else:
                    with pytest.raises(requests.ConnectionError):
                        browser.get(url + "/again", timeout=10)
            finally:
                browser.close()
                done.set()
                thread.join(timeout=10)
        assert connections == 2, "the first connection, then one new one for the retry"


class _KeptAlive(http.server.BaseHTTPRequestHandler):
    """Answers every POST with its body, keeping the connection open (HTTP/1.1), as a
    production server does; the cookie lab's server closes every connection."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_one_browser_in_several_threads_gives_each_request_its_own_answer() -> None:
    """A browser used from several threads at once (as tabs are) against a server that keeps
    connections alive: each request has a connection to itself until its answer is read, and
    the connections are kept for the next requests."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _KeptAlive)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    browser = Browser()
    barrier = threading.Barrier(4)

    def one(number: int) -> tuple[int, str]:
        barrier.wait(timeout=30)
        return number, browser.post(url, data=f"n={number}").text

    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            for _ in range(3):
                assert sorted(pool.map(one, range(4))) == [(n, f"n={n}") for n in range(4)]
        kept = sum(len(idle) for idle in browser.transport._idle.values())
        assert 1 <= kept <= 4, f"{kept} connections kept alive: one per request at most"
    finally:
        browser.close()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_failures_are_requests_exceptions(origins: Origins) -> None:
    """What a browser raises is what `requests` would: tests catch `requests`' exceptions."""
    untrusting = Browser(verify=True)  # the system's CAs: not the test CA
    with pytest.raises(requests.exceptions.SSLError, match="verify failed"):
        untrusting.get(origins.https_localhost + "/echo")
    with socket.socket() as listener:  # accepts, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        with pytest.raises(requests.exceptions.ReadTimeout):
            Browser().get(url, timeout=0.2)
    with socket.socket() as closed:  # nothing listens: refused
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/"
    with pytest.raises(requests.ConnectionError):
        Browser().get(url)
    with pytest.raises(TypeError, match="stream"):
        Browser().get(origins.http_localhost + "/echo", stream=True)
