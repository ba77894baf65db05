"""The core's adapter contract (core/adapter.py) for Django: a request as the core sees it, and
the Django response for a core outcome (`respond`). The decisions live in core/flows.py, the
same for every framework."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.templatetags.static import static
from jinja2 import Environment

from ..core import adapter, flows
from ..core.services import Services
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


class DjangoAdapter:
    def services(self, request: HttpRequest) -> Services:
        return services_for(request)

    def web_request(self, request: HttpRequest) -> flows.WebRequest:
        return flows.WebRequest(here=request.get_full_path(), cookies=request.COOKIES,
                                session=session_state(request))

    def render(self, request: HttpRequest, page: flows.Page) -> HttpResponse:
        return HttpResponse(render_to_string(page.template, page.context, request=request),
                            status=page.status)

    def redirect(self, request: HttpRequest, location: str) -> HttpResponse:
        return HttpResponseRedirect(location)

    def set_cookies(self, response: HttpResponse, changes: CookieChanges) -> None:
        for spec in changes.delete:
            # Browsers match a deletion on name, path and (for __Host- names) Secure: the same
            # flags as the cookie had (Django's delete_cookie does not take them all).
            response.set_cookie(spec.name, "", max_age=0,
                                expires="Thu, 01 Jan 1970 00:00:00 GMT", path=spec.path,
                                secure=spec.secure, httponly=spec.httponly,
                                samesite=spec.samesite)
        for spec, value in changes.set:
            response.set_cookie(spec.name, value, max_age=spec.max_age, path=spec.path,
                                secure=spec.secure, httponly=spec.httponly,
                                samesite=spec.samesite)

    def set_header(self, response: HttpResponse, name: str, value: str) -> None:
        response.headers.setdefault(name, value)


ADAPTER = DjangoAdapter()


def web_request(request: HttpRequest) -> flows.WebRequest:
    """This request, as the core sees it."""
    return ADAPTER.web_request(request)


def respond(request: HttpRequest, outcome: flows.Outcome) -> HttpResponse:
    """The Django response for a core outcome (the session is saved as the response leaves,
    web/middleware.py)."""
    return adapter.respond(ADAPTER, request, outcome)
