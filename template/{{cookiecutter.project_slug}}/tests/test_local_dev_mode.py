"""`python -m devprovider`: the app on http://localhost against the local stand-in."""

from __future__ import annotations

from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from {{ cookiecutter.package_name }}.app import create_app

from devprovider import DEFAULT_USERS, StandIn
from devprovider.__main__ import start_dev_environment
from tests.browser import Browser
from tests.conftest import serve_app


def test_sign_in_on_localhost_without_certificate_warnings(tmp_path: Path) -> None:
    started: list[StandIn] = []

    def build(base_url: str) -> Any:
        standin, env = start_dev_environment(tmp_path, base_url)
        started.append(standin)
        return create_app(env)

    with serve_app(build, None, host="localhost") as (base_url, app):
        try:
            browser = Browser(verify=True)  # plain http only: no test CA is needed
            start = browser.get(base_url + "/login", allow_redirects=False)
            (name, morsel), = SimpleCookie(start.headers["Set-Cookie"]).items()
            # Same site as the provider's localhost pages, so Lax suffices and http is allowed.
            assert name == "auth-flow" and morsel["samesite"] == "Lax" and not morsel["secure"]
            page = browser.get(start.headers["Location"])
            where = urlsplit(page.url)
            assert (where.scheme, where.hostname) == ("http", "localhost")
            final = browser.sign_in(page, DEFAULT_USERS[0].username)
            assert final.url == base_url + "/" and DEFAULT_USERS[0].name in final.text
            services = app.extensions["msal_webapp"]
            for name in services.settings.apis:
                path = "/profile" if name == "graph" else f"/api/{name}"
                page = browser.get(base_url + path)
                if "/authorize" in page.url:  # consent for an API not consented at sign-in
                    page = browser.sign_in(page, DEFAULT_USERS[0].username)
                assert page.status_code == 200 and DEFAULT_USERS[0].oid in page.text
        finally:
            for standin in started:
                standin.stop()
