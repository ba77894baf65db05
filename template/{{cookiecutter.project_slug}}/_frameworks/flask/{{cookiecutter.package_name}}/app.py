"""Flask application factory: wires the core services into Flask.

    flask --app {{ cookiecutter.package_name }}.app:create_app run
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from flask import Flask, Request, Response
from flask.sessions import SessionInterface, SessionMixin

from .config import DEFAULTS
from .core.health import session_id
from .core.services import Services, app_settings, build_services
from .core.sessions import SessionState
from .core.web import apply_forwarded
from .views import bp

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


class ForwardedHeaders:
    """WSGI middleware: the forwarded values the core trusts, applied to the environ."""

    def __init__(self, app: WSGIApplication, hops: int) -> None:
        self.app = app
        self.hops = hops

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse
                 ) -> Iterable[bytes]:
        apply_forwarded(environ, self.hops)
        return self.app(environ, start_response)


class StoreSession(SessionState, SessionMixin):
    """The core's server-side session, as Flask's `session`."""


class StoreSessionInterface(SessionInterface):
    """Flask sessions over the core's session layer (core/sessions.py).

    Loaded when the request arrives; saved, with its cookie, by the core's one save point as
    the response leaves (views.py `_finish`, an `after_request` hook, so that a failed write
    becomes an error page), so there is nothing left to do in `save_session`.
    """

    def open_session(self, app: Flask, request: Request) -> StoreSession:
        services: Services = app.extensions["msal_webapp"]
        # None for the health probes: they read and write no session (core/health.py).
        sid = session_id(request.path, request.cookies.get(services.session_cookie.name))
        return services.sessions.load(sid, StoreSession)

    def save_session(self, app: Flask, session: Any, response: Response) -> None:
        pass


def create_app(environ: Mapping[str, str] | None = None) -> Flask:
    """Build the app from `environ` (default: os.environ plus a .env file in development)."""
    settings = app_settings(environ, DEFAULTS)
    app = Flask(__name__)
    # MAX_CONTENT_LENGTH: werkzeug stops reading a body without a length at the same limit
    # that views.py `_limit_body` applies to announced lengths.
    app.config.update(SECRET_KEY=settings.secret_key,
                      MAX_CONTENT_LENGTH=settings.max_request_bytes)
    app.session_interface = StoreSessionInterface()
    if settings.trusted_proxy_hops:
        # Honour X-Forwarded-For, -Proto and -Host from the configured number of proxies in
        # front of the app, counted as in every framework (core/web.py `apply_forwarded`);
        # never X-Forwarded-Prefix or -Port.
        app.wsgi_app = ForwardedHeaders(app.wsgi_app, settings.trusted_proxy_hops)  # type: ignore[method-assign]
    app.extensions["msal_webapp"] = build_services(settings)
    app.register_blueprint(bp)
    return app
