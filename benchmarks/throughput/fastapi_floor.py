"""The no-auth floor of the generated FastAPI app: the same app, page and HTTP client, minus the
auth work. generated_floor.py's approach, through the FastAPI adapter's seams.

    uvicorn --factory fastapi_floor:create_app --no-proxy-headers   # PYTHONPATH: this folder

It is the app built by its own `create_app()` (same routes, dependencies, middleware, Jinja
templates, security headers and the same shared httpx client calling the API), with two things
taken out:

- token acquisition and the session store, as core_floor.py describes (a fixed token; the
  first signed-in session that rendered the page, served from memory from then on).

The app runs both of those in a worker thread (`anyio.to_thread.run_sync`), only because they
block; a page without authentication would make neither call. So the floor also skips those two
thread hops: the `run_sync` of the app's session middleware (`<pkg>/sessions.py`) and of its
async API driver (`<pkg>/aio.py`) answer the frozen session's load and the fixed token's
"acquisition" inline, and pass every other call to anyio. The app's other hops (the signed-in
check, and the session save before the response, which are no-ops here) stay in the floor, as
the Flask floor keeps the same calls.

Each response carries `X-Bench-Floor: frozen` when that request got the frozen session and its
token without a thread hop, `live` otherwise: the benchmark fails if a floor serves `live` after
warm-up (a renamed seam), and a floor round whose API calls did not all carry the fixed token is
invalid. Keep this module in step with the app.
"""

from __future__ import annotations

import contextvars
import importlib
from functools import partial
from typing import Any

from anyio.to_thread import run_sync as anyio_run_sync
from core_floor import FrozenCore, bench_settings, require


def create_app() -> Any:
    package, token, page = bench_settings()
    app = importlib.import_module(f"{package}.app").create_app()
    services = app.state.services
    modules = [importlib.import_module(f"{package}.{name}") for name in ("sessions", "aio")]
    require("fastapi_floor.py", (services.auth, "acquire_token"), (services.sessions, "load"),
            (services.sessions, "save"), *((m, "run_sync") for m in modules))
    this: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("bench_floor")
    core = FrozenCore(services, token, lambda what, value: this.get({}).__setitem__(what, value))

    async def run_sync(func: Any, *args: Any, **kwargs: Any) -> Any:
        inner = func.func if isinstance(func, partial) else func
        if inner is core.fixed_token or (inner is core.load and core.frozen):
            return func(*args)  # what needs no thread without authentication
        return await anyio_run_sync(func, *args, **kwargs)

    for module in modules:
        setattr(module, "run_sync", run_sync)  # noqa: B010 - the module global the app calls

    async def floor(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        mine: dict[str, Any] = {}
        this.set(mine)

        async def send_marked(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                state = mine.get("loaded")
                served = core.is_frozen(state) and mine.get("token", False)
                message["headers"] = [*message.get("headers", []),
                                      (b"x-bench-floor", b"frozen" if served else b"live")]
                core.maybe_freeze(state, message["status"], scope["path"], page)
            await send(message)

        await app(scope, receive, send_marked)

    floor.state = app.state  # type: ignore[attr-defined]
    return floor
