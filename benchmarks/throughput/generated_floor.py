"""The no-auth floor of the generated app: the same app, page and HTTP client, minus the auth work.

    gunicorn --pythonpath benchmarks/throughput 'generated_floor:create_app()'

It is the generated app built by its own `create_app` (same blueprint, views, template, context
processors, security headers and the same client calling the API), with two things taken out:

- token acquisition: every token the app asks for is BENCH_FIXED_TOKEN (a real token the
  benchmark minted, valid for the whole run), so no token cache is read and MSAL never runs;
- the session store: once a signed-in session has rendered BENCH_PAGE successfully, that
  session is frozen in memory and every later request gets it; nothing is loaded from the store
  again (nor written: the page leaves the session unchanged).

So the benchmark signs in to the floor exactly as to the app (the real flow runs until the
freeze), and the floor then serves the signed-in page for free. What is left is the page itself:
routing, the view, the API call through the app's HTTP client, rendering.

It relies on two seams of the app: Flask's `session_interface` (the session is loaded there)
and `AuthService.acquire_token` (every API call gets its token there). A renamed
`acquire_token` stops the floor at start-up, and a floor round whose API calls did not all carry
the fixed token is invalid; a session loaded outside `session_interface` would go unnoticed
(the floor would then include that load): keep this module in step with the app.
"""

from __future__ import annotations

import importlib
import os

from flask import Flask, Request, Response
from flask.sessions import SessionInterface, SessionMixin


class FrozenSessionInterface(SessionInterface):
    """The app's own session interface until a signed-in page rendered; that session after.

    The frozen session is the very object the app loaded and saved for that page, shared by all
    later requests (no copy: copying would cost about what loading does). The page does not
    change it once rendered, and the app's own "save only if changed" rules (or this class, for
    interfaces that save on every request) keep it out of the store from then on.
    """

    def __init__(self, real: SessionInterface, page: str) -> None:
        self.real = real
        self.page = page
        self.frozen: SessionMixin | None = None

    def open_session(self, app: Flask, request: Request) -> SessionMixin | None:
        if self.frozen is not None:
            return self.frozen
        return self.real.open_session(app, request)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if self.frozen is not None:
            return  # the floor keeps no session
        self.real.save_session(app, session, response)
        if response.status_code == 200 and session and _path() == self.page:
            self.frozen = session  # as the page left it (CSRF token included)

    def is_null_session(self, obj: object) -> bool:
        return self.frozen is None and self.real.is_null_session(obj)


def _path() -> str:
    from flask import request

    return request.path


def create_app() -> Flask:
    package = os.environ["BENCH_PACKAGE"]
    token = os.environ["BENCH_FIXED_TOKEN"]
    app: Flask = importlib.import_module(f"{package}.app").create_app()
    services = app.extensions["msal_webapp"]
    if not callable(getattr(services.auth, "acquire_token", None)):
        raise RuntimeError("the app's AuthService has no acquire_token: update generated_floor.py")

    def fixed_token(*args: object, **kwargs: object) -> str:
        return token

    # An instance attribute shadows the method for every caller holding this AuthService.
    services.auth.acquire_token = fixed_token
    sessions = FrozenSessionInterface(app.session_interface, os.environ["BENCH_PAGE"])
    app.session_interface = sessions

    @app.after_request
    def _mark(response: Response) -> Response:
        # Lets the benchmark check that this worker serves the frozen session.
        response.headers["X-Bench-Floor"] = "frozen" if sessions.frozen is not None else "live"
        return response

    return app
