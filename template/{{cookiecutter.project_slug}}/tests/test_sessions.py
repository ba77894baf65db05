"""Server-side sessions: JSON only, hashed keys, few writes, expiry, rotation, per-account limit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.config import DEFAULTS
from {{ cookiecutter.package_name }}.core.errors import StoreUnavailable
from {{ cookiecutter.package_name }}.core.services import build_store
from {{ cookiecutter.package_name }}.core.sessions import (
    CookieAction,
    ProviderSession,
    Sessions,
    SessionState,
)
from {{ cookiecutter.package_name }}.core.settings import load_settings
from {{ cookiecutter.package_name }}.core.stores import RENEW_AFTER_SECONDS, Expiry, Store
from {{ cookiecutter.package_name }}.core.stores.filesystem import FileStore
from {{ cookiecutter.package_name }}.core.stores.memory import MemoryStore
from {{ cookiecutter.package_name }}.core.token_cache import AccountCaches

from tests.conftest import environment_for_settings_tests
from tests.test_stores import StoreProxy
from tests.test_token_cache import cache_for, refresh_tokens

LIFETIME = 3600


class Clock:
    """An injected clock: tests move time forward instead of waiting."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["memory", "filesystem"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    # The stores' own expiry runs on real time: only the sessions' own checks see the clock.
    return (MemoryStore(1000, Expiry(LIFETIME, LIFETIME)) if request.param == "memory"
            else FileStore(tmp_path, Expiry(LIFETIME, LIFETIME)))


@pytest.fixture
def proxy(store: Store) -> StoreProxy:
    return StoreProxy(store)


@pytest.fixture
def sessions(proxy: StoreProxy, clock: Clock) -> Sessions:
    return Sessions(proxy, "app", lifetime_seconds=LIFETIME, per_account=10, clock=clock)


def saved(sessions: Sessions, account: str | None = None, **data: object) -> str:
    """A new session holding `data`, saved; its id (what the cookie carries)."""
    state: SessionState = sessions.load(None)
    state.update(data)
    assert sessions.save(state, account) == "set" and state.sid is not None
    return state.sid


def test_stored_as_json_under_a_key_that_hides_the_session_id(
        sessions: Sessions, proxy: StoreProxy, store: Store, tmp_path: Path) -> None:
    sid = saved(sessions, "a.t", user={"name": "Ada", "roles": ["reader"]}, n=1.5)
    assert all(sid not in key for _, key in proxy.calls)
    entry = store.get(sessions._key(sid))
    assert entry is not None
    assert b"\x80" not in entry.value.encode()  # no pickle protocol header
    stored = json.loads(entry.value)
    assert stored["data"] == {"user": {"name": "Ada", "roles": ["reader"]}, "n": 1.5}
    assert stored["account"] == "a.t"
    assert dict(sessions.load(sid)) == stored["data"]
    if isinstance(store, FileStore):  # every file on disk, the per-account index included
        files = list(tmp_path.glob("*.json"))
        assert len(files) == 2
        for path in files:
            assert sid not in path.name
            header, body = path.read_text().split("\n", 1)  # the header: its creation time
            assert header.startswith("msal-webapp-store/1 ")
            json.loads(body)


def test_unknown_missing_or_overlong_ids_give_an_empty_session(
        sessions: Sessions, proxy: StoreProxy) -> None:
    saved(sessions, k="v")
    proxy.calls.clear()
    for sid in (None, "", "unknown", "x" * 129):
        state: SessionState = sessions.load(sid)
        assert (state.sid, dict(state), state.load_failed) == (None, {}, False)
    assert proxy.calls == [("get", sessions._key("unknown"))]  # the others are not looked up


