"""Signing keys and JWTs of the stand-in: JWKS entries, signing, and checking what comes back.

``_verify_bearer`` checks an access token presented to an API stand-in. Client assertions sent
to /token are checked by ``_check_client_assertion`` (a ``private_key_jwt`` signed by a
registered certificate, the way Entra checks it), ``_check_strict_assertion`` (the same, by the
rules of OpenID Connect Core 1.0 section 9 and RFC 7523, for the strict ``/oidc`` mode) and
``_verify_federated`` (a token of a trusted issuer, for federated identity credentials).
``ExternalIssuer`` is such an issuer, made by tests. None of them knows about the rest of the
stand-in: the caller passes the keys, the clock reading and what to expect.

Errors (all ``invalid_client``, 401): malformed assertion 50027 (UNCONFIRMED), unknown key or
bad signature of a certificate assertion 700027, expired 700024, audience 700023 (UNCONFIRMED),
iss/sub 700021; federated token: key not in the issuer's keys 7000272, bad signature 7000274
(text UNCONFIRMED).
"""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa

from .model import CLOCK_SKEW, TOKEN_EXCHANGE_AUDIENCE, OAuthError, _Client, _TokenRejected


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


class ExternalIssuer:
    """An external token issuer that the stand-in trusts, like a Kubernetes cluster's service
    account issuer or GitHub Actions: made by ``StandIn.external_issuer(url)``.

    It signs with its own RSA key (RS256, with a ``kid``); the stand-in knows its public key
    as Entra knows an issuer's keys from its discovery document. ``mint`` makes the tokens a
    workload would present as a federated client assertion."""

    def __init__(self, url: str, key: _SigningKey, clock: Callable[[], float]) -> None:
        self.url = url
        self._key = key
        self._clock = clock  # the stand-in's clock, so clock_offset moves these tokens too

    @property
    def kid(self) -> str:
        return self._key.kid

    def jwks(self) -> dict[str, Any]:
        """The issuer's JSON Web Key Set, as its ``jwks_uri`` would publish it."""
        entry = self._key.jwk(self.url)
        del entry["issuer"]  # an Entra-only field
        return {"keys": [entry]}

    def mint(self, subject: str, audience: str = TOKEN_EXCHANGE_AUDIENCE, lifetime: int = 3600,
             **claims: Any) -> str:
        """A signed token for ``subject``. ``lifetime`` may be negative (an expired token:
        issued an hour before it expired). ``claims`` are added, and override the defaults."""
        now = int(self._clock())
        issued = now if lifetime > 0 else now + lifetime - 3600
        body: dict[str, Any] = {"iss": self.url, "sub": subject, "aud": audience,
                                "iat": issued, "nbf": issued, "exp": now + lifetime,
                                "jti": str(uuid.uuid4())}
        body.update(claims)
        return self._key.sign(body)

    def _public_keys(self) -> dict[str, Any]:
        return {self._key.kid: self._key.public_key()}

    def __repr__(self) -> str:
        return f"ExternalIssuer({self.url!r})"


def _thumbprint(cert: x509.Certificate) -> str:
    """A certificate's SHA-256 thumbprint, base64url without padding (``x5t#S256``)."""
    return _b64url(cert.fingerprint(hashes.SHA256()))


def _malformed(detail: str = "") -> OAuthError:
    # UNCONFIRMED code number.
    return OAuthError("invalid_client", 50027, f"JWT token is invalid or malformed.{detail}",
                      status=401)


