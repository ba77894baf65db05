"""Flask application factory: wires the core services into Flask.

    flask --app {{ cookiecutter.package_name }}.app:create_app run
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import timedelta

import cachelib
from dotenv import load_dotenv
from flask import Flask
from flask_session import Session
from werkzeug.middleware.proxy_fix import ProxyFix

from .config import DEFAULTS
from .core.settings import Settings, load_settings, load_settings_or_exit
from .core.web import build_services, session_cookie_name
from .views import bp


def _session_store(settings: Settings) -> cachelib.BaseCache:
    """Server-side sessions next to the token caches: the cookie holds only a session id."""
    if settings.token_cache_backend == "filesystem":
        return cachelib.FileSystemCache(
            str(settings.token_cache_dir / "sessions"), threshold=settings.token_cache_max_entries,
            default_timeout=settings.session_lifetime_seconds, mode=0o600,
        )
    return cachelib.SimpleCache(threshold=settings.token_cache_max_entries,
                                default_timeout=settings.session_lifetime_seconds)


def create_app(environ: Mapping[str, str] | None = None) -> Flask:
    """Build the app from `environ` (default: os.environ plus a .env file in development)."""
    if environ is None:
        load_dotenv()  # a .env file in the working directory; real variables win over it
        settings = load_settings_or_exit(os.environ, DEFAULTS)
    else:
        settings = load_settings(environ, DEFAULTS)
    logging.basicConfig(level=settings.log_level)

    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_TYPE="cachelib",
        SESSION_CACHELIB=_session_store(settings),
        SESSION_KEY_PREFIX=f"{settings.token_cache_prefix}:session:",
        SESSION_PERMANENT=True,
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=settings.session_lifetime_seconds),
        SESSION_COOKIE_NAME=session_cookie_name(settings),
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    Session(app)
    if settings.trusted_proxy_hops:
        # Honour X-Forwarded-* only from the configured number of proxies in front of the app.
        hops = settings.trusted_proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops,  # type: ignore[method-assign]
                                x_prefix=hops)
    app.extensions["msal_webapp"] = build_services(settings)
    app.register_blueprint(bp)
    return app