@pytest.mark.parametrize("value", [
    "not json", "[]", '{"format":1,"data":[]}', '{"format":2,"data":{},"saved_at":1}',
    '{"format":1,"data":{},"account":7,"saved_at":1}', "[" * 100_000 + "]" * 100_000,
], ids=["not-json", "list", "data-list", "other-format", "account-number", "deep"])
def test_corrupt_values_give_an_empty_session_and_are_deleted(
        sessions: Sessions, store: Store, value: str) -> None:
    sid = saved(sessions, k="v")
    store.set(sessions._key(sid), value)
    state: SessionState = sessions.load(sid)
    assert (state.sid, dict(state)) == (None, {})
    assert store.get(sessions._key(sid)) is None


def test_an_unreadable_store_is_not_mistaken_for_no_session(store: Store, clock: Clock) -> None:
    sessions = Sessions(StoreProxy(store, fail={"get"}), "app", lifetime_seconds=LIFETIME,
                        per_account=10, clock=clock)
    state: SessionState = sessions.load("some-id")
    assert state.load_failed and state.sid is None


def test_written_only_when_modified_or_due_for_renewal(
        sessions: Sessions, proxy: StoreProxy, clock: Clock) -> None:
    sid = saved(sessions, k="v")
    start = clock.now

    def request(at: float, **changes: object) -> CookieAction:
        clock.now = start + at
        state: SessionState = sessions.load(sid)
        assert state["k"] == "v"  # reading is not a change
        state.update(changes)
        return sessions.save(state, None)

    proxy.calls.clear()
    assert request(0) is None
    assert request(RENEW_AFTER_SECONDS - 1) is None
    assert proxy.methods().count("set") == 0
    assert request(RENEW_AFTER_SECONDS) == "set"  # due: the lifetime slides
    assert proxy.methods().count("set") == 1
    assert request(RENEW_AFTER_SECONDS + 1) is None
    assert request(RENEW_AFTER_SECONDS + 2, k="v", other=1) == "set"
    assert proxy.methods().count("set") == 2


def test_sessions_expire_a_lifetime_after_their_last_save(
        sessions: Sessions, clock: Clock) -> None:
    sid = saved(sessions, k="v")
    start = clock.now
    clock.now = start + LIFETIME - 1
    assert sessions.load(sid).sid == sid
    clock.now = start + LIFETIME + 1
    state: SessionState = sessions.load(sid)
    assert (state.sid, dict(state)) == (None, {})
    # A session in use is renewed, so its lifetime slides.
    sid = saved(sessions, k="v")
    start = clock.now
    clock.now = start + RENEW_AFTER_SECONDS
    sessions.save(sessions.load(sid), None)  # a request that only reads the session
    clock.now = start + LIFETIME + 1
    assert sessions.load(sid).sid == sid
    clock.now = start + RENEW_AFTER_SECONDS + LIFETIME + 1
    assert sessions.load(sid).sid is None


def test_rotate_gives_a_new_id_and_deletes_the_old_entry(
        sessions: Sessions, store: Store) -> None:
    old = saved(sessions, flow="pending")
    state: SessionState = sessions.load(old)
    state.rotate()  # at sign-in: the id the browser had before must not stay valid
    state["user"] = "ada"
    assert sessions.save(state, "a.t") == "set"
    assert state.sid not in (None, old)
    assert store.get(sessions._key(old)) is None
    assert sessions.load(old).sid is None
    assert dict(sessions.load(state.sid)) == {"flow": "pending", "user": "ada"}


def test_a_cleared_session_is_deleted_with_its_cookie(sessions: Sessions, store: Store) -> None:
    sid = saved(sessions, "a.t", user="ada")
    state: SessionState = sessions.load(sid)
    state.clear()  # sign-out
    assert sessions.save(state, None) == "delete" and state.sid is None
    assert store.get(sessions._key(sid)) is None
    assert sessions.load(sid).sid is None


def test_a_value_that_is_not_json_raises_at_save(sessions: Sessions, proxy: StoreProxy) -> None:
    state: SessionState = sessions.load(None)
    state["tags"] = {"a", "b"}  # a set: a bug to surface, not to store or drop silently
    with pytest.raises(TypeError):
        sessions.save(state, None)
    assert state.sid is None and "set" not in proxy.methods()


