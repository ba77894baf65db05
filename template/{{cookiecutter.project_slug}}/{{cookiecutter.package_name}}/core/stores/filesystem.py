# Managed by the msal-webapp template: regenerate rather than edit (your code goes outside core/).
"""One 0600 file per key in a 0700 directory, shared by the worker processes of one machine.

- Writes go to a temporary file that replaces the entry atomically: a reader sees the old value
  or the new one, never half of one.
- The directory is created (or tightened) to 0700 here, before anything else writes into it.
- File names are hashes of the keys: no account id or session id appears in a name, and no key
  can name a path outside the directory.
- Locks are a thread lock in front of a file lock (processes); lock files are striped, 256 of
  them by key hash, so they stay few: a lock file cannot be deleted safely while another process
  may be waiting on it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from pathlib import Path

import cachetools
import filelock

from . import Entry, StoreError
from .memory import KeyedLocks

log = logging.getLogger(__name__)


def private_directory(path: Path) -> Path:
    """Create `path` (and its parents) with the directory itself 0700, or tighten it to 0700."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        if stat.S_IMODE(path.stat().st_mode) != 0o700:
            path.chmod(0o700)
    except OSError as exc:
        raise StoreError(f"cannot create the private directory {path}: {exc}") from exc
    return path


class FileStore:
    blocking = True
    SWEEP_INTERVAL_SECONDS = 3600.0
    LOCK_STRIPES = 256
    LOCK_TIMEOUT_SECONDS = 30.0
    RECENT_ENTRIES = 1024  # entries kept in memory, each used only while its file is unchanged

    def __init__(self, directory: Path, ttl_seconds: int,
                 clock: Callable[[], float] = time.time) -> None:
        """`clock`: wall-clock seconds, against which the files' modification times (set by the
        system when they are written) are aged."""
        self._dir = private_directory(directory)
        self._dir_str = str(self._dir)
        self._lock_dir = private_directory(directory / "locks")
        self._ttl = ttl_seconds
        self._clock = clock
        self._locks = KeyedLocks()
        self._next_sweep = time.monotonic() + self.SWEEP_INTERVAL_SECONDS
        self._recent: cachetools.LRUCache[str, Entry] = cachetools.LRUCache(self.RECENT_ENTRIES)
        self._recent_guard = threading.Lock()

    def _digest(self, key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    def _path(self, key: str) -> str:
        # A str, not a Path: this runs twice per request, and building Path objects costs
        # more than the hash.
        return f"{self._dir_str}/{self._digest(key)}.json"

    def _live_stat(self, path: str) -> os.stat_result | None:
        try:
            info = os.stat(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read {os.path.basename(path)}: {exc}") from exc
        if info.st_mtime + self._ttl < self._clock():
            return None  # expired; the sweep removes it
        return info

    @staticmethod
    def _version(info: os.stat_result) -> Hashable:
        # A replace makes a new inode; size and nanosecond mtime catch the rest.
        return (info.st_ino, info.st_size, info.st_mtime_ns)

    def version(self, key: str) -> Hashable | None:
        info = self._live_stat(self._path(key))
        return self._version(info) if info else None

    def get(self, key: str) -> Entry | None:
        path = self._path(key)
        # A stat is cheaper than opening and reading: an entry read before and unchanged since
        # (same inode, size and mtime) is served from memory.
        info = self._live_stat(path)
        if info is None:
            return None
        with self._recent_guard:
            recent = self._recent.get(key)
        if recent is not None and recent.version == self._version(info):
            return recent
        entry = self._read(path)
        if entry is not None:
            with self._recent_guard:
                self._recent[key] = entry
        return entry

    def _read(self, path: str) -> Entry | None:
        try:
            with open(path, "rb") as handle:
                info = os.fstat(handle.fileno())  # the version of what is read, not a newer file
                if info.st_mtime + self._ttl < self._clock():
                    return None
                data = handle.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read {os.path.basename(path)}: {exc}") from exc
        try:
            return Entry(data.decode("utf-8"), self._version(info))
        except UnicodeDecodeError:
            return Entry("", self._version(info))  # unreadable: the layer above discards it

    def set(self, key: str, value: str) -> None:
        path = self._path(key)
        try:
            fd, tmp = tempfile.mkstemp(dir=self._dir, prefix=".tmp-")  # created 0600
        except OSError as exc:
            raise StoreError(f"cannot write {os.path.basename(path)}: {exc}") from exc
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(value.encode("utf-8"))
                handle.flush()
                # File systems stamp writes with a coarse clock (a few ms), and a replaced
                # file's inode number can come back: a precise mtime keeps two quick writes of
                # the same size apart in `version`.
                now = time.time_ns()
                os.utime(handle.fileno(), ns=(now, now))
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise StoreError(f"cannot write {os.path.basename(path)}: {exc}") from exc
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        if time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + self.SWEEP_INTERVAL_SECONDS
            self.sweep()

    def delete(self, key: str) -> None:
        try:
            Path(self._path(key)).unlink(missing_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot delete an entry: {exc}") from exc

    def sweep(self) -> int:
        """Delete expired entries (accounts and sessions that never came back) and leftover
        temporary files of writers that died. Runs from `set` at most once an hour."""
        now, removed = self._clock(), 0
        try:
            paths = list(self._dir.iterdir())
        except OSError:
            log.warning("store sweep could not list %s", self._dir, exc_info=True)
            return 0
        for path in paths:
            try:
                age = now - path.stat().st_mtime
                if (path.suffix == ".json" and age > self._ttl) or (
                        path.name.startswith(".tmp-") and age > self.SWEEP_INTERVAL_SECONDS):
                    path.unlink()
                    removed += 1
            except OSError:
                continue  # removed meanwhile by a reader or another process, or not ours
        return removed

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[object]:
        stripe = int(self._digest(key)[:8], 16) % self.LOCK_STRIPES
        lock_file = self._lock_dir / f"{stripe:03d}.lock"
        with self._locks.get(key):
            file_lock = filelock.FileLock(str(lock_file), mode=0o600,
                                          timeout=self.LOCK_TIMEOUT_SECONDS)
            try:
                file_lock.acquire()
            except (OSError, filelock.Timeout) as exc:
                raise StoreError(f"cannot lock {lock_file.name}: {exc}") from exc
            try:
                yield None
            finally:
                file_lock.release()
