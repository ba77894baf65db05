"""`python -m devprovider`: the app on http://localhost against the local stand-in, whose sign-in
pages are on another site (http://127.0.0.1), as a real tenant's are."""

from __future__ import annotations

from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from {{ cookiecutter.package_name }}.core.services import Services

from devprovider import DEFAULT_USERS, StandIn
from devprovider.__main__ import start_dev_environment
from tests.app_server import serve
from tests.browser import Browser
from tests.conftest import page_of, user_apis

ALICE = DEFAULT_USERS[0]


@pytest.fixture
def dev_app(tmp_path: Path) -> Iterator[tuple[str, Services]]:
    started: list[StandIn] = []

    def env_for(base_url: str) -> dict[str, str]:
        standin, env = start_dev_environment(tmp_path, base_url)
        started.append(standin)
        return env

    with serve(env_for, None, host="localhost") as served:
        try:
            yield served
        finally:
            for standin in started:
                standin.stop()


@pytest.mark.parametrize("profile", ["chromium", "firefox", "safari"])
def test_sign_in_on_localhost_in_every_browser(dev_app: tuple[str, Services], profile: str) -> None:
    base_url, services = dev_app
    browser = Browser(verify=True, profile=profile)  # plain http only: no test CA is needed
    start = browser.get(base_url + "/login", allow_redirects=False)
    (name, morsel), = SimpleCookie(start.headers["Set-Cookie"]).items()
    # Not Secure (Safari drops Secure cookies on http://localhost), Lax, and the answer comes
    # back as a top-level GET, the one cross-site request that carries a Lax cookie.
    assert name.startswith("auth-flow-") and morsel["samesite"] == "Lax" and not morsel["secure"]
    assert parse_qs(urlsplit(start.headers["Location"]).query)["response_mode"] == ["query"]
    page = browser.get(start.headers["Location"])
    where = urlsplit(page.url)
    assert where.scheme == "http" and where.hostname != urlsplit(base_url).hostname
    final = browser.sign_in(page, ALICE.username)
    assert final.url == base_url + "/" and ALICE.name in final.text
    for api in user_apis(services.settings.apis):
        page = browser.get(base_url + page_of(api))
        if urlsplit(page.url).path.endswith("/authorize"):  # consent for an API
            page = browser.sign_in(page, ALICE.username)
        assert page.status_code == 200 and ALICE.oid in page.text
