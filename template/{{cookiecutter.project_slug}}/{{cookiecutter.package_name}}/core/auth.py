# Managed by the msal-webapp template: regenerate rather than edit (your code goes outside core/).
"""Sign-in, silent token acquisition and sign-out, on MSAL, independent of any web framework.

The sign-in is MSAL's authorization-code flow (PKCE, state, nonce). The in-flight flow travels in
its own short-lived signed cookie, one per sign-in in progress (see `web.flow_cookie`), because the
provider's answer arrives from another site:

- over https the answer is a cross-site POST (response_mode=form_post) and the flow cookie is
  `SameSite=None; Secure`, the only kind browsers send with a cross-site POST;
- in local development on http://localhost a `Secure` cookie is not dependable (Safari drops it
  on plain http), and a `Lax` one is withheld from a cross-site POST, so the answer comes back as
  a top-level GET (response_mode=query), which does carry `Lax` cookies in every browser.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import logging
import threading
import time
import warnings
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlencode

import cachetools
import msal
import requests
from msal.exceptions import MsalServiceError

from .errors import (
    CredentialRejected,
    CredentialUnavailable,
    InteractionRequired,
    SignInError,
    StoreUnavailable,
    TokenAcquisitionError,
    loggable,
)
from .identity import MsalClients
from .provider_errors import ProviderError, admin_consent_url
from .sealed import Sealed
from .settings import GRAPH_RESOURCE, RESERVED_SCOPES, Settings, scope_resource
from .stores import KnownVersion
from .token_cache import APP_TOKENS, PARSED_COPIES, AccountCaches

log = logging.getLogger(__name__)

# What MSAL lets through when the provider cannot be reached or answers with a server error.
PROVIDER_FAILURES = (requests.RequestException, MsalServiceError)
# Building a client runs OpenID discovery; MSAL reports an unreadable discovery document (an HTML
# error page, a 404) as ValueError, a JSON document without the endpoints it needs (a captive
# portal, a proxy's page, a wrong URL) as KeyError, and an unexpected status as RuntimeError.
DISCOVERY_FAILURES = (*PROVIDER_FAILURES, ValueError, KeyError, RuntimeError)

# Errors after which another interactive sign-in (or consent) can help.
INTERACTIVE_ERRORS = frozenset(
    {"invalid_grant", "interaction_required", "login_required", "consent_required"}
)
# A standard OpenID Connect provider refuses to widen a refresh token to scopes that were not
# granted with it (RFC 6749 section 6): one interactive round trip for those scopes fixes that.
# From Entra, invalid_scope means a malformed scope (AADSTS70011), which no round trip can fix.
OIDC_INTERACTIVE_ERRORS = INTERACTIVE_ERRORS | {"invalid_scope"}

# MSAL 1.x warns on every flow that does not use form_post. Query mode is chosen on purpose for
# http://localhost only (see the module docstring), where the code is protected by PKCE, the
# callback redirects at once and pages send no cross-origin Referer: silence that one warning.
warnings.filterwarnings("ignore", message=r"response_mode='form_post' is recommended",
                        category=UserWarning)


@dataclass(frozen=True)
class User:
    """The signed-in user, as kept in the session: identifiers, display and authorization
    claims, no tokens."""

    home_account_id: str  # MSAL's key of the account's tokens
    name: str
    username: str  # preferred_username (or e-mail): for display and login_hint, not a key
    oid: str  # Entra's object id; "" from other providers
    tid: str  # Entra's tenant id; "" from other providers
    issuer: str  # the ID token's `iss`
    subject: str  # the ID token's `sub`
    roles: tuple[str, ...] = ()  # the ID token's `roles`: app role values
    # The object ids of the app's named groups among the ID token's `groups` (the others are
    # not kept); `groups_overage`: Entra sent `_claim_names` instead of the list (too many
    # groups), so a page that needs a group asks Microsoft Graph (core/authorization.py).
    groups: tuple[str, ...] = ()
    groups_overage: bool = False
    # The ID token's `sid`: the user's session at the provider, named again by the provider's
    # front-channel sign-out (flows.front_channel_sign_out); "" when the token has none.
    sid: str = ""

    FIELDS: ClassVar[tuple[str, ...]] = ("home_account_id", "name", "username", "oid", "tid",
                                         "issuer", "subject", "roles", "groups",
                                         "groups_overage", "sid")

    @property
    def identity(self) -> tuple[str, str]:
        """Who the user is, as (issuer, subject): what the app keys its own records on.

        Entra and External ID: (tenant id, object id), the same for the user in every app of
        the tenant and never reassigned (Microsoft's docs: use `oid` + `tid` to key data).
        Other providers: (`iss`, `sub`), the only pair OpenID Connect promises to be unique and
        stable (Core section 5.7); `sub` alone is unique per issuer only. Azure AD B2C is one of
        those: its tokens carry no `tid` (and `oid` only when the user flow's application
        claims include it); its `sub` is the user's object id by default.
        """
        if self.oid and self.tid:
            return self.tid, self.oid
        return self.issuer, self.subject

    @property
    def identity_key(self) -> str:
        """`identity` as one string (an issuer holds no space), for a unique column."""
        return " ".join(self.identity)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {name: getattr(self, name) for name in self.FIELDS}
        data["roles"], data["groups"] = list(self.roles), list(self.groups)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> User | None:
        """The user kept in a session; None for none, or for one kept in an older shape
        (which then signs in again)."""
        if not data:
            return None
        try:
            roles, groups = data["roles"], data["groups"]
            if not isinstance(roles, list) or not isinstance(groups, list):
                return None
            # Each field by name (mypy cannot match a splat of FIELDS to the parameters).
            return cls(str(data["home_account_id"]), str(data["name"]), str(data["username"]),
                       str(data["oid"]), str(data["tid"]), str(data["issuer"]),
                       str(data["subject"]), tuple(str(r) for r in roles),
                       tuple(str(g) for g in groups), data["groups_overage"] is True,
                       str(data.get("sid") or ""))  # absent from sessions kept before it
        except (KeyError, TypeError):
            return None


def authorization_claims(claims: Mapping[str, Any], group_ids: Collection[str]
                         ) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
    """From ID token claims: the app roles; the object ids among `group_ids` (the app's named
    groups) that the `groups` claim lists; and whether Entra sent the groups overage
    (`_claim_names.groups`, above 200 groups) instead of the list."""
    roles = claims.get("roles")
    names = claims.get("_claim_names")
    listed = claims.get("groups")
    member = {str(g).lower() for g in listed} if isinstance(listed, list) else set()
    return (tuple(str(r) for r in roles) if isinstance(roles, list) else (),
            tuple(sorted(member & set(group_ids))),
            isinstance(names, Mapping) and "groups" in names)


@dataclass(frozen=True)
class SignInStart:
    auth_uri: str
    flow_id: str  # names this sign-in's flow cookie (derived from the state)
    flow_cookie: str  # the value for the flow cookie, signed


def flow_id(state: str) -> str:
    """A short cookie-name-safe id of a sign-in, derived from its OAuth `state`."""
    return hashlib.sha256(state.encode("utf-8", "replace")).hexdigest()[:16]


@dataclass(frozen=True)
class SignInResult:
    user: User
    return_to: str
    purpose: str  # what the sign-in was for ("" or an interaction key, see web.LoopGuard)
    # The session the browser had when the sign-in started, to end now that a new one begins.
    # Over https the answer is a cross-site POST without the (SameSite=Lax) session cookie, so
    # the adapter cannot see that session at the redirect URI otherwise.
    retire_session: str | None = None
    # Azure AD B2C: the answer ended a password reset, whose tokens are its user flow's own
    # (see `_user_flow_result`): the user signs in with the sign-up and sign-in flow next.
    sign_in_next: bool = False


# A path to come back to after signing in travels in the flow cookie, which must stay well
# under the 4 KB browsers keep of a cookie.
MAX_RETURN_PATH = 1024


def safe_return_path(candidate: str | None) -> str:
    """Only local paths: "/x" yes; "//evil", "/\\evil", "https://evil" and control chars no;
    nor one longer than MAX_RETURN_PATH (the home page instead)."""
    if (not candidate or not candidate.startswith("/") or candidate.startswith(("//", "/\\"))
            or len(candidate) > MAX_RETURN_PATH
            or any(ord(c) < 32 or c == "\\" for c in candidate)):
        return "/"
    return candidate


class AuthService:
    def __init__(self, settings: Settings, clients: MsalClients, caches: AccountCaches,
                 clock: Callable[[], float] = time.time,
                 tenant_allowed: Callable[[str], bool] | None = None) -> None:
        self.settings = settings
        # ALLOWED_TENANT_IDS and ALLOWED_TENANTS_HOOK (core/authorization.py `Tenants`).
        self.tenant_allowed = tenant_allowed
        self.clients = clients
        self.caches = caches
        self.clock = clock
        # The flow cookie: its PKCE verifier and nonce are secrets, so it is sealed, not only
        # signed (core/sealed.py).
        self._flows = Sealed(settings.secret_key, "auth-code-flow")
        # For `<resource>/.default` requests: the scopes the provider granted, per account. The
        # answer names the granted scopes, never ".default", and MSAL looks cached tokens up by
        # comparing scopes, so asking again for ".default" would never hit the cache.
        self._granted: cachetools.TTLCache[tuple[str, str], tuple[str, ...]] = (
            cachetools.TTLCache(maxsize=settings.token_cache_max_entries,
                                ttl=settings.token_cache_ttl_seconds))
        self._granted_lock = threading.Lock()  # cachetools caches are not thread-safe
        # The offline pass's clients, one per account (see `_acquire_offline`).
        self._offline_http = OfflineHttp()
        self._offline_clients: cachetools.LRUCache[str, _Offline] = (
            cachetools.LRUCache(maxsize=PARSED_COPIES))
        self._offline_lock = threading.Lock()
        # The app's own tokens' offline client (see `_app_offline`), built on the cache copy
        # it holds.
        self._app_offline_client: _Offline | None = None

    # -- sign-in ---------------------------------------------------------------------------
    def start_sign_in(self, *, return_to: str | None, scopes: Sequence[str] | None = None,
                      login_hint: str | None = None, claims: str | None = None,
                      purpose: str = "", for_account: str | None = None,
                      retire_session: str | None = None, prompt: str | None = None,
                      domain_hint: str | None = None, user_flow: str | None = None,
                      editing: User | None = None) -> SignInStart:
        """Begin a sign-in (or a consent round trip) for the scopes of ONE resource.

        `for_account`: the home account id of the signed-in user a consent or claims round trip
        is for; the answer must be for that account (see `complete_sign_in`). It travels in the
        flow cookie, because over https the answer is a cross-site POST that does not carry the
        (SameSite=Lax) session cookie.

        `user_flow`: an Azure AD B2C user flow other than AUTHORITY's (the password reset, the
        profile edit), an authority of its own; `editing`: the signed-in user whose profile
        the profile-edit flow changes (kept in the flow cookie, for the same reason).
        """
        try:
            flow = self.clients.build(user_flow=user_flow).initiate_auth_code_flow(
                list(self.settings.sign_in_scopes if scopes is None else scopes),
                redirect_uri=self.settings.redirect_uri,
                response_mode="form_post" if self.settings.secure_cookies else "query",
                login_hint=login_hint,
                claims_challenge=claims,
                prompt=prompt,
                domain_hint=domain_hint,
            )
        except DISCOVERY_FAILURES as exc:
            raise SignInError("provider_unreachable", _UNREACHABLE, str(exc),
                              status=502) from exc
        auth_uri = flow.pop("auth_uri")  # not needed to redeem; keeps the cookie small
        payload = {
            "flow": flow,
            "return_to": safe_return_path(return_to),
            "purpose": purpose,
            "for_account": for_account,
            "for_username": login_hint if for_account else None,
            "retire_session": retire_session,
            "expires_at": self.clock() + self.settings.sign_in_timeout_seconds,
        }
        if user_flow:
            payload["user_flow"] = user_flow
            payload["editing"] = editing.to_dict() if editing else None
        return SignInStart(auth_uri=auth_uri, flow_id=flow_id(str(flow["state"])),
                           flow_cookie=self._flows.seal(payload))

    def flow_expiry(self, flow_cookie: str) -> float:
        """When a flow cookie's sign-in expires (0 for a cookie that does not verify)."""
        try:
            return float(self._flows.open(flow_cookie).get("expires_at", 0))
        except (AttributeError, TypeError, ValueError):
            return 0.0

    def _read_flow(self, flow_cookie: str | None, *, others_in_progress: bool) -> dict[str, Any]:
        if not flow_cookie:
            if others_in_progress:
                raise SignInError("state_mismatch", "This answer does not match a sign-in this "
                                  "browser started.")
            raise SignInError("missing_flow", "This sign-in was not started in this browser, or "
                              "its cookie was lost (cookies blocked?).")
        try:
            payload = self._flows.open(flow_cookie)
            if not isinstance(payload, dict):
                raise ValueError("not a flow")
        except ValueError as exc:
            raise SignInError("missing_flow", "This sign-in could not be verified.",
                              "the flow cookie is not one this app sealed") from exc
        if float(payload.get("expires_at", 0)) < self.clock():
            raise SignInError("expired_flow", "This sign-in took too long and has expired.")
        return payload

    def complete_sign_in(self, flow_cookie: str | None, auth_response: Mapping[str, str], *,
                         others_in_progress: bool = False) -> SignInResult:
        """Redeem the code the provider sent back; raise SignInError with a reason if not.

        `flow_cookie` is the flow cookie named after the answer's state (see `flow_id`);
        `others_in_progress` says whether the browser holds flow cookies of other sign-ins.
        """
        payload = self._read_flow(flow_cookie, others_in_progress=others_in_progress)
        flow = payload["flow"]
        response = {k: v for k, v in auth_response.items() if isinstance(v, str)}
        if response.get("state") != flow.get("state"):
            raise SignInError("state_mismatch", "This answer does not match a sign-in this "
                              "browser started.")
        if response.get("error"):
            b2c = b2c_answer(response) if self.settings.is_b2c else None
            if b2c is not None:
                raise SignInError(b2c, B2C_MESSAGES[b2c], str(response.get("error_description")
                                                               or response["error"]),
                                  retry=str(payload["return_to"]))
            problem = ProviderError.of(response)
            consent = (self.admin_consent_url(flow.get("scope", []))
                       if problem.needs_admin_consent else None)
            raise SignInError("provider_error", _provider_message(response, consent is not None),
                              problem.for_log(), reference=problem.reference,
                              admin_consent=consent)
        if not response.get("code"):
            raise SignInError("missing_code", "The identity provider sent no authorization code.")

        fresh = msal.SerializableTokenCache()
        user_flow = payload.get("user_flow")
        result = self._redeem(fresh, flow, response, user_flow)
        if "error" in result:
            problem = ProviderError.of(result)
            if self.clients.credentials.is_rejection(result):
                raise SignInError("credential_rejected", CREDENTIAL_REJECTED, problem.for_log(),
                                  status=502, retry="/", reference=problem.reference)
            raise SignInError("redeem_failed", "The sign-in could not be completed; the code may "
                              "have been used already or expired.", problem.for_log(),
                              reference=problem.reference)
        accounts = list(fresh.search(fresh.CredentialType.ACCOUNT))
        home_account_ids = {a["home_account_id"] for a in accounts}
        if len(home_account_ids) != 1:
            raise SignInError("redeem_failed", "The identity provider returned no account.")
        home_account_id = home_account_ids.pop()
        claims = result.get("id_token_claims", {})
        self._check_id_token(claims, user_flow)
        self._check_tenant(claims, accounts[0])
        if user_flow:
            return self._user_flow_result(payload, claims)
        purpose = str(payload.get("purpose", ""))
        expected = payload.get("for_account")
        if expected and expected != home_account_id:
            # A consent or claims round trip for the signed-in user came back as another
            # account (picked at the provider): never switch users silently, and keep nothing
            # of an account that did not ask to sign in.
            chosen = str(claims.get("preferred_username") or claims.get("email") or "another "
                         "account")
            raise SignInError(
                "account_switched",
                f"You are signed in as {payload.get('for_username') or 'another user'}, but the "
                f"identity provider answered for {chosen}. Go back to continue as before, or "
                f"sign in as {chosen}.",
                retry="/login?" + urlencode({"next": payload["return_to"], "login_hint": chosen}))
        try:
            self.caches.merge(home_account_id, fresh)
        except StoreUnavailable as exc:
            raise SignInError("store_unavailable", STORE_UNAVAILABLE, str(exc), status=503,
                              retry="/") from exc
        self._learn_granted(home_account_id, [str(s) for s in flow.get("scope", [])], result)
        roles, groups, overage = authorization_claims(claims, self.settings.groups.values())
        user = User(
            home_account_id=home_account_id,
            name=str(claims.get("name") or claims.get("preferred_username") or "Signed-in user"),
            username=_username(claims),
            oid=str(claims.get("oid") or ""),
            tid=str(claims.get("tid") or ""),
            issuer=str(claims.get("iss") or ""),
            subject=str(claims.get("sub") or ""),
            roles=roles, groups=groups, groups_overage=overage,
            sid=str(claims.get("sid") or ""),
        )
        log.info("user signed in (home_account_id=%s)", home_account_id)
        return SignInResult(user=user, return_to=payload["return_to"], purpose=purpose,
                            retire_session=_retired_session(payload))

    def _user_flow_result(self, payload: Mapping[str, Any], claims: Mapping[str, Any]
                          ) -> SignInResult:
        """The answer of a B2C user flow other than the sign-up and sign-in one. Its tokens are
        that flow's own (B2C keys an account by object id AND user flow, and refuses one flow's
        refresh token at another's token endpoint, AADB2C90088), so none is kept: the app's
        tokens stay the sign-up and sign-in flow's.

        - Password reset: the user signs in next (B2C's session from the reset usually lets the
          sign-up and sign-in flow through without another password).
        - Profile edit: the same user (their `sub`: B2C's is the object id) with the display
          claims the flow returned (the user flow's application claims decide which)."""
        return_to = str(payload["return_to"])
        editing = User.from_dict(payload.get("editing"))
        if editing is None:
            log.info("password reset completed; signing in with the sign-up and sign-in flow")
            placeholder = User("", "", "", "", "", "", "")
            return SignInResult(user=placeholder, return_to=return_to, purpose="",
                                sign_in_next=True)
        if str(claims.get("sub") or "") != editing.subject:
            raise SignInError(
                "account_switched", "The profile that was edited is not the signed-in user's. "
                "Sign in again to continue.", retry="/login?" + urlencode({"next": return_to}))
        name = str(claims.get("name") or editing.name)
        user = dataclasses.replace(editing, name=name, username=_username(claims)
                                   or editing.username)
        log.info("profile edited (home_account_id=%s)", user.home_account_id)
        return SignInResult(user=user, return_to=return_to, purpose="",
                            retire_session=_retired_session(payload))

    def _redeem(self, fresh: msal.SerializableTokenCache, flow: dict[str, Any],
                response: dict[str, str], user_flow: str | None = None) -> dict[str, Any]:
        """Redeem the code; when the provider refuses the app's credential, once more with the
        next one (the code is still unused: the provider checks the client first)."""
        for _ in range(2):
            try:
                index, app = self.clients.build_current(fresh, user_flow=user_flow)
            except DISCOVERY_FAILURES as exc:
                raise SignInError("provider_unreachable", _UNREACHABLE, str(exc),
                                  status=502) from exc
            try:
                result: dict[str, Any] = app.acquire_token_by_auth_code_flow(flow, response)
            except CredentialUnavailable as exc:  # flows logs it, naming the credential
                raise SignInError("credential_unavailable", CREDENTIAL_REJECTED, str(exc),
                                  status=502, retry="/") from exc
            except ValueError as exc:  # MSAL's own state / response checks
                raise SignInError("state_mismatch", "This sign-in answer was not valid.",
                                  str(exc)) from exc
            except RuntimeError as exc:  # MSAL's nonce check on the id token
                raise SignInError("invalid_id_token", "The identity provider's answer could not "
                                  "be trusted (ID token check failed).", str(exc)) from exc
            except PROVIDER_FAILURES as exc:
                raise SignInError("provider_unreachable", _UNREACHABLE, str(exc),
                                  status=502) from exc
            if not self.clients.rejected(index, result):
                break
        return result

    def _check_id_token(self, claims: Mapping[str, Any], user_flow: str | None = None) -> None:
        """The ID token is for this app and from the provider: MSAL checks its nonce only
        (since 1.38), so the audience and the issuer are checked here. Entra's discovery for
        `organizations`/`common` publishes the issuer as a template with `{tenantid}`, filled
        in with the token's `tid` (as Microsoft.Identity.Web's issuer validator does)."""
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.settings.client_id not in audiences or (
                len(audiences) > 1 and claims.get("azp") != self.settings.client_id):
            raise SignInError("invalid_id_token", _UNTRUSTED_ID_TOKEN,
                              f"ID token audience {loggable(audience)} is not this app")
        try:
            expected = str(self.clients.discovery(user_flow).get("issuer") or "")
        except DISCOVERY_FAILURES as exc:
            raise SignInError("provider_unreachable", _UNREACHABLE, str(exc),
                              status=502) from exc
        if TENANT_PLACEHOLDER in expected:
            expected = expected.replace(TENANT_PLACEHOLDER, str(claims.get("tid") or ""))
        if not expected or claims.get("iss") != expected:
            raise SignInError("invalid_id_token", _UNTRUSTED_ID_TOKEN,
                              f"ID token issuer {loggable(claims.get('iss'))} is not "
                              f"{loggable(expected)}")

    def _check_tenant(self, claims: Mapping[str, Any], account: Mapping[str, Any]) -> None:
        """For multi-tenant apps: only accounts of the tenants ALLOWED_TENANT_IDS lists and
        ALLOWED_TENANTS_HOOK accepts."""
        if self.tenant_allowed is None:
            return
        # `tid` is the tenant that issued the ID token; the account's realm (client_info's utid
        # for a home account) says the same for an account without the optional claim.
        tenant = str(claims.get("tid") or account.get("realm") or "").lower()
        try:
            allowed = self.tenant_allowed(tenant)
        except Exception as exc:  # the hook failed (and was logged): no answer, no access
            raise SignInError("tenant_check_failed", "Whether your organization may use this "
                              "app could not be checked; try again in a moment.", str(exc),
                              status=503, retry="/") from exc
        if not allowed:
            raise SignInError("tenant_not_allowed", "Accounts of your organization cannot sign "
                              "in to this app.", f"tenant {tenant or '(none)'} is not allowed")

    def domain_hint(self, user: User) -> str | None:
        """For a consent or claims round trip of a signed-in Entra user: `consumers` for a
        Microsoft account, else `organizations` (as Microsoft.Identity.Web does), so that Entra
        goes straight to the user's kind of account; None elsewhere."""
        if not self.settings.authority or not user.tid or self.settings.is_b2c:
            return None
        return "consumers" if user.tid.lower() == MSA_TENANT_ID else "organizations"

    def admin_consent_url(self, scopes: Sequence[str]) -> str | None:
        """Entra's admin-consent page for this app and the resource of `scopes` (None for
        another OpenID Connect provider, which has none)."""
        if not self.settings.authority or self.settings.is_b2c:
            return None
        asked = [s for s in scopes if s.lower() not in RESERVED_SCOPES]
        resource = scope_resource(asked[0]) if asked else GRAPH_RESOURCE
        return admin_consent_url(self.settings.authority, self.settings.client_id,
                                 [f"{resource}/.default"], self.settings.post_logout_redirect_uri)

    # -- tokens ----------------------------------------------------------------------------
    def _cached_default(self, cache: msal.SerializableTokenCache, home_account_id: str,
                        scopes: Sequence[str], claims: str | None) -> tuple[str, ...]:
        """For a `<resource>/.default` request: the granted scopes of a cached access token
        that MSAL will serve as is, so that asking for them hits its cache; else () and the
        request goes out as `.default` (a refresh for the named scopes could be refused by a
        provider that granted `.default`)."""
        default = _default_scope(scopes)
        if default is None or claims:  # MSAL skips its cache when claims are asked for
            return ()
        with self._granted_lock:
            granted = self._granted.get((home_account_id, default), ())
        if not granted:
            return ()
        # MSAL treats a token with under 5 minutes left as expired; keep a minute to spare.
        fresh_until = self.clock() + 360
        for entry in cache.search(cache.CredentialType.ACCESS_TOKEN, target=list(granted),
                                  query={"home_account_id": home_account_id}):
            if int(entry.get("expires_on", 0)) > fresh_until:
                return granted
        return ()

    def _learn_granted(self, home_account_id: str, asked: Sequence[str],
                       result: Mapping[str, Any]) -> None:
        """Remember what a `<resource>/.default` request was granted (see `_granted`)."""
        default = _default_scope([s for s in asked if s.lower() not in RESERVED_SCOPES])
        granted = tuple(s for s in str(result.get("scope", "")).split()
                        if s.lower() not in RESERVED_SCOPES)
        if default and granted:
            with self._granted_lock:
                self._granted[(home_account_id, default)] = granted

    def acquire_token(self, user: User, scopes: Sequence[str], claims: str | None = None, *,
                      known: KnownVersion | None = None) -> str:
        """An access token for `scopes` from the cache, or from the refresh token.

        First without a lock and without the network: while the cached access token is good,
        that is the whole cost of a request. Only when MSAL wants the token endpoint (no token,
        one about to expire or past its `refresh_in`, a claims challenge) is the account's lock
        taken, its entry re-read and the silent call made again, so that concurrent requests
        of one user refresh once.

        Raises InteractionRequired when only the user can fix it (sign in again, consent, MFA),
        StoreUnavailable when the token cache cannot be read.
        """
        if not claims:  # MSAL never serves a claims request from its cache
            cached = self._acquire_offline(user, scopes, known)
            if cached is not None:
                return cached
        with self.caches.open(user.home_account_id) as cache:
            for _ in range(2):  # once more when the provider refuses the app's credential
                index, app = self._client_for(cache)
                result = self._acquire_silent(app, cache, user, scopes, claims)
                if not self.clients.rejected(index, result):
                    break
        self._raise_if_rejected(index, result)
        if result and "access_token" in result:
            self._learn_granted(user.home_account_id, scopes, result)
            return str(result["access_token"])
        interactive = (OIDC_INTERACTIVE_ERRORS if self.settings.oidc_authority
                       else INTERACTIVE_ERRORS)
        if result is None or result.get("error") in interactive:
            reason = (result or {}).get("suberror") or (result or {}).get("error") or "no_token"
            raise InteractionRequired(scopes, reason=str(reason), login_hint=user.username,
                                      claims=claims or (result or {}).get("claims"))
        raise TokenAcquisitionError(str(result.get("error")),
                                    str(result.get("error_description", "")))

    def _raise_if_rejected(self, index: int, result: Mapping[str, Any] | None) -> None:
        """CredentialRejected when `result` is the provider refusing credential `index` and no
        other credential is left to try."""
        if self.clients.credentials.is_rejection(result):
            assert result is not None
            raise CredentialRejected(self.clients.credentials.label(index),
                                     str(result.get("error")),
                                     str(result.get("error_description", "")))

    def _client_for(self, cache: msal.SerializableTokenCache, *, app_only: bool = False
                    ) -> tuple[int, msal.ConfidentialClientApplication]:
        try:
            return self.clients.build_current(cache, app_only=app_only)
        except DISCOVERY_FAILURES as exc:
            raise TokenAcquisitionError("provider_unreachable", str(exc)) from exc

    # -- the app's own tokens (app-only APIs) ---------------------------------------------------
    def acquire_app_token(self, scopes: Sequence[str], claims: str | None = None) -> str:
        """The app's own access token for `scopes` (one `<resource>/.default`): client
        credentials, with the credentials user tokens use (any kind, rotation included).

        As `acquire_token`: first from the cache without a lock, a write or the network; only
        when MSAL wants the token endpoint (no token, one about to expire, a claims challenge)
        is the store's lock on the app's cache taken and the entry read again, so that the
        processes and instances sharing the store ask the provider once.

        Raises CredentialRejected or TokenAcquisitionError (InteractionRequired never: no user
        can help), StoreUnavailable when the cache cannot be read.
        """
        if not claims:  # MSAL never serves a claims request from its cache
            cached = self._app_offline(scopes)
            if cached is not None:
                return cached
        with self.caches.open(APP_TOKENS) as cache:
            for _ in range(2):  # once more when the provider refuses the app's credential
                index, app = self._client_for(cache, app_only=True)
                try:
                    # MSAL (1.23 and later) answers from this cache when it can.
                    result: dict[str, Any] | None = app.acquire_token_for_client(
                        list(scopes), claims_challenge=claims)
                except DISCOVERY_FAILURES as exc:
                    raise TokenAcquisitionError("provider_unreachable", str(exc)) from exc
                if not self.clients.rejected(index, result):
                    break
        self._raise_if_rejected(index, result)
        if result and "access_token" in result:
            return str(result["access_token"])
        result = result or {}
        raise TokenAcquisitionError(str(result.get("error")),
                                    str(result.get("error_description", "")))

    def forget_app_token(self, scopes: Sequence[str]) -> None:
        """Drop the app's cached token for `scopes` in every instance (the next request asks
        for a new one): e.g. after a refusal, when an administrator may have granted the
        permission it lacked since."""
        with self.caches.open(APP_TOKENS) as cache:
            for entry in list(cache.search(cache.CredentialType.ACCESS_TOKEN,
                                           target=list(scopes))):
                cache.remove_at(entry)
        with self._offline_lock:
            self._app_offline_client = None

    def cached_app_token(self, scopes: Sequence[str]) -> str | None:
        """`acquire_app_token`'s offline pass alone when it needs no store read that may block
        (see `cached_token`); None: call `acquire_app_token` (from a worker thread)."""
        cache = self.caches.peek_ready(APP_TOKENS)
        return None if cache is None else self._app_offline(scopes, cache)

    def _app_offline(self, scopes: Sequence[str],
                     cache: msal.SerializableTokenCache | None = None) -> str | None:
        """The app's cached access token if MSAL serves it without any network call, else None
        (see `_acquire_offline`: the same client refusing every request, kept with the copy of
        the cache it was built on)."""
        if cache is None:
            cache = self.caches.peek(APP_TOKENS)
        with self._offline_lock:
            kept = self._app_offline_client
        wanted = tuple(scopes)
        now = time.time()  # MSAL's clock
        served = kept.served.get(wanted) if kept is not None and kept.cache is cache else None
        if served is not None and now < served[1]:
            return served[0]
        try:
            if kept is None or kept.cache is not cache:
                # Building runs discovery (refused here until the locked way has done it once)
                # and, with AZURE_REGION, MSAL's region detection, which may ask Azure's
                # instance metadata endpoint: refused here too, and MSAL goes on without it.
                kept = _Offline(cache, self.clients.build(
                    cache, http_client=self._offline_http, app_only=True), {})
                with self._offline_lock:
                    self._app_offline_client = kept
            self._offline_http.begin()  # after building: only the token's own call counts
            result = kept.client.acquire_token_for_client(list(scopes))
        except NetworkNeeded:
            return None
        return self._served_offline(kept, wanted, result, now)

    def cached_token(self, user: User, scopes: Sequence[str], *,
                     known: KnownVersion | None = None) -> str | None:
        """`acquire_token`'s offline pass alone, when it also needs no store read that may
        block (see `AccountCaches.peek_ready`): nothing here waits on I/O, so an async adapter
        may call it on its event loop. None: call `acquire_token` (from a worker thread)."""
        cache = self.caches.peek_ready(user.home_account_id, known)
        if cache is None:
            return None
        return self._acquire_offline(user, scopes, known, cache)

    def _acquire_offline(self, user: User, scopes: Sequence[str], known: KnownVersion | None,
                         cache: msal.SerializableTokenCache | None = None) -> str | None:
        """The cached access token if MSAL serves it without any network call, else None.

        MSAL has no cache-only mode, so this pass's client has an HTTP client that refuses
        every request; a refusal means "go the locked way". Nothing here is saved. The client is
        kept with the in-process copy of the account's cache it was built on (see
        `AccountCaches.peek`), and rebuilt when the store has a newer entry: building one costs
        more than the rest of a cached silent call. `known`: the version of the account's
        cache as this request already read it (see `AccountCaches.peek`).
        """
        if cache is None:
            cache = self.caches.peek(user.home_account_id, known)
        with self._offline_lock:
            kept = self._offline_clients.get(user.home_account_id)
        self._offline_http.begin()
        try:
            if kept is None or kept.cache is not cache:
                # Building runs discovery, refused here too until this process has done it
                # once the locked way (a new worker process, before its first refresh).
                client = self.clients.build(cache, http_client=self._offline_http)
                account = self.account_of(client, user)
                if account is None:
                    return None  # the locked way says why
                kept = _Offline(cache, client, account)
                with self._offline_lock:
                    self._offline_clients[user.home_account_id] = kept
            wanted = tuple(scopes)
            now = time.time()  # MSAL's clock
            served = kept.served.get(wanted)
            if served is not None and now < served[1]:
                return served[0]
            result = self._acquire_silent(kept.client, cache, user, scopes, None, kept.account)
        except (NetworkNeeded, InteractionRequired):
            return None
        return self._served_offline(kept, wanted, result, now)

    def _served_offline(self, kept: _Offline, wanted: tuple[str, ...],
                        result: Mapping[str, Any] | None, now: float) -> str | None:
        """The token of an offline pass's `result`, kept to be served again until its
        `_served_until`; None if MSAL tried the network (refused: go the locked way) or gave
        no token."""
        if self._offline_http.refused() or not result or "access_token" not in result:
            return None
        token = str(result["access_token"])
        kept.served[wanted] = (token, _served_until(result, now))
        return token

    @staticmethod
    def account_of(app: msal.ConfidentialClientApplication, user: User
                   ) -> dict[str, Any] | None:
        """The user's account in `app`'s cache, if it is there."""
        for account in app.get_accounts():
            if account.get("home_account_id") == user.home_account_id:
                return dict(account)
        return None

    def _acquire_silent(self, app: msal.ConfidentialClientApplication,
                        cache: msal.SerializableTokenCache, user: User,
                        scopes: Sequence[str], claims: str | None,
                        account: dict[str, Any] | None = None) -> dict[str, Any] | None:
        try:
            # Both can reach the network: building a client runs discovery (served from the
            # shared http_cache after the first time), and MSAL fetches instance metadata
            # lazily, on the first get_accounts().
            account = account or self.account_of(app, user)
            if account is None:
                raise InteractionRequired(scopes, reason="no_account", login_hint=user.username,
                                          claims=claims)
            granted = self._cached_default(cache, user.home_account_id, scopes, claims)
            result: dict[str, Any] | None = app.acquire_token_silent_with_error(
                list(granted or scopes), account, claims_challenge=claims)
        except DISCOVERY_FAILURES as exc:
            raise TokenAcquisitionError("provider_unreachable", str(exc)) from exc
        return result

    # -- sign-out --------------------------------------------------------------------------
    def sign_out(self, user: User | None) -> str:
        """Forget the user's tokens and return the provider's end-session URL to redirect to.

        Each provider gets the parameters it documents:
        - Entra ID: `post_logout_redirect_uri` (it must be one of the app's redirect URIs) and
          `logout_hint`, when the ID token carries the optional `login_hint` claim, so that the
          user is not asked which account to sign out of;
        - Azure AD B2C and other OpenID Connect providers (RP-initiated logout): `id_token_hint`,
          `client_id` and `post_logout_redirect_uri` (Keycloak 18+ refuses a post-logout URI
          without one of the first two).
        """
        id_token = None
        if user is not None:
            try:
                # Read before the cache is deleted: the provider uses it to pick the session.
                cache = self.caches.peek(user.home_account_id)
                for entry in cache.search(cache.CredentialType.ID_TOKEN):
                    id_token = entry.get("secret")
                self.caches.remove(user.home_account_id)
            except StoreUnavailable as exc:
                # The session ends anyway; the entry expires with the store's lifetime.
                log.error("token cache unavailable at sign-out; the account's entry was not "
                          "deleted: %s", exc)
        try:
            endpoint = self.clients.discovery().get("end_session_endpoint")
        except (requests.RequestException, ValueError):
            log.warning("discovery failed; signing out locally only", exc_info=True)
            endpoint = None
        if not endpoint:
            return self.settings.post_logout_redirect_uri
        params = {"post_logout_redirect_uri": self.settings.post_logout_redirect_uri}
        if self.settings.authority and not self.settings.is_b2c:
            login_hint = _unverified_claims(id_token).get("login_hint") if id_token else None
            if login_hint:
                params["logout_hint"] = str(login_hint)
        else:
            params["client_id"] = self.settings.client_id
            if id_token:
                params["id_token_hint"] = id_token
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(params)}"


