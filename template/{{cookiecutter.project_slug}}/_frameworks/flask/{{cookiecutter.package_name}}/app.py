"""Flask application factory: wires the core services into Flask.

    flask --app {{ cookiecutter.package_name }}.app:create_app run
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, Request, Response
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.middleware.proxy_fix import ProxyFix

from .config import DEFAULTS
from .core.sessions import SessionState
from .core.settings import app_settings
from .core.web import CookieChanges, CookieSpec, Services, build_services
from .views import apply_cookies, bp


class StoreSession(SessionState, SessionMixin):
    """The core's server-side session, as Flask's `session`."""


class StoreSessionInterface(SessionInterface):
    """Flask sessions over the core's session layer (core/sessions.py).

    The store is written before the response leaves (core/flows.py `finish`, through views.py),
    so that a failed write becomes an error page; here only the cookie follows what that save
    decided.
    """

    def open_session(self, app: Flask, request: Request) -> StoreSession:
        services: Services = app.extensions["msal_webapp"]
        cookie = request.cookies.get(services.session_cookie.name)
        return services.sessions.load(cookie, StoreSession)

    def save_session(self, app: Flask, session: Any, response: Response) -> None:
        spec: CookieSpec = app.extensions["msal_webapp"].session_cookie
        if session.cookie_action == "set":
            apply_cookies(response, CookieChanges(set=((spec, session.sid),)))
        elif session.cookie_action == "delete":
            apply_cookies(response, CookieChanges(delete=(spec,)))


def create_app(environ: Mapping[str, str] | None = None) -> Flask:
    """Build the app from `environ` (default: os.environ plus a .env file in development)."""
    settings = app_settings(environ, DEFAULTS)
    app = Flask(__name__)
    app.config.update(SECRET_KEY=settings.secret_key)
    app.session_interface = StoreSessionInterface()
    if settings.trusted_proxy_hops:
        # Honour X-Forwarded-* only from the configured number of proxies in front of the app.
        hops = settings.trusted_proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops,  # type: ignore[method-assign]
                                x_prefix=hops)
    app.extensions["msal_webapp"] = build_services(settings)
    app.register_blueprint(bp)
    return app
