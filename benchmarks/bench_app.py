"""Benchmarks of the generator and of a generated app's hot paths. Prints its figures.

    .venv/bin/python benchmarks/bench_app.py

- render: `msal-webapp new` of examples/app.yaml (validation + cookiecutter + checks + move);
- client build: building the per-request MSAL client with the shared http_cache (discovery
  served from memory) against building it with a fresh http_cache (discovery over HTTPS);
- silent token: `AuthService.acquire_token` served from the cache, per request, for the memory
  and filesystem stores, with 1 and 1 000 signed-in accounts in the store;
- token request per credential: a new MSAL client (as the app builds one per request) and one
  token request to the local stand-in, with a secret, with the app's certificate credential (a
  key loaded once), and with the two forms MSAL also accepts that the app avoids: the key as a
  PEM string (parsed again for every assertion) and a PKCS#12 path (decrypted in every client
  constructor).
"""

from __future__ import annotations

import contextlib
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples), max(samples)


def build_fresh(settings: object) -> object:
    from contoso_portal.core.identity import MsalClients

    return MsalClients(settings).build()  # type: ignore[arg-type]


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from generator.cli import main as cli

    work = Path(tempfile.mkdtemp(prefix="bench-"))
    renders = []
    for i in range(5):
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            assert cli(["new", str(ROOT / "examples/app.yaml"), "-o", str(work / f"r{i}")]) == 0
        renders.append((time.perf_counter() - start) * 1000)
    print(f"render examples/app.yaml: median {statistics.median(renders):.0f} ms")

    project = work / "r0" / "contoso-portal"
    sys.path.insert(0, str(project))
    import msal
    import trustme
    from contoso_portal.config import DEFAULTS
    from contoso_portal.core.auth import User
    from contoso_portal.core.services import build_services
    from contoso_portal.core.settings import load_settings
    from devprovider import DEFAULT_USERS, StandIn

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_and_cert_chain_pem.write_to_path(str(work / "server.pem"))
    cert.private_key_pem.write_to_path(str(work / "server.key"))
    ca.cert_pem.write_to_path(str(work / "ca.pem"))
    with StandIn(str(work / "server.pem"), str(work / "server.key")) as standin:
        standin.register_client("bench", "secret-" + "x" * 20, ["https://app.example/getAToken"])
        for backend in ("memory", "filesystem"):
            env = {"AUTHORITY": standin.authority, "INSTANCE_DISCOVERY": "false",
                   "CLIENT_ID": "bench", "CLIENT_SECRET": "secret-" + "x" * 20,
                   "REDIRECT_URI": "https://app.example" + DEFAULTS.redirect_path,
                   "SECRET_KEY": "k" * 48, "CA_BUNDLE": str(work / "ca.pem"),
                   "TOKEN_CACHE_BACKEND": backend, "TOKEN_CACHE_DIR": str(work / "tc"),
                   "API_GRAPH_BASE_URL": standin.graph_base_url}
            settings = load_settings(env, DEFAULTS)
            services = build_services(settings)
            if backend == "memory":
                services.clients.build()
                shared, _ = timed(services.clients.build, 200)
                fresh, _ = timed(partial(build_fresh, settings), 30)
                print(f"MSAL client build: shared http_cache {shared:.2f} ms, "
                      f"fresh (discovery each time) {fresh:.2f} ms")
            alice = DEFAULT_USERS[0]
            tid = standin.users[alice.username].tid
            user = User(f"{alice.oid}.{tid}", alice.name, alice.username, alice.oid, tid,
                        f"{standin.authority}/v2.0", alice.oid)
            cache = msal.SerializableTokenCache()
            app = services.clients.build(cache)
            token = standin.mint_access_token(alice.username, "bench", ["User.Read"])
            # Fill the cache as a code redemption would, through MSAL's own cache writer.
            cache.add({"client_id": "bench", "scope": ["User.Read"],
                       "token_endpoint": app.authority.token_endpoint,
                       "response": {"access_token": token, "expires_in": 3600,
                                    "token_type": "Bearer", "refresh_token": "rt",
                                    "client_info": standin.client_info(
                                        standin.users[alice.username]),
                                    "scope": "User.Read"}})
            for accounts in (1, 1000):
                for n in range(accounts - 1):  # other users' entries in the same store
                    services.caches.store.set(services.caches.key(f"other-{n}.{tid}"),
                                              cache.serialize())
                services.caches.merge(user.home_account_id, cache)
                assert services.auth.acquire_token(user, ["User.Read"]) == token
                standin.reset_counts()
                median, worst = timed(
                    partial(services.auth.acquire_token, user, ["User.Read"]), 300)
                assert sum(standin.token_calls.values()) == 0  # every call was a cache hit
                print(f"silent token from cache ({backend}, {accounts} accounts): "
                      f"median {median:.2f} ms, max {worst:.2f} ms")
        credential_costs(standin, work, DEFAULTS, load_settings)


