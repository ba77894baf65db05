# Managed by the msal-webapp template: regenerate rather than edit (your code goes outside core/).
"""Who may do what: app roles, named groups (the groups overage included) and tenants.

One decision for every framework: each adapter's guard (Flask `login_required(roles=...)`,
Django's decorator and mixin, FastAPI's `require(...)`) builds a `Requirement` and asks
`core/flows.py` `authorized_user`, which asks this module.

- Within `roles`, any one role is enough; within `groups`, any one group; when a page names
  both, the user needs one of each (all-of across the two lists).
- Roles come from the ID token's `roles` claim (the app roles assigned to the user, or to a
  group of theirs, for this app), kept in the session: a guard on roles reads nothing else.
- Groups come from the ID token's `groups` claim when Entra sends it (only the app's named
  groups are kept in the session). Above its limit (200 groups in a JWT) Entra sends
  `_claim_names`/`_claim_sources` instead, the "groups overage": the app then asks Microsoft
  Graph `checkMemberGroups` (transitive) for its named groups, with the user's token (or the
  app's, GROUPS_OVERAGE_TOKEN=app), and keeps the answer per account in the token caches'
  store for GROUPS_CACHE_SECONDS. Only a page that needs a group reads it: a page guarded by
  roles alone, or not guarded, never does. The endpoint named by `_claim_sources` (the retired
  Azure AD Graph) is never called.

Why `checkMemberGroups` rather than `getMemberObjects`: the app decides on its named groups
only, and checkMemberGroups answers exactly those (20 per request), however many groups the
user is in; getMemberObjects returns every group (thousands for the users who hit the
overage) for the app to throw away. For the signed-in user, Microsoft's docs list `User.Read`
as its least privileged delegated permission (no admin consent); GROUPS_OVERAGE_SCOPES can ask
for the next ones it lists instead (User.ReadBasic.All and GroupMember.Read.All). App-only
(`/users/{id}/checkMemberGroups`) needs the application permissions User.Read.All and
GroupMember.Read.All (admin consent).

A failure to learn the groups (Graph down, a 403, the store) is an error page, never access.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import cachetools
import requests

from .auth import User
from .credentials import check_callable
from .downstream import ApiRequest, ApiResponse, NeedToken, call_plan, run_sync
from .errors import DownstreamApiError, StoreUnavailable
from .settings import ApiSettings, Settings
from .stores import KeyedLocks, KnownVersion, Store, StoreError, lock_or_go_on

log = logging.getLogger(__name__)

# Graph's checkMemberGroups takes at most 20 group ids per request (Microsoft's docs).
CHECK_MEMBER_GROUPS_BATCH = 20
GroupsSource = Literal["token", "graph", "unresolved"]


class UnknownGroup(ValueError):
    """A guard names a group the app does not define: a mistake in the code, not the user's."""


class GroupsUnavailable(Exception):
    """The user's groups could not be learnt from Microsoft Graph (the page says so)."""

    def __init__(self, message: str, status: int = 503) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class TenantCheckFailed(Exception):
    """ALLOWED_TENANTS_HOOK raised: no answer, so no access."""


@dataclass(frozen=True)
class Requirement:
    """What a page needs: one of `roles` (if any) and one of `groups` (names, if any)."""

    roles: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()

    @property
    def needs_groups(self) -> bool:
        return bool(self.groups)

    def describe(self) -> str:
        """In words, for the denied page and the log."""
        parts = []
        if self.roles:
            parts.append(("the role " if len(self.roles) == 1 else "one of the roles ")
                         + ", ".join(self.roles))
        if self.groups:
            parts.append(("membership of the group " if len(self.groups) == 1
                          else "membership of one of the groups ") + ", ".join(self.groups))
        return " and ".join(parts) or "nothing"


NO_REQUIREMENT = Requirement()


