"""The Redis store (core/stores/redis.py) on a real Redis server: the stored format, versions,
expiry by the store's clock, leases across instances and threads, faults, passwords and TLS.

Each test works under a key prefix of its own (tests.services.RedisNamespace), deleted after
it. Faults are played by a TCP relay in front of the server (tests here: Relay), so that the
shared server itself is never stopped.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import shutil
import socket
import struct
import subprocess
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
import redis
import trustme

from {{ cookiecutter.package_name }}.core.stores import (
    RENEW_AFTER_SECONDS,
    Entry,
    Expiry,
    StoreError,
)
from {{ cookiecutter.package_name }}.core.stores.redis import RedisStore

from tests.conftest import AppUnderTest
from tests.processes import start, stop
from tests.services import REDIS_URL, RedisNamespace, unique_name
from tests.test_web_flow import ALICE, sign_in_api_page, visit

EXPIRY = Expiry(sliding_seconds=1800, absolute_seconds=7200)
SLIDING_MS, ABSOLUTE_MS = EXPIRY.sliding_seconds * 1000, EXPIRY.absolute_seconds * 1000


@pytest.fixture
def ns() -> Iterator[RedisNamespace]:
    with RedisNamespace("redis_store") as namespace:
        yield namespace


class Clock:
    """The services' clock, moved by the test. It starts at the real time (the server purges a
    key at its deadline by its own clock), on a whole second so that milliseconds are exact."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def ms(seconds: float) -> int:
    return int(seconds * 1000)


def server_url(*, host: str | None = None, port: int | None = None, user: str | None = None,
               password: str = "", query: str | None = None) -> str:
    """REDIS_URL, with another address, user or query string."""
    parts = urlsplit(REDIS_URL)
    userinfo = parts.netloc.rpartition("@")[0]
    if user is not None:
        userinfo = f"{quote(user, safe='')}:{quote(password, safe='')}"
    address = f"{host or parts.hostname}:{port or parts.port or 6379}"
    netloc = f"{userinfo}@{address}" if userinfo else address
    return urlunsplit((parts.scheme, netloc, parts.path,
                       parts.query if query is None else query, ""))


def stored(ns: RedisNamespace, key: str) -> dict[str, bytes]:
    """The entry's hash as the server holds it."""
    fields = cast(dict[bytes, bytes], ns.client.hgetall(key))
    return {name.decode(): value for name, value in fields.items()}