def credential_costs(standin: Any, work: Path, defaults: Any, load_settings: Any) -> None:
    """One token request on a new client, per kind of credential."""
    import msal
    import trustme
    from contoso_portal.core.credentials import Credential
    from contoso_portal.core.http import build_session
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    resource = "api://bench-api"
    standin.register_api("bench", resource, ["Read"])
    issued = trustme.CA().issue_cert("bench.example", key_type=trustme.KeyType.RSA)
    cert_pem, key_pem = issued.cert_chain_pems[0].bytes(), issued.private_key_pem.bytes()
    key = serialization.load_pem_private_key(key_pem, None)
    (work / "client.pfx").write_bytes(pkcs12.serialize_key_and_certificates(
        b"bench", key, x509.load_pem_x509_certificate(cert_pem), None,  # type: ignore[arg-type]
        serialization.BestAvailableEncryption(b"pfx-password")))
    standin.register_client_certificate("bench", cert_pem)
    base = {"AUTHORITY": standin.authority, "INSTANCE_DISCOVERY": "false", "CLIENT_ID": "bench",
            "REDIRECT_URI": "https://app.example" + defaults.redirect_path,
            "SECRET_KEY": "k" * 48, "CA_BUNDLE": str(work / "ca.pem")}
    http = build_session(work / "ca.pem", deadline_seconds=10)
    secret = load_settings({**base, "CLIENT_SECRET": "secret-" + "x" * 20}, defaults)
    certificate = load_settings({**base, "CLIENT_CREDENTIAL": "certificate",
                                 "CLIENT_CERTIFICATE_FILE": str(work / "client.pfx"),
                                 "CLIENT_CERTIFICATE_PASSWORD": "pfx-password"}, defaults)
    loaded = Credential(certificate.credentials[0], "bench", http)
    forms: dict[str, Callable[[], Any]] = {
        "secret": Credential(secret.credentials[0], "bench", http).client_credential,
        "certificate, key loaded once (the app)": loaded.client_credential,
        "certificate, PEM string (MSAL parses it per assertion)": lambda: {
            "private_key": key_pem.decode(), "public_certificate": cert_pem.decode()},
        "certificate, PKCS#12 path (MSAL decrypts it per client)": lambda: {
            "private_key_pfx_path": str(work / "client.pfx"), "passphrase": "pfx-password"},
    }
    http_cache: dict[Any, Any] = {}

    def request(credential: Callable[[], Any]) -> None:
        app = msal.ConfidentialClientApplication(
            "bench", client_credential=credential(), authority=standin.authority,
            instance_discovery=False, http_client=http, http_cache=http_cache)
        result = app.acquire_token_for_client([resource + "/.default"])
        assert "access_token" in result, result

    for name, credential in forms.items():
        request(credential)
        median, worst = timed(partial(request, credential), 40)
        print(f"token request on a new client, {name}: median {median:.1f} ms, "
              f"max {worst:.1f} ms")


if __name__ == "__main__":
    main()
