"""The sql backend (core/stores/sql.py) against real databases: SQLite, PostgreSQL, MariaDB.

Each test process has a PostgreSQL schema and a MariaDB database of its own, created and
migrated by the documented upgrade (tests/services.py: SqlDatabase). Expiry is checked with a
fake clock; the lease with real threads and several stores (as several app instances are); the
faults with a real closed port and a proxy that cuts the server off (tests/tcp_proxy.py).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import {{ cookiecutter.package_name }}.core.stores.sql as sql
from {{ cookiecutter.package_name }}.core.stores import RENEW_AFTER_SECONDS, Entry, Expiry, StoreError
from {{ cookiecutter.package_name }}.core.stores.sql import SqlStore, entries, leases

from tests.conftest import AppUnderTest
from tests.servers import free_port
from tests.services import SQL_DIALECTS, SqlDatabase
from tests.tcp_proxy import TcpProxy
from tests.test_web_flow import ALICE, sign_in_api_page, visit

PACKAGE = "{{ cookiecutter.package_name }}"
PROJECT = Path(__file__).resolve().parents[1]
UPGRADE = f"python -m {PACKAGE}.core.stores.sql upgrade"
EXPIRY = Expiry(sliding_seconds=3600, absolute_seconds=86400)
PASSWORD = "pw-" + secrets.token_hex(6)


@pytest.fixture(scope="session", params=SQL_DIALECTS)
def database(request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a migrated database of this process's own, per dialect."""
    with SqlDatabase(request.param, tmp_path_factory.mktemp("sql")) as url:
        yield url


StoreFactory = Callable[..., SqlStore]


@pytest.fixture
def make_store(database: str) -> Iterator[StoreFactory]:
    """SqlStores on `database`: each one is an app instance of its own (its own pool)."""
    made: list[SqlStore] = []

    def make(clock: Callable[[], float] = time.time, expiry: Expiry = EXPIRY,
             **options: Any) -> SqlStore:
        store = SqlStore(database, expiry, clock, **options)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


def new_key() -> str:
    return f"test:token_cache:{secrets.token_hex(8)}"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def statements(engine: sa.Engine) -> list[str]:
    """Every SQL statement `engine` runs from now on, whitespace collapsed."""
    seen: list[str] = []

    def record(connection: Any, cursor: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split()))

    sa.event.listen(engine, "before_cursor_execute", record)
    return seen


def updates(seen: list[str]) -> int:
    return sum(statement.startswith("UPDATE") for statement in seen)


class FakeClock:
    def __init__(self) -> None:
        self.start = self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def at(self, seconds: float) -> None:
        """Set the time to `seconds` after the start."""
        self.now = self.start + seconds


