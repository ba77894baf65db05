# Managed by the msal-webapp template: regenerate rather than edit (your code goes outside core/).
"""A SQL database (SQLAlchemy 2: PostgreSQL, MySQL/MariaDB, SQLite) shared by every app instance.

- Two tables with fixed names, so that several apps can share one database (their keys are
  already prefixed by each app's prefix): `msal_webapp_entries` (key_hash, value, version,
  created, used, expires_at) and `msal_webapp_leases` (key_hash, holder, expires_at). Rows are
  named by the sha256 of their key: no account id or session id appears in the database.
- Times are milliseconds of the services' clock. An entry is absent once `expires_at` (see
  Expiry) has passed, whether or not a purge has deleted its row yet. Writing is one upsert
  that keeps the creation time of an entry that is still alive (the absolute expiry) and resets
  it otherwise; a read renews the sliding expiry with an UPDATE at most every
  RENEW_AFTER_SECONDS, so the read path writes at most once per entry per five minutes.
  `versions_of` reads the entries of every SQL store of the process on the same database (a
  page's session and its account's token cache) with one SELECT.
- `version` is a random token written with every value: it changes on every `set`, never on a
  renewal, and never comes back (an entry deleted and written again has a new one).
- `lock` is a lease: a row inserted, or taken over once expired, by one statement in its own
  short transaction, committed at once. No connection and no row lock is held while the lease
  is, because the holder calls the identity provider meanwhile; a holder that dies frees it
  after LEASE_SECONDS. A waiter polls with short growing sleeps. Release deletes the row only if
  it still names its holder, so a lease taken over after expiring is never released by the
  request it was taken from.
- Expired rows are deleted by `purge`, which `set` runs at most once an hour.
- Reads run in autocommit: one round trip for the SELECT, no BEGIN and COMMIT. The pool does
  not ping a connection before lending it (a round trip more per call): a statement that finds
  its pooled connection dead (the database restarted, a proxy closed it) is run once more on a
  new one, SQLAlchemy having discarded every connection pooled before; so the app recovers by
  itself when the database comes back, at the cost of no extra round trip meanwhile.
- Every failure is a StoreError whose message names the database but never its password; the
  timeouts are short, so that a page does not hang on a dead database.

The tables are created and evolved only by the Alembic migrations in sql_migrations/, with
`python -m <package>.core.stores.sql upgrade` (reads TOKEN_CACHE_SQL_URL, or --url); `check`
exits non-zero while the database is not up to date, `current` prints its revision.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import logging
import os
import secrets
import sys
import threading
import time
import weakref
from collections.abc import Callable, Hashable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import mysql, postgresql, sqlite

from . import (
    LEASE_SECONDS,
    LEASE_WAIT_SECONDS,
    RENEW_AFTER_SECONDS,
    Entry,
    Expiry,
    KeyedLocks,
    Store,
    StoreError,
    versions_together,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

# `python -m <package>.core.stores.sql` runs this file as __main__: its package still names it.
COMMAND = f"python -m {__package__}.sql"
URL_VARIABLE = "TOKEN_CACHE_SQL_URL"
MIGRATIONS = Path(__file__).resolve().parent / "sql_migrations"
# Not alembic_version: the database may hold the app's own Alembic history too.
VERSION_TABLE = "msal_webapp_alembic_version"

metadata = sa.MetaData()

# As created by sql_migrations/versions/ (a test compares them): MEDIUMTEXT on MySQL/MariaDB,
# whose TEXT stops at 64 KB, and an entry can be larger.
entries = sa.Table(
    "msal_webapp_entries", metadata,
    sa.Column("key_hash", sa.CHAR(64), primary_key=True),
    sa.Column("value", sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb"),
              nullable=False),
    sa.Column("version", sa.String(32), nullable=False),
    sa.Column("created", sa.BigInteger(), nullable=False),
    sa.Column("used", sa.BigInteger(), nullable=False),
    sa.Column("expires_at", sa.BigInteger(), nullable=False, index=True),
    mysql_engine="InnoDB", mysql_charset="utf8mb4",
)
leases = sa.Table(
    "msal_webapp_leases", metadata,
    sa.Column("key_hash", sa.CHAR(64), primary_key=True),
    sa.Column("holder", sa.String(64), nullable=False),
    sa.Column("expires_at", sa.BigInteger(), nullable=False),
    mysql_engine="InnoDB", mysql_charset="utf8mb4",
)

# The reads, built once with bound parameters: SQLAlchemy then finds each one's compiled form in
# its cache, where a statement built per call costs building it and its cache key every time
# (measured on PostgreSQL, MariaDB and SQLite: a read 0.40-0.47 -> 0.24-0.30 ms of CPU).
_ROW = (entries.c.version, entries.c.created, entries.c.used)  # and what a renewal needs
_LIVE = entries.c.expires_at > sa.bindparam("now")
_READ_VERSION = sa.select(*_ROW).where(entries.c.key_hash == sa.bindparam("digest"), _LIVE)
_READ_VALUE = sa.select(entries.c.value, *_ROW).where(
    entries.c.key_hash == sa.bindparam("digest"), _LIVE)
_READ_VERSIONS = sa.select(entries.c.key_hash, *_ROW).where(
    entries.c.key_hash.in_(sa.bindparam("digests", expanding=True)), _LIVE)

# The driver a URL without one gets (SQLAlchemy's own defaults, psycopg2 and mysqlclient, are
# not dependencies of the app).
DRIVERS = {"postgresql": "postgresql+psycopg", "mysql": "mysql+pymysql",
           "mariadb": "mariadb+pymysql"}
CONNECT_TIMEOUT_SECONDS = 3  # libpq rounds anything below 2 up to 2
QUERY_TIMEOUT_SECONDS = 10
SQLITE_BUSY_SECONDS = 5.0  # how long SQLite waits for another writer's lock
POOL_TIMEOUT_SECONDS = 5.0  # how long a request waits for a free pooled connection
# Errors of one attempt among concurrent writers, worth another attempt: MySQL's deadlock and
# lock wait timeout, PostgreSQL's deadlock and serialization failure.
MYSQL_RETRY_CODES = frozenset({1205, 1213})
UPSERTS: dict[str, Callable[[sa.Table], Any]] = {
    "postgresql": postgresql.insert, "sqlite": sqlite.insert, "mysql": mysql.insert,
    "mariadb": mysql.insert}
POSTGRES_RETRY_STATES = frozenset({"40P01", "40001"})


# The extra of pyproject.toml that installs each driver the app supports out of the box.
DRIVER_EXTRAS = {"postgresql+psycopg": "postgresql", "mysql+pymysql": "mysql",
                 "mariadb+pymysql": "mysql"}


class MissingDriverError(StoreError):
    """The database driver of the URL is not installed: a fix to name at start-up, not an
    outage to wait out."""

    def __init__(self, drivername: str) -> None:
        extra = DRIVER_EXTRAS.get(drivername)
        fix = (f"pip install '.[{extra}]' in the project (the `{extra}` extra)" if extra else
               f"install the Python package of SQLAlchemy's {drivername} dialect")
        super().__init__(f"TOKEN_CACHE_SQL_URL: the database driver of {drivername} is not "
                         f"installed; {fix}")


def _url(url: str) -> sa.URL:
    try:
        parsed = sa.make_url(url)
    except (sa_exc.ArgumentError, ValueError):  # ValueError: a port that is not a number
        # Not `from exc`: the message may quote the URL, password included.
        raise StoreError("the SQL store's URL is not a SQLAlchemy URL, such as "
                         "postgresql+psycopg://user:password@host/database") from None
    return parsed.set(drivername=DRIVERS.get(parsed.drivername, parsed.drivername))


def _sqlite_file(url: sa.URL) -> Path | None:
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:") \
            or database.startswith("file:") or url.query.get("mode") == "memory":
        return None
    return Path(database)


def _prepare_sqlite_file(path: Path) -> None:
    """Create the database file 0600 in a 0700 directory before SQLite creates it with the
    umask's permissions: it holds refresh tokens (SQLite gives its journals the file's)."""
    from .filesystem import private_directory

    private_directory(path.parent if str(path.parent) else Path("."))
    try:
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    except OSError as exc:
        raise StoreError(f"cannot create the SQLite database {path.name}: {exc}") from exc


# One engine (one connection pool) per database URL in a process: the session store and the
# token cache store share it, and so do apps built again in one process (tests), so that a
# process holds at most one pool's connections per database, not one pool per store built.
_SHARED_ENGINES: dict[str, sa.Engine] = {}
_SHARED_ENGINES_GUARD = threading.Lock()


def shared_engine(url: str) -> sa.Engine:
    """The process's engine for `url` (see create_engine), made on first use."""
    with _SHARED_ENGINES_GUARD:
        engine = _SHARED_ENGINES.get(url)
        if engine is None:
            engine = _SHARED_ENGINES[url] = create_engine(url)
        return engine


