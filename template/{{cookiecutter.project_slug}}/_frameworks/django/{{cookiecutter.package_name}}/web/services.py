"""Which core `Services` (core/services.py) serve a request, and the settings of the process.

Django's settings are fixed for the process, the core's services need not be: `create_app`
builds a WSGI application that carries its own services in each request's WSGI environ
(`request.META[SERVICES_KEY]`). A request that did not come through one (Django's test client,
say) gets the process's services. The process's settings are those of the first app built
(wsgi.py builds it from os.environ and a .env file before Django loads its settings); Django's
own settings (settings.py) take SECRET_KEY and ALLOWED_HOSTS from them, already validated.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest

from ..config import DEFAULTS
from ..core.services import Services, app_settings, build_services
from ..core.settings import Settings, SettingsError, load_settings
from ..core.web import apply_forwarded

SERVICES_KEY = "msal_webapp.services"

_lock = threading.Lock()
_process_services: Services | None = None
# Its own lock: loading Django's settings (inside `get_wsgi_application`) asks for the
# process's settings, under `_lock`.
_handler_lock = threading.Lock()
_handler: WSGIHandler | None = None


def services_for(request: HttpRequest) -> Services:
    services = request.META.get(SERVICES_KEY)
    return services if isinstance(services, Services) else process_services()


def process_services() -> Services:
    """The services of the process: the first app's, or built from os.environ."""
    global _process_services
    with _lock:
        if _process_services is None:
            # Raises SettingsError, shown as an error page, if the environment is incomplete.
            _process_services = build_services(load_settings(os.environ, DEFAULTS))
        return _process_services


def process_settings() -> Settings | None:
    """The core's settings of this process, for Django's own settings; None when os.environ
    does not make valid ones (a management command run without the app's settings: Django
    then refuses what needs them, and the app says what to fix when it starts)."""
    try:
        return process_services().settings
    except SettingsError:
        return None


class ServicesApp:
    """Django's WSGI handler, serving with `services`; behind TRUSTED_PROXY_HOPS proxies, it
    applies the forwarded client address, scheme and host the core trusts (core/web.py
    `apply_forwarded`, as the Flask app does) to the WSGI environ."""

    def __init__(self, handler: WSGIHandler, services: Services) -> None:
        self.handler = handler
        self.services = services

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        environ[SERVICES_KEY] = self.services
        apply_forwarded(environ, self.services.settings.trusted_proxy_hops)
        result: Iterable[bytes] = self.handler(environ, start_response)
        return result


def _django_handler() -> WSGIHandler:
    """One Django handler per process (it loads the settings and middleware once)."""
    global _handler
    with _handler_lock:
        if _handler is None:
            from django.core.wsgi import get_wsgi_application

            _handler = get_wsgi_application()
        return _handler


def create_app(environ: Mapping[str, str] | None = None) -> ServicesApp:
    """The WSGI application, with services for `environ` (default: os.environ plus a .env
    file in the working directory; a bad setting then exits with the list to fix). The first
    app built in a process gives Django its settings."""
    global _process_services
    services = build_services(app_settings(environ, DEFAULTS))
    with _lock:
        if environ is None or _process_services is None:
            _process_services = services
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "{{ cookiecutter.package_name }}.settings")
    return ServicesApp(_django_handler(), services)