def run_command(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", f"{PACKAGE}.core.stores.sql", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("dialect", SQL_DIALECTS)
def test_documented_command_creates_the_schema(dialect: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    with SqlDatabase(dialect, tmp_path, migrate=False) as url:
        store = SqlStore(url, EXPIRY)
        try:
            problem = store.schema_problem()
            assert problem is not None and f"`{UPGRADE}`" in problem
            assert sql.main(["check", "--url", url]) == 1
            assert UPGRADE in capsys.readouterr().err
            with pytest.raises(StoreError):
                store.get(new_key())  # no table

            # As documented: the URL from TOKEN_CACHE_SQL_URL, here in a .env file.
            folder = tmp_path / "app"
            folder.mkdir()
            (folder / ".env").write_text(f"TOKEN_CACHE_SQL_URL={url}\n")
            env = {name: value for name, value in os.environ.items()
                   if not name.startswith("TOKEN_CACHE_")}
            env["PYTHONPATH"] = str(PROJECT)
            done = run_command("upgrade", cwd=folder, env=env)
            assert done.returncode == 0, done.stderr
            assert "Running upgrade  -> 0001" in done.stderr
            done = run_command("check", cwd=folder, env=env)
            assert done.returncode == 0, done.stderr

            assert store.schema_problem() is None
            assert sql.main(["current", "--url", url]) == 0
            assert capsys.readouterr().out.strip() == "0001"
            sql.upgrade(url)  # again: nothing to do
            # The tables SqlStore uses are those the migrations made.
            with store.engine.connect() as connection:
                context = MigrationContext.configure(connection, opts={
                    "version_table": sql.VERSION_TABLE,
                    "include_name": lambda name, kind, _: kind != "table"
                    or name.startswith("msal_webapp_")})
                assert compare_metadata(context, sql.metadata) == []
            key = new_key()
            store.set(key, "works")
            assert store.get(key) is not None
        finally:
            store.close()


def test_versions_and_values(make_store: StoreFactory) -> None:
    one, another = make_store(), make_store()  # two app instances
    key = new_key()
    assert one.get(key) is None and one.version(key) is None

    one.set(key, "value")
    first = one.version(key)
    assert one.get(key) == Entry("value", first)
    one.set(key, "value")  # the same value: still a new version
    second = one.version(key)
    assert second not in (None, first)
    assert another.get(key) == Entry("value", second) and another.version(key) == second

    another.delete(key)
    assert one.get(key) is None and one.version(key) is None
    one.set(key, "value")
    third = another.version(key)
    assert third not in (None, first, second)

    # Over MySQL's 64 KB TEXT, with characters of up to four bytes.
    big = "é€😀" * 1000 + "x" * 70_000
    one.set(key, big)
    found = another.get(key)
    assert found is not None and found.value == big

    # Rows are named by the key's hash, never by the key.
    with one.engine.connect() as connection:
        names = connection.execute(sa.select(entries.c.key_hash)).scalars().all()
    assert digest(key) in names and key not in names


def test_sliding_and_absolute_expiry(make_store: StoreFactory) -> None:
    clock = FakeClock()
    store = make_store(clock, Expiry(sliding_seconds=1000, absolute_seconds=2500))
    kept, unread, read = new_key(), new_key(), new_key()
    for key in (kept, unread, read):
        store.set(key, "value")
    version = store.version(kept)
    seen = statements(store.engine)

    clock.at(RENEW_AFTER_SECONDS - 1)
    assert store.get(kept) == Entry("value", version)
    assert seen[0].startswith("SELECT") and len(seen) == 1  # a read is one SELECT
    clock.at(RENEW_AFTER_SECONDS)
    assert store.version(kept) == version  # renewed, not a new version
    assert updates(seen) == 1
    assert " value" not in seen[-2]  # `version` does not read the value
    clock.at(RENEW_AFTER_SECONDS + 1)
    assert store.get(kept) is not None and store.version(kept) is not None
    assert updates(seen) == 1  # renewed at most once per RENEW_AFTER_SECONDS

    clock.at(999)
    assert store.get(read) is not None  # renewed: until 1999
    clock.at(1000)
    assert store.get(unread) is None  # unused for the sliding time
    clock.at(1998.999)
    assert store.get(read) is not None

    # Used every few minutes and even overwritten, `kept` still ends at its absolute limit.
    for moment in range(700, 2500, 400):
        clock.at(moment)
        assert store.get(kept) is not None, moment
    clock.at(2000)
    store.set(kept, "again")
    clock.at(2499)
    assert store.get(kept) == Entry("again", store.version(kept))
    clock.at(2500)
    assert store.get(kept) is None and store.version(kept) is None
    # Written again once expired, it is a new entry with a new creation time.
    store.set(kept, "new")
    clock.at(2500 + 900)
    assert store.get(kept) is not None
    clock.at(2500 + 1800)
    assert store.get(kept) is not None
    clock.at(2500 + 2500)
    assert store.get(kept) is None


def test_purge_removes_expired_rows_only(make_store: StoreFactory,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    store = make_store(clock, Expiry(sliding_seconds=1000, absolute_seconds=5000))
    expired, alive, later = new_key(), new_key(), new_key()
    dead_lease, live_lease = new_key(), new_key()
    store.set(expired, "value")
    seen = statements(store.engine)
    clock.at(600)
    store.set(alive, "value")
    store.set(alive, "value")
    assert not [s for s in seen if s.startswith("DELETE")]  # not on every set
    now_ms = round(clock() * 1000)
    with store.engine.begin() as connection:
        connection.execute(leases.insert(), [
            {"key_hash": digest(dead_lease), "holder": "dead", "expires_at": now_ms},
            {"key_hash": digest(live_lease), "holder": "busy", "expires_at": now_ms + 10**7}])

    def present() -> set[str]:
        wanted = [digest(key) for key in (expired, alive, later, dead_lease, live_lease)]
        with store.engine.connect() as connection:
            return {row[0] for table in (entries, leases) for row in connection.execute(
                sa.select(table.c.key_hash).where(table.c.key_hash.in_(wanted)))}

    clock.at(1000)
    assert store.purge() >= 2
    assert present() == {digest(alive), digest(live_lease)}

    # `set` purges when the interval has passed (here at once).
    monkeypatch.setattr(SqlStore, "PURGE_INTERVAL_SECONDS", 0.0)
    eager = make_store(clock, Expiry(sliding_seconds=1000, absolute_seconds=5000))
    clock.at(1500)
    eager.set(later, "value")
    assert present() == {digest(alive), digest(live_lease), digest(later)}
    clock.at(1600)  # `alive` was last written at 600
    eager.set(later, "value")
    assert present() == {digest(live_lease), digest(later)}


def test_lease_is_exclusive_under_a_race(make_store: StoreFactory) -> None:
    stores = [make_store(lease_wait_seconds=20) for _ in range(5)]  # five app instances
    key, counter = new_key(), new_key()
    stores[0].set(counter, "0")
    threads_count, rounds = 20, 3
    guard, holders, most = threading.Lock(), [0], [0]
    errors: list[BaseException] = []
    start = threading.Barrier(threads_count)

    def work(store: SqlStore) -> None:
        try:
            start.wait()
            for _ in range(rounds):
                with store.lock(key):
                    with guard:
                        holders[0] += 1
                        most[0] = max(most[0], holders[0])
                    entry = store.get(counter)  # read-modify-write: lost without the lease
                    assert entry is not None
                    time.sleep(0.001)
                    store.set(counter, str(int(entry.value) + 1))
                    with guard:
                        holders[0] -= 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(stores[i % len(stores)],))
               for i in range(threads_count)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    took = time.monotonic() - began
    assert not errors, errors
    entry = stores[1].get(counter)
    assert most[0] == 1 and entry is not None and entry.value == str(threads_count * rounds)
    print(f"{threads_count * rounds} leases over {len(stores)} stores in {took:.2f}s")


def test_lease_rules(make_store: StoreFactory) -> None:
    mortal = make_store(lease_seconds=0.5, lease_wait_seconds=5)
    patient = make_store(lease_wait_seconds=10)  # and the default lease (30 s)
    hasty = make_store(lease_wait_seconds=0.2)
    key, other_key = new_key(), new_key()

    with patient.lock(key):
        pool = patient.engine.pool
        assert isinstance(pool, sa.QueuePool) and pool.checkedout() == 0  # none held meanwhile
        began = time.monotonic()
        with pytest.raises(StoreError, match="held the lock"), hasty.lock(key):
            pass
        # Given up after its wait (0.2 s), not when the lease (30 s) ends.
        assert 0.2 <= time.monotonic() - began < 5
        failed: list[BaseException] = []

        def same_store() -> None:
            try:
                with hasty.lock(other_key):
                    pass
            except StoreError as exc:
                failed.append(exc)

        with hasty.lock(other_key):  # another key is not blocked
            # A thread of the same store waits in the process, and gives up as well.
            worker = threading.Thread(target=same_store)
            worker.start()
            worker.join(3)
        worker.join(3)
        assert len(failed) == 1

    # A holder that died: its lease is taken over once it has expired.
    dead = mortal.lock(key)
    began = time.monotonic()
    dead.__enter__()
    with patient.lock(key):
        # Once the lease expired (0.5 s after it was taken), long before the wait's end (10 s).
        assert 0.45 <= time.monotonic() - began < 5
        dead.__exit__(None, None, None)  # the old holder, back late, releases: not the new one
        with pytest.raises(StoreError), hasty.lock(key):
            pass
    with hasty.lock(key):
        pass  # released by its holder


def assert_fails_fast(operation: Callable[[], object], password: str) -> StoreError:
    began = time.monotonic()
    with pytest.raises(StoreError) as caught:
        operation()
    assert time.monotonic() - began < 2
    told = "".join(traceback.format_exception(caught.value))  # the causes too, as logged
    assert password not in told
    return caught.value


def test_faults(database: str, tmp_path: Path) -> None:
    key = new_key()
    server = sa.make_url(database)
    if server.get_backend_name() == "sqlite":
        path = tmp_path / "private" / "cache.sqlite3"
        store = SqlStore(f"sqlite:///{path}", EXPIRY)
        assert oct(path.stat().st_mode & 0o777) == "0o600"  # it holds refresh tokens
        assert oct(path.parent.stat().st_mode & 0o777) == "0o700"
        path.write_bytes(b"not a database" * 100)  # damaged
        for operation in (lambda: store.get(key), lambda: store.version(key),
                          lambda: store.set(key, "value"), lambda: store.delete(key),
                          lambda: store.lock(key).__enter__(), store.schema_problem):
            assert "cache.sqlite3" in str(assert_fails_fast(operation, PASSWORD))
        store.close()
        return

    # A closed port, with a password in the URL: every call fails at once, and says where.
    closed = SqlStore(server.set(host="127.0.0.1", port=free_port(), password=PASSWORD)
                      .render_as_string(hide_password=False), EXPIRY)
    began = time.monotonic()
    for operation in (lambda: closed.get(key), lambda: closed.version(key),
                      lambda: closed.set(key, "value"), lambda: closed.delete(key),
                      lambda: closed.lock(key).__enter__(), closed.schema_problem):
        error = assert_fails_fast(operation, PASSWORD)
        assert f"127.0.0.1:{closed.engine.url.port}" in str(error)
    print(f"{server.get_backend_name()}: six calls to a closed port failed in "
          f"{time.monotonic() - began:.3f}s")
    closed.close()

    # Through a proxy: the database goes away and comes back; the store recovers by itself.
    assert server.host and server.port
    with TcpProxy((server.host, server.port)) as proxy:
        store = SqlStore(server.set(host="127.0.0.1", port=proxy.port)
                         .render_as_string(hide_password=False), EXPIRY)
        try:
            store.set(key, "value")
            proxy.cut()
            proxy.restore()  # a restart: the pooled connection is dead
            assert store.get(key) is not None  # pinged, replaced: no error at all
            proxy.cut()
            for operation in (lambda: store.get(key), lambda: store.set(key, "value"),
                              lambda: store.lock(key).__enter__()):
                assert_fails_fast(operation, PASSWORD)
            proxy.restore()
            assert store.get(key) is not None
            with store.lock(key):
                store.set(key, "after")
            assert store.get(key) == Entry("after", store.version(key))
        finally:
            store.close()


def test_the_app_does_not_start_on_tables_that_are_missing(tmp_path: Path) -> None:
    """The app's start-up check: a database without the tables stops it with the list of
    settings problems naming the upgrade command, not a page error on every request later."""
    from {{ cookiecutter.package_name }}.core.settings import SettingsError

    from tests.app_server import build_app
    from tests.conftest import environment_for_settings_tests

    with SqlDatabase("sqlite", tmp_path, migrate=False) as url:
        env = environment_for_settings_tests({"TOKEN_CACHE_BACKEND": "sql",
                                              "TOKEN_CACHE_SQL_URL": url})
        with pytest.raises(SettingsError) as refused:
            build_app(env)
        assert "core.stores.sql upgrade" in str(refused.value)
        sql.upgrade(url)
        build_app(env)  # now it starts


def test_dev_mode_follows_token_cache_sql_url(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """`python -m devprovider`: the database of TOKEN_CACHE_SQL_URL when set (its tables made),
    else a SQLite file of the run."""
    from devprovider.__main__ import dev_store

    with SqlDatabase("sqlite", tmp_path, migrate=False) as url:
        monkeypatch.setenv("TOKEN_CACHE_SQL_URL", url)
        env, described = dev_store(tmp_path / "run")
        assert env == {"TOKEN_CACHE_SQL_URL": url}
        assert described.startswith("TOKEN_CACHE_SQL_URL")
        store = SqlStore(url, Expiry(60, 60))
        try:
            assert store.schema_problem() is None
        finally:
            store.close()
    monkeypatch.delenv("TOKEN_CACHE_SQL_URL")
    env, described = dev_store(tmp_path / "run")
    assert env["TOKEN_CACHE_SQL_URL"] == f"sqlite:///{tmp_path / 'run' / 'token_cache.sqlite3'}"
    assert "this run" in described


@pytest.mark.parametrize(("url", "module", "extra"), [
    ("postgresql+psycopg://app@127.0.0.1:5432/app", "psycopg", "postgresql"),
    ("postgresql://app@127.0.0.1:5432/app", "psycopg", "postgresql"),
    ("mariadb+pymysql://app@127.0.0.1:3306/app", "pymysql", "mysql"),
])
def test_a_missing_driver_stops_the_real_entry_point_with_the_install_command(
        url: str, module: str, extra: str, tmp_path: Path) -> None:
    """`pip install .` without the driver's extra, then the production server: one line naming
    the setting and the command, no traceback."""
    from {{ cookiecutter.package_name }}.core.settings import EXIT_BAD_SETTINGS

    from tests.app_server import ENTRY_POINT_CODE
    from tests.conftest import environment_for_settings_tests

    env = environment_for_settings_tests({"TOKEN_CACHE_BACKEND": "sql",
                                          "TOKEN_CACHE_SQL_URL": url})
    # As if the driver were not installed: importing it fails.
    code = f"import sys; sys.modules[{module!r}] = None; {ENTRY_POINT_CODE}"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path,
                            env={**env, "PYTHONPATH": str(Path(__file__).parents[1])},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == EXIT_BAD_SETTINGS, result.stderr
    assert "TOKEN_CACHE_SQL_URL" in result.stderr
    assert f"pip install '.[{extra}]'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("l1", ["true", "false"])
def test_a_signed_in_page_reads_the_database_once_with_the_first_level_cache(
        make_app: Callable[..., AppUnderTest], l1: str) -> None:
    """With TOKEN_CACHE_L1 on, a signed-in page that calls an API sends the database one
    statement: one SELECT of its session's version and its account's token cache's, checked
    against the in-process copies. Off, it reads both entries (two SELECTs). Counted as the
    app's engine sends them (the driver's own BEGIN and COMMIT are not statements here)."""
    app = make_app(TOKEN_CACHE_L1=l1)
    engine = cast(SqlStore, app.services.caches.store).engine
    path = sign_in_api_page(app)
    browser = app.browser()
    visit(app, browser, path, ALICE)
    assert browser.get(app.url(path)).status_code == 200  # the copies are made from here on
    sent: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        sent.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        page = browser.get(app.url(path))
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert page.status_code == 200 and ALICE.username in page.text, page.text
    assert len(sent) == (1 if l1 == "true" else 2), sent
    assert all(statement.lstrip().upper().startswith("SELECT") for statement in sent), sent
