"""The per-account token caches: isolation, strict parsing, the lock-free read path, writes."""

from __future__ import annotations

import base64
import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import msal
import pytest

from {{ cookiecutter.package_name }}.core.errors import StoreUnavailable
from {{ cookiecutter.package_name }}.core.stores import Expiry, Store
from {{ cookiecutter.package_name }}.core.stores.filesystem import FileStore
from {{ cookiecutter.package_name }}.core.stores.memory import MemoryStore
from {{ cookiecutter.package_name }}.core.token_cache import AccountCaches, parse_entry

from tests.test_stores import StoreProxy

LOGGER = "{{ cookiecutter.package_name }}.core.token_cache"

HOUR = Expiry(3600, 3600)  # sliding and absolute


def cache_for(home_account_id: str, refresh_token: str | None = None
              ) -> msal.SerializableTokenCache:
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
            "credential_type": "RefreshToken", "client_id": "client",
            "secret": refresh_token or f"rt-{uid}"}},
    }))
    return cache


def msal_made_entry(uid: str = "a", utid: str = "t") -> dict[str, Any]:
    """The entry MSAL itself writes after redeeming a code: account, ID token, access token,
    refresh token and app metadata."""
    def b64(claims: dict[str, str]) -> str:
        return base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")

    # MSAL only decodes the ID token (the app validated it before), so any key signs it here.
    id_token = jwt.encode({"iss": f"https://login.example/{utid}/v2.0", "sub": "s", "oid": uid,
                           "tid": utid, "aud": "client", "preferred_username": f"{uid}@x.example",
                           "iat": 1, "exp": 2}, "k" * 32, algorithm="HS256")
    cache = msal.SerializableTokenCache()
    cache.add({
        "client_id": "client",
        "scope": ["User.Read", "openid", "profile", "offline_access"],
        "token_endpoint": f"https://login.example/{utid}/oauth2/v2.0/token",
        "grant_type": "authorization_code",
        "response": {"token_type": "Bearer", "expires_in": 3600, "access_token": "at",
                     "refresh_token": "rt", "id_token": id_token,
                     "client_info": b64({"uid": uid, "utid": utid})},
    })
    entry: dict[str, Any] = json.loads(cache.serialize())
    return entry


def first(entry: dict[str, Any], section: str) -> dict[str, Any]:
    item: dict[str, Any] = next(iter(entry[section].values()))
    return item


