"""Two instances of the app, each under the production server in processes of its own
(tests/app_server.py `production_server`) on its own port, sharing one store.

One browser is one user across both: cookies of localhost go to every port of localhost, as
behind a load balancer that sends each request to either instance. The tests check that
- a sign-in through one instance serves the other, and a sign-out through one ends it in the
  other (no tokens left there, in the store or in an instance's in-process copy);
- requests of one user split across both instances refresh an expired token once in all;
- the store's server going away gives pages (503 or a sign-in), never a 500, and its return
  gives the same browser its pages again, without restarting anything.

The store is the project's own shared backend (redis or sql), reached through a TCP proxy
(tests/tcp_proxy.py) that a test can cut; otherwise the filesystem one, which the processes of
one machine share (it has no server to lose: the outage test is skipped). Each pair of instances
runs with the first-level cache (TOKEN_CACHE_L1) on, then off. The instances start once per
pair; each test has its own user and browsers.
"""

from __future__ import annotations

import base64
import contextlib
import json
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from {{ cookiecutter.package_name }}.config import DEFAULTS
from {{ cookiecutter.package_name }}.core.services import build_store
from {{ cookiecutter.package_name }}.core.settings import Settings, load_settings
from {{ cookiecutter.package_name }}.core.token_cache import AccountCaches
from {{ cookiecutter.package_name }}.core.web import session_cookie

from devprovider import StandIn, TestUser
from tests.app_server import PRODUCTION_SERVER, PROJECT, production_server
from tests.browser import Browser
from tests.conftest import (
    CLIENT_ID,
    AppUnderTest,
    app_environment,
    page_of,
    server_process_environment,
    user_apis,
)
from tests.devprovider_fixtures import make_http_session
from tests.processes import start, stop
from tests.servers import base_url_of, listening_socket
{% if cookiecutter.cache_backend == "sql" %}
from tests.services import REDIS_URL, RedisNamespace, SqlDatabase, unique_name
{% else %}
from tests.services import REDIS_URL, RedisNamespace
{% endif %}
from tests.tcp_proxy import TcpProxy
from tests.test_store_faults import sign_out
from tests.test_web_flow import (
    ALICE,
    BOB,
    CAROL,
    account_id,
    assert_error_page,
    at_provider,
    cookie,
    expire_access_tokens_in,
    visit,
)

SHARED_BACKENDS = ("redis", "sql")
# The project's own shared backend, else the filesystem one (shared by the processes of one
# machine), so that every project checks its instances across processes.
BACKEND = (DEFAULTS.token_cache_backend if DEFAULTS.token_cache_backend in SHARED_BACKENDS
           else "filesystem")
CONCURRENT = 20  # requests at once, half through each instance
READY_SECONDS = 60.0


# ------------------------------------------------------------------------------ the store
@dataclass
class Backend:
    """The store both instances share: the settings that name it and, for a server, the proxy
    the instances reach it through."""

    env: dict[str, str]
    proxy: TcpProxy | None = None


def via(url: str, proxy: TcpProxy) -> str:
    """`url` with its host and port replaced by the proxy's (user, path and query kept)."""
    parts = urlsplit(url)
    user = parts.netloc.rpartition("@")[0]
    return parts._replace(netloc=f"{user + '@' if user else ''}{proxy.host}:{proxy.port}"
                          ).geturl()


