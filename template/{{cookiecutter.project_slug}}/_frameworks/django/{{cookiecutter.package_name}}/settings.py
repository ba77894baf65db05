"""Django settings, from environment variables (as the core's settings are; see README.md).

Only what Django itself needs lives here, fixed for the process. The sign-in settings (client,
authority, APIs, cookies) are the core's (core/settings.py), read and checked when the WSGI
application is built (wsgi.py, web/services.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

PACKAGE_DIR = Path(__file__).resolve().parent
BASE_DIR = PACKAGE_DIR.parent


def _secret_key() -> str:
    """The app's SECRET_KEY (or the file SECRET_KEY_FILE names), shared with the core. Empty
    when unset: Django then refuses whatever needs it, and the core names the variable."""
    path = os.environ.get("SECRET_KEY_FILE")
    if path and not os.environ.get("SECRET_KEY"):
        try:
            return Path(path).read_text().strip()
        except OSError:
            return ""  # the core's settings check names the unreadable file
    return os.environ.get("SECRET_KEY", "")


def _allowed_hosts() -> list[str]:
    """ALLOWED_HOSTS (comma-separated), else the host of REDIRECT_URI: the app's public name."""
    listed = [host.strip() for host in os.environ.get("ALLOWED_HOSTS", "").split(",")]
    hosts = [host for host in listed if host]
    if not hosts:
        redirect_host = urlsplit(os.environ.get("REDIRECT_URI", "")).hostname
        hosts = [redirect_host] if redirect_host else []
    return hosts


def _hops() -> int:
    try:
        return max(int(os.environ.get("TRUSTED_PROXY_HOPS") or "0"), 0)
    except ValueError:
        return 0  # the core's settings check reports the malformed value


SECRET_KEY = _secret_key()
# Never Django's debug pages: errors are the app's own pages (web/views.py), in development too.
DEBUG = False
ALLOWED_HOSTS = _allowed_hosts()

INSTALLED_APPS = [
    "django.contrib.auth",  # request.user and login_required; the user model is web.User
    "django.contrib.contenttypes",
    "django.contrib.staticfiles",
    "{{ cookiecutter.package_name }}.web",
]

MIDDLEWARE = [
    # Outermost: every response, static files and error pages included, gets the core's headers.
    "{{ cookiecutter.package_name }}.web.middleware.SecurityHeadersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "{{ cookiecutter.package_name }}.web.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "{{ cookiecutter.package_name }}.web.middleware.AuthenticationMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "{{ cookiecutter.package_name }}.urls"
WSGI_APPLICATION = "{{ cookiecutter.package_name }}.wsgi.application"

# The pages are the Jinja templates shared with the other frameworks' adapters.
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [PACKAGE_DIR / "templates"],
        "APP_DIRS": False,
        "OPTIONS": {
            "environment": "{{ cookiecutter.package_name }}.web.responses.jinja_environment",
            "context_processors": [
                "{{ cookiecutter.package_name }}.web.responses.template_globals",
            ],
        },
    },
]

# Only for the user rows of django.contrib.auth (web/models.py); sessions and token caches are
# in the core's store (TOKEN_CACHE_BACKEND). Create it with `python manage.py migrate`.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DATABASE_PATH") or BASE_DIR / "db.sqlite3",
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "web.User"
AUTHENTICATION_BACKENDS = ["{{ cookiecutter.package_name }}.web.backends.SignedInUserBackend"]
LOGIN_URL = "/login"  # django.contrib.auth's login_required sends signed-out users here

# request.session is the core's server-side session (web/sessions.py), loaded and saved by
# web/middleware.py under the core's cookie (`session`, `__Host-session` over https).
SESSION_ENGINE = "{{ cookiecutter.package_name }}.web.sessions"

# Django's CSRF check guards every POST but the redirect URI (the sign-in's flow cookie and
# `state` protect that one). The cookie is Secure, except for an app on http://localhost
# (web/middleware.py); a failed check shows the core's "form expired" page.
CSRF_COOKIE_SECURE = True
CSRF_COOKIE_HTTPONLY = True
CSRF_FAILURE_VIEW = "{{ cookiecutter.package_name }}.web.views.csrf_failure"
# Django's own session cookie is unused; set as it would be, for `check --deploy`.
SESSION_COOKIE_SECURE = True
X_FRAME_OPTIONS = "DENY"

if _hops():
    # Behind TRUSTED_PROXY_HOPS reverse proxies: trust their scheme and host headers (and
    # only then: otherwise any client could claim https or another host).
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [PACKAGE_DIR / "static"]
# whitenoise serves the files straight from STATICFILES_DIRS (no collectstatic step).
WHITENOISE_USE_FINDERS = True

USE_TZ = True
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
