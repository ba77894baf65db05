# Managed by the msal-webapp template: regenerate rather than edit (your code goes outside core/).
"""How the app proves its identity to the identity provider: MSAL's `client_credential`.

Three kinds, every one available in every generated app through its settings (see settings.py
and .env.example), so that moving from a secret to a certificate needs no new project:

- `secret`: a client secret from an environment variable, or from a file (a secret mounted by an
  orchestrator), read again whenever the file changes;
- `certificate`: a private key and its certificate (PEM files, or one PKCS#12 file), loaded and
  decrypted once at start-up. MSAL gets the loaded key object: given a PEM string it parses the
  key again for every assertion it signs (tens of milliseconds), and given a PKCS#12 path it
  decrypts the file in every client constructor, which this app builds per request;
- `assertion`: a signed client assertion read fresh when MSAL needs one: a federated token file
  (Kubernetes workload identity), a managed identity's token, or a function of the user's.

Several credentials can be configured, in order (`Credentials`). When the provider rejects the
one in use, `Credentials.rejected` moves to the next, and the caller rebuilds its MSAL client and
tries once more. Values never reach a log: credentials are named by their `label`.
"""

from __future__ import annotations

import base64
import importlib
import inspect
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
import msal
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from .errors import CredentialUnavailable, loggable

log = logging.getLogger(__name__)

KINDS = ("secret", "certificate", "assertion")
X5C_MODES = ("leaf", "chain", "none")

# Entra's answers that mean "this credential is no good" (AADSTS codes in `error_codes`; never
# the description text, which Entra rewords):
# - 700027 key not registered or signature invalid, 700024 assertion outside its time range,
#   7000274 assertion signature invalid, 7000277 / 7000214 certificate revoked, 1000502
#   certificate outside its validity window: the list Microsoft.Identity.Web rotates on;
# - 7000215 wrong secret, 7000222 expired secret: Microsoft.Identity.Web lists these as errors
#   NOT to retry on (a configuration error); this app rotates on them by its own choice, so
#   that a second secret takes over when the first is removed or expires;
# - 700211 / 700212 / 700213: no federated credential matches the assertion's issuer, audience or
#   subject; 70025: the app has no federated credential; 7000272: the issuer's signing key is
#   unknown; 700023: assertion audience; 70021: no federated identity record matches (the
#   generic form of 700211-700213).
ROTATE_ON_ERROR_CODES = frozenset(
    {700027, 700024, 7000274, 7000277, 7000214, 1000502, 7000215, 7000222, 700211, 700212,
     700213, 700023, 70025, 7000272, 70021})

# Entra's audience for federated tokens of managed identities, per cloud (by authority host, with
# the hosts MSAL knows for each cloud). USNat and USSec from Entra's page on trusting a managed
# identity; France (Bleu) and Germany (Delos) from MSAL.NET's cloud table. UNCONFIRMED: the
# Singapore cloud (login.sovcloud-identity.sg) has no audience there; it gets the public one
# unless CLIENT_ASSERTION_AUDIENCE names it.
TOKEN_EXCHANGE_AUDIENCES = {
    "login.microsoftonline.us": "api://AzureADTokenExchangeUSGov",
    "login.usgovcloudapi.net": "api://AzureADTokenExchangeUSGov",
    "login.chinacloudapi.cn": "api://AzureADTokenExchangeChina",
    "login.partner.microsoftonline.cn": "api://AzureADTokenExchangeChina",
    "login.microsoftonline.eaglex.ic.gov": "api://AzureADTokenExchangeUSNat",
    "login.microsoftonline.microsoft.scloud": "api://AzureADTokenExchangeUSSec",
    "login.sovcloud-identity.fr": "api://AzureADTokenExchangeFrance",
    "login.sovcloud-identity.de": "api://AzureADTokenExchangeGermany",
}
PUBLIC_TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"

# A certificate this close to its expiry is worth a warning at every start.
EXPIRY_WARNING_SECONDS = 30 * 24 * 3600
# Lifetime of the assertions this app signs itself (MSAL's own is 10 minutes too).
ASSERTION_LIFETIME_SECONDS = 600

