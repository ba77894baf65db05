# Managed by the msal-webapp template: regenerate rather than edit (your code goes outside core/).
"""Bounded in-process store: least recently used entries go first, entries expire (see Expiry).

For one process only: with several worker processes each has its own sessions and caches.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from typing import NamedTuple

import cachetools

from . import RENEW_AFTER_SECONDS, Entry, Expiry, KeyedLocks, Store, versions_one_by_one


class _Stored(NamedTuple):
    value: str
    version: int  # a write counter, unique within the process
    created: float
    used: float  # last written, or renewed by a read


class MemoryStore:
    blocking = False  # a dict in this process

    def __init__(self, max_entries: int, expiry: Expiry,
                 timer: Callable[[], float] = time.monotonic) -> None:
        self._expiry = expiry
        self._timer = timer
        self._data: cachetools.TLRUCache[str, _Stored] = cachetools.TLRUCache(
            max_entries, lambda _key, stored, _now: expiry.deadline(stored.created, stored.used),
            timer=timer)
        self._guard = threading.Lock()  # cachetools caches are not thread-safe
        self._counter = itertools.count(1)
        self._locks = KeyedLocks()

    def _live(self, key: str) -> _Stored | None:
        with self._guard:
            found = self._data.get(key)
            if found is not None and self._timer() - found.used >= RENEW_AFTER_SECONDS:
                found = self._data[key] = found._replace(used=self._timer())
        return found

    def get(self, key: str) -> Entry | None:
        found = self._live(key)
        return Entry(found.value, found.version) if found else None

    def version(self, key: str) -> Hashable | None:
        found = self._live(key)
        return found.version if found else None

    def versions_of(self, reads: Sequence[tuple[Store, str]]) -> list[Hashable | None]:
        return versions_one_by_one(reads)

    def set(self, key: str, value: str) -> None:
        with self._guard:
            now = self._timer()
            old = self._data.get(key)
            self._data[key] = _Stored(value, next(self._counter),
                                      old.created if old else now, now)

    def delete(self, key: str) -> None:
        with self._guard:
            self._data.pop(key, None)

    def lock(self, key: str) -> contextlib.AbstractContextManager[object]:
        return self._locks.get(key)

    def ready(self) -> None:
        pass  # a dict in this process is always there
