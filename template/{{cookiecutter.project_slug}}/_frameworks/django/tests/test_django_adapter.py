"""Django-specific behaviour: what the shared behavioural suite cannot see from outside."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.views import View
from werkzeug.test import Client

from {{ cookiecutter.package_name }}.core.auth import User as SignedIn
from {{ cookiecutter.package_name }}.core.flows import Page, WebRequest, save_session
from {{ cookiecutter.package_name }}.core.services import Services
from {{ cookiecutter.package_name }}.core.web import SESSION_USER
from {{ cookiecutter.package_name }}.web.backends import SignedInUserBackend
from {{ cookiecutter.package_name }}.web.decorators import LoginRequired
from {{ cookiecutter.package_name }}.web.middleware import AuthenticationMiddleware, SessionMiddleware
from {{ cookiecutter.package_name }}.web.models import User
from {{ cookiecutter.package_name }}.web.services import SERVICES_KEY, ServicesApp

from devprovider import DEFAULT_USERS
from tests.app_server import build_app
from tests.conftest import AppUnderTest
from tests.conftest import environment_for_settings_tests as valid_env
from tests.test_web_flow import at_provider, sign_out_form, visit

ALICE = DEFAULT_USERS[0]

PROJECT = Path(__file__).parents[1]

# `manage.py check --deploy` warnings left on purpose, with the documented production settings:
ALLOWED_DEPLOY_WARNINGS = {
    # HSTS (and its includeSubDomains / preload) binds the whole domain for a long time: a
    # decision for the site's owner, usually made at the TLS-terminating proxy.
    "security.W004",
    # No http -> https redirect in the app: gunicorn serves https itself, or the proxy in
    # front redirects; redirecting here loops behind a proxy without TRUSTED_PROXY_HOPS.
    "security.W008",
}


def production_env(**overrides: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(PROJECT),
            "DJANGO_SETTINGS_MODULE": "{{ cookiecutter.package_name }}.settings",
            **valid_env({"SECRET_KEY": "v8Zq3LrT1yX0pW7mN2bK5sD9fG4hJ6aQ-cE_uI8oR3tY1wZ7xV0"}),
            **overrides}


def test_check_deploy_is_clean_with_the_production_settings(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(PROJECT / "manage.py"), "check", "--deploy"],
                            cwd=tmp_path, env=production_env(), capture_output=True, text=True,
                            timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    reported = set(re.findall(r"\(([\w.]+\.[EW]\d+)\)", output))
    assert reported <= ALLOWED_DEPLOY_WARNINGS, output


def test_forwarded_headers_are_honoured_only_when_configured() -> None:
    """Django's own proxy settings stay off; the WSGI application applies the forwarded client,
    scheme and host that the core trusts (the same hop counting as the other frameworks)."""
    from django.conf import settings

    assert getattr(settings, "SECURE_PROXY_SSL_HEADER", None) is None
    assert not settings.USE_X_FORWARDED_HOST
    seen: dict[str, str] = {}

    def probe(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.update({k: environ[k] for k in ("REMOTE_ADDR", "wsgi.url_scheme", "HTTP_HOST")})
        start_response("200 OK", [])
        return []

    request = {"REMOTE_ADDR": "10.0.0.1", "wsgi.url_scheme": "http", "HTTP_HOST": "internal",
               "HTTP_X_FORWARDED_FOR": "198.51.100.9, 203.0.113.7",
               "HTTP_X_FORWARDED_PROTO": "https", "HTTP_X_FORWARDED_HOST": "portal.example.com",
               "HTTP_X_FORWARDED_PREFIX": "//evil.example"}
    answers = {}
    for hops in ("0", "1", "2"):
        _, services = build_app(valid_env({"TRUSTED_PROXY_HOPS": hops}))
        ServicesApp(probe, services)(dict(request), lambda *args: None)
        answers[hops] = dict(seen)
    assert answers["0"] == {"REMOTE_ADDR": "10.0.0.1", "wsgi.url_scheme": "http",
                            "HTTP_HOST": "internal"}
    assert answers["1"] == {"REMOTE_ADDR": "203.0.113.7", "wsgi.url_scheme": "https",
                            "HTTP_HOST": "portal.example.com"}
    # Two hops: the second value from the right, where there is one.
    assert answers["2"] == {"REMOTE_ADDR": "198.51.100.9", "wsgi.url_scheme": "http",
                            "HTTP_HOST": "internal"}


def signed_in_cookies(services: Services, user: SignedIn) -> dict[str, str]:
    """The cookies of a browser with a core session for `user`."""
    state = services.sessions.load(None)
    state[SESSION_USER] = user.to_dict()
    saved = save_session(services, WebRequest(here="/", cookies={}, session=state))
    assert not isinstance(saved, Page)
    return {services.session_cookie.name: state.sid or ""}


def test_request_user_and_django_login_required_work_for_the_signed_in_user() -> None:
    _, services = build_app(valid_env())
    alice = SignedIn(home_account_id="oid-1.tid-1", name="Alice", username="alice@example.com",
                     oid="oid-1", tid="tid-1", issuer="https://login.example/tid-1/v2.0",
                     subject="pairwise-1")

    @login_required
    def whoami(request: HttpRequest) -> HttpResponse:
        return HttpResponse(f"{request.user.name} {request.user.pk}")

    def served(cookies: dict[str, str]) -> HttpResponse:
        request = RequestFactory().get("/me", HTTP_HOST="localhost")
        request.COOKIES = cookies
        request.META[SERVICES_KEY] = services
        response: HttpResponse = SessionMiddleware(AuthenticationMiddleware(whoami))(request)
        return response

    answer = served(signed_in_cookies(services, alice))
    assert answer.status_code == 200 and answer.content.decode().startswith("Alice ")
    row = User.objects.get(issuer="tid-1", subject="oid-1")
    assert not row.has_usable_password() and row.username == "alice@example.com"
    # Signed out: django.contrib.auth's login_required sends the browser to the app's /login.
    answer = served({})
    assert answer.status_code == 302 and answer["Location"].startswith("/login?next=")


def test_request_user_is_lazy_no_query_without_use() -> None:
    """The home page of a signed-in user reads no user row."""
    app, services = build_app(valid_env())
    alice = SignedIn(home_account_id="oid-2.tid-1", name="Alice", username="alice",
                     oid="oid-2", tid="tid-1", issuer="https://login.example/tid-1/v2.0",
                     subject="pairwise-2")
    client = Client(app)
    for name, value in signed_in_cookies(services, alice).items():
        client.set_cookie(name, value, domain="localhost", secure=True)
    with CaptureQueriesContext(connection) as queries:
        page = client.get("/", base_url="https://localhost")
    assert page.status_code == 200 and "Alice" in page.text
    assert len(queries) == 0


def test_generic_oidc_users_are_keyed_by_issuer_and_subject() -> None:
    _, services = build_app(valid_env())
    request = RequestFactory().get("/")
    request.META[SERVICES_KEY] = services
    issuer = "https://id.example.com/realms/acme"
    bob = SignedIn(home_account_id="sub-9", name="Bob", username="bob", oid="", tid="",
                   issuer=issuer, subject="sub-9")
    user = SignedInUserBackend().authenticate(request, signed_in=bob)
    assert user is not None and (user.issuer, user.subject) == (issuer, "sub-9")
    # The same subject from another issuer is another user.
    other = SignedInUserBackend().authenticate(request, signed_in=SignedIn(
        home_account_id="sub-9", name="Bob", username="bob", oid="", tid="",
        issuer="https://other.example.com", subject="sub-9"))
    assert other is not None and other.pk != user.pk


def test_login_required_middleware_turned_on_signs_in_and_out_without_a_loop(
        make_app: Callable[..., AppUnderTest], monkeypatch: pytest.MonkeyPatch) -> None:
    """Django 5.1+'s LoginRequiredMiddleware sends signed-out visitors of every view to
    LOGIN_URL: the sign-in, the redirect URI and sign-out are `login_not_required`, so a
    visitor signs in in one round trip and signs out, never looping."""
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import override_settings

    from {{ cookiecutter.package_name }}.web import services as web_services

    required = "django.contrib.auth.middleware.LoginRequiredMiddleware"
    with override_settings(MIDDLEWARE=[*settings.MIDDLEWARE, required]):
        handler = WSGIHandler()  # its middleware chain is read now
    monkeypatch.setattr(web_services, "_handler", handler)
    app = make_app()
    browser = app.browser()
    first = browser.get(app.url("/"))  # the home page is open without the middleware
    assert [r.headers["Location"] for r in first.history][0].startswith("/login?next=")
    page = visit(app, browser, "/", ALICE)  # one round trip to the provider, then home
    assert page.status_code == 200 and ALICE.name in page.text
    signed_out = browser.post(app.url("/logout"), data=sign_out_form(app, browser))
    # At the provider's sign-out page (Entra asks which account), or, from a provider that
    # sends the browser straight back, at its sign-in: the home page now needs one.
    assert at_provider(app, signed_out, "/logout") or at_provider(app, signed_out)
    assert signed_out.status_code == 200 and len(signed_out.history) < 6
    assert at_provider(app, browser.get(app.url("/")))  # signed out: the middleware asks again


def test_class_based_views_are_guarded_by_the_mixin() -> None:
    """`LoginRequired` with `required_roles` on a class-based view: the same decision as the
    decorator (the core's), the user as `request.signed_in`."""
    _, services = build_app(valid_env())

    class Reports(LoginRequired, View):
        required_roles = ["Admin"]

        def get(self, request: HttpRequest) -> HttpResponse:
            return HttpResponse(f"reports for {request.signed_in.name}")

    def served(cookies: dict[str, str]) -> HttpResponse:
        request = RequestFactory().get("/reports", HTTP_HOST="localhost")
        request.COOKIES = cookies
        request.META[SERVICES_KEY] = services
        response: HttpResponse = SessionMiddleware(Reports.as_view())(request)
        return response

    admin = SignedIn(home_account_id="oid-2.tid-1", name="Ada", username="ada@example.com",
                     oid="oid-2", tid="tid-1", issuer="https://login.example/tid-1/v2.0",
                     subject="pairwise-2", roles=("Admin",))
    reader = replace(admin, home_account_id="oid-3.tid-1", name="Rob", oid="oid-3",
                     username="rob@example.com", roles=("Reader",))
    answer = served(signed_in_cookies(services, admin))
    assert answer.status_code == 200 and answer.content == b"reports for Ada"
    answer = served(signed_in_cookies(services, reader))
    assert answer.status_code == 403 and b"rob@example.com" in answer.content
    assert b"Access denied" in answer.content
