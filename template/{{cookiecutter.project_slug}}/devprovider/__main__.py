"""Local development mode: the identity-provider and API stand-ins plus this app, on localhost.

    python -m devprovider            # then open http://localhost:5000 and sign in as a test user

No Entra ID app registration is needed. The stand-in serves discovery and /token over https with
a CA made for this run (the app is told to trust it through CA_BUNDLE); the pages your browser
visits (sign-in, sign-out) are on plain http://localhost, so no certificate warning appears.
Nothing here is imported by the app itself: it only runs when you start it explicitly.
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import trustme

from devprovider import DEFAULT_USERS, StandIn

DEV_CLIENT_ID = "00000000-0000-4000-8000-00000000de00"  # registered with the stand-in only


def register_apis(standin: StandIn, downstream_apis: Mapping[str, Mapping[str, Any]]
                  ) -> dict[str, str]:
    """Register the app's custom APIs with the stand-in; return the app's API_* overrides."""
    env = {"API_GRAPH_BASE_URL": standin.graph_base_url}
    for name, api in downstream_apis.items():
        if name == "graph":
            continue
        scopes = [str(scope) for scope in api["scopes"]]
        resource = scopes[0].rsplit("/", 1)[0]
        short_names = [scope.rsplit("/", 1)[1] for scope in scopes]
        env[f"API_{name.upper()}_BASE_URL"] = standin.register_api(name, resource, short_names)
    return env


def write_tls_files(folder: Path) -> tuple[str, str, str]:
    """A throw-away CA and a server certificate for 127.0.0.1 and localhost."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca.cert_pem.write_to_path(str(paths[0]))
    cert.private_key_and_cert_chain_pem.write_to_path(str(paths[1]))
    cert.private_key_pem.write_to_path(str(paths[2]))
    return str(paths[0]), str(paths[1]), str(paths[2])


def start_dev_environment(folder: Path, app_url: str) -> tuple[StandIn, dict[str, str]]:
    """Start the stand-in and return it with the environment the app should run with."""
    # Deferred: only this package's own config, never the app's web layer.
    from {{ cookiecutter.package_name }}.config import DEFAULTS

    ca_path, cert_path, key_path = write_tls_files(folder)
    standin = StandIn(cert_path, key_path, browser_base_url="http://localhost:0").start()
    secret = secrets.token_urlsafe(24)
    redirect_uri = app_url + DEFAULTS.redirect_path
    standin.register_client(DEV_CLIENT_ID, secret, [redirect_uri], [app_url + "/"],
                            display_name=DEFAULTS.app_name)
    env = {
        "AUTHORITY": standin.authority,
        "OIDC_AUTHORITY": "",
        "INSTANCE_DISCOVERY": "false",
        "CLIENT_ID": DEV_CLIENT_ID,
        "CLIENT_SECRET": secret,
        "REDIRECT_URI": redirect_uri,
        "SECRET_KEY": secrets.token_urlsafe(48),
        "CA_BUNDLE": ca_path,
        "TOKEN_CACHE_DIR": str(folder / "token_cache"),
        **register_apis(standin, DEFAULTS.downstream_apis),
    }
    return standin, env


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devprovider", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=5000, help="port of the app (default 5000)")
    args = parser.parse_args(argv)
    app_url = f"http://localhost:{args.port}"
    with tempfile.TemporaryDirectory(prefix="devprovider-") as folder:
        standin, env = start_dev_environment(Path(folder), app_url)
        users = ", ".join(user.username for user in DEFAULT_USERS)
        print(f"\n  Local identity provider: {standin.authority}  (test users: {users})")
        print(f"  App: {app_url}  — open it and sign in.  Ctrl+C stops both.\n", flush=True)
        try:
{% if cookiecutter.framework == "flask" %}
            from {{ cookiecutter.package_name }}.app import create_app

            create_app(env).run(host="localhost", port=args.port)
{% endif %}
        finally:
            standin.stop()


if __name__ == "__main__":
    main()
