"""Which core `Services` (core/web.py) serve a request.

Django's settings are fixed for the process, the core's services need not be: `create_app`
builds a WSGI application that carries its own services in each request's WSGI environ
(`request.META[SERVICES_KEY]`). A request that did not come through one (Django's test client,
say) gets the process's services, built once from os.environ.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest

from ..config import DEFAULTS
from ..core.settings import app_settings, load_settings
from ..core.web import Services, build_services

SERVICES_KEY = "msal_webapp.services"

_lock = threading.Lock()
_process_services: Services | None = None
_handler: WSGIHandler | None = None


def services_for(request: HttpRequest) -> Services:
    services = request.META.get(SERVICES_KEY)
    return services if isinstance(services, Services) else process_services()


def process_services() -> Services:
    """The services of the process (the first `create_app` without an environ sets them)."""
    global _process_services
    with _lock:
        if _process_services is None:
            # Raises SettingsError, shown as an error page, if the environment is incomplete.
            _process_services = build_services(load_settings(os.environ, DEFAULTS))
        return _process_services


class ServicesApp:
    """Django's WSGI handler, serving with `services`."""

    def __init__(self, handler: WSGIHandler, services: Services) -> None:
        self.handler = handler
        self.services = services

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        environ[SERVICES_KEY] = self.services
        result: Iterable[bytes] = self.handler(environ, start_response)
        return result


def _django_handler() -> WSGIHandler:
    """One Django handler per process (it loads the settings and middleware once)."""
    global _handler
    with _lock:
        if _handler is None:
            from django.core.wsgi import get_wsgi_application

            _handler = get_wsgi_application()
        return _handler


def create_app(environ: Mapping[str, str] | None = None) -> ServicesApp:
    """The WSGI application, with services for `environ` (default: os.environ plus a .env
    file in the working directory; a bad setting then exits with the list to fix)."""
    global _process_services
    services = build_services(app_settings(environ, DEFAULTS))
    if environ is None:
        with _lock:
            _process_services = services
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "{{ cookiecutter.package_name }}.settings")
    return ServicesApp(_django_handler(), services)
