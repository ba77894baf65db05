"""Local development mode: the identity-provider and API stand-ins plus this app, on loopback.

    python -m devprovider              # then open http://localhost:5000 and sign in
    python -m devprovider --port 8000  # the app on another port
    python -m devprovider --provider-only --port 8000   # only the stand-in: start the app
                                       # yourself with the settings in devprovider.env

No app registration is needed. The stand-in serves discovery and /token over https with a CA
made for this run (the app is told to trust it through CA_BUNDLE). The pages your browser visits
(sign-in, sign-out) are on plain http, on ANOTHER SITE than the app, as a real provider's are:
the app on http://localhost:<port>, the sign-in pages on http://127.0.0.1:<another port> (and
the reverse with --host 127.0.0.1). So cookie rules for cross-site requests apply here as they
will in production, and no certificate warning appears.
The test users get the app's roles and groups (see `set_up_authorization`): alice every one, bob
none, dana (when the app names groups) more groups than a token carries. The sign-in page shows
each user's roles and groups.
Nothing here is imported by the app itself: it only runs when you start it explicitly.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
{% if cookiecutter.framework in ("django", "flask") %}
import errno
{% endif %}
import os
import secrets
import shlex
import signal
{% if cookiecutter.framework in ("django", "flask") %}
import socketserver
import sys
{% endif %}
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from devprovider import GRAPH_RESOURCE, StandIn, TestUser, registration
from devprovider.b2c import PASSWORD_RESET, PROFILE_EDIT, SIGN_UP_SIGN_IN
from devprovider.model import SIGN_IN_AUDIENCES as MODELLED_AUDIENCES

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
        if api.get("app_only"):
            # Its one scope is `<resource>/.default`: the API takes app tokens only, holding
            # the app role its registration defines (granted with `grant_app_only_apis`).
            env[f"API_{name.upper()}_BASE_URL"] = standin.register_api(
                name, resource, [], app_roles=[APP_ONLY_API_ROLE])
            continue
        short_names = [scope.rsplit("/", 1)[1] for scope in scopes]
        env[f"API_{name.upper()}_BASE_URL"] = standin.register_api(name, resource, short_names)
    return env


# The app role a stand-in app-only API requires of the tokens it accepts (an application
# permission its registration defines, which an administrator grants the app).
APP_ONLY_API_ROLE = "Access.All"


def grant_app_only_apis(standin: StandIn, client_id: str,
                        downstream_apis: Mapping[str, Mapping[str, Any]]) -> None:
    """Grant the registered client `client_id` the application permission of each of the
    app's app-only APIs, as an administrator's consent does: its client credentials tokens for
    those resources carry it in `roles`."""
    for api in downstream_apis.values():
        if api.get("app_only"):
            resource = str(api["scopes"][0]).rsplit("/", 1)[0]
            standin.grant_app_permissions(client_id, resource, [APP_ONLY_API_ROLE])


# Local development's test user in more groups than a token can carry (the groups overage).
OVERAGE_USER = TestUser("dana@contoso.test", "Dana Overage",
                        "da7a0000-0000-4000-8000-00000000da7a")
OVERAGE_EXTRA_GROUPS = 250
# What the app's own token needs for /users/{id}/checkMemberGroups (Graph's least privileged
# application permissions for it).
OVERAGE_APP_PERMISSIONS = ("User.Read.All", "GroupMember.Read.All")


def set_up_authorization(standin: StandIn, authorization: Mapping[str, Any],
                         client_id: str = DEV_CLIENT_ID) -> None:
    """Give the test users the app's roles and groups (``DEFAULTS.authorization``: ``roles``,
    ``groups`` name -> object id, ``groups_overage``), so each guard can be tried by hand:
    alice has every role and every named group (in her ID token), bob none, and, when the app
    names groups, dana@contoso.test is in every named group plus 250 others (more than a token
    carries: her ID token has the overage claims, and the app must ask Microsoft Graph). When
    the overage is resolved with the app's own token, the registration is granted the
    application permissions that needs."""
    roles = [str(role) for role in authorization.get("roles") or []]
    named = {str(name): str(uuid.UUID(str(group)))
             for name, group in dict(authorization.get("groups") or {}).items()}
    standin.group_names.update({group: name for name, group in named.items()})
    standin.update_user("alice@contoso.test", roles=roles, groups=list(named.values()))
    standin.update_user("bob@contoso.test", roles=[], groups=[])
    if named:
        others = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"devprovider:dana:{n}"))
                  for n in range(OVERAGE_EXTRA_GROUPS)]
        standin.add_user(dataclasses.replace(OVERAGE_USER,
                                             groups=(*named.values(), *others)))
    if authorization.get("groups_overage") == "app":
        standin.grant_app_permissions(client_id, GRAPH_RESOURCE, OVERAGE_APP_PERMISSIONS)


def write_tls_files(folder: Path) -> tuple[str, str, str]:
    """A throw-away CA and a server certificate for 127.0.0.1 and localhost."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca.cert_pem.write_to_path(str(paths[0]))
    cert.private_key_and_cert_chain_pem.write_to_path(str(paths[1]))
    cert.private_key_pem.write_to_path(str(paths[2]))
    return str(paths[0]), str(paths[1]), str(paths[2])


