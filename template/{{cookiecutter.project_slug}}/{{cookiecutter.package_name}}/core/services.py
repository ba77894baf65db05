# Managed by the msal-webapp template: regenerate rather than edit (your code goes outside core/).
"""The composition root: the app's settings, its stores and its services, built once per app.

Every adapter starts the same way:

    settings = app_settings(environ, DEFAULTS)   # validated; a real start exits on a mistake
    services = build_services(settings)

and hands `services` to the core's page flows (core/flows.py). Nothing else in the core builds
objects from settings; the rules of the web (core/web.py) and of each layer take what they need
as arguments.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from dotenv import find_dotenv, load_dotenv

from . import log_redaction
from .auth import AuthService
from .authorization import Authorization, Tenants
from .downstream import DownstreamApis
from .health import Readiness
from .identity import MsalClients
from .sessions import Sessions
from .settings import (
    EXIT_BAD_SETTINGS,
    AppDefaults,
    Settings,
    SettingsError,
    load_settings,
    load_settings_or_exit,
)
from .stores import Expiry, Purpose, Store
from .token_cache import AccountCaches
from .web import CookieSpec, security_headers, session_cookie, strict_transport_security

log = logging.getLogger(__name__)


@dataclass
class Services:
    """Everything the page flows need, built once per app (per process, or per test app)."""

    settings: Settings
    sessions: Sessions
    caches: AccountCaches
    clients: MsalClients
    auth: AuthService
    apis: DownstreamApis
    authz: Authorization
    security_headers: dict[str, str]  # the same for every response: computed once
    session_cookie: CookieSpec
    # The headers of a response served over https: security_headers and HSTS.
    https_headers: dict[str, str]
    readiness: Readiness  # /readyz (core/health.py)


def build_services(settings: Settings, clock: Callable[[], float] = time.time) -> Services:
    """The app's services; `clock` (wall-clock seconds) is the one time source of sessions,
    sign-in flows and the web rules."""
    caches = AccountCaches(build_store(settings, "token_caches", clock),
                           settings.token_cache_prefix, l1=settings.token_cache_l1)
    sessions = Sessions(build_store(settings, "sessions", clock), settings.token_cache_prefix,
                        lifetime_seconds=settings.session_lifetime_seconds,
                        per_account=settings.sessions_per_account, clock=clock,
                        l1=settings.token_cache_l1,
                        read_along=lambda account: (caches.store, caches.key(account)))
    clients = MsalClients(settings, clock)
    tenants = Tenants(settings)
    auth = AuthService(settings, clients, caches, clock=clock,
                       tenant_allowed=tenants.allowed if tenants.checked else None)
    apis = DownstreamApis(settings, auth, clients.http)
    # An overage user's groups are kept beside the token caches, in the same store.
    authz = Authorization(settings, caches.store, settings.token_cache_prefix,
                          send=apis.send, acquire_user_token=auth.acquire_token,
                          tenants=tenants, clock=clock, acquire_app_token=auth.acquire_app_token,
                          forget_app_token=auth.forget_app_token)
    return Services(settings=settings, sessions=sessions, caches=caches, clients=clients,
                    auth=auth, apis=apis, authz=authz,
                    security_headers=security_headers(settings),
                    session_cookie=session_cookie(settings),
                    https_headers={**security_headers(settings),
                                   **strict_transport_security(settings)},
                    readiness=Readiness([sessions.store, caches.store], clients.discovery))


def app_settings(environ: Mapping[str, str] | None, defaults: AppDefaults) -> Settings:
    """The settings an app factory starts with, with logging set to their level.

    `environ` given (tests, an embedding program): from it alone, raising SettingsError. None
    (a real start): os.environ plus a .env file in the working directory (real variables win
    over it), and a mistake exits with the list of settings to fix."""
    if environ is None:
        load_dotenv(find_dotenv(usecwd=True))  # the working directory's, not the package's
        settings = load_settings_or_exit(os.environ, defaults)
    else:
        settings = load_settings(environ, defaults)
    logging.basicConfig(level=settings.log_level)
    log_redaction.install()  # no code, verifier or token in any log, at any level
    problem = startup_problem(settings)
    if problem is not None:
        error = SettingsError([problem])
        if environ is not None:
            raise error
        print(error, file=sys.stderr, flush=True)
        raise SystemExit(EXIT_BAD_SETTINGS)
    return settings


def build_store(settings: Settings, purpose: Purpose,
                clock: Callable[[], float] = time.time) -> Store:
    """The store for sessions or for token caches, each with its own bound and lifetime, so that
    one kind of entry never evicts the other; entries age by `clock` (wall-clock seconds).

    With TOKEN_CACHE_ENCRYPTION_KEYS, both kinds are encrypted at rest (see encrypted.py)."""
    if purpose == "sessions":
        expiry = Expiry(settings.session_lifetime_seconds, settings.session_absolute_seconds)
        max_entries = settings.session_max_entries
        directory = settings.token_cache_dir / "sessions"
    else:
        expiry = Expiry(settings.token_cache_sliding_seconds, settings.token_cache_ttl_seconds)
        max_entries = settings.token_cache_max_entries
        directory = settings.token_cache_dir
    store: Store
    backend = settings.token_cache_backend
    if backend == "filesystem":
        from .stores.filesystem import FileStore

        store = FileStore(directory, expiry, clock)
{% if cookiecutter.cache_backend == "redis" %}
    elif backend == "redis":
        from .stores.redis import RedisStore

        store = RedisStore(settings.token_cache_url, expiry, clock)
{% elif cookiecutter.cache_backend == "sql" %}
    elif backend == "sql":
        from .stores.sql import SqlStore

        store = SqlStore(settings.token_cache_url, expiry, clock)
{% endif %}
    else:
        from .stores.memory import MemoryStore

        store = MemoryStore(max_entries, expiry, timer=clock)
    if settings.encryption_keys:
        from .stores.encrypted import EncryptedStore

        store = EncryptedStore(store, settings.encryption_keys)
    return store


def startup_problem(settings: Settings) -> str | None:
    """What keeps the configured store from ever working (a SQL database whose tables are
    missing or out of date, or whose driver is not installed), as a message naming the fix;
    None otherwise. A server that does not answer now is not such a problem: it may come back,
    and pages say so meanwhile."""
{% if cookiecutter.cache_backend == "sql" %}
    if settings.token_cache_backend == "sql":
        from .stores import StoreError
        from .stores.sql import MissingDriverError, SqlStore

        try:
            store = SqlStore(settings.token_cache_url, Expiry(60, 60))
        except MissingDriverError as exc:
            return str(exc)
        try:
            return store.schema_problem()
        except StoreError as exc:
            log.warning("the token cache database cannot be reached at start-up: %s", exc)
        finally:
            store.close()
{% else %}
    del settings  # only a SQL store has a schema to check
{% endif %}
    return None
