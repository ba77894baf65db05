"""The no-auth floor of the generated Django app: the same app, page and HTTP client, minus the
auth work. generated_floor.py's approach, through the Django adapter's seams.

    DJANGO_SETTINGS_MODULE=<pkg>.settings gunicorn --pythonpath benchmarks/throughput \\
        -c <project>/gunicorn.conf.py django_floor:application

It is the WSGI application the app's own `<pkg>/wsgi.py` serves (`web.services.create_app()`:
the same settings, middleware, views, Jinja templates, security headers and the same client
calling the API), with two things taken out:

- token acquisition and the session store, as core_floor.py describes (a fixed token; the
  first signed-in session that rendered the page, served from memory from then on).

Django's own per-request work (cookie parsing, the `SessionStore` wrapper the session
middleware puts around the core state, CSRF, the template) stays, as the Flask floor keeps
Flask's.

The seams are the core `Services` the app carries (`ServicesApp.services`): `AuthService.
acquire_token` (every API call gets its token there) and `Sessions.load` / `Sessions.save`
(web/middleware.py loads the session there). Each response carries `X-Bench-Floor: frozen` when
that request got the frozen session, `live` otherwise: the benchmark fails if a floor serves
`live` after warm-up, and a floor round whose API calls did not all carry the fixed token is
invalid. Keep this module in step with the app.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterable
from typing import Any

from core_floor import FrozenCore, bench_settings, require


def create_app() -> Any:
    package, token, page = bench_settings()
    app = importlib.import_module(f"{package}.web.services").create_app()
    services = app.services
    require("django_floor.py", (services.auth, "acquire_token"), (services.sessions, "load"),
            (services.sessions, "save"))
    request = threading.local()  # gthread: one request at a time per thread
    core = FrozenCore(services, token, lambda what, value: setattr(request, what, value))

    def application(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request.loaded = None
        status: list[str] = []

        def start(code: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status.append(code)
            headers.append(("X-Bench-Floor",
                            "frozen" if core.is_frozen(request.loaded) else "live"))
            return start_response(code, headers, exc_info)

        result = app(environ, start)
        if status:
            core.maybe_freeze(request.loaded, int(status[0].split()[0]),
                              environ.get("PATH_INFO", ""), page)
        return result

    return application


application = create_app()
