"""Routes: home, sign-in, the redirect URI, sign-out, the profile and one page per API.

This module only translates between Flask and the core: each route builds a `WebRequest`, asks
core/flows.py what to do, and turns the answer (a redirect or a page, with its cookies) into a
Flask response. The decisions live in the core, the same for every framework.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

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
    url_for,
)
from werkzeug.exceptions import HTTPException

from .config import DEFAULTS
from .core import flows
from .core.auth import User
from .core.downstream import ApiResponse
from .core.sessions import SessionState
from .core.web import CookieChanges, Services

log = logging.getLogger(__name__)
bp = Blueprint("main", __name__)
View = TypeVar("View", bound=Callable[..., Any])


def services() -> Services:
    return cast(Services, current_app.extensions["msal_webapp"])


def web_request() -> flows.WebRequest:
    """This request, as the core sees it."""
    query = request.query_string.decode("latin-1")
    return flows.WebRequest(here=request.path + (f"?{query}" if query else ""),
                            cookies=request.cookies, session=cast(SessionState, session))


def respond(outcome: flows.Outcome) -> Response:
    """The Flask response for a core outcome, after the core saved the session."""
    outcome = flows.finish(services(), web_request(), outcome)
    if isinstance(outcome, flows.Redirect):
        response = cast(Response, redirect(outcome.location))
    else:
        response = _render(outcome)
    return apply_cookies(response, outcome.cookies)


def _render(page: flows.Page) -> Response:
    return Response(render_template(page.template, **page.context), status=page.status)


def apply_cookies(response: Response, changes: CookieChanges) -> Response:
    for spec in changes.delete:
        # Browsers match a deletion on name, path and (for __Host- names) Secure.
        response.delete_cookie(spec.name, path=spec.path, secure=spec.secure,
                               httponly=spec.httponly, samesite=spec.samesite)
    for spec, value in changes.set:
        response.set_cookie(spec.name, value, max_age=spec.max_age, path=spec.path,
                            secure=spec.secure, httponly=spec.httponly, samesite=spec.samesite)
    return response


def login_required(view: View | None = None, *, api: str | None = None) -> Any:
    """Views wrapped with this run only for a signed-in user, available as `g.user`.

    `@login_required(api="graph")` on a page that calls an API signs a signed-out user in with
    that API's scopes, so one trip to the provider is enough.
    """

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            user = flows.signed_in_user(services(), web_request(), api)
            if not isinstance(user, User):
                return respond(user)
            g.user = user
            return view(*args, **kwargs)

        return cast(View, wrapped)

    return decorate(view) if view is not None else decorate


def call_api(name: str, path: str = "", **options: Any) -> ApiResponse | Response:
    """Call the API `name` for `g.user` (in a `login_required` view): its response, or the
    Flask response to return instead (consent round trip or error page).

        answer = call_api("todo", "items", method="POST", json={"title": "x"})
        if isinstance(answer, Response):
            return answer
    """
    result = flows.call_api(services(), web_request(), g.user, name, path, **options)
    return result if isinstance(result, ApiResponse) else respond(result)


@bp.app_context_processor
def _template_globals() -> dict[str, Any]:
    return {**flows.template_globals(services(), cast(SessionState, session)),
            "static": lambda path: url_for("static", filename=path)}


@bp.after_app_request
def _security_headers(response: Response) -> Response:
    for name, value in services().security_headers.items():
        response.headers.setdefault(name, value)
    return response


@bp.after_app_request
def _save_session(response: Response) -> Response:
    """For views that change the session themselves: saved before the response leaves
    (registered after `_security_headers`, so it runs first); if it cannot be, a page says so.
    The routes here have saved it already, through `respond`."""
    failed = flows.session_saved(services(), web_request())
    return _render(failed) if failed else response


@bp.get("/")
def index() -> str:
    return render_template("index.html")


@bp.get("/login")
def login() -> Response:
    return respond(flows.login(services(), web_request(), request.args.get("next"),
                               request.args.get("login_hint")))


def auth_response() -> Response:
    """The redirect URI: POST (form_post, over https) or GET (query, local development)."""
    answer = (request.form if request.method == "POST" else request.args).to_dict()
    return respond(flows.complete_sign_in(services(), web_request(), answer))


# The redirect path is the one registered with the identity provider (config.py).
bp.add_url_rule(DEFAULTS.redirect_path, "auth_response", auth_response, methods=["GET", "POST"])


@bp.post("/logout")
def logout() -> Response:
    return respond(flows.sign_out(services(), web_request(), request.form.get("csrf_token")))


@bp.get("/profile")
@login_required(api="graph")
def profile() -> Any:
    if "graph" not in services().settings.apis:
        abort(404)
    me = call_api("graph", "me")
    if isinstance(me, Response):
        return me
    return respond(flows.profile_page(me))


@bp.get("/api/<name>")
def api(name: str) -> Any:
    if name not in services().settings.apis:
        abort(404)
    return login_required(api=name)(_api_page)(name)


def _api_page(name: str) -> Any:
    answer = call_api(name)
    if isinstance(answer, Response):
        return answer
    return respond(flows.api_page(name, answer))


@bp.app_errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Response:
    response = respond(flows.http_error(exc.code or 500))
    allow = dict(exc.get_headers()).get("Allow")  # 405: the methods the page takes
    if allow:
        response.headers["Allow"] = allow
    return response


@bp.app_errorhandler(Exception)
def _unexpected(exc: Exception) -> Response:
    log.exception("unhandled error")
    return respond(flows.http_error(500))
