"""Measure 2's floor in Django: the signed-in API page as a careful engineer writes it by hand,
without authentication (hand_common.py says what it keeps and why). A one-file project:
Django's default middleware minus sessions and authentication (and messages, which stores its
messages in the session), the Jinja2 template backend (the app's), no database.

    gunicorn -c <project>/gunicorn.conf.py hand_django:application   # PYTHONPATH: this folder
"""

from __future__ import annotations

import json
import os
import secrets

import django
import requests
from django.conf import settings as django_settings
from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from hand_common import TEMPLATES, hand_settings, store_read

django_settings.configure(
    DEBUG=False,
    SECRET_KEY=secrets.token_urlsafe(48),
    ALLOWED_HOSTS=os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1").split(","),
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[
        "django.middleware.security.SecurityMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
    ],
    INSTALLED_APPS=[],
    DATABASES={},
    TEMPLATES=[{"BACKEND": "django.template.backends.jinja2.Jinja2", "DIRS": [str(TEMPLATES)],
                "APP_DIRS": False}],
    USE_TZ=True,
)
django.setup()

SETTINGS = hand_settings()
READ = store_read()
HTTP = requests.Session()  # one pool for every thread
HTTP.trust_env = False  # the environment was read once, at start-up: no proxies here


def page(request: HttpRequest, name: str) -> HttpResponse:
    if READ is not None:
        READ()
    answer = HTTP.get(SETTINGS.api_url, headers=SETTINGS.headers, timeout=(5, 10))
    answer.raise_for_status()
    pretty = json.dumps(answer.json(), indent=2)
    response = render(request, "hand.html",
                      {"name": name, "user": SETTINGS.user_name, "pretty": pretty})
    response["X-Bench-Floor"] = "frozen"  # the benchmark's check: a floor answered
    return response


urlpatterns = [path("api/<str:name>", page)]
application = get_wsgi_application()
