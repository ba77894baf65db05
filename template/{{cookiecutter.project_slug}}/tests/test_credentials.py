"""Every credential kind, end to end against the stand-in, in whichever framework serves the app.

The stand-in checks what it receives as Entra ID does (the secret; a private-key JWT signed by a
registered certificate; a federated token from a trusted issuer with the expected subject and
audience) and logs which credential each token request used (`client_auth_log`). Certificates,
keys and federated tokens are made here at test time: the project holds no secret material.
"""

from __future__ import annotations

import base64
import datetime
import logging
import os
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from {{ cookiecutter.package_name }}.config import DEFAULTS
from {{ cookiecutter.package_name }}.core.auth import CREDENTIAL_REJECTED
from {{ cookiecutter.package_name }}.core.credentials import Credential
from {{ cookiecutter.package_name }}.core.identity import MsalClients
from {{ cookiecutter.package_name }}.core.settings import SettingsError, load_settings

from devprovider import DEFAULT_USERS
from tests.conftest import CLIENT_ID, AppUnderTest, page_of
from tests.conftest import environment_for_settings_tests as valid_env
from tests.test_web_flow import assert_error_page, expire_access_tokens, sign_in, visit

ALICE, BOB = DEFAULT_USERS[0], DEFAULT_USERS[1]
K8S_ISSUER = "https://oidc.kubernetes.test/cluster-1"
EXCHANGE = "api://AzureADTokenExchange"
OIDC_APP = bool(DEFAULTS.oidc_authority)


# ------------------------------------------------------------------------------ material
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


# ------------------------------------------------------------------------------ settings
def problems(env: dict[str, str]) -> str:
    with pytest.raises(SettingsError) as caught:
        load_settings(env, DEFAULTS)
    return "\n".join(caught.value.problems)


