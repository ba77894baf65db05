"""The key-value stores (core/stores/): private atomic files, versions, locks, bounds, faults."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.core.stores import Entry, Store, StoreError
from {{ cookiecutter.package_name }}.core.stores.filesystem import FileStore
from {{ cookiecutter.package_name }}.core.stores.memory import MemoryStore

KEY = "app:token_cache:a.t"


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

        memory = MemoryStore(100, 60, timer=lambda: now[0])
        # One process: other requests share the very same store.
        return Backend("memory", memory, advance, lambda: memory)

    def age_files() -> None:
        past = time.time() - 120
        for path in tmp_path.glob("*.json"):
            os.utime(path, (past, past))

    return Backend("filesystem", FileStore(tmp_path, 60), age_files,
                   lambda: FileStore(tmp_path, 60))


def test_directories_are_made_private_even_if_they_already_existed(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    (directory / "locks").mkdir(parents=True)
    for path in (directory, directory / "locks"):
        path.chmod(0o755)  # as a deployment script or a umask of 022 leaves them
    FileStore(directory, 3600)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((directory / "locks").stat().st_mode) == 0o700
    fresh = FileStore(tmp_path / "new" / "cache", 3600)
    fresh.set(KEY, "x")
    assert stat.S_IMODE((tmp_path / "new" / "cache").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "new" / "cache" / "locks").stat().st_mode) == 0o700


def test_files_are_private_named_by_hash_and_replaced_atomically(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "cache", 3600)
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
    one, two = FileStore(tmp_path, 3600), FileStore(tmp_path, 3600)
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
    store = FileStore(tmp_path, 3600)
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
    store = MemoryStore(2, 60, timer=lambda: now[0])
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


def replace_directory_by_a_file(path: Path) -> None:
    """The store's directory becomes a regular file (a mistaken deploy, another program):
    every operation then fails with NotADirectoryError, an OSError even for root."""
    shutil.rmtree(path)
    path.write_text("not a directory")


@pytest.mark.parametrize("operation", ["get", "version", "set", "delete", "lock", "open"])
def test_io_faults_are_reported_as_store_errors(tmp_path: Path, operation: str) -> None:
    directory = tmp_path / "cache"
    store = FileStore(directory, 3600)
    store.set(KEY, "value")
    replace_directory_by_a_file(directory)
    operations: dict[str, Callable[[], object]] = {
        "get": lambda: store.get(KEY),
        "version": lambda: store.version(KEY),
        "set": lambda: store.set(KEY, "value"),
        "delete": lambda: store.delete(KEY),
        "lock": lambda: store.lock(KEY).__enter__(),
        "open": lambda: FileStore(directory, 3600),  # a worker starting after the fault
    }
    with pytest.raises(StoreError):
        operations[operation]()
    assert store.sweep() == 0  # the sweep (run from `set`) logs and gives up