_PEM_KEY = re.compile(rb"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----.+?-----END (?:[A-Z]+ )?PRIVATE "
                      rb"KEY-----", re.DOTALL)
_CALLABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*:"
                       r"[A-Za-z_][A-Za-z0-9_]*$")


class CredentialError(ValueError):
    """A credential's settings or files cannot be used (reported at start-up, by variable)."""


@dataclass(frozen=True)
class Certificate:
    """A certificate credential, loaded: its private key object, leaf and chain."""

    key: rsa.RSAPrivateKey
    leaf: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()

    @property
    def thumbprint_sha256(self) -> str:
        """Base64url SHA-256 thumbprint, as in the `x5t#S256` header (for logs)."""
        return _b64url(self.leaf.fingerprint(hashes.SHA256()))

    @property
    def leaf_pem(self) -> str:
        return self.leaf.public_bytes(serialization.Encoding.PEM).decode("ascii")


@dataclass(frozen=True)
class CredentialSettings:
    """One configured credential, as the settings describe it (no value appears in `label`)."""

    number: int  # 1 for the first, as in the variable names (CLIENT_..., CLIENT_2_...)
    kind: str
    variable: str = ""  # the variable that holds or names it, for the label
    secret: str = field(default="", repr=False)
    secret_file: Path | None = None
    certificate: Certificate | None = field(default=None, repr=False)
    certificate_file: Path | None = None
    # What loading the certificate again needs when its files are replaced in place.
    private_key_file: Path | None = None
    certificate_password: str | None = field(default=None, repr=False)
    x5c: str = "leaf"
    assertion_file: Path | None = None
    managed_identity: str | None = None  # "system" or a user-assigned identity's client id
    assertion_audience: str = PUBLIC_TOKEN_EXCHANGE_AUDIENCE
    assertion_callable: str | None = None

    @property
    def label(self) -> str:
        """How logs name it: number, kind and where it comes from, never its value."""
        if self.kind == "secret":
            where = f"file {self.secret_file}" if self.secret_file else self.variable
            return f"credential {self.number} (secret from {where})"
        if self.kind == "certificate" and self.certificate is not None:
            return (f"credential {self.number} (certificate {self.certificate_file}, SHA-256 "
                    f"thumbprint {self.certificate.thumbprint_sha256})")
        if self.assertion_file is not None:
            source = f"federated token file {self.assertion_file}"
        elif self.managed_identity is not None:
            source = ("system-assigned managed identity" if self.managed_identity == "system"
                      else f"managed identity {self.managed_identity}")
        else:
            source = f"function {self.assertion_callable}"
        return f"credential {self.number} (assertion from {source})"


# ------------------------------------------------------------------------------ loading
def load_certificate(certificate_file: Path, private_key_file: Path | None,
                     password: str | None) -> Certificate:
    """Read and decrypt a certificate credential once: a PEM file (the certificate, maybe its
    chain and its key) plus an optional PEM key file, or a PKCS#12 (.pfx/.p12) file."""
    try:
        data = certificate_file.read_bytes()
    except OSError as exc:
        raise CredentialError(f"cannot read {str(certificate_file)!r} ({exc.strerror})") from exc
    secret = password.encode() if password else None
    if b"-----BEGIN" not in data:  # DER: PKCS#12
        if private_key_file is not None:
            raise CredentialError("a PKCS#12 file holds its own private key: remove the "
                                  "private key file setting")
        try:
            key, leaf, extra = pkcs12.load_key_and_certificates(data, secret)
        except ValueError as exc:
            raise CredentialError(f"{str(certificate_file)!r} is not a PKCS#12 file that this "
                                  "password opens (wrong or missing password?)") from exc
        if key is None or leaf is None:
            raise CredentialError(f"{str(certificate_file)!r} must hold a private key and its "
                                  "certificate")
        certs = [leaf, *extra]
    else:
        try:
            certs = x509.load_pem_x509_certificates(data)
        except ValueError as exc:
            raise CredentialError(f"{str(certificate_file)!r} holds no PEM certificate") from exc
        key_data = data
        if private_key_file is not None:
            try:
                key_data = private_key_file.read_bytes()
            except OSError as exc:
                raise CredentialError(f"cannot read {str(private_key_file)!r} "
                                      f"({exc.strerror})") from exc
        block = _PEM_KEY.search(key_data)
        if block is None:
            raise CredentialError("no PEM private key found: set the private key file, or put "
                                  "the key in the certificate file")
        try:
            key = serialization.load_pem_private_key(block.group(0), secret)
        except (ValueError, TypeError) as exc:
            raise CredentialError("the private key cannot be read (encrypted without the right "
                                  "password, or damaged)") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CredentialError("the private key must be RSA (Entra signs and checks RS256/PS256)")
    public = key.public_key().public_numbers()
    leaf = next((c for c in certs if _rsa_numbers(c) == public), None)
    if leaf is None:
        raise CredentialError("no certificate in the file matches the private key")
    return Certificate(key=key, leaf=leaf, chain=tuple(c for c in certs if c is not leaf))


