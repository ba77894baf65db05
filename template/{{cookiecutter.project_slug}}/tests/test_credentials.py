"""The credential kinds, end to end against the stand-in, in whichever framework serves the app.

The stand-in checks what it receives as Entra ID does (the secret; a private-key JWT signed by a
registered certificate; a federated token from a trusted issuer with the expected subject and
audience) and logs which credential each token request used (`client_auth_log`).

This module holds what depends on how the project was generated: its baked credential defaults,
its own kind, and the error pages and rotation rules of its provider (Entra's error codes, or
a standard provider's invalid_client). test_credential_kinds.py runs every kind.
"""

from __future__ import annotations

import logging
import secrets
import socket
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.config import DEFAULTS
from {{ cookiecutter.package_name }}.core.auth import CREDENTIAL_REJECTED
from {{ cookiecutter.package_name }}.core.settings import load_settings

from tests.conftest import CLIENT_ID, AppUnderTest
from tests.conftest import environment_for_settings_tests as valid_env
from tests.credential_material import (
    ALICE,
    BOB,
    EXCHANGE,
    OIDC_APP,
    PFX_PASSWORD,
    a_token_request_after_sign_in,
    api_page,
    auth_log,
    federated,
    make_cert,
    own_kind,
    replace_file,
    signs_in_and_calls_an_api,
)
from tests.test_settings import problems
from tests.test_web_flow import assert_error_page, sign_in, visit


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
         "'my-identity' is not the client id (a GUID) of a user-assigned managed identity"),
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
    if "CLIENT_ASSERTION_MANAGED_IDENTITY" in baked and not baked[
            "CLIENT_ASSERTION_MANAGED_IDENTITY"]:
        # Generated for a managed identity named only where the app is deployed.
        cases.append(({**assertion, "AZURE_FEDERATED_TOKEN_FILE": ""},
                      "CLIENT_ASSERTION_MANAGED_IDENTITY: missing: the client id (a GUID) of "
                      "the user-assigned managed identity"))
    elif not any(baked.get(f"CLIENT_ASSERTION_{source}") for source in (
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


def test_the_projects_own_kind_signs_in_and_calls_an_api(
        make_app: Callable[..., AppUnderTest], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    if own_kind() == "managed_identity" and OIDC_APP:
        pytest.skip("managed identities sign in to Entra ID only")
    signs_in_and_calls_an_api(make_app, tmp_path / "credentials", monkeypatch, own_kind())


# The provider refuses the credential, or (the last two) the app cannot make it: the token file
# went, the managed identity endpoint does not answer.
REFUSALS = ["wrong_secret", "unregistered_certificate", "expired_assertion", "wrong_audience",
            "token_file_gone", "managed_identity_down"]


@pytest.mark.parametrize("case", REFUSALS)
def test_a_refused_credential_shows_a_page_and_the_log_names_it(
        make_app: Callable[..., AppUnderTest], tmp_path: Path, case: str,
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    if case == "managed_identity_down":
        if OIDC_APP:
            pytest.skip("managed identities sign in to Entra ID only")
        with socket.socket() as closed:  # a port nothing listens on once this closes
            closed.bind(("127.0.0.1", 0))
            port = closed.getsockname()[1]
        monkeypatch.setenv("IDENTITY_ENDPOINT", f"http://127.0.0.1:{port}/msi/token")
        monkeypatch.setenv("IDENTITY_HEADER", "any")
    token = tmp_path / "token"
    cert = make_cert(tmp_path, "unregistered")
    wrong = "wrong-secret-" + secrets.token_urlsafe(8)
    env = {
        "wrong_secret": {"CLIENT_SECRET": wrong},
        "unregistered_certificate": {"CLIENT_CREDENTIAL": "certificate", "CLIENT_SECRET": "",
                                     "CLIENT_CERTIFICATE_FILE": str(cert.pem_file)},
        "managed_identity_down": {"CLIENT_CREDENTIAL": "assertion", "CLIENT_SECRET": "",
                                  "CLIENT_ASSERTION_MANAGED_IDENTITY": str(uuid.uuid4())},
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
    if case == "token_file_gone":
        token.unlink()
    label = app.services.settings.credentials[0].label
    app.standin.reset_counts()
    with caplog.at_level(logging.WARNING):
        page = visit(app, app.browser(), "/login", ALICE)  # the answer reaches the redirect URI
    assert_error_page(page, CREDENTIAL_REJECTED.split("(")[0].strip(), 502)
    logged = [r.getMessage() for r in caplog.records]
    why = {"token_file_gone": "cannot read",
           "managed_identity_down": "managed identity endpoint"}.get(case, "refused")
    assert any(label in line and why in line for line in logged), logged
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


@pytest.mark.parametrize(("code", "rotates"), [
    (700027, True), (700024, True), (7000274, True), (7000277, True),
    (7000214, True),  # certificate revoked (Microsoft.Identity.Web rotates on it)
    (1000502, True),  # certificate outside its validity window (likewise)
    (7000215, True), (7000222, True),  # secrets: our choice, not Microsoft.Identity.Web's
    (700016, False),  # no such application: no other credential can fix that
    (50011, False),  # redirect URI mismatch
])
def test_which_of_entras_invalid_client_answers_hand_over_to_the_next_credential(
        code: int, rotates: bool) -> None:
    from {{ cookiecutter.package_name }}.core.credentials import Credentials

    settings = load_settings(valid_env(), DEFAULTS)
    credentials = Credentials(settings.credentials, settings.client_id, None, oidc=False)
    answer = {"error": "invalid_client", "error_codes": [code],
              "error_description": f"AADSTS{code}: ..."}
    assert credentials.is_rejection(answer) is rotates
    assert not credentials.is_rejection({**answer, "error": "invalid_grant"})


def test_a_certificate_file_replaced_in_place_is_used_without_a_restart(
        make_app: Callable[..., AppUnderTest], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """Key Vault's CSI driver and cert-manager renew a certificate by replacing its file: the
    next token request signs with the new one (one credential, no rotation, no restart); a
    half-written file keeps the loaded certificate in use."""
    old, new = make_cert(tmp_path, "old"), make_cert(tmp_path, "new", slot=1)
    mounted = tmp_path / "mounted.pem"
    replace_file(mounted, old.pem_file.read_text())
    app = make_app(CLIENT_CREDENTIAL="certificate", CLIENT_SECRET="",
                   CLIENT_CERTIFICATE_FILE=str(mounted))
    app.standin.register_client_certificate(CLIENT_ID, old.pem)
    app.standin.reset_counts()
    browser = app.browser()
    sign_in(app, browser, ALICE)
    assert auth_log(app) == [("certificate", old.thumbprint)]

    # Renewed: the new certificate registered, the file replaced, the old one revoked.
    app.standin.register_client_certificate(CLIENT_ID, new.pem)
    replace_file(mounted, new.pem_file.read_text())
    app.standin.unregister_client_certificate(CLIENT_ID, old.pem)
    with caplog.at_level(logging.INFO):
        a_token_request_after_sign_in(app, browser)
    assert auth_log(app)[-1] == ("certificate", new.thumbprint)
    assert not [r for r in caplog.records if "switching to" in r.getMessage()]
    assert any(new.thumbprint in r.getMessage() for r in caplog.records)

    # Half written: the certificate in use stays; the next complete file is loaded.
    replace_file(mounted, old.pem_file.read_text()[:60])  # a file cut short
    sign_in(app, app.browser(), BOB)
    assert auth_log(app)[-1] == ("certificate", new.thumbprint)
