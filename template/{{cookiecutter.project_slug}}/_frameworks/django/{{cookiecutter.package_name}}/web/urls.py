"""Routes: home, sign-in, the redirect URI, sign-out, the profile and one page per API."""

from django.urls import path, re_path

from ..config import DEFAULTS
from ..core.health import LIVENESS_PATH, READINESS_PATH
from . import views

urlpatterns = [
    path("", views.index, name="index"),
    path("login", views.login, name="login"),
    # The redirect path is the one registered with the identity provider (config.py).
    path(DEFAULTS.redirect_path.lstrip("/"), views.auth_response, name="auth_response"),
    path("logout", views.logout, name="logout"),
    path("edit-profile", views.edit_profile, name="edit_profile"),
    # The front-channel logout URL registered with the identity provider (config.py).
    path(DEFAULTS.front_channel_logout_path.lstrip("/"), views.front_channel_logout,
         name="front_channel_logout"),
    path("profile", views.profile, name="profile"),
    path("api/<str:name>", views.api, name="api"),
{% if (cookiecutter.get("authorization") or {}).get("roles") %}
    path("admin", views.admin, name="admin"),
{% endif %}
    # /roles/<role> and /groups/<name>: one example page per app role and named group.
    re_path(r"^(?P<kind>roles|groups)/(?P<name>.+)$", views.access, name="access"),
    # The health probes (core/health.py).
    path(LIVENESS_PATH.lstrip("/"), views.healthz, name="healthz"),
    path(READINESS_PATH.lstrip("/"), views.readyz, name="readyz"),
]
