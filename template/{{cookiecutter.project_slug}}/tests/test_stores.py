"""The key-value stores (core/stores/): private atomic files, versions, locks, bounds, faults."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.core.stores import Entry, Expiry, Store, StoreError
from {{ cookiecutter.package_name }}.core.stores.encrypted import EncryptedStore, new_key, parse_keys
from {{ cookiecutter.package_name }}.core.stores.filesystem import FileStore
from {{ cookiecutter.package_name }}.core.stores.memory import MemoryStore

KEY = "app:token_cache:a.t"

HOUR = Expiry(3600, 3600)  # sliding and absolute


class StoreProxy:
    """A real store behind a proxy that records every call, and fails those named in `fail`
    with a StoreError (as a full disk or a lost server would)."""

    def __init__(self, inner: Store, fail: Iterable[str] = ()) -> None:
        self.inner = inner
        self.blocking = inner.blocking
        self.fail = set(fail)
        self.calls: list[tuple[str, str]] = []  # (method, key)
        self.values: list[str] = []  # every value passed to `set`

    def _call(self, method: str, key: str) -> None:
        self.calls.append((method, key))
        if method in self.fail:
            raise StoreError(f"{method} refused (test fault)")

    def methods(self) -> list[str]:
        return [method for method, _ in self.calls]

    def get(self, key: str) -> Entry | None:
        self._call("get", key)
        return self.inner.get(key)

    def version(self, key: str) -> Hashable | None:
        self._call("version", key)
        return self.inner.version(key)

    def versions_of(self, reads: Sequence[tuple[Store, str]]) -> list[Hashable | None]:
        # One by one, so that each shows (and can fail) as a `version` call.
        return [store.version(key) for store, key in reads]

    def set(self, key: str, value: str) -> None:
        self._call("set", key)
        self.values.append(value)
        self.inner.set(key, value)

    def delete(self, key: str) -> None:
        self._call("delete", key)
        self.inner.delete(key)

    def lock(self, key: str) -> contextlib.AbstractContextManager[object]:
        self._call("lock", key)
        return self.inner.lock(key)

    def ready(self) -> None:
        self._call("ready", "")
        self.inner.ready()


@dataclass
class Backend:
    name: str
    store: Store
    expire: Callable[[], None]  # makes every entry written so far older than its lifetime
    other: Callable[[], Store]  # the store as another worker process sees it


@pytest.fixture(params=["memory", "filesystem"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "memory":
        now = [0.0]

        def advance() -> None:
            now[0] += 61

        memory = MemoryStore(100, Expiry(60, 60), timer=lambda: now[0])
        # One process: other requests share the very same store.
        return Backend("memory", memory, advance, lambda: memory)

    def age_files() -> None:
        past = time.time() - 120
        for path in tmp_path.glob("*.json"):
            os.utime(path, (past, past))

    return Backend("filesystem", FileStore(tmp_path, Expiry(60, 60)), age_files,
                   lambda: FileStore(tmp_path, Expiry(60, 60)))


def test_directories_are_made_private_even_if_they_already_existed(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    (directory / "locks").mkdir(parents=True)
    for path in (directory, directory / "locks"):
        path.chmod(0o755)  # as a deployment script or a umask of 022 leaves them
    FileStore(directory, HOUR)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((directory / "locks").stat().st_mode) == 0o700
    fresh = FileStore(tmp_path / "new" / "cache", HOUR)
    fresh.set(KEY, "x")
    assert stat.S_IMODE((tmp_path / "new" / "cache").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "new" / "cache" / "locks").stat().st_mode) == 0o700


def test_files_are_private_named_by_hash_and_replaced_atomically(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "cache", HOUR)
    store.set(KEY, "x" * 10_000)
    files = [p for p in (tmp_path / "cache").iterdir() if p.suffix == ".json"]
    assert len(files) == 1
    assert "a.t" not in files[0].name and "token_cache" not in files[0].name
    assert len(files[0].stem) == 64 and int(files[0].stem, 16) >= 0  # a sha256 in hex
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    # Readers racing a writer see the old or the new value, never a torn one.
    seen: set[int] = set()
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            entry = store.get(KEY)
            seen.add(len(entry.value) if entry else -1)

    reader = threading.Thread(target=read)
    reader.start()
    for size in (20_000, 10_000) * 50:
        store.set(KEY, "y" * size)
    stop.set()
    reader.join()
    assert seen <= {10_000, 20_000}
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.startswith(".tmp-")]


def test_version_changes_on_every_write_and_is_none_once_gone(backend: Backend) -> None:
    store = backend.store
    assert store.version(KEY) is None and store.get(KEY) is None
    store.set(KEY, "first")
    first = store.version(KEY)
    entry = store.get(KEY)
    assert first is not None and entry == Entry("first", first)
    store.set(KEY, "other")  # same size, written at once: still a new version
    second = store.version(KEY)
    assert second not in (None, first)
    if backend.name == "filesystem":
        assert isinstance(first, tuple) and isinstance(second, tuple)
        assert first[0] != second[0]  # the inode: the file was replaced, not rewritten
    store.set(KEY, "other")  # even the same value again
    assert store.version(KEY) not in (None, first, second)
    store.delete(KEY)
    assert store.version(KEY) is None and store.get(KEY) is None
    store.delete(KEY)  # deleting what is absent is fine
    store.set(KEY, "again")
    backend.expire()
    assert store.version(KEY) is None and store.get(KEY) is None


def test_another_process_sees_the_writes_and_versions(tmp_path: Path) -> None:
    one, two = FileStore(tmp_path, HOUR), FileStore(tmp_path, HOUR)
    one.set(KEY, "from one")
    assert two.get(KEY) == Entry("from one", one.version(KEY))
    assert two.version(KEY) == one.version(KEY)
    two.set(KEY, "from two")
    assert one.get(KEY) == Entry("from two", two.version(KEY))
    one.delete(KEY)
    assert two.version(KEY) is None and two.get(KEY) is None


def test_the_lock_serialises_one_key_only(backend: Backend) -> None:
    store = backend.store
    inside: list[str] = []
    entered = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with store.lock("a"):
            entered.set()
            release.wait(5)
            inside.append("first")

    holder = threading.Thread(target=hold)
    holder.start()
    assert entered.wait(5)
    with store.lock("b"):  # another key is not blocked
        inside.append("other")
    # The second holder goes through another store object: for files, another worker process
    # (only the file lock stands between them, not the thread lock).
    other = backend.other()

    def wait_for_a() -> None:
        with other.lock("a"):
            inside.append("second")

    waiter = threading.Thread(target=wait_for_a)
    waiter.start()
    waiter.join(0.2)  # nothing to wait for here: the point is that nothing happens
    assert inside == ["other"]  # still waiting for the first holder
    release.set()
    holder.join(5)
    waiter.join(5)
    assert inside == ["other", "first", "second"]


def test_file_store_sweeps_expired_entries_and_keeps_few_lock_files(tmp_path: Path) -> None:
    store = FileStore(tmp_path, HOUR)
    for n in range(300):
        with store.lock(f"app:token_cache:gone{n}.t"):
            store.set(f"app:token_cache:gone{n}.t", "blob")
    assert len(list((tmp_path / "locks").iterdir())) <= FileStore.LOCK_STRIPES
    two_hours_ago = time.time() - 7200
    for path in tmp_path.glob("*.json"):
        os.utime(path, (two_hours_ago, two_hours_ago))
    leftover = tmp_path / ".tmp-dead-writer"  # a writer killed between create and replace
    leftover.write_text("partial")
    os.utime(leftover, (two_hours_ago, two_hours_ago))
    store.set("app:token_cache:active.t", "fresh")
    assert store.sweep() == 301
    assert len(list(tmp_path.glob("*.json"))) == 1  # only the entry written since
    assert not leftover.exists()
    entry = store.get("app:token_cache:active.t")
    assert entry is not None and entry.value == "fresh"


def test_memory_store_is_a_bounded_lru_with_expiry() -> None:
    now = [0.0]
    store = MemoryStore(2, Expiry(60, 60), timer=lambda: now[0])
    store.set("a", "A")
    store.set("b", "B")
    assert store.get("a") is not None  # "a" is now the most recently used
    store.set("c", "C")
    assert store.get("b") is None  # the least recently used went first
    assert [e.value if e else None for e in (store.get("a"), store.get("c"))] == ["A", "C"]
    now[0] = 59
    assert store.version("c") is not None
    now[0] = 61
    assert store.get("a") is None and store.get("c") is None and store.version("c") is None


class Clock:
    """The services' clock, moved by the test (starting now: files get real mtimes)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("kind", ["memory", "filesystem"])
