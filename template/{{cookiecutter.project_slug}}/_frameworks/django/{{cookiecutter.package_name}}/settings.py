"""Django settings: only what Django itself needs, fixed for the process.

The app's settings (client, authority, APIs, cookies, SECRET_KEY, the host names) are the
core's (core/settings.py), read and checked when the WSGI application is built (wsgi.py,
web/services.py); what Django needs of them is taken from there, not read again.
"""

from __future__ import annotations

import os
from pathlib import Path

from .web.services import process_settings

PACKAGE_DIR = Path(__file__).resolve().parent
BASE_DIR = PACKAGE_DIR.parent

# The app's settings, read and checked once by the core (core/settings.py): Django's secret
# key is the app's SECRET_KEY; the host names it answers for are ALLOWED_HOSTS (default: the
# host of REDIRECT_URI). Empty when the environment does not make valid settings: Django
# then refuses what needs them, and the app names what to fix when it starts.
_CORE = process_settings()
SECRET_KEY = _CORE.secret_key if _CORE else ""
ALLOWED_HOSTS = list(_CORE.allowed_hosts) if _CORE else []

# Never Django's debug pages: errors are the app's own pages (web/views.py), in development too.
DEBUG = False

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
# Behind TRUSTED_PROXY_HOPS reverse proxies, the WSGI application applies their forwarded
# scheme, host and client address itself (web/services.py), counting hops as every framework
# of this template does: no SECURE_PROXY_SSL_HEADER or USE_X_FORWARDED_HOST here.

STATIC_URL = "/static/"
STATICFILES_DIRS = [PACKAGE_DIR / "static"]
# whitenoise serves the files straight from STATICFILES_DIRS (no collectstatic step).
WHITENOISE_USE_FINDERS = True

USE_TZ = True
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