# The issuer and subject of the federated token that local development puts in the token file
# (on AKS: the cluster's OIDC issuer and the pod's service account).
DEV_CLUSTER_ISSUER = "https://oidc.cluster.localhost/dev"
DEV_SERVICE_ACCOUNT = "system:serviceaccount:default:app"
TOKEN_EXCHANGE = "api://AzureADTokenExchange"


def dev_certificate(folder: Path, name: str) -> tuple[Path, Path, str]:
    """A self-signed certificate and its key for the app's registration with the stand-in:
    (certificate file, key file, certificate PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=90))
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    cert_path, key_path = folder / "client-cert.pem", folder / "client-key.pem"
    cert_path.write_bytes(pem)
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path, pem.decode("ascii")


def dev_credential(standin: StandIn, folder: Path, defaults: AppDefaults, secret: str
                   ) -> dict[str, str]:
    """The app's credential for local development, of the kind the project was generated for,
    registered with the stand-in: its variables.

    A certificate is made here; a federated token file gets a token of a stand-in "cluster"
    issuer; a managed identity is the stand-in's App Service emulation. A function of your own
    cannot be known here: local development then signs in with a secret."""
    baked = defaults.credential
    kind = baked.get("CLIENT_CREDENTIAL", "secret")
    if kind == "certificate":
        cert_path, key_path, pem = dev_certificate(folder, defaults.app_name)
        standin.register_client_certificate(DEV_CLIENT_ID, pem)
        return {"CLIENT_CREDENTIAL": "certificate", "CLIENT_CERTIFICATE_FILE": str(cert_path),
                "CLIENT_PRIVATE_KEY_FILE": str(key_path)}
    if kind == "assertion" and "CLIENT_ASSERTION_MANAGED_IDENTITY" in baked:
        # The identity the project names (a user-assigned one, made up when it names none),
        # or the system-assigned one if it asks for it: trusted here although Entra documents
        # only user-assigned identities as federated credentials (the app warns at start-up).
        named = baked["CLIENT_ASSERTION_MANAGED_IDENTITY"] or str(uuid.uuid4())
        system = named.lower() == "system"
        standin.system_identity_federation = system
        identity = standin.add_managed_identity(None if system else named)
        standin.add_federated_credential(DEV_CLIENT_ID, issuer=standin.issuer,
                                         subject=identity.object_id, audience=TOKEN_EXCHANGE)
        # MSAL finds App Service's managed identity endpoint by these variables, which it
        # reads from the process environment.
        os.environ["IDENTITY_ENDPOINT"] = standin.identity_endpoint
        os.environ["IDENTITY_HEADER"] = standin.identity_header
        return {"CLIENT_CREDENTIAL": "assertion",
                "CLIENT_ASSERTION_MANAGED_IDENTITY": "system" if system else identity.client_id}
    if kind == "assertion" and not baked.get("CLIENT_ASSERTION_CALLABLE"):
        issuer = standin.external_issuer(DEV_CLUSTER_ISSUER)
        standin.add_federated_credential(DEV_CLIENT_ID, issuer=DEV_CLUSTER_ISSUER,
                                         subject=DEV_SERVICE_ACCOUNT, audience=TOKEN_EXCHANGE)
        token = folder / "azure-identity-token"
        # A day: longer than a development session (kubelet renews the real one hourly).
        token.write_text(issuer.mint(DEV_SERVICE_ACCOUNT, audience=TOKEN_EXCHANGE,
                                     lifetime=24 * 3600))
        return {"CLIENT_CREDENTIAL": "assertion", "CLIENT_ASSERTION_FILE": str(token)}
    return {"CLIENT_CREDENTIAL": "secret", "CLIENT_SECRET": secret}


def describe_credential(env: Mapping[str, str]) -> str:
    """What the app proves its identity with in local development, for the start-up lines."""
    if env.get("CLIENT_CERTIFICATE_FILE"):
        return f"a certificate made for this run ({env['CLIENT_CERTIFICATE_FILE']})"
    if env.get("CLIENT_ASSERTION_MANAGED_IDENTITY"):
        which = env["CLIENT_ASSERTION_MANAGED_IDENTITY"]
        which = ("the system-assigned" if which == "system"
                 else f"the user-assigned {which}")
        return (f"{which} managed identity (App Service emulation at "
                f"{os.environ.get('IDENTITY_ENDPOINT')})")
    if env.get("CLIENT_ASSERTION_FILE"):
        return f"a federated token file ({env['CLIENT_ASSERTION_FILE']})"
    callable_ = app_defaults().credential.get("CLIENT_ASSERTION_CALLABLE")
    if callable_:
        return (f"a client secret made for this run (your assertion function {callable_} is "
                "for real deployments)")
    return "a client secret made for this run"


def dev_store(folder: Path) -> tuple[dict[str, str], str]:
    """The store sessions and token caches live in for this run, and a line saying which.

    A redis project uses the Redis at TOKEN_CACHE_REDIS_URL (default localhost, as compose.yaml
    starts it) under a prefix of this run, or memory if none answers; a sql project the
    database of TOKEN_CACHE_SQL_URL if set, else a SQLite file of this run, its tables made by
    the documented upgrade."""
{% if cookiecutter.cache_backend == "redis" %}
    import redis

    url = os.environ.get("TOKEN_CACHE_REDIS_URL") or "redis://localhost:6379/0"
    where = urlsplit(url).hostname or url.split("://", 1)[0]  # never a password
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2).ping()
    except (redis.RedisError, OSError, ValueError) as exc:
        return ({"TOKEN_CACHE_BACKEND": "memory"},
                f"memory: no Redis answers at {where} ({type(exc).__name__}); "
                "`docker compose up -d` starts one")
    prefix = f"{app_defaults().app_slug}:dev-{secrets.token_hex(4)}"
    return ({"TOKEN_CACHE_REDIS_URL": url, "TOKEN_CACHE_PREFIX": prefix},
            f"Redis at {where}, keys {prefix}:* (they expire by themselves)")
{% elif cookiecutter.cache_backend == "sql" %}
    from {{ cookiecutter.package_name }}.core.stores import StoreError
    from {{ cookiecutter.package_name }}.core.stores.sql import upgrade

    # TOKEN_CACHE_SQL_URL set in the environment: that database (its tables made or brought up
    # to date as the documented upgrade does); else a SQLite file of this run.
    given = os.environ.get("TOKEN_CACHE_SQL_URL", "").strip()
    url = given or f"sqlite:///{folder / 'token_cache.sqlite3'}"
    try:
        upgrade(url)  # what `python -m {{ cookiecutter.package_name }}.core.stores.sql upgrade` runs
    except StoreError as exc:
        raise SystemExit(f"python -m devprovider: {exc}") from None
    if given:
        import sqlalchemy as sa

        # Never the password.
        return ({"TOKEN_CACHE_SQL_URL": url},
                f"TOKEN_CACHE_SQL_URL ({sa.make_url(url).render_as_string(hide_password=True)})")
    return ({"TOKEN_CACHE_SQL_URL": url},
            f"SQLite, {folder / 'token_cache.sqlite3'} (this run; TOKEN_CACHE_SQL_URL picks "
            "another database)")
{% else %}
    del folder  # the project's backend needs no server
    backend = app_defaults().token_cache_backend
    return {}, f"{backend}" + (" (in the run's folder)" if backend == "filesystem" else "")
{% endif %}


def app_defaults() -> AppDefaults:
    """The defaults this app was generated with (its config module)."""
    # Deferred: only this package's own config, never the app's web layer.
    from {{ cookiecutter.package_name }}.config import DEFAULTS

    return DEFAULTS


def provider_environment(standin: StandIn, defaults: AppDefaults) -> dict[str, str]:
    """Where the app finds the stand-in: its strict ``/oidc`` provider for an app generated for
    a generic OpenID Connect provider; for an Azure AD B2C app its B2C mode, with the app's user
    flows (``b2c.py``); else its Entra endpoints (an External ID app too: its ciamlogin.com host
    cannot be served locally)."""
    if defaults.oidc_authority:
        return {"AUTHORITY": "", "OIDC_AUTHORITY": standin.oidc_authority}
    segments = urlsplit(defaults.authority).path.strip("/").split("/")
    if len(segments) == 2 and segments[1].lower().startswith("b2c_"):
        flows = {segments[1]: SIGN_UP_SIGN_IN,
                 getattr(defaults, "b2c_password_reset_flow", ""): PASSWORD_RESET,
                 getattr(defaults, "b2c_profile_edit_flow", ""): PROFILE_EDIT}
        for flow, kind in flows.items():
            if flow:
                standin.add_b2c_user_flow(flow, kind)
        # The user flows return the object id, as the README's registration steps choose.
        standin.b2c_claims.add("oid")
        return {"AUTHORITY": standin.b2c_authority(segments[1]), "OIDC_AUTHORITY": ""}
    return {"AUTHORITY": standin.authority, "OIDC_AUTHORITY": ""}


def other_loopback_site(app_url: str) -> str:
    """The loopback host that is another site than the app's: localhost and 127.0.0.1 are
    different sites to a browser, as login.microsoftonline.com and your app are."""
    return "localhost" if urlsplit(app_url).hostname == "127.0.0.1" else "127.0.0.1"


def start_dev_environment(folder: Path, app_url: str, *, browser_port: int = 0,
                          provider_port: int = 0,
                          optional_claims: tuple[str, ...] | None = None,
                          ) -> tuple[StandIn, dict[str, str]]:
    """Start the stand-in and return it with the environment the app at ``app_url`` should run
    with. Its browser pages go on the other loopback site (``browser_port``: 0 picks a free
    port); discovery and /token stay on https. An app generated for a generic OpenID Connect
    provider gets the stand-in's strict ``/oidc`` provider, an Entra app its Entra endpoints,
    on ``provider_port`` (0: a free one). Its client is registered from the project's
    registration.json when it has one (its ID tokens carry the optional claims the file names,
    unless ``optional_claims`` says otherwise). Its credential is of the project's kind (see
    `dev_credential`); its test users have the app's roles and groups (`set_up_authorization`)."""
    defaults = app_defaults()
    ca_path, cert_path, key_path = write_tls_files(folder)
    pages = f"http://{other_loopback_site(app_url)}:{browser_port}"
    standin = StandIn(cert_path, key_path, browser_base_url=pages, port=provider_port).start()
    secret = secrets.token_urlsafe(24)
    redirect_uri = app_url + defaults.redirect_path
    description = registration.load()
    if description is not None:
        # The project's registration.json, the one `msal-webapp register` registers in Entra:
        # a redirect URI missing there is refused here too (AADSTS50011).
        reg = registration.client_registration(description, app_url)
        standin.register_client(DEV_CLIENT_ID, secret, reg.redirect_uris,
                                display_name=reg.display_name or defaults.app_name,
                                optional_claims=(reg.optional_claims if optional_claims is None
                                                 else optional_claims),
                                group_membership_claims=reg.group_membership_claims,
                                front_channel_logout_url=reg.front_channel_logout_url,
                                # Who may sign in: a single-tenant registration refuses other
                                # tenants' accounts and the organizations/common authorities.
                                # Personal Microsoft accounts are not modelled: such a
                                # registration is taken as multi-tenant here.
                                sign_in_audience=(reg.sign_in_audience
                                                  if reg.sign_in_audience in MODELLED_AUDIENCES
                                                  else "AzureADMultipleOrgs"))
    else:
        # The sign-out target (the app's home page) must be a redirect URI too: providers check
        # post_logout_redirect_uri against the redirect URIs.
        standin.register_client(DEV_CLIENT_ID, secret, [redirect_uri, app_url + "/"],
                                display_name=defaults.app_name,
                                optional_claims=(("login_hint",) if optional_claims is None
                                                 else optional_claims),
                                # An app generated before single sign-out has no such path.
                                front_channel_logout_url=app_url + getattr(
                                    defaults, "front_channel_logout_path", "/logout/frontchannel"))
    credential = dev_credential(standin, folder, defaults, secret)
    # An app generated before authorization existed has no such field.
    set_up_authorization(standin, getattr(defaults, "authorization", None) or {})
    if description is not None:
        # Entra's `roles` claim carries only app roles the registration defines.
        reg = registration.client_registration(description, app_url)
        defined = set(reg.app_roles)
        for name, user in list(standin.users.items()):
            standin.update_user(name, roles=[r for r in user.roles if r in defined])
            # Tenant-wide admin consent (`msal-webapp register --admin-consent`) to the
            # permissions only an administrator may grant: no user is asked for them. Any other
            # scope the app asks for is consented to by the user on the sign-in page (Entra's
            # dynamic consent), as before.
            if reg.admin_consented_scopes:
                standin.grant_consent(name, DEV_CLIENT_ID, list(reg.admin_consented_scopes))
    env = {
        **provider_environment(standin, defaults),
        "INSTANCE_DISCOVERY": "false",
        "CLIENT_ID": DEV_CLIENT_ID,
        **credential,
        "REDIRECT_URI": redirect_uri,
        "SECRET_KEY": secrets.token_urlsafe(48),
        "CA_BUNDLE": ca_path,
        "TOKEN_CACHE_DIR": str(folder / "token_cache"),
        **register_apis(standin, defaults.downstream_apis),
    }
    grant_app_only_apis(standin, DEV_CLIENT_ID, defaults.downstream_apis)
    store, described = dev_store(folder)
    env.update(store)
    env["DEV_STORE"] = described  # for the start-up lines; the app ignores it
    return standin, env


