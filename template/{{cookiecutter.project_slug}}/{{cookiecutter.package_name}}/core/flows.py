# Managed by the msal-webapp template: regenerate rather than edit (your code goes outside core/).
"""What each page does, decided here for every web framework.

An adapter builds a `WebRequest` (the request's cookies, its session and where it is), calls
one of these functions and translates the `Outcome` it gets back: a `Redirect` or a `Page`
(template, context, status), each with the cookies to set or delete. Before any response
leaves, the adapter calls `save_session` once (the one save point): it gives the session
cookie's changes, or the error page that replaces the response when the session cannot be
saved. core/adapter.py is the contract an adapter fulfils.

    outcome = flows.login(services, req, next_path, login_hint)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode

import requests

from .auth import (
    B2C_CANCELLED,
    B2C_FORGOT_PASSWORD,
    CREDENTIAL_REJECTED,
    TENANT_PLACEHOLDER,
    SignInResult,
    User,
)
from .authorization import (
    NO_REQUIREMENT,
    CurrentUser,
    Denied,
    GroupsUnavailable,
    Requirement,
    TenantCheckFailed,
)
from .downstream import ApiResponse
from .errors import (
    CredentialRejected,
    CredentialUnavailable,
    DownstreamApiError,
    InteractionRequired,
    ResponseTooLarge,
    SignInError,
    StoreUnavailable,
    TokenAcquisitionError,
    loggable,
)
from .services import Services
from .sessions import ProviderSession, SessionState
from .stores import KnownVersion
from .web import (
    SESSION_STORE_DOWN,
    CookieChanges,
    api_succeeded,
    begin_session,
    callback_cookies,
    csrf_token,
    csrf_valid,
    current_user,
    front_channel_headers,
    interaction_key,
    page_sign_in,
    session_cookie_changes,
    should_interact,
    sign_in_cookies,
    sign_in_refused,
    signed_in_cookies,
    signed_out_cookies,
)

log = logging.getLogger(__name__)


@dataclass
class WebRequest:
    """What the core needs of a request, whatever the framework: the request's own context,
    built once per request by the adapter and passed to every flow."""

    here: str  # the local path and query, to come back to after a sign-in
    cookies: Mapping[str, str]
    session: SessionState

    @property
    def known(self) -> KnownVersion | None:
        """The version of the signed-in account's token cache, as the session's load read it
        along (one store round trip for both): the token lookup uses it instead of asking."""
        return self.session.token_cache_version


@dataclass(frozen=True)
class Redirect:
    location: str
    cookies: CookieChanges = CookieChanges()


@dataclass(frozen=True)
class Page:
    template: str
    context: dict[str, Any] = field(default_factory=dict)
    status: int = 200
    cookies: CookieChanges = CookieChanges()
    # The page's own headers, in place of the app-wide ones of the same names
    # (web.security_headers): the front-channel sign-out page's framing policy.
    headers: Mapping[str, str] = field(default_factory=dict)


Outcome = Redirect | Page


def error_page(title: str, message: str, status: int, retry: str | None = None, *,
               reference: str = "", admin_consent: str | None = None) -> Page:
    """The error page: what happened, in words, and a way to go on (`retry`, a local URL);
    `reference`: the provider's error code and ids to quote; `admin_consent`: the provider's
    page where an administrator grants this app consent."""
    return Page("error.html", {"title": title, "message": message, "retry": retry,
                               "reference": reference, "admin_consent": admin_consent}, status)


# The pages of HTTP errors the framework finds (no such page, a method the page does not take,
# a malformed request, a bug): the same words in every framework.
HTTP_ERRORS: dict[int, tuple[str, str]] = {
    400: ("Bad request", "The browser sent a request this app could not understand."),
    403: ("Forbidden", "You do not have access to this page."),
    404: ("Not found", "There is no page at this address."),
    405: ("Method not allowed", "This page does not take that kind of request."),
    413: ("Request too large", "The browser sent more data than this page accepts."),
    500: ("Something went wrong", "The error was logged."),
}


def http_error(status: int) -> Page:
    """The error page for an HTTP error status (any status; unknown ones by their phrase)."""
    title, message = HTTP_ERRORS.get(status) or (HTTPStatus(status).phrase, "")
    return error_page(title, message, status, retry="/")


# A form whose token does not match the session's (sign-out, or a form of the framework's own
# CSRF protection): the same page in every framework.
FORM_EXPIRED_TITLE = "Sign-out not confirmed"
FORM_EXPIRED_MESSAGE = "The sign-out form expired; please try again."


def form_expired() -> Page:
    return error_page(FORM_EXPIRED_TITLE, FORM_EXPIRED_MESSAGE, 400, retry="/")


def template_globals(services: Services, session: SessionState) -> dict[str, Any]:
    """What every page's template may use besides its own context (see templates/base.html);
    the adapters add `static(path)`, the URL of a static file."""
    settings = services.settings
    return {
        "app_name": settings.app_name,
        "user": current_user(session),
        "api_names": [name for name in settings.apis if name != "graph"],
        # The APIs called with the app's own token (their pages say so).
        "app_only_apis": [name for name, api in settings.apis.items() if api.app_only],
        "has_graph": "graph" in settings.apis,
        # Azure AD B2C's profile-edit user flow: the /edit-profile page exists.
        "can_edit_profile": bool(settings.b2c_profile_edit_flow),
        # The app's roles and named groups, each with its example page (/roles/<role>...).
        "app_roles": settings.roles,
        "app_groups": list(settings.groups),
        # The sign-out form's token, made (and stored in the session) when a page shows it.
        "form_token": lambda: csrf_token(session),
    }


def _with_cookies(outcome: Outcome, changes: CookieChanges) -> Outcome:
    return replace(outcome, cookies=CookieChanges(set=outcome.cookies.set + changes.set,
                                                  delete=outcome.cookies.delete + changes.delete))


def save_session(services: Services, req: WebRequest) -> CookieChanges | Page:
    """The one save point, called by the adapter once per request before the response leaves,
    whatever produced the response (a core flow, a view of the user's, an error page): the
    session is written if it changed or is due for renewal. Gives the session cookie's changes
    to send with the response, or the error page that replaces the response (and its cookies)
    when the session cannot be written."""
    session = req.session
    user = current_user(session)  # parsed once per request (see current_user)
    try:
        action = services.sessions.save(
            session, user.home_account_id if user else None,
            ProviderSession(user.issuer, user.sid) if user and user.sid else None)
    except StoreUnavailable as exc:
        log.error("%s", exc)
        return error_page("Session storage unavailable", SESSION_STORE_DOWN, 503, retry="/")
    return session_cookie_changes(services.session_cookie, action, session.sid)


# -- signing in -------------------------------------------------------------------------------
def page_user(services: Services, req: WebRequest, api: str | None = None
              ) -> User | Page | None:
    """The first half of `signed_in_user`, without I/O: the signed-in user; the page that
    answers instead (404: no API `api` is configured, so no page calls it; 503: a sign-in
    cannot help); or None: a sign-in must start (`sign_in_for_page`)."""
    if api is not None and api not in services.settings.apis:
        return http_error(404)
    user = current_user(req.session)
    if user is not None:
        return user
    refused = sign_in_refused(services.settings, req.session, req.cookies, services.auth.clock())
    if refused:
        return error_page("Session storage unavailable", refused, 503, retry="/")
    return None


def sign_in_for_page(services: Services, req: WebRequest, api: str | None = None) -> Outcome:
    """The second half of `signed_in_user`: a signed-out visitor of a page that calls `api`
    signs in with that API's scopes, one provider round trip from a cold start. Blocking (it
    builds an MSAL client)."""
    scopes, purpose = page_sign_in(services.settings, api)
    return start_sign_in(services, req, return_to=req.here, scopes=scopes, purpose=purpose)


def signed_in_user(services: Services, req: WebRequest, api: str | None = None
                   ) -> User | Outcome:
    """The login guard of every page for signed-in users: the user, or what the page answers
    instead: a sign-in (with the scopes of `api`, the API the page calls), a 404 when `api` is
    not configured, or an error page when another sign-in could not help."""
    found = page_user(services, req, api)
    return sign_in_for_page(services, req, api) if found is None else found


# -- who may do what (core/authorization.py) ---------------------------------------------------
def denied_page(req: WebRequest, denied: Denied) -> Page:
    """403: what the page needs and who the user is signed in as, with a way to sign in as
    someone else; never a redirect to sign in (that would loop for a user who lacks it)."""
    user = denied.user
    log.warning("access denied: user %s of tenant %s needs %s (%s)",
                user.object_id or loggable(user.account.subject), user.tenant_id or "-",
                "an allowed tenant" if denied.tenant else denied.missing, loggable(req.here))
    message = ("Your organization may not use this app." if denied.tenant
               else f"This page needs {denied.missing}.")
    return Page("error.html", {
        "title": "Access denied", "message": message, "retry": None,
        "signed_in_as": user.username or user.name,
        "switch_account": "/login?" + urlencode({"next": req.here,
                                                  "prompt": "select_account"}),
    }, 403)


def _decided(req: WebRequest, decision: CurrentUser | Denied) -> CurrentUser | Page:
    return denied_page(req, decision) if isinstance(decision, Denied) else decision


def authorize_offline(services: Services, req: WebRequest, user: User,
                      requirement: Requirement = NO_REQUIREMENT) -> CurrentUser | Page | None:
    """The authorization guard without I/O: the user as your code reads it, the 403 page, or
    None: `authorize` must run (blocking: the tenant hook, an overage user's groups)."""
    decision = services.authz.decide_offline(user, requirement)
    return None if decision is None else _decided(req, decision)


def authorize(services: Services, req: WebRequest, user: User,
              requirement: Requirement = NO_REQUIREMENT) -> CurrentUser | Outcome:
    """The authorization guard (blocking): the user as your code reads it, the 403 page, a
    consent round trip for the Graph call that learns an overage user's groups, or an error
    page when what decides could not be learnt (never access)."""
    try:
        decision = services.authz.decide(user, requirement, req.known)
    except TenantCheckFailed:
        return error_page("Access could not be checked", "Whether your organization may use "
                          "this app could not be checked; try again in a moment.", 503,
                          retry=req.here)
    except GroupsUnavailable as exc:
        return error_page("Group membership unavailable", exc.message, exc.status,
                          retry=req.here)
    except Exception as exc:  # a consent round trip, or the store's or the token's failure
        return api_failure(services, req, user, "Microsoft Graph", exc)
    return _decided(req, decision)


def authorized_user(services: Services, req: WebRequest,
                    requirement: Requirement = NO_REQUIREMENT, api: str | None = None
                    ) -> CurrentUser | Outcome:
    """The guard of every page for signed-in users (`signed_in_user`), then `authorize`."""
    user = signed_in_user(services, req, api)
    if not isinstance(user, User):
        return user
    decided = authorize_offline(services, req, user, requirement)
    return authorize(services, req, user, requirement) if decided is None else decided


def start_sign_in(services: Services, req: WebRequest, *, return_to: str,
                  scopes: list[str] | None = None, login_hint: str | None = None,
                  claims: str | None = None, purpose: str = "",
                  for_account: str | None = None, prompt: str | None = None,
                  domain_hint: str | None = None, user_flow: str | None = None,
                  editing: User | None = None) -> Outcome:
    """Send the browser to the provider, with this sign-in's flow cookie (`user_flow`,
    `editing`: a B2C user flow of its own, see AuthService.start_sign_in)."""
    try:
        start = services.auth.start_sign_in(
            return_to=return_to, scopes=scopes, login_hint=login_hint, claims=claims,
            purpose=purpose, for_account=for_account, prompt=prompt, domain_hint=domain_hint,
            retire_session=req.session.sid if req.session else None, user_flow=user_flow,
            editing=editing)
    except SignInError as exc:
        log.warning("sign-in could not start: %s", exc)
        return error_page("Sign-in service problem", exc.message, exc.status, retry=return_to)
    return Redirect(start.auth_uri, sign_in_cookies(
        services.settings, start, req.cookies, services.auth.flow_expiry, services.auth.clock()))


def login(services: Services, req: WebRequest, next_path: str | None,
          login_hint: str | None, prompt: str | None = None) -> Outcome:
    """The sign-in link: `next_path` is where to come back to; `prompt=select_account` (the
    denied page's "sign in as someone else") lets the user pick another account."""
    return start_sign_in(services, req, return_to=next_path or "/",
                         login_hint=login_hint or None,
                         prompt="select_account" if prompt == "select_account" else None)


def complete_sign_in(services: Services, req: WebRequest, answer: Mapping[str, str]
                     ) -> Outcome:
    """The redirect URI: redeem the provider's answer (form_post fields or query), start a new
    session for the user, and go back to where the sign-in started."""
    found = callback_cookies(services.settings, req.cookies, answer)
    try:
        result = services.auth.complete_sign_in(found.flow_cookie, answer,
                                                others_in_progress=found.others_in_progress)
    except SignInError as exc:
        outcome = b2c_answer(services, req, exc) or sign_in_failed(exc)
    else:
        outcome = (start_sign_in(services, req, return_to=result.return_to)
                   if result.sign_in_next else signed_in(services, req, result))
    # The used flow cookie is single-use, whatever the outcome; other tabs' ones stay.
    return _with_cookies(outcome, found.used)


def b2c_answer(services: Services, req: WebRequest, exc: SignInError) -> Outcome | None:
    """Azure AD B2C's answers that are no failure: "Forgot your password?" starts the
    password-reset user flow (when the app has one), a cancelled user flow goes back home
    (as Microsoft.Identity.Web does); None for any other error."""
    reset = services.settings.b2c_password_reset_flow
    if exc.reason == B2C_FORGOT_PASSWORD and reset:
        log.info("password reset asked for on the sign-in page; starting user flow %s", reset)
        return start_sign_in(services, req, return_to=exc.retry, user_flow=reset)
    if exc.reason == B2C_CANCELLED:
        log.info("the user cancelled a user flow")
        return Redirect("/")
    return None


def sign_in_failed(exc: SignInError) -> Page:
    """The error page of a sign-in that failed."""
    log.warning("sign-in failed: %s", exc)
    if exc.reason == B2C_FORGOT_PASSWORD:  # no password-reset user flow configured
        return error_page("Password reset unavailable", exc.message + " Ask the site's "
                          "administrator to reset it, or try another password.", 400,
                          retry="/login")
    return error_page(
        "Administrator consent needed" if exc.admin_consent else "Sign-in failed",
        exc.message, exc.status, retry=exc.retry, reference=exc.reference,
        admin_consent=exc.admin_consent)


def signed_in(services: Services, req: WebRequest, result: SignInResult) -> Outcome:
    """A new session for the user the provider answered for, then back where they were."""
    if result.retire_session:
        # The session this browser had before signing in ends here.
        services.sessions.retire(result.retire_session)
    if result.user.groups_overage:
        # Groups learnt from Graph before this sign-in are asked again (roles and the
        # token's groups are new with the new ID token).
        services.authz.forget(result.user.home_account_id)
    req.session.rotate()
    begin_session(req.session, result, services.auth.clock())
    return Redirect(result.return_to,
                    signed_in_cookies(services.settings, req.cookies, services.auth.clock()))


def edit_profile(services: Services, req: WebRequest) -> Outcome:
    """/edit-profile (Azure AD B2C with a profile-edit user flow; else no such page): the
    signed-in user edits their profile in B2C's user flow and comes back with its claims."""
    flow = services.settings.b2c_profile_edit_flow
    if not flow:
        return http_error(404)
    user = signed_in_user(services, req)
    if not isinstance(user, User):
        return user
    return start_sign_in(services, req, return_to="/", user_flow=flow, editing=user)


def sign_out(services: Services, req: WebRequest, submitted_csrf: str | None) -> Outcome:
    """The sign-out form: forget the user's tokens and session, then the provider's sign-out."""
    if not csrf_valid(req.session, submitted_csrf):
        return form_expired()
    user = current_user(req.session)
    end_session_url = services.auth.sign_out(user)
    if user is not None and user.groups_overage:
        try:
            services.authz.forget(user.home_account_id)
        except StoreUnavailable as exc:  # the next sign-in asks again anyway
            log.warning("%s", exc)
    req.session.clear()
    return Redirect(end_session_url, signed_out_cookies(services.settings))


def _issuer_known(services: Services, iss: str) -> bool:
    """Whether `iss` is the issuer of this app's authority: its discovery document's `issuer`,
    whose `{tenantid}` (multi-tenant authorities) stands for one tenant's id. When discovery
    cannot be read, any issuer passes: only sessions signed in by that very issuer end."""
    try:
        expected = str(services.auth.clients.discovery().get("issuer") or "")
    except (requests.RequestException, ValueError):
        log.warning("discovery failed; the front-channel sign-out's issuer is not checked")
        return True
    prefix, template, suffix = expected.partition(TENANT_PLACEHOLDER)
    if not template:
        return iss == expected
    if not (iss.startswith(prefix) and iss.endswith(suffix)
            and len(iss) > len(prefix) + len(suffix)):
        return False
    tenant = iss[len(prefix):len(iss) - len(suffix)]
    return tenant.isascii() and tenant.replace("-", "").isalnum()


def front_channel_sign_out(services: Services, req: WebRequest, sid: str | None,
                           iss: str | None) -> Page:
    """The front-channel logout URL (OpenID Connect Front-Channel Logout 1.0): the user signed
    out at the provider, from this app or another, and the provider's sign-out page loads this
    URL in a hidden iframe with the provider session's `sid` (and `iss`: Entra sends `sid`
    only, UNCONFIRMED by its docs: seen in practice). Every session of this app signed in
    under that `sid` ends, in every instance sharing the store, and the tokens of an account
    left without a session are removed.

    Works without a cookie (a third-party iframe gets none): the `sid` alone names the
    sessions. It is unauthenticated by design, like the protocol: the `sid` is the secret, an
    unguessable id that only the ID token and the provider know. Answers 200 (never a
    redirect: the iframe is never shown); 400 for a missing `sid` or an `iss` that is not this
    app's authority's, which ends nothing; 503 when the store cannot be reached, so that the
    sessions are left to expire."""
    headers = front_channel_headers(services.settings)
    if not sid or len(sid) > 256 or (iss is not None and (len(iss) > 512 or not _issuer_known(
            services, iss))):
        log.warning("front-channel sign-out refused: %s", "no sid" if not sid else
                    "sid too long" if len(sid) > 256 else f"issuer {loggable(iss or '')}")
        return Page("front_channel_logout.html", {"message": "Not a sign-out request of this "
                    "app's identity provider."}, 400, headers=headers)
    try:
        ended = services.sessions.end_provider_session(sid, iss)
        for account in ended.accounts_left_without_session:
            services.auth.caches.remove(account)
            services.authz.forget(account)
    except StoreUnavailable as exc:
        log.error("front-channel sign-out failed: %s", exc)
        return Page("front_channel_logout.html", {"message": SESSION_STORE_DOWN}, 503,
                    headers=headers)
    own = current_user(req.session)
    if own is not None and own.sid == sid and iss in (None, own.issuer):
        req.session.clear()  # deleted already: the save point must not write it again
    log.info("front-channel sign-out: %d session(s) ended, tokens of %d account(s) removed",
             ended.ended, len(ended.accounts_left_without_session))
    return Page("front_channel_logout.html", {"message": "Signed out."}, headers=headers)


# -- calling APIs -----------------------------------------------------------------------------
# What makes an API call "unreachable" for the blocking driver; an async adapter adds the
# errors of its own transport (see `api_failure`).
UNREACHABLE: tuple[type[BaseException], ...] = (requests.RequestException,)


def call_api(services: Services, req: WebRequest, user: User, name: str, path: str = "",
             **options: Any) -> ApiResponse | Outcome:
    """Call the API `name` for the user: its response, or the outcome that takes its place (a
    consent or claims round trip, or an error page). `options` go to `DownstreamApis.call`."""
    try:
        response = services.apis.call(user, name, path, known=req.known, **options)
    except Exception as exc:
        return api_failure(services, req, user, name, exc)
    api_succeeded(req.session)
    return response


def api_failure(services: Services, req: WebRequest, user: User, name: str,
                exc: Exception, unreachable: tuple[type[BaseException], ...] = UNREACHABLE
                ) -> Outcome:
    """The outcome that takes the place of API `name`'s response when calling it raised `exc`,
    for every driver of the call (`unreachable`: its transport's errors); any other exception
    is raised again. A consent round trip starts a sign-in: blocking I/O."""
    if isinstance(exc, InteractionRequired):
        if not should_interact(req.session, exc, services.auth.clock()):
            return error_page("Access not granted",
                              f"Signing in again did not give this app access to {name}. "
                              "Your administrator may need to grant consent.", 403, retry="/",
                              admin_consent=services.auth.admin_consent_url(exc.scopes))
        return start_sign_in(services, req, return_to=req.here, scopes=exc.scopes,
                             login_hint=exc.login_hint, claims=exc.claims,
                             purpose=interaction_key(exc.scopes, exc.claims),
                             for_account=user.home_account_id,
                             domain_hint=services.auth.domain_hint(user))
    if isinstance(exc, StoreUnavailable):
        log.error("%s", exc)
        return error_page("Session storage unavailable", SESSION_STORE_DOWN, 503,
                          retry=req.here)
    if isinstance(exc, CredentialRejected | CredentialUnavailable):
        # The log names the credential that failed (never its value); the user can do nothing.
        log.error("no token for API %s: %s", name, exc)
        return error_page("Sign-in service problem", CREDENTIAL_REJECTED, 502, retry=req.here)
    if isinstance(exc, TokenAcquisitionError):
        log.error("token acquisition failed: %s", exc)
        return error_page("Sign-in service problem",
                          "A token for this API could not be obtained.", 502, retry=req.here)
    if isinstance(exc, ResponseTooLarge):
        log.warning("API %s: %s (API_MAX_RESPONSE_BYTES)", name, exc)
        return error_page("API answer too large",
                          f"The answer of {name} is too large for this app to read.", 502,
                          retry=req.here)
    if isinstance(exc, DownstreamApiError):
        log.warning("%s", exc)
        if exc.throttled:  # retried already as far as the call's deadline allowed
            return error_page("API busy", f"{name} is busy or unavailable right now "
                              f"(HTTP {exc.status}). Please try again later.", 503,
                              retry=req.here)
        return error_page("API error", f"{name} answered with HTTP {exc.status}.", 502,
                          retry=req.here)
    if isinstance(exc, unreachable):
        log.warning("API %s unreachable: %s", name, exc)
        return error_page("API unreachable", f"{name} could not be reached.", 502,
                          retry=req.here)
    raise exc


def api_data(response: ApiResponse) -> Any:
    """An API's answer for a page: its JSON, or its text."""
    try:
        return response.json()
    except ValueError:
        return response.text


def api_page(name: str, response: ApiResponse) -> Page:
    """The page showing what the API `name` answered (/api/<name>)."""
    data = api_data(response)
    return Page("api.html", {"name": name, "data": data,
                             "pretty": json.dumps(data, indent=2, sort_keys=True)})


def access_requirement(services: Services, kind: str, name: str) -> Requirement | None:
    """The requirement of an example page guarded by one role (`kind` "roles") or one named
    group ("groups") of the app: /roles/<role>, /groups/<name>; None (404) for another."""
    settings = services.settings
    if kind == "roles" and name in settings.roles:
        return Requirement(roles=(name,))
    if kind == "groups" and name in settings.groups:
        return Requirement(groups=(name,))
    return None


def access_page(user: CurrentUser, requirement: Requirement) -> Page:
    """An example page for users who meet `requirement`: what it needed and what they have."""
    return Page("access.html", {"needs": requirement.describe(), "current": user})


def profile_page(me: ApiResponse | Mapping[str, Any]) -> Page:
    """The page showing the user's Microsoft Graph profile (/profile, Graph's /me): its
    answer, or (through the Graph SDK, core/sdk.py) its fields by Graph's JSON names."""
    return Page("profile.html", {"me": api_data(me) if isinstance(me, ApiResponse) else me})
