# Managed by the msal-webapp template: regenerate rather than edit (your code goes outside core/).
"""Bounded in-process store: least recently used entries go first, entries expire.

For one process only: with several worker processes each has its own sessions and caches.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
import weakref
from collections.abc import Callable, Hashable

import cachetools

from . import Entry


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


class MemoryStore:
    blocking = False  # a dict in this process
    def __init__(self, max_entries: int, ttl_seconds: int,
                 timer: Callable[[], float] = time.monotonic) -> None:
        # The value is kept with its version: a write counter, unique within the process.
        self._data: cachetools.TTLCache[str, tuple[str, int]] = cachetools.TTLCache(
            max_entries, ttl_seconds, timer=timer)
        self._guard = threading.Lock()  # cachetools caches are not thread-safe
        self._counter = itertools.count(1)
        self._locks = KeyedLocks()

    def get(self, key: str) -> Entry | None:
        with self._guard:
            found = self._data.get(key)
        return Entry(found[0], found[1]) if found else None

    def version(self, key: str) -> Hashable | None:
        with self._guard:
            found = self._data.get(key)
        return found[1] if found else None

    def set(self, key: str, value: str) -> None:
        with self._guard:
            self._data[key] = (value, next(self._counter))

    def delete(self, key: str) -> None:
        with self._guard:
            self._data.pop(key, None)

    def lock(self, key: str) -> contextlib.AbstractContextManager[object]:
        return self._locks.get(key)
