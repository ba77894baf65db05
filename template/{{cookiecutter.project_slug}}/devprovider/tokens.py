"""Signing keys and JWTs of the stand-in: JWKS entries, signing, and checking what comes back.

``_verify_bearer`` checks an access token presented to an API stand-in; ``_check_client_assertion``
checks a client assertion (``private_key_jwt``) sent to /token. Neither knows about the rest of
the stand-in: the caller passes the key, the clock reading and what to expect.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, cast

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from .model import CLOCK_SKEW, OAuthError, _Client, _TokenRejected


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_b64(n: int) -> str:
    return _b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))


class _SigningKey:
    """An RSA key pair (RS256) and its key id (``kid``)."""

    _shared: dict[str, _SigningKey] = {}

    def __init__(self) -> None:
        self._private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = _b64url(secrets.token_bytes(18))

    @classmethod
    def shared(cls, slot: str) -> _SigningKey:
        """One key per ``slot`` for the whole process: a test suite starts a stand-in per test,
        and generating two RSA keys each time would cost a fifth of a second per test."""
        if slot not in cls._shared:
            cls._shared[slot] = cls()
        return cls._shared[slot]

    def public_key(self) -> rsa.RSAPublicKey:
        return self._private.public_key()

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._private, algorithm="RS256",
                          headers={"kid": self.kid, "typ": "JWT"})

    def jwk(self, issuer: str) -> dict[str, Any]:
        """The key's JWKS entry (Entra adds the ``issuer``)."""
        pub = self.public_key().public_numbers()
        return {"kty": "RSA", "use": "sig", "kid": self.kid, "alg": "RS256",
                "n": _int_b64(pub.n), "e": _int_b64(pub.e), "issuer": issuer}


def _verify_bearer(token: str, key: _SigningKey, *, now: float, audiences: Iterable[str],
                   issuers: set[str]) -> dict[str, Any]:
    """The claims of an access token signed with ``key``; else ``_TokenRejected`` (401)."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise _TokenRejected(401, "invalid_token", "The token is malformed.") from None
    if header.get("kid") != key.kid:
        raise _TokenRejected(401, "invalid_token", "The signing key is not trusted.")
    try:
        claims = jwt.decode(token, key.public_key(), algorithms=["RS256"],
                            options={"verify_exp": False, "verify_nbf": False,
                                     "verify_iat": False, "verify_aud": False,
                                     "verify_iss": False})
    except jwt.InvalidSignatureError:
        raise _TokenRejected(401, "invalid_token", "The token signature is invalid.") from None
    except jwt.PyJWTError:
        raise _TokenRejected(401, "invalid_token", "The token is malformed.") from None
    if not isinstance(claims.get("exp"), int) or claims["exp"] <= now:
        raise _TokenRejected(401, "invalid_token",
                             "Lifetime validation failed, the token is expired.")
    if isinstance(claims.get("nbf"), int) and claims["nbf"] > now + CLOCK_SKEW:
        raise _TokenRejected(401, "invalid_token", "The token is not yet valid.")
    if claims.get("aud") not in set(audiences):
        raise _TokenRejected(401, "invalid_token", "The audience is invalid.")
    if claims.get("iss") not in issuers:
        raise _TokenRejected(401, "invalid_token", "The issuer is invalid.")
    return claims


def _check_client_assertion(assertion: str, client: _Client, *, token_url: str,
                            now: float) -> None:
    """Check a client assertion sent to ``token_url``; else ``OAuthError`` (invalid_client)."""
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        # UNCONFIRMED code number.
        raise OAuthError("invalid_client", 50027, "JWT token is invalid or malformed.",
                         status=401) from None
    alg = header.get("alg")
    if alg == "PS256":
        thumb, certs = header.get("x5t#S256"), client.certs_sha256
    elif alg == "RS256":
        thumb, certs = header.get("x5t"), client.certs_sha1
    else:
        raise OAuthError("invalid_client", 50027, f"JWT token is invalid: alg {alg!r}.",
                         status=401)
    # MSAL pads its base64url thumbprints ("...="); Entra accepts either form.
    key = str(thumb or "").rstrip("=").replace("+", "-").replace("/", "_")
    cert = certs.get(key)
    if cert is None:
        raise OAuthError("invalid_client", 700027,
                         "The certificate with identifier used to sign the client assertion "
                         "is not registered on application. [Reason - The key was not found., "
                         f"Thumbprint of key used by client: '{thumb}']", status=401)
    try:
        claims = jwt.decode(assertion, cast(Any, cert.public_key()), algorithms=[alg],
                            options={"verify_exp": False, "verify_nbf": False,
                                     "verify_iat": False, "verify_aud": False,
                                     "verify_iss": False})
    except jwt.InvalidSignatureError:
        raise OAuthError("invalid_client", 700027,
                         "Client assertion failed signature validation.", status=401) from None
    except jwt.PyJWTError:
        raise OAuthError("invalid_client", 50027, "JWT token is invalid or malformed.",
                         status=401) from None
    exp, nbf = claims.get("exp"), claims.get("nbf")
    # No nbf is fine (MSAL sends none); the same jti may be reused while valid (MSAL does).
    if not isinstance(exp, int | float) or exp < now - CLOCK_SKEW or (
            isinstance(nbf, int | float) and nbf > now + CLOCK_SKEW):
        raise OAuthError("invalid_client", 700024,
                         "Client assertion is not within its valid time range. Current time: "
                         f"{datetime.fromtimestamp(now, UTC).isoformat()}, expiry "
                         f"time of assertion {exp}.", status=401)
    aud = claims.get("aud")
    if (aud if isinstance(aud, list) else [aud]).count(token_url) == 0:
        # Code 700023 is as reported in the wild (UNCONFIRMED).
        raise OAuthError("invalid_client", 700023,
                         f"Client assertion audience claim does not match Realm issuer. "
                         f"Expected '{token_url}'.", status=401)
    if claims.get("iss") != client.client_id or claims.get("sub") != client.client_id:
        raise OAuthError("invalid_client", 700021,
                         "Client assertion application identifier doesn't match 'client_id' "
                         "parameter.", status=401)
