"""The machine's real Redis, PostgreSQL and MariaDB for the shared-store tests.

Their URLs come from environment variables, with the defaults of a developer machine (or the
project's compose.yaml). A server that does not answer skips the tests that need it, with the
reason, unless MSAL_WEBAPP_REQUIRE_SERVICES=1 (a CI that has them all): then they fail.

Every test run works in its own namespace, so that suites running at once on one server never
meet: a Redis key prefix per test, a PostgreSQL schema or a MariaDB database per test process.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable

import pytest

REQUIRE_SERVICES = "MSAL_WEBAPP_REQUIRE_SERVICES"
REDIS_URL = os.environ.get("MSAL_WEBAPP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get("MSAL_WEBAPP_TEST_POSTGRES_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MYSQL_URL = os.environ.get("MSAL_WEBAPP_TEST_MYSQL_URL",
                           "mysql+pymysql://root@127.0.0.1:3306/test")


def unavailable(reason: str) -> None:
    """Skip the test for a missing server or browser, or fail it where they are required."""
    if os.environ.get(REQUIRE_SERVICES) == "1":
        pytest.fail(f"{REQUIRE_SERVICES}=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def unique_name(label: str) -> str:
    """A name no other test process uses (lower case, a valid SQL identifier)."""
    return f"{label}_{os.getpid()}_{secrets.token_hex(4)}"


def redacted_url(url: str) -> str:
    """`url` without its password, for messages."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username or ''}:***@{host}").geturl()


class RedisNamespace:
    """A key prefix of its own on the Redis at REDIS_URL, its keys deleted on leaving:
    `with RedisNamespace("label") as ns: ... ns.prefix ...`. Skips the test (or fails it, see
    `unavailable`) when no Redis answers there. `client` is a plain redis-py client on the same
    server, to look at the keys as they are stored."""

    def __init__(self, label: str) -> None:
        import redis

        self.url = REDIS_URL
        self.prefix = f"{unique_name(label)}:"
        self.client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2,
                                           socket_timeout=2)

    def __enter__(self) -> RedisNamespace:
        import redis

        try:
            self.client.ping()
        except (redis.RedisError, OSError) as exc:
            self.client.close()
            unavailable(f"no Redis at {redacted_url(REDIS_URL)} ({type(exc).__name__})")
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            keys = list(self.client.scan_iter(match=f"{self.prefix}*", count=1000))
            if keys:
                self.client.delete(*keys)
        finally:
            self.client.close()


class SharedStore:
    """The store a redis or sql project's app tests run on: the machine's real server, in a
    namespace of this test process (a Redis key prefix; a PostgreSQL schema, migrated), opened
    on first use; `environment()` gives each app its own TOKEN_CACHE_PREFIX in it. Nothing for
    a memory or filesystem project."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self._base: dict[str, str] | None = None
        self._local: dict[str, str] | None = None
        self._close: list[Callable[[], None]] = []

    def _open(self) -> dict[str, str]:
        if self.backend == "redis":
            namespace = RedisNamespace("app")
            namespace.__enter__()  # skips (or fails) the test if Redis does not answer
            self._close.append(lambda: namespace.__exit__(None, None, None))
            # "<namespace>:" + each app's own: the namespace's cleanup finds every app's keys.
            return {"TOKEN_CACHE_BACKEND": "redis", "TOKEN_CACHE_REDIS_URL": REDIS_URL,
                    "TOKEN_CACHE_PREFIX": namespace.prefix}
{% if cookiecutter.cache_backend == "sql" %}
        database = SqlDatabase("postgresql")
        url = database.__enter__()
        self._close.append(lambda: database.__exit__(None, None, None))
        return {"TOKEN_CACHE_BACKEND": "sql", "TOKEN_CACHE_SQL_URL": url,
                "TOKEN_CACHE_PREFIX": f"{unique_name('app')}:"}
{% else %}
        raise AssertionError(f"no shared store for {self.backend}")
{% endif %}

    def environment(self) -> dict[str, str]:
        if self.backend not in ("redis", "sql"):
            return {}
        if self._base is None:
            self._base = self._open()
        # Apps of one process share the namespace; each has its own prefix within it.
        return {**self._base,
                "TOKEN_CACHE_PREFIX": self._base["TOKEN_CACHE_PREFIX"] + secrets.token_hex(4)}

    def local_environment(self) -> dict[str, str]:
        """For apps that are built but serve no user (start-up and adapter tests): a sql
        project's store as a migrated SQLite file of this process, which needs no server."""
{% if cookiecutter.cache_backend == "sql" %}
        if self._local is None:
            database = SqlDatabase("sqlite")
            self._local = {"TOKEN_CACHE_SQL_URL": database.__enter__()}
            self._close.append(lambda: database.__exit__(None, None, None))
        return self._local
{% else %}
        return {}
{% endif %}

    def close(self) -> None:
        while self._close:
            self._close.pop()()
        self._base = self._local = None