def create_engine(url: str, *, migrations: bool = False) -> sa.Engine:
    """An engine with a small pool and short timeouts; `migrations`: without the query timeout
    (a migration may take longer)."""
    parsed = _url(url)
    backend = parsed.get_backend_name()
    connect_args: dict[str, Any] = {}
    if backend == "postgresql":
        given = parsed.query.get("options", "")
        options = given if isinstance(given, str) else " ".join(given)
        if not migrations:
            # Appended to the URL's own options (e.g. a search_path), which it would replace.
            options = f"{options} -c statement_timeout={QUERY_TIMEOUT_SECONDS * 1000}".strip()
        connect_args = {"connect_timeout": CONNECT_TIMEOUT_SECONDS,
                        # A server that vanishes mid-query (no RST) is given up after ~10 s.
                        "tcp_user_timeout": QUERY_TIMEOUT_SECONDS * 1000,
                        "keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2,
                        "keepalives_count": 2}
        if options:
            connect_args["options"] = options
    elif backend in ("mysql", "mariadb"):
        connect_args = {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
        if not migrations:
            connect_args |= {"read_timeout": QUERY_TIMEOUT_SECONDS,
                             "write_timeout": QUERY_TIMEOUT_SECONDS}
    elif backend == "sqlite":
        connect_args = {"timeout": SQLITE_BUSY_SECONDS}
        sqlite_file = _sqlite_file(parsed)
        if sqlite_file is not None:
            _prepare_sqlite_file(sqlite_file)
    pool: dict[str, Any] = {}
    # An in-memory SQLite database (one per connection: not a shared store, but handy in a
    # quick trial) keeps SQLAlchemy's own pool, which takes no sizes.
    if backend != "sqlite" or _sqlite_file(parsed) is not None:
        pool = {"pool_size": 5, "max_overflow": 5, "pool_timeout": POOL_TIMEOUT_SECONDS,
                "pool_recycle": 1800}
    try:
        # No pool_pre_ping: SqlStore runs a statement again on a new connection instead.
        engine = sa.create_engine(parsed, connect_args=connect_args,
                                  # Errors would otherwise quote the values: tokens.
                                  hide_parameters=True, **pool)
    except ImportError as exc:
        raise MissingDriverError(parsed.drivername) from exc
    except sa_exc.SQLAlchemyError as exc:  # an unknown dialect, a bad argument
        raise StoreError(_message(parsed, "connect", exc)) from exc
    # gunicorn builds the app before it forks its workers (preload_app): a worker must open its
    # own connections, never use those pooled in the parent (SQLAlchemy's "Using Connection
    # Pools with Multiprocessing or os.fork()"). Without closing them: the parent still uses
    # them. A weak reference, so that an engine dropped (tests) is not kept alive by this.
    ref = weakref.ref(engine)
    os.register_at_fork(after_in_child=lambda: _forget_connections(ref))
    return engine


def _forget_connections(ref: weakref.ref[sa.Engine]) -> None:
    engine = ref()
    if engine is not None:
        engine.dispose(close=False)


def _where(url: sa.URL) -> str:
    """The database, for messages: never its password nor the URL's query (which may hold
    one, or a key file)."""
    if url.get_backend_name() == "sqlite":
        return f"the SQLite database {Path(url.database or ':memory:').name}"
    port = f":{url.port}" if url.port else ""
    return f"the {url.get_backend_name()} database {url.database or ''} at {url.host}{port}"


def _message(url: sa.URL, action: str, exc: BaseException) -> str:
    detail = exc.orig if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None else exc
    text = " ".join(str(detail).split()) or type(detail).__name__
    if len(text) > 300:
        text = text[:300] + "..."
    if url.password:
        text = text.replace(str(url.password), "***")
    return f"cannot {action} in {_where(url)}: {text}"


def _retryable(exc: sa_exc.DBAPIError) -> bool:
    """A deadlock or lock timeout among concurrent writers, not a database that is gone."""
    args = getattr(exc.orig, "args", ())
    if args and args[0] in MYSQL_RETRY_CODES:
        return True
    return getattr(exc.orig, "sqlstate", None) in POSTGRES_RETRY_STATES


@functools.cache
def _heads() -> frozenset[str]:
    from alembic.script import ScriptDirectory

    return frozenset(ScriptDirectory(str(MIGRATIONS)).get_heads())


@functools.cache
def _revisions() -> frozenset[str]:
    from alembic.script import ScriptDirectory

    return frozenset(script.revision
                     for script in ScriptDirectory(str(MIGRATIONS)).walk_revisions())


def _current(connection: sa.Connection) -> frozenset[str]:
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return frozenset(context.get_current_heads())


def _problem(current: frozenset[str]) -> str | None:
    if current == _heads():
        return None
    if current - _revisions():
        return ("the token cache tables are newer than this app's migrations (another app "
                "sharing the database was upgraded): regenerate this app from a newer template")
    return (f"the token cache tables are missing or out of date: run `{COMMAND} upgrade` "
            f"(with {URL_VARIABLE} set)")


class SqlStore:
    blocking = True
    PURGE_INTERVAL_SECONDS = 3600.0
    RETRIES = 3  # attempts of a write that met a deadlock

    def __init__(self, url: str, expiry: Expiry, clock: Callable[[], float] = time.time, *,
                 lease_seconds: float = LEASE_SECONDS,
                 lease_wait_seconds: float = LEASE_WAIT_SECONDS) -> None:
        """`clock`: the services' wall-clock seconds; every app instance sharing the database
        should agree on it within a second or so (an NTP-synchronised clock does)."""
        self._url = _url(url)
        self.engine = shared_engine(url)
        self._expiry = expiry
        self._clock = clock
        self._lease_ms = round(lease_seconds * 1000)
        self._lease_wait = lease_wait_seconds
        name = self.engine.dialect.name
        if name not in UPSERTS:
            raise StoreError(f"the SQL store does not support {name} (only PostgreSQL, MySQL, "
                             "MariaDB and SQLite)")
        self._insert = UPSERTS[name]  # the dialect's INSERT, which has its upsert clause
        self._mysql = name in ("mysql", "mariadb")
        self._locks = KeyedLocks()
        # Reads: the same pool, each connection lent in autocommit and set back when returned;
        # not on MySQL, where PyMySQL sends each of these switches to the server (measured: a
        # read took a third longer than in a transaction).
        self._reader = (self.engine if self._mysql
                        else self.engine.execution_options(isolation_level="AUTOCOMMIT"))
        self._next_purge = time.monotonic() + self.PURGE_INTERVAL_SECONDS
        self._purge_guard = threading.Lock()

    def close(self) -> None:
        """Close the pooled connections (the store can still be used: it reconnects)."""
        self.engine.dispose()

    def _now(self) -> int:
        return round(self._clock() * 1000)

    def _deadline(self, created: int, used: int) -> int:
        return round(self._expiry.deadline(created / 1000, used / 1000) * 1000)

    @staticmethod
    def _digest(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    @contextlib.contextmanager
    def _failures(self, action: str) -> Iterator[None]:
        try:
            yield
        except sa_exc.SQLAlchemyError as exc:
            raise StoreError(_message(self._url, action, exc)) from exc

    def _on_connection(self, work: Callable[[sa.Connection], T], *, read: bool = False) -> T:
        """`work` on a pooled connection, in a transaction committed at the end; in autocommit
        if `read` (each statement commits by itself; MySQL: see _reader). Run once more if the
        connection turned out dead (SQLAlchemy reports a disconnect and discards every
        connection pooled before it): on a new one. Once only: with the database gone, that one
        fails too, to connect (which SQLAlchemy does not report as a disconnect)."""

        def attempt() -> T:
            with (self._reader if read else self.engine).begin() as connection:
                return work(connection)

        try:
            return attempt()
        except sa_exc.DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            log.debug("a pooled connection to %s was closed; trying a new one",
                      _where(self._url))
        return attempt()

    def _upsert(self, table: sa.Table, values: dict[str, Any],
                updates: Callable[[Any], list[tuple[str, Any]]], where: Any = None) -> Any:
        """INSERT `values`, or on a duplicate key UPDATE with `updates(new)` (`new`: the row that
        was to be inserted), in that order: MySQL assigns them left to right, a later expression
        seeing the columns assigned before it (PostgreSQL and SQLite see the old row throughout).
        `where`: only update rows for which it holds (MySQL: written into each assignment, as a
        no-op when it does not)."""
        statement = self._insert(table).values(**values)
        # excluded.value, or MySQL's VALUES(value): each value is sent once.
        assignments = updates(statement.inserted if self._mysql else statement.excluded)
        if self._mysql:
            if where is not None:
                assignments = [(column, sa.case((where, value), else_=table.c[column]))
                               for column, value in assignments]
            return statement.on_duplicate_key_update(assignments)
        return statement.on_conflict_do_update(index_elements=[table.c.key_hash],
                                               set_=dict(assignments), where=where)

    def _live(self, key: str, *, value: bool) -> sa.Row[*tuple[Any, ...]] | None:
        """The row of a live entry (its value too if `value`), renewed if it was last used
        RENEW_AFTER_SECONDS ago or more."""
        now, digest = self._now(), self._digest(key)

        def read(connection: sa.Connection) -> sa.Row[*tuple[Any, ...]] | None:
            row = connection.execute(_READ_VALUE if value else _READ_VERSION,
                                     {"digest": digest, "now": now}).first()
            if row is not None and now - row.used >= RENEW_AFTER_SECONDS * 1000:
                self._renew(connection, digest, row, now)
            return row

        with self._failures("read an entry"):
            return self._on_connection(read, read=True)

    def _renew(self, connection: sa.Connection, digest: str, row: sa.Row[*tuple[Any, ...]],
               now: int) -> None:
        # Only the version that was read: a newer one was written (renewed) since; the
        # creation time is that version's.
        try:
            connection.execute(
                entries.update()
                .where(entries.c.key_hash == digest, entries.c.version == row.version,
                       entries.c.expires_at > now)
                .values(used=now, expires_at=self._deadline(row.created, now)))
        except sa_exc.DBAPIError as exc:
            if exc.connection_invalidated:
                raise
            # Not fatal (a lock timeout...): the entry expires a little earlier.
            log.debug("could not renew an entry", exc_info=True)

    def get(self, key: str) -> Entry | None:
        row = self._live(key, value=True)
        return Entry(row.value, row.version) if row is not None else None

    def version(self, key: str) -> Hashable | None:
        row = self._live(key, value=False)
        return row.version if row is not None else None

    def versions_of(self, reads: Sequence[tuple[Store, str]]) -> list[Hashable | None]:
        # Entries of the SQL stores on this store's engine: one SELECT for all of them, each
        # renewed as `version` would (by its own store's expiry).
        def read(mine: list[tuple[Store, str]]) -> list[Hashable | None]:
            digests = [self._digest(key) for _, key in mine]
            owner: dict[str, SqlStore] = {}  # the store whose expiry renews the entry
            for digest, (store, _) in zip(digests, mine, strict=True):
                owner.setdefault(digest, cast(SqlStore, store))
            found: dict[str, Hashable] = {}
            now = self._now()

            def select(connection: sa.Connection) -> None:
                rows = connection.execute(
                    _READ_VERSIONS, {"digests": list(owner), "now": now}).all()
                for row in rows:
                    found[row.key_hash] = row.version
                    if now - row.used >= RENEW_AFTER_SECONDS * 1000:
                        owner[row.key_hash]._renew(connection, row.key_hash, row, now)

            with self._failures("read entries"):
                self._on_connection(select, read=True)
            return [found.get(digest) for digest in digests]

        return versions_together(
            reads, lambda store: isinstance(store, SqlStore) and store.engine is self.engine,
            read)

    def _write(self, action: str, statement: Any) -> sa.CursorResult[Any]:
        """Run one statement in its own transaction, again if it met a deadlock."""
        with self._failures(action):
            for attempt in range(self.RETRIES):
                try:
                    result: sa.CursorResult[Any] = self._on_connection(
                        lambda connection: connection.execute(statement))
                    return result
                except sa_exc.DBAPIError as exc:
                    if attempt + 1 == self.RETRIES or not _retryable(exc):
                        raise
                    time.sleep(0.005 * (attempt + 1))
        raise AssertionError("unreachable")

    def set(self, key: str, value: str) -> None:
        now = self._now()
        created = entries.c.created
        # An entry that is still alive keeps its creation time (the absolute expiry).
        alive = entries.c.expires_at > now
        absolute_end = created + self._expiry.absolute_seconds * 1000
        sliding_end = now + self._expiry.sliding_seconds * 1000
        version = secrets.token_hex(8)
        self._write("write an entry", self._upsert(
            entries,
            {"key_hash": self._digest(key), "value": value, "version": version,
             "created": now, "used": now, "expires_at": self._deadline(now, now)},
            # `created` before `expires_at`, which MySQL computes from the new `created` (the
            # old one while alive) and the old `expires_at`.
            lambda new: [
                ("value", new.value), ("version", new.version), ("used", new.used),
                ("created", sa.case((alive, created), else_=new.created)),
                ("expires_at", sa.case(
                    (alive, sa.case((absolute_end < sliding_end, absolute_end),
                                    else_=sliding_end)),
                    else_=new.expires_at))]))
        with self._purge_guard:
            due = time.monotonic() >= self._next_purge
            if due:
                self._next_purge = time.monotonic() + self.PURGE_INTERVAL_SECONDS
        if due:
            try:
                self.purge()
            except StoreError as exc:
                log.warning("the SQL store's purge of expired rows failed: %s", exc)

    def delete(self, key: str) -> None:
        self._write("delete an entry",
                    entries.delete().where(entries.c.key_hash == self._digest(key)))

    def purge(self) -> int:
        """Delete the expired entries and leases (accounts and sessions that never came back,
        holders that died); how many rows. Runs from `set` at most once an hour."""
        now = self._now()
        removed = self._write("purge expired entries",
                              entries.delete().where(entries.c.expires_at <= now)).rowcount
        removed += self._write("purge expired leases",
                               leases.delete().where(leases.c.expires_at <= now)).rowcount
        return removed

    def _take_lease(self, digest: str, holder: str) -> bool:
        """One attempt: insert the lease, or take it over if it has expired; whether we hold it.

        One statement does it atomically: PostgreSQL's ON CONFLICT and MySQL's ON DUPLICATE KEY
        lock the existing row and decide on its latest committed version; SQLite runs one
        writer at a time. Whether it was taken is read back in the same transaction, not from
        the row count (MySQL counts a row that matched but was left unchanged)."""
        now = self._now()
        statement = self._upsert(
            leases, {"key_hash": digest, "holder": holder, "expires_at": now + self._lease_ms},
            # `holder` first: MySQL decides it on the old `expires_at`.
            lambda new: [("holder", new.holder), ("expires_at", new.expires_at)],
            where=leases.c.expires_at <= now)
        read = sa.select(leases.c.holder).where(leases.c.key_hash == digest)
        if self._mysql:
            # The latest committed row (our own write), not the transaction's snapshot.
            read = read.with_for_update()

        def take(connection: sa.Connection) -> bool:
            # Run twice if the first connection was dead: the lease may then be ours already
            # (the first commit went through), which the read-back sees.
            connection.execute(statement)
            return bool(connection.execute(read).scalar() == holder)

        try:
            return self._on_connection(take)
        except sa_exc.DBAPIError as exc:
            if _retryable(exc):
                return False
            raise

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[object]:
        deadline = time.monotonic() + self._lease_wait
        local = self._locks.get(key)  # the threads of this process queue here, not on the row
        if not local.acquire(timeout=self._lease_wait):
            raise StoreError(f"another request held the lock on an entry for over "
                             f"{self._lease_wait:g}s")
        try:
            digest, holder = self._digest(key), secrets.token_hex(16)
            pause = 0.002
            with self._failures("lock an entry"):
                while not self._take_lease(digest, holder):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise StoreError(f"another app instance held the lock on an entry for "
                                         f"over {self._lease_wait:g}s")
                    time.sleep(min(pause, remaining))
                    pause = min(pause * 1.5, 0.05)
            try:
                yield None
            finally:
                self._release(digest, holder)
        finally:
            local.release()

    def _release(self, digest: str, holder: str) -> None:
        # Only our own lease: if it expired and was taken over, the new holder keeps it.
        try:
            self._write("release a lock", leases.delete().where(
                leases.c.key_hash == digest, leases.c.holder == holder))
        except StoreError as exc:
            # Not raised over the holder's own outcome: the lease expires by itself.
            log.warning("could not release a lock; it expires in %ss: %s",
                        self._lease_ms / 1000, exc)

    def ready(self) -> None:
        with self._failures("answer"):
            self._on_connection(lambda connection: connection.execute(sa.text("SELECT 1")),
                                read=True)

    def schema_problem(self) -> str | None:
        """None if the tables are at the migrations' head; else what to do, in one line.
        StoreError if the database cannot be reached."""
        with self._failures("read the schema revision"):
            return _problem(self._on_connection(_current, read=True))


def _alembic_config(connection: sa.Connection) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    # sql_migrations/env.py migrates this connection, in its transaction.
    config.attributes["connection"] = connection
    config.attributes["version_table"] = VERSION_TABLE
    config.attributes["target_metadata"] = metadata
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Create the tables, or migrate them to `revision`."""
    from alembic import command

    parsed = _url(url)
    engine = create_engine(url, migrations=True)
    try:
        with contextlib.ExitStack() as stack:
            try:
                connection = stack.enter_context(engine.begin())
                command.upgrade(_alembic_config(connection), revision)
            except sa_exc.SQLAlchemyError as exc:
                raise StoreError(_message(parsed, "migrate the tables", exc)) from exc
    finally:
        engine.dispose()


def current(url: str) -> frozenset[str]:
    """The database's revisions (none before the first upgrade)."""
    parsed = _url(url)
    engine = create_engine(url, migrations=True)
    try:
        with engine.connect() as connection:
            return _current(connection)
    except sa_exc.SQLAlchemyError as exc:
        raise StoreError(_message(parsed, "read the schema revision", exc)) from exc
    finally:
        engine.dispose()


def _environment_url() -> str:
    """TOKEN_CACHE_SQL_URL, or the file TOKEN_CACHE_SQL_URL_FILE names, or the app's default,
    after a .env file in the working directory (or above it): real variables win."""
    from dotenv import find_dotenv, load_dotenv

    # usecwd: without it, python-dotenv looks above this file, not where the command is run.
    load_dotenv(find_dotenv(usecwd=True))
    url = os.environ.get(URL_VARIABLE)
    file_name = os.environ.get(f"{URL_VARIABLE}_FILE")
    if not url and file_name:
        try:
            url = Path(file_name).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise StoreError(f"{URL_VARIABLE}_FILE: cannot read {file_name!r} "
                             f"({exc.strerror})") from exc
    if not url:
        from ..settings import DEFAULT_STORE_URLS

        url = DEFAULT_STORE_URLS["sql"]
    return url


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=COMMAND, description="Create or migrate the token cache tables of the sql backend "
        f"(the database of {URL_VARIABLE}, read from the environment or a .env file).")
    parser.add_argument("action", choices=("upgrade", "current", "check"),
                        help="upgrade: create or migrate the tables to this app's version; "
                        "current: print their revision; check: exit 1 unless up to date")
    parser.add_argument("--url", help=f"the SQLAlchemy URL (default: {URL_VARIABLE})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    # "Running upgrade ...", not the INFO lines of the rest of alembic ("setup plugin ...").
    logging.getLogger("alembic.runtime.migration").setLevel(logging.INFO)
    try:
        url = args.url or _environment_url()
        where = _where(_url(url))
        if args.action == "upgrade":
            upgrade(url)
            print(f"the token cache tables in {where} are up to date")
            return 0
        revisions = current(url)
        if args.action == "current":
            print(", ".join(sorted(revisions)) or "(none: run upgrade)")
            return 0
        problem = _problem(revisions)
        print(problem or f"the token cache tables in {where} are up to date",
              file=sys.stderr if problem else sys.stdout)
        return 1 if problem else 0
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