class Link:
    """One relayed connection. `fate`: None (relayed), "reset" (its next request is answered by
    a TCP reset, not forwarded: an idle connection a NAT or load balancer forgot) or "lose" (its
    next request reaches the server, then the connection is reset before the answer)."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client, self.upstream = client, upstream
        self.fate: str | None = None
        self.mute = False  # the server's answers are dropped
        self.answered = threading.Event()  # an answer arrived while muted

    def reset(self) -> None:
        with contextlib.suppress(OSError):
            self.client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close()

    def close(self) -> None:
        for end in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()


class Relay:
    """A TCP relay in front of the test server. It counts the bytes each way, and plays faults:
    a server gone (connections cut, new ones closed at once) and connections that break on
    their next use (Link.fate)."""

    def __init__(self) -> None:
        parts = urlsplit(REDIS_URL)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 6379)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.gone = False
        self.to_server = self.to_client = 0
        self.links: list[Link] = []
        self._guard = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self) -> str:
        return server_url(host="127.0.0.1", port=self.port)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            if self.gone:
                client.close()
                continue
            link = Link(client, socket.create_connection(self.upstream))
            with self._guard:
                self.links.append(link)
            threading.Thread(target=self._requests, args=(link,), daemon=True).start()
            threading.Thread(target=self._answers, args=(link,), daemon=True).start()

    def _requests(self, link: Link) -> None:
        with contextlib.suppress(OSError):
            while data := link.client.recv(65536):
                # Read once per request: the test may doom the link as soon as the server has
                # answered this request, before this thread has got past it; a second look
                # would then take this request for the doomed one (and wait for an answer
                # that was relayed already, with the next request left unread).
                fate = link.fate
                if fate == "reset":
                    break
                if fate == "lose":
                    link.mute = True
                with self._guard:
                    self.to_server += len(data)
                link.upstream.sendall(data)
                if fate == "lose":
                    link.answered.wait(10)  # the server has run it (its answer is dropped)
                    break
        link.reset()

    def _answers(self, link: Link) -> None:
        with contextlib.suppress(OSError):
            while data := link.upstream.recv(65536):
                if link.mute:
                    link.answered.set()
                    continue
                with self._guard:
                    self.to_client += len(data)
                link.client.sendall(data)
        link.close()

    def doom(self, fate: str) -> None:
        """The open connections break on their next request (see Link)."""
        with self._guard:
            for link in self.links:
                link.fate = fate

    def cut(self) -> None:
        """The server goes away: open connections are closed, new ones closed at once."""
        self.gone = True
        with self._guard:
            links, self.links = self.links, []
        for link in links:
            link.close()

    def close(self) -> None:
        self.cut()
        self.listener.close()


@pytest.fixture
def relay() -> Iterator[Relay]:
    relay = Relay()
    yield relay
    relay.close()


def test_versions_change_on_every_write_never_return_and_are_shared(ns: RedisNamespace
                                                                    ) -> None:
    key = f"{ns.prefix}token_cache:a.t"
    one = RedisStore(ns.url, EXPIRY)
    two = RedisStore(ns.url, EXPIRY)  # another app instance
    assert one.version(key) is None and one.get(key) is None
    seen = []
    for value in ("first", "first", "other", "first"):  # the same value again: a new version
        one.set(key, value)
        version = one.version(key)
        assert version is not None and version not in seen
        seen.append(version)
        assert one.get(key) == Entry(value, version) == two.get(key)
        assert two.version(key) == version
    two.set(key, "from two")
    assert one.get(key) == Entry("from two", two.version(key))
    seen.append(two.version(key))
    one.delete(key)
    assert two.version(key) is None and two.get(key) is None and one.get(key) is None
    one.delete(key)  # deleting what is absent is fine
    two.set(key, "first")  # written again after a delete: a version never seen before
    assert one.version(key) not in (None, *seen)
    for _ in range(30):
        one.set(key, "same")
        seen.append(one.version(key))
    assert len(set(seen)) == len(seen)


def test_entries_are_one_hash_under_the_key_as_given(ns: RedisNamespace, relay: Relay) -> None:
    clock = Clock()
    store = RedisStore(relay.url(), EXPIRY, clock)
    key = f"{ns.prefix}token_cache:a.t"
    store.set(key, "un café, s'il vous plaît €")
    fields = stored(ns, key)
    assert fields.keys() == {"value", "version", "created", "used"}
    assert fields["value"] == "un café, s'il vous plaît €".encode()
    assert int(fields["created"]) == int(fields["used"]) == ms(clock.now)
    assert [k.decode() for k in ns.client.scan_iter(match=f"{ns.prefix}*")] == [key]
    # The server drops the key at its deadline, as the store computes it.
    assert ns.client.pexpiretime(key) == ms(clock.now) + SLIDING_MS
    assert 0 < ns.client.pttl(key) <= SLIDING_MS
    # `version` does not transfer the value; `get` does, once per call.
    store.set(key, "x" * 1_000_000)
    before = relay.to_client
    version = store.version(key)
    assert version is not None and relay.to_client - before < 200
    before = relay.to_client
    assert store.get(key) == Entry("x" * 1_000_000, version)
    assert 1_000_000 < relay.to_client - before < 1_000_200
    # What the store did not write is absent (a key of another type, a hash without its fields)
    # and `set` replaces it; bytes that are not UTF-8 are an empty value, which the layer above
    # finds corrupt and deletes.
    ns.client.set(f"{ns.prefix}string", "not a hash")
    ns.client.hset(f"{ns.prefix}partial", mapping={"value": "v", "version": "no times"})
    for stray in (f"{ns.prefix}string", f"{ns.prefix}partial"):
        assert store.get(stray) is None and store.version(stray) is None
        store.set(stray, "mine")
        entry = store.get(stray)
        assert entry is not None and entry.value == "mine"
    ns.client.hset(key, "value", b"\xff\xfe")
    assert store.get(key) == Entry("", version)


def test_sliding_expiry_renews_on_reads_at_most_every_renew_after(ns: RedisNamespace) -> None:
    clock = Clock()
    store, other = RedisStore(ns.url, EXPIRY, clock), RedisStore(ns.url, EXPIRY, clock)
    key = f"{ns.prefix}session:s1"
    store.set(key, "v")
    version, written = store.version(key), clock.now

    def used() -> int:
        return int(stored(ns, key)["used"])

    clock.advance(RENEW_AFTER_SECONDS - 1)
    assert store.get(key) == Entry("v", version) and other.version(key) == version
    assert used() == ms(written)  # read, not written
    assert ns.client.pexpiretime(key) == ms(written) + SLIDING_MS
    clock.advance(1)
    assert store.version(key) == version  # a renewal keeps the version
    assert used() == ms(clock.now)
    assert ns.client.pexpiretime(key) == ms(clock.now) + SLIDING_MS
    renewed = clock.now
    assert other.get(key) == Entry("v", version)
    assert used() == ms(renewed)  # just renewed: not again
    clock.advance(EXPIRY.sliding_seconds - 1)  # a second before it expires
    assert other.get(key) == Entry("v", version)
    assert used() == ms(clock.now)
    clock.advance(EXPIRY.sliding_seconds)  # then unused for the whole sliding time
    assert store.get(key) is None and store.version(key) is None and other.get(key) is None
    # The store's clock decides: the server still holds the key until its own deadline.
    assert ns.client.exists(key)
    store.set(key, "new")  # an expired entry's creation time is not kept
    assert store.version(key) not in (None, version)
    assert int(stored(ns, key)["created"]) == used() == ms(clock.now)


def test_absolute_expiry_is_not_extended_by_use_or_overwrite(ns: RedisNamespace) -> None:
    clock = Clock()
    store = RedisStore(ns.url, EXPIRY, clock)
    key = f"{ns.prefix}token_cache:a.t"
    store.set(key, "v0")
    created = clock.now
    for step in range(1, 12):  # used every 10 minutes, overwritten every other time
        clock.advance(600)
        if step % 2:
            store.set(key, f"v{step}")
        else:
            assert store.get(key) is not None
        assert int(stored(ns, key)["created"]) == ms(created)
        deadline = min(ms(clock.now) + SLIDING_MS, ms(created) + ABSOLUTE_MS)
        assert ns.client.pexpiretime(key) == deadline <= ms(created) + ABSOLUTE_MS
    clock.advance(EXPIRY.absolute_seconds - 11 * 600 - 1)
    assert store.get(key) is not None
    clock.advance(1)  # used a second ago, but created the absolute limit ago
    assert store.get(key) is None and store.version(key) is None
    store.set(key, "again")
    assert int(stored(ns, key)["created"]) == ms(clock.now)


def connections_named(ns: RedisNamespace, name: str) -> int:
    return sum(1 for client in ns.client.client_list() if client["name"] == name)


def test_the_lease_is_exclusive_across_instances_and_threads(ns: RedisNamespace,
                                                             relay: Relay) -> None:
    key = f"{ns.prefix}token_cache:a.t"
    name = unique_name("lease")
    # Through the relay: its byte counts show who polls the server.
    one = RedisStore(server_url(host="127.0.0.1", port=relay.port, query=f"client_name={name}"),
                     EXPIRY, lease_seconds=10, lease_wait_seconds=10)
    two = RedisStore(ns.url, EXPIRY, lease_seconds=10, lease_wait_seconds=10)
    one.set(key, "0")
    active, most, guard = [0], [0], threading.Lock()

    def increment(store: RedisStore) -> None:
        for _ in range(5):
            with store.lock(key):
                with guard:
                    active[0] += 1
                    most[0] = max(most[0], active[0])
                entry = store.get(key)
                assert entry is not None
                time.sleep(0.002)  # a lost update, were two inside at once
                store.set(key, str(int(entry.value) + 1))
                with guard:
                    active[0] -= 1

    threads = [threading.Thread(target=increment, args=(store,)) for store in (one, two) * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    entry = one.get(key)
    assert entry is not None and entry.value == "20" and most[0] == 1
    assert not ns.client.exists(f"{key}:lease")  # each holder released it
    # While a lease is held: another key is not blocked, the lease expires on its own, the
    # threads of the holder's process wait on a thread lock (no polling of the server) and no
    # connection is held, however many leases.
    entered, release = threading.Event(), threading.Event()

    def hold() -> None:
        with one.lock(key):
            entered.set()
            release.wait(30)  # set below

    holder = threading.Thread(target=hold)
    holder.start()
    assert entered.wait(5)
    assert 0 < ns.client.pttl(f"{key}:lease") <= 10_000
    started = time.monotonic()
    with one.lock(f"{ns.prefix}other"), two.lock(f"{ns.prefix}other2"):
        pass
    assert time.monotonic() - started < 5  # not held up until the lease's release (below)
    waiter = threading.Thread(target=lambda: one.lock(key).__enter__())
    before = relay.to_server
    waiter.start()
    waiter.join(0.3)
    assert waiter.is_alive() and relay.to_server - before < 200  # not one poll
    # Another instance polls the lease, with growing sleeps: about 25 polls in 1 s (fewer on
    # a loaded machine; a fixed 2 ms poll would make hundreds).
    polling = RedisStore(relay.url(), EXPIRY, lease_seconds=10, lease_wait_seconds=1)
    polling.version(key)  # connected
    before = relay.to_server
    with polling.lock(f"{key[:-1]}u"):  # a free key of the same length: one poll, one release
        pass
    one_poll = (relay.to_server - before) / 2
    before = relay.to_server
    with pytest.raises(StoreError):
        polling.lock(key).__enter__()
    assert 5 <= (relay.to_server - before) / one_poll <= 40
    with contextlib.ExitStack() as held:
        for n in range(20):
            held.enter_context(one.lock(f"{ns.prefix}many{n}"))
        assert connections_named(ns, name) <= 2  # the holder's thread and this one
    release.set()
    holder.join(5)
    waiter.join(5)  # it now holds the lease, and its thread ended: a holder that died


def test_a_dead_holders_lease_frees_itself_and_no_one_else_releases_it(
        ns: RedisNamespace, caplog: pytest.LogCaptureFixture) -> None:
    key = f"{ns.prefix}token_cache:a.t"
    lease = f"{key}:lease"
    stalled = RedisStore(ns.url, EXPIRY, lease_seconds=0.3)
    held = stalled.lock(key)
    taken = time.monotonic()
    held.__enter__()  # and its process stalls, or dies: it does not release the lease
    dead_token = ns.client.get(lease)
    assert dead_token and 0 < ns.client.pttl(lease) <= 300
    other = RedisStore(ns.url, EXPIRY, lease_seconds=5, lease_wait_seconds=10)
    with other.lock(key):
        # Once the lease expired (0.3 s after it was taken), long before the wait's end.
        assert 0.29 <= time.monotonic() - taken < 10
        token = ns.client.get(lease)
        assert token not in (None, dead_token)
        # The stalled holder wakes up and leaves its lock: the lease is another's now, and it
        # stays (the holder is told, in the log).
        with caplog.at_level(logging.WARNING):
            held.__exit__(None, None, None)
        assert ns.client.get(lease) == token
        assert "expired while its holder still worked" in caplog.text
    assert not ns.client.exists(lease)


def test_waiting_for_a_lease_is_bounded(ns: RedisNamespace) -> None:
    key = f"{ns.prefix}token_cache:a.t"
    holder = RedisStore(ns.url, EXPIRY, lease_seconds=10)
    impatient = RedisStore(ns.url, EXPIRY, lease_seconds=10, lease_wait_seconds=0.2)

    def waited_for_nothing() -> float:
        started = time.monotonic()
        with pytest.raises(StoreError, match="held for over 0.2 s"):
            impatient.lock(key).__enter__()
        return time.monotonic() - started

    # Given up after the wait (0.2 s), not when the holder's lease (10 s) ends.
    with holder.lock(key):  # another instance holds the lease
        assert 0.2 <= waited_for_nothing() < 5
    waits: list[float] = []
    with impatient.lock(key):  # another thread of this process holds it
        thread = threading.Thread(target=lambda: waits.append(waited_for_nothing()))
        thread.start()
        thread.join(5)
    assert len(waits) == 1 and 0.2 <= waits[0] < 5
    with impatient.lock(key):  # and neither kept it
        pass


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def operations(store: RedisStore, key: str) -> dict[str, Callable[[], object]]:
    return {
        "get": lambda: store.get(key),
        "version": lambda: store.version(key),
        "set": lambda: store.set(key, "value"),
        "delete": lambda: store.delete(key),
        "lock": lambda: store.lock(key).__enter__(),
    }


def test_a_server_that_is_gone_or_hung_fails_fast_with_store_errors() -> None:
    password = secrets.token_hex(8)
    misspelt = f"https://app:{password}@cache.example/0"
    with pytest.raises(StoreError, match="invalid Redis URL") as invalid:
        RedisStore(misspelt, EXPIRY)
    assert password not in "".join(traceback.format_exception(invalid.value))
    port = closed_port()
    store = RedisStore(f"redis://127.0.0.1:{port}/0", EXPIRY)
    for name, operation in operations(store, "app:token_cache:a.t").items():
        started = time.monotonic()
        with pytest.raises(StoreError, match=f"127.0.0.1:{port}") as info:
            operation()
        # Refused at once (and once more): well within one connect timeout (2 s).
        assert time.monotonic() - started < 1.5, name
        assert isinstance(info.value.__cause__, redis.ConnectionError)
    # A server that accepts and never answers: the socket timeout (2 s), once (no retry on
    # it: one connection, and less than two timeouts).
    with socket.create_server(("127.0.0.1", 0)) as hung:
        store = RedisStore(f"redis://127.0.0.1:{hung.getsockname()[1]}/0", EXPIRY)
        started = time.monotonic()
        with pytest.raises(StoreError, match="Timeout"):
            store.get("app:token_cache:a.t")
        assert 1.9 < time.monotonic() - started < 12
        hung.setblocking(False)
        connections = 0
        with contextlib.suppress(BlockingIOError):
            while True:
                hung.accept()[0].close()
                connections += 1
        assert connections == 1


def test_the_store_reconnects_when_the_server_comes_back(ns: RedisNamespace,
                                                         relay: Relay) -> None:
    key = f"{ns.prefix}token_cache:a.t"
    store = RedisStore(relay.url(), EXPIRY)
    store.set(key, "before")
    version = store.version(key)
    relay.cut()
    for name, operation in operations(store, key).items():
        started = time.monotonic()
        with pytest.raises(StoreError):
            operation()
        assert time.monotonic() - started < 1.5, name  # within one connect timeout (2 s)
    relay.gone = False
    # The same store object, not restarted; and the server lost its scripts, as a restarted
    # one does.
    ns.client.script_flush()
    assert store.get(key) == Entry("before", version)
    store.set(key, "after")
    with store.lock(key):
        pass
    # A restart between two requests (the pooled connection is closed) costs no error; nor
    # does a connection that a NAT or a load balancer forgot while it was idle (reset when
    # used: the client tries once more, on a new connection).
    relay.cut()
    relay.gone = False
    entry = store.get(key)
    assert entry is not None and entry.value == "after"
    relay.doom("reset")
    assert store.get(key) == entry
    # When the answer is what was lost, the retry must not undo the call: a lease taken by the
    # attempt whose answer was lost is ours, not another request's to wait for.
    patient = RedisStore(relay.url(), EXPIRY, lease_seconds=30, lease_wait_seconds=10)
    patient.set(key, "before the lock")
    relay.doom("lose")
    started = time.monotonic()
    with patient.lock(key):
        assert time.monotonic() - started < 5  # did not wait on its own lease (30 s)
    assert not ns.client.exists(f"{key}:lease")


def test_a_password_in_the_url_works_and_is_never_shown(ns: RedisNamespace) -> None:
    user = unique_name("msal_webapp_test")
    password = f"p@ss:w/rd%{secrets.token_hex(8)}"  # quoted in the URL
    try:
        ns.client.execute_command("ACL", "SETUSER", user, "on", f">{password}",
                                  f"~{ns.prefix}*", "+@all")
    except redis.ResponseError as exc:
        pytest.skip(f"the test server's user may not create ACL users: {exc}")
    try:
        store = RedisStore(server_url(user=user, password=password), EXPIRY)
        key = f"{ns.prefix}token_cache:a.t"
        with store.lock(key):
            store.set(key, "secret value")
        assert store.get(key) == Entry("secret value", store.version(key))
        with pytest.raises(StoreError, match="NoPermissionError"):
            store.get(f"elsewhere:{key}")  # outside the keys this user may touch
        store.delete(key)
        assert store.get(key) is None
        wrong = f"{password}-wrong"
        bad = RedisStore(server_url(user=user, password=wrong), EXPIRY)
        for name, operation in operations(bad, key).items():
            with pytest.raises(StoreError, match="AuthenticationError") as info:
                operation()
            shown = "".join(traceback.format_exception(info.value))  # as a log shows it
            for secret in (wrong, password, quote(wrong, safe="")):
                assert secret not in shown, name
    finally:
        ns.client.execute_command("ACL", "DELUSER", user)


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, str, str]]:
    """A private Redis over TLS only, with a password: (port, CA file, password)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no redis-server on PATH for the TLS test")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    cert_file, key_file, ca_file = (tmp_path / n for n in ("cert.pem", "key.pem", "ca.pem"))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    port, password = closed_port(), secrets.token_hex(8)
    server = start(
        [binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--tls-cert-file", str(cert_file), "--tls-key-file", str(key_file),
         "--tls-auth-clients", "no", "--requirepass", password, "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30  # up in milliseconds, unless the machine is busy
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            time.sleep(0.02)
        yield port, str(ca_file), password
    finally:
        stop(server)


def test_tls_with_a_password(tls_server: tuple[int, str, str]) -> None:
    port, ca_file, password = tls_server
    url = f"rediss://:{password}@localhost:{port}/0"
    store = RedisStore(f"{url}?ssl_ca_certs={quote(ca_file)}", EXPIRY)
    store.set("app:token_cache:a.t", "over TLS")
    entry = store.get("app:token_cache:a.t")
    assert entry is not None and entry.value == "over TLS"
    with store.lock("app:token_cache:a.t"):
        pass
    # The server's certificate is checked: without its CA, it is refused.
    with pytest.raises(StoreError, match="certificate verify failed") as info:
        RedisStore(url, EXPIRY).get("app:token_cache:a.t")
    assert password not in "".join(traceback.format_exception(info.value))
    # And a plain connection to the TLS port fails fast too.
    started = time.monotonic()
    with pytest.raises(StoreError):
        RedisStore(f"redis://:{password}@localhost:{port}/0", EXPIRY).get("k")
    assert time.monotonic() - started < 3.5


@contextlib.contextmanager
def commands_seen(prefix: str) -> Iterator[list[str]]:
    """The commands sent to the Redis server with a key under `prefix` while the block runs, as
    its MONITOR feed shows them: what reached the server, whatever the client did."""
    seen: list[str] = []
    done = f"{prefix}end-of-block"
    listener = redis.Redis.from_url(REDIS_URL, socket_timeout=10)
    with listener.monitor() as monitor:  # MONITOR is on once this returns

        def listen() -> None:
            for event in monitor.listen():
                command = str(event["command"])
                if done in command:
                    return
                # Not the commands a script runs on the server (client_type "lua").
                if prefix in command and event.get("client_type") != "lua":
                    seen.append(command)

        thread = threading.Thread(target=listen, daemon=True)
        thread.start()
        yield seen
        # The feed is in the server's order of execution: this comes after the block's own.
        redis.Redis.from_url(REDIS_URL).echo(done)
        thread.join(10)
        assert not thread.is_alive(), "MONITOR's feed stopped"
    listener.close()


@pytest.mark.parametrize("l1", ["true", "false"])
def test_a_signed_in_page_asks_redis_once_with_the_first_level_cache(
        make_app: Callable[..., AppUnderTest], l1: str) -> None:
    """With TOKEN_CACHE_L1 on, a signed-in page that calls an API reads Redis once: one script
    checks its session's version and its account's token cache's against the in-process
    copies. Off, it reads both entries (two scripts)."""
    app = make_app(TOKEN_CACHE_L1=l1)
    path = sign_in_api_page(app)
    browser = app.browser()
    visit(app, browser, path, ALICE)
    assert browser.get(app.url(path)).status_code == 200  # the copies are made from here on
    with commands_seen(app.env["TOKEN_CACHE_PREFIX"]) as seen:
        page = browser.get(app.url(path))
    assert page.status_code == 200 and ALICE.username in page.text, page.text  # the API answered
    assert len(seen) == (1 if l1 == "true" else 2), seen
    assert all(command.startswith("EVALSHA ") for command in seen), seen
