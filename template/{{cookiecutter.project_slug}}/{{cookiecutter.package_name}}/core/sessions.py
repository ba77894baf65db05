# Managed by the msal-webapp template: regenerate rather than edit (your code goes outside core/).
"""Server-side web sessions in a store from core/stores/: the cookie holds only a random id.

- Stored as JSON, never pickle: write access to the store must not mean code execution.
- The store key is a hash of the session id, so the store's listing (file names, keys) does
  not hold ids that could be replayed as cookies.
- An in-process copy of each session (the first-level cache, TOKEN_CACHE_L1) is used while the
  store reports the same version for it; that check also reads the version of the account's
  token cache (`read_along`), so that a shared store answers a signed-in page's two reads in
  one round trip.
- Written only when the session changed, or to renew its sliding lifetime at most once every
  `RENEW_AFTER_SECONDS`; never on a plain read.
- `save` runs once per request, before the response leaves (core/flows.py `save_session`):
  a session that cannot be saved becomes an error page, not a redirect into a sign-in loop.
- Each account keeps at most `sessions_per_account` sessions (the oldest go first), so one
  account signing in again and again cannot evict other users' sessions.
- Each session signed in with an ID token's `sid` (the user's session at the provider) is also
  listed under that sid, so that the provider's front-channel sign-out, which names only the
  sid, ends every session of it (`end_provider_session`), in every instance sharing the store.

A value put in the session must be JSON: strings, numbers, booleans, lists and dicts. Assign
values (`session["k"] = v`) rather than mutating them in place, which is not seen as a change.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Hashable, Iterator, MutableMapping
from typing import Any, Literal, NamedTuple, TypeVar, overload

import cachetools

from .errors import StoreUnavailable
from .stores import RENEW_AFTER_SECONDS, CorruptEntries, KnownVersion, Store, StoreError

log = logging.getLogger(__name__)

FORMAT = 1
# What a save asks of the session cookie: set it to the session's id, delete it, or nothing.
CookieAction = Literal["set", "delete"] | None
# In-process copies of stored sessions, for the read path (TOKEN_CACHE_L1).
SESSION_COPIES = 4096


class ProviderSession(NamedTuple):
    """The user's session at the identity provider, as the ID token names it."""

    issuer: str  # the ID token's `iss`: a `sid` is unique only within its issuer
    sid: str


class EndedSessions(NamedTuple):
    """What `end_provider_session` did."""

    ended: int  # sessions deleted
    accounts_left_without_session: list[str]  # their tokens are no longer used by any session


class _Copy(NamedTuple):
    version: Hashable
    value: str  # as stored (decrypted), parsed again for each request: nothing is shared
    account: str | None


class SessionState(MutableMapping[str, Any]):
    """One request's session: a dict of JSON values, plus what the store layer needs."""

    def __init__(self, sid: str | None = None, data: dict[str, Any] | None = None, *,
                 account: str | None = None, saved_at: float = 0.0,
                 load_failed: bool = False,
                 token_cache_version: KnownVersion | None = None) -> None:
        self.sid = sid  # None until the session is first saved
        self._data = data or {}
        self.account = account  # the home account id the session was saved for
        self.saved_at = saved_at
        self.load_failed = load_failed  # the store could not be read (not "no session")
        # The account's token-cache version, when it was read along with the session.
        self.token_cache_version = token_cache_version
        self.modified = False
        self.rotate_requested = False
        # Values derived from the data, kept for the rest of the request (e.g. the parsed user),
        # each with the data it was derived from, so that a change is never served stale.
        self.derived: dict[str, tuple[Any, Any]] = {}

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._data[key] = value
        self.modified = True

    def __delitem__(self, key: str) -> None:
        del self._data[key]
        self.modified = True

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        if self._data:
            self._data = {}
            self.modified = True

    def rotate(self) -> None:
        """Give the session a new id when it is next saved (at sign-in: no fixation)."""
        self.rotate_requested = True
        self.modified = True


State = TypeVar("State", bound=SessionState)


