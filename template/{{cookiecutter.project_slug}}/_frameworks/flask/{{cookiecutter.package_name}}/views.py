"""Routes: home, sign-in, the redirect URI, sign-out, the profile and one page per API.

This module only translates between Flask and the core: each route builds a `WebRequest`, asks
core/flows.py what to do, and turns the answer (a redirect or a page, with its cookies) into a
Flask response. The decisions live in the core, the same for every framework.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import wraps
from typing import Any, TypeVar, cast

from flask import (
    Blueprint,
    Request,
    Response,
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
from .core import adapter, flows, health{% if cookiecutter.graph_sdk %}, sdk{% endif %}

from .core.authorization import CurrentUser, requirement
from .core.downstream import ApiResponse
from .core.services import Services
from .core.sessions import SessionState
from .core.web import CookieChanges, body_too_large

log = logging.getLogger(__name__)
bp = Blueprint("main", __name__)
View = TypeVar("View", bound=Callable[..., Any])


class FlaskAdapter:
    """The core's adapter contract (core/adapter.py) for Flask."""

    def services(self, request: Request) -> Services:
        return cast(Services, current_app.extensions["msal_webapp"])

    def web_request(self, request: Request) -> flows.WebRequest:
        made: flows.WebRequest | None = g.get("_msal_web_request")
        if made is None:  # once per request: the guard, the view and the save point ask
            query = request.query_string.decode("latin-1")
            made = g._msal_web_request = flows.WebRequest(
                here=request.path + (f"?{query}" if query else ""), cookies=request.cookies,
                session=_session())
        return made

    def render(self, request: Request, page: flows.Page) -> Response:
        return Response(render_template(page.template, **page.context), status=page.status)

    def redirect(self, request: Request, location: str) -> Response:
        return cast(Response, redirect(location))

    def set_cookies(self, response: Response, changes: CookieChanges) -> None:
        for spec in changes.delete:
            # Browsers match a deletion on name, path and (for __Host- names) Secure.
            response.delete_cookie(spec.name, path=spec.path, secure=spec.secure,
                                   httponly=spec.httponly, samesite=spec.samesite)
        for spec, value in changes.set:
            response.set_cookie(spec.name, value, max_age=spec.max_age, path=spec.path,
                                secure=spec.secure, httponly=spec.httponly,
                                samesite=spec.samesite)

    def set_header(self, response: Response, name: str, value: str) -> None:
        response.headers.setdefault(name, value)


ADAPTER = FlaskAdapter()


def services() -> Services:
    return ADAPTER.services(request)


def web_request() -> flows.WebRequest:
    """This request, as the core sees it."""
    return ADAPTER.web_request(request)


def respond(outcome: flows.Outcome) -> Response:
    """The Flask response for a core outcome (the session is saved as the response leaves)."""
    return adapter.respond(ADAPTER, request, outcome)


def login_required(view: View | None = None, *, api: str | None = None,
                   roles: Sequence[str] = (), groups: Sequence[str] = ()) -> Any:
    """Views wrapped with this run only for a signed-in user who may open them, available as
    `g.user` (a core.authorization.CurrentUser: object id, tenant, name, username, roles,
    groups).

    `roles`: the user needs one of these app roles; `groups`: one of these of the app's named
    groups (config.py); both: one of each. A user who lacks them gets the 403 page.
    `@login_required(api="graph")` on a page that calls an API signs a signed-out user in with
    that API's scopes, so one trip to the provider is enough (and answers 404 if the app has
    no such API).

        @bp.get("/reports")
        @login_required(roles=["Admin", "Reader"], groups=["finance"])
        def reports() -> str: ...
    """
    needed = requirement(roles, groups)

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            user = flows.authorized_user(services(), web_request(), needed, api)
            if not isinstance(user, CurrentUser):
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
    result = flows.call_api(services(), web_request(), g.user.account, name, path, **options)
    return result if isinstance(result, ApiResponse) else respond(result)


def _session() -> SessionState:
    """This request's session itself: the core reads it often, not through Flask's proxy."""
    return cast(SessionState, session._get_current_object())  # type: ignore[attr-defined]


def _static(path: str) -> str:
    """The URL of a static file; the same for every request under the same script root."""
    urls: dict[tuple[str, str], str] = current_app.extensions.setdefault("msal_static_urls", {})
    key = (request.script_root, path)
    url = urls.get(key)
    if url is None:
        if len(urls) >= 64:  # bounded, whatever script roots requests come with
            urls.clear()
        url = urls[key] = url_for("static", filename=path)
    return url