def _unverified(assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of a JWT, unverified; else ``_malformed``."""
    try:
        header = jwt.get_unverified_header(assertion)
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise _malformed() from None
    return header, claims


def _decode(token: str, key: Any, alg: str) -> dict[str, Any]:
    """The claims of a JWT whose signature ``key`` verifies; the claims are checked by the
    caller, which knows which error each failure is."""
    return jwt.decode(token, key, algorithms=[alg],
                      options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                               "verify_aud": False, "verify_iss": False})


def _check_lifetime(claims: Mapping[str, Any], now: float) -> None:
    """Entra's check of an assertion's ``exp`` (and ``nbf`` when present), with its 5 minutes
    of leeway: else AADSTS700024."""
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if not isinstance(exp, int | float) or exp < now - CLOCK_SKEW or (
            isinstance(nbf, int | float) and nbf > now + CLOCK_SKEW):
        raise OAuthError("invalid_client", 700024,
                         "Client assertion is not within its valid time range. Current time: "
                         f"{datetime.fromtimestamp(now, UTC).isoformat()}, expiry "
                         f"time of assertion {exp}.", status=401)


def _check_client_assertion(assertion: str, client: _Client, *, token_url: str,
                            now: float) -> x509.Certificate:
    """Check a client assertion sent to ``token_url`` as Entra does; returns the registered
    certificate that signed it, else ``OAuthError`` (invalid_client)."""
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        raise _malformed() from None
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
        claims = _decode(assertion, cert.public_key(), alg)
    except jwt.InvalidSignatureError:
        raise OAuthError("invalid_client", 700027,
                         "Client assertion failed signature validation.", status=401) from None
    except jwt.PyJWTError:
        raise _malformed() from None
    # No nbf is fine (MSAL sends none); the same jti may be reused while valid (MSAL does).
    _check_lifetime(claims, now)
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
    return cert


# private_key_jwt: asymmetric algorithms only (HS* would be client_secret_jwt, not offered).
_STRICT_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
                "ES512")


def _named_certs(header: Mapping[str, Any], client: _Client) -> list[x509.Certificate]:
    """The registered certificates a JWS header names by ``x5t#S256``, ``x5t`` or ``kid``."""
    out: list[x509.Certificate] = []
    for name, certs in (("x5t#S256", client.certs_sha256), ("x5t", client.certs_sha1)):
        value = header.get(name)
        if isinstance(value, str):
            cert = certs.get(value.rstrip("=").replace("+", "-").replace("/", "_"))
            if cert is not None:
                out.append(cert)
    kid = header.get("kid")
    if isinstance(kid, str) and kid:
        for cert in list(client.certs_sha256.values()):  # a copy: others may register
            names = {_thumbprint(cert), _b64url(cert.fingerprint(hashes.SHA1()))}
            names |= {cert.fingerprint(h).hex() for h in (hashes.SHA1(), hashes.SHA256())}
            if kid.rstrip("=") in names or kid.lower() in names:
                out.append(cert)
    return out


def _check_strict_assertion(assertion: str, client: _Client, *, audiences: set[str],
                            now: float) -> tuple[x509.Certificate, dict[str, Any]]:
    """Check a ``private_key_jwt`` assertion by OpenID Connect Core 1.0 section 9 and RFC 7523
    section 3: signed by a registered certificate (named by ``x5t#S256``, ``x5t`` or ``kid``,
    else each is tried); ``iss`` = ``sub`` = the client id; ``aud`` one of ``audiences`` (the
    token endpoint URL or the issuer identifier); ``exp`` required and not passed; ``jti``
    required. Returns the certificate and the claims (the caller enforces single use of the
    ``jti``); else ``OAuthError`` (invalid_client, 401; no Entra code: the strict mode answers
    RFC 6749 error JSON)."""

    def refuse(message: str) -> OAuthError:
        return OAuthError("invalid_client", 0, message, status=401)

    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        raise refuse("The client assertion is not a valid JWT.") from None
    alg = header.get("alg")
    if alg not in _STRICT_ALGS:
        raise refuse(f"Client assertion algorithm {alg!r} is not allowed for private_key_jwt.")
    named = _named_certs(header, client)
    candidates = named + [c for c in list(client.certs_sha256.values()) if c not in named]
    found: tuple[x509.Certificate, dict[str, Any]] | None = None
    for cert in candidates:
        try:
            found = cert, _decode(assertion, cert.public_key(), alg)
            break
        except (jwt.InvalidSignatureError, jwt.InvalidKeyError):
            continue  # not this certificate (or not this kind of key)
        except jwt.PyJWTError:
            raise refuse("The client assertion is not a valid JWT.") from None
    if found is None:
        raise refuse("The client assertion signature does not verify with any key registered "
                      "for the client.")
    cert, claims = found
    if claims.get("iss") != client.client_id or claims.get("sub") != client.client_id:
        raise refuse("The client assertion's iss and sub must both be the client_id.")
    aud = claims.get("aud")
    if not set(aud if isinstance(aud, list) else [aud]) & audiences:
        raise refuse("The client assertion's aud must be the token endpoint URL or the "
                     "issuer identifier.")
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if not isinstance(exp, int | float):
        raise refuse("The client assertion has no exp.")
    if exp < now - CLOCK_SKEW or (isinstance(nbf, int | float) and nbf > now + CLOCK_SKEW):
        raise refuse("The client assertion is expired or not yet valid.")
    if not isinstance(claims.get("jti"), str) or not claims["jti"]:
        raise refuse("The client assertion has no jti.")
    return cert, claims


def _verify_federated(assertion: str, header: Mapping[str, Any], keys: Mapping[str, Any],
                      issuer: str, now: float) -> dict[str, Any]:
    """Verify a federated token with its trusted issuer's public keys (``kid`` -> key) and
    check its lifetime; returns its claims, else ``OAuthError`` (invalid_client, 401)."""
    kid = header.get("kid")
    key = keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise OAuthError("invalid_client", 7000272,
                         f"The certificate with identifier {kid} used to sign the federated "
                         f"credential could not be found in the metadata of identity provider "
                         f"{issuer}. Please validate that your Identity Provider's metadata "
                         "exposes the key used to sign the incoming token.", status=401)
    alg = header.get("alg")
    if alg not in ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"):
        raise _malformed(f" alg {alg!r}.")
    try:
        claims = _decode(assertion, key, alg)
    except jwt.InvalidSignatureError:
        # Text UNCONFIRMED (the code is Entra's ClientAssertionContainsInvalidSignature).
        raise OAuthError("invalid_client", 7000274,
                         "Key was found, but use of the key to verify the signature failed.",
                         status=401) from None
    except jwt.PyJWTError:
        raise _malformed() from None
    _check_lifetime(claims, now)
    return claims
