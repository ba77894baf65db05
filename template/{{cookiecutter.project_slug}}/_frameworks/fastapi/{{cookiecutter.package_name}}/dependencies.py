"""Dependencies for routes: the signed-in user, who may open the route, and a client for a
named downstream API.

    @router.get("/todo")
    async def todo(todo: Annotated[ApiClient, Depends(api_client("todo"))]) -> Response:
        items = await todo.json("items")
        ...

    @router.get("/reports")
    async def reports(user: Annotated[CurrentUser, Depends(require(roles=["Admin"],
                                                                   groups=["finance"]))]):
        ...

`require(roles=..., groups=...)`: one of these app roles, one of these of the app's named
groups (config.py), one of each when both are given; a user who lacks them gets the 403 page.

A route that needs a signed-in user gets one, or never runs: a signed-out visitor is sent to
sign in (with the scopes of the route's API, one provider round trip from a cold start). An
API call that needs the user (consent, a claims challenge) or fails raises `Interrupt`, which
carries the core's outcome (a redirect to the provider or an error page); the handler
registered in app.py answers with it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
{% if cookiecutter.graph_sdk %}
from functools import partial
from typing import Annotated, Any, TypeVar, cast
{% else %}
from typing import Annotated, Any
{% endif %}

from anyio.to_thread import run_sync
from fastapi import Depends, Request
{% if cookiecutter.graph_sdk %}
from msgraph import GraphServiceClient
{% endif %}

from . import aio
from .core import flows{% if cookiecutter.graph_sdk %}, sdk{% endif %}

from .core.auth import User
from .core.authorization import NO_REQUIREMENT, CurrentUser, Requirement, requirement
from .core.downstream import ApiResponse
from .core.services import Services
{% if cookiecutter.graph_sdk %}
from .core.web import api_succeeded
{% endif %}
from .responses import ADAPTER, web_request
{% if cookiecutter.graph_sdk %}

T = TypeVar("T")
{% endif %}


class Interrupt(Exception):
    """Answer the request with this core outcome instead of what the route would have."""

    def __init__(self, outcome: flows.Outcome) -> None:
        super().__init__(outcome)
        self.outcome = outcome


def get_services(request: Request) -> Services:
    """The app's core services (on `app.state`: several apps may run in one process)."""
    return ADAPTER.services(request)


AppServices = Annotated[Services, Depends(get_services)]


async def _user_for(request: Request, api: str | None,
                    needed: Requirement = NO_REQUIREMENT) -> CurrentUser:
    """The core's guard, `flows.authorized_user`, in its halves: what needs no I/O runs on the
    event loop; starting a sign-in (it builds an MSAL client), the tenant hook and an overage
    user's groups (the store, Microsoft Graph) run in a worker thread."""
    services, req = get_services(request), web_request(request)
    found: User | flows.Outcome | None = flows.page_user(services, req, api)
    if found is None:
        found = await run_sync(flows.sign_in_for_page, services, req, api)
    if not isinstance(found, User):
        raise Interrupt(found)
    offline = flows.authorize_offline(services, req, found, needed)
    decided = (await run_sync(flows.authorize, services, req, found, needed)
               if offline is None else offline)
    if not isinstance(decided, CurrentUser):
        raise Interrupt(decided)
    return decided


def signed_in(api: str | None = None) -> Callable[[Request], Awaitable[CurrentUser]]:
    """A dependency giving the signed-in user; `api`: the API the route calls, whose scopes
    a signed-out visitor signs in with."""
    return require(api=api)


def require(*, roles: Sequence[str] = (), groups: Sequence[str] = (), api: str | None = None
            ) -> Callable[[Request], Awaitable[CurrentUser]]:
    """A dependency giving the signed-in user, who has one of `roles` and one of `groups`
    (each when given); others get the 403 page."""
    needed = requirement(roles, groups)

    async def user(request: Request) -> CurrentUser:
        return await _user_for(request, api, needed)

    return user


SignedIn = Annotated[CurrentUser, Depends(signed_in())]


@dataclass
class ApiClient:
    """The API `name`, called for the signed-in user of this request."""

    name: str
    user: CurrentUser
    request: Request

    async def call(self, path: str = "", **options: Any) -> ApiResponse:
        """The API's response (`options`: method, json, params, headers); raises Interrupt
        with the consent round trip or the error page that takes its place."""
        services = get_services(self.request)
        result = await aio.call_api(services, self.request.app.state.apis,
                                    web_request(self.request), self.user.account, self.name,
                                    path,
                                    **options)
        if not isinstance(result, ApiResponse):
            raise Interrupt(result)
        return result

    async def json(self, path: str = "", **options: Any) -> Any:
        """The API's answer: its JSON, or its text."""
        return flows.api_data(await self.call(path, **options))


def api_client(name: str) -> Callable[[Request], Awaitable[ApiClient]]:
    """A dependency giving a client for the configured API `name` (the core's guard answers
    404 if it is not one)."""

    async def client(request: Request) -> ApiClient:
        return ApiClient(name, await _user_for(request, name), request)

    return client


{% if cookiecutter.graph_sdk %}
async def graph_call(request: Request, user: CurrentUser,
                     call: Callable[[GraphServiceClient], Awaitable[T]]) -> T:
    """`call` made with the signed-in user's Microsoft Graph SDK client (core/sdk.py);
    raises Interrupt with the consent round trip or the error page that takes its place, the
    same as for an API call (`flows.api_failure`).

        me = await graph_call(request, user, lambda graph: graph.me.get())
    """
    services, req = get_services(request), web_request(request)
    try:
        result = await request.app.state.graph_sdk.call(user.account, call, known=req.known)
    except Exception as exc:
        # A consent round trip starts a sign-in (MSAL, maybe discovery): in a worker thread.
        raise Interrupt(await run_sync(partial(
            flows.api_failure, services, req, user.account, sdk.GRAPH, exc,
            (*aio.UNREACHABLE, *sdk.UNREACHABLE)))) from None
    api_succeeded(req.session)
    return cast(T, result)


{% endif %}
async def path_api_client(name: str, request: Request) -> ApiClient:
    """`api_client` for the API named by the route's `{name}` path parameter."""
    return await api_client(name)(request)