class NetworkNeeded(Exception):
    """MSAL wanted the network during an offline (cache-only) silent call."""


class OfflineHttp:
    """An HTTP client for MSAL that refuses every request, and remembers, per thread, that it
    did (one client serves the concurrent requests of an account).

    Not a `requests` exception on purpose: MSAL catches those while refreshing an aging token
    and falls back to the cached one, which would hide that a refresh is due.
    """

    def __init__(self) -> None:
        self._calls = threading.local()

    def begin(self) -> None:
        self._calls.refused = False

    def refused(self) -> bool:
        return bool(getattr(self._calls, "refused", False))

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        self._calls.refused = True
        raise NetworkNeeded()

    get = post = _refuse

    def close(self) -> None:
        pass


def _default_scope(scopes: Sequence[str]) -> str | None:
    """The scope if `scopes` is a single `<resource>/.default`, else None."""
    return scopes[0] if len(scopes) == 1 and scopes[0].endswith("/.default") else None


CREDENTIAL_REJECTED = ("The identity provider did not accept this app's own credentials (this is "
                       "not about your account). The app's administrator must renew them; "
                       "please try again later.")
STORE_UNAVAILABLE = ("Your sign-in could not be saved: this app's session storage is not "
                     "working. Please try again in a few minutes.")
# The tenant of personal Microsoft accounts (Entra's documented constant).
MSA_TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"
_UNREACHABLE = "The identity provider could not be reached. Please try again in a moment."
_UNTRUSTED_ID_TOKEN = ("The identity provider's answer could not be trusted (its ID token is "
                       "not for this app, or not from its identity provider).")
