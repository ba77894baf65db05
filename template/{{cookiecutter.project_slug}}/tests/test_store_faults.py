"""Store faults end in a clear page, never a 500 or a sign-in loop; the read path is lock-free.

The faults are real where the machine allows it: as root, the token-cache directory is a small
tmpfs that is filled up (ENOSPC) or remounted read-only (EROFS); otherwise read-only is a
0500 directory, and the full-disk cases skip. Entries of the wrong shape are written straight
into the store, as a bug, a restore from backup or an attacker with access to it could.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from {{ cookiecutter.package_name }}.core.stores import Entry, StoreError
from {{ cookiecutter.package_name }}.core.stores.encrypted import EncryptedStore, new_key, parse_keys

from tests.app_server import serve
from tests.conftest import AppUnderTest
from tests.test_web_flow import (
    ALICE,
    BOB,
    assert_error_page,
    at_provider,
    cached,
    cookie,
    expire_access_tokens,
    grants,
    home_account_id,
    session_cookie,
    sign_in_api_page,
    visit,
)

WRONG_SHAPES = {
    "null": "null",
    "list": "[]",
    "number": "42",
    "account-null": '{"Account": null}',
    "deep": "[" * 100_000 + "]" * 100_000,
    # Valid JSON for the right account, plus an access token of somebody else.
    "foreign-token": None,
}


def corrupt(app: AppUnderTest, shape: str) -> str:
    """Write an entry of the wrong shape under ALICE's key; returns what was written."""
    key = app.services.caches.key(home_account_id(app, ALICE))
    value = WRONG_SHAPES[shape]
    if value is None:
        stored = json.loads(cached(app, ALICE) or "{}")
        token = next(iter(stored["AccessToken"].values()))
        stored["AccessToken"]["x"] = {**token, "home_account_id": "someone.else",
                                      "secret": "someone else's token"}
        value = json.dumps(stored)
    app.services.caches.store.set(key, value)
    return value


def sign_out(app: AppUnderTest, browser: Any) -> requests.Response:
    """The page's own sign-out form, up to the provider's sign-out page (not followed)."""
    return browser.submit_form(browser.get(app.url("/")),
                               match=lambda form: form.action.endswith("/logout"))


@pytest.mark.parametrize("shape", sorted(WRONG_SHAPES))
def test_a_cache_entry_of_the_wrong_shape_means_signing_in_again(
        app_under_test: AppUnderTest, shape: str, caplog: pytest.LogCaptureFixture) -> None:
    app = app_under_test
    path = sign_in_api_page(app)
    browser = app.browser()
    visit(app, browser, path, ALICE)

    # A token page: one round trip to the provider, then the page, and the entry is replaced.
    corrupt(app, shape)
    caplog.set_level(logging.WARNING)
    page = visit(app, browser, path, ALICE, round_trips=1)
    assert page.status_code == 200 and ALICE.oid in page.text
    assert "someone else" not in page.text
    assert json.loads(cached(app, ALICE) or "null")["Account"]
    warnings = [r for r in caplog.records if "corrupt" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]

    # Signing in while the entry is corrupt.
    corrupt(app, shape)
    other = app.browser()
    assert visit(app, other, path, ALICE, round_trips=1).status_code == 200

    # Signing out while it is corrupt.
    corrupt(app, shape)
    back = sign_out(app, browser)
    assert back.status_code < 500 and (at_provider(app, back, "/logout")
                                       or back.url == app.url("/"))
    assert cached(app, ALICE) is None


