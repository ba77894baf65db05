# Managed by the msal-webapp template: regenerate rather than edit (your code goes outside core/).
"""Values the browser keeps for the app but must neither read nor change: sealed with
AES-256-GCM (authenticated encryption), under a key derived from SECRET_KEY with HKDF for one
purpose, so that a key serves nothing else.

The sign-in's flow cookie holds the PKCE code verifier and the nonce: signing alone would keep
them from being changed, not from being read by whatever can read the browser's cookies.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_NONCE_BYTES = 12  # AES-GCM's standard nonce, random per value


class Sealed:
    """Seals JSON values for one `purpose` (also bound in as associated data)."""

    def __init__(self, secret_key: str, purpose: str) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                   info=f"msal-webapp {purpose}".encode()).derive(secret_key.encode())
        self._aead = AESGCM(key)
        self._purpose = purpose.encode()

    def seal(self, value: Any) -> str:
        """`value` as URL- and cookie-safe text (base64url, no padding)."""
        nonce = os.urandom(_NONCE_BYTES)
        data = json.dumps(value, separators=(",", ":")).encode()
        sealed = nonce + self._aead.encrypt(nonce, data, self._purpose)
        return base64.urlsafe_b64encode(sealed).rstrip(b"=").decode("ascii")

    def open(self, text: str) -> Any:
        """The value sealed in `text`; ValueError if it was not sealed here (changed, cut,
        another key or purpose)."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            if len(raw) <= _NONCE_BYTES:
                raise ValueError("too short")
            data = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], self._purpose)
            return json.loads(data)
        except (binascii.Error, InvalidTag, UnicodeError) as exc:
            raise ValueError("not a sealed value") from exc
