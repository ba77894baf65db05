"""For views of signed-in users: `login_required(api=...)` and `call_api`.

django.contrib.auth's `login_required` works too (it sends a signed-out user to /login and
back); this one signs in with the scopes of the API the page calls, in one trip to the
provider, and gives the view the core's user as `request.signed_in`:

    @login_required(api="todo")
    def todos(request):
        answer = call_api(request, "todo", "items")
        if isinstance(answer, HttpResponse):
            return answer  # a consent round trip or an error page
        return render(request, "todos.html", {"items": answer.json()})
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from django.http import HttpRequest, HttpResponse

from ..core import flows
from ..core.auth import User
from ..core.downstream import ApiResponse
from .responses import respond, web_request
from .services import services_for

View = TypeVar("View", bound=Callable[..., Any])


def login_required(view: View | None = None, *, api: str | None = None) -> Any:
    """Views wrapped with this run only for a signed-in user, available as
    `request.signed_in` (the core's User; `request.user` is the Django user row)."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            user = flows.signed_in_user(services_for(request), web_request(request), api)
            if not isinstance(user, User):
                return respond(request, user)
            request.signed_in = user
            return view(request, *args, **kwargs)

        return cast(View, wrapped)

    return decorate(view) if view is not None else decorate


def call_api(request: HttpRequest, name: str, path: str = "", **options: Any
             ) -> ApiResponse | HttpResponse:
    """Call the API `name` for `request.signed_in` (in a `login_required` view): its response,
    or the response to return instead (consent round trip or error page). `options` go to
    core.downstream.DownstreamApis.call (method, json, params, ...)."""
    result = flows.call_api(services_for(request), web_request(request), request.signed_in,
                            name, path, **options)
    return result if isinstance(result, ApiResponse) else respond(request, result)