def requirement(roles: Iterable[str] = (), groups: Iterable[str] = ()) -> Requirement:
    """A requirement from a guard's arguments (a single string counts as one name)."""
    return Requirement(tuple([roles] if isinstance(roles, str) else roles),
                       tuple([groups] if isinstance(groups, str) else groups))


@dataclass(frozen=True)
class CurrentUser:
    """The signed-in user as your code reads it, the same in every framework."""

    object_id: str  # Entra's `oid` ("" from other providers)
    tenant_id: str  # Entra's `tid` ("" from other providers)
    name: str
    username: str
    roles: frozenset[str]  # app role values from the ID token
    # The app's named groups (authorization.groups) the user is a member of, as far as known:
    # from the ID token ("token"), from Microsoft Graph for an overage user on a page that
    # needed a group ("graph"), or not looked up on this page ("unresolved", overage only).
    groups: frozenset[str]
    groups_source: GroupsSource
    account: User = field(repr=False)  # the session's user: what API calls are made for

    def has_role(self, *roles: str) -> bool:
        return any(role in self.roles for role in roles)

    def in_group(self, *groups: str) -> bool:
        return any(group in self.groups for group in groups)


@dataclass(frozen=True)
class Denied:
    """The user lacks what the page needs (`missing`, in words)."""

    user: CurrentUser
    missing: str
    tenant: bool = False  # the user's organization may not use the app (Tenants)


Decision = CurrentUser | Denied


