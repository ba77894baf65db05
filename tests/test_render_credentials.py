"""What a spec's `credential` bakes into the project: config.py's `credential=`, the credential
section of .env.example and the README's "Credentials" section (rendered, no suite run)."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
from baking import baked_credential
from conftest import BASE_SPEC, ROOT
from dotenv import dotenv_values

from generator import render
from generator import spec as gspec

TENANT = "0b2e6b5c-6d0e-4e8a-9a41-5f3f0c7d2a11"
GUID = "6e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b"
OIDC = {"kind": "oidc", "issuer": "https://id.example.com/realms/acme"}
KIND_OF_HEADING = {"Client secret": "secret", "Certificate": "certificate",
                   "Signed assertion": "assertion"}
SOURCE_OF_HEADING = {"From a federated token file": "token_file",
                     "From a managed identity": "managed_identity",
                     "From your own function": "callable"}
ENTRA_COMMANDS = [
    "az ad app credential reset --id <client-id> --append --display-name",
    "openssl req -x509 -newkey rsa:2048 -sha256 -days 365 -nodes",
    "-keyout client.key -out client.pem -subj \"/CN=",
    "az ad app credential reset --id <client-id> --cert @client.pem --append",
    "openssl pkcs12 -export",
    "az aks show --name <cluster> --resource-group <resource-group> --query "
    "oidcIssuerProfile.issuerUrl",
    "az ad app federated-credential create --id <client-id> --parameters",
    '"subject": "system:serviceaccount:<namespace>:<service-account>", '
    '"audiences": ["api://AzureADTokenExchange"]',
]
ROTATION = ["CLIENT_2_", "700027", "700024", "7000274", "7000277", "7000215", "7000222",
            "Microsoft.Identity.Web", "invalid_client", "token cache", "within 30 days"]


def _spec(credential: dict[str, Any], **changes: Any) -> dict[str, Any]:
    spec = copy.deepcopy(BASE_SPEC)
    spec.update(credential=credential, **changes)
    return spec


# (id, spec, config.py's credential=, the credential variables .env.example leaves to fill in)
CASES: list[tuple[str, dict[str, Any], dict[str, str], set[str]]] = [
    ("secret", _spec({"kind": "secret"}), {"CLIENT_CREDENTIAL": "secret"}, {"CLIENT_SECRET"}),
    ("secret-file", _spec({"kind": "secret", "secret_file": "/run/secrets/portal"}),
     {"CLIENT_CREDENTIAL": "secret", "CLIENT_SECRET_FILE": "/run/secrets/portal"}, set()),
    ("certificate", _spec({"kind": "certificate"}), {"CLIENT_CREDENTIAL": "certificate"},
     {"CLIENT_CERTIFICATE_FILE"}),
    ("certificate-pfx", _spec({"kind": "certificate", "x5c": "chain",
                               "certificate_file": "/etc/portal certs/client.pfx"}),
     {"CLIENT_CREDENTIAL": "certificate", "CLIENT_CERTIFICATE_FILE": "/etc/portal certs/client.pfx",
      "CLIENT_CERTIFICATE_X5C": "chain"}, set()),
    ("example-certificate", gspec.load_spec(ROOT / "examples" / "certificate.yaml"),
     {"CLIENT_CREDENTIAL": "certificate",
      "CLIENT_CERTIFICATE_FILE": "/run/secrets/fabrikam/client.pem",
      "CLIENT_PRIVATE_KEY_FILE": "/run/secrets/fabrikam/client.key"}, set()),
    # No token file in the spec: nothing else baked, the app uses AZURE_FEDERATED_TOKEN_FILE.
    ("token-file", _spec({"kind": "assertion", "source": "token_file"}),
     {"CLIENT_CREDENTIAL": "assertion"}, set()),
    ("example-oidc", gspec.load_spec(ROOT / "examples" / "oidc.yaml"),
     {"CLIENT_CREDENTIAL": "assertion",
      "CLIENT_ASSERTION_FILE": "/var/run/secrets/tokens/acme-portal"}, set()),
    # No identity named: empty, so the app asks for a user-assigned identity's client id.
    ("managed-identity", _spec({"kind": "assertion", "source": "managed_identity"}),
     {"CLIENT_CREDENTIAL": "assertion", "CLIENT_ASSERTION_MANAGED_IDENTITY": ""},
     {"CLIENT_ASSERTION_MANAGED_IDENTITY"}),
    ("managed-identity-system", _spec({"kind": "assertion", "source": "managed_identity",
                                       "managed_identity": "system"}),
     {"CLIENT_CREDENTIAL": "assertion", "CLIENT_ASSERTION_MANAGED_IDENTITY": "system"}, set()),
    ("managed-identity-us", _spec({"kind": "assertion", "source": "managed_identity",
                                   "managed_identity": GUID},
                                  authority={"kind": "entra", "tenant": TENANT,
                                             "instance": "https://login.microsoftonline.us"}),
     {"CLIENT_CREDENTIAL": "assertion", "CLIENT_ASSERTION_MANAGED_IDENTITY": GUID}, set()),
    ("callable-oidc", _spec({"kind": "assertion", "source": "callable",
                             "callable": "contoso.credentials:signed_assertion"},
                            authority=OIDC, client_id="portal"),
     {"CLIENT_CREDENTIAL": "assertion",
      "CLIENT_ASSERTION_CALLABLE": "contoso.credentials:signed_assertion"}, set()),
]


def _section(text: str, heading: str) -> str:
    start = text.index(f"\n{heading}\n")
    end = text.find("\n## ", start + len(heading) + 2)
    return text[start:end if end != -1 else None]


@pytest.mark.parametrize(("spec", "credential", "to_fill"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_the_credential_is_baked(tmp_path: Path, spec: dict[str, Any],
                                 credential: dict[str, str], to_fill: set[str]) -> None:
    context = gspec.spec_to_context(spec)
    project = render.render(context, tmp_path, gspec.template_dir())
    kind, source = spec["credential"]["kind"], spec["credential"].get("source")
    entra = spec["authority"]["kind"] == "entra"

    # config.py: the kind, the source's variable and the spec's paths; never a value.
    assert baked_credential(project / context["package_name"] / "config.py") == credential

    # .env.example: the spec's kind first and fully, the other kinds commented out, a second
    # credential for rotation; the only credential lines that are set are empty ones to fill.
    env_text = (project / ".env.example").read_text(encoding="utf-8")
    values = dotenv_values(project / ".env.example")
    set_here = {name for name in values if name.startswith("CLIENT_") and name != "CLIENT_ID"}
    assert set_here == to_fill and all(values[name] == "" for name in set_here), values
    kinds = re.findall(r"^# CLIENT_CREDENTIAL=(\w+)", env_text, re.MULTILINE)
    assert kinds[0] == kind and sorted(kinds) == ["assertion", "certificate", "secret"], kinds
    assert re.search(r"^# CLIENT_2_CREDENTIAL=\w+$", env_text, re.MULTILINE)
    for name, value in credential.items():
        if name != "CLIENT_CREDENTIAL" and name not in to_fill:
            assert re.search(rf"^# {name}='{re.escape(value)}'   # default", env_text,
                             re.MULTILINE), name
    if kind == "assertion":  # its source first, then the other sources
        sources = re.findall(r"^(?:# )?CLIENT_ASSERTION_(FILE|MANAGED_IDENTITY|CALLABLE)=",
                             env_text.split("# Or a ")[0], re.MULTILINE)
        assert sources[0] == {"token_file": "FILE", "managed_identity": "MANAGED_IDENTITY",
                              "callable": "CALLABLE"}[source] and len(sources) == 3

    # README: a Credentials section, the spec's kind (and source) first, how to create and
    # register each kind, rotation and expiry.
    readme = _section((project / "README.md").read_text(encoding="utf-8"), "## Credentials")
    headings = [KIND_OF_HEADING[h] for h in re.findall(r"^### (.+?) \(", readme, re.MULTILINE)
                if h in KIND_OF_HEADING]
    assert headings[0] == kind and len(headings) == 3, headings
    sub = [SOURCE_OF_HEADING[h.split(":")[0]] for h in re.findall(r"^#### (.+?) \(", readme,
                                                                  re.MULTILINE)]
    assert sub[0] == (source or "token_file") and len(sub) == 3, sub
    assert all(word in readme for word in ROTATION), [w for w in ROTATION if w not in readme]
    if entra:
        assert all(c in readme for c in ENTRA_COMMANDS), [c for c in ENTRA_COMMANDS
                                                          if c not in readme]
        instance = spec["authority"].get("instance", "https://login.microsoftonline.com")
        tenant = spec["authority"]["tenant"]
        issuer = f"{instance}/{tenant if tenant == TENANT else '<tenant-id>'}/v2.0"
        audience = "api://AzureADTokenExchange" + ("USGov" if instance.endswith(".us") else "")
        assert (f'"issuer": "{issuer}", "subject": "<principal-id>", '
                f'"audiences": ["{audience}"]') in readme
    else:
        assert "az ad app" not in readme and "Not with this provider" in readme
    for name, value in credential.items():  # the project's defaults are named
        assert f"`{value}`" in readme or name == "CLIENT_CREDENTIAL", value
