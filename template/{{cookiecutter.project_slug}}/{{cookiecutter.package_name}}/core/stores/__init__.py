# Managed by the msal-webapp template: regenerate rather than edit (your code goes outside core/).
"""Key-value stores behind both the web sessions and the per-account token caches.

One module per backend, built by one factory (`build_store`, in core/services.py: the stores
know nothing of the app's settings), so that a new backend is one module plus its dependency. A
store only moves strings: what the strings mean, and whether they are valid, is decided by the
layers above it (core/sessions.py, core/token_cache.py).

Every backend reports its I/O failures as `StoreError`, and only those: the layers above turn a
`StoreError` into a clear page or a fresh sign-in, while a bug still surfaces as one.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import weakref
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import cachetools

Purpose = Literal["sessions", "token_caches"]

# A read renews an entry's sliding expiry at most this often: the read path of a shared store
# writes at most once per entry per five minutes, not on every request.
RENEW_AFTER_SECONDS = 300
# A lease (`Store.lock` of a shared store) outlives the longest provider call it guards (two
# calls of OUTBOUND_DEADLINE_SECONDS when a refused credential is retried), so that it does not
# expire under its holder; a holder that dies frees it after this.
LEASE_SECONDS = 30.0
# How long a request waits for another one's lease before going on without it (StoreError).
LEASE_WAIT_SECONDS = 30.0


@dataclass(frozen=True)
class Expiry:
    """When a stored entry expires: unused for `sliding_seconds`, or `absolute_seconds` after
    it was created (first written since it was absent), whichever comes first. Overwriting an
    entry renews its sliding expiry and keeps its creation time; so does a read, at most every
    RENEW_AFTER_SECONDS (and never past the absolute limit)."""

    sliding_seconds: int
    absolute_seconds: int

    def deadline(self, created: float, used: float) -> float:
        """When an entry created at `created` and last used (written or renewed) at `used`
        expires."""
        return min(used + self.sliding_seconds, created + self.absolute_seconds)


class StoreError(Exception):
    """The store could not be read or written (disk full, read-only, server gone...)."""


@dataclass(frozen=True)
class Entry:
    value: str
    # Changes whenever the stored value may have changed (a file's inode, size and modification
    # time; a counter in memory): an in-process copy of the entry is valid while it is the same.
    version: Hashable


@dataclass(frozen=True)
class KnownVersion:
    """The version of the entry at `key`, as a read at monotonic time `at` found it: a page
    that read it along with its session uses it for the rest of the request instead of asking
    again (see Sessions.load and AccountCaches.peek)."""

    key: str
    version: Hashable | None
    at: float

    # Older than this, it is asked again: a User kept beyond its request (a background job)
    # must not go on trusting its request's reading.
    MAX_AGE_SECONDS = 1.0

    def for_key(self, key: str, now: float) -> bool:
        return key == self.key and 0 <= now - self.at < self.MAX_AGE_SECONDS


class Store(Protocol):
    # Whether its calls wait on I/O (a file, a server): an async adapter then makes them from
    # a worker thread, never on its event loop. The memory store's do not.
    blocking: bool

    def get(self, key: str) -> Entry | None:
        """The entry, or None if absent or expired."""

    def version(self, key: str) -> Hashable | None:
        """The entry's current version, cheaper than `get` (None if absent or expired).

        It changes on every `set` and never comes back: an entry deleted and written again
        has a new one (in-process copies rely on it). A read that renews the expiry keeps it,
        except in the filesystem store, whose version includes the file's mtime: there a
        renewal costs in-process copies one re-read."""

    def versions_of(self, reads: Sequence[tuple[Store, str]]) -> list[Hashable | None]:
        """The versions of several entries, `reads` being (store, key) pairs (this store's
        or others'), as `version` gives them one by one. A shared store reads every entry of
        a store on its own server in one round trip (a page checks its session and its
        account's token cache together); the others are asked one by one."""

    def set(self, key: str, value: str) -> None: ...

    def delete(self, key: str) -> None: ...

    def lock(self, key: str) -> contextlib.AbstractContextManager[object]:
        """An exclusive lock on `key`, across the threads, processes (and, for a shared store,
        the app instances) sharing the store: for a shared store, a lease of LEASE_SECONDS that
        holds no connection while it is held. Taking it may raise StoreError, also after
        waiting LEASE_WAIT_SECONDS for another holder."""

    def ready(self) -> None:
        """Raise StoreError unless the store can be used now: one cheap round trip (a ping, a
        `SELECT 1`, a file created and removed), bounded by the store's own timeouts. The
        readiness probe (core/health.py) asks it."""


def versions_one_by_one(reads: Sequence[tuple[Store, str]]) -> list[Hashable | None]:
    """`Store.versions_of` for stores with nothing to gain from reading together."""
    return [store.version(key) for store, key in reads]


def versions_together(reads: Sequence[tuple[Store, str]], shares: Callable[[Store], bool],
                      read: Callable[[list[tuple[Store, str]]], list[Hashable | None]]
                      ) -> list[Hashable | None]:
    """`Store.versions_of` for a shared store: the entries of the stores that `shares` (those
    on its own server) by one call of `read`, which returns their versions in order; the
    others one by one."""
    together = {i for i, (store, _) in enumerate(reads) if shares(store)}
    versions: list[Hashable | None] = [None] * len(reads)
    if together:
        order = sorted(together)
        for i, version in zip(order, read([reads[i] for i in order]), strict=True):
            versions[i] = version
    for i, (store, key) in enumerate(reads):
        if i not in together:
            versions[i] = store.version(key)
    return versions


@contextlib.contextmanager
def lock_or_go_on(store: Store, key: str, log: logging.Logger, what: str) -> Iterator[None]:
    """`store.lock(key)`, or, if the store cannot lock (a read-only directory, a server gone),
    go on without it, logging so: a lost race costs one extra call to the provider or Graph,
    a refused lock would cost the page. (Threads of one process are kept apart by the caller's
    own in-process lock.)"""
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(store.lock(key))
        except StoreError as exc:
            log.warning("%s lock unavailable; continuing without it: %s", what, exc)
        yield


class KeyedLocks:
    """One threading.Lock per key, dropped when no request holds or waits for it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: weakref.WeakValueDictionary[str, threading.Lock] = (
            weakref.WeakValueDictionary())

    def get(self, key: str) -> threading.Lock:
        with self._guard:
            lock = self._locks.get(key)
            if lock is None:
                lock = threading.Lock()
                self._locks[key] = lock
            return lock


class CorruptEntries:
    """Deletes the entries a layer above found corrupt (unparsable, or of the wrong shape), and
    logs each key once: not on every request while an entry cannot even be deleted (a read-only
    store). `what` names the kind of entry in the log, which goes to the layer's own logger."""

    def __init__(self, log: logging.Logger, what: str) -> None:
        self._log = log
        self._what = what
        self._reported: cachetools.TTLCache[str, bool] = cachetools.TTLCache(1024, 3600)
        self._guard = threading.Lock()  # cachetools caches are not thread-safe

    def discard(self, store: Store, key: str) -> None:
        with self._guard:
            first = key not in self._reported
            self._reported[key] = True
        if first:
            self._log.warning("%s entry is corrupt; deleting it (the user signs in again)",
                              self._what)
        try:
            store.delete(key)
        except StoreError:
            self._log.debug("corrupt %s entry could not be deleted", self._what, exc_info=True)
