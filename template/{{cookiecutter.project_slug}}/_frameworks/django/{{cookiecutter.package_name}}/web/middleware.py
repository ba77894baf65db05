"""The middleware: the core's security headers, its session as `request.session` (loaded when
the request arrives, saved once as the response leaves), and a lazy `request.user` for the
signed-in user."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.contrib import auth
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject

from ..core import adapter, flows
from ..core.health import session_id
from ..core.web import body_too_large, current_user
from .responses import ADAPTER, respond, session_state
from .services import services_for
from .sessions import SessionStore

GetResponse = Callable[[HttpRequest], HttpResponse]


class SecurityHeadersMiddleware:
    """The core's security headers on every response (static files and error pages too); a
    view may set its own."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return adapter.add_security_headers(ADAPTER, request, self.get_response(request),
                                            https=request.scheme == "https")


class SessionMiddleware:
    """`request.session`: the core's session under the core's cookie (not Django's session
    cookie settings: its name and flags follow the app's URL, see core/web.py).

    A body larger than the app takes (MAX_REQUEST_BYTES) is refused first, before anything
    reads it. The session is saved once, as the response leaves, whatever view or error page
    made it (core/adapter.py `finish`); if it cannot be, a page says so.
    """

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        services = services_for(request)
        if body_too_large(services.settings, request.META.get("CONTENT_LENGTH")):
            return respond(request, flows.http_error(413))
        # None for the health probes: they read and write no session (core/health.py).
        sid = session_id(request.path, request.COOKIES.get(services.session_cookie.name))
        request.session = SessionStore(state=services.sessions.load(sid), services=services)
        response = adapter.finish(ADAPTER, request, self.get_response(request))
        # Django's CSRF cookie is Secure (settings.py), which Safari drops on plain http: an
        # app on http://localhost (local development) sends it without.
        csrf_cookie = response.cookies.get(settings.CSRF_COOKIE_NAME)
        if csrf_cookie is not None and not services.settings.secure_cookies:
            csrf_cookie["secure"] = False
        return response


def _user(request: HttpRequest) -> object:
    signed_in = current_user(session_state(request))
    if signed_in is None:
        return AnonymousUser()
    return auth.authenticate(request, signed_in=signed_in) or AnonymousUser()


class AuthenticationMiddleware:
    """`request.user`: the signed-in user's row (web/backends.py), looked up only when read,
    so that pages that do not use it make no database query."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.user = SimpleLazyObject(lambda: _user(request))
        return self.get_response(request)
