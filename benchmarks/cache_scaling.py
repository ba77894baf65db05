"""Token-cache read and write times against the number of accounts stored, for every backend;
and, in the same run, the naive design of one MSAL cache shared by every user.

    .venv/bin/python benchmarks/cache_scaling.py [--sizes 1 1000 100000] [--rounds 15]
        [--backends memory filesystem redis sql-postgresql sql-mariadb sql-sqlite]

What it does (figures and analysis in docs/benchmarks.md, "Token-cache scaling"):

1. bakes examples/app.yaml twice into a temporary folder, with `cache: {backend: redis}` and
   `cache: {backend: sql}` (each bake also has the memory and filesystem stores), and runs one
   child process per bake that imports it (both packages have the same name);
2. makes realistic per-account entries: a real `msal.SerializableTokenCache` filled by MSAL's
   own `add` from a token response of Entra's shape (an account, an ID token, an access token
   and a refresh token with Entra's claims and sizes), serialized as the app stores it, copied
   for each fake account with its own ids and random token material (about 7.5 KB each, as
   MSAL serializes it: 4.6 KB of tokens, the rest their fields and keys, indented);
3. for each backend and each N, a store of its own holding N accounts: one store per N side by
   side (a Redis logical database, a PostgreSQL schema, a MariaDB database, a SQLite file or a
   folder of its own; the SQL tables made by the app's documented upgrade command), the account
   being served written by the store's own `set`, the N - 1 others in bulk in the store's own
   format (a Redis pipeline, PostgreSQL COPY, executemany, files written directly); the fill
   time is printed separately;
4. times, through the app's `AccountCaches` on each store, one read and one write for the
   account being served: `peek` with a warm in-process copy (L1 on: a version check), with a
   cold one (L1 on, its copies dropped before each call: version, read, parse) and with L1 off
   (read and parse), `open` without a change (the locked read), `open` with a refreshed token
   written back (MSAL's `add` of a refresh response, then the store's write) and `merge` (a
   sign-in). Measurements alternate between the sizes in rounds (so a drift of the machine's
   speed hits every N alike); each figure is the median over rounds of a batch's mean, and
   the 100 000/1 ratio the median of the rounds' own ratios (both sizes measured seconds
   apart);
5. the naive design: ONE `SerializableTokenCache` holding all N accounts (as one file or one
   Redis key would), a read being its deserialization + an MSAL client on it + `get_accounts`
   (by username) + `acquire_token_silent` (an HTTP client that refuses any token request: the
   answer must come from the cache), also without the deserialization (the cache kept in
   memory); a write being `add` of a refreshed token + `serialize` of the whole cache;
6. prints the tables, with the goal (the 100 000-account figure within 20 % of the 1-account
   figure) marked met or not. Every key, schema, database and file it made is removed at the
   end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gc
import hashlib
import importlib
import io
import json
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "examples" / "app.yaml"
REDIS_URL = os.environ.get("MSAL_WEBAPP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get("MSAL_WEBAPP_TEST_POSTGRES_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MYSQL_URL = os.environ.get("MSAL_WEBAPP_TEST_MYSQL_URL",
                           "mysql+pymysql://root@127.0.0.1:3306/test")
BACKENDS = ("memory", "filesystem", "redis", "sql-postgresql", "sql-mariadb", "sql-sqlite")
BAKE_OF = {"memory": "redis", "filesystem": "redis", "redis": "redis",
           "sql-postgresql": "sql", "sql-mariadb": "sql", "sql-sqlite": "sql"}
SIZES = (1, 1000, 100_000)
NAIVE_SIZES = (1, 1000, 10_000, 100_000)  # 100 000: about 13 s per read + write, 5.4 GB
GOAL = 1.20  # the 100 000-account figure within 20 % of the 1-account figure
BATCH_SECONDS = 0.08  # one batch of calls of an operation, per size and round
NAIVE_LIMIT_SECONDS = 120.0  # a naive size whose read + write would take longer is extrapolated

# The fake tenant, app and accounts (Entra's shapes; no real ids).
TENANT = "3c9d5a4e-8f1b-4d2a-9e6f-0b7c8d9e1f2a"
CLIENT_ID = "6a1f0c2e-4b3d-4e5f-8a9b-0c1d2e3f4a5b"
AUTHORITY = f"https://login.microsoftonline.com/{TENANT}"
TOKEN_ENDPOINT = f"{AUTHORITY}/oauth2/v2.0/token"
GRANTED = ["User.Read", "email", "openid", "profile"]  # the response's `scope`
REQUESTED = ["User.Read"]  # what a page asks for
# Placeholders of the account template, replaced for each account ('@' is not in base64url).
TEMPLATE_OID = "0a0a0a0a-0a0a-4a0a-8a0a-0a0a0a0a0a0a"
TEMPLATE_USER = "template.user@contoso.example"
AT_SIGNATURE, ID_SIGNATURE, REFRESH_TOKEN = "@@AT-SIG@@", "@@ID-SIG@@", "@@RT@@"


class BenchmarkError(Exception):
    """A setup step failed or a measurement did not measure what it should."""


# ============================================================================ entries
def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(claims: dict[str, Any], signature: str) -> str:
    header = {"typ": "JWT", "alg": "RS256", "kid": "Lx0hLrH3K7o6cM2Sd8rAkPj1Qw4"}
    return (f"{_b64(json.dumps(header, separators=(',', ':')).encode())}."
            f"{_b64(json.dumps(claims, separators=(',', ':')).encode())}.{signature}")


def _signature() -> str:
    return secrets.token_urlsafe(257)[:342]  # RS256 with a 2048-bit key


def _refresh_token() -> str:
    return "1.AXEA" + secrets.token_urlsafe(750)[:1000]  # Entra's are about 1-2 KB, opaque


def token_response(oid: str, username: str, *, at_sig: str, id_sig: str, rt: str,
                   id_token: bool = True) -> dict[str, Any]:
    """A token endpoint answer of Entra's shape: claims and sizes of real v1 Graph access
    tokens and v2 ID tokens (the signatures are random: nothing validates them here)."""
    now = int(time.time())
    access = {
        "aud": "00000003-0000-0000-c000-000000000000",
        "iss": f"https://sts.windows.net/{TENANT}/", "iat": now, "nbf": now, "exp": now + 4500,
        "acct": 0, "acr": "1", "aio": secrets.token_urlsafe(90), "amr": ["pwd", "mfa"],
        "app_displayname": "Contoso Portal", "appid": CLIENT_ID, "appidacr": "1",
        "family_name": "User", "given_name": "Test", "idtyp": "user", "ipaddr": "203.0.113.7",
        "name": "Test User", "oid": oid, "platf": "3", "puid": "10032001A2B3C4D5",
        "rh": "1.AXEATlqdPBuPKk2ebwt8jZ4fKgMAAAAAAAAAwAAAAAAAAAAMAQ.",
        "scp": "email openid profile User.Read", "sid": "00a1b2c3-d4e5-f607-1829-3a4b5c6d7e8f",
        "signin_state": ["kmsi"], "sub": secrets.token_urlsafe(32), "tenant_region_scope": "EU",
        "tid": TENANT, "unique_name": username, "upn": username,
        "uti": secrets.token_urlsafe(16), "ver": "1.0",
        "wids": ["b79fbf4d-3ef9-4689-8143-76b194e85509"],
        "xms_ftd": secrets.token_urlsafe(45), "xms_idrel": "1 16",
        "xms_st": {"sub": secrets.token_urlsafe(32)}, "xms_tcdt": 1600000000,
        "xms_tdbr": "EU"}
    ident = {
        "aud": CLIENT_ID, "iss": f"https://login.microsoftonline.com/{TENANT}/v2.0",
        "iat": now, "nbf": now, "exp": now + 3600, "aio": secrets.token_urlsafe(90),
        "name": "Test User",
        "nonce": secrets.token_urlsafe(24), "oid": oid, "preferred_username": username,
        "rh": "1.AXEATlqdPBuPKk2ebwt8jZ4fKgMAAAAAAAAAwAAAAAAAAAAMAQ.",
        "sid": "00a1b2c3-d4e5-f607-1829-3a4b5c6d7e8f", "sub": secrets.token_urlsafe(32),
        "tid": TENANT, "uti": secrets.token_urlsafe(16), "ver": "2.0"}
    response: dict[str, Any] = {
        "token_type": "Bearer", "scope": " ".join(GRANTED), "expires_in": 4500,
        "ext_expires_in": 4500, "access_token": _jwt(access, at_sig), "refresh_token": rt,
        "client_info": _b64(json.dumps({"uid": oid, "utid": TENANT}).encode())}
    if id_token:
        response["id_token"] = _jwt(ident, id_sig)
    return response


def token_event(response: dict[str, Any], grant_type: str) -> dict[str, Any]:
    """What MSAL's client passes to its cache's `add` for that answer."""
    return {"client_id": CLIENT_ID, "scope": GRANTED, "token_endpoint": TOKEN_ENDPOINT,
            "grant_type": grant_type, "response": response, "data": {}}


def msal_cache(oid: str, username: str) -> Any:
    """A real MSAL cache after a code redemption for that account (fresh random tokens)."""
    import msal

    cache = msal.SerializableTokenCache()
    cache.add(token_event(token_response(oid, username, at_sig=_signature(),
                                         id_sig=_signature(), rt=_refresh_token()),
                          "authorization_code"))
    return cache


class Accounts:
    """Per-account entries as the app stores them: one account's MSAL cache, serialized by
    MSAL, with the account's ids and its own random token material."""

    def __init__(self) -> None:
        import msal

        cache = msal.SerializableTokenCache()
        cache.add(token_event(token_response(TEMPLATE_OID, TEMPLATE_USER, at_sig=AT_SIGNATURE,
                                             id_sig=ID_SIGNATURE, rt=REFRESH_TOKEN),
                              "authorization_code"))
        self.template = cache.serialize()
        for marker in (TEMPLATE_OID, AT_SIGNATURE, ID_SIGNATURE, REFRESH_TOKEN):
            if marker not in self.template:
                raise BenchmarkError(f"the template entry has no {marker}")

    @staticmethod
    def oid(index: int) -> str:
        r = hashlib.sha256(str(index).encode()).hexdigest()
        return f"{index:08x}-{r[:4]}-4{r[4:7]}-8{r[7:10]}-{r[10:22]}"

    @staticmethod
    def username(index: int) -> str:
        return f"user{index:06d}@contoso.example"

    @classmethod
    def home_account_id(cls, index: int) -> str:
        return f"{cls.oid(index)}.{TENANT}"

    def entry(self, index: int) -> str:
        return (self.template.replace(TEMPLATE_OID, self.oid(index))
                .replace(TEMPLATE_USER, self.username(index))
                .replace(AT_SIGNATURE, _signature()).replace(ID_SIGNATURE, _signature())
                .replace(REFRESH_TOKEN, _refresh_token()))


