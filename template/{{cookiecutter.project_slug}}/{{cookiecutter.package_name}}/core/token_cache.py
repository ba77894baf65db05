# Managed by the msal-webapp template: regenerate rather than edit (your code goes outside core/).
"""One serialized MSAL token cache per signed-in account, in a pluggable key-value store.

Why per account: one cache shared by all users makes every lookup scan every user's entries and
every write rewrite all of them; one small blob per account stays flat as users grow.

Safety rules, whatever the store:
- the key is derived from MSAL's `home_account_id` (plus a prefix naming the app);
- after loading, the blob must contain that account and no other, or it is treated as corrupt;
- a store that fails reads as empty (the user signs in again), never as someone else's data;
- a per-account lock makes concurrent requests of one user refresh a token once, not once each
  (with rotating refresh tokens, parallel refreshes waste grants and can race each other).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import cachetools
import filelock
import msal

log = logging.getLogger(__name__)


class CacheStore(Protocol):
    """A key-value store for cache blobs. Implementations may raise on I/O failure."""

    def get(self, key: str) -> str | None: ...
    def set(self, key: str, value: str) -> None: ...
    def delete(self, key: str) -> None: ...
    def lock(self, key: str) -> contextlib.AbstractContextManager[object]: ...


class _KeyedLocks:
    """One threading.Lock per key, dropped when no request holds or waits for it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: weakref.WeakValueDictionary[str, threading.Lock] = (
            weakref.WeakValueDictionary()
        )

    def get(self, key: str) -> threading.Lock:
        with self._guard:
            lock = self._locks.get(key)
            if lock is None:
                lock = threading.Lock()
                self._locks[key] = lock
            return lock


class MemoryStore:
    """Bounded in-process store: least recently used entries go first, entries expire."""

    def __init__(self, max_entries: int, ttl_seconds: int,
                 timer: Callable[[], float] = time.monotonic) -> None:
        self._data: cachetools.TTLCache[str, str] = cachetools.TTLCache(
            max_entries, ttl_seconds, timer=timer)
        self._guard = threading.Lock()  # cachetools caches are not thread-safe
        self._locks = _KeyedLocks()

    def get(self, key: str) -> str | None:
        with self._guard:
            return self._data.get(key)

    def set(self, key: str, value: str) -> None:
        with self._guard:
            self._data[key] = value

    def delete(self, key: str) -> None:
        with self._guard:
            self._data.pop(key, None)

    def lock(self, key: str) -> contextlib.AbstractContextManager[object]:
        return self._locks.get(key)