def test_entries_expire_when_unused_or_too_old_and_reads_renew_at_most_every_few_minutes(
        kind: str, tmp_path: Path) -> None:
    clock = Clock()
    start = clock.now
    expiry = Expiry(sliding_seconds=600, absolute_seconds=2000)
    store: Store = (MemoryStore(100, expiry, timer=clock) if kind == "memory"
                    else FileStore(tmp_path, expiry, clock))

    def alive_at(offset: float, key: str = KEY) -> bool:
        clock.now = start + offset
        return store.get(key) is not None

    store.set(KEY, "v")
    version = store.version(KEY)
    assert alive_at(599)  # unused for 599 s of 600: renewed by this read (due after 300 s)
    if kind == "memory":
        assert store.version(KEY) == version  # a renewal is not a change
    assert alive_at(1198)  # 599 s after that renewal: renewed again
    assert alive_at(1298)  # 100 s later: too soon to renew, so nothing is written
    assert not alive_at(1799)  # unused since the renewal at 1198 s: the read at 1298 s did not
    # renew it
    clock.now = start
    store.set("busy", "v")
    for offset in range(400, 2000, 400):  # used every 400 s: the sliding expiry never hits
        assert alive_at(offset, "busy"), offset
    clock.now = start + 1900
    store.set("busy", "rewritten")  # an overwrite keeps the creation time
    assert alive_at(1999, "busy")
    assert not alive_at(2000, "busy")  # the absolute limit, however busy
    clock.now = start + 2001
    store.set("busy", "new")  # written again after it expired: a new entry, a new limit
    assert alive_at(2001 + 500, "busy")  # its own sliding window, from the new write
    assert store.get("busy") == Entry("new", store.version("busy"))