_SHARED: SharedStore | None = None


def shared_store() -> SharedStore:
    """This test process's SharedStore for the project's baked backend."""
    global _SHARED
    if _SHARED is None:
        from {{ cookiecutter.package_name }}.config import DEFAULTS

        _SHARED = SharedStore(DEFAULTS.token_cache_backend)
    return _SHARED


{% if cookiecutter.cache_backend == "sql" %}
SQL_DIALECTS = ("sqlite", "postgresql", "mariadb")


class SqlDatabase:
    """A database of this test process's own for the sql backend, dropped on leaving:
    `with SqlDatabase("postgresql") as url: ...`. A SQLite file (in `directory`, else a
    temporary folder), a new schema on the PostgreSQL at POSTGRES_URL (the URL's search_path),
    or a new database on the MariaDB at MYSQL_URL. `migrate`: its tables created by the
    documented upgrade (`python -m <package>.core.stores.sql upgrade`, called in-process),
    else empty. Skips the test (or fails it, see `unavailable`) when no server answers."""

    def __init__(self, dialect: str, directory: str | os.PathLike[str] | None = None, *,
                 migrate: bool = True) -> None:
        if dialect not in SQL_DIALECTS:
            raise ValueError(f"no such SQL dialect: {dialect!r} (one of {SQL_DIALECTS})")
        self.dialect = dialect
        self.name = unique_name("msal_webapp_test")
        self.url = ""
        self._directory = directory
        self._temporary: str | None = None
        self._migrate = migrate
        self._admin: object = None  # the server's engine, to create and drop

    def __enter__(self) -> str:
        import tempfile

        import sqlalchemy as sa

        if self.dialect == "sqlite":
            if self._directory is None:
                self._temporary = self._directory = tempfile.mkdtemp(prefix="msal-webapp-sql-")
            self.url = f"sqlite:///{os.path.join(self._directory, self.name + '.sqlite3')}"
        else:
            server = sa.make_url(POSTGRES_URL if self.dialect == "postgresql" else MYSQL_URL)
            admin = sa.create_engine(server, isolation_level="AUTOCOMMIT",
                                     connect_args={"connect_timeout": 3})
            try:
                with admin.connect() as connection:
                    connection.execute(sa.text(f"CREATE {self._kind()} {self.name}"))
            except sa.exc.SQLAlchemyError as exc:
                admin.dispose()
                reason = getattr(exc, "orig", None) or exc
                unavailable(f"no {'PostgreSQL' if self.dialect == 'postgresql' else 'MariaDB'} "
                            f"at {server.host}:{server.port} ({type(reason).__name__}: {reason})")
            self._admin = admin
            if self.dialect == "postgresql":
                server = server.update_query_dict({"options": f"-csearch_path={self.name}"})
            else:
                server = server.set(database=self.name)
            self.url = server.render_as_string(hide_password=False)
        if self._migrate:
            # Not `stores import sql`: mypy refuses it in a project without the sql backend.
            from {{ cookiecutter.package_name }}.core.stores.sql import upgrade

            try:
                upgrade(self.url)
            except BaseException:
                self.__exit__(None, None, None)
                raise
        return self.url

    def _kind(self) -> str:
        return "SCHEMA" if self.dialect == "postgresql" else "DATABASE"

    def __exit__(self, *exc_info: object) -> None:
        import shutil

        import sqlalchemy as sa

        admin, self._admin = self._admin, None
        if isinstance(admin, sa.Engine):
            try:
                with admin.connect() as connection:
                    cascade = " CASCADE" if self.dialect == "postgresql" else ""
                    connection.execute(sa.text(f"DROP {self._kind()} {self.name}{cascade}"))
            finally:
                admin.dispose()
        if self._temporary is not None:
            shutil.rmtree(self._temporary, ignore_errors=True)
            self._temporary = None
{% endif %}
