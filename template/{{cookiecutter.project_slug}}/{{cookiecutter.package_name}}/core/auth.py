# Managed by the msal-webapp template: regenerate rather than edit (your code goes outside core/).
"""Sign-in, silent token acquisition and sign-out, on MSAL, independent of any web framework.

The sign-in is MSAL's authorization-code flow (PKCE, state, nonce) with response_mode=form_post.
The provider answers with a cross-site POST, which does not carry a SameSite=Lax session cookie,
so the in-flight flow travels in its own short-lived signed cookie (see `web.flow_cookie`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import itsdangerous
import msal
import requests
from msal.exceptions import MsalServiceError

from .errors import InteractionRequired, SignInError, TokenAcquisitionError
from .identity import MsalClients
from .settings import Settings
from .token_cache import AccountCaches

log = logging.getLogger(__name__)

# What MSAL lets through when the provider cannot be reached or answers with a server error.
PROVIDER_FAILURES = (requests.RequestException, MsalServiceError)

# Errors after which another interactive sign-in (or consent) can help.
INTERACTIVE_ERRORS = frozenset(
    {"invalid_grant", "interaction_required", "login_required", "consent_required"}
)


@dataclass(frozen=True)
class User:
    """The signed-in user, as kept in the session: identifiers and display claims, no tokens."""

    home_account_id: str
    name: str
    username: str
    oid: str
    tid: str

    def to_dict(self) -> dict[str, str]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> User | None:
        try:
            return cls(**{k: str(data[k]) for k in cls.__dataclass_fields__}) if data else None
        except KeyError:
            return None


@dataclass(frozen=True)
class SignInStart:
    auth_uri: str
    flow_cookie: str  # the value for the flow cookie, signed


@dataclass(frozen=True)
class SignInResult:
    user: User
    return_to: str
    purpose: str  # what the sign-in was for ("" or an interaction key, see web.LoopGuard)


def safe_return_path(candidate: str | None) -> str:
    """Only local paths: "/x" yes; "//evil", "/\\evil", "https://evil" and control chars no."""
    if (not candidate or not candidate.startswith("/") or candidate.startswith(("//", "/\\"))
            or any(ord(c) < 32 or c == "\\" for c in candidate)):
        return "/"
    return candidate


class AuthService:
    def __init__(self, settings: Settings, clients: MsalClients, caches: AccountCaches,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clients = clients
        self.caches = caches
        self.clock = clock
        self._signer = itsdangerous.URLSafeSerializer(settings.secret_key, salt="auth-code-flow")

    # -- sign-in ---------------------------------------------------------------------------
    def start_sign_in(self, *, return_to: str | None, scopes: Sequence[str] | None = None,
                      login_hint: str | None = None, claims: str | None = None,
                      purpose: str = "") -> SignInStart:
        """Begin a sign-in (or a consent round trip) for the scopes of ONE resource."""
        flow = self.clients.build().initiate_auth_code_flow(
            list(self.settings.sign_in_scopes if scopes is None else scopes),
            redirect_uri=self.settings.redirect_uri,
            response_mode="form_post",
            login_hint=login_hint,
            claims_challenge=claims,
        )
        auth_uri = flow.pop("auth_uri")  # not needed to redeem; keeps the cookie small
        payload = {
            "flow": flow,
            "return_to": safe_return_path(return_to),
            "purpose": purpose,
            "expires_at": self.clock() + self.settings.sign_in_timeout_seconds,
        }
        return SignInStart(auth_uri=auth_uri, flow_cookie=self._signer.dumps(payload))

    def _read_flow(self, flow_cookie: str | None) -> dict[str, Any]:
        if not flow_cookie:
            raise SignInError("missing_flow", "This sign-in was not started in this browser, or "
                              "its cookie was lost (cookies blocked?).")
        try:
            payload: dict[str, Any] = self._signer.loads(flow_cookie)
        except itsdangerous.BadData as exc:
            raise SignInError("missing_flow", "This sign-in could not be verified.",
                              "flow cookie signature is invalid") from exc
        if float(payload.get("expires_at", 0)) < self.clock():
            raise SignInError("expired_flow", "This sign-in took too long and has expired.")
        return payload

    def complete_sign_in(self, flow_cookie: str | None,
                         auth_response: Mapping[str, str]) -> SignInResult:
        """Redeem the code the provider posted back; raise SignInError with a reason if not."""
        payload = self._read_flow(flow_cookie)
        flow = payload["flow"]
        response = {k: v for k, v in auth_response.items() if isinstance(v, str)}
        if response.get("state") != flow.get("state"):
            raise SignInError("state_mismatch", "This answer does not match the sign-in this "
                              "browser started (another tab may have started a newer one).")
        if response.get("error"):
            raise SignInError("provider_error", _provider_message(response),
                              f"{response['error']}: {response.get('error_description', '')}")
        if not response.get("code"):
            raise SignInError("missing_code", "The identity provider sent no authorization code.")

        fresh = msal.SerializableTokenCache()
        try:
            result = self.clients.build(fresh).acquire_token_by_auth_code_flow(flow, response)
        except ValueError as exc:  # MSAL's own state / response checks
            raise SignInError("state_mismatch", "This sign-in answer was not valid.",
                              str(exc)) from exc
        except RuntimeError as exc:  # MSAL's nonce check on the id token
            raise SignInError("invalid_id_token", "The identity provider's answer could not be "
                              "trusted (ID token check failed).", str(exc)) from exc
        except PROVIDER_FAILURES as exc:
            raise SignInError("provider_unreachable", "The identity provider could not be "
                              "reached.", str(exc)) from exc
        if "error" in result:
            raise SignInError("redeem_failed", "The sign-in could not be completed; the code may "
                              "have been used already or expired.",
                              f"{result['error']}: {result.get('error_description', '')}")
        accounts = fresh.search(fresh.CredentialType.ACCOUNT)
        home_account_ids = {a["home_account_id"] for a in accounts}
        if len(home_account_ids) != 1:
            raise SignInError("redeem_failed", "The identity provider returned no account.")
        home_account_id = home_account_ids.pop()
        self.caches.merge(home_account_id, fresh)
        claims = result.get("id_token_claims", {})
        user = User(
            home_account_id=home_account_id,
            name=str(claims.get("name") or claims.get("preferred_username") or "Signed-in user"),
            username=str(claims.get("preferred_username") or claims.get("email") or ""),
            oid=str(claims.get("oid") or claims.get("sub") or ""),
            tid=str(claims.get("tid") or ""),
        )
        log.info("user signed in (home_account_id=%s)", home_account_id)
        return SignInResult(user=user, return_to=payload["return_to"],
                            purpose=str(payload.get("purpose", "")))

    # -- tokens ----------------------------------------------------------------------------
    def acquire_token(self, user: User, scopes: Sequence[str], claims: str | None = None) -> str:
        """An access token for `scopes` from the cache, or from the refresh token.

        Raises InteractionRequired when only the user can fix it (sign in again, consent, MFA).
        """
        with self.caches.open(user.home_account_id) as cache:
            app = self.clients.build(cache)
            accounts = [a for a in app.get_accounts()
                        if a.get("home_account_id") == user.home_account_id]
            if not accounts:
                raise InteractionRequired(scopes, reason="no_account", login_hint=user.username,
                                          claims=claims)
            try:
                result = app.acquire_token_silent_with_error(
                    list(scopes), accounts[0], claims_challenge=claims)
            except PROVIDER_FAILURES as exc:
                raise TokenAcquisitionError("provider_unreachable", str(exc)) from exc
        if result and "access_token" in result:
            return str(result["access_token"])
        if result is None or result.get("error") in INTERACTIVE_ERRORS:
            reason = (result or {}).get("suberror") or (result or {}).get("error") or "no_token"
            raise InteractionRequired(scopes, reason=str(reason), login_hint=user.username,
                                      claims=claims or (result or {}).get("claims"))
        raise TokenAcquisitionError(str(result.get("error")),
                                    str(result.get("error_description", "")))

    # -- sign-out --------------------------------------------------------------------------
    def sign_out(self, user: User | None) -> str:
        """Forget the user's tokens and return the provider's end-session URL to redirect to."""
        id_token = None
        if user is not None:
            with self.caches.open(user.home_account_id) as cache:
                # Read before the cache is deleted: the provider uses it to pick the session.
                for entry in cache.search(cache.CredentialType.ID_TOKEN):
                    id_token = entry.get("secret")
            self.caches.remove(user.home_account_id)
        try:
            endpoint = self.clients.discovery().get("end_session_endpoint")
        except (requests.RequestException, ValueError):
            log.warning("discovery failed; signing out locally only", exc_info=True)
            endpoint = None
        if not endpoint:
            return self.settings.post_logout_redirect_uri
        params = {"post_logout_redirect_uri": self.settings.post_logout_redirect_uri}
        if id_token:
            params["id_token_hint"] = id_token
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(params)}"


def _provider_message(response: Mapping[str, str]) -> str:
    if response.get("error") == "access_denied":
        return "Sign-in was cancelled or consent was declined."
    description = response.get("error_description", "").split("\n")[0].strip()
    return f"The identity provider refused the sign-in: {description or response['error']}."
