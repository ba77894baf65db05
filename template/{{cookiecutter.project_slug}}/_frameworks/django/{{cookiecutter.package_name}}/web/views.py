"""Views: home, sign-in, the redirect URI, sign-out, the profile and one page per API, and the
error pages.

Each view only translates between Django and the core: it builds the core's view of the
request, asks core/flows.py what to do, and turns the answer (a redirect or a page, with its
cookies) into a Django response (web/responses.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt

from ..core import flows, health{% if cookiecutter.graph_sdk %}, sdk{% endif %}

{% if (cookiecutter.get("authorization") or {}).get("roles") %}
from ..core.authorization import requirement
{% endif %}
from .decorators import call_api, login_required
from .responses import respond, web_request
from .services import services_for

log = logging.getLogger(__name__)
View = TypeVar("View", bound=Callable[..., Any])


def allow(*methods: str) -> Callable[[View], View]:
    """Only these HTTP methods; others get the error page (405), as every error does."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            if request.method not in methods:
                response = respond(request, flows.http_error(405))
                response["Allow"] = ", ".join(methods)
                return response
            return view(request, *args, **kwargs)

        return cast(View, wrapped)

    return decorate


@allow("GET", "HEAD")
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "index.html")


# The sign-in, the redirect URI and sign-out are open to signed-out visitors also when you
# turn on Django's LoginRequiredMiddleware (it would otherwise send them to sign in: a loop).
@login_not_required
@allow("GET", "HEAD")
def login(request: HttpRequest) -> HttpResponse:
    return respond(request, flows.login(services_for(request), web_request(request),
                                        request.GET.get("next"), request.GET.get("login_hint"),
                                        request.GET.get("prompt")))


# The provider's answer is a cross-site POST (form_post, over https) or GET (query, local
# development): no CSRF token of Django's; the sign-in's flow cookie and `state` protect it.
@login_not_required
@csrf_exempt
@allow("GET", "POST")
def auth_response(request: HttpRequest) -> HttpResponse:
    answer = (request.POST if request.method == "POST" else request.GET).dict()
    return respond(request, flows.complete_sign_in(services_for(request), web_request(request),
                                                   answer))


# Azure AD B2C's profile-edit user flow (the core answers 404 when there is none); the core's
# login guard signs a signed-out visitor in first.
@login_not_required
@allow("GET", "HEAD")
def edit_profile(request: HttpRequest) -> HttpResponse:
    return respond(request, flows.edit_profile(services_for(request), web_request(request)))


# Checked twice: by Django's CsrfViewMiddleware (csrfmiddlewaretoken) and by the core's token.
@login_not_required
@allow("POST")
def logout(request: HttpRequest) -> HttpResponse:
    return respond(request, flows.sign_out(services_for(request), web_request(request),
                                           request.POST.get("csrf_token")))


# The front-channel logout URL: a GET from the provider's sign-out page (a third-party iframe,
# without cookies), open to everyone (the sid is the secret); no form, so no CSRF check.
@login_not_required
@allow("GET")
def front_channel_logout(request: HttpRequest) -> HttpResponse:
    return respond(request, flows.front_channel_sign_out(
        services_for(request), web_request(request), request.GET.get("sid"),
        request.GET.get("iss")))


@allow("GET", "HEAD")
@login_required(api="graph")  # no page (404) when the app does not call Graph
def profile(request: HttpRequest) -> HttpResponse:
{% if cookiecutter.graph_sdk %}
    # Graph's /me through the Microsoft Graph SDK, with the user's token (core/sdk.py).
    me = sdk.call_graph(services_for(request), web_request(request),
                        request.signed_in.account, lambda graph: graph.me.get())
    if isinstance(me, flows.Redirect | flows.Page):
        return respond(request, me)
    return respond(request, flows.profile_page(sdk.profile_of(me)))
{% else %}
    me = call_api(request, "graph", "me")
    if isinstance(me, HttpResponse):
        return me
    return respond(request, flows.profile_page(me))
{% endif %}


@allow("GET", "HEAD")
def api(request: HttpRequest, name: str) -> HttpResponse:
    # 404 for a name that is no API (the core's guard)
    return cast(HttpResponse, login_required(api=name)(_api_page)(request, name))


def _api_page(request: HttpRequest, name: str) -> HttpResponse:
    answer = call_api(request, name)
    if isinstance(answer, HttpResponse):
        return answer
    return respond(request, flows.api_page(name, answer))


{% set roles = (cookiecutter.get("authorization") or {}).get("roles") or [] %}
{% if roles %}
@allow("GET", "HEAD")
@login_required(roles=[{{ roles[0] | tojson }}])  # a page for one app role: the 403 page for others
def admin(request: HttpRequest) -> HttpResponse:
    return respond(request, flows.access_page(request.signed_in,
                                              requirement([{{ roles[0] | tojson }}])))


{% endif %}
@allow("GET", "HEAD")
def access(request: HttpRequest, kind: str, name: str) -> HttpResponse:
    """One page per app role (/roles/<role>) and per named group (/groups/<name>), each for
    its members only: the guard's imperative form (404 for a name the app does not define)."""
    needed = flows.access_requirement(services_for(request), kind, name)
    if needed is None:
        return respond(request, flows.http_error(404))

    def page(request: HttpRequest) -> HttpResponse:
        return respond(request, flows.access_page(request.signed_in, needed))

    return cast(HttpResponse, login_required(page, roles=needed.roles,
                                             groups=needed.groups)(request))


# -- health probes (core/health.py): plain text, no session, no sign-in ------------------------
def _probe(answer: health.ProbeAnswer) -> HttpResponse:
    return HttpResponse(answer.body, status=answer.status, headers=answer.headers)


@login_not_required
@allow("GET", "HEAD")
def healthz(request: HttpRequest) -> HttpResponse:
    return _probe(health.liveness())


@login_not_required
@allow("GET", "HEAD")
def readyz(request: HttpRequest) -> HttpResponse:
    return _probe(services_for(request).readiness.check())


# -- error pages (settings.CSRF_FAILURE_VIEW, urls.py handler400 ... handler500) -------------
@login_not_required
def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """Django's CSRF check refused a form: the same page as the core's own check."""
    log.warning("CSRF check failed: %s", reason)
    return respond(request, flows.form_expired())


@login_not_required
def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return respond(request, flows.http_error(400))


@login_not_required
def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return respond(request, flows.http_error(403))


@login_not_required
def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return respond(request, flows.http_error(404))


@login_not_required
def server_error(request: HttpRequest) -> HttpResponse:
    # Django has logged the exception (logger django.request), without showing it.
    return respond(request, flows.http_error(500))
