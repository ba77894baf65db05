"""Routes: home, sign-in, the redirect URI, sign-out, the profile and one page per API.

This module only translates between Flask and the core (core/); the decisions live there.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

import requests
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
)
from werkzeug.exceptions import HTTPException

from .config import DEFAULTS
from .core.auth import User
from .core.errors import (
    DownstreamApiError,
    InteractionRequired,
    SignInError,
    StoreUnavailable,
    TokenAcquisitionError,
)
from .core.sessions import SessionState
from .core.web import (
    SESSION_STORE_DOWN,
    CookieChanges,
    Services,
    api_succeeded,
    begin_session,
    callback_cookies,
    csrf_token,
    csrf_valid,
    current_user,
    interaction_key,
    page_sign_in,
    save_session,
    should_interact,
    sign_in_cookies,
    sign_in_refused,
    signed_in_cookies,
    signed_out_cookies,
)

log = logging.getLogger(__name__)
bp = Blueprint("main", __name__)
View = TypeVar("View", bound=Callable[..., Any])


def services() -> Services:
    return cast(Services, current_app.extensions["msal_webapp"])


def _here() -> str:
    """The current local path and query, to come back to after a sign-in."""
    query = request.query_string.decode("latin-1")
    return request.path + (f"?{query}" if query else "")


def login_required(view: View | None = None, *, api: str | None = None) -> Any:
    """Views wrapped with this run only for a signed-in user, available as `g.user`.

    `@login_required(api="graph")` on a page that calls an API signs a signed-out user in with
    that API's scopes, so one trip to the provider is enough.
    """

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            user = current_user(session)
            if user is None:
                refused = sign_in_refused(services().settings, cast(SessionState, session),
                                          request.cookies, services().auth.clock())
                if refused:
                    return _error("Session storage unavailable", refused, 503, retry="/")
                scopes, purpose = page_sign_in(services().settings, api)
                return _start_sign_in(return_to=_here(), scopes=scopes, purpose=purpose)
            g.user = user
            return view(*args, **kwargs)

        return cast(View, wrapped)

    return decorate(view) if view is not None else decorate


@bp.app_context_processor
def _template_globals() -> dict[str, Any]:
    settings = services().settings
    return {
        "app_name": settings.app_name,
        "user": current_user(session),
        "api_names": [name for name in settings.apis if name != "graph"],
        "has_graph": "graph" in settings.apis,
        "csrf_token": lambda: csrf_token(session),
    }


def _error(title: str, message: str, status: int, retry: str | None = None) -> Response:
    page = render_template("error.html", title=title, message=message, retry=retry)
    return Response(page, status=status)


def _apply(response: Response, changes: CookieChanges) -> Response:
    for spec in changes.delete:
        # Browsers match a deletion on name, path and (for __Host- names) Secure.
        response.delete_cookie(spec.name, path=spec.path, secure=spec.secure,
                               httponly=spec.httponly, samesite=spec.samesite)
    for spec, value in changes.set:
        response.set_cookie(spec.name, value, max_age=spec.max_age, path=spec.path,
                            secure=spec.secure, httponly=spec.httponly, samesite=spec.samesite)
    return response


def _start_sign_in(*, return_to: str, scopes: list[str] | None = None,
                   login_hint: str | None = None, claims: str | None = None,
                   purpose: str = "", for_account: str | None = None) -> Response:
    try:
        start = services().auth.start_sign_in(return_to=return_to, scopes=scopes,
                                              login_hint=login_hint, claims=claims,
                                              purpose=purpose, for_account=for_account,
                                              retire_session=cast(SessionState, session).sid
                                              if session else None)
    except SignInError as exc:
        log.warning("sign-in could not start: %s", exc)
        return _error("Sign-in service problem", exc.message, exc.status, retry=return_to)
    response = cast(Response, redirect(start.auth_uri))
    return _apply(response, sign_in_cookies(services(), start, request.cookies))


@bp.after_app_request
def _security_headers(response: Response) -> Response:
    for name, value in services().security_headers.items():
        response.headers.setdefault(name, value)
    return response


@bp.after_app_request
def _save_session(response: Response) -> Response:
    """Write the session before the response leaves (registered after `_security_headers`, so
    it runs first): if it cannot be saved, the user gets a page saying so instead of a redirect
    that would lose the sign-in."""
    try:
        save_session(services(), cast(SessionState, session))
    except StoreUnavailable as exc:
        log.error("%s", exc)
        return _error("Session storage unavailable", SESSION_STORE_DOWN, 503, retry="/")
    return response


@bp.get("/")
def index() -> str:
    return render_template("index.html")


@bp.get("/login")
def login() -> Response:
    return _start_sign_in(return_to=request.args.get("next", "/"),
                          login_hint=request.args.get("login_hint") or None)


def auth_response() -> Response:
    """The redirect URI: redeem the code the provider sent back (or show why not).

    POST (form_post, over https) or GET (query, local development on http://localhost).
    """
    params = (request.form if request.method == "POST" else request.args).to_dict()
    found = callback_cookies(services().settings, request.cookies, params)
    try:
        result = services().auth.complete_sign_in(
            found.flow_cookie, params, others_in_progress=found.others_in_progress)
    except SignInError as exc:
        log.warning("sign-in failed: %s", exc)
        response = _error("Sign-in failed", exc.message, exc.status, retry=exc.retry)
    else:
        if result.retire_session:
            # The session this browser had before signing in ends here.
            services().sessions.retire(result.retire_session)
        cast(SessionState, session).rotate()
        begin_session(session, result)
        response = _apply(cast(Response, redirect(result.return_to)),
                          signed_in_cookies(services().settings, request.cookies,
                                            services().auth.clock()))
    # The used flow cookie is single-use, whatever the outcome; other tabs' ones stay.
    return _apply(response, found.used)


# The redirect path is the one registered with the identity provider (config.py).
bp.add_url_rule(DEFAULTS.redirect_path, "auth_response", auth_response, methods=["GET", "POST"])


@bp.post("/logout")
def logout() -> Response:
    if not csrf_valid(session, request.form.get("csrf_token")):
        return _error("Sign-out not confirmed", "The sign-out form expired; please try again.",
                      400, retry="/")
    end_session_url = services().auth.sign_out(current_user(session))
    session.clear()
    return _apply(cast(Response, redirect(end_session_url)),
                  signed_out_cookies(services().settings))


def _call_api(user: User, name: str, path: str = "") -> Any | Response:
    """Call an API for the user; turn "the user must act" into a sign-in round trip."""
    try:
        response = services().apis.call(user, name, path)
    except InteractionRequired as exc:
        if not should_interact(session, exc):
            return _error("Access not granted",
                          f"Signing in again did not give this app access to {name}. "
                          "Your administrator may need to grant consent.", 403, retry="/")
        return _start_sign_in(return_to=_here(), scopes=exc.scopes, login_hint=exc.login_hint,
                              claims=exc.claims, purpose=interaction_key(exc.scopes, exc.claims),
                              for_account=user.home_account_id)
    except StoreUnavailable as exc:
        log.error("%s", exc)
        return _error("Session storage unavailable", SESSION_STORE_DOWN, 503, retry=_here())
    except TokenAcquisitionError as exc:
        log.error("token acquisition failed: %s", exc)
        return _error("Sign-in service problem", "A token for this API could not be obtained.",
                      502, retry=_here())
    except DownstreamApiError as exc:
        log.warning("%s", exc)
        return _error("API error", f"{name} answered with HTTP {exc.status}.", 502, retry=_here())
    except requests.RequestException as exc:
        log.warning("API %s unreachable: %s", name, exc)
        return _error("API unreachable", f"{name} could not be reached.", 502, retry=_here())
    api_succeeded(session)
    try:
        return response.json()
    except ValueError:
        return response.text


@bp.get("/profile")
@login_required(api="graph")
def profile() -> Any:
    if "graph" not in services().settings.apis:
        abort(404)
    me = _call_api(g.user, "graph", "me")
    if isinstance(me, Response):
        return me
    return render_template("profile.html", me=me)


@bp.get("/api/<name>")
def api(name: str) -> Any:
    if name not in services().settings.apis:
        abort(404)
    return login_required(api=name)(_api_page)(name)


def _api_page(name: str) -> Any:
    data = _call_api(g.user, name)
    if isinstance(data, Response):
        return data
    return render_template("api.html", name=name, data=data,
                           pretty=json.dumps(data, indent=2, sort_keys=True))


@bp.app_errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Response:
    return _error(exc.name, exc.description or "", exc.code or 500)


@bp.app_errorhandler(Exception)
def _unexpected(exc: Exception) -> Response:
    log.exception("unhandled error")
    return _error("Something went wrong", "The error was logged.", 500, retry="/")