{% if cookiecutter.framework in ("django", "flask") %}
class QuietOnCtrlC(socketserver.BaseServer):
    """The development server's first base, before the framework's server class: quiet about
    the connection Ctrl+C closed. A SIGINT that lands while a new connection is handed to its
    thread makes socketserver close it (the bare `except:` around process_request) under that
    thread, whose read then fails with EBADF; any other error is the framework's to report."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if not (isinstance(error, OSError) and error.errno == errno.EBADF):
            super().handle_error(request, client_address)


{% endif %}
def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # SIGTERM (docker stop, a process manager, kill) ends the process like Ctrl+C does, so
    # the `with` blocks below run and the temporary key folder is removed.
    raise SystemExit(128 + signum)


def _port(value: str) -> int:
    port = int(value)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (0-65535)")
    return port


def _env_port(name: str) -> int:
    """A port from the environment variable `name` (0, a free port, when unset)."""
    value = os.environ.get(name, "").strip()
    try:
        return _port(value) if value else 0
    except (ValueError, argparse.ArgumentTypeError):
        raise SystemExit(f"python -m devprovider: {name}={value!r} is not a port (0-65535)"
                         ) from None


def write_env_file(path: Path, env: Mapping[str, str]) -> None:
    """The app's settings as `NAME='value'` lines, for `set -a; . FILE; set +a` (readable by
    this user only: it holds the run's client secret and SECRET_KEY)."""
    lines = [f"{name}={shlex.quote(value)}" for name, value in sorted(env.items())
             if name != "DEV_STORE"]
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write("# Written by python -m devprovider --provider-only; valid while it runs.\n"
                   + "\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devprovider", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=_port, default=5000,
                        help="port of the app (default 5000); open http://localhost:PORT")
    parser.add_argument("--host", choices=["localhost", "127.0.0.1"], default="localhost",
                        help="host name of the app (default localhost); the sign-in pages "
                             "are served on the other one, another site")
    parser.add_argument("--provider-port", type=_port,
                        default=_env_port("DEVPROVIDER_PROVIDER_PORT"),
                        help="port of the provider's https endpoints: discovery, tokens, APIs "
                             "(default $DEVPROVIDER_PROVIDER_PORT, else a free port)")
    parser.add_argument("--pages-port", type=_port, default=_env_port("DEVPROVIDER_PAGES_PORT"),
                        help="port of the sign-in pages (default $DEVPROVIDER_PAGES_PORT, else "
                             "a free port)")
    parser.add_argument("--provider-only", action="store_true",
                        help="run only the stand-in and write the app's settings to --env-file; "
                             "start the app yourself (e.g. under the production server) on "
                             "http://HOST:PORT")
    parser.add_argument("--env-file", type=Path, default=Path("devprovider.env"),
                        help="with --provider-only: where to write the app's settings "
                             "(default devprovider.env)")
    args = parser.parse_args(argv)
    app_url = f"http://{args.host}:{args.port}"
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    with tempfile.TemporaryDirectory(prefix="devprovider-") as folder:
        try:
            standin, env = start_dev_environment(Path(folder), app_url,
                                                 browser_port=args.pages_port,
                                                 provider_port=args.provider_port)
        except OSError as exc:  # a fixed port in use
            raise SystemExit(f"python -m devprovider: cannot listen: {exc.strerror}; choose "
                             "other ports (--provider-port, --pages-port)") from None
        if os.environ.get("LOG_LEVEL"):
            env["LOG_LEVEL"] = os.environ["LOG_LEVEL"]  # e.g. DEBUG, as in production
        users = ", ".join(user.username for user in standin.users.values())
        issuer = env["OIDC_AUTHORITY"] or env["AUTHORITY"]
        if args.provider_only:
            # A managed identity credential: MSAL finds the endpoint in the process environment
            # (`dev_credential` sets it in this one), so the app's process needs it too.
            write_env_file(args.env_file, {
                **env, **{name: os.environ[name] for name in ("IDENTITY_ENDPOINT",
                                                               "IDENTITY_HEADER")
                          if env.get("CLIENT_ASSERTION_MANAGED_IDENTITY") and name in os.environ}})
        print(f"\n  {'The app, once started' if args.provider_only else 'Open the app'}:"
              f"   {app_url}   (sign in as a test user: {users})"
              f"\n  Sign-in pages:  {standin.browser_base_url}   (the local identity provider,"
              " on another site like a real one)"
              f"\n  Provider:       {issuer}   (discovery and tokens, https)"
              f"\n  App credential: {describe_credential(env)}"
              f"\n  Sessions, tokens: {env['DEV_STORE']}", flush=True)
        if args.provider_only:
            print(f"  App settings:   {args.env_file}   (start the app with them: set -a; "
                  f". {shlex.quote(str(args.env_file))}; set +a; then the server)"
                  "\n  Ctrl+C stops the provider.\n", flush=True)
            try:
                while True:
                    time.sleep(3600)  # the stand-in serves from its own threads
            except KeyboardInterrupt:
                pass
            finally:
                standin.stop()
                args.env_file.unlink(missing_ok=True)
            return
        print("  Ctrl+C stops both.\n", flush=True)
        try:
{% if cookiecutter.framework == "flask" %}
            from werkzeug.serving import ThreadedWSGIServer

            from {{ cookiecutter.package_name }}.app import create_app

            class DevServer(QuietOnCtrlC, ThreadedWSGIServer):
                """Werkzeug's development server (what `app.run` starts)."""

            # serve_forever ends on Ctrl+C (KeyboardInterrupt) and closes the socket.
            DevServer(args.host, args.port, create_app(env)).serve_forever()
{% elif cookiecutter.framework == "django" %}
            from django.core.management import call_command
            from django.core.servers.basehttp import WSGIServer, run

            class DevServer(QuietOnCtrlC, WSGIServer):
                """Django's development server (what `runserver` starts)."""

            from {{ cookiecutter.package_name }}.web.services import create_app

            # The first app of the process gives Django its settings (SECRET_KEY, the hosts).
            app = create_app({**env, "ALLOWED_HOSTS": args.host})
            call_command("migrate", interactive=False, verbosity=0)  # db.sqlite3: user rows
            run(args.host, args.port, app, ipv6=False, threading=True, server_cls=DevServer)
{% elif cookiecutter.framework == "fastapi" %}
            import uvicorn

            from {{ cookiecutter.package_name }}.app import create_app

            # No proxy in front in local development: X-Forwarded-* headers are not trusted.
            uvicorn.run(create_app(env), host=args.host, port=args.port, proxy_headers=False)
{% endif %}
        except KeyboardInterrupt:
            pass  # Ctrl+C: a stop, not an error (Django's server lets it through)
        finally:
            standin.stop()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # Ctrl+C while starting (before "Ctrl+C stops"): no traceback
        raise SystemExit(130) from None
