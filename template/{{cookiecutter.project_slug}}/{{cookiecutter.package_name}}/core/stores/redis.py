# Managed by the msal-webapp template: regenerate rather than edit (your code goes outside core/).
"""A Redis server shared by every worker process of every app instance.

- One hash per entry, under the key exactly as given (the layers above prefix it with the
  app's name, so several apps share a server): `value`, `version` (a random token, new on
  every write, so it never comes back after a delete and a new write), `created` and `used`
  (milliseconds by the store's clock).
- Each get, version, set or delete is one round trip (a Lua script, atomic on the server, or
  DEL), and so is `versions_of` for the entries of every Redis store of the process on the same
  server (they share one client): a signed-in page checks its session and its account's token
  cache in one script. (Such a script reads several keys: on a Redis Cluster they would have to
  share a hash slot; this store is for a single server or a primary with replicas.) A lock is
  one round trip to take the lease (plus one per poll while another holds it) and one to
  release it. After a server restart the scripts are loaded again, on their first use.
- Expiry is decided by the store's clock (wall-clock seconds, the services' clock), not by the
  server's, so that all instances and the tests' clocks agree; the key also gets PEXPIREAT at
  its deadline so that the server drops entries that are never read again. A read renews the
  sliding expiry only when the last use is RENEW_AFTER_SECONDS old: the read path writes at
  most once per entry per five minutes. A renewal keeps the version (the value is the same).
- Locks are a thread lock in front of a lease, the string key `<key>:lease` set with NX and a
  random token that expires after `lease_seconds`: a holder that dies frees it then, and only
  the holder's token deletes it. Waiting polls the lease with short growing sleeps; no
  connection is held while waiting or while the lease is held.
- The client gives up quickly when the server is gone (2 s to connect or to answer; one
  immediate retry on a connection error, such as a pooled connection reset, none on a
  timeout), so that a page fails fast with a StoreError rather than hang; it reconnects by
  itself when the server is back. Options in
  the URL's query string (`?socket_timeout=5`, `ssl_ca_certs=...`) override these.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Any, TypeVar, cast

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from . import (
    LEASE_SECONDS,
    LEASE_WAIT_SECONDS,
    RENEW_AFTER_SECONDS,
    Entry,
    Expiry,
    KeyedLocks,
    Store,
    StoreError,
    versions_together,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

CONNECT_TIMEOUT_SECONDS = 2.0
SOCKET_TIMEOUT_SECONDS = 2.0
# Sleeps between two attempts at a lease held by another request: short at first (most leases
# guard one token refresh), doubling up to one poll per 50 ms.
FIRST_POLL_SECONDS = 0.002
LONGEST_POLL_SECONDS = 0.05

# An entry whose fields are missing, or a key of another type, is absent (and `set` replaces
# it): otherwise one stray key would fail every request that reads it, for good.
# The deadline is Expiry.deadline, in milliseconds: min(used + sliding, created + absolute);
# an entry expires at its deadline (as in the other stores).
_SET = """
local now, sliding, absolute = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local created = now
local old = redis.pcall('HMGET', KEYS[1], 'created', 'used')
if old.err then
    redis.call('DEL', KEYS[1])
else
    local c, u = tonumber(old[1]), tonumber(old[2])
    if c and u and now < math.min(u + sliding, c + absolute) then created = c end
end
redis.call('HSET', KEYS[1], 'value', ARGV[1], 'version', ARGV[2],
           'created', string.format('%d', created), 'used', ARGV[3])
