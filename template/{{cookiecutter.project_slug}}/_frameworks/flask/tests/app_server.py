"""The one test module that knows this app's framework: how the tests build and serve it.

Flask under werkzeug's threaded WSGI server, in the test process. Every other test module
reaches the app through `build_app`, `serve` and the names below, so the behavioural suite
runs unchanged against each framework's adapter.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from flask import Flask, session
from jinja2 import BytecodeCache
from jinja2.bccache import Bucket

from {{ cookiecutter.package_name }}.app import create_app
from {{ cookiecutter.package_name }}.core.services import Services

from tests.servers import gunicorn_server, serve_wsgi

FRAMEWORK = "flask"
# What the documented gunicorn command serves (README.md, gunicorn.conf.py).
GUNICORN_APP = "{{ cookiecutter.package_name }}.app:create_app()"
# Python code that builds the app the way the production entry point does (from os.environ
# and a .env file), to check how it fails.
ENTRY_POINT_CODE = ("from {{ cookiecutter.package_name }}.app import create_app; "
                    "create_app()")
# The project folder, and the production server tests/test_instances.py runs the app under (in
# processes of its own: `production_server`).
PROJECT = Path(__file__).parents[1]
PRODUCTION_SERVER = "gunicorn"


# A view as a user of the template writes one, which changes the session itself: it answers
# with how often this browser's session has been here.
USER_VIEW = "/_test/visits"


def _add_user_view(app: Flask) -> None:
    @app.get(USER_VIEW)
    def visits() -> str:
        session["visits"] = int(session.get("visits", 0)) + 1
        return str(session["visits"])


class _CompiledTemplates(BytecodeCache):
    """The compiled code of the app's templates, kept for the whole test process.

    Each Flask app has a Jinja environment of its own, which compiles every template it renders
    (a few milliseconds each); the tests build a new app for almost every test. Jinja checks the
    template's source against the kept code's checksum before using it."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def load_bytecode(self, bucket: Bucket) -> None:
        with self._lock:
            code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        code = bucket.bytecode_to_string()
        with self._lock:
            self._code[bucket.key] = code


_COMPILED_TEMPLATES = _CompiledTemplates()


def build_app(env: Mapping[str, str]) -> tuple[Any, Services]:
    """The WSGI app for `env` (no .env file, no os.environ) and its core services; raises
    SettingsError for settings it cannot run with."""
    app = create_app(env)
    app.jinja_env.bytecode_cache = _COMPILED_TEMPLATES
    _add_user_view(app)
    return app, app.extensions["msal_webapp"]


@contextlib.contextmanager
def serve(env_for: Callable[[str], dict[str, str]], cert_files: tuple[str, str] | None,
          host: str = "localhost") -> Iterator[tuple[str, Services]]:
    """Serve the app built from `env_for(base_url)`: (base_url, its services)."""
    with serve_wsgi(lambda base_url: build_app(env_for(base_url))[0], cert_files,
                    host) as (base_url, app):
        yield base_url, app.extensions["msal_webapp"]


def production_server(fd: int, cert_files: tuple[str, str] | None
                      ) -> tuple[list[str], dict[str, str]]:
    """The documented production server serving the listening socket `fd` (see
    tests/servers.py `gunicorn_server`)."""
    return gunicorn_server(GUNICORN_APP, fd, cert_files)