def test_credential_settings_name_the_variable_and_the_fix(tmp_path: Path) -> None:
    cert = make_cert(tmp_path, "app")
    other = make_cert(tmp_path, "other", slot=1)
    token = tmp_path / "token"
    token.write_text("header.payload.signature")
    certificate = {"CLIENT_CREDENTIAL": "certificate", "CLIENT_SECRET": ""}
    assertion = {"CLIENT_CREDENTIAL": "assertion", "CLIENT_SECRET": ""}
    # Paths baked in config.py apply while the environment names none: then they are read.
    baked = DEFAULTS.credential
    cases: list[tuple[dict[str, str], str]] = [
        ({"CLIENT_CREDENTIAL": "password"}, "CLIENT_CREDENTIAL='password' is not one of secret, "
                                            "certificate, assertion"),
        ({"CLIENT_SECRET": ""}, "CLIENT_SECRET_FILE: cannot read" if baked.get(
            "CLIENT_SECRET_FILE") else "CLIENT_SECRET is missing: set CLIENT_SECRET or "
                                       "CLIENT_SECRET_FILE"),
        (certificate, "CLIENT_CERTIFICATE_FILE: cannot read" if baked.get(
            "CLIENT_CERTIFICATE_FILE") else "CLIENT_CERTIFICATE_FILE: missing"),
        ({**certificate, "CLIENT_CERTIFICATE_FILE": str(tmp_path / "none.pem")}, "cannot read"),
        ({**certificate, "CLIENT_CERTIFICATE_FILE": str(cert.pfx_file)},
         "wrong or missing password"),
        ({**certificate, "CLIENT_CERTIFICATE_FILE": str(cert.pfx_file),
          "CLIENT_CERTIFICATE_PASSWORD": PFX_PASSWORD, "CLIENT_PRIVATE_KEY_FILE":
              str(cert.key_file)}, "holds its own private key"),
        ({**certificate, "CLIENT_CERTIFICATE_FILE": str(cert.cert_file)},
         "no PEM private key found"),
        ({**certificate, "CLIENT_CERTIFICATE_FILE": str(cert.cert_file),
          "CLIENT_PRIVATE_KEY_FILE": str(other.key_file)},
         "no certificate in the file matches the private key"),
        ({**certificate, "CLIENT_CERTIFICATE_FILE": str(cert.pem_file),
          "CLIENT_CERTIFICATE_X5C": "all"}, "CLIENT_CERTIFICATE_X5C: 'all' is not one of leaf"),
        ({**assertion, "CLIENT_ASSERTION_FILE": str(token),
          "CLIENT_ASSERTION_MANAGED_IDENTITY": "system"}, "found CLIENT_ASSERTION_FILE, "
                                                          "CLIENT_ASSERTION_MANAGED_IDENTITY"),
        ({**assertion, "CLIENT_ASSERTION_FILE": str(tmp_path / "gone")},
         "is not a readable file"),
        ({**assertion, "CLIENT_ASSERTION_MANAGED_IDENTITY": "my-identity"},
         "neither 'system' nor the client id"),
        ({**assertion, "CLIENT_ASSERTION_CALLABLE": "not a path"},
         "is not of the form package.module:function"),
        ({**assertion, "CLIENT_ASSERTION_CALLABLE": "json:no_such_function"},
         "'json' has no function 'no_such_function'"),
        ({**assertion, "CLIENT_ASSERTION_CALLABLE": "json:loads"},
         "must be callable without arguments"),
        ({"CLIENT_3_CREDENTIAL": "secret", "CLIENT_3_SECRET": "x"}, "without gaps"),
        ({"CLIENT_2_CREDENTIAL": "secret"}, "CLIENT_2_SECRET is missing"),
        ({"CLIENT_2_CREDENTIAL": "certificate", "CLIENT_2_CERTIFICATE_FILE": str(
            cert.pfx_file)}, "CLIENT_2_CERTIFICATE_FILE"),
    ]
    if not any(baked.get(f"CLIENT_ASSERTION_{source}") for source in (
            "FILE", "MANAGED_IDENTITY", "CALLABLE")):
        cases.append(({**assertion, "AZURE_FEDERATED_TOKEN_FILE": ""},
                      "CLIENT_CREDENTIAL=assertion needs exactly one of CLIENT_ASSERTION_FILE"))
    if OIDC_APP:
        cases.append(({**assertion, "CLIENT_ASSERTION_MANAGED_IDENTITY": "system"},
                      "managed identities are Entra ID identities"))
    for overrides, expected in cases:
        env = valid_env({"CLIENT_SECRET": "s3cret-never-shown", **overrides})
        found = problems(env)
        assert expected in found, (overrides, found)
        assert "s3cret-never-shown" not in found and PFX_PASSWORD not in found


def test_several_credentials_in_order_with_labels_that_show_no_value(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch
                                                                     ) -> None:
    cert = make_cert(tmp_path, "app")
    secret_file = tmp_path / "secret"
    secret_file.write_text("second-secret-value\n")
    token = tmp_path / "azure-identity-token"
    token.write_text("a.b.c")
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "my_assertions.py").write_text("def signed() -> str:\n    return 'x.y.z'\n")
    settings = load_settings(valid_env({
        "CLIENT_CREDENTIAL": "certificate", "CLIENT_SECRET": "",
        "CLIENT_CERTIFICATE_FILE": str(cert.pfx_file),
        "CLIENT_CERTIFICATE_PASSWORD": PFX_PASSWORD,
        "CLIENT_2_CREDENTIAL": "secret", "CLIENT_2_SECRET_FILE": str(secret_file),
        "CLIENT_3_CREDENTIAL": "assertion", "CLIENT_3_ASSERTION_CALLABLE": "my_assertions:signed",
    }), DEFAULTS)
    labels = [c.label for c in settings.credentials]
    assert [c.kind for c in settings.credentials] == ["certificate", "secret", "assertion"]
    assert labels == [
        f"credential 1 (certificate {cert.pfx_file}, SHA-256 thumbprint {cert.thumbprint})",
        f"credential 2 (secret from file {secret_file})",
        "credential 3 (assertion from function my_assertions:signed)",
    ]
    # Kubernetes workload identity: the webhook's variable names the token file.
    only_token = load_settings(valid_env({"CLIENT_CREDENTIAL": "assertion", "CLIENT_SECRET": "",
                                          "AZURE_FEDERATED_TOKEN_FILE": str(token)}), DEFAULTS)
    assert only_token.credentials[0].label == (
        f"credential 1 (assertion from federated token file {token})")
    if not OIDC_APP:
        identity = load_settings(valid_env({
            "CLIENT_CREDENTIAL": "assertion", "CLIENT_SECRET": "",
            "CLIENT_ASSERTION_MANAGED_IDENTITY": "0F5B7A2C-1111-2222-3333-444455556666",
            "AUTHORITY": "https://login.microsoftonline.us/contoso.onmicrosoft.us"}), DEFAULTS)
        (mi,) = identity.credentials
        assert mi.managed_identity == "0f5b7a2c-1111-2222-3333-444455556666"
        assert mi.assertion_audience == "api://AzureADTokenExchangeUSGov"  # the cloud's


