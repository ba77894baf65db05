"""The per-account token cache stores: isolation, atomic private files, bounds and expiry."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from pathlib import Path

import msal
import pytest

from {{ cookiecutter.package_name }}.core.token_cache import AccountCaches, FileStore, MemoryStore


def cache_for(home_account_id: str) -> msal.SerializableTokenCache:
    """A cache holding one account and a refresh token, as a code redemption leaves it."""
    uid, utid = home_account_id.split(".")
    cache = msal.SerializableTokenCache()
    cache.deserialize(json.dumps({
        "Account": {f"{home_account_id}-login.example-{utid}": {
            "home_account_id": home_account_id, "environment": "login.example",
            "realm": utid, "local_account_id": uid, "username": f"{uid}@example.com",
            "authority_type": "MSSTS"}},
        "RefreshToken": {f"{home_account_id}-login.example-refreshtoken-client--": {
            "home_account_id": home_account_id, "environment": "login.example",
            "credential_type": "RefreshToken", "client_id": "client", "secret": f"rt-{uid}"}},
    }))
    return cache


@pytest.fixture(params=["memory", "filesystem"])
def caches(request: pytest.FixtureRequest, tmp_path: Path) -> AccountCaches:
    store = MemoryStore(100, 3600) if request.param == "memory" else FileStore(tmp_path, 3600)
    return AccountCaches(store, "app")


def test_each_account_gets_only_its_own_cache(caches: AccountCaches) -> None:
    caches.merge("a.t", cache_for("a.t"))
    caches.merge("b.t", cache_for("b.t"))
    with caches.open("a.t") as cache:
        assert [rt["secret"] for rt in cache.search(cache.CredentialType.REFRESH_TOKEN)] == [
            "rt-a"]
    # Whatever put b's blob under a's key, it must never be handed out as a's cache.
    caches.store.set(caches.key("a.t"), caches.store.get(caches.key("b.t")) or "")
    with caches.open("a.t") as cache:
        assert list(cache.search(cache.CredentialType.REFRESH_TOKEN)) == []
    assert caches.store.get(caches.key("a.t")) is None
    caches.store.set(caches.key("b.t"), "{not json")
    with caches.open("b.t") as cache:
        assert list(cache.search(cache.CredentialType.ACCOUNT)) == []


def test_written_only_when_changed_and_removed_when_empty(caches: AccountCaches,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    caches.merge("a.t", cache_for("a.t"))
    writes: list[str] = []
    original = caches.store.set
    def counting_set(key: str, value: str) -> None:
        writes.append(key)
        original(key, value)

    monkeypatch.setattr(caches.store, "set", counting_set)
    with caches.open("a.t"):
        pass
    assert writes == []
    with caches.open("a.t") as cache:
        for rt in list(cache.search(cache.CredentialType.REFRESH_TOKEN)):
            cache.remove_rt(rt)
    assert caches.store.get(caches.key("a.t")) is None
    caches.merge("a.t", cache_for("a.t"))
    caches.remove("a.t")
    assert caches.store.get(caches.key("a.t")) is None


def test_files_are_private_and_written_atomically(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "cache", 3600)
    store.set("app:token_cache:a.t", "x" * 10_000)
    files = [p for p in (tmp_path / "cache").iterdir() if p.suffix == ".json"]
    assert len(files) == 1 and "a.t" not in files[0].name
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "cache").stat().st_mode) == 0o700
    # Readers racing a writer see the old or the new blob, never a torn one.
    seen: set[int] = set()
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            seen.add(len(store.get("app:token_cache:a.t") or ""))

    reader = threading.Thread(target=read)
    reader.start()
    for size in (20_000, 10_000) * 50:
        store.set("app:token_cache:a.t", "y" * size)
    stop.set()
    reader.join()
    assert seen <= {10_000, 20_000}
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.startswith(".tmp-")]


def test_memory_store_is_bounded_and_expires() -> None:
    now = [0.0]
    store = MemoryStore(2, 60, timer=lambda: now[0])
    for key in ("a", "b", "c"):
        store.set(key, key)
    assert store.get("a") is None and store.get("c") == "c"
    now[0] = 61
    assert store.get("c") is None


def test_the_account_lock_serialises_one_account_only(tmp_path: Path) -> None:
    store = FileStore(tmp_path, 3600)
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
    entered.wait(5)
    with store.lock("b"):  # another account is not blocked
        inside.append("other")
    def wait_for_a() -> None:
        with store.lock("a"):
            inside.append("second")

    waiter = threading.Thread(target=wait_for_a)
    waiter.start()
    waiter.join(0.2)
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
    store.set("app:token_cache:active.t", "fresh")
    assert store.sweep() == 300
    assert len(list(tmp_path.glob("*.json"))) == 1  # only the entry written since
    assert store.get("app:token_cache:active.t") == "fresh"