# ============================================================================ timing
def calibrate(fn: Callable[[], object]) -> int:
    """Calls per batch: about BATCH_SECONDS of them (at least one)."""
    for _ in range(3):
        fn()
    start = time.perf_counter()
    for _ in range(3):
        fn()
    per_call = (time.perf_counter() - start) / 3
    return max(1, min(2000, int(BATCH_SECONDS / max(per_call, 1e-7))))


def batch(fn: Callable[[], object], calls: int) -> float:
    """Mean seconds per call over one batch."""
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


# ============================================================================ the child
class StoreSet:
    """One backend's stores, one per N, side by side (see the module's docstring)."""

    def __init__(self, backend: str, args: argparse.Namespace, work: Path, package: str) -> None:
        self.backend = backend
        self.args = args
        self.work = work
        self.package = package
        self.stores: dict[int, Any] = {}
        self.urls: dict[int, str] = {}
        stores = importlib.import_module(f"{package}.core.stores")
        self.expiry = stores.Expiry(8 * 3600, 14 * 24 * 3600)  # the app's defaults

    def prefix(self, size: int) -> str:
        return f"{self.args.tag}:{size}"

    def make(self, size: int) -> Any:
        index = self.args.sizes.index(size)
        if self.backend == "memory":
            from_module = importlib.import_module(f"{self.package}.core.stores.memory")
            store = from_module.MemoryStore(size + 16, self.expiry, timer=time.time)
        elif self.backend == "filesystem":
            from_module = importlib.import_module(f"{self.package}.core.stores.filesystem")
            store = from_module.FileStore(self.work / f"fs-{size}", self.expiry, time.time)
        elif self.backend == "redis":
            from_module = importlib.import_module(f"{self.package}.core.stores.redis")
            url = re.sub(r"/\d*$", "", self.args.redis_url) + f"/{self.args.redis_dbs[index]}"
            self.urls[size] = url
            store = from_module.RedisStore(url, self.expiry, time.time)
        else:
            from_module = importlib.import_module(f"{self.package}.core.stores.sql")
            url = self.sql_database(size)
            self.urls[size] = url
            migrate(url, self.package)
            store = from_module.SqlStore(url, self.expiry, time.time)
        self.stores[size] = store
        return store

    def sql_database(self, size: int) -> str:
        import sqlalchemy as sa

        dialect = self.backend.removeprefix("sql-")
        name = f"{self.args.tag}_{dialect[:2]}_{size}"
        if dialect == "sqlite":
            return f"sqlite:///{self.work / (name + '.sqlite3')}"
        server = sa.make_url(self.args.postgres_url if dialect == "postgresql"
                             else self.args.mysql_url)
        admin(server, f"CREATE {'SCHEMA' if dialect == 'postgresql' else 'DATABASE'} {name}")
        if dialect == "postgresql":
            server = server.update_query_dict({"options": f"-csearch_path={name}"})
        else:
            server = server.set(database=name)
        return server.render_as_string(hide_password=False)

    def fill(self, size: int, keys: list[str], values: list[str]) -> float:
        """Write the entries in bulk, in the store's own format; seconds taken."""
        store = self.stores[size]
        now = time.time()
        now_ms = int(now * 1000)
        start = time.perf_counter()
        if self.backend == "memory":
            for key, value in zip(keys, values, strict=True):
                store.set(key, value)
        elif self.backend == "filesystem":
            header = importlib.import_module(f"{self.package}.core.stores.filesystem").HEADER
            for key, value in zip(keys, values, strict=True):
                path = store._path(key)  # the store's own file name for the key
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(header + repr(now).encode() + b"\n" + value.encode())
        elif self.backend == "redis":
            # As RedisStore.set writes it: one hash per entry and its PEXPIREAT.
            deadline = int(self.expiry.deadline(now, now) * 1000)
            pipe = store._client.pipeline(transaction=False)
            for number, (key, value) in enumerate(zip(keys, values, strict=True), 1):
                pipe.hset(key, mapping={"value": value.encode(), "version": secrets.token_hex(8),
                                        "created": str(now_ms), "used": str(now_ms)})
                pipe.pexpireat(key, deadline)
                if number % 1000 == 0:
                    pipe.execute()
            pipe.execute()
        else:
            self.fill_sql(store, keys, values, now_ms)
        return time.perf_counter() - start

    def fill_sql(self, store: Any, keys: list[str], values: list[str], now_ms: int) -> None:
        sql = importlib.import_module(f"{self.package}.core.stores.sql")
        expires = int(self.expiry.deadline(now_ms / 1000, now_ms / 1000) * 1000)
        rows = ((hashlib.sha256(k.encode()).hexdigest(), v, secrets.token_hex(8), now_ms,
                 now_ms, expires) for k, v in zip(keys, values, strict=True))
        # An engine of the same database without the store's 10-second statement timeout.
        engine = sql.create_engine(self.urls[next(s for s, v in self.stores.items()
                                                  if v is store)], migrations=True)
        try:
            self._fill_sql(engine, sql, rows)
        finally:
            engine.dispose()

    @staticmethod
    def _fill_sql(engine: Any, sql: Any, rows: Iterator[tuple[Any, ...]]) -> None:
        import sqlalchemy as sa

        if engine.dialect.name == "postgresql":
            raw = engine.raw_connection()
            try:
                with raw.driver_connection.cursor() as cursor, cursor.copy(  # type: ignore[union-attr]
                        "COPY msal_webapp_entries (key_hash, value, version, created, used, "
                        "expires_at) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                raw.commit()
            finally:
                raw.close()
            with engine.connect() as connection:
                connection.execute(sa.text("ANALYZE msal_webapp_entries"))
                connection.commit()
            return
        columns = ("key_hash", "value", "version", "created", "used", "expires_at")
        chunk: list[dict[str, Any]] = []
        with engine.begin() as connection:
            for row in rows:
                chunk.append(dict(zip(columns, row, strict=True)))
                if len(chunk) == 1000:
                    connection.execute(sql.entries.insert(), chunk)
                    chunk = []
            if chunk:
                connection.execute(sql.entries.insert(), chunk)

    def close(self) -> None:
        """Close the connections and remove this backend's data now (the parent's final
        sweep removes anything left): the 100 000 entries do not wait for the other backends."""
        for store in self.stores.values():
            with contextlib.suppress(Exception):
                if hasattr(store, "close"):
                    store.close()
        for size, url in self.urls.items():
            if self.backend == "redis":
                import redis

                client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10)
                try:
                    keys = list(client.scan_iter(match=f"{self.prefix(size)}:*", count=5000))
                    for start in range(0, len(keys), 5000):
                        client.delete(*keys[start:start + 5000])
                finally:
                    client.close()
            elif self.backend in ("sql-postgresql", "sql-mariadb"):
                import sqlalchemy as sa

                parsed = sa.make_url(url)
                if self.backend == "sql-postgresql":
                    schema = re.sub(r".*search_path=", "", str(parsed.query["options"]))
                    admin(parsed.difference_update_query(["options"]),
                          f"DROP SCHEMA {schema} CASCADE")
                else:
                    admin(parsed.set(database=sa.make_url(self.args.mysql_url).database),
                          f"DROP DATABASE {parsed.database}")
        self.stores.clear()
        shutil.rmtree(self.work, ignore_errors=True)


