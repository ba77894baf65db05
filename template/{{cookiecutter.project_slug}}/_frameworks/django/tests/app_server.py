"""The one test module that knows this app's framework: how the tests build and serve it.

Django under werkzeug's threaded WSGI server, in the test process. Django's own settings are
fixed for the process: they are set up once here (a SQLite database in a temporary folder,
migrated once). Each app built here carries its own core services (web/services.py), so apps
with different settings can run side by side. Every other test module reaches the app through
`build_app`, `serve` and the names below, so the behavioural suite runs unchanged against each
framework's adapter.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from unittest import mock

from django.core.management import call_command
from django.http import HttpRequest, HttpResponse
from django.urls import clear_url_caches, path

from {{ cookiecutter.package_name }}.config import DEFAULTS
from {{ cookiecutter.package_name }}.core.services import Services
from {{ cookiecutter.package_name }}.web.services import ServicesApp, create_app

from tests.servers import gunicorn_server, serve_wsgi

FRAMEWORK = "django"
# What the documented gunicorn command serves (README.md, gunicorn.conf.py).
GUNICORN_APP = "{{ cookiecutter.package_name }}.wsgi:application"
# Python code that builds the app the way the production entry point does (from os.environ
# and a .env file), to check how it fails.
ENTRY_POINT_CODE = "import {{ cookiecutter.package_name }}.wsgi"
# The project folder, and the production server tests/test_instances.py runs the app under (in
# processes of its own: `production_server`).
PROJECT = Path(__file__).parents[1]
PRODUCTION_SERVER = "gunicorn"


def _set_up_django() -> None:
    """Django's settings for this process, from the first app built in it (web/services.py):
    a SECRET_KEY and the hosts the tests use; and a migrated database in a temporary folder."""
    folder = tempfile.mkdtemp(prefix="django-tests-")
    atexit.register(shutil.rmtree, folder, True)
    django_env = {
        "DJANGO_SETTINGS_MODULE": "{{ cookiecutter.package_name }}.settings",
        "DATABASE_PATH": os.path.join(folder, "db.sqlite3"),
    }
    first_app = {
        "CLIENT_ID": "00000000-0000-4000-8000-0000000000d1", "CLIENT_CREDENTIAL": "secret",
        "CLIENT_SECRET": "not-a-real-secret", "TOKEN_CACHE_BACKEND": "memory",
        "REDIRECT_URI": "http://localhost" + DEFAULTS.redirect_path,
        "SECRET_KEY": secrets.token_urlsafe(48), "ALLOWED_HOSTS": "localhost,127.0.0.1",
    }
    # Read while Django loads its settings, then the test process's environment is as it was.
    with mock.patch.dict(os.environ, django_env):
        create_app(first_app)
        from django.conf import settings

        settings.INSTALLED_APPS  # noqa: B018  (loads the settings module now)
    call_command("migrate", verbosity=0, interactive=False)


_set_up_django()

# A view as a user of the template writes one, which changes the session itself: it answers
# with how often this browser's session has been here.
USER_VIEW = "/_test/visits"


def _visits(request: HttpRequest) -> HttpResponse:
    request.session["visits"] = int(request.session.get("visits", 0)) + 1
    return HttpResponse(str(request.session["visits"]), content_type="text/plain")


def _add_user_view() -> None:
    """Added to the project's URLs once per process (Django's URLs are the process's)."""
    from {{ cookiecutter.package_name }} import urls

    urls.urlpatterns.append(path(USER_VIEW.lstrip("/"), _visits))
    clear_url_caches()


_add_user_view()


def build_app(env: Mapping[str, str]) -> tuple[Any, Services]:
    """The WSGI app for `env` (no .env file, no os.environ) and its core services; raises
    SettingsError for settings it cannot run with."""
    app = create_app(env)
    return app, app.services


@contextlib.contextmanager
def serve(env_for: Callable[[str], dict[str, str]], cert_files: tuple[str, str] | None,
          host: str = "localhost") -> Iterator[tuple[str, Services]]:
    """Serve the app built from `env_for(base_url)`: (base_url, its services)."""
    with serve_wsgi(lambda base_url: build_app(env_for(base_url))[0], cert_files,
                    host) as (base_url, app):
        assert isinstance(app, ServicesApp)
        yield base_url, app.services


def production_server(fd: int, cert_files: tuple[str, str] | None
                      ) -> tuple[list[str], dict[str, str]]:
    """The documented production server serving the listening socket `fd` (see
    tests/servers.py `gunicorn_server`)."""
    return gunicorn_server(GUNICORN_APP, fd, cert_files)
