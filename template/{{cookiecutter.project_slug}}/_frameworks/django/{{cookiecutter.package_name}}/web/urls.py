"""Routes: home, sign-in, the redirect URI, sign-out, the profile and one page per API."""

from django.urls import path

from ..config import DEFAULTS
from . import views

urlpatterns = [
    path("", views.index, name="index"),
    path("login", views.login, name="login"),
    # The redirect path is the one registered with the identity provider (config.py).
    path(DEFAULTS.redirect_path.lstrip("/"), views.auth_response, name="auth_response"),
    path("logout", views.logout, name="logout"),
    path("profile", views.profile, name="profile"),
    path("api/<str:name>", views.api, name="api"),
]