@bp.app_context_processor
def _template_globals() -> dict[str, Any]:
    return {**flows.template_globals(services(), _session()), "static": _static}


@bp.before_app_request
def _limit_body() -> Response | None:
    """A body larger than the app takes is refused before it is read (one limit for every
    framework, MAX_REQUEST_BYTES); Flask's MAX_CONTENT_LENGTH cuts one without a length."""
    if body_too_large(services().settings, request.headers.get("Content-Length")):
        return respond(flows.http_error(413))
    return None


@bp.after_app_request
def _finish(response: Response) -> Response:
    """The one save point, for every response (the routes here, the views you write, the
    error pages), then the core's security headers."""
    response = adapter.finish(ADAPTER, request, response)
    return adapter.add_security_headers(ADAPTER, request, response,
                                        https=request.scheme == "https")


@bp.get("/")
def index() -> str:
    return render_template("index.html")


@bp.get("/login")
def login() -> Response:
    return respond(flows.login(services(), web_request(), request.args.get("next"),
                               request.args.get("login_hint"), request.args.get("prompt")))


def auth_response() -> Response:
    """The redirect URI: POST (form_post, over https) or GET (query, local development)."""
    answer = (request.form if request.method == "POST" else request.args).to_dict()
    return respond(flows.complete_sign_in(services(), web_request(), answer))


# The redirect path is the one registered with the identity provider (config.py).
bp.add_url_rule(DEFAULTS.redirect_path, "auth_response", auth_response, methods=["GET", "POST"])


@bp.get("/edit-profile")
def edit_profile() -> Response:
    """Azure AD B2C's profile-edit user flow (the core answers 404 when there is none)."""
    return respond(flows.edit_profile(services(), web_request()))


@bp.post("/logout")
def logout() -> Response:
    return respond(flows.sign_out(services(), web_request(), request.form.get("csrf_token")))


def front_channel_logout() -> Response:
    """The front-channel logout URL: the provider signs the user out of this app too."""
    return respond(flows.front_channel_sign_out(services(), web_request(),
                                                request.args.get("sid"), request.args.get("iss")))


# Registered with the identity provider as the app's front-channel logout URL (config.py).
bp.add_url_rule(DEFAULTS.front_channel_logout_path, "front_channel_logout",
                front_channel_logout, methods=["GET"])


@bp.get("/profile")
@login_required(api="graph")  # no page (404) when the app does not call Graph
def profile() -> Any:
{% if cookiecutter.graph_sdk %}
    # Graph's /me through the Microsoft Graph SDK, with the user's token (core/sdk.py).
    me = sdk.call_graph(services(), web_request(), g.user.account,
                        lambda graph: graph.me.get())
    if isinstance(me, flows.Redirect | flows.Page):
        return respond(me)
    return respond(flows.profile_page(sdk.profile_of(me)))
{% else %}
    me = call_api("graph", "me")
    if isinstance(me, Response):
        return me
    return respond(flows.profile_page(me))
{% endif %}


@bp.get("/api/<name>")
def api(name: str) -> Any:
    return login_required(api=name)(_api_page)(name)  # 404 for a name that is no API


def _api_page(name: str) -> Any:
    answer = call_api(name)
    if isinstance(answer, Response):
        return answer
    return respond(flows.api_page(name, answer))


{% set roles = (cookiecutter.get("authorization") or {}).get("roles") or [] %}
{% if roles %}
@bp.get("/admin")
@login_required(roles=[{{ roles[0] | tojson }}])  # a page for one app role: the 403 page for others
def admin() -> Response:
    return respond(flows.access_page(g.user, requirement([{{ roles[0] | tojson }}])))


{% endif %}
@bp.get("/<any(roles, groups):kind>/<path:name>")  # a role value may hold a "/"
def access(kind: str, name: str) -> Any:
    """One page per app role (/roles/<role>) and per named group (/groups/<name>), each for
    its members only: the guard's imperative form (404 for a name the app does not define)."""
    needed = flows.access_requirement(services(), kind, name)
    if needed is None:
        return respond(flows.http_error(404))
    guarded = login_required(roles=needed.roles, groups=needed.groups)(
        lambda: respond(flows.access_page(g.user, needed)))
    return guarded()


# The health probes (core/health.py): plain text, no session, no sign-in.
def _probe(answer: health.ProbeAnswer) -> Response:
    return Response(answer.body, status=answer.status, headers=answer.headers)


@bp.get(health.LIVENESS_PATH)
def healthz() -> Response:
    return _probe(health.liveness())


@bp.get(health.READINESS_PATH)
def readyz() -> Response:
    return _probe(services().readiness.check())


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