redis.call('PEXPIREAT', KEYS[1], string.format('%d', math.min(now + sliding, created + absolute)))
return 1
"""

# Reads any number of entries (a page's session and its account's token cache) in one round
# trip. ARGV: now, renew-after, then for each key its sliding and absolute lifetimes and what to
# return ('value': {version, value}, else {version}); 0 for an entry that is absent or expired.
# Renews an entry's sliding expiry when its last use is at least renew-after old.
_READ = """
local now, renew_after = tonumber(ARGV[1]), tonumber(ARGV[2])
local function read(key, sliding, absolute, want_value)
    local found
    if want_value then
        found = redis.pcall('HMGET', key, 'version', 'created', 'used', 'value')
    else
        found = redis.pcall('HMGET', key, 'version', 'created', 'used')
    end
    if found.err then return 0 end
    local version, created, used = found[1], tonumber(found[2]), tonumber(found[3])
    if not (version and created and used) then return 0 end
    if want_value and not found[4] then return 0 end
    if now >= math.min(used + sliding, created + absolute) then return 0 end
    if now - used >= renew_after then
        redis.call('HSET', key, 'used', ARGV[1])
        redis.call('PEXPIREAT', key,
                   string.format('%d', math.min(now + sliding, created + absolute)))
    end
    if want_value then return {version, found[4]} end
    return {version}
end
local out = {}
for i, key in ipairs(KEYS) do
    local at = 2 + (i - 1) * 3
    out[i] = read(key, tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2]), ARGV[at + 3] == 'value')
end
return out
"""

# Taking the lease again with the same token succeeds: when the client retries an attempt whose
# answer was lost, the lease it took is not mistaken for another request's.
_TAKE_LEASE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then return 1 end
return 0
"""

# Compare-and-delete: a lease that expired under a slow holder, and was taken since by another
# request, is not released by the first one.
_RELEASE_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


_clients: dict[str, redis.Redis] = {}
_clients_guard = threading.Lock()


def _client(url: str) -> redis.Redis:
    """One client (one connection pool) per server URL in a process, shared by the session
    and token-cache stores: a page reads both in one round trip, on one pooled connection."""
    with _clients_guard:
        client = _clients.get(url)
        if client is None:
            try:
                client = _clients[url] = redis.Redis.from_url(
                    url,
                    socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
                    socket_timeout=SOCKET_TIMEOUT_SECONDS,
                    # One immediate retry on a connection error: a pooled connection closed
                    # or reset meanwhile (a restart, a load balancer's idle timeout) is
                    # reopened without failing the request. None on a timeout, which would
                    # only double the wait for a server gone.
                    retry=Retry(NoBackoff(), 1, (redis.ConnectionError,)),
                    decode_responses=False,  # values are decoded here (see get)
                )
            except ValueError as exc:  # the message names the option, never the password
                raise StoreError(f"invalid Redis URL: {exc}") from None
        return client


