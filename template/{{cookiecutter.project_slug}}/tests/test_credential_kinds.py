"""The credential kinds, end to end against the stand-in, in whichever framework serves the app.

The stand-in checks what it receives as Entra ID does (the secret; a private-key JWT signed by a
registered certificate; a federated token from a trusted issuer with the expected subject and
audience) and logs which credential each token request used (`client_auth_log`).

Every kind, whatever the project was generated for (its own kind, its provider's error pages
and rotation rules: test_credentials.py).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from {{ cookiecutter.package_name }}.config import DEFAULTS
from {{ cookiecutter.package_name }}.core.auth import CREDENTIAL_REJECTED
from {{ cookiecutter.package_name }}.core.credentials import Credential
from {{ cookiecutter.package_name }}.core.identity import MsalClients
from {{ cookiecutter.package_name }}.core.settings import load_settings

from tests.conftest import CLIENT_ID, AppUnderTest
from tests.conftest import environment_for_settings_tests as valid_env
from tests.credential_material import (
    ALICE,
    EXCHANGE,
    K8S_ISSUER,
    KINDS,
    MANAGED_IDENTITY_CLIENT_ID,
    OIDC_APP,
    a_token_request_after_sign_in,
    auth_log,
    federated,
    make_ca,
    make_cert,
    replace_file,
    rsa_key,
    signs_in_and_calls_an_api,
)
from tests.test_web_flow import assert_error_page, sign_in, visit


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
        credential = Credential(settings.credentials[0], CLIENT_ID, http=None)
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
    for name, days, expected, level in (("soon", 10, "expires on", logging.WARNING),
                                        ("late", 200, None, None),
                                        ("gone", -2, "EXPIRED", logging.ERROR)):
        cert = make_cert(tmp_path, name, days=days)
        settings = load_settings(valid_env({
            "CLIENT_CREDENTIAL": "certificate", "CLIENT_SECRET": "",
            "CLIENT_CERTIFICATE_FILE": str(cert.pem_file)}), DEFAULTS)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            MsalClients(settings)
        records = [r for r in caplog.records if cert.thumbprint in r.getMessage()]
        found = [r.getMessage() for r in records]
        if expected is None:
            assert found == []
        else:
            assert len(found) == 1 and expected in found[0], found
            assert records[0].levelno == level


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_signs_in_and_calls_an_api(make_app: Callable[..., AppUnderTest],
                                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             kind: str) -> None:
    app = signs_in_and_calls_an_api(make_app, tmp_path / "credentials", monkeypatch, kind)
    if kind == "managed_identity":
        # MSAL's App Service path asked the user-assigned identity for a token of the
        # token-exchange audience of the public cloud.
        assert {(r["resource"], r["api_version"], r["client_id"])
                for r in app.standin.msi_requests} == {
            (EXCHANGE, "2019-08-01", MANAGED_IDENTITY_CLIENT_ID)}


def test_a_system_assigned_identity_is_used_only_by_name_and_with_a_warning(
        make_app: Callable[..., AppUnderTest], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """Entra documents only user-assigned managed identities as an app's federated credential:
    `system` is taken when named, the app warns at start-up, and the stand-in refuses the
    system-assigned identity's token as Entra's page says, unless told to trust it."""
    if OIDC_APP:
        pytest.skip("managed identities sign in to Entra ID only")
    with caplog.at_level(logging.WARNING):
        app = make_app(CLIENT_CREDENTIAL="assertion", CLIENT_SECRET="",
                       CLIENT_ASSERTION_MANAGED_IDENTITY="system")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
                and "system-assigned managed identity" in r.getMessage()]
    assert len(warnings) == 1 and "only user-assigned managed identities" in warnings[0]
    assert "CLIENT_ASSERTION_MANAGED_IDENTITY" in warnings[0]  # the variable to change
    system = app.standin.add_managed_identity()
    app.standin.add_federated_credential(CLIENT_ID, issuer=app.standin.issuer,
                                         subject=system.object_id, audience=EXCHANGE)
    monkeypatch.setenv("IDENTITY_ENDPOINT", app.standin.identity_endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", app.standin.identity_header)
    app.standin.reset_counts()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        page = visit(app, app.browser(), "/login", ALICE)
    assert_error_page(page, CREDENTIAL_REJECTED.split("(")[0].strip(), 502)
    assert any("AADSTS70021" in r.getMessage() and "user-assigned" in r.getMessage()
               for r in caplog.records), [r.getMessage() for r in caplog.records]
    assert app.standin.client_auth_log == []
    assert [r["client_id"] for r in app.standin.msi_requests] == [None]  # the system one
    # Told to trust it, the stand-in takes the same identity's token.
    monkeypatch.setattr(app.standin, "system_identity_federation", True)
    browser = app.browser()
    sign_in(app, browser, ALICE)
    assert auth_log(app, "authorization_code") == [
        ("federated", f"{app.standin.issuer}|{system.object_id}")]


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
