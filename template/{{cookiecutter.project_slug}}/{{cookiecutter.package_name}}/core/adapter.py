# Managed by the msal-webapp template: regenerate rather than edit (your code goes outside core/).
"""The contract between the core and a web framework: the core decides, an adapter translates.

An adapter implements `Adapter` for its framework's request and response types, and wires its
framework's hooks to these seams, each the same in every framework:

1. **Request in.** `web_request(request)`: the request as the core sees it (where it is, its
   cookies, its session). The session is loaded once, when the request arrives, from the
   session cookie (`services.sessions.load`), before any view runs.
2. **Outcome out.** Every page is a core flow (core/flows.py) returning a `Redirect` or a
   `Page` with the cookies to set or delete; `respond` turns one into a response through
   `render`, `redirect` and `set_cookies`. Cookies have one channel: `CookieChanges`.
3. **One save point.** `finish` runs once per request, just before the response leaves,
   whatever made it (a core flow, a view of the user's, an error page): it saves the session
   and sets the session cookie, or replaces the response by the error page when the session
   cannot be written. Nothing else saves the session.
4. **Headers.** `add_security_headers` on every response, static files and error pages too;
   over https, with HSTS.
5. **Login guard.** `flows.signed_in_user(services, req, api)` in the framework's idiom (a
   decorator, a dependency): the user, or the outcome to answer with (a sign-in, a 404 for an
   API that is not configured, a 503).
6. **API calls.** `flows.call_api` (blocking), or an async driver of the same
   `downstream.call_plan` whose failures go through `flows.api_failure`.
7. **Errors.** The framework's own errors (no route, wrong method, malformed request, a bug)
   answer with `flows.http_error(status)`; never a stack trace or the framework's own page.
8. **Requests from outside.** A body larger than `settings.max_request_bytes` is refused with
   413 before it is read (`web.body_too_large`; a body without a length is counted as it is
   read); behind `TRUSTED_PROXY_HOPS` proxies, only `web.forwarded`'s headers are honoured.
9. **Health probes.** `/healthz` and `/readyz` answer with `health.liveness()` and
   `services.readiness.check()` (plain text); their session is loaded from no cookie
   (`health.session_id`), so they read and write no session and set no cookie.

Blocking work (MSAL, a store that waits on I/O) stays off an async framework's event loop: it
runs the same functions in a worker thread. `flows.page_user` and `flows.sign_in_for_page` split
the login guard where I/O begins; `Store.blocking` says whether a store waits on I/O.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from .flows import Outcome, Page, WebRequest, save_session
from .services import Services
from .web import CookieChanges

RequestT = TypeVar("RequestT", contravariant=True)
ResponseT = TypeVar("ResponseT")


class Adapter(Protocol[RequestT, ResponseT]):
    """What a framework provides the core with; the rest is the core's."""

    def services(self, request: RequestT) -> Services:
        """The app's services (several apps may run in one process: tests do)."""
        ...

    def web_request(self, request: RequestT) -> WebRequest:
        """The request as the core sees it; its session already loaded."""
        ...

    def render(self, request: RequestT, page: Page) -> ResponseT:
        """The page's template with its context and status (without its cookies), with the
        core's template globals (`flows.template_globals`) and `static(path)`."""
        ...

    def redirect(self, request: RequestT, location: str) -> ResponseT:
        """A 302 to `location`."""
        ...

    def set_cookies(self, response: ResponseT, changes: CookieChanges) -> None:
        """Set and delete cookies as given (a deletion repeats the cookie's path and flags)."""
        ...

    def set_header(self, response: ResponseT, name: str, value: str) -> None:
        """Set a header the response does not have yet (a view may set its own)."""
        ...


def respond(adapter: Adapter[RequestT, ResponseT], request: RequestT,
            outcome: Outcome) -> ResponseT:
    """The response for a core outcome, with its cookies."""
    if isinstance(outcome, Page):
        response = adapter.render(request, outcome)
        for name, value in outcome.headers.items():  # before the app-wide ones (seam 4)
            adapter.set_header(response, name, value)
    else:
        response = adapter.redirect(request, outcome.location)
    adapter.set_cookies(response, outcome.cookies)
    return response


def finish(adapter: Adapter[RequestT, ResponseT], request: RequestT,
           response: ResponseT) -> ResponseT:
    """The one save point (seam 3): the response to send, with the session cookie, or the
    error page that replaces it when the session cannot be saved. May block on the store."""
    saved = save_session(adapter.services(request), adapter.web_request(request))
    if isinstance(saved, Page):
        return respond(adapter, request, saved)
    adapter.set_cookies(response, saved)
    return response


def add_security_headers(adapter: Adapter[RequestT, ResponseT], request: RequestT,
                         response: ResponseT, *, https: bool) -> ResponseT:
    """The core's security headers (seam 4), unless the response set its own; with HSTS if
    the request came over `https` (as the outermost trusted proxy saw it)."""
    services = adapter.services(request)
    for name, value in (services.https_headers if https else services.security_headers).items():
        adapter.set_header(response, name, value)
    return response
