"""Translation between Django and the core: a request as the core sees it (`web_request`), and
the Django response for a core outcome (`respond`). The decisions live in core/flows.py, the
same for every framework."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.templatetags.static import static
from jinja2 import Environment

from ..core import flows
from ..core.sessions import SessionState
from ..core.web import CookieChanges
from .services import services_for


def jinja_environment(**options: Any) -> Environment:
    """The Jinja environment of the pages (settings.TEMPLATES): `static(path)` is the URL of a
    static file, as the shared templates expect."""
    env = Environment(**options)
    env.globals["static"] = static
    return env


def session_state(request: HttpRequest) -> SessionState:
    """The request's core session (web/sessions.py); an empty one before the session
    middleware ran (an error in an outer middleware)."""
    state = getattr(getattr(request, "session", None), "state", None)
    return state if isinstance(state, SessionState) else SessionState()


def template_globals(request: HttpRequest) -> dict[str, Any]:
    """The context processor (settings.TEMPLATES) of every page: what base.html uses."""
    return flows.template_globals(services_for(request), session_state(request))


def web_request(request: HttpRequest) -> flows.WebRequest:
    """This request, as the core sees it."""
    return flows.WebRequest(here=request.get_full_path(), cookies=request.COOKIES,
                            session=session_state(request))


def render_page(request: HttpRequest, page: flows.Page) -> HttpResponse:
    return HttpResponse(render_to_string(page.template, page.context, request=request),
                        status=page.status)


def respond(request: HttpRequest, outcome: flows.Outcome) -> HttpResponse:
    """The Django response for a core outcome, after the core saved the session."""
    outcome = flows.finish(services_for(request), web_request(request), outcome)
    if isinstance(outcome, flows.Redirect):
        response: HttpResponse = HttpResponseRedirect(outcome.location)
    else:
        response = render_page(request, outcome)
    return apply_cookies(response, outcome.cookies)


def apply_cookies(response: HttpResponse, changes: CookieChanges) -> HttpResponse:
    for spec in changes.delete:
        # Browsers match a deletion on name, path and (for __Host- names) Secure: the same
        # flags as the cookie had (Django's delete_cookie does not take them all).
        response.set_cookie(spec.name, "", max_age=0, expires="Thu, 01 Jan 1970 00:00:00 GMT",
                            path=spec.path, secure=spec.secure, httponly=spec.httponly,
                            samesite=spec.samesite)
    for spec, value in changes.set:
        response.set_cookie(spec.name, value, max_age=spec.max_age, path=spec.path,
                            secure=spec.secure, httponly=spec.httponly, samesite=spec.samesite)
    return response
