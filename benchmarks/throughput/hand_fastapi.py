"""Measure 2's floor in FastAPI: the signed-in API page as a careful engineer writes it by hand,
without authentication (hand_common.py says what it keeps and why): one `httpx.AsyncClient`
for the process, an async route, Jinja templates.

    uvicorn --factory hand_fastapi:create_app --no-proxy-headers   # PYTHONPATH: this folder
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from hand_common import TEMPLATES, hand_settings, store_read


def create_app() -> FastAPI:
    settings = hand_settings()
    if store_read() is not None:
        raise RuntimeError("hand_fastapi.py has no shared-store read (no goal asks for one)")
    templates = Jinja2Templates(directory=TEMPLATES)
    clients: dict[str, httpx.AsyncClient] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
            clients["api"] = client
            yield

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/api/{name}", response_class=HTMLResponse)
    async def page(request: Request, name: str) -> HTMLResponse:
        answer = await clients["api"].get(settings.api_url, headers=settings.headers)
        answer.raise_for_status()
        pretty = json.dumps(answer.json(), indent=2)
        return templates.TemplateResponse(
            request, "hand.html", {"name": name, "user": settings.user_name, "pretty": pretty},
            headers={"X-Bench-Floor": "frozen"})

    return app
