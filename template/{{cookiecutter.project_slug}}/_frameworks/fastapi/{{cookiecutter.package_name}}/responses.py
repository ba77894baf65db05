"""The core's adapter contract (core/adapter.py) for FastAPI: a request as the core sees it, and
the response for a core outcome (`respond`). The decisions live in core/flows.py, the same for
every framework."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from .core import adapter, flows
from .core.services import Services
from .core.web import CookieChanges


def _template_globals(request: Request) -> dict[str, Any]:
    return {**flows.template_globals(ADAPTER.services(request), request.scope["session"]),
            # A path, not an absolute URL: right behind a proxy whose headers are not trusted.
            "static": lambda path: str(request.app.url_path_for("static", path=path))}


# The pages are the shared Jinja templates (also used by the other frameworks' apps).
templates = Jinja2Templates(directory=Path(__file__).parent / "templates",
                            context_processors=[_template_globals])


class FastAPIAdapter:
    def services(self, request: Request) -> Services:
        """The app's core services (on `app.state`: several apps may run in one process)."""
        services: Services = request.app.state.services
        return services

    def web_request(self, request: Request) -> flows.WebRequest:
        query = request.url.query
        return flows.WebRequest(here=request.url.path + (f"?{query}" if query else ""),
                                cookies=request.cookies, session=request.scope["session"])

    def render(self, request: Request, page: flows.Page) -> Response:
        return templates.TemplateResponse(request, page.template, page.context,
                                          status_code=page.status)

    def redirect(self, request: Request, location: str) -> Response:
        return RedirectResponse(location, status_code=302)

    def set_cookies(self, response: Response, changes: CookieChanges) -> None:
        # Starlette checks SameSite case-insensitively and writes it as given ("Lax", "None").
        for spec in changes.delete:
            response.delete_cookie(spec.name, path=spec.path, secure=spec.secure,
                                   httponly=spec.httponly,
                                   samesite=spec.samesite)  # type: ignore[arg-type]
        for spec, value in changes.set:
            response.set_cookie(spec.name, value, max_age=spec.max_age, path=spec.path,
                                secure=spec.secure, httponly=spec.httponly,
                                samesite=spec.samesite)  # type: ignore[arg-type]

    def set_header(self, response: Response, name: str, value: str) -> None:
        if name not in response.headers:
            response.headers[name] = value


ADAPTER = FastAPIAdapter()


def web_request(request: Request) -> flows.WebRequest:
    """This request, as the core sees it."""
    return ADAPTER.web_request(request)


def respond(request: Request, outcome: flows.Outcome) -> Response:
    """The response for a core outcome (the session is saved as the response leaves,
    sessions.py)."""
    return adapter.respond(ADAPTER, request, outcome)
