"""Django-specific behaviour: what the shared behavioural suite cannot see from outside."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from werkzeug.test import Client

from {{ cookiecutter.package_name }}.core.auth import User as SignedIn
from {{ cookiecutter.package_name }}.core.web import SESSION_USER, Services, save_session
from {{ cookiecutter.package_name }}.web.backends import SignedInUserBackend
from {{ cookiecutter.package_name }}.web.middleware import AuthenticationMiddleware, SessionMiddleware
from {{ cookiecutter.package_name }}.web.models import User
from {{ cookiecutter.package_name }}.web.services import SERVICES_KEY

from tests.app_server import build_app
from tests.conftest import environment_for_settings_tests as valid_env

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


def test_forwarded_headers_are_honoured_only_when_configured(tmp_path: Path) -> None:
    code = ("from django.conf import settings; "
            "print(getattr(settings, 'SECURE_PROXY_SSL_HEADER', None), "
            "settings.USE_X_FORWARDED_HOST)")
    answers = {}
    for hops in ("0", "1"):
        result = subprocess.run(
            [sys.executable, "-c", "import django; django.setup(); " + code], cwd=tmp_path,
            env=production_env(TRUSTED_PROXY_HOPS=hops), capture_output=True, text=True,
            timeout=60)
        assert result.returncode == 0, result.stderr
        answers[hops] = result.stdout.strip()
    assert answers == {"0": "None False",
                       "1": "('HTTP_X_FORWARDED_PROTO', 'https') True"}


def signed_in_cookies(services: Services, user: SignedIn) -> dict[str, str]:
    """The cookies of a browser with a core session for `user`."""
    state = services.sessions.load(None)
    state[SESSION_USER] = user.to_dict()
    save_session(services, state)
    return {services.session_cookie.name: state.sid or ""}


def test_request_user_and_django_login_required_work_for_the_signed_in_user() -> None:
    _, services = build_app(valid_env())
    alice = SignedIn(home_account_id="oid-1.tid-1", name="Alice", username="alice@example.com",
                     oid="oid-1", tid="tid-1")

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
                     oid="oid-2", tid="tid-1")
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
    bob = SignedIn(home_account_id="sub-9", name="Bob", username="bob", oid="sub-9", tid="")
    user = SignedInUserBackend().authenticate(request, signed_in=bob)
    assert user is not None and user.subject == "sub-9"
    assert user.issuer == (services.settings.oidc_authority or "")
