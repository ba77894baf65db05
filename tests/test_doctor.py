"""`msal-webapp doctor`: each kind of finding on a real rendered project, read as the app reads it
(its own settings code, run with this Python, which has the generated apps' dependencies)."""

from __future__ import annotations

import datetime
import json
import shutil
import sys
from pathlib import Path

import pytest
from conftest import ROOT
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from generator import cli, doctor

EXAMPLE = ROOT / "examples" / "app.yaml"
GOOD_ENV = ("REDIRECT_URI='http://localhost:5000/getAToken'\n"
            "SECRET_KEY='" + "k" * 48 + "'\n"
            "CLIENT_ID='11111111-2222-3333-4444-555555555555'\n")
SECRET = "CLIENT_SECRET='not-a-real-secret-value'\n"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("doctor")
    assert cli.main(["new", str(EXAMPLE), "-o", str(out)]) == 0
    return out / "contoso-portal"


@pytest.fixture
def project(rendered: Path, tmp_path: Path) -> Path:
    target = tmp_path / rendered.name
    shutil.copytree(rendered, target)
    return target


def run(project: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    capsys.readouterr()
    status = cli.main(["doctor", str(project), "--python", sys.executable, *args])
    return status, capsys.readouterr().out.splitlines()


def certificate(path: Path, days: int) -> None:
    """A self-signed certificate and its key in one PEM file, valid for `days` more days."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "contoso-portal")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=400))
            .not_valid_after(now + datetime.timedelta(days=days))
            .sign(key, hashes.SHA256()))
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))


def test_a_configured_project_has_no_findings(project: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    (project / ".env").write_text(GOOD_ENV + SECRET)
    status, lines = run(project, capsys, "--strict")
    assert (status, lines) == (0, [f"{project}: no findings"])


def test_settings_that_fail_at_start_up(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / ".env").write_text(GOOD_ENV.replace("k" * 48, "short"))
    status, lines = run(project, capsys)
    assert status == 1
    assert any(line.startswith("error: settings: SECRET_KEY is shorter than 32 characters")
               for line in lines), lines
    assert any(line.startswith("error: settings: CLIENT_SECRET is missing") for line in lines)
    assert len(lines) == 2, lines  # one line per problem, nothing else


def test_edited_and_deleted_managed_files_are_warnings(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / ".env").write_text(GOOD_ENV + SECRET)
    views = project / "contoso_portal" / "views.py"
    views.write_text(views.read_text() + "# ours\n")
    (project / "gunicorn.conf.py").unlink()
    (project / "mine.py").write_text("# the user's own file: not a finding\n")
    status, lines = run(project, capsys)
    assert status == 0  # warnings fail only with --strict
    assert lines == [
        "warning: edited: contoso_portal/views.py: changed by hand since it was generated; fix: "
        "none needed if meant (`msal-webapp update` merges template changes into it), else "
        "restore it",
        "warning: edited: gunicorn.conf.py: deleted since it was generated; fix: restore it from "
        "version control if the app needs it (`msal-webapp update` leaves it deleted)"]
    assert run(project, capsys, "--strict")[0] == 1


def test_registration_drift(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / ".env").write_text(GOOD_ENV + SECRET)
    path = project / "registration.json"
    registration = json.loads(path.read_text())
    # A production redirect URI is added, as README.md says: not drift.
    registration["web"]["redirect_uris"].append("https://portal.contoso.com/getAToken")
    path.write_text(json.dumps(registration))
    findings = doctor.registration_drift(project, doctor.record.load(project)["spec"])
    assert findings == []
    registration["web"]["redirect_uris"].remove("http://localhost/getAToken")
    registration["app_roles"] = []
    path.write_text(json.dumps(registration))
    status, lines = run(project, capsys)
    assert status == 1
    drift = [line for line in lines if line.startswith("error: registration:")]
    assert [line.split(";")[0] for line in drift] == [
        'error: registration: registration.json: web.redirect_uris lacks '
        '"http://localhost/getAToken"',
        'error: registration: registration.json: app_roles lacks {"value": "Admin", '
        '"display_name": "Admin", "allowed_member_types": ["User"]}']
    assert all("msal-webapp update" in line for line in drift)


@pytest.mark.parametrize(("days", "expected"), [
    (10, "warning: certificate: CLIENT_CERTIFICATE_FILE={file} expires on {date} (in 9 day(s))"),
    (90, None),
])
def test_a_certificate_near_expiry(project: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str], days: int,
                                   expected: str | None) -> None:
    pem = tmp_path / "client.pem"
    certificate(pem, days)
    (project / ".env").write_text(GOOD_ENV + "CLIENT_CREDENTIAL='certificate'\n"
                                  f"CLIENT_CERTIFICATE_FILE='{pem}'\n")
    status, lines = run(project, capsys, "--strict")
    if expected is None:
        assert status == 0, lines
        return
    date = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=days)).date()
    assert status == 1
    assert lines[0].startswith(expected.format(file=pem, date=date.isoformat())), lines


def test_an_expired_certificate_is_an_error() -> None:
    now = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
    found = doctor.certificate_findings({"certificates": [
        {"file": "/run/client.pem", "variable": "CLIENT_CERTIFICATE_FILE",
         "not_after": "2029-12-31T00:00:00+00:00"}]}, 30, now)
    assert [f.severity for f in found] == ["error"]
    assert "expired on 2029-12-31" in found[0].message


def test_dependencies_outside_the_ranges(project: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    (project / ".env").write_text(GOOD_ENV + SECRET)
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text()
    assert '"msal>=1.39,<2",' in text
    pyproject.write_text(text.replace('"msal>=1.39,<2",', '"msal<1.0", "not-a-dist-xyz>=1", '
                                      '"pywin32>=300; sys_platform == \'win32\'",', 1))
    status, lines = run(project, capsys)
    assert status == 1
    found = [line for line in lines if line.startswith("error: dependency:")]
    assert len(found) == 2, lines  # pywin32: not for this platform
    assert found[0].startswith("error: dependency: msal 1.") and "is outside <1.0" in found[0]
    assert found[1].startswith("error: dependency: not-a-dist-xyz is not installed")


def test_not_a_generated_project(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["doctor", str(tmp_path)]) == 2
    assert ".msal-webapp.json: missing" in capsys.readouterr().out