class FileStore:
    """One 0600 file per key in a 0700 directory; atomic replace on write; file locks.

    The file lock also serialises processes (several workers on one machine); the thread lock in
    front of it keeps threads of one process from contending on the file system. Lock files are
    striped (256 of them, by key hash) so they stay few: a lock file cannot be deleted safely
    while another process may be waiting on it.
    """

    SWEEP_INTERVAL_SECONDS = 3600.0
    LOCK_STRIPES = 256

    def __init__(self, directory: Path, ttl_seconds: int) -> None:
        self._dir = directory
        self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        (self._dir / "locks").mkdir(exist_ok=True, mode=0o700)
        self._ttl = ttl_seconds
        self._locks = _KeyedLocks()
        self._next_sweep = time.monotonic() + self.SWEEP_INTERVAL_SECONDS

    def _digest(self, key: str) -> str:
        # Hashing keeps arbitrary account ids out of file names (no traversal, no odd characters).
        return hashlib.sha256(key.encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self._dir / (self._digest(key) + ".json")

    def get(self, key: str) -> str | None:
        path = self._path(key)
        try:
            if path.stat().st_mtime + self._ttl < time.time():
                path.unlink(missing_ok=True)
                return None
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def set(self, key: str, value: str) -> None:
        path = self._path(key)
        fd, tmp = tempfile.mkstemp(dir=self._dir, prefix=".tmp-")  # mkstemp creates it 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(value)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)  # readers see the old blob or the new one, never half of one
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        if time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + self.SWEEP_INTERVAL_SECONDS
            self.sweep()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def sweep(self) -> int:
        """Delete expired entries of accounts that never came back (and files of dead writers).

        Runs from `set` at most once an hour; returns how many files it removed.
        """
        now, removed = time.time(), 0
        for path in self._dir.iterdir():
            try:
                age = now - path.stat().st_mtime
                if (path.suffix == ".json" and age > self._ttl) or (
                        path.name.startswith(".tmp-") and age > self.SWEEP_INTERVAL_SECONDS):
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue  # removed meanwhile by a reader or another process
        return removed

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[object]:
        stripe = int(self._digest(key)[:8], 16) % self.LOCK_STRIPES
        lock_file = self._dir / "locks" / f"{stripe:03d}.lock"
        with self._locks.get(key), filelock.FileLock(str(lock_file), mode=0o600):
            yield None


def _accounts_in(cache: msal.SerializableTokenCache) -> set[str]:
    return {a.get("home_account_id", "") for a in cache.search(cache.CredentialType.ACCOUNT)}


def _holds_tokens(cache: msal.SerializableTokenCache) -> bool:
    return any(True for _ in cache.search(cache.CredentialType.REFRESH_TOKEN)) or any(
        True for _ in cache.search(cache.CredentialType.ACCESS_TOKEN)
    )


class AccountCaches:
    """Opens, checks, saves and removes the per-account MSAL caches."""

    def __init__(self, store: CacheStore, prefix: str) -> None:
        self.store = store
        self.prefix = prefix

    def key(self, home_account_id: str) -> str:
        return f"{self.prefix}:token_cache:{home_account_id}"

    def _load(self, home_account_id: str) -> msal.SerializableTokenCache:
        cache = msal.SerializableTokenCache()
        key = self.key(home_account_id)
        try:
            blob = self.store.get(key)
        except Exception:  # a broken backend means "sign in again", not an error page
            log.warning("token cache read failed; the account counts as signed out",
                        exc_info=True)
            return cache
        if not blob:
            return cache
        try:
            cache.deserialize(blob)
        except (ValueError, TypeError):
            log.warning("token cache entry is not valid JSON; discarding it")
            return msal.SerializableTokenCache()
        if _accounts_in(cache) != {home_account_id}:
            # Never hand one user's tokens to another, whatever put them under this key.
            log.warning("token cache entry does not belong to its account; discarding it")
            self._delete_quietly(key)
            return msal.SerializableTokenCache()
        return cache

    def _save(self, home_account_id: str, cache: msal.SerializableTokenCache) -> None:
        key = self.key(home_account_id)
        try:
            if _holds_tokens(cache):
                self.store.set(key, cache.serialize())
            else:
                self.store.delete(key)
        except Exception:
            log.warning("token cache write failed; the user may have to sign in again",
                        exc_info=True)

    def _delete_quietly(self, key: str) -> None:
        try:
            self.store.delete(key)
        except Exception:
            log.warning("token cache delete failed", exc_info=True)

    @contextlib.contextmanager
    def open(self, home_account_id: str) -> Iterator[msal.SerializableTokenCache]:
        """Yield the account's cache under its lock; persist it afterwards only if it changed."""
        with self._lock(home_account_id):
            cache = self._load(home_account_id)
            yield cache
            if cache.has_state_changed:
                self._save(home_account_id, cache)

    def merge(self, home_account_id: str, fresh: msal.SerializableTokenCache) -> None:
        """Fold a cache filled by a code redemption into the account's stored cache.

        Entries with the same key (the account, its refresh token) are replaced by the fresh
        ones; access tokens for other resources obtained earlier are kept.
        """
        with self._lock(home_account_id):
            stored = self._load(home_account_id)
            merged: dict[str, dict[str, object]] = json.loads(stored.serialize() or "{}")
            for section, entries in json.loads(fresh.serialize()).items():
                merged.setdefault(section, {}).update(entries)
            result = msal.SerializableTokenCache()
            result.deserialize(json.dumps(merged))
            self._save(home_account_id, result)

    def remove(self, home_account_id: str) -> None:
        with self._lock(home_account_id):
            self._delete_quietly(self.key(home_account_id))

    @contextlib.contextmanager
    def _lock(self, home_account_id: str) -> Iterator[None]:
        try:
            lock = self.store.lock(self.key(home_account_id))
        except Exception:
            log.warning("token cache lock unavailable; continuing without it", exc_info=True)
            lock = contextlib.nullcontext()
        with lock:
            yield


def build_store(backend: str, directory: Path, max_entries: int, ttl_seconds: int) -> CacheStore:
    if backend == "filesystem":
        return FileStore(directory, ttl_seconds)
    return MemoryStore(max_entries, ttl_seconds)
