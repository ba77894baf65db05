"""Routes: home, sign-in, the redirect URI, sign-out, the profile and one page per API.

This module only translates between FastAPI and the core: each route builds a `WebRequest`,
asks core/flows.py what to do, and turns the answer (a redirect or a page, with its cookies)
into a response. The decisions live in the core, the same for every framework. Whatever blocks
(MSAL, the session store) runs in a worker thread, never on the event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Annotated, Any

from anyio.to_thread import run_sync
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from .config import DEFAULTS
from .core import flows, health{% if cookiecutter.graph_sdk %}, sdk{% endif %}

{% if (cookiecutter.get("authorization") or {}).get("roles") %}
from .core.authorization import CurrentUser, requirement
{% elif cookiecutter.graph_sdk %}
from .core.authorization import CurrentUser
{% endif %}
{% if cookiecutter.graph_sdk %}
from .dependencies import (
    ApiClient,
    Interrupt,
    graph_call,
    path_api_client,
    require,
    signed_in,
)
{% else %}
from .dependencies import ApiClient, Interrupt, api_client, path_api_client, require
{% endif %}
from .responses import ADAPTER, respond

router = APIRouter()


async def flow(request: Request, step: Callable[..., flows.Outcome], *args: Any) -> Response:
    """Run a core flow step (blocking: MSAL, the store) in a worker thread, then answer."""
    outcome = await run_sync(partial(step, ADAPTER.services(request),
                                     ADAPTER.web_request(request), *args))
    return respond(request, outcome)


@router.get("/")
async def index(request: Request) -> Response:
    return respond(request, flows.Page("index.html"))


@router.get("/login")
async def login(request: Request, next: str | None = None,
                login_hint: str | None = None, prompt: str | None = None) -> Response:
    return await flow(request, flows.login, next, login_hint, prompt)


@router.get("/edit-profile")
async def edit_profile(request: Request) -> Response:
    """Azure AD B2C's profile-edit user flow (the core answers 404 when there is none)."""
    return await flow(request, flows.edit_profile)


# The redirect path is the one registered with the identity provider (config.py): POST
# (form_post, over https) or GET (query, local development).
@router.api_route(DEFAULTS.redirect_path, methods=["GET", "POST"])
async def auth_response(request: Request) -> Response:
    answer: dict[str, str] = {}
    if request.method == "POST":
        for key, value in (await request.form()).multi_items():
            if not isinstance(value, UploadFile):
                answer.setdefault(key, value)  # the first of repeated fields, as elsewhere
    else:
        for key, value in request.query_params.multi_items():
            answer.setdefault(key, value)
    return await flow(request, flows.complete_sign_in, answer)


@router.post("/logout")
async def logout(request: Request) -> Response:
    # The core checks the form's CSRF token against the session's (FastAPI has none built in).
    token = (await request.form()).get("csrf_token")
    return await flow(request, flows.sign_out, token if isinstance(token, str) else None)


# The front-channel logout URL registered with the identity provider (config.py).
@router.get(DEFAULTS.front_channel_logout_path)
async def front_channel_logout(request: Request, sid: str | None = None,
                               iss: str | None = None) -> Response:
    return await flow(request, flows.front_channel_sign_out, sid, iss)


{% if cookiecutter.graph_sdk %}
@router.get("/profile")
async def profile(request: Request,
                  user: Annotated[CurrentUser, Depends(signed_in("graph"))]) -> Response:
    # Graph's /me through the Microsoft Graph SDK, with the user's token (core/sdk.py).
    me = await graph_call(request, user, lambda graph: graph.me.get())
    return respond(request, flows.profile_page(sdk.profile_of(me)))
{% else %}
@router.get("/profile")
async def profile(request: Request,
                  graph: Annotated[ApiClient, Depends(api_client("graph"))]) -> Response:
    return respond(request, flows.profile_page(await graph.call("me")))
{% endif %}


@router.get("/api/{name}")
async def api(request: Request, client: Annotated[ApiClient, Depends(path_api_client)]
              ) -> Response:
    return respond(request, flows.api_page(client.name, await client.call()))

{% set roles = (cookiecutter.get("authorization") or {}).get("roles") or [] %}
{% if roles %}


@router.get("/admin")
async def admin(request: Request,  # a page for one app role: the 403 page for others
                user: Annotated[CurrentUser, Depends(require(roles=[{{ roles[0] | tojson }}]))]
                ) -> Response:
    return respond(request, flows.access_page(user, requirement([{{ roles[0] | tojson }}])))
{% endif %}


# The health probes (core/health.py): plain text, no session, no sign-in.
def _probe(answer: health.ProbeAnswer) -> Response:
    return Response(answer.body, status_code=answer.status, headers=answer.headers)


@router.api_route(health.LIVENESS_PATH, methods=["GET", "HEAD"])
async def healthz() -> Response:
    return _probe(health.liveness())


@router.api_route(health.READINESS_PATH, methods=["GET", "HEAD"])
async def readyz(request: Request) -> Response:
    # The check waits on the store and the provider: in a worker thread.
    return _probe(await run_sync(ADAPTER.services(request).readiness.check))


@router.get("/roles/{name:path}")  # a role value may hold a "/"
async def role_page(request: Request, name: str) -> Response:
    """One page per app role, for its members only."""
    return await _access(request, "roles", name)


@router.get("/groups/{name}")
async def group_page(request: Request, name: str) -> Response:
    """One page per named group, for its members only."""
    return await _access(request, "groups", name)


async def _access(request: Request, kind: str, name: str) -> Response:
    """The guard's imperative form (404 for a role or group the app does not define)."""
    needed = flows.access_requirement(ADAPTER.services(request), kind, name)
    if needed is None:
        return respond(request, flows.http_error(404))
    try:
        user = await require(roles=needed.roles, groups=needed.groups)(request)
    except Interrupt as interrupt:
        return respond(request, interrupt.outcome)
    return respond(request, flows.access_page(user, needed))