class FaultyDirectory:
    """A real directory that can be made read-only or full."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.mounted = False
        self._filler = path / "filler"

    def mount(self) -> bool:
        """A 2 MiB tmpfs at `path`, if this process may mount (root); else a plain directory."""
        self.path.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0 or not shutil.which("mount"):
            return False
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(self.path)],
                              capture_output=True)
        self.mounted = done.returncode == 0
        return self.mounted

    def _folders(self) -> list[Path]:
        return [self.path, *(p for p in self.path.rglob("*") if p.is_dir())]

    def read_only(self) -> None:
        if self.mounted:
            subprocess.run(["mount", "-o", "remount,ro", str(self.path)], check=True)
        elif os.geteuid() != 0:
            for folder in self._folders():
                folder.chmod(0o500)
        else:
            pytest.skip("as root without mount, nothing can be made read-only")

    def fill(self) -> None:
        if not self.mounted:
            pytest.skip("filling a disk needs a tmpfs (root)")
        with self._filler.open("wb") as handle:
            try:
                while True:
                    handle.write(b"\0" * 65536)
                    handle.flush()
            except OSError as exc:
                assert exc.errno == errno.ENOSPC

    def restore(self) -> None:
        if self.mounted:
            subprocess.run(["mount", "-o", "remount,rw", str(self.path)], check=False)
            self._filler.unlink(missing_ok=True)
        else:
            for folder in self._folders():
                with contextlib.suppress(OSError):
                    folder.chmod(0o700)

    def unmount(self) -> None:
        self.restore()
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], check=False)


@pytest.fixture
def faulty_dirs(tmp_path: Path) -> Iterator[Callable[[Path], FaultyDirectory]]:
    made: list[FaultyDirectory] = []

    def make(path: Path) -> FaultyDirectory:
        folder = FaultyDirectory(path)
        folder.mount()
        made.append(folder)
        return folder

    yield make
    for folder in reversed(made):
        folder.unmount()


def test_a_read_only_cache_directory_gives_pages_not_errors(
        make_app: Callable[..., AppUnderTest], tmp_path: Path,
        faulty_dirs: Callable[[Path], FaultyDirectory]) -> None:
    folder = faulty_dirs(tmp_path / "store")
    app = make_app(TOKEN_CACHE_BACKEND="filesystem", TOKEN_CACHE_DIR=str(folder.path))
    path = sign_in_api_page(app)
    alice = app.browser()
    visit(app, alice, path, ALICE)
    expire_access_tokens(app, ALICE)  # the next page needs a refresh, its lock and a write
    folder.read_only()

    # The token page: no lock, no write possible; the refreshed token serves the page anyway.
    page = alice.get(app.url(path))
    assert page.status_code == 200 and ALICE.oid in page.text
    # A new sign-in cannot be stored: a page saying so, not a 500 and not a redirect.
    bob = app.browser()
    answer = visit(app, bob, path, BOB, round_trips=1)
    assert_error_page(answer, "could not be saved", status=503)
    assert not bob.cookies.get(session_cookie(app))
    # Signing out still signs out (the entry expires on its own) .
    back = sign_out(app, alice)
    assert back.status_code < 500 and not alice.cookies.get(session_cookie(app))

    folder.restore()
    assert visit(app, bob, path, BOB, round_trips=1).status_code == 200


def test_a_full_disk_gives_a_page_not_a_sign_in_loop(
        make_app: Callable[..., AppUnderTest], tmp_path: Path,
        faulty_dirs: Callable[[Path], FaultyDirectory]) -> None:
    folder = faulty_dirs(tmp_path / "store")
    app = make_app(TOKEN_CACHE_BACKEND="filesystem", TOKEN_CACHE_DIR=str(folder.path))
    path = sign_in_api_page(app)
    folder.fill()
    browser = app.browser()
    app.standin.reset_counts()
    answer = visit(app, browser, path, ALICE, round_trips=1)
    assert_error_page(answer, "could not be saved", status=503)
    assert app.standin.authorize_calls == 1
    folder.restore()
    assert visit(app, browser, path, ALICE, round_trips=1).status_code == 200


def test_a_session_that_cannot_be_saved_gives_a_page_not_a_redirect(
        make_app: Callable[..., AppUnderTest], tmp_path: Path,
        faulty_dirs: Callable[[Path], FaultyDirectory]) -> None:
    """The token cache has room, the session store (its own tmpfs) has none."""
    store = tmp_path / "store"
    store.mkdir()
    sessions = faulty_dirs(store / "sessions")
    app = make_app(TOKEN_CACHE_BACKEND="filesystem", TOKEN_CACHE_DIR=str(store))
    path = sign_in_api_page(app)
    sessions.fill()
    browser = app.browser()
    app.standin.reset_counts()
    answer = visit(app, browser, path, ALICE, round_trips=1)
    assert_error_page(answer, "session storage", status=503)
    assert app.standin.authorize_calls == 1 and not browser.cookies.get(session_cookie(app))


def test_a_store_that_loses_sessions_gets_a_page_not_a_sign_in_loop(
        app_under_test: AppUnderTest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sessions saved but never found again (evicted, or a store that drops writes): after two
    sign-ins in a row, the page says so instead of sending the browser round and round."""
    app = app_under_test
    path = sign_in_api_page(app)
    monkeypatch.setattr(app.services.sessions.store, "get", lambda key: None)
    browser = app.browser()
    app.standin.reset_counts()
    answer = visit(app, browser, path, ALICE, round_trips=2)
    assert_error_page(answer, "session storage", status=503)
    assert app.standin.authorize_calls == 2