# Entra's discovery document for organizations/common names the issuer with this placeholder.
TENANT_PLACEHOLDER = "{tenantid}"

# Azure AD B2C's answers that are not failures (its error codes reference; Microsoft.Identity.Web
# answers them the same way): the sign-in page's "Forgot your password?" link, when the
# sign-up and sign-in user flow does not embed the reset (AADB2C90118), and the user cancelling
# a user flow's page (AADB2C90091). Both come as `access_denied` with the code in the
# description.
B2C_FORGOT_PASSWORD = "b2c_forgot_password"
B2C_CANCELLED = "b2c_cancelled"
B2C_CODES = {"AADB2C90118": B2C_FORGOT_PASSWORD, "AADB2C90091": B2C_CANCELLED}
B2C_MESSAGES = {B2C_FORGOT_PASSWORD: "Resetting a password is not set up for this app.",
                B2C_CANCELLED: "The sign-in was cancelled."}


def b2c_answer(response: Mapping[str, str]) -> str | None:
    """B2C_FORGOT_PASSWORD or B2C_CANCELLED for those answers of Azure AD B2C, else None."""
    if str(response.get("error") or "").lower() != "access_denied":
        return None
    description = str(response.get("error_description") or "")
    return next((reason for code, reason in B2C_CODES.items() if code in description), None)


