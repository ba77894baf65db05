# Managed by the msal-webapp template: regenerate rather than edit (your code goes outside core/).
"""One serialized MSAL token cache per signed-in account, in a store from core/stores/.

Why per account: one cache shared by all users makes every lookup scan every user's entries and
every write rewrite all of them; one small entry per account stays flat as users grow.

Safety rules, whatever the store:
- the key is derived from MSAL's `home_account_id` (plus a prefix naming the app);
- a loaded entry is used only if EVERY entry in it (accounts, access, refresh and ID tokens)
  carries the requested `home_account_id`, with the fields MSAL reads; anything else is corrupt:
  logged once, deleted, and the user signs in again (never someone else's tokens, never a 500);
- a store that cannot be read is reported (`StoreUnavailable`), not mistaken for "no tokens";
- a per-account lock makes concurrent requests of one user refresh a token once, not once each
  (with rotating refresh tokens, parallel refreshes waste grants and can revoke each other).

The read path takes no lock and writes nothing: `peek` serves an in-process copy of the parsed
entry (the first-level cache, TOKEN_CACHE_L1), valid while the store reports the same version for
it (see `Entry.version`), so a refresh or a sign-out in another worker process or app instance
is never missed. With it off, every use reads and parses the entry from the store.

The app's own tokens (client credentials, for app-only APIs) are one more cache in the same
store, shared by every process and instance, under the same rules: `APP_TOKENS` (None) in place
of an account id names it. Its key (`<prefix>:app_token_cache`) is outside the accounts' key
space, and its entry may hold nothing but access tokens of no account.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Hashable, Iterator
from typing import Any

import cachetools
import msal

from .errors import StoreUnavailable
from .stores import CorruptEntries, KnownVersion, Store, StoreError, lock_or_go_on

log = logging.getLogger(__name__)

_SECRET_SECTIONS = frozenset({"AccessToken", "RefreshToken", "IdToken"})
# In-process copies of parsed entries, for the lock-free read path.
PARSED_COPIES = 4096


# Names the app's own token cache where an account's id is expected.
APP_TOKENS = None


def parse_entry(blob: str, home_account_id: str | None) -> dict[str, Any] | None:
    """The parsed cache entry if it is well-formed and wholly `home_account_id`'s, else None.
    APP_TOKENS: the app's own cache, which holds access tokens of no account only (what MSAL
    keeps of client credentials answers)."""
    try:
        data = json.loads(blob)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        return None
    if not isinstance(data, dict):
        return None
    has_account = False
    for section, entries in data.items():
        if not isinstance(entries, dict):
            return None
        for entry in entries.values():
            if not isinstance(entry, dict):
                return None
            if section == "AppMetadata":
                continue
            if home_account_id is APP_TOKENS and section != "AccessToken":
                return None
            # Flat entries of strings and numbers, as MSAL writes them; every one of them
            # (known sections or not) must name this account.
            if entry.get("home_account_id") != home_account_id or any(
                    isinstance(v, (dict, list)) for v in entry.values()):
                return None
            if section in _SECRET_SECTIONS and not isinstance(entry.get("secret"), str):
                return None
            if section == "AccessToken" and not (
                    isinstance(entry.get("target"), str)
                    and str(entry.get("expires_on", "")).isdigit()):
                return None
            has_account = has_account or section == "Account"
    return data if has_account or home_account_id is APP_TOKENS else None


def _cache_of(data: dict[str, Any] | None) -> msal.SerializableTokenCache:
    """An MSAL cache holding `data` (a checked entry), or an empty one for None."""
    cache = msal.SerializableTokenCache()
    if data is not None:
        cache.deserialize(json.dumps(data))
    return cache


def _holds_tokens(cache: msal.SerializableTokenCache) -> bool:
    return any(True for _ in cache.search(cache.CredentialType.REFRESH_TOKEN)) or any(
        True for _ in cache.search(cache.CredentialType.ACCESS_TOKEN))


class AccountCaches:
    """Opens, checks, saves and removes the per-account MSAL caches."""

    def __init__(self, store: Store, prefix: str, *, l1: bool = True) -> None:
        self.store = store
        self.prefix = prefix
        self.l1 = l1
        self._copies: cachetools.LRUCache[str, tuple[Hashable, msal.SerializableTokenCache]] = (
            cachetools.LRUCache(PARSED_COPIES))
        self._copies_guard = threading.Lock()
        # Wrong shape includes "not wholly this account's" (see parse_entry).
        self._corrupt = CorruptEntries(log, "token cache")

    def key(self, home_account_id: str | None) -> str:
        if home_account_id is APP_TOKENS:
            return f"{self.prefix}:app_token_cache"
        return f"{self.prefix}:token_cache:{home_account_id}"

    # -- reading -------------------------------------------------------------------------------
    def _read(self, home_account_id: str | None) -> tuple[Hashable, dict[str, Any] | None]:
        """(version, parsed entry or None); a corrupt entry is deleted."""
        key = self.key(home_account_id)
        try:
            entry = self.store.get(key)
        except StoreError as exc:
            raise StoreUnavailable("token cache", str(exc)) from exc
        if entry is None:
            return None, None
        data = parse_entry(entry.value, home_account_id)
        if data is None:
            self._corrupt.discard(self.store, key)
        return entry.version, data

    def peek(self, home_account_id: str | None, known: KnownVersion | None = None
             ) -> msal.SerializableTokenCache:
        """The account's cache for reading only: no lock, no write; do not modify it.

        Served from an in-process copy while the store reports the same version; `known`: the
        version as this request already read it (with its session), if it did.
        """
        key = self.key(home_account_id)
        if not self.l1:
            _, data = self._read(home_account_id)
            return _cache_of(data)
        if known is not None and known.for_key(key, time.monotonic()):
            version = known.version
        else:
            try:
                version = self.store.version(key)
            except StoreError as exc:
                raise StoreUnavailable("token cache", str(exc)) from exc
        if version is None:
            return msal.SerializableTokenCache()
        with self._copies_guard:
            copy = self._copies.get(key)
        if copy is not None and copy[0] == version:
            return copy[1]
        version, data = self._read(home_account_id)
        cache = _cache_of(data)
        if data is not None:
            with self._copies_guard:
                self._copies[key] = (version, cache)
        return cache

    def peek_ready(self, home_account_id: str | None, known: KnownVersion | None = None
                   ) -> msal.SerializableTokenCache | None:
        """What `peek` gives when giving it waits on no I/O, else None: for an async adapter,
        which may then use it on its event loop. Always with a store that does not block (the
        memory store); else only the in-process copy, when `known` (the version this request
        read along with its session) says it is current."""
        if not self.store.blocking:
            return self.peek(home_account_id, known)
        key = self.key(home_account_id)
        if not self.l1 or known is None or known.version is None or not known.for_key(
                key, time.monotonic()):
            return None
        with self._copies_guard:
            copy = self._copies.get(key)
        return copy[1] if copy is not None and copy[0] == known.version else None

    # -- read-modify-write, under the account's lock ------------------------------------------
    def _lock(self, home_account_id: str | None) -> contextlib.AbstractContextManager[None]:
        """The account's lock, or none if the store cannot lock (see `lock_or_go_on`)."""
        return lock_or_go_on(self.store, self.key(home_account_id), log, "token cache")

    @contextlib.contextmanager
    def open(self, home_account_id: str | None) -> Iterator[msal.SerializableTokenCache]:
        """Yield the account's cache under its lock; persist it afterwards if it changed.

        A failed write is logged and the request goes on with the tokens it got: the next
        request refreshes again.
        """
        with self._lock(home_account_id):
            _, data = self._read(home_account_id)
            cache = _cache_of(data)
            yield cache
            if cache.has_state_changed:
                try:
                    self._save(home_account_id, cache)
                except StoreError as exc:
                    log.warning("token cache write failed; the next request refreshes again: %s",
                                exc)

    def _save(self, home_account_id: str | None, cache: msal.SerializableTokenCache) -> None:
        key = self.key(home_account_id)
        if _holds_tokens(cache):
            self.store.set(key, cache.serialize())
        else:
            self.store.delete(key)

    def merge(self, home_account_id: str, fresh: msal.SerializableTokenCache) -> None:
        """Fold a cache filled by a code redemption into the account's stored cache.

        Entries with the same key (the account, its refresh token) are replaced by the fresh
        ones; access tokens for other resources obtained earlier are kept. Raises
        StoreUnavailable if the result cannot be stored: the sign-in cannot complete then.
        """
        with self._lock(home_account_id):
            try:
                _, stored = self._read(home_account_id)
            except StoreUnavailable:
                stored = None  # unreadable: start over from the fresh sign-in's tokens
            merged: dict[str, dict[str, Any]] = stored or {}
            for section, entries in json.loads(fresh.serialize()).items():
                merged.setdefault(section, {}).update(entries)
            try:
                self._save(home_account_id, _cache_of(merged))
            except StoreError as exc:
                raise StoreUnavailable("token cache", str(exc)) from exc

    def remove(self, home_account_id: str) -> None:
        """Delete the account's cache (sign-out); raises StoreUnavailable if it cannot."""
        key = self.key(home_account_id)
        with self._lock(home_account_id):
            try:
                self.store.delete(key)
            except StoreError as exc:
                raise StoreUnavailable("token cache", str(exc)) from exc
        with self._copies_guard:
            self._copies.pop(key, None)
