"""What the hand-written floors of measure 2 share: their settings and the one store read.

The floors (hand_flask.py, hand_django.py, hand_fastapi.py) are the page a careful engineer
writes by hand in each framework: no authentication, one pooled HTTP client built once (it
reads no environment per call), a fixed token, the same API call as the app's page, a small
Jinja template showing the answer. For an app on a shared store they also make the one read a
design that sees a sign-out on another instance at once cannot do without: a Redis GET of a
session-sized value, or one prepared SELECT of it.

Settings (environment, set by throughput.py):

    BENCH_API_URL          the API the page calls (the same URL as the app's)
    BENCH_FIXED_TOKEN      the bearer token sent with every call
    BENCH_USER_NAME        the name the page shows
    BENCH_STORE            "", "redis" or "sql": the read each page makes
    BENCH_STORE_URL        the store's URL (redis://..., or a SQLAlchemy URL: PostgreSQL,
                           MariaDB or SQLite, as TOKEN_CACHE_SQL_URL)
    BENCH_STORE_KEY        the key of the value read (written once at start-up)
    BENCH_SESSION_BYTES    the value's size (default 1024)
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TEMPLATES = Path(__file__).resolve().parent / "templates"
TABLE = "bench_hand_sessions"


@dataclass(frozen=True)
class HandSettings:
    api_url: str
    token: str
    user_name: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}


def hand_settings() -> HandSettings:
    return HandSettings(os.environ["BENCH_API_URL"], os.environ["BENCH_FIXED_TOKEN"],
                        os.environ.get("BENCH_USER_NAME", "A. User"))


def store_read() -> Callable[[], None] | None:
    """The one read a page makes on the configured store (None without one). The value is
    written here, once; each read must find it (a floor that read nothing would be too fast)."""
    kind = os.environ.get("BENCH_STORE", "")
    if not kind:
        return None
    url, key = os.environ["BENCH_STORE_URL"], os.environ["BENCH_STORE_KEY"]
    value = secrets.token_urlsafe(int(os.environ.get("BENCH_SESSION_BYTES", "1024")))[
        :int(os.environ.get("BENCH_SESSION_BYTES", "1024"))]
    if kind == "redis":
        return _redis_read(url, key, value)
    if kind == "sql":
        return _sql_read(url, key, value)
    raise ValueError(f"BENCH_STORE: unknown store {kind!r}")


def _redis_read(url: str, key: str, value: str) -> Callable[[], None]:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2)  # a pool, shared by the threads
    client.set(key, value)

    def read() -> None:
        if client.get(key) is None:
            raise RuntimeError("the floor's session value is missing from Redis")

    return read


def _sql_read(url: str, key: str, value: str) -> Callable[[], None]:
    """One connection per thread, kept (a pool in its simplest form), in autocommit; the
    SELECT prepared on the server where the driver can (psycopg; sqlite3 caches its own
    statements; PyMySQL has no server-side statements: a plain parameterised SELECT)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    backend = parsed.get_backend_name()
    connect: Callable[[], Any]
    if backend == "postgresql":
        import psycopg

        options: Any = parsed.query.get("options")

        def connect() -> Any:
            return psycopg.connect(host=parsed.host, port=parsed.port or 5432,
                                   user=parsed.username, password=parsed.password,
                                   dbname=parsed.database, autocommit=True,
                                   **({"options": options} if options else {}))

        select = f"SELECT value FROM {TABLE} WHERE id = %s"
        prepare: dict[str, Any] = {"prepare": True}
    elif backend in ("mysql", "mariadb"):
        import pymysql

        def connect() -> Any:
            return pymysql.connect(host=parsed.host or "127.0.0.1", port=parsed.port or 3306,
                                   user=parsed.username, password=parsed.password or "",
                                   database=parsed.database, autocommit=True)

        select = f"SELECT value FROM {TABLE} WHERE id = %s"
        prepare = {}
    elif backend == "sqlite":
        import sqlite3

        def connect() -> Any:
            connection = sqlite3.connect(parsed.database or ":memory:", isolation_level=None,
                                         check_same_thread=False)
            return connection

        select = f"SELECT value FROM {TABLE} WHERE id = ?"
        prepare = {}
    else:
        raise ValueError(f"BENCH_STORE_URL: no floor for {backend}")

    setup = connect()
    cursor = setup.cursor()
    cursor.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (id VARCHAR(64) PRIMARY KEY, "
                   "value TEXT NOT NULL)")
    cursor.execute(f"DELETE FROM {TABLE} WHERE id = {_placeholder(backend)}", (key,))
    cursor.execute(f"INSERT INTO {TABLE} (id, value) VALUES ({_placeholder(backend)}, "
                   f"{_placeholder(backend)})", (key, value))
    setup.close()
    local = threading.local()

    def read() -> None:
        connection = getattr(local, "connection", None)
        if connection is None:
            connection = local.connection = connect()
        if backend == "postgresql":
            row = connection.execute(select, (key,), **prepare).fetchone()
        else:
            cursor = connection.cursor()
            cursor.execute(select, (key,))
            row = cursor.fetchone()
        if row is None:
            raise RuntimeError("the floor's session row is missing")

    return read


def _placeholder(backend: str) -> str:
    return "?" if backend == "sqlite" else "%s"