def test_certificate_assertions_sign_ps256_with_the_chosen_x5c(tmp_path: Path) -> None:
    ca = make_ca("Contoso Issuing CA")
    cert = make_cert(tmp_path, "app", issuer=ca)
    endpoint = "https://login.example.test/tenant/oauth2/v2.0/token"
    seen: dict[str, list[str] | None] = {}
    for mode in ("leaf", "chain", "none"):
        settings = load_settings(valid_env({
            "CLIENT_CREDENTIAL": "certificate", "CLIENT_SECRET": "",
            "CLIENT_CERTIFICATE_FILE": str(cert.pem_file), "CLIENT_CERTIFICATE_X5C": mode}),
            DEFAULTS)
        credential = Credential(settings.credentials[0], CLIENT_ID, None, http=None)
        given = credential.client_credential()
        assert isinstance(given, dict)
        if mode == "leaf":
            # MSAL's own signer: a loaded key object (never a PEM string it would re-parse)
            # and the leaf certificate, from which it computes the thumbprints.
            assert isinstance(given["private_key"], rsa.RSAPrivateKey)
            assert given["public_certificate"].strip() == cert.pem.strip()
            continue
        signed = given["client_assertion"]({"client_id": CLIENT_ID, "token_endpoint": endpoint})
        header = jwt.get_unverified_header(signed)
        claims = jwt.decode(signed, rsa_key(0).public_key(), algorithms=["PS256"],
                            audience=endpoint)
        assert header["alg"] == "PS256" and header["x5t#S256"] == cert.thumbprint
        assert claims["iss"] == claims["sub"] == CLIENT_ID and "nbf" not in claims
        seen[mode] = header.get("x5c")
    assert seen["none"] is None
    assert seen["chain"] is not None and len(seen["chain"]) == 2  # the leaf, then its issuer


