"""The authentication backend: the Django user (web/models.py) of the core's signed-in user.

The core keeps who is signed in in the session (core/web.py `current_user`); there is nothing
to check a password against. `authenticate(request, signed_in=<core User>)` finds or creates
the user's row. web/middleware.py calls it lazily, when a view first reads `request.user`.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import BaseBackend
from django.contrib.auth.hashers import make_password
from django.http import HttpRequest

from ..core.auth import User as SignedIn
from .models import User


class SignedInUserBackend(BaseBackend):
    def authenticate(self, request: HttpRequest | None, signed_in: SignedIn | None = None,
                     **credentials: Any) -> User | None:
        if request is None or signed_in is None:
            return None
        issuer, subject = signed_in.identity  # whom the core keys users on
        if not issuer or not subject:
            return None
        user, created = User.objects.get_or_create(
            key=signed_in.identity_key,
            defaults={"issuer": issuer, "subject": subject, "name": signed_in.name,
                      "username": signed_in.username,
                      # unusable: users only sign in through the provider
                      "password": make_password(None)})
        if not created and (user.name, user.username) != (signed_in.name, signed_in.username):
            user.name, user.username = signed_in.name, signed_in.username
            user.save(update_fields=["name", "username"])
        return user if user.is_active else None

    def get_user(self, user_id: Any) -> User | None:
        user: User | None = User.objects.filter(pk=user_id, is_active=True).first()
        return user
