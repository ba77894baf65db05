"""What the credential tests make at test time (keys, certificates, federated tokens) and the
stand-in registrations that go with each kind: the project itself holds no secret material."""

from __future__ import annotations

import base64
import datetime
import os
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from {{ cookiecutter.package_name }}.config import DEFAULTS

from devprovider import DEFAULT_USERS
from tests.conftest import CLIENT_ID, AppUnderTest, page_of
from tests.test_web_flow import expire_access_tokens, sign_in

ALICE, BOB = DEFAULT_USERS[0], DEFAULT_USERS[1]
K8S_ISSUER = "https://oidc.kubernetes.test/cluster-1"
EXCHANGE = "api://AzureADTokenExchange"
# The user-assigned managed identity the tests' app registration trusts.
MANAGED_IDENTITY_CLIENT_ID = "6e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b"
OIDC_APP = bool(DEFAULTS.oidc_authority)


_KEYS: list[rsa.RSAPrivateKey] = []


def rsa_key(slot: int) -> rsa.RSAPrivateKey:
    """One RSA key per slot for the whole run: generating one costs tens of milliseconds."""
    while len(_KEYS) <= slot:
        _KEYS.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return _KEYS[slot]


@dataclass
class Cert:
    pem: str  # the certificate alone, as registered with the app
    thumbprint: str  # SHA-256, base64url: how the stand-in's log names it
    pem_file: Path  # certificate, chain and key in one PEM file
    cert_file: Path  # certificate (and chain) only
    key_file: Path
    pfx_file: Path  # PKCS#12 with PFX_PASSWORD


PFX_PASSWORD = "pfx-password-for-tests"


def make_cert(folder: Path, name: str, *, slot: int = 0, days: float = 365,
              issuer: tuple[rsa.RSAPrivateKey, x509.Certificate] | None = None) -> Cert:
    """A certificate for `name` valid for `days` from now (negative: expired), self-signed or
    issued by `issuer` (a CA's key and certificate, which then follows it as its chain)."""
    key = rsa_key(slot)
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    signer_key, signer_name = (issuer[0], issuer[1].subject) if issuer else (key, subject)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(signer_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1) + datetime.timedelta(days=min(
                days, 0)))
            .not_valid_after(now + datetime.timedelta(days=days))
            .sign(signer_key, hashes.SHA256()))
    chain = [issuer[1]] if issuer else []
    pem = cert.public_bytes(serialization.Encoding.PEM)
    chain_pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.{ext}" for ext in ("pem", "crt", "key", "pfx")]
    paths[0].write_bytes(pem + chain_pem + key_pem)
    paths[1].write_bytes(pem + chain_pem)
    paths[2].write_bytes(key_pem)
    paths[3].write_bytes(pkcs12.serialize_key_and_certificates(
        name.encode(), key, cert, chain or None,
        serialization.BestAvailableEncryption(PFX_PASSWORD.encode())))
    thumbprint = base64.urlsafe_b64encode(cert.fingerprint(hashes.SHA256())).rstrip(b"=")
    return Cert(pem.decode(), thumbprint.decode(), *paths)