def _retired_session(flow: Mapping[str, Any]) -> str | None:
    """The session id the browser had when the sign-in started (it ends at the answer)."""
    retire = flow.get("retire_session")
    return str(retire) if retire else None


def _username(claims: Mapping[str, Any]) -> str:
    """What names the account to the user: Entra's `preferred_username`, an `email`, or Azure
    AD B2C's `emails` (a list, when the user flow's application claims include it)."""
    emails = claims.get("emails")
    first = emails[0] if isinstance(emails, list) and emails else ""
    return str(claims.get("preferred_username") or claims.get("email") or first or "")


def _unverified_claims(jwt: str) -> dict[str, Any]:
    """The payload of a JWT this app received from the token endpoint over TLS (so it is not
    verified again here), or {} if it cannot be read."""
    try:
        payload = jwt.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


def _provider_message(response: Mapping[str, str], admin_consent: bool = False) -> str:
    if admin_consent:
        return ("This app needs permissions that only an administrator of your organization "
                "can grant. Send your administrator the link below; once they have granted "
                "consent, sign in again.")
    if response.get("error") == "access_denied":
        return "Sign-in was cancelled or consent was declined."
    description = response.get("error_description", "").split("\n")[0].strip()
    return f"The identity provider refused the sign-in: {description or response['error']}."


class _Offline:
    """The offline pass's state for one account: the in-process copy of its cache, the MSAL
    client built on it, its account, and the tokens MSAL served from that copy, by scopes."""

    __slots__ = ("cache", "client", "account", "served")

    def __init__(self, cache: msal.SerializableTokenCache,
                 client: msal.ConfidentialClientApplication, account: dict[str, Any]) -> None:
        self.cache = cache
        self.client = client
        self.account = account
        # scopes -> (token, until when MSAL would serve the same token from this copy)
        self.served: dict[tuple[str, ...], tuple[str, float]] = {}


def _served_until(result: Mapping[str, Any], now: float) -> float:
    """Until when MSAL's silent call would answer with the same cached token, from the copy
    it answered from (which never changes): while the token has more than MSAL's 5 minutes
    left and is not past its `refresh_on`, with a minute to spare. 0 for an answer that did
    not come from the cache (it is not reused)."""
    if result.get("token_source") != "cache":
        return 0.0
    until = now + float(result.get("expires_in", 0)) - 300 - 60
    if "refresh_on" in result:
        until = min(until, float(result["refresh_on"]) - 60)
    return until