def _rsa_numbers(certificate: x509.Certificate) -> rsa.RSAPublicNumbers | None:
    public = certificate.public_key()
    return public.public_numbers() if isinstance(public, rsa.RSAPublicKey) else None


def check_callable(path: str) -> Callable[..., Any]:
    """Import `package.module:function` (a credential function of the user's)."""
    if not _CALLABLE.match(path):
        raise CredentialError(f"{path!r} is not of the form package.module:function")
    module_name, _, name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CredentialError(f"cannot import {module_name!r} ({exc})") from exc
    function: Any = getattr(module, name, None)
    if not callable(function):
        raise CredentialError(f"{module_name!r} has no function {name!r}")
    return function  # type: ignore[no-any-return]


def token_exchange_audience(authority: str | None) -> str:
    """The audience a managed identity's federated token must have, by cloud."""
    host = (urlsplit(authority).hostname or "").lower() if authority else ""
    return TOKEN_EXCHANGE_AUDIENCES.get(host, PUBLIC_TOKEN_EXCHANGE_AUDIENCE)


def startup_warning(credential: CredentialSettings, now: float) -> tuple[int, str] | None:
    """(log level, message) for a credential that will not work or not for long: a certificate
    that has expired (an error) or expires within 30 days, a system-assigned managed identity
    (warnings)."""
    if credential.managed_identity == "system":
        return logging.WARNING, (
            f"{credential.label}: Entra ID's page 'Configure an application to trust a managed "
            "identity' says only user-assigned managed identities can be used as a federated "
            "credential for apps, system-assigned identities aren't supported; if the token "
            f"exchange is refused, set {credential.variable} to a user-assigned identity's "
            "client id")
    if credential.certificate is None:
        return None
    ends = credential.certificate.leaf.not_valid_after_utc.timestamp()
    if ends <= now:
        return logging.ERROR, (f"{credential.label} EXPIRED on {_iso(ends)}: the identity "
                               "provider refuses it; register a new certificate")
    if ends - now <= EXPIRY_WARNING_SECONDS:
        days = int((ends - now) // 86400)
        return logging.WARNING, (f"{credential.label} expires on {_iso(ends)} (in {days} days): "
                                 "register its successor and add it as the next credential")
    return None


# ------------------------------------------------------------------------------ at run time
class _ChangingFile:
    """A file's content, read again when the file changes (a mounted secret, a projected token).

    Kubernetes replaces such files by swapping a symlink, so `stat` (which follows it) sees a new
    inode or modification time; checking costs a system call, not a read."""

    def __init__(self, path: Path, what: str) -> None:
        self.path, self.what = path, what
        self._stamp: tuple[int, int, int] | None = None
        self._value = ""
        self._lock = threading.Lock()

    def read(self) -> str:
        try:
            info = os.stat(self.path)
            stamp = (info.st_ino, info.st_mtime_ns, info.st_size)
            with self._lock:
                if stamp != self._stamp:
                    self._value = self.path.read_text(encoding="utf-8").strip()
                    self._stamp = stamp
                value = self._value
        except OSError as exc:
            raise CredentialUnavailable(self.what, f"cannot read {self.path} "
                                                   f"({exc.strerror})") from exc
        if not value:
            raise CredentialUnavailable(self.what, f"{self.path} is empty")
        return value


class Credential:
    """A configured credential at run time: what MSAL gets for each client built."""

    def __init__(self, settings: CredentialSettings, client_id: str, http: Any, *,
                 oidc: bool = False) -> None:
        self.settings = settings
        self._client_id = client_id
        self._oidc = oidc
        self._file: _ChangingFile | None = None
        self._function: Callable[..., Any] | None = None
        self._identity: msal.ManagedIdentityClient | None = None
        self._certificate = settings.certificate
        self._certificate_stamp = self._stamp_of_certificate()
        self._certificate_lock = threading.Lock()
        if settings.secret_file is not None:
            self._file = _ChangingFile(settings.secret_file, settings.label)
        elif settings.assertion_file is not None:
            self._file = _ChangingFile(settings.assertion_file, settings.label)
        elif settings.assertion_callable:
            self._function = check_callable(settings.assertion_callable)
        elif settings.managed_identity is not None:
            identity: msal.SystemAssignedManagedIdentity | msal.UserAssignedManagedIdentity = (
                msal.SystemAssignedManagedIdentity() if settings.managed_identity == "system"
                else msal.UserAssignedManagedIdentity(client_id=settings.managed_identity))
            # One per process: it keeps the identity's token until shortly before it expires.
            self._identity = msal.ManagedIdentityClient(identity, http_client=http)

    @property
    def label(self) -> str:
        """How logs name it (a certificate's thumbprint: the one loaded now)."""
        if self._certificate is not None and self._certificate is not self.settings.certificate:
            return replace(self.settings, certificate=self._certificate).label
        return self.settings.label

    def _stamp_of_certificate(self) -> tuple[tuple[int, int, int], ...] | None:
        files = [f for f in (self.settings.certificate_file, self.settings.private_key_file)
                 if f is not None]
        if self.settings.kind != "certificate" or not files:
            return None
        try:
            return tuple((i.st_ino, i.st_mtime_ns, i.st_size) for i in map(os.stat, files))
        except OSError:
            return None

    def certificate(self) -> Certificate:
        """The certificate, loaded again when its files were replaced in place (Key Vault's
        CSI driver, cert-manager): a `stat` per client built, a load only on a change. A file
        that cannot be loaded (half written) keeps the loaded certificate in use."""
        stamp = self._stamp_of_certificate()
        with self._certificate_lock:
            if stamp is not None and stamp != self._certificate_stamp:
                self._certificate_stamp = stamp
                settings = self.settings
                assert settings.certificate_file is not None
                try:
                    self._certificate = load_certificate(
                        settings.certificate_file, settings.private_key_file,
                        settings.certificate_password)
                except CredentialError as exc:
                    log.warning("%s changed but cannot be loaded (%s); the certificate loaded "
                                "before stays in use", settings.certificate_file, exc)
                else:
                    log.info("%s changed: %s in use", settings.certificate_file, self.label)
            certificate = self._certificate
        assert certificate is not None
        return certificate

    def client_credential(self) -> str | dict[str, Any]:
        """MSAL's `client_credential`, for one client (cheap: called per client built)."""
        settings = self.settings
        if settings.kind == "secret":
            return self._file.read() if self._file else settings.secret
        if settings.kind == "certificate":
            certificate = self.certificate()
            if settings.x5c == "leaf" and not self._oidc:
                # MSAL computes both thumbprints from the certificate, signs PS256 with
                # `x5t#S256` and sends the certificate as `x5c`. It reuses one signed assertion
                # for all of a client's token requests (up to 9 minutes), which Entra accepts.
                return {"private_key": certificate.key,
                        "public_certificate": certificate.leaf_pem}
            # Signed here, anew for every token request: for the `x5c` choices MSAL does not
            # offer, and for other OpenID Connect providers, which may refuse an assertion's
            # `jti` seen before (RFC 7523 section 3; Keycloak does) where MSAL's would repeat it.
            return {"client_assertion": self._signed_assertion}
        return {"client_assertion": self._external_assertion}

    def _signed_assertion(self, context: Mapping[str, str]) -> str:
        """A private-key JWT signed here with a `jti` of its own: the certificate as MSAL
        sends it (`leaf`), with its chain (for subject-name/issuer authentication), or none.
        MSAL passes the context."""
        certificate = self.certificate()
        headers: dict[str, Any] = {"x5t#S256": certificate.thumbprint_sha256}
        if self.settings.x5c != "none":
            sent = (certificate.leaf, *(certificate.chain if self.settings.x5c == "chain"
                                        else ()))
            headers["x5c"] = [base64.b64encode(c.public_bytes(serialization.Encoding.DER))
                              .decode("ascii") for c in sent]
        now = int(time.time())
        claims = {"aud": context["token_endpoint"], "iss": self._client_id,
                  "sub": self._client_id, "jti": str(uuid.uuid4()), "iat": now,
                  "exp": now + ASSERTION_LIFETIME_SECONDS}
        return jwt.encode(claims, certificate.key, algorithm="PS256", headers=headers)

    def _external_assertion(self) -> str:
        """A federated token, read when MSAL is about to call the token endpoint."""
        if self._file is not None:
            return self._file.read()
        if self._identity is not None:
            try:
                result = self._identity.acquire_token_for_client(
                    resource=self.settings.assertion_audience)
            except Exception as exc:  # MSAL raises what its HTTP client raises
                raise CredentialUnavailable(self.label, f"managed identity endpoint: {exc}"
                                            ) from exc
            if "access_token" not in result:
                raise CredentialUnavailable(self.label, "managed identity answered "
                                            f"{result.get('error')}: "
                                            f"{result.get('error_description', '')}")
            return str(result["access_token"])
        assert self._function is not None
        try:
            value = self._function()
        except Exception as exc:  # the user's function: any failure means "no assertion"
            raise CredentialUnavailable(self.label, f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(value, str | bytes) or not value:
            raise CredentialUnavailable(self.label, "the function returned no assertion")
        return value.decode("ascii") if isinstance(value, bytes) else value


class Credentials:
    """The configured credentials, in order, and the one in use."""

    def __init__(self, configured: Sequence[CredentialSettings], client_id: str, http: Any, *,
                 oidc: bool) -> None:
        if not configured:
            raise CredentialError("no credential is configured")
        self._all = [Credential(c, client_id, http, oidc=oidc) for c in configured]
        self._oidc = oidc
        self._index = 0
        self._lock = threading.Lock()

    def current(self) -> tuple[int, Credential]:
        index = self._index
        return index, self._all[index]

    def label(self, index: int) -> str:
        return self._all[index].label

    def is_rejection(self, result: Mapping[str, Any] | None) -> bool:
        """Whether an MSAL result says the provider refused the app's credential."""
        if not result or result.get("error") != "invalid_client":
            return False
        if self._oidc:  # standard providers send no error codes
            return True
        codes = result.get("error_codes") or []
        return any(code in ROTATE_ON_ERROR_CODES for code in codes if isinstance(code, int))

    def rejected(self, index: int, result: Mapping[str, Any]) -> bool:
        """Credential `index` was refused: move to the next one. True if the caller should try
        again (with the credential now current); False when there is no other to try."""
        codes = loggable(",".join(str(c) for c in result.get("error_codes") or []) or "no code")
        error = loggable(result.get("error"))  # the provider's words, into the log
        with self._lock:
            failed = self._all[index]
            if index != self._index:  # another request switched already: use the new one
                return True
            if len(self._all) == 1:
                log.error("the identity provider refused %s (%s, %s); no other credential is "
                          "configured", failed.label, error, codes)
                return False
            # Past the last, back to the first: it may have been fixed in place (a replaced
            # secret file, a re-registered certificate) in the meantime.
            self._index = (index + 1) % len(self._all)
            now = self._all[self._index]
        log.error("the identity provider refused %s (%s, %s); switching to %s", failed.label,
                  error, codes, now.label)
        return True


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


def accepts_no_arguments(function: Callable[..., Any]) -> bool:
    """Whether `function` can be called without arguments (checked at start-up)."""
    try:
        inspect.signature(function).bind()
    except TypeError:
        return False
    except ValueError:  # no signature to inspect (some builtins): let the call tell
        return True
    return True