def make_ca(name: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa_key(9)
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def replace_file(path: Path, content: str) -> None:
    """Replace a file the way kubelet and secret mounts do: a new file renamed over the old."""
    fresh = path.with_name(path.name + ".new")
    fresh.write_text(content)
    os.replace(fresh, path)


def auth_log(app: AppUnderTest, grant: str | None = None) -> list[tuple[str, str]]:
    """(method, credential) of each client authentication at the stand-in, oldest first."""
    return [(r.method, r.credential) for r in app.standin.client_auth_log
            if grant is None or r.grant_type == grant]


def api_page(app: AppUnderTest) -> str | None:
    """The page of the API consented at sign-in, if the app has one."""
    name = app.services.settings.sign_in_api
    return page_of(name) if name else None


def a_token_request_after_sign_in(app: AppUnderTest, browser: Any) -> None:
    """Make the app call the token endpoint again for the signed-in user: a refresh for the
    API consented at sign-in, or (an app without one) another user's sign-in."""
    page = api_page(app)
    if page is None:
        sign_in(app, app.browser(), BOB)
        return
    expire_access_tokens(app, ALICE)
    assert browser.get(app.url(page)).status_code == 200


def federated(app: AppUnderTest, subject: str) -> Any:
    """A trusted external issuer (a Kubernetes cluster) and a federated credential of the
    app for `subject`."""
    issuer = app.standin.external_issuer(K8S_ISSUER)
    app.standin.add_federated_credential(CLIENT_ID, issuer=K8S_ISSUER, subject=subject,
                                         audience=EXCHANGE)
    return issuer


KINDS = ["secret", "secret_file", "certificate_pem", "certificate_pfx", "certificate_chain",
         "certificate_no_x5c", "token_file", "managed_identity", "callable"]


@dataclass
class Setup:
    env: dict[str, str]
    after_start: Callable[[AppUnderTest], None]
    expected: Callable[[AppUnderTest], tuple[str, str]]  # (method, credential) in the log


def credential_setup(kind: str, folder: Path, monkeypatch: pytest.MonkeyPatch) -> Setup:
    """The settings and stand-in registrations for one kind of credential."""
    folder.mkdir(parents=True, exist_ok=True)
    no_secret = {"CLIENT_SECRET": ""}
    if kind == "secret":
        return Setup({}, lambda app: None, lambda app: (
            "secret", app.standin.client_secret_id(CLIENT_ID, app.env["CLIENT_SECRET"])))
    if kind == "secret_file":
        value = secrets.token_urlsafe(24)
        path = folder / "client-secret"
        path.write_text(value + "\n")

        def register(app: AppUnderTest) -> None:
            app.standin.add_client_secret(CLIENT_ID, value)

        return Setup({**no_secret, "CLIENT_SECRET_FILE": str(path)}, register,
                     lambda app: ("secret", app.standin.client_secret_id(CLIENT_ID, value)))
    if kind.startswith("certificate"):
        ca = make_ca("Contoso CA") if kind == "certificate_chain" else None
        cert = make_cert(folder, "app", issuer=ca)
        env = {**no_secret, "CLIENT_CREDENTIAL": "certificate"}
        if kind == "certificate_pfx":
            env.update(CLIENT_CERTIFICATE_FILE=str(cert.pfx_file),
                       CLIENT_CERTIFICATE_PASSWORD=PFX_PASSWORD)
        else:
            env.update(CLIENT_CERTIFICATE_FILE=str(cert.cert_file),
                       CLIENT_PRIVATE_KEY_FILE=str(cert.key_file))
            env["CLIENT_CERTIFICATE_X5C"] = {"certificate_chain": "chain",
                                             "certificate_no_x5c": "none"}.get(kind, "leaf")
        return Setup(env, lambda app: app.standin.register_client_certificate(CLIENT_ID, cert.pem),
                     lambda app: ("certificate", cert.thumbprint))
    env = {**no_secret, "CLIENT_CREDENTIAL": "assertion"}
    if kind == "managed_identity":
        if OIDC_APP:
            pytest.skip("managed identities sign in to Entra ID only")
        subject: list[str] = []  # the identity's object id, once the stand-in made it

        def identity(app: AppUnderTest) -> None:
            # The app service's user-assigned managed identity, trusted by the app
            # registration. MSAL finds App Service by these two variables (never
            # IDENTITY_SERVER_THUMBPRINT, which means Service Fabric).
            mi = app.standin.add_managed_identity(MANAGED_IDENTITY_CLIENT_ID)
            app.standin.add_federated_credential(
                CLIENT_ID, issuer=app.standin.issuer, subject=mi.object_id, audience=EXCHANGE)
            monkeypatch.setenv("IDENTITY_ENDPOINT", app.standin.identity_endpoint)
            monkeypatch.setenv("IDENTITY_HEADER", app.standin.identity_header)
            subject.append(mi.object_id)

        return Setup({**env, "CLIENT_ASSERTION_MANAGED_IDENTITY": MANAGED_IDENTITY_CLIENT_ID},
                     identity,
                     lambda app: ("federated", f"{app.standin.issuer}|{subject[0]}"))
    token = folder / "azure-identity-token"
    token.write_text("not yet")
    if kind == "token_file":
        env["CLIENT_ASSERTION_FILE"] = str(token)
    else:
        module = folder / "team_credentials.py"
        module.write_text("from pathlib import Path\n\n\ndef signed_assertion() -> str:\n"
                          f"    return Path({str(token)!r}).read_text()\n")
        monkeypatch.syspath_prepend(str(folder))
        sys.modules.pop("team_credentials", None)
        env["CLIENT_ASSERTION_CALLABLE"] = "team_credentials:signed_assertion"

    def trust(app: AppUnderTest) -> None:
        token.write_text(federated(app, "system:serviceaccount:web:portal").mint(
            "system:serviceaccount:web:portal", audience=EXCHANGE))

    return Setup(env, trust, lambda app: ("federated",
                                          f"{K8S_ISSUER}|system:serviceaccount:web:portal"))


def own_kind() -> str:
    """The entry of KINDS this project was generated for (config.py's baked credential)."""
    baked = DEFAULTS.credential
    kind = baked.get("CLIENT_CREDENTIAL", "secret")
    if kind == "certificate":
        if baked.get("CLIENT_CERTIFICATE_FILE", "").lower().endswith((".pfx", ".p12")):
            return "certificate_pfx"
        return {"chain": "certificate_chain", "none": "certificate_no_x5c"}.get(
            baked.get("CLIENT_CERTIFICATE_X5C", "leaf"), "certificate_pem")
    if kind == "assertion":
        if "CLIENT_ASSERTION_MANAGED_IDENTITY" in baked:  # empty: named where deployed
            return "managed_identity"
        return "callable" if baked.get("CLIENT_ASSERTION_CALLABLE") else "token_file"
    return "secret_file" if baked.get("CLIENT_SECRET_FILE") else "secret"


def signs_in_and_calls_an_api(make_app: Callable[..., AppUnderTest], folder: Path,
                              monkeypatch: pytest.MonkeyPatch, kind: str) -> AppUnderTest:
    """Start the app with a credential of `kind`; a user signs in and the app calls the token
    endpoint again; every token request used that credential."""
    setup = credential_setup(kind, folder, monkeypatch)
    app = make_app(**setup.env)
    setup.after_start(app)
    app.standin.reset_counts()
    expected = setup.expected(app)
    browser = app.browser()
    sign_in(app, browser, ALICE)
    assert auth_log(app, "authorization_code") == [expected]
    a_token_request_after_sign_in(app, browser)
    assert set(auth_log(app)) == {expected}
    return app
