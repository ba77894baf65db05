"""The user model (AUTH_USER_MODEL): one row per signed-in account, created at its first visit
to a page that uses `request.user` (web/backends.py).

A row is keyed by who the provider says the user is: Entra's tenant id and object id (`tid`,
`oid`), or, for another OpenID Connect provider, its issuer and the subject (`sub`). Names
and e-mail are display copies, refreshed from the sign-in. There is no password: users only
sign in through the provider.
"""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import models


class User(AbstractBaseUser):
    # The core's `User.identity_key`, "<issuer> <subject>": unique, the USERNAME_FIELD.
    key = models.CharField(max_length=400, unique=True)
    issuer = models.CharField(max_length=300)  # the Entra tenant id, or the issuer URL
    subject = models.CharField(max_length=200)  # the Entra object id, or `sub`
    name = models.CharField(max_length=300, blank=True)
    username = models.CharField(max_length=300, blank=True)  # preferred_username / e-mail
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(auto_now_add=True)

    USERNAME_FIELD = "key"

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="web_user_identity"),
        ]

    def __str__(self) -> str:
        return str(self.name or self.username or self.key)

    def get_full_name(self) -> str:
        return str(self.name)

    def get_short_name(self) -> str:
        return str(self.name or self.username)