def admin(server: Any, *statements: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(server, isolation_level="AUTOCOMMIT",
                              connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            for statement in statements:
                connection.execute(sa.text(statement))
    finally:
        engine.dispose()


def migrate(url: str, package: str) -> None:
    """The sql backend's tables, by the app's documented upgrade command."""
    done = subprocess.run([sys.executable, "-m", f"{package}.core.stores.sql", "upgrade",
                           "--url", url], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": sys.path[0]})
    if done.returncode != 0:
        raise BenchmarkError(f"the sql upgrade command failed:\n{done.stdout}{done.stderr}")


OPS = ("peek, warm copy (L1 on)", "peek, cold copy (L1 on)", "peek (L1 off)",
       "open, no change", "open + refreshed token written", "merge (sign-in)")


def measure_backend(backend: str, args: argparse.Namespace, work: Path, package: str,
                    accounts: Accounts, fillers: list[str]) -> dict[str, Any]:
    token_cache = importlib.import_module(f"{package}.core.token_cache")
    stores = StoreSet(backend, args, work, package)
    result: dict[str, Any] = {"backend": backend, "load_before": os.getloadavg(),
                              "fill_seconds": {}, "ops": {}, "rounds": args.rounds}
    target = accounts.home_account_id(0)
    fresh = msal_cache(accounts.oid(0), accounts.username(0))
    refresh = token_event(token_response(accounts.oid(0), accounts.username(0),
                                         at_sig=_signature(), id_sig="", rt=_refresh_token(),
                                         id_token=False), "refresh_token")
    try:
        ops: dict[int, dict[str, Callable[[], object]]] = {}
        for size in args.sizes:
            store = stores.make(size)
            caches = token_cache.AccountCaches(store, stores.prefix(size), l1=True)
            plain = token_cache.AccountCaches(store, stores.prefix(size), l1=False)
            store.set(caches.key(target), accounts.entry(0))  # the account served
            keys = [caches.key(accounts.home_account_id(i)) for i in range(1, size)]
            result["fill_seconds"][size] = stores.fill(size, keys, fillers[:size - 1])
            check(store, caches, target, refresh)
            ops[size] = operations(caches, plain, target, refresh, fresh)
        calls = {op: calibrate(ops[args.sizes[-1]][op]) for op in OPS}
        samples: dict[int, dict[str, list[float]]] = {s: {op: [] for op in OPS}
                                                       for s in args.sizes}
        gc.collect()
        for number in range(args.rounds):
            shift = number % len(args.sizes)
            for size in args.sizes[shift:] + args.sizes[:shift]:
                for op in OPS:
                    samples[size][op].append(batch(ops[size][op], calls[op]))
        first, last = args.sizes[0], args.sizes[-1]
        for size in args.sizes:
            result["ops"][size] = {op: {"median_ms": 1000 * statistics.median(v),
                                        "min_ms": 1000 * min(v), "max_ms": 1000 * max(v)}
                                   for op, v in samples[size].items()}
        # Each round measures every size within seconds: the median of the rounds' own
        # ratios cancels a drift of the machine's speed better than a ratio of medians.
        result["ratio"] = {op: statistics.median(b / a for a, b in zip(
            samples[first][op], samples[last][op], strict=True)) for op in OPS}
        result["calls_per_batch"] = calls
        result["entry_bytes"] = len(accounts.entry(0).encode())
    finally:
        stores.close()
    result["load_after"] = os.getloadavg()
    return result


def check(store: Any, caches: Any, target: str, refresh: dict[str, Any]) -> None:
    """The account is served from the store, and a write really writes."""
    cache = caches.peek(target)
    if not [a for a in cache.search(cache.CredentialType.ACCOUNT)
            if a.get("home_account_id") == target]:
        raise BenchmarkError("peek did not find the account in its stored entry")
    before = store.version(caches.key(target))
    with caches.open(target) as opened:
        opened.add(refresh)
    if store.version(caches.key(target)) == before:
        raise BenchmarkError("open + a refreshed token did not write the entry")


def operations(caches: Any, plain: Any, target: str, refresh: dict[str, Any],
               fresh: Any) -> dict[str, Callable[[], object]]:
    def peek_cold() -> object:
        caches._copies.clear()  # the in-process copies (L1): as in a new worker process
        return caches.peek(target)

    def open_only() -> None:
        with caches.open(target):
            pass

    def open_write() -> None:
        with caches.open(target) as cache:
            cache.add(refresh)  # as MSAL does with a refresh grant's answer

    return {
        "peek, warm copy (L1 on)": lambda: caches.peek(target),
        "peek, cold copy (L1 on)": peek_cold,
        "peek (L1 off)": lambda: plain.peek(target),
        "open, no change": open_only,
        "open + refreshed token written": open_write,
        "merge (sign-in)": lambda: caches.merge(target, fresh),
    }


def child(args: argparse.Namespace) -> int:
    sys.path.insert(0, args.project)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    accounts = Accounts()
    start = time.perf_counter()
    fillers = [accounts.entry(i) for i in range(1, max(args.sizes))]
    made = time.perf_counter() - start
    print(f"  made {len(fillers)} entries of ~{len(accounts.entry(0).encode())} bytes in "
          f"{made:.1f} s", file=sys.stderr, flush=True)
    for backend in args.backends:
        print(f"  {backend} (load {os.getloadavg()[0]:.2f})", file=sys.stderr, flush=True)
        result = measure_backend(backend, args, work / backend, args.package, accounts, fillers)
        result["entries_made_seconds"] = made
        print("CACHE-SCALING " + json.dumps(result), flush=True)
    return 0


# ============================================================================ naive design
class OfflineHttp:
    """An HTTP client for MSAL that answers the tenant's discovery and refuses the rest."""

    class Response:
        def __init__(self, text: str) -> None:
            self.status_code, self.text = 200, text
            self.headers: dict[str, str] = {}

        def raise_for_status(self) -> None:
            return None

    def __init__(self) -> None:
        self.discovery = json.dumps({
            "issuer": f"https://login.microsoftonline.com/{TENANT}/v2.0",
            "authorization_endpoint": f"{AUTHORITY}/oauth2/v2.0/authorize",
            "token_endpoint": TOKEN_ENDPOINT,
            "end_session_endpoint": f"{AUTHORITY}/oauth2/v2.0/logout",
            "device_authorization_endpoint": f"{AUTHORITY}/oauth2/v2.0/devicecode"})

    def get(self, url: str, **kwargs: Any) -> Response:
        if url.endswith("/.well-known/openid-configuration"):
            return self.Response(self.discovery)
        raise BenchmarkError(f"the naive read reached the network: GET {url}")

    def post(self, url: str, **kwargs: Any) -> Response:
        raise BenchmarkError(f"the naive read reached the network: POST {url}")

    def close(self) -> None:
        return None


def measure_naive(sizes: list[int], accounts: Accounts, limit: float) -> list[dict[str, Any]]:
    """One SerializableTokenCache for all N accounts, the served one being account 0; a size
    whose read + write would take over `limit` seconds (by the last size, linearly) is
    extrapolated, not measured."""
    http, http_cache = OfflineHttp(), dict[Any, Any]()
    refresh = token_event(token_response(accounts.oid(0), accounts.username(0),
                                         at_sig=_signature(), id_sig="", rt=_refresh_token(),
                                         id_token=False), "refresh_token")
    rows: list[dict[str, Any]] = []
    for size in sizes:
        if rows:
            last = rows[-1]
            projected = (last["read_ms"] + last["write_ms"]) / 1000 * size / last["size"]
            if projected > limit:
                factor = size / last["size"]
                rows.append({"size": size, "extrapolated": True, "projected_seconds": projected,
                             **{k: last[k] * factor
                                for k in ("read_ms", "read_kept_ms", "write_ms", "blob_mb")}})
                continue
        row = naive_size(size, accounts, http, http_cache, refresh)
        rows.append(row)
        print(f"  naive, {size} accounts: read {row['read_ms']:.2f} ms, write "
              f"{row['write_ms']:.2f} ms ({row['blob_mb']:.1f} MB)", file=sys.stderr,
              flush=True)
        gc.collect()
    return rows


def naive_size(size: int, accounts: Accounts, http: OfflineHttp, http_cache: dict[Any, Any],
               refresh: dict[str, Any]) -> dict[str, Any]:
    import msal

    began = time.perf_counter()
    merged: dict[str, dict[str, Any]] = {}
    for index in range(size):
        for section, entries in json.loads(accounts.entry(index)).items():
            merged.setdefault(section, {}).update(entries)
    blob = json.dumps(merged, indent=4)  # as MSAL serializes it
    del merged

    def app_on(cache: Any) -> Any:
        return msal.ConfidentialClientApplication(
            CLIENT_ID, client_credential="naive-secret", authority=AUTHORITY,
            token_cache=cache, http_client=http, http_cache=http_cache,
            instance_discovery=False)

    def lookup(app: Any) -> None:
        found = app.get_accounts(username=accounts.username(0))
        result = app.acquire_token_silent(REQUESTED, account=found[0])
        if not result or result.get("token_source") != "cache":
            raise BenchmarkError(f"the naive read did not come from the cache: {result}")

    def read() -> None:
        cache = msal.SerializableTokenCache()
        cache.deserialize(blob)
        lookup(app_on(cache))

    kept = msal.SerializableTokenCache()
    kept.deserialize(blob)
    kept_app = app_on(kept)

    def write() -> None:
        kept.add(refresh)
        kept.serialize()

    # Few calls for the large sizes: each is seconds.
    repeat = 7 if size <= 1000 else 3 if size <= 10_000 else 1
    row: dict[str, Any] = {"size": size, "extrapolated": False,
                           "blob_mb": len(blob.encode()) / 1e6, "repeat": repeat}
    for name, fn in (("read_ms", read), ("read_kept_ms", lambda: lookup(kept_app)),
                     ("write_ms", write)):
        fn()  # warm-up (discovery, first lookups)
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        row[name] = 1000 * statistics.median(times)
    row["seconds"] = time.perf_counter() - began
    return row


# ============================================================================ report
def report(results: list[dict[str, Any]], naive: list[dict[str, Any]],
           sizes: list[int]) -> None:
    first, last = sizes[0], sizes[-1]
    print(f"\n## Token-cache read and write for the account served, by accounts stored "
          f"(median over rounds, ms; the {last}/{first} ratio is the median of the rounds' "
          f"own ratios; goal: at most 1.20)\n")
    print("Read: `peek`, what a page does (L1 on: a version check and the in-process copy; "
          "L1 off: a read and parse of the entry). Write: `open` with a refreshed token "
          "written back.\n")
    print("| Backend | " + " | ".join(f"read, {n:,}" for n in sizes) + " | read ratio | "
          + " | ".join(f"write, {n:,}" for n in sizes) + " | write ratio | goal |")
    print("|---" * (2 * len(sizes) + 4) + "|")
    summary = []
    for result in results:
        for l1, read_op in ((True, "peek, warm copy (L1 on)"), (False, "peek (L1 off)")):
            ops = result["ops"]
            read = [ops[str(n)][read_op]["median_ms"] for n in sizes]
            write = [ops[str(n)]["open + refreshed token written"]["median_ms"] for n in sizes]
            ratios = (result["ratio"][read_op], result["ratio"]["open + refreshed token written"])
            met = all(r <= GOAL for r in ratios)
            summary.append((result["backend"], l1, met))
            print(f"| {result['backend']}, L1 {'on' if l1 else 'off'} | "
                  + " | ".join(f"{v:.3f}" for v in read) + f" | {ratios[0]:.2f} | "
                  + " | ".join(f"{v:.3f}" for v in write) + f" | {ratios[1]:.2f} | "
                  + ("met" if met else "**not met**") + " |")
    print("\nEvery operation (median ms; the rounds' range in brackets; the ratio as above):\n")
    print("| Backend | Operation | " + " | ".join(f"{n:,} accounts" for n in sizes)
          + f" | {last:,}/{first} |")
    print("|---" * (len(sizes) + 3) + "|")
    for result in results:
        for op in OPS:
            cells = [result["ops"][str(n)][op] for n in sizes]
            print(f"| {result['backend']} | {op} | "
                  + " | ".join(f"{c['median_ms']:.3f} ({c['min_ms']:.3f}–{c['max_ms']:.3f})"
                               for c in cells)
                  + f" | {result['ratio'][op]:.2f} |")
    print("\nFill (the N - 1 other accounts, in bulk in the store's format), seconds, and the "
          "machine's load average (1 min) before and after each backend:\n")
    print("| Backend | " + " | ".join(f"{n:,}" for n in sizes) + " | load before / after |")
    print("|---" * (len(sizes) + 2) + "|")
    for result in results:
        print(f"| {result['backend']} | "
              + " | ".join(f"{result['fill_seconds'][str(n)]:.2f}" for n in sizes)
              + f" | {result['load_before'][0]:.2f} / {result['load_after'][0]:.2f} |")
    if results:
        print(f"\nEntry size: {results[0]['entry_bytes']} bytes (one account's serialized "
              f"MSAL cache); {results[0]['entries_made_seconds']:.1f} s to make the entries.")
    if naive:
        print("\n## The naive design: one MSAL cache holding every account\n")
        print("Read: deserialize the whole cache + an MSAL client on it + `get_accounts` by "
              "username + `acquire_token_silent` (from the cache); the same with the cache "
              "kept in memory (no deserialization); write: `add` of a refreshed token + "
              "`serialize` of the whole cache. Medians of a few calls (one at 100 000).\n")
        print("| Accounts | Cache size | Read ms | Read ms, kept in memory | Write ms |")
        print("|---|---|---|---|---|")
        for row in naive:
            label = (f"{row['size']:,} (**extrapolated** linearly: one read + write would "
                     f"take about {row['projected_seconds']:.0f} s)" if row["extrapolated"]
                     else f"{row['size']:,}")
            print(f"| {label} | {row['blob_mb']:.1f} MB | {row['read_ms']:.2f} | "
                  f"{row['read_kept_ms']:.2f} | {row['write_ms']:.2f} |")
        if len(naive) > 1 and naive[0]["read_ms"]:
            print(f"\nNaive {naive[-1]['size']:,}/{naive[0]['size']} ratios: read "
                  f"{naive[-1]['read_ms'] / naive[0]['read_ms']:.0f}, write "
                  f"{naive[-1]['write_ms'] / naive[0]['write_ms']:.0f} (goal: 1.2): not met.")
    if summary:
        print(f"\nGoal ({last:,} within 20 % of {first}, read and write): "
              + "; ".join(f"{b} L1 {'on' if l1 else 'off'} {'met' if m else 'NOT met'}"
                          for b, l1, m in summary))


# ============================================================================ main
def clean(args: argparse.Namespace, tag: str, backends: list[str]) -> tuple[list[str], list[str]]:
    """Remove every Redis key, PostgreSQL schema and MariaDB database named after `tag`, each
    server on its own (one that fails does not keep the others from being cleaned): what was
    removed, and what could not be."""
    removed: list[str] = []
    failed: list[str] = []
    if "redis" in backends:
        try:
            removed.append(f"{clean_redis(args, tag)} Redis keys")
        except Exception as exc:  # noqa: BLE001 - report it, clean the others
            failed.append(f"Redis: {exc}")
    for backend, url, kind in (("sql-postgresql", args.postgres_url, "SCHEMA"),
                               ("sql-mariadb", args.mysql_url, "DATABASE")):
        if backend in backends:
            try:
                count = clean_sql(url, kind, tag)
                removed.append(f"{count} {backend.removeprefix('sql-')} {kind.lower()}s")
            except Exception as exc:  # noqa: BLE001 - report it, clean the others
                failed.append(f"{backend}: {' '.join(str(exc).split())[:200]}")
    return removed, failed


def clean_redis(args: argparse.Namespace, tag: str) -> int:
    import redis

    count = 0
    for db in args.redis_dbs:
        url = re.sub(r"/\d*$", "", args.redis_url) + f"/{db}"
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10)
        try:
            keys = list(client.scan_iter(match=f"{tag}:*", count=5000))
            for start in range(0, len(keys), 5000):
                client.delete(*keys[start:start + 5000])
            count += len(keys)
        finally:
            client.close()
    return count


def clean_sql(url: str, kind: str, tag: str) -> int:
    import sqlalchemy as sa

    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT",
                              connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            names = [row[0] for row in connection.execute(sa.text(
                "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE :p"),
                {"p": f"{tag}%"})]
            for name in names:
                cascade = " CASCADE" if kind == "SCHEMA" else ""
                connection.execute(sa.text(f"DROP {kind} {name}{cascade}"))
        return len(names)
    finally:
        engine.dispose()


def bake(work: Path, backend: str) -> tuple[Path, str]:
    """examples/app.yaml with `cache: {backend: <backend>}`: the project and its package."""
    from generator.cli import main as cli
    from generator.spec import context_for_file

    text, found = re.subn(r"(?m)^cache:.*\n(?:[ \t]+.*\n)*", f"cache:\n  backend: {backend}\n",
                          SPEC.read_text())
    if found != 1:
        raise BenchmarkError(f"{SPEC} has no single `cache:` block to replace")
    spec = work / f"app-{backend}.yaml"
    spec.write_text(text)
    with contextlib.redirect_stdout(io.StringIO()):
        if cli(["new", str(spec), "-o", str(work / f"bake-{backend}")]) != 0:
            raise BenchmarkError(f"baking {spec} failed")
    context = context_for_file(spec)
    return work / f"bake-{backend}" / context["project_slug"], context["package_name"]


def main() -> int:
    args = parse_args()
    if args.child:
        return child(args)
    sys.path.insert(0, str(ROOT))
    began = time.time()
    tag = "cachescale_" + secrets.token_hex(4)
    work = Path(tempfile.mkdtemp(prefix="cache-scaling-"))
    started: list[subprocess.Popen[str]] = []

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    results: list[dict[str, Any]] = []
    try:
        print(f"load average {os.getloadavg()[0]:.2f}; sizes {args.sizes}; {args.rounds} "
              f"rounds; tag {tag}", flush=True)
        for bake_name in ("redis", "sql"):
            backends = [b for b in args.backends if BAKE_OF[b] == bake_name]
            if not backends:
                continue
            project, package = bake(work, bake_name)
            argv = [sys.executable, __file__, "--child", "--project", str(project),
                    "--package", package, "--work", str(work / f"child-{bake_name}"),
                    "--tag", tag, "--rounds", str(args.rounds), "--redis-url", args.redis_url,
                    "--postgres-url", args.postgres_url, "--mysql-url", args.mysql_url,
                    "--sizes", *map(str, args.sizes), "--backends", *backends,
                    "--redis-dbs", *map(str, args.redis_dbs)]
            print(f"bake with cache backend {bake_name}: {', '.join(backends)}", flush=True)
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
            started.append(proc)
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith("CACHE-SCALING "):
                    results.append(json.loads(line.split(" ", 1)[1]))
                else:
                    print(line, end="")
            if proc.wait() != 0:
                raise BenchmarkError(f"the {bake_name} child failed ({proc.returncode})")
        naive: list[dict[str, Any]] = []
        if not args.no_naive:
            print(f"naive design (load {os.getloadavg()[0]:.2f})", flush=True)
            naive = measure_naive(args.naive_sizes, Accounts(), args.naive_limit)
        report(results, naive, args.sizes)
        print(f"\nload average at the end {os.getloadavg()[0]:.2f}; total "
              f"{time.time() - began:.0f} s")
        if args.json:
            Path(args.json).write_text(json.dumps({"results": results, "naive": naive},
                                                  indent=2))
        return 0
    except BenchmarkError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=30)
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        removed, failed = clean(args, tag, args.backends)
        shutil.rmtree(work, ignore_errors=True)
        print(f"removed: {', '.join(removed) or 'nothing'}; and {work}")
        if failed:
            print(f"could not clean everything tagged {tag}: {'; '.join(failed)}",
                  file=sys.stderr)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=list(SIZES),
                        help="accounts stored (ascending; the ratio is last / first)")
    parser.add_argument("--backends", nargs="*", choices=BACKENDS, default=list(BACKENDS),
                        help="none: the naive design only")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--redis-url", default=REDIS_URL)
    parser.add_argument("--redis-dbs", nargs="+", type=int, default=[13, 14, 15],
                        help="the Redis logical databases of the sizes, one each")
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    parser.add_argument("--mysql-url", default=MYSQL_URL)
    parser.add_argument("--naive-limit", type=float, default=NAIVE_LIMIT_SECONDS,
                        help="seconds one naive read + write may take before a size is "
                             "extrapolated instead of measured")
    parser.add_argument("--naive-sizes", nargs="+", type=int, default=list(NAIVE_SIZES),
                        help="accounts in the naive design's one cache")
    parser.add_argument("--no-naive", action="store_true")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--project", help=argparse.SUPPRESS)
    parser.add_argument("--package", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--tag", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sizes != sorted(args.sizes):
        parser.error("--sizes must ascend")
    if "redis" in args.backends and len(args.redis_dbs) < len(args.sizes):
        parser.error("give one --redis-dbs entry per size")
    return args


if __name__ == "__main__":
    sys.exit(main())