def replace_directory_by_a_file(path: Path) -> None:
    """The store's directory becomes a regular file (a mistaken deploy, another program):
    every operation then fails with NotADirectoryError, an OSError even for root."""
    shutil.rmtree(path)
    path.write_text("not a directory")


@pytest.mark.parametrize("operation", ["get", "version", "set", "delete", "lock", "open"])
def test_io_faults_are_reported_as_store_errors(tmp_path: Path, operation: str) -> None:
    directory = tmp_path / "cache"
    store = FileStore(directory, HOUR)
    store.set(KEY, "value")
    replace_directory_by_a_file(directory)
    operations: dict[str, Callable[[], object]] = {
        "get": lambda: store.get(KEY),
        "version": lambda: store.version(KEY),
        "set": lambda: store.set(KEY, "value"),
        "delete": lambda: store.delete(KEY),
        "lock": lambda: store.lock(KEY).__enter__(),
        "open": lambda: FileStore(directory, HOUR),  # a worker starting after the fault
    }
    with pytest.raises(StoreError):
        operations[operation]()
    assert store.sweep() == 0  # the sweep (run from `set`) logs and gives up


def test_encrypted_entries_are_bound_to_their_key_and_survive_key_rotation(
        backend: Backend) -> None:
    """AES-GCM with the storage key as associated data: what is stored holds no plaintext; an
    entry copied under another account's key, tampered with, or written with a key no longer
    configured reads as unreadable (the layer above deletes it); a new key in front of the old
    one keeps old entries readable, and rewrites use the new one."""
    old, new = parse_keys(new_key())[0], parse_keys(new_key())[0]
    store = EncryptedStore(backend.store, [old])
    alice, bob = "app:token_cache:alice.t", "app:token_cache:bob.t"
    store.set(alice, '{"secret": "alice-refresh-token"}')
    raw = backend.store.get(alice)
    assert raw is not None and "alice-refresh-token" not in raw.value
    assert raw.value.startswith("gcm1.")
    entry = store.get(alice)
    assert entry is not None and entry.value == '{"secret": "alice-refresh-token"}'
    assert entry.version == backend.store.version(alice) == store.version(alice)

    backend.store.set(bob, raw.value)  # Alice's entry copied under Bob's key
    assert store.get(bob) == Entry("", backend.store.version(bob))
    tampered = raw.value[:-4] + ("AAAA" if not raw.value.endswith("AAAA") else "BBBB")
    backend.store.set(bob, tampered)
    assert store.get(bob) == Entry("", backend.store.version(bob))
    backend.store.set(bob, '{"secret": "planted in plaintext"}')
    assert store.get(bob) == Entry("", backend.store.version(bob))

    rotated = EncryptedStore(backend.store, [new, old])  # newest first
    assert rotated.get(alice) == entry  # written with the old key, still readable
    rotated.set(alice, "rewritten")
    assert EncryptedStore(backend.store, [new]).get(alice) is not None
    dropped = EncryptedStore(backend.store, [old])  # the key that wrote it is gone
    found = dropped.get(alice)
    assert found is not None and found.value == ""
    assert [*parse_keys(f" {new_key()} , {new_key()} ")] and len(
        parse_keys(f"{new_key()},{new_key()}")) == 2
    for bad in ("short", "x" * 43 + "!", new_key()[:-2]):
        with pytest.raises(ValueError, match="key 1 is not 32 bytes") as refused:
            parse_keys(bad)
        assert bad not in str(refused.value)