def test_an_unreadable_store_gives_a_page(app_under_test: AppUnderTest,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A store that raises on every read (a server gone): pages say so; no sign-in is started,
    which could not help."""
    app = app_under_test
    path = sign_in_api_page(app)
    browser = app.browser()
    visit(app, browser, path, ALICE)

    def broken(*_: object) -> Entry | None:
        raise StoreError("connection refused")

    def break_reads(store: object) -> None:
        # Every way of reading: a shared store reads several versions in one call.
        for method in ("get", "version", "versions_of"):
            monkeypatch.setattr(store, method, broken)

    # The token cache alone: sessions read from the store, not from their in-process copies,
    # whose check reads the cache's version along with the session's (one call to a shared
    # store, which this fault would not reach).
    break_reads(app.services.caches.store)
    monkeypatch.setattr(app.services.sessions, "l1", False)
    app.standin.reset_counts()
    assert_error_page(browser.get(app.url(path)), "session storage", status=503)
    # Then the sessions' store too, with their copies in use.
    monkeypatch.setattr(app.services.sessions, "l1", app.services.caches.l1)
    break_reads(app.services.sessions.store)
    assert_error_page(browser.get(app.url(path)), "session storage", status=503)
    assert app.standin.authorize_calls == 0
    assert browser.get(app.url("/")).status_code == 200


def test_one_account_signing_in_again_and_again_evicts_nobody_else(
        make_app: Callable[..., AppUnderTest]) -> None:
    """Sessions have their own bound and a per-account limit: with the token cache's cap at 5,
    8 sign-ins of one account (more than either limit) leave other users signed in."""
    app = make_app(TOKEN_CACHE_MAX_ENTRIES="5", SESSIONS_PER_ACCOUNT="3")
    path = sign_in_api_page(app)
    bob = app.browser()
    visit(app, bob, path, BOB)
    alices = []
    for _ in range(8):
        alices.append(app.browser())
        visit(app, alices[-1], path, ALICE)
    page = bob.get(app.url(path))
    assert page.status_code == 200 and BOB.oid in page.text
    signed_in = [b for b in alices if ALICE.oid in b.get(app.url(path)).text]
    assert signed_in == alices[-3:]


def test_stores_are_private_and_sessions_are_json(make_app: Callable[..., AppUnderTest],
                                                  tmp_path: Path) -> None:
    folder = tmp_path / "store"
    (folder / "sessions").mkdir(parents=True, mode=0o755)  # as a library would have left it
    os.chmod(folder, 0o755)
    app = make_app(TOKEN_CACHE_BACKEND="filesystem", TOKEN_CACHE_DIR=str(folder))
    for directory in (folder, folder / "sessions", folder / "locks", folder / "sessions/locks"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    visit(app, app.browser(), sign_in_api_page(app), ALICE)
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert files and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)
    sessions = list((folder / "sessions").glob("*.json"))
    assert sessions
    for entry in sessions:
        json.loads(entry.read_text(encoding="utf-8").split("\n", 1)[1])  # JSON, not pickle


class CountingStore:
    """Counts the calls made to a store, passing them on."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.store, name)
        if not callable(method):
            return method  # an attribute (`blocking`), not a call

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            return method(*args, **kwargs)

        return counted


@pytest.mark.parametrize("backend", ["memory", "filesystem"])
def test_the_read_path_takes_no_lock_and_writes_nothing(
        make_app: Callable[..., AppUnderTest], backend: str) -> None:
    app = make_app(TOKEN_CACHE_BACKEND=backend)
    path = sign_in_api_page(app)
    browser = app.browser()
    visit(app, browser, path, ALICE)
    browser.get(app.url(path))
    caches, sessions = CountingStore(app.services.caches.store), CountingStore(
        app.services.sessions.store)
    app.services.caches.store = caches
    app.services.sessions.store = sessions
    app.standin.reset_counts()
    for _ in range(10):
        assert ALICE.oid in browser.get(app.url(path)).text
    assert sum(app.standin.token_grants.values()) == 0
    for store in (caches, sessions):
        assert not {"lock", "set", "delete"} & set(store.calls), store.calls
    # A refresh is due: the lock is taken, the entry re-read and written once.
    expire_access_tokens(app, ALICE)
    caches.calls.clear()
    assert ALICE.oid in browser.get(app.url(path)).text
    assert caches.calls.get("lock") == 1 and caches.calls.get("set") == 1
    assert grants(app, "refresh_token") == 1


def test_a_token_past_its_refresh_time_is_refreshed_once_for_concurrent_requests(
        app_under_test: AppUnderTest) -> None:
    """Still valid, but past `refresh_in`: MSAL refreshes it inside its silent call, which the
    lock-free pass must not do (20 requests would refresh 20 times)."""
    from concurrent.futures import ThreadPoolExecutor

    app = app_under_test
    path = sign_in_api_page(app)
    browser = app.browser()
    visit(app, browser, path, ALICE)
    with app.services.caches.open(home_account_id(app, ALICE)) as cache:
        for entry in list(cache.search(cache.CredentialType.ACCESS_TOKEN)):
            cache.modify(cache.CredentialType.ACCESS_TOKEN, entry,
                         {"refresh_on": str(int(time.time()) - 10)})
    app.standin.reset_counts()
    with ThreadPoolExecutor(max_workers=20) as pool:
        pages = list(pool.map(lambda _: browser.get(app.url(path)), range(20)))
    assert [p.status_code for p in pages] == [200] * 20
    assert grants(app, "refresh_token") == 1


def test_another_worker_process_serves_a_user_signed_in_elsewhere(
        make_app: Callable[..., AppUnderTest], server_cert_files: tuple[str, str]) -> None:
    """With the filesystem backend, a second worker (a new app instance on the same store: its
    own MSAL clients, discovery not yet fetched) serves a signed-in user's pages, sees a refresh
    made by the first, and a sign-out made through the first."""
    app = make_app(TOKEN_CACHE_BACKEND="filesystem")
    path = sign_in_api_page(app)
    browser = app.browser()
    visit(app, browser, path, ALICE)
    with serve(lambda _: app.env, server_cert_files, host="localhost") as (
            other_url, _):
        # Cookies of localhost go to every port of it: the browser is the same user.
        page = browser.get(other_url + path)
        assert page.status_code == 200 and ALICE.oid in page.text
        expire_access_tokens(app, ALICE)
        app.standin.reset_counts()
        assert ALICE.oid in browser.get(app.url(path)).text  # the first worker refreshes
        assert ALICE.oid in browser.get(other_url + path).text  # the second uses that token
        assert grants(app, "refresh_token") == 1
        sign_out(app, browser)
        assert ALICE.oid not in browser.get(other_url + path).text


def test_entries_encrypted_at_rest_are_bound_to_their_account_and_keys_rotate(
        make_app: Callable[..., AppUnderTest]) -> None:
    """TOKEN_CACHE_ENCRYPTION_KEYS: the store holds no token or claim in the clear; Alice's
    entry copied under Bob's key gives Bob a new sign-in, never Alice's tokens; a new key put
    in front keeps everyone signed in, and rewrites use it."""
    old, new = new_key(), new_key()
    app = make_app(TOKEN_CACHE_ENCRYPTION_KEYS=old)
    path = sign_in_api_page(app)
    alice, bob = app.browser(), app.browser()
    visit(app, alice, path, ALICE)
    visit(app, bob, path, BOB)
    caches, sessions = app.services.caches, app.services.sessions
    assert isinstance(caches.store, EncryptedStore) and isinstance(sessions.store, EncryptedStore)
    alice_key = caches.key(home_account_id(app, ALICE))
    raw = caches.store.inner.get(alice_key)
    assert raw is not None and raw.value.startswith("gcm1.")
    plain = caches.store.get(alice_key)
    assert plain is not None and "RefreshToken" in plain.value
    secrets_in_clear = [entry["secret"] for section in ("AccessToken", "RefreshToken")
                        for entry in json.loads(plain.value)[section].values()]
    assert all(secret not in raw.value for secret in secrets_in_clear)
    session = sessions.store.inner.get(sessions._key(cookie(alice, session_cookie(app))))
    assert session is not None and ALICE.name not in session.value

    # Someone with write access to the store copies Alice's session under Bob's session key:
    # it does not decrypt there (the storage key is its associated data), so Bob's browser is
    # signed out instead of becoming Alice's.
    bob_session = sessions._key(cookie(bob, session_cookie(app)))
    saved_bob_session = sessions.store.inner.get(bob_session)
    assert saved_bob_session is not None
    sessions.store.inner.set(bob_session, session.value)
    home = bob.get(app.url("/")).text
    assert ALICE.name not in home and BOB.name not in home
    sessions.store.inner.set(bob_session, saved_bob_session.value)
    assert BOB.name in bob.get(app.url("/")).text
    # And Alice's token cache under Bob's account key.
    caches.store.inner.set(caches.key(home_account_id(app, BOB)), raw.value)
    before = app.standin.authorize_calls
    page = visit(app, bob, path, BOB)
    assert page.status_code == 200 and BOB.oid in page.text and ALICE.oid not in page.text
    assert app.standin.authorize_calls == before + 1  # Bob signed in again

    # Rotation: the new key in front; entries written with the old one are still read.
    for layer in (caches, sessions):
        assert isinstance(layer.store, EncryptedStore)
        layer.store = EncryptedStore(layer.store.inner, parse_keys(f"{new},{old}"))
    app.standin.reset_counts()
    assert ALICE.oid in alice.get(app.url(path)).text
    assert app.standin.authorize_calls == 0
    expire_access_tokens(app, ALICE)  # the refresh writes the entry again, with the new key
    assert ALICE.oid in alice.get(app.url(path)).text
    assert isinstance(caches.store, EncryptedStore)
    only_new = EncryptedStore(caches.store.inner, parse_keys(new)).get(alice_key)
    assert only_new is not None and "RefreshToken" in only_new.value