def test_a_failed_save_raises_store_unavailable_and_sets_no_cookie(
        store: Store, clock: Clock) -> None:
    sessions = Sessions(StoreProxy(store, fail={"set"}), "app", lifetime_seconds=LIFETIME,
                        per_account=10, clock=clock)
    state: SessionState = sessions.load(None)
    state["k"] = "v"
    with pytest.raises(StoreUnavailable) as raised:
        sessions.save(state, "a.t")
    assert raised.value.what == "session store"
    assert state.sid is None


def test_a_renewed_session_renews_its_indexes(sessions: Sessions, proxy: StoreProxy,
                                             clock: Clock) -> None:
    """The per-account and per-provider-session lists are written at sign-in only: each save
    of the session reads them, which renews their sliding expiry with the session's."""
    provider = ProviderSession("https://issuer.test/v2.0", "provider-sid")
    state: SessionState = sessions.load(None)
    state["k"] = "v"
    assert sessions.save(state, "a.t", provider) == "set"
    clock.now += RENEW_AFTER_SECONDS
    proxy.calls.clear()
    state = sessions.load(state.sid)
    assert sessions.save(state, "a.t", provider) == "set"  # the renewal
    assert ("version", sessions._index_key("a.t")) in proxy.calls
    assert ("version", sessions._sid_index_key("provider-sid")) in proxy.calls
    # And the provider's sign-out finds the session through them.
    assert sessions.end_provider_session("provider-sid", None) == (1, ["a.t"])
    assert dict(sessions.load(state.sid)) == {}


def test_one_account_keeps_only_its_newest_sessions(store: Store, clock: Clock) -> None:
    sessions = Sessions(store, "app", lifetime_seconds=LIFETIME, per_account=3, clock=clock)
    others = {f"user{n}.t": saved(sessions, f"user{n}.t", n=n) for n in range(5)}
    busy = []
    for n in range(10):
        clock.now += 1
        busy.append(saved(sessions, "busy.t", n=n))
    alive = [n for n, sid in enumerate(busy) if sessions.load(sid).sid == sid]
    assert alive == [7, 8, 9]
    for n, (account, sid) in enumerate(others.items()):
        state: SessionState = sessions.load(sid)
        assert (state.account, dict(state)) == (account, {"n": n})


@pytest.mark.parametrize("backend", ["memory", "filesystem"])
def test_sessions_and_token_caches_do_not_share_a_bound(backend: str, tmp_path: Path) -> None:
    """With the stores the app builds: many sign-ins of one account evict neither other users'
    sessions nor their tokens."""
    settings = load_settings(environment_for_settings_tests({
        "TOKEN_CACHE_BACKEND": backend, "TOKEN_CACHE_DIR": str(tmp_path),
        "TOKEN_CACHE_MAX_ENTRIES": "20", "SESSION_MAX_ENTRIES": "100",
        "SESSIONS_PER_ACCOUNT": "3"}), DEFAULTS)
    clock = Clock()
    caches = AccountCaches(build_store(settings, "token_caches"), "app")
    sessions = Sessions(build_store(settings, "sessions"), "app",
                        lifetime_seconds=settings.session_lifetime_seconds,
                        per_account=settings.sessions_per_account, clock=clock)

    def sign_in(account: str) -> str:
        clock.now += 1
        state: SessionState = sessions.load(None)
        state["flow"] = "done"
        state.rotate()
        sessions.save(state, account)
        caches.merge(account, cache_for(account))
        assert state.sid is not None
        return state.sid

    # 15 users: their sessions and per-account indexes alone outnumber the token caches' 20.
    others = {f"user{n}.t": sign_in(f"user{n}.t") for n in range(15)}
    busy = [sign_in("busy.t") for _ in range(30)]
    assert [sessions.load(sid).sid == sid for sid in busy] == [False] * 27 + [True] * 3
    for account, sid in others.items():
        assert sessions.load(sid).account == account
        assert refresh_tokens(caches.peek(account)) == [f"rt-{account.split('.')[0]}"]
    assert refresh_tokens(caches.peek("busy.t")) == ["rt-busy"]