class RedisStore:
    blocking = True

    def __init__(self, url: str, expiry: Expiry, clock: Callable[[], float] = time.time, *,
                 lease_seconds: float = LEASE_SECONDS,
                 lease_wait_seconds: float = LEASE_WAIT_SECONDS) -> None:
        """`url`: redis:// or rediss:// (TLS), with an ACL user and password if any, e.g.
        rediss://app:secret@cache.example:6380/0. `clock`: wall-clock seconds (the server
        purges an entry at its deadline by the server's own clock)."""
        self._client = _client(url)
        options = self._client.connection_pool.connection_kwargs
        self._password = str(options.get("password") or "")
        self._where = (options["path"] if "path" in options else
                       f"{options.get('host')}:{options.get('port')}/{options.get('db', 0)}")
        self._expiry = expiry
        self._clock = clock
        self._lease_ms = max(1, int(lease_seconds * 1000))
        self._lease_wait = lease_wait_seconds
        self._locks = KeyedLocks()
        self._set = self._client.register_script(_SET)
        self._read = self._client.register_script(_READ)
        self._take_lease = self._client.register_script(_TAKE_LEASE)
        self._release_lease = self._client.register_script(_RELEASE_LEASE)

    def _run(self, what: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except (redis.RedisError, OSError) as exc:
            message = str(exc)
            if self._password:  # redis-py does not quote it; make sure of it
                message = message.replace(self._password, "***")
            raise StoreError(f"Redis {what} failed at {self._where}: "
                             f"{type(exc).__name__}: {message}") from exc

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _lifetimes(self) -> list[int]:
        """The sliding and absolute lifetimes, in milliseconds, as the scripts take them."""
        return [self._expiry.sliding_seconds * 1000, self._expiry.absolute_seconds * 1000]

    def _read_many(self, reads: Sequence[tuple[RedisStore, str, str]]) -> list[Any]:
        """One round trip: (store, key, "value" or "version") -> [version, value] / [version]
        or 0, each entry aged by its own store's lifetimes."""
        args: list[int | str] = [self._now_ms(), RENEW_AFTER_SECONDS * 1000]
        for store, _, want in reads:
            args += [*store._lifetimes(), want]
        keys = [key for _, key, _ in reads]
        found: list[Any] = self._run("read", lambda: self._read(keys, args))
        return found

    def get(self, key: str) -> Entry | None:
        found = self._read_many([(self, key, "value")])[0]
        if not found:
            return None
        version, value = found[0].decode("ascii"), found[1]
        try:
            return Entry(value.decode("utf-8"), version)
        except UnicodeDecodeError:
            return Entry("", version)  # unreadable: the layer above discards it

    def version(self, key: str) -> Hashable | None:
        return self.versions_of([(self, key)])[0]

    def versions_of(self, reads: Sequence[tuple[Store, str]]) -> list[Hashable | None]:
        # Entries of the Redis stores on this store's server: one round trip for all of them.
        def read(mine: list[tuple[Store, str]]) -> list[Hashable | None]:
            found = self._read_many([(cast(RedisStore, store), key, "version")
                                     for store, key in mine])
            return [answer[0].decode("ascii") if answer else None for answer in found]

        return versions_together(
            reads, lambda store: isinstance(store, RedisStore) and store._client is self._client,
            read)

    def set(self, key: str, value: str) -> None:
        args: list[bytes | str | int] = [value.encode("utf-8"), secrets.token_hex(8),
                                         self._now_ms(), *self._lifetimes()]
        self._run("write", lambda: self._set([key], args))

    def delete(self, key: str) -> None:
        self._run("delete", lambda: self._client.delete(key))

    def ready(self) -> None:
        self._run("ping", self._client.ping)

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[object]:
        give_up = time.monotonic() + self._lease_wait
        # Threads of this process queue here, not by polling the server against each other.
        local = self._locks.get(key)
        if not local.acquire(timeout=max(0.0, self._lease_wait)):
            raise StoreError(f"a lock on a Redis entry was held for over {self._lease_wait} s "
                             "by another request of this process")
        try:
            lease, token = f"{key}:lease", secrets.token_hex(16)
            self._take(lease, token, give_up)
            try:
                yield None
            finally:
                self._give_back(lease, token)
        finally:
            local.release()

    def _take(self, lease: str, token: str, give_up: float) -> None:
        pause = FIRST_POLL_SECONDS
        while not self._run("lock", lambda: self._take_lease([lease], [token, self._lease_ms])):
            left = give_up - time.monotonic()
            if left <= 0:
                raise StoreError(f"a lease on a Redis entry was held for over "
                                 f"{self._lease_wait} s by another request")
            time.sleep(min(pause, left))
            pause = min(pause * 2, LONGEST_POLL_SECONDS)

    def _give_back(self, lease: str, token: str) -> None:
        # Not an error for the request: its work is done, and a lease that cannot be released
        # now expires by itself after lease_seconds.
        try:
            released = self._run("unlock", lambda: self._release_lease([lease], [token]))
        except StoreError as exc:
            log.warning("a Redis lease could not be released; it expires by itself: %s", exc)
            return
        if not released:
            log.warning("a Redis lease expired while its holder still worked (longer than "
                        "%g s); another request may have run alongside", self._lease_ms / 1000)
