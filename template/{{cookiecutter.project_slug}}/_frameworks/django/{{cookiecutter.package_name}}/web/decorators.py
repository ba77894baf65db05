"""For views of signed-in users: `login_required(api=..., roles=..., groups=...)`, the
`LoginRequired` mixin for class-based views, and `call_api`.

django.contrib.auth's `login_required` works too (it sends a signed-out user to /login and
back); this one signs in with the scopes of the API the page calls, in one trip to the
provider, checks the user's app roles and groups, and gives the view the user as
`request.signed_in` (a core.authorization.CurrentUser: object id, tenant, name, username,
roles, groups; `request.user` is the Django user row):

    @login_required(api="todo", roles=["Admin", "Reader"])
    def todos(request):
        answer = call_api(request, "todo", "items")
        if isinstance(answer, HttpResponse):
            return answer  # a consent round trip or an error page
        return render(request, "todos.html", {"items": answer.json()})

    class Reports(LoginRequired, TemplateView):
        required_groups = ["finance"]
        template_name = "reports.html"

`roles`: one of these app roles; `groups`: one of these of the app's named groups
(config.py); both: one of each. A user who lacks them gets the 403 page.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import wraps
from typing import Any, TypeVar, cast

from django.http import HttpRequest, HttpResponse

from ..core import flows
from ..core.authorization import CurrentUser, Requirement, requirement
from ..core.downstream import ApiResponse
from .responses import respond, web_request
from .services import services_for

View = TypeVar("View", bound=Callable[..., Any])


def _guard(request: HttpRequest, needed: Requirement, api: str | None
           ) -> HttpResponse | None:
    """None when the view may run (the user is then `request.signed_in`), else the response
    that answers instead: a sign-in, the 403 page, an error page."""
    user = flows.authorized_user(services_for(request), web_request(request), needed, api)
    if not isinstance(user, CurrentUser):
        return respond(request, user)
    request.signed_in = user
    return None


def login_required(view: View | None = None, *, api: str | None = None,
                   roles: Sequence[str] = (), groups: Sequence[str] = ()) -> Any:
    """Views wrapped with this run only for a signed-in user who may open them, available as
    `request.signed_in`."""
    needed = requirement(roles, groups)

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            return _guard(request, needed, api) or view(request, *args, **kwargs)

        return cast(View, wrapped)

    return decorate(view) if view is not None else decorate


class LoginRequired:
    """The class-based-view form of `login_required`: put it first among the bases."""

    api: str | None = None
    required_roles: Sequence[str] = ()
    required_groups: Sequence[str] = ()

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        needed = requirement(self.required_roles, self.required_groups)
        return _guard(request, needed, self.api) or super().dispatch(  # type: ignore[misc]
            request, *args, **kwargs)


def call_api(request: HttpRequest, name: str, path: str = "", **options: Any
             ) -> ApiResponse | HttpResponse:
    """Call the API `name` for `request.signed_in` (in a `login_required` view): its response,
    or the response to return instead (consent round trip or error page). `options` go to
    core.downstream.DownstreamApis.call (method, json, params, ...)."""
    result = flows.call_api(services_for(request), web_request(request),
                            request.signed_in.account, name, path, **options)
    return result if isinstance(result, ApiResponse) else respond(request, result)
