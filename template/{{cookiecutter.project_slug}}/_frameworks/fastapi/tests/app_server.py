"""The one test module that knows this app's framework: how the tests build and serve it.

FastAPI under uvicorn, in a thread of the test process (its own event loop), so that several
apps with different settings can be served at once and tests can reach each app's services.
Every other test module reaches the app through `build_app`, `serve` and the names below, so
the behavioural suite runs unchanged against each framework's adapter.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse

from {{ cookiecutter.package_name }}.app import create_app
from {{ cookiecutter.package_name }}.core.services import Services

from tests.servers import base_url_of, listening_socket

FRAMEWORK = "fastapi"
# What the documented uvicorn command serves (README.md).
UVICORN_APP = "{{ cookiecutter.package_name }}.app:create_app"
# Python code that builds the app the way the production entry point does (from os.environ
# and a .env file), to check how it fails.
ENTRY_POINT_CODE = ("from {{ cookiecutter.package_name }}.app import create_app; "
                    "create_app()")
# The project folder, and the production server tests/test_instances.py runs the app under (in
# processes of its own: `production_server`).
PROJECT = Path(__file__).parents[1]
PRODUCTION_SERVER = "uvicorn"


# A view as a user of the template writes one, which changes the session itself: it answers
# with how often this browser's session has been here.
USER_VIEW = "/_test/visits"


def _add_user_view(app: FastAPI) -> None:
    @app.get(USER_VIEW)
    async def visits(request: Request) -> PlainTextResponse:
        request.session["visits"] = int(request.session.get("visits", 0)) + 1
        return PlainTextResponse(str(request.session["visits"]))


def build_app(env: Mapping[str, str]) -> tuple[Any, Services]:
    """The ASGI app for `env` (no .env file, no os.environ) and its core services; raises
    SettingsError for settings it cannot run with."""
    app = create_app(env)
    _add_user_view(app)
    return app, app.state.services


class _TestServer(uvicorn.Server):
    """uvicorn's server, stopped as soon as `stop` is called: uvicorn's own main loop looks
    for `should_exit` every 0.1 s, which each of the suite's hundreds of app stops waited."""

    _loop: asyncio.AbstractEventLoop | None = None
    _stopping: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self._stopping = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        counter = 0
        # on_tick (the Date header, the request limit) once every 0.1 s, as uvicorn does.
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), 0.1)

    def stop(self) -> None:
        """Ask the server to exit, from any thread."""
        self.should_exit = True
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed already
                loop.call_soon_threadsafe(stopping.set)


@contextlib.contextmanager
def serve(env_for: Callable[[str], dict[str, str]], cert_files: tuple[str, str] | None,
          host: str = "localhost") -> Iterator[tuple[str, Services]]:
    """Serve the app built from `env_for(base_url)`: (base_url, its services)."""
    listener = listening_socket()
    base_url = base_url_of(listener, cert_files, host)
    app, services = build_app(env_for(base_url))
    config = uvicorn.Config(app, ssl_certfile=cert_files[0] if cert_files else None,
                            ssl_keyfile=cert_files[1] if cert_files else None,
                            proxy_headers=False, lifespan="on", log_level="warning",
                            # A connection a test left open must not hold up the next test.
                            timeout_graceful_shutdown=1,
                            # Idle connections stay open for the whole test (closed at
                            # shutdown). With uvicorn's 5 s, a test browser idle that long on a
                            # loaded machine races the server's close with its next request on
                            # the connection: "closed without response", which real browsers
                            # retry and the test browser does not.
                            timeout_keep_alive=600)
    server = _TestServer(config)
    # uvicorn installs signal handlers only in the main thread: none here.
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("uvicorn stopped before it started serving")
            time.sleep(0.01)  # polling for readiness, not waiting a fixed time
        yield base_url, services
    finally:
        server.stop()
        thread.join(10)
        listener.close()


def production_server(fd: int, cert_files: tuple[str, str] | None
                      ) -> tuple[list[str], dict[str, str]]:
    """The documented production server (uvicorn, README.md: one process, one event loop),
    serving the listening socket `fd` over https (plain http without `cert_files`: behind a
    proxy): its command line and the environment variables it needs beyond the app's
    settings. The caller passes `fd` on (`pass_fds`) and stops the server with SIGINT."""
    tls = ["--ssl-certfile", cert_files[0], "--ssl-keyfile", cert_files[1]] if cert_files else []
    command = [sys.executable, "-m", "uvicorn", "--factory", UVICORN_APP, "--no-proxy-headers",
               "--fd", str(fd), *tls]
    return command, {}
