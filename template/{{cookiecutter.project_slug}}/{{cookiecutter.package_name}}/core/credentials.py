# Managed by the msal-webapp template: regenerate rather than edit (your code goes outside core/).
"""How the app proves its identity to the identity provider (MSAL's `client_credential`).

The secret itself never appears in code or in configuration files that are committed: it comes
from CLIENT_SECRET or from the file named by CLIENT_SECRET_FILE (see settings).
"""

from __future__ import annotations

from .settings import Settings


def client_credential(settings: Settings) -> str:
    """A client secret, as registered under "Certificates & secrets" of the app registration."""
    return settings.client_secret
