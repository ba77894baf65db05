"""Local development mode: the identity-provider and API stand-ins plus this app, on loopback.

    python -m devprovider              # then open http://localhost:5000 and sign in
    python -m devprovider --port 8000  # the app on another port

No app registration is needed. The stand-in serves discovery and /token over https with a CA
made for this run (the app is told to trust it through CA_BUNDLE). The pages your browser visits
(sign-in, sign-out) are on plain http, on ANOTHER SITE than the app, as a real provider's are:
the app on http://localhost:<port>, the sign-in pages on http://127.0.0.1:<another port> (and
the reverse with --host 127.0.0.1). So cookie rules for cross-site requests apply here as they
will in production, and no certificate warning appears.
Nothing here is imported by the app itself: it only runs when you start it explicitly.
"""

from __future__ import annotations

import argparse
import secrets
import signal
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import trustme

from devprovider import DEFAULT_USERS, StandIn

if TYPE_CHECKING:
    from {{ cookiecutter.package_name }}.core.settings import AppDefaults

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


def app_defaults() -> AppDefaults:
    """The defaults this app was generated with (its config module)."""
    # Deferred: only this package's own config, never the app's web layer.
    from {{ cookiecutter.package_name }}.config import DEFAULTS

    return DEFAULTS


def other_loopback_site(app_url: str) -> str:
    """The loopback host that is another site than the app's: localhost and 127.0.0.1 are
    different sites to a browser, as login.microsoftonline.com and your app are."""
    return "localhost" if urlsplit(app_url).hostname == "127.0.0.1" else "127.0.0.1"


def start_dev_environment(folder: Path, app_url: str, *, browser_port: int = 0,
                          optional_claims: tuple[str, ...] = ("login_hint",),
                          ) -> tuple[StandIn, dict[str, str]]:
    """Start the stand-in and return it with the environment the app at ``app_url`` should run
    with. Its browser pages go on the other loopback site (``browser_port``: 0 picks a free
    port); discovery and /token stay on https. An app generated for a generic OpenID Connect
    provider gets the stand-in's strict ``/oidc`` provider, an Entra app its Entra endpoints
    (whose ID tokens carry ``optional_claims``)."""
    defaults = app_defaults()
    ca_path, cert_path, key_path = write_tls_files(folder)
    pages = f"http://{other_loopback_site(app_url)}:{browser_port}"
    standin = StandIn(cert_path, key_path, browser_base_url=pages).start()
    secret = secrets.token_urlsafe(24)
    redirect_uri = app_url + defaults.redirect_path
    # The sign-out target (the app's home page) must be a redirect URI too: providers check
    # post_logout_redirect_uri against the redirect URIs.
    standin.register_client(DEV_CLIENT_ID, secret, [redirect_uri, app_url + "/"],
                            display_name=defaults.app_name, optional_claims=optional_claims)
    where = ({"AUTHORITY": "", "OIDC_AUTHORITY": standin.oidc_authority}
             if defaults.oidc_authority else
             {"AUTHORITY": standin.authority, "OIDC_AUTHORITY": ""})
    env = {
        **where,
        "INSTANCE_DISCOVERY": "false",
        "CLIENT_ID": DEV_CLIENT_ID,
        "CLIENT_SECRET": secret,
        "REDIRECT_URI": redirect_uri,
        "SECRET_KEY": secrets.token_urlsafe(48),
        "CA_BUNDLE": ca_path,
        "TOKEN_CACHE_DIR": str(folder / "token_cache"),
        **register_apis(standin, defaults.downstream_apis),
    }
    return standin, env


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # SIGTERM (docker stop, a process manager, kill) ends the process like Ctrl+C does, so
    # the `with` blocks below run and the temporary key folder is removed.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devprovider", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=5000,
                        help="port of the app (default 5000); open http://localhost:PORT")
    parser.add_argument("--host", choices=["localhost", "127.0.0.1"], default="localhost",
                        help="host name of the app (default localhost); the sign-in pages "
                             "are served on the other one, another site")
    args = parser.parse_args(argv)
    app_url = f"http://{args.host}:{args.port}"
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    with tempfile.TemporaryDirectory(prefix="devprovider-") as folder:
        standin, env = start_dev_environment(Path(folder), app_url)
        users = ", ".join(user.username for user in DEFAULT_USERS)
        issuer = env["OIDC_AUTHORITY"] or env["AUTHORITY"]
        print(f"\n  Open the app:   {app_url}   (sign in as a test user: {users})"
              f"\n  Sign-in pages:  {standin.browser_base_url}   (the local identity provider,"
              " on another site like a real one)"
              f"\n  Provider:       {issuer}   (discovery and tokens, https)"
              "\n  Ctrl+C stops both.\n", flush=True)
        try:
{% if cookiecutter.framework == "flask" %}
            from {{ cookiecutter.package_name }}.app import create_app

            create_app(env).run(host=args.host, port=args.port)
{% elif cookiecutter.framework == "django" %}
            import os

            # Django's own settings come from os.environ (settings.py); the app's, from env.
            os.environ.update({"DJANGO_SETTINGS_MODULE": "{{ cookiecutter.package_name }}.settings",
                               "SECRET_KEY": env["SECRET_KEY"], "ALLOWED_HOSTS": args.host,
                               "TRUSTED_PROXY_HOPS": "0"})
            import django
            from django.core.management import call_command
            from django.core.servers.basehttp import run

            from {{ cookiecutter.package_name }}.web.services import create_app

            django.setup()
            call_command("migrate", interactive=False, verbosity=0)  # db.sqlite3: user rows
            run(args.host, args.port, create_app(env), ipv6=False, threading=True)
{% elif cookiecutter.framework == "fastapi" %}
            import uvicorn

            from {{ cookiecutter.package_name }}.app import create_app

            # No proxy in front in local development: X-Forwarded-* headers are not trusted.
            uvicorn.run(create_app(env), host=args.host, port=args.port, proxy_headers=False)
{% endif %}
        finally:
            standin.stop()


if __name__ == "__main__":
    main()
