# Managed by the msal-webapp template: regenerate rather than edit (your code goes outside core/).
"""Encryption at rest for any store: AES-256-GCM, bound to where each entry is stored.

- Keys come from the environment (TOKEN_CACHE_ENCRYPTION_KEYS), newest first: entries are
  written with the first key and read with whichever key wrote them, so a new key can be put in
  front while old entries stay readable; drop an old key once its entries have been rewritten
  or have expired (TOKEN_CACHE_TTL_SECONDS at the most).
- The storage key (the app's prefix plus the account's home account id, or the session's
  hashed id) is the associated data: an entry copied under another account's key, by someone
  who can write to the store, fails to decrypt instead of handing that account's tokens over.
- An entry that no key decrypts (tampered, copied, plaintext, or written with a dropped key)
  is given to the layer above as unreadable, which deletes it: the user signs in again.

Format: "gcm1." + base64url(key id (4 bytes) | nonce (12 bytes) | ciphertext and tag), where the
key id is the start of the key's SHA-256, so a read tries the one key that wrote the entry.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
from collections.abc import Hashable, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from . import Entry, Store

PREFIX = "gcm1."
KEY_BYTES = 32


def parse_keys(text: str) -> list[bytes]:
    """Keys from a comma-separated list of base64 (standard or url-safe) 32-byte values, newest
    first; raises ValueError naming the position of a malformed one (never its value)."""
    keys = []
    for position, item in enumerate((part.strip() for part in text.split(",")), start=1):
        if not item:
            continue
        try:
            key = base64.urlsafe_b64decode(item.replace("+", "-").replace("/", "_")
                                           + "=" * (-len(item) % 4))
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != KEY_BYTES:
            raise ValueError(f"key {position} is not {KEY_BYTES} bytes of base64")
        keys.append(key)
    return keys


def new_key() -> str:
    """A fresh key, as TOKEN_CACHE_ENCRYPTION_KEYS takes it."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode().rstrip("=")


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()[:4]


class EncryptedStore:
    """A Store whose values are encrypted before they reach `inner`; versions and locks are
    the inner store's."""

    def __init__(self, inner: Store, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("at least one key is needed")
        self.inner = inner
        self.blocking = inner.blocking
        self._write = (_key_id(keys[0]), AESGCM(keys[0]))
        self._read = {_key_id(key): AESGCM(key) for key in reversed(keys)}

    def encrypt(self, key: str, value: str) -> str:
        key_id, aead = self._write
        nonce = os.urandom(12)  # random 96-bit nonces: safe far beyond this store's writes
        sealed = aead.encrypt(nonce, value.encode("utf-8"), key.encode("utf-8"))
        return PREFIX + base64.urlsafe_b64encode(key_id + nonce + sealed).decode()

    def decrypt(self, key: str, stored: str) -> str | None:
        """The plaintext, or None if no configured key opens it for this storage key."""
        if not stored.startswith(PREFIX):
            return None
        try:
            raw = base64.urlsafe_b64decode(stored[len(PREFIX):])
        except (binascii.Error, ValueError):
            return None
        aead = self._read.get(raw[:4])
        if aead is None or len(raw) < 4 + 12 + 16:
            return None
        try:
            return aead.decrypt(raw[4:16], raw[16:], key.encode("utf-8")).decode("utf-8")
        except (InvalidTag, UnicodeDecodeError):
            return None

    def get(self, key: str) -> Entry | None:
        entry = self.inner.get(key)
        if entry is None:
            return None
        # "" is what every layer above treats as unreadable (it deletes the entry).
        return Entry(self.decrypt(key, entry.value) or "", entry.version)

    def version(self, key: str) -> Hashable | None:
        return self.inner.version(key)

    def versions_of(self, reads: Sequence[tuple[Store, str]]) -> list[Hashable | None]:
        # Versions are the inner stores': read them there, together where they can be.
        return self.inner.versions_of(
            [(store.inner if isinstance(store, EncryptedStore) else store, key)
             for store, key in reads])

    def set(self, key: str, value: str) -> None:
        self.inner.set(key, self.encrypt(key, value))

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def lock(self, key: str) -> contextlib.AbstractContextManager[object]:
        return self.inner.lock(key)

    def ready(self) -> None:
        self.inner.ready()