def test_certificate_expiry_is_logged_at_start_up(tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    for name, days, expected in (("soon", 10, "expires on"), ("late", 200, None),
                                 ("gone", -2, "EXPIRED")):
        cert = make_cert(tmp_path, name, days=days)
        settings = load_settings(valid_env({
            "CLIENT_CREDENTIAL": "certificate", "CLIENT_SECRET": "",
            "CLIENT_CERTIFICATE_FILE": str(cert.pem_file)}), DEFAULTS)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            MsalClients(settings)
        found = [r.getMessage() for r in caplog.records if cert.thumbprint in r.getMessage()]
        if expected is None:
            assert found == []
        else:
            assert len(found) == 1 and expected in found[0], found


# ------------------------------------------------------------------------------ end to end
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
            # The app service's managed identity, trusted by the app registration. MSAL finds
            # App Service by these two variables (never IDENTITY_SERVER_THUMBPRINT, which
            # means Service Fabric).
            mi = app.standin.add_managed_identity()
            app.standin.add_federated_credential(
                CLIENT_ID, issuer=app.standin.issuer, subject=mi.object_id, audience=EXCHANGE)
            monkeypatch.setenv("IDENTITY_ENDPOINT", app.standin.identity_endpoint)
            monkeypatch.setenv("IDENTITY_HEADER", app.standin.identity_header)
            subject.append(mi.object_id)

        return Setup({**env, "CLIENT_ASSERTION_MANAGED_IDENTITY": "system"}, identity,
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


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_signs_in_and_calls_an_api(make_app: Callable[..., AppUnderTest],
                                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             kind: str) -> None:
    setup = credential_setup(kind, tmp_path / "credentials", monkeypatch)
    app = make_app(**setup.env)
    setup.after_start(app)
    app.standin.reset_counts()
    expected = setup.expected(app)
    browser = app.browser()
    sign_in(app, browser, ALICE)
    assert auth_log(app, "authorization_code") == [expected]
    a_token_request_after_sign_in(app, browser)
    assert set(auth_log(app)) == {expected}
    if kind == "managed_identity":
        # MSAL's App Service path asked for the token-exchange audience of the public cloud.
        assert {(r["resource"], r["api_version"]) for r in app.standin.msi_requests} == {
            (EXCHANGE, "2019-08-01")}


REFUSALS = ["wrong_secret", "unregistered_certificate", "expired_assertion", "wrong_audience"]


@pytest.mark.parametrize("case", REFUSALS)
def test_a_refused_credential_shows_a_page_and_the_log_names_it(
        make_app: Callable[..., AppUnderTest], tmp_path: Path, case: str,
        caplog: pytest.LogCaptureFixture) -> None:
    token = tmp_path / "token"
    cert = make_cert(tmp_path, "unregistered")
    wrong = "wrong-secret-" + secrets.token_urlsafe(8)
    env = {
        "wrong_secret": {"CLIENT_SECRET": wrong},
        "unregistered_certificate": {"CLIENT_CREDENTIAL": "certificate", "CLIENT_SECRET": "",
                                     "CLIENT_CERTIFICATE_FILE": str(cert.pem_file)},
    }.get(case, {"CLIENT_CREDENTIAL": "assertion", "CLIENT_SECRET": "",
                 "CLIENT_ASSERTION_FILE": str(token)})
    token.write_text("placeholder")
    app = make_app(**env)
    if case in ("expired_assertion", "wrong_audience"):
        issuer = federated(app, "system:serviceaccount:web:portal")
        token.write_text(issuer.mint("system:serviceaccount:web:portal",
                                     audience="api://Elsewhere" if case == "wrong_audience"
                                     else EXCHANGE,
                                     lifetime=-600 if case == "expired_assertion" else 3600))
    label = app.services.settings.credentials[0].label
    app.standin.reset_counts()
    with caplog.at_level(logging.WARNING):
        page = visit(app, app.browser(), "/login", ALICE)  # the answer reaches the redirect URI
    assert_error_page(page, CREDENTIAL_REJECTED.split("(")[0].strip(), 502)
    logged = [r.getMessage() for r in caplog.records]
    assert any(label in line and "refused" in line for line in logged), logged
    assert not any(wrong in line for line in logged)
    assert app.standin.client_auth_log == []


ROTATIONS = ["certificate_to_certificate", "secret_to_secret"]


@pytest.mark.parametrize("rotation", ROTATIONS)
def test_a_revoked_credential_hands_over_to_the_next_without_a_restart(
        make_app: Callable[..., AppUnderTest], tmp_path: Path, rotation: str,
        caplog: pytest.LogCaptureFixture) -> None:
    second = secrets.token_urlsafe(24)
    if rotation == "certificate_to_certificate":
        old, new = make_cert(tmp_path, "old"), make_cert(tmp_path, "new", slot=1)
        app = make_app(CLIENT_CREDENTIAL="certificate", CLIENT_SECRET="",
                       CLIENT_CERTIFICATE_FILE=str(old.pem_file),
                       CLIENT_2_CREDENTIAL="certificate",
                       CLIENT_2_CERTIFICATE_FILE=str(new.pem_file))
        app.standin.register_client_certificate(CLIENT_ID, old.pem)
        app.standin.register_client_certificate(CLIENT_ID, new.pem)
        first, then = ("certificate", old.thumbprint), ("certificate", new.thumbprint)

        def revoke() -> None:
            app.standin.unregister_client_certificate(CLIENT_ID, old.pem)
    else:
        app = make_app(CLIENT_2_CREDENTIAL="secret", CLIENT_2_SECRET=second)
        app.standin.add_client_secret(CLIENT_ID, second)
        first = ("secret", app.standin.client_secret_id(CLIENT_ID, app.env["CLIENT_SECRET"]))
        then = ("secret", app.standin.client_secret_id(CLIENT_ID, second))

        def revoke() -> None:
            app.standin.remove_client_secret(CLIENT_ID, app.env["CLIENT_SECRET"])
    app.standin.reset_counts()
    browser = app.browser()
    sign_in(app, browser, ALICE)
    assert auth_log(app) == [first]
    revoke()
    page = api_page(app)
    if page is not None:
        # Served from the token cache: no token request, so no credential is needed yet.
        assert browser.get(app.url(page)).status_code == 200
        assert auth_log(app) == [first]
    with caplog.at_level(logging.WARNING):
        a_token_request_after_sign_in(app, browser)
    assert auth_log(app) == [first, then]
    switched = [r.getMessage() for r in caplog.records if "switching to" in r.getMessage()]
    labels = [c.label for c in app.services.settings.credentials]
    assert len(switched) == 1, switched
    assert switched[0].startswith(f"the identity provider refused {labels[0]} (invalid_client")
    assert switched[0].endswith(f"switching to {labels[1]}")
    assert second not in "\n".join(r.getMessage() for r in caplog.records)
    # The next user signs in with the new credential straight away.
    sign_in(app, app.browser(), BOB)
    assert auth_log(app)[-1] == then and len(switched) == 1


def test_a_replaced_federated_token_file_is_read_again(make_app: Callable[..., AppUnderTest],
                                                        tmp_path: Path) -> None:
    token = tmp_path / "azure-identity-token"
    token.write_text("placeholder")
    app = make_app(CLIENT_CREDENTIAL="assertion", CLIENT_SECRET="",
                   CLIENT_ASSERTION_FILE=str(token))
    issuer = federated(app, "system:serviceaccount:web:blue")
    app.standin.add_federated_credential(CLIENT_ID, issuer=K8S_ISSUER,
                                         subject="system:serviceaccount:web:green",
                                         audience=EXCHANGE)
    token.write_text(issuer.mint("system:serviceaccount:web:blue"))
    app.standin.reset_counts()
    browser = app.browser()
    sign_in(app, browser, ALICE)
    # kubelet projects a new token; the old subject's federated credential goes away.
    replace_file(token, issuer.mint("system:serviceaccount:web:green"))
    app.standin.remove_federated_credential(CLIENT_ID, issuer=K8S_ISSUER,
                                            subject="system:serviceaccount:web:blue")
    a_token_request_after_sign_in(app, browser)
    assert [credential for _, credential in auth_log(app)] == [
        f"{K8S_ISSUER}|system:serviceaccount:web:blue",
        f"{K8S_ISSUER}|system:serviceaccount:web:green"]


def test_a_replaced_secret_file_is_read_again(make_app: Callable[..., AppUnderTest],
                                              tmp_path: Path) -> None:
    old, new = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    path = tmp_path / "client-secret"
    path.write_text(old)
    app = make_app(CLIENT_SECRET="", CLIENT_SECRET_FILE=str(path))
    app.standin.add_client_secret(CLIENT_ID, old)
    app.standin.reset_counts()
    browser = app.browser()
    sign_in(app, browser, ALICE)
    ids = [app.standin.add_client_secret(CLIENT_ID, new),
           app.standin.client_secret_id(CLIENT_ID, old)]
    replace_file(path, new + "\n")  # the orchestrator mounts the new secret
    app.standin.remove_client_secret(CLIENT_ID, old)
    a_token_request_after_sign_in(app, browser)
    assert auth_log(app) == [("secret", ids[1]), ("secret", ids[0])]