class Tenants:
    """Which tenants' users may use the app: ALLOWED_TENANT_IDS, then ALLOWED_TENANTS_HOOK
    (a function of the app's, for SaaS apps whose customers change at run time), asked at
    sign-in and on every guarded page, its answers kept for TENANT_HOOK_CACHE_SECONDS."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._hook: Callable[[str], Any] | None = (
            check_callable(settings.allowed_tenants_hook) if settings.allowed_tenants_hook
            else None)
        self._answers: cachetools.TTLCache[str, bool] = cachetools.TTLCache(
            4096, max(settings.tenant_hook_cache_seconds, 0.001))
        self._guard = threading.Lock()  # cachetools caches are not thread-safe

    @property
    def checked(self) -> bool:
        """Whether any tenant may be refused (else nothing needs checking)."""
        return bool(self.settings.allowed_tenant_ids) or self._hook is not None

    def known(self, tenant_id: str) -> bool | None:
        """Whether `tenant_id` may use the app, without calling the hook: None when only the
        hook can tell (then `allowed`, which may block)."""
        allowed = self.settings.allowed_tenant_ids
        if allowed and tenant_id.lower() not in allowed:
            return False
        if self._hook is None:
            return True
        with self._guard:
            return self._answers.get(tenant_id.lower())

    def allowed(self, tenant_id: str) -> bool:
        """Raises TenantCheckFailed when the hook fails (its answer is not kept then)."""
        known = self.known(tenant_id)
        if known is not None:
            return known
        assert self._hook is not None
        try:
            answer = self._hook(tenant_id.lower()) is True
        except Exception as exc:
            log.exception("ALLOWED_TENANTS_HOOK failed for tenant %s", tenant_id)
            raise TenantCheckFailed(str(exc)) from exc
        with self._guard:
            self._answers[tenant_id.lower()] = answer
        return answer


class Authorization:
    """The decisions of core/flows.py's guard; one per app."""

    def __init__(self, settings: Settings, store: Store, prefix: str,
                 send: Callable[[ApiRequest], ApiResponse], acquire_user_token: Callable[..., str],
                 tenants: Tenants, clock: Callable[[], float] = time.time, *,
                 acquire_app_token: Callable[[Sequence[str]], str],
                 forget_app_token: Callable[[Sequence[str]], None]) -> None:
        self.settings = settings
        self.store = store
        self.prefix = prefix
        self._send = send
        self._acquire_user_token = acquire_user_token
        # The app's own Graph token (GROUPS_OVERAGE_TOKEN=app): the app's token cache, shared
        # by its instances (core/auth.py `acquire_app_token`).
        self._acquire_app_token = acquire_app_token
        self._forget_app_token = forget_app_token
        self.clock = clock
        self._ids = dict(settings.groups)  # name -> object id
        self._names = {gid: name for name, gid in self._ids.items()}
        self._locks = KeyedLocks()
        self.tenants = tenants

    # -- deciding ------------------------------------------------------------------------------
    def check(self, req: Requirement) -> None:
        """Raise UnknownGroup when `req` names a group the app does not define."""
        unknown = [name for name in req.groups if name not in self._ids]
        if unknown:
            raise UnknownGroup(
                f"group {', '.join(unknown)} is not one of the app's groups "
                f"({', '.join(self._ids) or 'none'}): add it to authorization.groups in the "
                "spec (config.py) with its object id, or fix the guard")

    def current(self, user: User, groups: Iterable[str] | None = None) -> CurrentUser:
        """The typed user; `groups`: object ids learnt from Graph (None: from the token)."""
        source: GroupsSource
        if groups is None:
            ids, source = user.groups, ("unresolved" if user.groups_overage else "token")
        else:
            ids, source = tuple(groups), "graph"
        return CurrentUser(
            object_id=user.oid, tenant_id=user.tid, name=user.name, username=user.username,
            roles=frozenset(user.roles),
            groups=frozenset(self._names[g] for g in ids if g in self._names),
            groups_source=source, account=user)

    def decide_offline(self, user: User, req: Requirement) -> Decision | None:
        """The decision from the session alone (and answers kept in memory); None when it
        needs I/O: the tenant hook's answer, or an overage user's groups from Graph, on a
        page that needs a group. Then `decide`, which blocks."""
        self.check(req)
        current = self.current(user)
        if self.tenants.checked:
            known = self.tenants.known(user.tid)
            if known is None:
                return None
            if not known:
                return Denied(current, "", tenant=True)
        if req.roles and not current.has_role(*req.roles):
            return Denied(current, req.describe())  # no Graph call can change that
        if req.needs_groups and user.groups_overage:
            return None
        return self._judge(current, req)

    def decide(self, user: User, req: Requirement, known: KnownVersion | None = None
               ) -> Decision:
        """`decide_offline`, with the I/O it needs: the tenant hook, and an overage user's
        groups (a store read, and at most once per account and GROUPS_CACHE_SECONDS a Graph
        call). Raises TenantCheckFailed, InteractionRequired (consent for the Graph call),
        GroupsUnavailable, StoreUnavailable."""
        decided = self.decide_offline(user, req)
        if decided is not None:
            return decided
        if self.tenants.checked and not self.tenants.allowed(user.tid):
            return Denied(self.current(user), "", tenant=True)
        if not (req.needs_groups and user.groups_overage):
            return self._judge(self.current(user), req)
        return self._judge(self.current(user, self.member_of(user, known)), req)

    def _judge(self, current: CurrentUser, req: Requirement) -> Decision:
        if req.roles and not current.has_role(*req.roles):
            return Denied(current, req.describe())
        if req.groups and not current.in_group(*req.groups):
            return Denied(current, req.describe())
        return current

    # -- the overage ---------------------------------------------------------------------------
    def _key(self, home_account_id: str) -> str:
        return f"{self.prefix}:groups:{home_account_id}"

    def forget(self, home_account_id: str) -> None:
        """Drop an account's groups learnt from Graph (at sign-in and sign-out: a new sign-in
        learns them again)."""
        try:
            self.store.delete(self._key(home_account_id))
        except StoreError as exc:
            raise StoreUnavailable("groups", str(exc)) from exc

    def _kept(self, key: str) -> tuple[str, ...] | None:
        """The object ids kept for the account, if fresh and about the app's groups of now."""
        try:
            entry = self.store.get(key)
        except StoreError as exc:
            raise StoreUnavailable("groups", str(exc)) from exc
        if entry is None:
            return None
        try:
            data = json.loads(entry.value)
            asked, member, at = set(data["asked"]), list(data["member"]), float(data["at"])
        except (ValueError, KeyError, TypeError):
            return None  # unreadable: asked again, and overwritten
        if not set(self._ids.values()) <= asked or not 0 <= self.clock() - at < (
                self.settings.groups_cache_seconds):
            return None
        return tuple(str(g) for g in member)

    def member_of(self, user: User, known: KnownVersion | None = None) -> tuple[str, ...]:
        """The object ids of the app's named groups the user is a (transitive) member of,
        kept per account; Graph is asked once per account and lifetime, across the threads,
        processes and instances sharing the store (the store's lock on the key)."""
        key = self._key(user.home_account_id)
        kept = self._kept(key)
        if kept is not None:
            return kept
        with self._locks.get(key), lock_or_go_on(self.store, key, log, "groups"):
            kept = self._kept(key)  # another request may have asked while this one waited
            if kept is not None:
                return kept
            member = self._ask_graph(user, known)
            value = json.dumps({"asked": sorted(self._ids.values()), "member": sorted(member),
                                "at": self.clock()})
            try:
                self.store.set(key, value)
            except StoreError as exc:
                raise StoreUnavailable("groups", str(exc)) from exc
        log.info("groups of user %s learnt from Microsoft Graph (overage)", user.oid)
        return tuple(member)

    def _ask_graph(self, user: User, known: KnownVersion | None) -> list[str]:
        app_only = self.settings.groups_overage_token == "app"
        if app_only:
            api = ApiSettings("graph", self.settings.graph_base_url,
                              (f"{self.settings.graph_resource}/.default",))
            path = f"users/{user.oid}/checkMemberGroups"
        else:
            api = ApiSettings("graph", self.settings.graph_base_url,
                              self.settings.groups_overage_scopes)
            path = "me/checkMemberGroups"

        def acquire(step: NeedToken) -> str:
            if app_only:
                return self._acquire_app_token(step.scopes)
            return self._acquire_user_token(user, step.scopes, claims=step.claims, known=known)

        ids = sorted(self._ids.values())
        member: set[str] = set()
        for start in range(0, len(ids), CHECK_MEMBER_GROUPS_BATCH):
            batch = ids[start:start + CHECK_MEMBER_GROUPS_BATCH]
            plan = call_plan(api, path, method="POST", json_body={"groupIds": batch},
                             deadline_seconds=self.settings.outbound_deadline_seconds,
                             max_bytes=self.settings.api_max_response_bytes)
            try:
                response = run_sync(plan, acquire, self._send)
            except DownstreamApiError as exc:
                log.warning("Microsoft Graph checkMemberGroups for user %s: HTTP %s",
                            user.oid, exc.status)
                if exc.status == 403:
                    if app_only:
                        # The app's token predates a permission an administrator may grant
                        # now: the next try asks for a new one.
                        self._forget_app_token(api.scopes)
                    raise GroupsUnavailable(
                        "Microsoft Graph refused to tell this app your group memberships "
                        "(HTTP 403): an administrator must grant it the permission.",
                        403) from exc
                raise GroupsUnavailable(
                    f"Microsoft Graph answered HTTP {exc.status}; try again in a moment.") from exc
            except requests.RequestException as exc:
                log.warning("Microsoft Graph unreachable: %s", exc)
                raise GroupsUnavailable("Microsoft Graph could not be reached; try again in a "
                                        "moment.") from exc
            member |= _answered_ids(response, batch)
        return sorted(member)


def _answered_ids(response: ApiResponse, asked: Sequence[str]) -> set[str]:
    """The ids of a checkMemberGroups answer, of those asked (anything else is ignored)."""
    try:
        value = response.json().get("value")
    except (ValueError, AttributeError) as exc:
        raise GroupsUnavailable("Microsoft Graph's answer could not be read.") from exc
    if not isinstance(value, list):
        raise GroupsUnavailable("Microsoft Graph's answer could not be read.")
    return {str(g).lower() for g in value} & set(asked)