def target_of(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


@contextlib.contextmanager
def shared_backend(name: str, folder: Path) -> Iterator[Backend]:
    if name == "filesystem":
        yield Backend({"TOKEN_CACHE_BACKEND": "filesystem", "TOKEN_CACHE_DIR": str(folder)})
    elif name == "redis":
        with RedisNamespace("instances") as namespace, TcpProxy(
                target_of(REDIS_URL, 6379)) as proxy:
            yield Backend({"TOKEN_CACHE_BACKEND": "redis",
                           "TOKEN_CACHE_REDIS_URL": via(REDIS_URL, proxy),
                           # Its keys start with the namespace's prefix: deleted after.
                           "TOKEN_CACHE_PREFIX": namespace.prefix.rstrip(":")}, proxy)
{% if cookiecutter.cache_backend == "sql" %}
    elif name == "sql":
        # A schema of this test process on the PostgreSQL server (the URL's search_path),
        # migrated; dropped after.
        with SqlDatabase("postgresql") as url, TcpProxy(target_of(url, 5432)) as proxy:
            yield Backend({"TOKEN_CACHE_BACKEND": "sql", "TOKEN_CACHE_SQL_URL": via(url, proxy),
                           "TOKEN_CACHE_PREFIX": unique_name("instances")}, proxy)
{% endif %}
    else:
        raise AssertionError(f"no shared backend {name!r}")


# ------------------------------------------------------------------------------ the instances
@dataclass
class Instance:
    """One app instance: its production server's processes, its URL, its output."""

    app: AppUnderTest  # `services` is None: the app runs in another process
    process: subprocess.Popen[bytes]
    log: Path
    checked: int = 0  # how much of the log `new_output` has returned

    def output(self) -> str:
        return self.log.read_bytes().decode(errors="replace")

    def new_output(self) -> str:
        """What the server wrote since the last call."""
        data = self.log.read_bytes()[self.checked:]
        self.checked += len(data)
        return data.decode(errors="replace")


@dataclass
class Pair:
    a: Instance
    b: Instance
    standin: StandIn
    backend: Backend
    settings: Settings  # both instances' (they differ by REDIRECT_URI only)
    caches: AccountCaches  # the test's own, on the instances' shared store
    browsers: list[Browser] = field(default_factory=list)

    @property
    def instances(self) -> tuple[Instance, Instance]:
        return self.a, self.b

    def browser(self) -> Browser:
        """A new browser (one user), for both instances."""
        browser = self.a.app.browser()
        self.browsers.append(browser)
        return browser

    def assert_quiet(self) -> None:
        """No traceback (and no worker killed) in what the servers wrote since the last
        check: an expected failure of the store or the provider is a page and a log line."""
        outputs = {name: instance.new_output() for name, instance in zip(
            "AB", self.instances, strict=True)}  # both read before either is judged
        for name, output in outputs.items():
            assert "Traceback" not in output, f"instance {name}:\n{output}"
            assert "WORKER TIMEOUT" not in output, f"instance {name}:\n{output}"
            # A worker that did not stop when told to is killed by the master after its
            # graceful_timeout: "Worker (pid:...) was sent SIGKILL!".
            assert "was sent SIGKILL" not in output, f"instance {name}:\n{output}"

    def shown(self, page: requests.Response) -> str:
        """An unexpected page, for a failure message: its status and text, and what the
        servers wrote."""
        return (f"HTTP {page.status_code} at {page.url}:\n{page.text[:3000]}\n"
                f"instance a:\n{self.a.output()[-3000:]}\ninstance b:\n{self.b.output()[-3000:]}")

    def account(self, user: TestUser) -> str:
        return account_id(self.standin, self.settings, user)

    def cached(self, user: TestUser) -> str | None:
        entry = self.caches.store.get(self.caches.key(self.account(user)))
        return entry.value if entry else None

    def expire_access_tokens(self, user: TestUser) -> None:
        """In the shared store, while the instances run."""
        expire_access_tokens_in(self.caches, self.account(user))

    def api_page(self) -> str:
        """A page that calls the API consented at sign-in (any API when none is)."""
        name = self.settings.sign_in_api or next(iter(user_apis(self.settings.apis)), None)
        if name is None:
            pytest.skip("this app calls no API")
        return page_of(name)


@contextlib.contextmanager
def production_instance(listener: socket.socket, env: dict[str, str], standin: StandIn,
                        cert_files: tuple[str, str], ca_path: str, folder: Path,
                        name: str) -> Iterator[Instance]:
    """Serve the app with `env` under the production server, on `listener`, bound by the test
    (so the app's port, in its REDIRECT_URI, is known before it starts)."""
    fd = listener.fileno()
    command, server_env = production_server(fd, cert_files)
    log = folder / f"{name}.log"
    with log.open("wb") as out:  # a file, not a pipe: a full pipe would block the server
        # Its own process group: stopped as a whole, with a check that nothing is left.
        process = start(
            command, cwd=folder, pass_fds=[fd], stdout=out, stderr=subprocess.STDOUT,
            env={**env, **server_env, "PYTHONPATH": str(PROJECT),
                 **server_process_environment()})
    app = AppUnderTest(base_url=env["REDIRECT_URI"].removesuffix(DEFAULTS.redirect_path),
                       standin=standin, services=None,  # type: ignore[arg-type]
                       ca_path=ca_path, env=env)
    instance = Instance(app, process, log)
    try:
        yield instance
    finally:
        app.close_browsers()  # before the server stops: it waits for open connections
        # As Ctrl-C in a terminal: SIGINT to every process of the server (its workers also get
        # the master's SIGQUIT). Whatever is still running after that fails the test.
        stop(process, signal.SIGINT, whole_group=True)


def wait_until_serving(instance: Instance) -> None:
    """The socket listens already: a request waits in its backlog until the server is up."""
    session = make_http_session(instance.app.ca_path)
    deadline = time.monotonic() + READY_SECONDS
    with session:
        while True:
            if instance.process.poll() is not None:
                pytest.fail(f"{PRODUCTION_SERVER} stopped:\n{instance.output()}", pytrace=False)
            try:
                if session.get(instance.app.url("/"), timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass  # still starting: the next request waits in the backlog again
            if time.monotonic() > deadline:
                pytest.fail(f"{PRODUCTION_SERVER} not serving after {READY_SECONDS} s:\n"
                            f"{instance.output()}", pytrace=False)


@pytest.fixture(scope="module", params=["true", "false"], ids=["l1-on", "l1-off"])
def pair(request: pytest.FixtureRequest, tls_server_files: tuple[str, str],
         server_cert_files: tuple[str, str], ca_bundle_path: str,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """Two instances on one store, with TOKEN_CACHE_L1 on or off, and a stand-in of their own."""
    folder = tmp_path_factory.mktemp(f"instances-l1-{request.param}")
    with contextlib.ExitStack() as stack:
        standin = stack.enter_context(StandIn(*tls_server_files, reuse_keys=True))
        backend = stack.enter_context(shared_backend(BACKEND, folder / "store"))
        listeners = [listening_socket(), listening_socket()]
        for listener in listeners:
            stack.callback(listener.close)
        url_a, url_b = (base_url_of(s, server_cert_files, "localhost") for s in listeners)
        env_a = {**app_environment(standin, url_a, ca_bundle_path, folder,
                                   TOKEN_CACHE_L1=request.param), **backend.env}
        env_b = {**env_a, "REDIRECT_URI": url_b + DEFAULTS.redirect_path}
        # One app registration: one secret, both instances' redirect URIs.
        standin.register_client(CLIENT_ID, env_a["CLIENT_SECRET"], [
            env_a["REDIRECT_URI"], url_a + "/", env_b["REDIRECT_URI"], url_b + "/"])
        a, b = (stack.enter_context(production_instance(
                    listener, env, standin, server_cert_files, ca_bundle_path, folder, name))
                for listener, env, name in ((listeners[0], env_a, "a"),
                                            (listeners[1], env_b, "b")))
        for instance in (a, b):
            wait_until_serving(instance)
        settings = load_settings(env_a, DEFAULTS)
        assert settings.token_cache_l1 is (request.param == "true")
        caches = AccountCaches(build_store(settings, "token_caches"), settings.token_cache_prefix)
        served = Pair(a, b, standin, backend, settings, caches)
        yield served
    served.assert_quiet()  # the servers have stopped (SIGINT): how they did


@pytest.fixture
def instances(pair: Pair) -> Iterator[Pair]:
    """The pair, for one test: counts reset; afterwards its browsers closed and the servers'
    output of the test checked."""
    pair.assert_quiet()  # not this test's
    pair.standin.reset_counts()
    yield pair
    for browser in pair.browsers:
        browser.close()
    pair.browsers.clear()
    assert not pair.standin.errors, "stand-in errors:\n" + "\n".join(pair.standin.errors)
    pair.assert_quiet()


# ------------------------------------------------------------------------------ the tests
def test_a_sign_in_through_one_instance_serves_the_other_until_signed_out_through_it(
        instances: Pair) -> None:
    pair = instances
    a, b = pair.a.app, pair.b.app
    path = pair.api_page()
    browser = pair.browser()
    page = visit(a, browser, path, ALICE)  # signed in through A, at the API page
    assert page.status_code == 200 and ALICE.oid in page.text, pair.shown(page)

    # B serves it: no sign-in, and the access token A got, from the shared store (the only
    # grant is the code redeemed through A).
    page = browser.get(b.url(path))
    assert page.status_code == 200 and ALICE.oid in page.text, pair.shown(page)
    assert page.url == b.url(path) and pair.standin.authorize_calls == 1
    assert dict(pair.standin.token_grants) == {"authorization_code": 1}
    through_a, through_b = pair.standin.api_calls
    assert through_a["token"] == through_b["token"]
    # The same user on another device, through B: B has the account's tokens at hand (in its
    # in-process copy too, with TOKEN_CACHE_L1 on).
    device = pair.browser()
    assert visit(b, device, path, ALICE).status_code == 200
    assert ALICE.oid in device.get(b.url(path)).text
    assert pair.cached(ALICE)

    name = session_cookie(pair.settings).name
    before = cookie(browser, name)
    back = sign_out(a, browser)  # through A: then at the provider, or back (OIDC providers)
    assert back.status_code < 500 and (at_provider(a, back, "/logout") or back.url == a.url("/"))
    assert pair.cached(ALICE) is None  # the account's tokens are gone from the store

    pair.standin.reset_counts()
    assert ALICE.name not in browser.get(b.url("/")).text  # signed out in B as well
    # Even for the session cookie as it was before (another tab's, or a stolen copy): B's
    # in-process copy of that session does not outlive the store's entry.
    replay = pair.browser()
    replay.cookies.set(name, before, domain=urlsplit(b.base_url).hostname or "", path="/",
                       secure=b.mode == "https")
    assert ALICE.name not in replay.get(b.url("/")).text
    assert at_provider(b, browser.get(b.url(path)))  # its API page sends it to sign in
    # The other device's session lives on, but not the account's tokens: B does not serve
    # them from a copy of its own, it sends that browser to sign in as well.
    assert ALICE.name in device.get(b.url("/")).text
    assert at_provider(b, device.get(b.url(path)))
    assert sum(pair.standin.token_grants.values()) == 0, pair.standin.token_grants


def test_concurrent_requests_through_both_instances_refresh_an_expired_token_once(
        instances: Pair) -> None:
    pair = instances
    a, b = pair.a.app, pair.b.app
    path = pair.api_page()
    browser = pair.browser()
    visit(a, browser, path, BOB)
    assert BOB.oid in browser.get(b.url(path)).text  # both have used the tokens
    used = {call["token"] for call in pair.standin.api_calls}
    pair.expire_access_tokens(BOB)  # in the shared store, as time would
    pair.standin.reset_counts()

    together = threading.Barrier(CONCURRENT)

    def request(number: int) -> requests.Response:
        app = (a, b)[number % 2]
        together.wait(timeout=30)
        return browser.get(app.url(path))

    with ThreadPoolExecutor(max_workers=CONCURRENT) as pool:
        pages = list(pool.map(request, range(CONCURRENT)))
    assert [p.status_code for p in pages] == [200] * CONCURRENT, [p.url for p in pages]
    assert all(BOB.oid in p.text for p in pages)
    served_by = [urlsplit(p.url).netloc for p in pages]
    assert {served_by.count(urlsplit(app.base_url).netloc) for app in (a, b)} == {
        CONCURRENT // 2}
    assert dict(pair.standin.token_grants) == {"refresh_token": 1}, pair.standin.token_grants
    assert pair.standin.authorize_calls == 0
    # Every page sent the one refreshed token, none an expired one (an in-process copy that
    # missed the change in the store would still hold that).
    tokens = [call["token"] for call in pair.standin.api_calls]
    assert len(tokens) == CONCURRENT and len(set(tokens)) == 1 and not set(tokens) & used


GROUPS = dict((DEFAULTS.authorization or {}).get("groups") or {})


@pytest.mark.skipif(not GROUPS, reason="the app was generated without groups")
def test_an_overage_users_groups_are_asked_of_graph_once_across_both_instances(
        instances: Pair) -> None:
    """A user with too many groups for the ID token, on a page that needs a group, through
    both instances at once: one Microsoft Graph call in all (the store's lock on the account's
    groups entry), every page decided by it."""
    pair = instances
    a, b = pair.a.app, pair.b.app
    name, gid = next(iter(GROUPS.items()))
    app_only = pair.settings.groups_overage_token == "app"
    if app_only:  # the groups read with the app's own token: its application permissions
        pair.standin.grant_app_permissions(CLIENT_ID, "https://graph.microsoft.com",
                                           ["User.Read.All", "GroupMember.Read.All"])
    user = pair.standin.add_user(TestUser(
        "olive@contoso.test", "Olive Overage", "0117e000-0000-4000-8000-0000000011e0",
        groups=(gid, *(str(uuid.uuid4()) for _ in range(230)))))
    if not app_only:  # consented to the Graph permission the groups are read with
        pair.standin.grant_consent(user.username, CLIENT_ID,
                                   list(pair.settings.groups_overage_scopes))
    browser = pair.browser()
    visit(a, browser, "/login", user)
    pair.standin.reset_counts()
    together = threading.Barrier(CONCURRENT)

    def request(number: int) -> requests.Response:
        app = (a, b)[number % 2]
        together.wait(timeout=30)
        return browser.get(app.url(f"/groups/{name}"))

    with ThreadPoolExecutor(max_workers=CONCURRENT) as pool:
        pages = list(pool.map(request, range(CONCURRENT)))
    assert [p.status_code for p in pages] == [200] * CONCURRENT, [p.text[:200] for p in pages]
    operation = "/users/{id}" if app_only else "/me"
    assert pair.standin.graph_calls[f"POST {operation}/checkMemberGroups"] == 1


def id_token_sid(cache: str | None) -> str:
    """The `sid` of the ID token in an account's token cache (MSAL's JSON)."""
    (entry,) = json.loads(cache or "{}")["IdToken"].values()
    payload = entry["secret"].split(".")[1]
    sid = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sid"]
    assert isinstance(sid, str) and sid
    return sid


def test_a_front_channel_sign_out_through_one_instance_ends_the_sessions_in_both(
        instances: Pair) -> None:
    """The provider's front-channel logout reaches one instance (behind a load balancer, the
    registered URL is either's): the sessions of that sid end in both, in-process copies
    included, and the account's tokens go when its last session does."""
    pair = instances
    a, b = pair.a.app, pair.b.app
    user = pair.standin.add_user(TestUser(
        "sam@contoso.test", "Sam Single-Sign-Out", "05105105-0000-4000-8000-000000000510"))
    name = session_cookie(pair.settings).name
    first = pair.browser()
    visit(a, first, "/login", user)  # through A: its own provider session (sid)
    first_sid = id_token_sid(pair.cached(user))
    assert user.name in first.get(b.url("/")).text  # B has read the session (and copied it)
    second = pair.browser()
    visit(b, second, "/login", user)  # through B: another provider session
    assert id_token_sid(pair.cached(user)) != first_sid

    def front_channel(app: AppUnderTest, sid: str) -> requests.Response:
        # As the provider's iframe: a GET with the sid only (Entra sends no iss), no cookie.
        with make_http_session(app.ca_path) as http:
            return http.get(app.url(DEFAULTS.front_channel_logout_path), params={"sid": sid},
                            allow_redirects=False, timeout=30)

    answer = front_channel(b, first_sid)
    assert answer.status_code == 200 and not answer.headers.get("Set-Cookie")
    held = cookie(first, name)
    for app in (a, b):
        assert user.name not in first.get(app.url("/")).text
        replay = pair.browser()
        replay.cookies.set(name, held, domain=urlsplit(app.base_url).hostname or "", path="/",
                           secure=app.mode == "https")
        assert user.name not in replay.get(app.url("/")).text
        assert user.name in second.get(app.url("/")).text  # the other sid's session lives on
    assert pair.cached(user)  # which still uses the account's tokens

    second_sid = id_token_sid(pair.cached(user))
    assert front_channel(a, second_sid).status_code == 200
    assert pair.cached(user) is None  # the account's last session: its tokens are gone
    for app in (a, b):
        assert user.name not in second.get(app.url("/")).text


@pytest.mark.skipif(BACKEND == "filesystem", reason="the filesystem backend has no server to "
                    "lose (a project generated with the redis or sql backend tests this)")
def test_the_store_going_away_gives_pages_and_its_return_the_same_sessions_back(
        instances: Pair) -> None:
    pair = instances
    proxy = pair.backend.proxy
    assert proxy is not None
    a, b = pair.a.app, pair.b.app
    path = pair.api_page()
    browser = pair.browser()
    visit(a, browser, path, CAROL)
    assert CAROL.oid in browser.get(b.url(path)).text
    pair.assert_quiet()

    try:
        proxy.cut()
        for app in (a, b):
            page = browser.get(app.url(path))
            if not at_provider(app, page):  # a sign-in page, or a page that says so
                assert_error_page(page, "session storage", status=503)
            home = browser.get(app.url("/"))
            assert home.status_code in (200, 503), home.text
            assert CAROL.name not in home.text
        pair.assert_quiet()  # the store's errors are logged, not raised
    finally:
        proxy.restore()

    # The entries are still on the server behind the proxy: the same browser, the same pages,
    # without signing in again and without restarting an instance.
    pair.standin.reset_counts()
    for app in (a, b):
        page = browser.get(app.url(path))
        assert page.status_code == 200 and CAROL.oid in page.text, page.text
        assert page.url == app.url(path)
    assert pair.standin.authorize_calls == 0
