# Managed by the msal-webapp template: regenerate rather than edit (your code goes outside core/).
"""One 0600 file per key in a 0700 directory, shared by the worker processes of one machine.

- Writes go to a temporary file that replaces the entry atomically: a reader sees the old value
  or the new one, never half of one.
- A file's first line records when the entry was created (for the absolute expiry); its
  modification time is when it was last used (the sliding expiry): written, or renewed by a read
  at most every RENEW_AFTER_SECONDS.
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
from collections.abc import Callable, Hashable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import cachetools
import filelock

from . import (
    RENEW_AFTER_SECONDS,
    Entry,
    Expiry,
    KeyedLocks,
    Store,
    StoreError,
    versions_one_by_one,
)

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


# The first line of every entry file: the format, then the creation time in seconds.
HEADER = b"msal-webapp-store/1 "


class _Loaded(NamedTuple):
    entry: Entry
    created: float


class FileStore:
    blocking = True
    SWEEP_INTERVAL_SECONDS = 3600.0
    LOCK_STRIPES = 256
    LOCK_TIMEOUT_SECONDS = 30.0
    RECENT_ENTRIES = 1024  # entries kept in memory, each used only while its file is unchanged

    def __init__(self, directory: Path, expiry: Expiry,
                 clock: Callable[[], float] = time.time) -> None:
        """`clock`: wall-clock seconds; a file's modification time is set from it when the
        entry is written or renewed, and aged against it."""
        self._dir = private_directory(directory)
        self._dir_str = str(self._dir)
        self._lock_dir = private_directory(directory / "locks")
        self._expiry = expiry
        self._clock = clock
        self._locks = KeyedLocks()
        self._next_sweep = time.monotonic() + self.SWEEP_INTERVAL_SECONDS
        self._recent: cachetools.LRUCache[str, _Loaded] = cachetools.LRUCache(
            self.RECENT_ENTRIES)
        self._recent_guard = threading.Lock()

    def _digest(self, key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    def _path(self, key: str) -> str:
        # A str, not a Path: this runs twice per request, and building Path objects costs
        # more than the hash.
        return f"{self._dir_str}/{self._digest(key)}.json"

    def _stat(self, path: str) -> os.stat_result | None:
        try:
            return os.stat(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read {os.path.basename(path)}: {exc}") from exc

    @staticmethod
    def _version(info: os.stat_result) -> Hashable:
        # A replace makes a new inode; size and nanosecond mtime catch the rest. A renewal
        # (a new mtime) changes it too, which costs in-process copies one re-read.
        return (info.st_ino, info.st_size, info.st_mtime_ns)

    def _load(self, key: str, *, renew: bool = True) -> _Loaded | None:
        """The live entry: from memory while its file is unchanged (one stat), else read;
        `renew`: renew its sliding expiry if that is due (a read, not a write about to
        replace the file)."""
        path = self._path(key)
        info = self._stat(path)
        now = self._clock()
        if info is None or info.st_mtime + self._expiry.sliding_seconds <= now:
            return None  # absent, or unused for too long; the sweep removes it
        with self._recent_guard:
            loaded = self._recent.get(key)
        if loaded is None or loaded.entry.version != self._version(info):
            loaded = self._read(path)
            if loaded is None:
                return None
            with self._recent_guard:
                self._recent[key] = loaded
        used = info.st_mtime
        if now >= self._expiry.deadline(loaded.created, used):
            return None  # past its absolute limit
        if renew and now - used >= RENEW_AFTER_SECONDS:
            self._renew(path, now)
        return loaded

    def _renew(self, path: str, now: float) -> None:
        """Renew the sliding expiry: the file's modification time is its last use."""
        try:
            os.utime(path, (now, now))
        except OSError:
            # Not fatal (read-only directory...): the entry expires a little earlier.
            log.debug("could not renew %s", os.path.basename(path), exc_info=True)

    def version(self, key: str) -> Hashable | None:
        loaded = self._load(key)
        return loaded.entry.version if loaded else None

    def get(self, key: str) -> Entry | None:
        loaded = self._load(key)
        return loaded.entry if loaded else None

    def _read(self, path: str) -> _Loaded | None:
        try:
            with open(path, "rb") as handle:
                info = os.fstat(handle.fileno())  # the version of what is read, not a newer file
                data = handle.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read {os.path.basename(path)}: {exc}") from exc
        version = self._version(info)
        header, _, body = data.partition(b"\n")
        try:
            if not header.startswith(HEADER):
                raise ValueError("no header")
            created = float(header[len(HEADER):])
            return _Loaded(Entry(body.decode("utf-8"), version), created)
        except (ValueError, UnicodeDecodeError):
            # Unreadable: the layer above finds it corrupt and deletes it.
            return _Loaded(Entry("", version), info.st_mtime)

    def versions_of(self, reads: Sequence[tuple[Store, str]]) -> list[Hashable | None]:
        return versions_one_by_one(reads)

    def set(self, key: str, value: str) -> None:
        path = self._path(key)
        # An entry that exists (and has not expired) keeps its creation time.
        try:
            existing = self._load(key, renew=False)
        except StoreError:
            existing = None
        created = existing.created if existing else self._clock()
        try:
            fd, tmp = tempfile.mkstemp(dir=self._dir, prefix=".tmp-")  # created 0600
        except OSError as exc:
            raise StoreError(f"cannot write {os.path.basename(path)}: {exc}") from exc
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(HEADER + repr(created).encode() + b"\n" + value.encode("utf-8"))
                handle.flush()
                # File systems stamp writes with a coarse clock (a few ms), and a replaced
                # file's inode number can come back: a precise mtime (the store's clock, a
                # float good to a quarter of a microsecond) keeps two quick writes of the same
                # size apart in `version`. It is also the entry's last use.
                now = int(self._clock() * 1_000_000_000)
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

    def ready(self) -> None:
        """A byte written to a new file in the directory, which is then removed: what `set`
        needs (the directory there and writable, an inode and some space to spare), without
        writing an entry."""
        try:
            fd, tmp = tempfile.mkstemp(dir=self._dir, prefix=".ready-")
            try:
                os.write(fd, b"\n")
            finally:
                os.close(fd)
                os.unlink(tmp)
        except OSError as exc:
            raise StoreError(f"cannot write in {self._dir}: {exc}") from exc

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
                if (path.suffix == ".json" and age > self._expiry.sliding_seconds) or (
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