class Sessions:
    def __init__(self, store: Store, prefix: str, *, lifetime_seconds: int,
                 per_account: int, clock: Callable[[], float] = time.time, l1: bool = True,
                 read_along: Callable[[str], tuple[Store, str]] | None = None) -> None:
        """`read_along(account)`: the store and key of the account's token cache, whose
        version each load reads with the session's (see SessionState.token_cache_version)."""
        self.store = store
        self.prefix = prefix
        self.lifetime_seconds = lifetime_seconds
        self.per_account = per_account
        self.clock = clock
        self.l1 = l1
        self.read_along = read_along
        self._copies: cachetools.LRUCache[str, _Copy] = cachetools.LRUCache(SESSION_COPIES)
        self._copies_guard = threading.Lock()  # cachetools caches are not thread-safe
        self._corrupt = CorruptEntries(log, "session")

    def _key(self, sid: str) -> str:
        return f"{self.prefix}:session:{hashlib.sha256(sid.encode()).hexdigest()}"

    def _index_key(self, account: str) -> str:
        return f"{self.prefix}:sessions-of:{account}"

    def _sid_index_key(self, provider_sid: str) -> str:
        # Hashed: the sid comes from outside (the front-channel request) and may be anything.
        return f"{self.prefix}:sessions-of-sid:{hashlib.sha256(provider_sid.encode()).hexdigest()}"

    # -- load ----------------------------------------------------------------------------------
    @overload
    def load(self, sid: str | None) -> SessionState: ...

    @overload
    def load(self, sid: str | None, kind: type[State]) -> State: ...

    def load(self, sid: str | None, kind: type[SessionState] = SessionState) -> SessionState:
        """The session named by the cookie's id; an empty one if none, expired or corrupt.

        `kind`: the class to return, a SessionState subclass an adapter adds its framework's
        session interface to.
        """
        if not sid or len(sid) > 128:
            return kind()
        key = self._key(sid)
        try:
            value, version, along = self._read(key)
        except StoreError as exc:
            # One line, no traceback: an outage is expected, and logged on every request.
            log.warning("session store unreadable: %s", exc)
            return kind(load_failed=True)
        if value is None:
            return kind()
        parsed = _parse(value)
        if parsed is None:
            self._forget(key)
            self._corrupt.discard(self.store, key)
            return kind()
        data, account, saved_at = parsed
        if saved_at + self.lifetime_seconds < self.clock():
            return kind()  # expired; the store's own expiry removes it
        if self.l1 and version is not None:
            with self._copies_guard:
                self._copies[key] = _Copy(version, value, account)
        return kind(sid, data, account=account, saved_at=saved_at, token_cache_version=along)

    def _read(self, key: str) -> tuple[str | None, Hashable | None, KnownVersion | None]:
        """The stored session (None if absent); its version if it was read from the store
        (None when served from the in-process copy); and, from the copy, the version of its
        account's token cache read in the same call."""
        with self._copies_guard:
            copy = self._copies.get(key) if self.l1 else None
        if copy is not None:
            reads = [(self.store, key)]
            along = self.read_along(copy.account) if self.read_along and copy.account else None
            if along is not None:
                reads.append(along)
            versions = self.store.versions_of(reads)
            if versions[0] == copy.version:
                return copy.value, None, (
                    KnownVersion(along[1], versions[1], time.monotonic())
                    if along is not None else None)
        entry = self.store.get(key)
        if entry is None:
            self._forget(key)
            return None, None, None
        return entry.value, entry.version, None

    def _forget(self, key: str) -> None:
        with self._copies_guard:
            self._copies.pop(key, None)

    # -- save ----------------------------------------------------------------------------------
    def save_due(self, state: SessionState, now: float | None = None) -> bool:
        """Whether `save` has anything to write (a change, or the sliding renewal)."""
        now = self.clock() if now is None else now
        return state.modified or (state.sid is not None
                                  and now - state.saved_at >= RENEW_AFTER_SECONDS)

    def save(self, state: SessionState, account: str | None,
             provider_session: ProviderSession | None = None) -> CookieAction:
        """Persist `state` if it changed (or is due for renewal): what the session cookie
        must do ("set" to `state.sid`, "delete", or None: nothing).

        `account` is the signed-in user's home account id, if any; `provider_session` the
        provider session its ID token named (`sid`), if any. Raises StoreUnavailable.
        """
        now = self.clock()
        if not self.save_due(state, now):
            return None
        try:
            if not state:
                action: CookieAction = None
                if state.sid is not None:
                    action = "delete"
                    self.retire(state.sid)
                    state.sid = None
                state.modified = False
                return action
            old_sid = state.sid
            sid = (secrets.token_urlsafe(32) if old_sid is None or state.rotate_requested
                   else old_sid)
            value = json.dumps({"format": FORMAT, "data": dict(state), "account": account,
                                "saved_at": now}, separators=(",", ":"))
            key = self._key(sid)
            self.store.set(key, value)
            self._forget(key)  # the next load reads the new version
            if old_sid is not None and old_sid != sid:
                self.retire(old_sid)
            if account and (account != state.account or old_sid != sid):
                self._register(account, sid, now)
                if provider_session is not None and provider_session.sid:
                    self._register_provider_session(provider_session, account, sid)
            elif account:
                # A session renewed (or changed) keeps its indexes alive as well: a read renews
                # an entry's sliding expiry, and they are written only at sign-in.
                self.store.version(self._index_key(account))
                if provider_session is not None and provider_session.sid:
                    self.store.version(self._sid_index_key(provider_session.sid))
        except StoreError as exc:
            raise StoreUnavailable("session store", str(exc)) from exc
        state.sid, state.account, state.saved_at, state.modified = sid, account, now, False
        state.rotate_requested = False
        return "set"

    def retire(self, sid: str) -> None:
        """End a session other than the request's own (the one a browser had before signing
        in again, or one replaced by a new id); a failure only leaves it to expire."""
        self._forget(self._key(sid))
        try:
            self.store.delete(self._key(sid))
        except StoreError as exc:
            log.warning("a session could not be deleted; it expires on its own: %s", exc)
        # The per-account index drops ids of deleted sessions when it is next written.

    # -- per-account limit ---------------------------------------------------------------------
    def _register(self, account: str, sid: str, now: float) -> None:
        """Record `sid` as one of `account`'s sessions, deleting the oldest beyond the limit."""
        key = self._index_key(account)
        with self.store.lock(key):
            entry = self.store.get(key)
            known = _parse_index(entry.value) if entry else []
            digest = self._key(sid)
            live = [(k, t) for k, t in known
                    if k != digest and now - t < self.lifetime_seconds
                    and self.store.version(k) is not None]
            live.append((digest, now))
            live.sort(key=lambda item: item[1])
            for old_key, _ in live[:-self.per_account]:
                self.store.delete(old_key)
            live = live[-self.per_account:]
            self.store.set(key, json.dumps(live, separators=(",", ":")))


    # -- per-provider-session index (front-channel sign-out) ------------------------------------
    def _register_provider_session(self, provider: ProviderSession, account: str,
                                   sid: str) -> None:
        """List session `sid` of `account` under the provider session that signed it in; the
        entries of sessions that no longer exist are dropped as the list is written."""
        key = self._sid_index_key(provider.sid)
        with self.store.lock(key):
            entry = self.store.get(key)
            known = _parse_sid_index(entry.value) if entry else []
            digest = self._key(sid)
            live = [item for item in known
                    if item[0] != digest and self.store.version(item[0]) is not None]
            live.append((digest, account, provider.issuer))
            self.store.set(key, json.dumps(live, separators=(",", ":")))

    def end_provider_session(self, provider_sid: str, issuer: str | None) -> EndedSessions:
        """Delete every session signed in under the provider session `provider_sid` (only
        those whose ID token came from `issuer`, when given): the provider's front-channel
        sign-out. Says which of their accounts have no session left, here or in any instance
        sharing the store: the caller removes those accounts' tokens. Raises StoreUnavailable.
        """
        key = self._sid_index_key(provider_sid)
        try:
            with self.store.lock(key):
                entry = self.store.get(key)
                known = _parse_sid_index(entry.value) if entry else []
                ending = [item for item in known if issuer is None or item[2] == issuer]
                for session_key, _, _ in ending:
                    self._forget(session_key)
                    self.store.delete(session_key)
                keep = [item for item in known if item not in ending]
                if keep:
                    self.store.set(key, json.dumps(keep, separators=(",", ":")))
                elif entry is not None:
                    self.store.delete(key)
            accounts = sorted({account for _, account, _ in ending})
            left = [account for account in accounts if not self._has_sessions(account)]
        except StoreError as exc:
            raise StoreUnavailable("session store", str(exc)) from exc
        return EndedSessions(len(ending), left)

    def _has_sessions(self, account: str) -> bool:
        """Whether a session of `account` still exists (the store's expiry ends the others)."""
        entry = self.store.get(self._index_key(account))
        known = _parse_index(entry.value) if entry else []
        return any(self.store.version(key) is not None for key, _ in known)


def _parse(value: str) -> tuple[dict[str, Any], str | None, float] | None:
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):
        return None
    if not isinstance(parsed, dict) or parsed.get("format") != FORMAT:
        return None
    data, account, saved_at = parsed.get("data"), parsed.get("account"), parsed.get("saved_at")
    if (not isinstance(data, dict) or not (account is None or isinstance(account, str))
            or not isinstance(saved_at, (int, float))):
        return None
    return data, account, float(saved_at)


def _parse_index(value: str) -> list[tuple[str, float]]:
    try:
        parsed = json.loads(value)
        return [(str(k), float(t)) for k, t in parsed]
    except (ValueError, TypeError, RecursionError):
        return []  # a corrupt index is rebuilt from this session on


def _parse_sid_index(value: str) -> list[tuple[str, str, str]]:
    """(session key, account, issuer) of each session listed under a provider session."""
    try:
        parsed = json.loads(value)
        return [(str(k), str(a), str(i)) for k, a, i in parsed]
    except (ValueError, TypeError, RecursionError):
        return []  # a corrupt list ends no session: they expire on their own