@pytest.fixture(params=["memory", "filesystem"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    return MemoryStore(100, HOUR) if request.param == "memory" else FileStore(tmp_path, HOUR)


@pytest.fixture
def caches(store: Store) -> AccountCaches:
    return AccountCaches(store, "app")


def refresh_tokens(cache: msal.SerializableTokenCache) -> list[str]:
    return [rt["secret"] for rt in cache.search(cache.CredentialType.REFRESH_TOKEN)]


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


def test_each_account_gets_only_its_own_cache(caches: AccountCaches) -> None:
    caches.merge("a.t", cache_for("a.t"))
    caches.merge("b.t", cache_for("b.t"))
    with caches.open("a.t") as cache:
        assert refresh_tokens(cache) == ["rt-a"]
    # Whatever put b's entry under a's key, it must never be handed out as a's cache.
    b_entry = caches.store.get(caches.key("b.t"))
    assert b_entry is not None
    caches.store.set(caches.key("a.t"), b_entry.value)
    with caches.open("a.t") as cache:
        assert refresh_tokens(cache) == []
    assert caches.store.get(caches.key("a.t")) is None
    assert refresh_tokens(caches.peek("b.t")) == ["rt-b"]
    caches.store.set(caches.key("b.t"), "{not json")
    with caches.open("b.t") as cache:
        assert list(cache.search(cache.CredentialType.ACCOUNT)) == []


def _other_accounts_access_token(entry: dict[str, Any]) -> None:
    first(entry, "AccessToken")["home_account_id"] = "b.t"  # the Account entries stay a's


def _id_token_without_account(entry: dict[str, Any]) -> None:
    del first(entry, "IdToken")["home_account_id"]


def _refresh_token_with_a_number_as_secret(entry: dict[str, Any]) -> None:
    first(entry, "RefreshToken")["secret"] = 42


def _access_token_without_expiry(entry: dict[str, Any]) -> None:
    del first(entry, "AccessToken")["expires_on"]


def _access_token_without_target(entry: dict[str, Any]) -> None:
    del first(entry, "AccessToken")["target"]


def _no_account(entry: dict[str, Any]) -> None:
    del entry["Account"]


DEEP = "[" * 100_000 + "]" * 100_000  # json.loads gives up with a RecursionError


@pytest.mark.parametrize("corrupt", [
    "null", "[]", "42", '"x"', '{"Account": null}', '{"Account": []}',
    pytest.param(DEEP, id="deep-nesting"), pytest.param("", id="empty"),
    _other_accounts_access_token, _id_token_without_account,
    _refresh_token_with_a_number_as_secret, _access_token_without_expiry,
    _access_token_without_target, _no_account,
], ids=lambda c: c if isinstance(c, str) else c.__name__.strip("_"))
def test_parse_entry_rejects_what_msal_would_not_write(
        corrupt: str | Callable[[dict[str, Any]], None]) -> None:
    if isinstance(corrupt, str):
        blob = corrupt
    else:
        entry = msal_made_entry()
        corrupt(entry)
        blob = json.dumps(entry)
    assert parse_entry(blob, "a.t") is None


def test_parse_entry_accepts_the_entry_msal_writes() -> None:
    entry = msal_made_entry()
    assert set(entry) == {"Account", "IdToken", "AccessToken", "RefreshToken", "AppMetadata"}
    assert "home_account_id" not in first(entry, "AppMetadata")  # it describes the app
    assert parse_entry(json.dumps(entry), "a.t") == entry
    assert parse_entry(json.dumps(entry), "b.t") is None  # but only as a's


@pytest.mark.parametrize("read", ["open", "peek"])
def test_a_corrupt_entry_is_deleted_and_reported_once(
        store: Store, read: str, caplog: pytest.LogCaptureFixture) -> None:
    def read_a(caches: AccountCaches) -> msal.SerializableTokenCache:
        if read == "peek":
            return caches.peek("a.t")
        with caches.open("a.t") as cache:
            return cache

    caplog.set_level(logging.WARNING, LOGGER)
    caches = AccountCaches(store, "app")
    store.set(caches.key("a.t"), json.dumps({"Account": []}))
    assert refresh_tokens(read_a(caches)) == []
    assert store.get(caches.key("a.t")) is None
    assert len(warnings_of(caplog)) == 1
    # When it cannot even be deleted, every request finds it again: still one warning.
    caplog.clear()
    refusing = StoreProxy(store, fail={"delete"})
    caches = AccountCaches(refusing, "app")
    store.set(caches.key("a.t"), "{not json")
    for _ in range(2):
        assert refresh_tokens(read_a(caches)) == []
    assert refusing.methods().count("delete") == 2
    assert store.get(caches.key("a.t")) is not None
    assert len(warnings_of(caplog)) == 1


def test_written_only_when_changed_and_removed_when_empty(store: Store) -> None:
    proxy = StoreProxy(store)
    caches = AccountCaches(proxy, "app")
    caches.merge("a.t", cache_for("a.t"))
    proxy.calls.clear()
    with caches.open("a.t"):
        pass
    assert proxy.methods() == ["lock", "get"]  # read under the lock, not written back
    with caches.open("a.t") as cache:
        for rt in list(cache.search(cache.CredentialType.REFRESH_TOKEN)):
            cache.remove_rt(rt)
    assert store.get(caches.key("a.t")) is None  # no tokens left: nothing kept
    caches.merge("a.t", cache_for("a.t"))
    caches.remove("a.t")
    assert store.get(caches.key("a.t")) is None


def test_peek_takes_no_lock_and_writes_nothing(store: Store) -> None:
    proxy = StoreProxy(store)
    caches = AccountCaches(proxy, "app")
    caches.merge("a.t", cache_for("a.t"))
    proxy.calls.clear()
    for _ in range(3):
        assert refresh_tokens(caches.peek("a.t")) == ["rt-a"]
    assert refresh_tokens(caches.peek("nobody.t")) == []
    assert set(proxy.methods()) <= {"version", "get"}
    assert proxy.methods().count("get") == 1  # parsed once, then served from the copy


def test_peek_never_misses_a_write_or_a_sign_out_by_another_process(
        store: Store, tmp_path: Path) -> None:
    caches = AccountCaches(store, "app")
    # Another worker process: its own store object on the same directory (files), or the
    # same store used by other code in this process (memory).
    elsewhere = AccountCaches(
        FileStore(tmp_path, HOUR) if isinstance(store, FileStore) else store, "app")
    caches.merge("a.t", cache_for("a.t", refresh_token="rt-1"))
    seen = caches.peek("a.t")
    assert caches.peek("a.t") is seen  # unchanged: the same in-process copy
    elsewhere.merge("a.t", cache_for("a.t", refresh_token="rt-2"))  # a refresh over there
    fresh = caches.peek("a.t")
    assert fresh is not seen and refresh_tokens(fresh) == ["rt-2"]
    assert caches.peek("a.t") is fresh
    elsewhere.remove("a.t")  # signed out over there
    assert refresh_tokens(caches.peek("a.t")) == []


def test_remove_drops_the_in_process_copy(caches: AccountCaches) -> None:
    caches.merge("a.t", cache_for("a.t"))
    caches.peek("a.t")
    assert caches.key("a.t") in caches._copies  # the copy the read path serves
    caches.remove("a.t")
    assert caches.key("a.t") not in caches._copies  # no tokens kept in memory after sign-out
    assert refresh_tokens(caches.peek("a.t")) == []


def test_merge_fails_loudly_when_the_store_cannot_write(store: Store, tmp_path: Path) -> None:
    if isinstance(store, FileStore):
        # A real fault: the directory is gone and a regular file stands in its place.
        shutil.rmtree(tmp_path)
        tmp_path.write_text("not a directory")
        caches = AccountCaches(store, "app")
    else:
        caches = AccountCaches(StoreProxy(store, fail={"set"}), "app")
    with pytest.raises(StoreUnavailable) as raised:
        caches.merge("a.t", cache_for("a.t"))
    assert raised.value.what == "token cache"
