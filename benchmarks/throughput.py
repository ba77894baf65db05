"""Throughput of a generated app against its no-auth floor: gunicorn + wrk, side by side.

    .venv/bin/python benchmarks/throughput.py [--rounds 5] [--seconds 10] [--variants ...]

What it does (details in docs/benchmarks.md, "Throughput against the no-auth floor"):

1. bakes examples/app.yaml into a temporary folder and makes ONE virtual environment for it (the
   app with its dev extras, plus Microsoft's `identity` package and Flask-Session for the
   comparison), or installs them into `--venv`; then runs the rest of this script inside it;
2. starts, on ephemeral loopback ports: the devprovider stand-in (sign-in and /token, in this
   process), a downstream API stand-in with a fixed cost per call (benchmarks/throughput/
   downstream_api.py), and for each variant two gunicorn servers (gthread): the variant and its
   no-auth floor, with the same workers and threads;
3. signs a user in to each server through the stand-in's sign-in pages (the project's test
   browser) and gives wrk the session cookie; the page is `/api/<name>` of the spec's first
   custom API, which calls that API with the user's token and renders its answer;
4. runs wrk rounds alternating between servers; a round is invalid (the script fails) unless every
   answer was a 200, every page called the API, and the floor used its fixed token;
5. counts /token grants per user under steady load with short-lived access tokens;
6. times the per-request pieces of the auth work in-process (session load, token-cache load,
   MSAL's silent call) through the app's own objects;
7. prints a table of medians over rounds. Every process it started is stopped on exit, on
   Ctrl-C and on failure.

Variants: `memory` and `filesystem` (the generated app with that TOKEN_CACHE_BACKEND),
`identity` (benchmarks/throughput/identity_app.py: the `identity` package's Flask pattern), and
`django` and `fastapi`: the same spec baked with that `framework:` (memory backend, one
process), served as each app's README says (gunicorn gthread with the shipped gunicorn.conf.py;
uvicorn --factory), each against a floor in its own framework and server
(benchmarks/throughput/django_floor.py, fastapi_floor.py).

Two measures (docs/benchmarks.md): `--floor app` (the default, measure 1: the app minus token
acquisition and the session store, as above) and `--floor hand` (measure 2: every variant's
floor is the page written by hand in the same framework and server, benchmarks/throughput/
hand_flask.py, hand_django.py, hand_fastapi.py; no sign-in, a fixed token, one pooled HTTP
client, plus for a shared store the one read it needs: a Redis GET or one prepared SELECT).
Both are judged by the server processes' CPU per request, floor over app, per round.
`django-fs` and `fastapi-fs` are those frameworks on the filesystem store; `sql-mariadb` and
`sql-sqlite` the sql store on MariaDB (a database per run, `--mariadb-url`) and SQLite (a file).

Shared-store variants (not in the default list: they need the servers): `redis`, `redis-nol1`
(the same with TOKEN_CACHE_L1=false) and `sql` (PostgreSQL): the spec baked with that
`cache: backend:` (Flask), 2 gunicorn workers, against the floor of the same baked app. Each
server gets a Redis key prefix of its own (`--redis-url`), each sql variant a PostgreSQL schema
of its own (`--postgres-url`), created and migrated with the app's documented upgrade command;
every key and schema of the run is removed at the end, also on failure. Their in-process costs
and a cProfile of in-process page requests run in a child process that imports that baked
package (it has the same name as the memory one).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import html
import io
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HELPERS = Path(__file__).resolve().parent / "throughput"
SPEC = ROOT / "examples" / "app.yaml"
VARIANTS = ("memory", "filesystem", "identity", "django", "fastapi", "django-fs", "fastapi-fs",
            "redis", "redis-nol1", "sql", "sql-mariadb", "sql-sqlite")
DEFAULT_VARIANTS = ("memory", "filesystem", "identity", "django", "fastapi")
# memory, django, fastapi: the memory backend, whose store lives in one process
WORKERS = {"memory": 1, "filesystem": 2, "identity": 2, "django": 1, "fastapi": 1,
           "django-fs": 2, "fastapi-fs": 1, "redis": 2, "redis-nol1": 2, "sql": 2,
           "sql-mariadb": 2, "sql-sqlite": 2}
# Variants that are the spec baked with another framework: that framework, and the backend.
FRAMEWORK_VARIANTS = {"django": ("django", "memory"), "fastapi": ("fastapi", "memory"),
                      "django-fs": ("django", "filesystem"),
                      "fastapi-fs": ("fastapi", "filesystem")}
FRAMEWORKS = tuple(FRAMEWORK_VARIANTS)
# Variants that are the spec baked with another `cache: backend:` (a shared store): the backend
# and the settings the variant adds.
STORE_VARIANTS: dict[str, tuple[str, dict[str, str]]] = {
    "redis": ("redis", {}),
    "redis-nol1": ("redis", {"TOKEN_CACHE_L1": "false"}),
    "sql": ("sql", {}),
    "sql-mariadb": ("sql", {}),
    "sql-sqlite": ("sql", {}),
}
# The database each sql variant runs on (PostgreSQL: a schema per variant; MariaDB: a database
# per variant; SQLite: a file per variant).
SQL_KIND = {"sql": "postgresql", "sql-mariadb": "mariadb", "sql-sqlite": "sqlite"}
# Measure 2's floors: the page written by hand in each framework (benchmarks/throughput/hand_*).
HAND_FLOORS = {"flask": "hand_flask:create_app()", "django": "hand_django:application",
               "fastapi": "hand_fastapi:create_app"}
REDIS_URL = os.environ.get("MSAL_WEBAPP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get("MSAL_WEBAPP_TEST_POSTGRES_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MARIADB_URL = os.environ.get("MSAL_WEBAPP_TEST_MARIADB_URL",
                             "mysql+pymysql://root@127.0.0.1:3306/test")
PROFILED_PAGES = 400  # in-process page requests under cProfile, per store variant
SERVER = {"fastapi": "uvicorn", "fastapi-fs": "uvicorn"}  # the others: gunicorn gthread
MAIN_TOKEN_LIFETIME = 7 * 24 * 3600  # access tokens outlive any run of this script
MSAL_EXPIRY_MARGIN = 300  # MSAL treats a token expiring within 5 minutes as expired
REAL_TOKEN_LIFETIME = 3600  # what Entra issues by default (60-90 minutes)
IDENTITY_PAGE = "/call_downstream_api"  # the route name of Microsoft's sample


class BenchmarkError(Exception):
    """A setup step or a round that did not measure what it should: the run fails."""


# ============================================================================ preparation
def prepare(args: argparse.Namespace) -> None:
    """Bake the spec, make (or reuse) the venv, then re-run this script inside that venv."""
    began = time.monotonic()
    sys.path.insert(0, str(ROOT))
    from generator.cli import main as cli
    from generator.spec import context_for_file

    context = context_for_file(SPEC)
    work = Path(tempfile.mkdtemp(prefix="throughput-"))
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            if cli(["new", str(SPEC), "-o", str(work)]) != 0:
                raise BenchmarkError(f"baking {SPEC} failed")
        project = work / context["project_slug"]
        # The other frameworks' apps: the same spec with another `framework:`. Only their
        # dependencies are installed; each server finds its package first on PYTHONPATH.
        extra: list[str] = []
        for framework in sorted({FRAMEWORK_VARIANTS[v][0] for v in args.variants
                                 if v in FRAMEWORKS}):
            baked = bake_with(cli, work, framework, r"(?m)^framework:.*$",
                              f"framework: {framework}") / context["project_slug"]
            extra += tomllib.loads((baked / "pyproject.toml").read_text())["project"][
                "dependencies"]
        # The shared stores' apps: the same spec with another `cache:` (Flask), installed the
        # same way (their dependencies, plus PostgreSQL's driver for sql).
        for backend in sorted({STORE_VARIANTS[v][0] for v in args.variants
                               if v in STORE_VARIANTS}):
            baked = bake_with(cli, work, backend, r"(?m)^cache:.*\n(?:[ \t]+.*\n)*",
                              f"cache:\n  backend: {backend}\n") / context["project_slug"]
            extra += tomllib.loads((baked / "pyproject.toml").read_text())["project"][
                "dependencies"]
            if backend == "sql":
                extra += ["psycopg[binary]>=3.1", "pymysql>=1.1"]
        venv = Path(args.venv).resolve() if args.venv else work / "venv"
        if not (venv / "bin" / "python").exists():
            print(f"creating a virtual environment in {venv}", flush=True)
            _run([sys.executable, "-m", "venv", str(venv)])
        print("installing the baked app (with its dev extras), identity and flask-session"
              + (" and the other bakes' dependencies" if extra else ""), flush=True)
        _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
              "-e", f"{project}[dev]", "identity>=0.11", "flask-session>=0.8", *extra])
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    python = str(venv / "bin" / "python")
    os.execv(python, [python, __file__, *sys.argv[1:], "--inner", str(work),
                      "--project", str(project), "--package", context["package_name"],
                      "--venv", str(venv),
                      "--prepared-seconds", f"{time.monotonic() - began:.1f}"])


def bake_with(cli: Callable[[list[str]], int], work: Path, name: str, pattern: str,
              replacement: str) -> Path:
    """Bake SPEC with the one part `pattern` matches replaced (another `framework:` line,
    another `cache:` block) into work/bake-<name>; that folder."""
    spec = work / f"app-{name}.yaml"
    text, found = re.subn(pattern, replacement, SPEC.read_text())
    if found != 1:
        raise BenchmarkError(f"{SPEC} has no single part matching {pattern!r} to replace")
    spec.write_text(text)
    with contextlib.redirect_stdout(io.StringIO()):
        if cli(["new", str(spec), "-o", str(work / f"bake-{name}")]) != 0:
            raise BenchmarkError(f"baking {spec} failed")
    return work / f"bake-{name}"


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchmarkError(f"{' '.join(argv)} failed:\n"
                             f"{done.stdout[-3000:]}{done.stderr[-3000:]}")


# ============================================================================ processes
class Processes:
    """Every process this script starts, each in its own session, stopped together at the end."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, argv: list[str], *, env: dict[str, str], cwd: Path, log: Path,
              pass_fds: tuple[int, ...] = ()) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, pass_fds=pass_fds,
                                    start_new_session=True)
        self.started.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.started:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.started.clear()


# ============================================================================ shared stores
class StoreNamespaces:
    """The Redis key prefixes and PostgreSQL schemas of one run, all named after its `tag`
    (`bench_<hex>`), removed by `clean` at the end, also on failure and Ctrl-C: every key under
    the tag and every schema named after it, whichever process (a micro child) made them."""

    def __init__(self, tag: str, redis_url: str, postgres_url: str,
                 mariadb_url: str = MARIADB_URL) -> None:
        self.tag = tag
        self.redis_url = redis_url
        self.postgres_url = postgres_url
        self.mariadb_url = mariadb_url
        self.mariadb_used = False

    def prefix(self, name: str) -> str:
        """A TOKEN_CACHE_PREFIX under the tag: the app's keys are `<prefix>:...`."""
        return f"{self.tag}:{name}"

    def check_redis(self) -> None:
        import redis

        client = redis.Redis.from_url(self.redis_url, socket_connect_timeout=2, socket_timeout=2)
        try:
            client.ping()
        except (redis.RedisError, OSError) as exc:
            raise BenchmarkError(f"no Redis answers at {self.redis_url}: {exc}") from exc
        finally:
            client.close()

    def _admin(self, *statements: str, url: str | None = None) -> list[Any]:
        import sqlalchemy as sa

        url = url or self.postgres_url
        engine = sa.create_engine(url, isolation_level="AUTOCOMMIT",
                                  connect_args={"connect_timeout": 3})
        try:
            with engine.connect() as connection:
                return [connection.execute(sa.text(s)).all() if s.startswith("SELECT")
                        else connection.execute(sa.text(s)) for s in statements]
        except sa.exc.SQLAlchemyError as exc:
            raise BenchmarkError(f"the database at {url}: {exc}") from exc
        finally:
            engine.dispose()

    def create_schema(self, name: str, migrate: Callable[[str], None]) -> str:
        """A new schema `<tag>_<name>`, its tables made by `migrate(url)`; its URL (the
        search_path in libpq's options, as the app's README shows)."""
        import sqlalchemy as sa

        schema = f"{self.tag}_{re.sub(r'[^a-z0-9_]', '_', name)}"
        self._admin(f"CREATE SCHEMA {schema}")
        url = sa.make_url(self.postgres_url).update_query_dict(
            {"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
        migrate(url)
        return url

    def create_database(self, name: str, migrate: Callable[[str], None]) -> str:
        """A new MariaDB database `<tag>_<name>`, its tables made by `migrate(url)`; its URL."""
        import sqlalchemy as sa

        database = f"{self.tag}_{re.sub(r'[^a-z0-9_]', '_', name)}"
        self.mariadb_used = True
        self._admin(f"CREATE DATABASE {database}", url=self.mariadb_url)
        url = sa.make_url(self.mariadb_url).set(database=database).render_as_string(
            hide_password=False)
        migrate(url)
        return url

    def clean(self, redis_used: bool, postgres_used: bool) -> tuple[list[str], list[str]]:
        """Delete the run's keys and drop its schemas, each server on its own (one that fails
        does not keep the other from being cleaned): what was removed, and what could not be."""
        removed, failed = [], []
        if redis_used:
            try:
                import redis

                client = redis.Redis.from_url(self.redis_url, socket_connect_timeout=2,
                                              socket_timeout=5)
                try:
                    keys = list(client.scan_iter(match=f"{self.tag}:*", count=1000))
                    for start in range(0, len(keys), 1000):
                        client.delete(*keys[start:start + 1000])
                    removed.append(f"{len(keys)} Redis keys")
                finally:
                    client.close()
            except Exception as exc:  # noqa: BLE001 - report it, clean the other
                failed.append(f"Redis keys {self.tag}:*: {exc}")
        if postgres_used:
            try:
                (rows,) = self._admin("SELECT schema_name FROM information_schema.schemata "
                                      f"WHERE schema_name LIKE '{self.tag}\\_%'")
                for (schema,) in rows:
                    self._admin(f"DROP SCHEMA {schema} CASCADE")
                removed.append(f"{len(rows)} PostgreSQL schemas")
            except Exception as exc:  # noqa: BLE001 - report it
                failed.append(f"PostgreSQL schemas {self.tag}_*: {exc}")
        if self.mariadb_used:
            try:
                (rows,) = self._admin("SELECT schema_name FROM information_schema.schemata "
                                      f"WHERE schema_name LIKE '{self.tag}\\_%'",
                                      url=self.mariadb_url)
                for (database,) in rows:
                    self._admin(f"DROP DATABASE {database}", url=self.mariadb_url)
                removed.append(f"{len(rows)} MariaDB databases")
            except Exception as exc:  # noqa: BLE001 - report it
                failed.append(f"MariaDB databases {self.tag}_*: {exc}")
        return removed, failed


def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def _proc_stats() -> dict[int, tuple[int, float]]:
    """Every process: its parent and its user + system CPU seconds, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2:].split()
        stats[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks)
    return stats


def cpu_seconds(root: int) -> float:
    """User + system CPU time of a process and its live descendants (gunicorn's workers)."""
    stats = _proc_stats()
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += stats.get(pid, (0, 0.0))[1]
        todo += [child for child, (parent, _) in stats.items() if parent == pid]
    return total


def worker_cpu(root: int) -> dict[int, float]:
    """CPU seconds of each process that serves requests: `root`'s children (gunicorn's
    workers), or `root` itself when it has none (uvicorn)."""
    stats = _proc_stats()
    found = {pid: cpu for pid, (parent, cpu) in stats.items() if parent == root}
    return found or {root: stats.get(root, (0, 0.0))[1]}


# ============================================================================ results
@dataclass
class WrkResult:
    requests: int
    seconds: float
    ok: int
    bad: int
    socket_errors: int
    p50_ms: float
    p99_ms: float
    api_calls: int = 0
    api_tokens: dict[str, int] = field(default_factory=dict)
    server_cpu: float = 0.0  # seconds, the server's processes
    api_cpu: float = 0.0
    wrk_cpu: float = 0.0
    store_cpu: float = 0.0  # seconds, the Redis or PostgreSQL server's processes (shared)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @classmethod
    def combine(cls, parts: list[WrkResult]) -> WrkResult:
        """One result for consecutive runs: counts and times add up; the latency percentiles
        are the mean of the parts' (wrk reports percentiles, not its histogram)."""
        tokens: Counter[str] = Counter()
        for part in parts:
            tokens.update(part.api_tokens)
        return cls(
            requests=sum(p.requests for p in parts), seconds=sum(p.seconds for p in parts),
            ok=sum(p.ok for p in parts), bad=sum(p.bad for p in parts),
            socket_errors=sum(p.socket_errors for p in parts),
            p50_ms=statistics.mean(p.p50_ms for p in parts),
            p99_ms=statistics.mean(p.p99_ms for p in parts),
            api_calls=sum(p.api_calls for p in parts), api_tokens=dict(tokens),
            server_cpu=sum(p.server_cpu for p in parts), api_cpu=sum(p.api_cpu for p in parts),
            wrk_cpu=sum(p.wrk_cpu for p in parts), store_cpu=sum(p.store_cpu for p in parts))

    @property
    def cpu_ms_per_request(self) -> float:
        return 1000 * self.server_cpu / max(1, self.requests)

    @property
    def store_cpu_ms_per_request(self) -> float:
        return 1000 * self.store_cpu / max(1, self.requests)


@dataclass
class Server:
    variant: str
    floor: bool
    port: int
    page: str
    proc: subprocess.Popen[bytes]
    log: Path
    client_id: str
    cookie: str = ""
    rounds: list[WrkResult] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.variant} floor" if self.floor else self.variant

    @property
    def app_url(self) -> str:
        return f"http://localhost:{self.port}"

    @property
    def url(self) -> str:
        # wrk and the checks go to 127.0.0.1 ("localhost" may resolve to ::1 first).
        return f"http://127.0.0.1:{self.port}{self.page}"


# ============================================================================ the run
class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = Path(args.inner)
        self.project = Path(args.project)
        self.package = args.package
        self.venv = Path(args.venv)
        self.processes = Processes()
        self.marker = args.marker or "bench-" + secrets.token_hex(8)
        self.servers: list[Server] = []
        self.stores = StoreNamespaces(self.marker.replace("-", "_"), args.redis_url,
                                      args.postgres_url, args.mariadb_url)
        self.sql_urls: dict[str, str] = {}  # variant: its schema's URL
        self.store_pids: dict[str, int | None] = {}  # backend: its server's process
        backends = {STORE_VARIANTS[v][0] for v in args.variants if v in STORE_VARIANTS}
        if args.micro_child:
            backends.add(STORE_VARIANTS[args.micro_child][0])
        self.redis_used = "redis" in backends
        self.postgres_used = any(SQL_KIND.get(v) == "postgresql"
                                 for v in [*args.variants, args.micro_child])

    def store_project(self, variant: str) -> Path:
        """The project a store variant runs: the spec baked with its backend."""
        if self.args.micro_child:
            return self.project  # the child runs inside that bake
        return self.work / f"bake-{STORE_VARIANTS[variant][0]}" / self.project.name

    def migrate(self, url: str, variant: str = "sql") -> None:
        """The tables of the sql backend, by the app's documented upgrade command."""
        project = self.store_project(variant)
        done = subprocess.run(
            [str(self.venv / "bin" / "python"), "-m", f"{self.package}.core.stores.sql",
             "upgrade", "--url", url],
            env={**os.environ, "PYTHONPATH": str(project)}, cwd=self.work,
            capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise BenchmarkError(f"the sql upgrade command failed:\n{done.stdout}{done.stderr}")

    def new_sql_url(self, variant: str, name: str) -> str:
        """A migrated, empty database for sql variant `variant`, named after `name`."""
        kind = SQL_KIND[variant]
        if kind == "postgresql":
            return self.stores.create_schema(name, lambda url: self.migrate(url, variant))
        if kind == "mariadb":
            return self.stores.create_database(name, lambda url: self.migrate(url, variant))
        url = f"sqlite:///{self.work / (name + '.sqlite3')}"
        self.migrate(url, variant)
        return url

    def store_pid(self, variant: str) -> int | None:
        """The process of the store server a store variant uses, if it runs on this machine
        (Redis: the server; PostgreSQL: the postmaster, whose children are the backends); its
        CPU time is the store's cost per request (shared with anyone else using it)."""
        if variant not in STORE_VARIANTS or SQL_KIND.get(variant, "postgresql") != "postgresql":
            return None  # MariaDB's and SQLite's CPU is not followed
        backend = STORE_VARIANTS[variant][0]
        if backend not in self.store_pids:
            self.store_pids[backend] = None
            with contextlib.suppress(Exception):
                if backend == "redis":
                    import redis

                    client = redis.Redis.from_url(self.stores.redis_url, socket_timeout=2)
                    pid = int(client.info("server")["process_id"])
                    client.close()
                else:
                    import sqlalchemy as sa

                    engine = sa.create_engine(self.stores.postgres_url)
                    with engine.connect() as connection:
                        backend_pid = connection.execute(sa.text("SELECT pg_backend_pid()")
                                                         ).scalar_one()
                    engine.dispose()
                    stat = Path(f"/proc/{backend_pid}/stat").read_text()
                    pid = int(stat[stat.rindex(")") + 2:].split()[1])  # its parent
                name = Path(f"/proc/{pid}/comm").read_text().strip()
                if name.startswith(("redis", "postgres")):
                    self.store_pids[backend] = pid
        return self.store_pids[backend]

    def store_env(self, variant: str, name: str) -> dict[str, str]:
        """The shared-store settings of one server (`name`) of a store variant: a key prefix
        of its own, in the variant's PostgreSQL schema for sql (made on first use)."""
        if variant not in STORE_VARIANTS:
            return {}
        backend, extra = STORE_VARIANTS[variant]
        env = {"TOKEN_CACHE_BACKEND": backend, "TOKEN_CACHE_PREFIX": self.stores.prefix(name),
               **extra}
        if backend == "redis":
            env["TOKEN_CACHE_REDIS_URL"] = self.stores.redis_url
        else:
            if variant not in self.sql_urls:
                self.sql_urls[variant] = self.args.sql_url or self.new_sql_url(variant, variant)
            env["TOKEN_CACHE_SQL_URL"] = self.sql_urls[variant]
        return env

    # ---------------------------------------------------------------- infrastructure
    def start_infrastructure(self) -> None:
        import importlib

        from devprovider import DEFAULT_USERS, StandIn
        from devprovider.__main__ import register_apis, write_tls_files

        config = importlib.import_module(f"{self.package}.config")
        self.defaults = config.DEFAULTS
        customs = [name for name in self.defaults.downstream_apis if name != "graph"]
        if not customs:
            raise BenchmarkError("the spec has no custom API to call (the page is /api/<name>)")
        self.api_name = customs[0]
        self.api_scopes = [str(s) for s in self.defaults.downstream_apis[self.api_name]["scopes"]]
        self.users = DEFAULT_USERS
        tls = self.work / "tls"
        tls.mkdir()
        self.ca_path, cert, key = write_tls_files(tls)
        # Sign-in pages on plain http on 127.0.0.1: another site than the app on localhost.
        self.standin = StandIn(cert, key, browser_base_url="http://127.0.0.1:0",
                               access_token_lifetime=MAIN_TOKEN_LIFETIME).start()
        self.api_env = register_apis(self.standin, self.defaults.downstream_apis)

        sock = _listening_socket()
        self.api_port = sock.getsockname()[1]
        self.api_proc = self.processes.start(
            [str(self.venv / "bin" / "python"), str(HELPERS / "downstream_api.py"),
             "--fd", str(sock.fileno()), "--marker", self.marker],
            env=dict(os.environ), cwd=self.work, log=self.work / "api.log",
            pass_fds=(sock.fileno(),))
        sock.close()
        self.api_url = f"http://127.0.0.1:{self.api_port}/{self.api_name}/"
        self._wait_ready(self.api_port, self.api_proc, self.work / "api.log", "/__stats")
        # The token every floor uses: a real one for the page's API, valid for the whole run.
        self.fixed_token = self.standin.mint_access_token(
            self.users[0].username, "bench-floor", self.api_scopes, lifetime=MAIN_TOKEN_LIFETIME)

    def drain(self) -> dict[str, Any]:
        """The API's counts once the requests wrk left in flight have finished, then reset.

        wrk stops without waiting for the answers it no longer counts; their API calls arrive a
        little later and must not be counted in the next round (with another server's token).
        """
        last, quiet = self.api_stats(reset=False)["calls"], 0
        deadline = time.monotonic() + 10
        # No new call for 5 polls (0.5 s) means drained: on a loaded machine a request wrk
        # left behind can wait a few hundred milliseconds for a worker thread.
        while quiet < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
            now = self.api_stats(reset=False)["calls"]
            quiet = quiet + 1 if now == last else 0
            last = now
        return self.api_stats(reset=True)

    def api_stats(self, reset: bool = True) -> dict[str, Any]:
        import requests

        url = f"http://127.0.0.1:{self.api_port}/__stats" + ("?reset=1" if reset else "")
        return dict(requests.get(url, timeout=10).json())

    def _wait_ready(self, port: int, proc: subprocess.Popen[bytes], log: Path,
                    path: str = "/") -> None:
        """Ready once it answers HTTP at all (the socket is listening before the process runs,
        so a request simply waits for a worker)."""
        import requests

        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise BenchmarkError(f"a server exited at start-up ({proc.args!r}):\n"
                                     + log.read_text(errors="replace")[-4000:])
            try:
                requests.get(f"http://127.0.0.1:{port}{path}", timeout=1)
                return
            except requests.RequestException:
                continue
        raise BenchmarkError("a server did not answer within 90 s:\n"
                             + log.read_text(errors="replace")[-4000:])

    # ---------------------------------------------------------------- app servers
    def app_env(self, backend: str, app_url: str, client_id: str, secret: str,
                folder: Path) -> dict[str, str]:
        """The generated app's settings for local development against the stand-in (a store
        variant's shared-store settings are added by `store_env`)."""
        where = ({"AUTHORITY": "", "OIDC_AUTHORITY": self.standin.oidc_authority}
                 if self.defaults.oidc_authority else
                 {"AUTHORITY": self.standin.authority, "OIDC_AUTHORITY": ""})
        return {
            **where,
            "INSTANCE_DISCOVERY": "false",
            "CLIENT_ID": client_id,
            "CLIENT_SECRET": secret,
            "REDIRECT_URI": app_url + self.defaults.redirect_path,
            "SECRET_KEY": secrets.token_urlsafe(48),
            "CA_BUNDLE": self.ca_path,
            "TOKEN_CACHE_BACKEND": backend,
            "TOKEN_CACHE_DIR": str(folder / "token_cache"),
            "LOG_LEVEL": "WARNING",
            **self.api_env,
            f"API_{self.api_name.upper()}_BASE_URL": self.api_url,
        }

    def hand_env(self, variant: str, name: str) -> dict[str, str]:
        """The settings of a hand-written floor (benchmarks/throughput/hand_common.py): the
        app's API URL, the fixed token, and for a shared store the read it makes."""
        env = {"BENCH_API_URL": self.api_url, "BENCH_FIXED_TOKEN": self.fixed_token,
               "BENCH_USER_NAME": self.users[0].name,
               "BENCH_SESSION_BYTES": str(self.args.session_bytes)}
        if variant in STORE_VARIANTS:
            store = self.store_env(variant, name)
            backend = STORE_VARIANTS[variant][0]
            env.update(BENCH_STORE=backend, BENCH_STORE_KEY=f"{store['TOKEN_CACHE_PREFIX']}:hand",
                       BENCH_STORE_URL=store.get("TOKEN_CACHE_REDIS_URL")
                       or store["TOKEN_CACHE_SQL_URL"])
        return env

    def start_server(self, variant: str, floor: bool) -> Server:
        if variant in FRAMEWORKS:
            return self.start_framework_server(variant, floor)
        sock = _listening_socket()
        port = sock.getsockname()[1]
        app_url = f"http://localhost:{port}"
        name = f"{variant}-floor" if floor else variant
        folder = self.work / name
        folder.mkdir()
        client_id, secret = f"bench-{name}", secrets.token_urlsafe(24)
        redirect_path = self.defaults.redirect_path
        self.standin.register_client(client_id, secret, [app_url + redirect_path, app_url + "/"])
        env = {key: value for key, value in os.environ.items()
               if key not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
        if variant == "identity":
            page = IDENTITY_PAGE
            spec = "identity_app:create_app()"
            env.update(AUTHORITY=self.standin.authority, CLIENT_ID=client_id,
                       CLIENT_SECRET=secret, REDIRECT_URI=app_url + redirect_path,
                       SCOPE=" ".join(self.api_scopes), ENDPOINT=self.api_url,
                       SESSION_FILE_DIR=str(folder / "flask_session"),
                       REQUESTS_CA_BUNDLE=self.ca_path)
            if floor:
                env.update(BENCH_FLOOR="1", BENCH_FIXED_TOKEN=self.fixed_token,
                           BENCH_USER_NAME=self.users[0].name)
        elif floor and self.args.floor == "hand":
            page = f"/api/{self.api_name}"
            spec = HAND_FLOORS["flask"]
            env.update(self.hand_env(variant, name))
        else:
            page = f"/api/{self.api_name}"
            spec = f"{self.package}.app:create_app()"
            env.update(self.app_env(variant, app_url, client_id, secret, folder))
            env.update(self.store_env(variant, name))
            if floor:
                spec = "generated_floor:create_app()"
                env.update(BENCH_PACKAGE=self.package, BENCH_FIXED_TOKEN=self.fixed_token,
                           BENCH_PAGE=page)
        project = self.project
        if variant in STORE_VARIANTS:
            # The baked package first (the memory one is installed in the venv under the same
            # name), for gunicorn.conf.py's import too.
            project = self.store_project(variant)
            env["PYTHONPATH"] = f"{HELPERS}{os.pathsep}{project}"
        argv = [str(self.venv / "bin" / "gunicorn"), "--bind", f"fd://{sock.fileno()}",
                "--worker-class", "gthread", "--workers", str(WORKERS[variant]),
                "--threads", str(self.args.threads), "--log-level", "warning",
                # A worker recycled mid-run would lose the memory store's sessions.
                "--max-requests", "0", "--pythonpath", f"{HELPERS},{project}"]
        conf = project / "gunicorn.conf.py"
        if conf.exists():  # the app's shipped settings, with the ones above overriding them
            argv += ["--config", str(conf)]
        log = folder / "gunicorn.log"
        proc = self.processes.start([*argv, spec], env=env, cwd=folder, log=log,
                                    pass_fds=(sock.fileno(),))
        sock.close()
        server = Server(variant, floor, port, page, proc, log, client_id)
        self._wait_ready(port, proc, log)
        return server

    def start_framework_server(self, variant: str, floor: bool) -> Server:
        """The spec baked with framework `variant` (memory backend), served as its README says:
        Django under gunicorn gthread with its gunicorn.conf.py, the same options as the Flask
        servers; FastAPI under one uvicorn process (`--factory`, `--no-proxy-headers`). The
        floor is the same app through benchmarks/throughput/<variant>_floor.py."""
        framework, backend = FRAMEWORK_VARIANTS[variant]
        hand = floor and self.args.floor == "hand"
        project = self.work / f"bake-{framework}" / self.project.name
        name = f"{variant}-floor" if floor else variant
        folder = self.work / name
        folder.mkdir()
        client_id, secret = f"bench-{name}", secrets.token_urlsafe(24)
        page = f"/api/{self.api_name}"
        env = {key: value for key, value in os.environ.items()
               if key not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
        # The baked package first (the Flask one is installed in the venv under the same name).
        env["PYTHONPATH"] = f"{HELPERS}{os.pathsep}{project}"
        if hand:
            env.update(self.hand_env(variant, name))
        elif floor:
            env.update(BENCH_PACKAGE=self.package, BENCH_FIXED_TOKEN=self.fixed_token,
                       BENCH_PAGE=page)
        log = folder / "server.log"
        if framework == "django":
            sock = _listening_socket()
            port = sock.getsockname()[1]
            env.update(DJANGO_SETTINGS_MODULE=f"{self.package}.settings",
                       DATABASE_PATH=str(folder / "db.sqlite3"),
                       # wrk and the checks send Host: 127.0.0.1 (the cookie is localhost's).
                       ALLOWED_HOSTS="localhost,127.0.0.1")
        else:
            # uvicorn's --fd takes the socket for a Unix one (no TCP_NODELAY on its
            # connections): it binds the port itself, free a moment ago.
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
        app_url = f"http://localhost:{port}"
        self.standin.register_client(client_id, secret,
                                     [app_url + self.defaults.redirect_path, app_url + "/"])
        env.update(self.app_env(backend, app_url, client_id, secret, folder))
        if framework == "django" and not hand:
            done = subprocess.run([str(self.venv / "bin" / "python"),
                                   str(project / "manage.py"), "migrate", "--noinput"],
                                  env=env, cwd=folder, capture_output=True, text=True)
            if done.returncode != 0:
                raise BenchmarkError(f"manage.py migrate failed:\n{done.stdout}{done.stderr}")
        if framework == "django":
            spec = "django_floor:application" if floor else f"{self.package}.wsgi:application"
            spec = HAND_FLOORS["django"] if hand else spec
            argv = [str(self.venv / "bin" / "gunicorn"), "--bind", f"fd://{sock.fileno()}",
                    "--worker-class", "gthread", "--workers", str(WORKERS[variant]),
                    "--threads", str(self.args.threads), "--log-level", "warning",
                    "--max-requests", "0", "--config", str(project / "gunicorn.conf.py"), spec]
            proc = self.processes.start(argv, env=env, cwd=folder, log=log,
                                        pass_fds=(sock.fileno(),))
            sock.close()
        else:
            spec = "fastapi_floor:create_app" if floor else f"{self.package}.app:create_app"
            spec = HAND_FLOORS["fastapi"] if hand else spec
            argv = [str(self.venv / "bin" / "uvicorn"), "--factory", spec,
                    "--host", "127.0.0.1", "--port", str(port), "--no-proxy-headers",
                    "--log-level", "warning"]
            proc = self.processes.start(argv, env=env, cwd=folder, log=log)
        server = Server(variant, floor, port, page, proc, log, client_id)
        self._wait_ready(port, proc, log)
        return server

    # ---------------------------------------------------------------- signing in
    def sign_in(self, server: Server, username: str) -> str:
        return self._sign_in(server.app_url + server.page, username, server.name,
                             identity=server.variant == "identity")

    def _sign_in(self, url: str, username: str, name: str, *, identity: bool = False) -> str:
        """Sign `username` in by opening the page `url` and going through the stand-in's pages;
        return the Cookie header that carries the session (what a browser sends to the page)."""
        from tests.browser import Browser

        with Browser(verify=self.ca_path) as browser:
            page = browser.get(url)
            if identity:
                # identity's login page sends the browser on with <meta http-equiv=refresh>.
                found = re.search(r"URL=([^'\"]+)", page.text)
                if not found:
                    raise BenchmarkError(f"no sign-in link on identity's login page:\n{page.text}")
                page = browser.get(html.unescape(found.group(1)), initiator=page.url)
            final = browser.sign_in(page, username)
            if final.status_code != 200 or self.marker not in final.text:
                raise BenchmarkError(f"signing in to {name} did not end on the page "
                                     f"({final.status_code} {final.url}):\n{final.text[:2000]}")
            return "; ".join(f"{c.name}={c.value}" for c in browser.cookies
                             if c.domain == "localhost")

    def check_page(self, server: Server, cookie: str | None = None, frozen: bool = False) -> None:
        """One request as wrk sends it: a 200 page showing the API's answer."""
        import requests

        cookie = server.cookie if cookie is None else cookie
        for _ in range(4 if frozen else 1):
            answer = requests.get(server.url, headers={"Cookie": cookie} if cookie else {},
                                  allow_redirects=False, timeout=30)
            if answer.status_code != 200 or self.marker not in answer.text:
                raise BenchmarkError(f"{server.name}: {server.page} answered "
                                     f"{answer.status_code} without the API's data:\n"
                                     f"{answer.text[:2000]}")
            if frozen and answer.headers.get("X-Bench-Floor") != "frozen":
                raise BenchmarkError(f"{server.name}: a worker still loads the session after "
                                     "warm-up (generated_floor.py no longer freezes it)")

    # ---------------------------------------------------------------- wrk
    def wrk(self, server: Server, seconds: int, cookie: str | None = None,
            check_tokens: bool = True) -> WrkResult:
        cookie = server.cookie if cookie is None else cookie
        argv = ["wrk", f"-t{self.args.wrk_threads}", f"-c{self.args.connections}",
                f"-d{seconds}s", "--timeout", "5s", "--latency", "-s", str(HELPERS / "check.lua")]
        if cookie:
            argv += ["-H", f"Cookie: {cookie}"]
        argv.append(server.url)
        self.api_stats(reset=True)
        store = self.store_pid(server.variant)
        cpu0, api0 = cpu_seconds(server.proc.pid), cpu_seconds(self.api_proc.pid)
        store0 = cpu_seconds(store) if store else 0.0
        wrk0 = os.times()
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
        wrk1 = os.times()
        stats = self.drain()
        cpu1, api1 = cpu_seconds(server.proc.pid), cpu_seconds(self.api_proc.pid)
        store1 = cpu_seconds(store) if store else 0.0
        line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH-RESULT ")),
                    None)
        if done.returncode != 0 or line is None:
            raise BenchmarkError(f"wrk failed on {server.name}:\n{done.stdout}{done.stderr}")
        raw = json.loads(line.split(" ", 1)[1])
        result = WrkResult(
            requests=raw["requests"], seconds=raw["duration_us"] / 1e6, ok=raw["ok"],
            bad=raw["bad"], socket_errors=raw["socket_errors"], p50_ms=raw["p50_us"] / 1000,
            p99_ms=raw["p99_us"] / 1000, api_calls=stats["calls"], api_tokens=stats["tokens"],
            server_cpu=cpu1 - cpu0, api_cpu=api1 - api0, store_cpu=store1 - store0,
            wrk_cpu=(wrk1.children_user + wrk1.children_system
                     - wrk0.children_user - wrk0.children_system))
        self.validate(server, result, check_tokens)
        return result

    def validate(self, server: Server, result: WrkResult, check_tokens: bool) -> None:
        problems = []
        if result.bad or result.socket_errors:
            problems.append(f"{result.bad} answers were not 200 and {result.socket_errors} "
                            "requests failed at the socket level")
        # Each page calls the API once; requests still in flight when wrk stopped were not
        # counted by wrk but may have reached the API.
        if not result.ok <= result.api_calls <= result.ok + self.args.connections:
            problems.append(f"{result.ok} pages but {result.api_calls} API calls")
        fixed = self.fixed_token[-16:]
        if check_tokens and server.floor and set(result.api_tokens) != {fixed}:
            problems.append(f"the floor called the API with other tokens than its fixed one: "
                            f"{result.api_tokens}")
        if check_tokens and not server.floor and fixed in result.api_tokens:
            problems.append("the variant called the API with the floor's fixed token")
        if problems:
            log = server.log.read_text(errors="replace")[-3000:] if server.log.exists() else ""
            raise BenchmarkError(f"invalid round on {server.name}: " + "; ".join(problems)
                                 + (f"\nend of its log ({server.log}):\n{log}" if log else ""))

    # ---------------------------------------------------------------- phases
    def start_servers(self) -> None:
        for variant in self.args.variants:
            for floor in (True, False):
                server = self.start_server(variant, floor)
                self.servers.append(server)
                # Those floors have no sign-in at all.
                if not (floor and (variant == "identity" or self.args.floor == "hand")):
                    server.cookie = self.sign_in(server, self.users[0].username)
                self.check_page(server)
                how = ("uvicorn, 1 process" if SERVER.get(variant) == "uvicorn" else
                       f"gunicorn gthread, {WORKERS[variant]} worker(s) x "
                       f"{self.args.threads} threads")
                print(f"  {server.name:<18} {how}, {server.url}", flush=True)

    def api_alone(self) -> WrkResult:
        """The API stand-in measured alone, with the same wrk settings."""
        fake = Server("downstream API", False, self.api_port, f"/{self.api_name}/",
                      self.api_proc, self.work / "api.log", "")
        argv = ["wrk", f"-t{self.args.wrk_threads}", f"-c{self.args.connections}", "-d5s",
                "--latency", "-s", str(HELPERS / "check.lua"),
                "-H", f"Authorization: Bearer {self.fixed_token}", fake.url]
        api0 = cpu_seconds(self.api_proc.pid)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        api1 = cpu_seconds(self.api_proc.pid)
        line = next(ln for ln in done.stdout.splitlines() if ln.startswith("BENCH-RESULT "))
        raw = json.loads(line.split(" ", 1)[1])
        self.api_stats(reset=True)
        if raw["bad"] or raw["socket_errors"]:
            raise BenchmarkError(f"the API stand-in failed under load: {raw}")
        return WrkResult(raw["requests"], raw["duration_us"] / 1e6, raw["ok"], raw["bad"],
                         raw["socket_errors"], raw["p50_us"] / 1000, raw["p99_us"] / 1000,
                         api_calls=raw["requests"], api_cpu=api1 - api0)

    def warm_up(self) -> None:
        """wrk on each server until every one of its processes (each gunicorn worker; the one
        uvicorn process) has served pages: wrk's connections are kept alive, and one worker
        may accept them all while another stays cold."""
        self.grants_before_load = sum(self.standin.token_grants.values())
        for server in self.servers:
            for attempt in range(6):
                before = worker_cpu(server.proc.pid)
                self.wrk(server, self.args.warmup)
                after = worker_cpu(server.proc.pid)
                cold = [pid for pid, cpu in after.items() if cpu - before.get(pid, 0.0) < 0.05]
                if not cold:
                    break
                if attempt == 5:
                    raise BenchmarkError(f"{server.name}: workers {cold} served no page in "
                                         f"{attempt + 1} warm-ups")
            self.check_page(server, frozen=(server.floor and server.variant != "identity"
                                            and self.args.floor == "app"))

    def rounds(self) -> None:
        """Each round measures every variant next to its floor, A-B-B-A in halves of
        `--seconds` (a drift of the machine's speed during the round cancels out), then checks
        each server's page once more."""
        pairs = [[s for s in self.servers if s.variant == v] for v in self.args.variants]
        half = max(1, round(self.args.seconds / 2))  # wrk takes whole seconds
        for number in range(self.args.rounds):
            # Alternate which of floor and variant goes first, and rotate the variants.
            shift = number % len(pairs)
            for pair in pairs[shift:] + pairs[:shift]:
                first, second = pair if number % 2 == 0 else pair[::-1]
                halves: dict[str, list[WrkResult]] = {first.name: [], second.name: []}
                for server in (first, second, second, first):
                    halves[server.name].append(self.wrk(server, half))
                for server in (first, second):
                    result = WrkResult.combine(halves[server.name])
                    server.rounds.append(result)
                    print(f"  round {number + 1}/{self.args.rounds}  {server.name:<18} "
                          f"{result.rate:8.1f} req/s  p50 {result.p50_ms:6.2f} ms  "
                          f"p99 {result.p99_ms:7.2f} ms  app CPU "
                          f"{result.cpu_ms_per_request:5.2f} ms/req"
                          + (f"  store CPU {result.store_cpu_ms_per_request:5.2f} ms/req"
                             if result.store_cpu else ""), flush=True)
                    self.check_page(server)
        # Tokens are valid for the whole run: the rounds should not have needed /token at all.
        self.grants_during_load = sum(self.standin.token_grants.values()) - self.grants_before_load

    def grants(self) -> list[dict[str, Any]]:
        """Successful /token grants per user under steady load, with short-lived tokens.

        Access tokens of `window + 5 min` are issued for a new user's sign-in: MSAL uses one until
        5 minutes before it expires, so the app must refresh it every `window` seconds. wrk then
        loads that user's page for `--grant-seconds`; the stand-in counts the refresh grants.
        One grant per window is the minimum; more means concurrent requests refreshed the same
        token several times."""
        window = self.args.grant_window
        rows = []
        user = self.users[1]
        for server in self.servers:
            if server.floor:
                continue
            # Only this server is loaded meanwhile; the other users' tokens stay long-lived.
            self.standin.access_token_lifetime = MSAL_EXPIRY_MARGIN + window
            try:
                cookie = self.sign_in(server, user.username)
                signed_in = time.time()  # the token was received just before this
                before = Counter(self.standin.token_grants)
                calls_before = Counter(self.standin.token_calls)
                started = time.time()
                result = self.wrk(server, self.args.grant_seconds, cookie=cookie,
                                  check_tokens=False)
                ended = time.time()
            finally:
                self.standin.access_token_lifetime = MAIN_TOKEN_LIFETIME
            grants = self.standin.token_grants["refresh_token"] - before["refresh_token"]
            failed = (self.standin.token_calls["refresh_token"] - calls_before["refresh_token"]
                      - grants)
            expiries = int((ended - signed_in) // window) - int((started - signed_in) // window)
            per_expiry = grants / max(1, expiries)
            # MSAL refreshes a token 5 minutes before it expires: with 1-hour tokens, once every
            # 55 minutes of steady use.
            per_hour = per_expiry * 3600 / (REAL_TOKEN_LIFETIME - MSAL_EXPIRY_MARGIN)
            rows.append({"variant": server.variant, "seconds": round(ended - started, 1),
                         "window": window, "expiries": expiries, "grants": grants,
                         "failed_refreshes": failed, "grants_per_expiry": per_expiry,
                         "requests": result.requests,
                         "per_hour": per_hour})
            print(f"  {server.variant:<18} {grants} refresh grants ({failed} failed) over "
                  f"{ended - started:.0f} s = {expiries} token expiries; "
                  f"{result.requests} requests", flush=True)
        return rows

    # ---------------------------------------------------------------- in-process costs
    def micro(self) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, Any]]]:
        """Per-call costs and per-page profiles, per backend variant."""
        rows: dict[str, dict[str, str]] = {}
        profiles: dict[str, dict[str, Any]] = {}
        # Through the Flask app's objects: the backends' costs (the other frameworks share them).
        for variant in (v for v in self.args.variants if v in ("memory", "filesystem")):
            rows[variant], profiles[variant] = self._micro(variant)
        for variant in (v for v in self.args.variants if v in STORE_VARIANTS):
            rows[variant], profiles[variant] = self._micro_child(variant)
        return rows, profiles

    def _micro_child(self, variant: str) -> tuple[dict[str, str], dict[str, Any]]:
        """`_micro` of a store variant, in a child process: its baked package has the name of
        the memory one, already imported here. The child has its own stand-ins and folder, and
        the keys (or the schema, made here) of this run's namespace."""
        work = self.work / f"micro-child-{variant}"
        work.mkdir()
        argv = [str(self.venv / "bin" / "python"), __file__, "--micro-child", variant,
                "--inner", str(work), "--project", str(self.store_project(variant)),
                "--package", self.package, "--venv", str(self.venv), "--marker", self.marker,
                "--redis-url", self.stores.redis_url, "--postgres-url",
                self.stores.postgres_url, "--variants", variant, "--threads",
                str(self.args.threads), "--profile-pages", str(self.args.profile_pages)]
        if self.args.profile_dir:
            argv += ["--profile-dir", str(Path(self.args.profile_dir).resolve())]
        if STORE_VARIANTS[variant][0] == "sql":
            argv += ["--sql-url", self.new_sql_url(variant, f"micro_{variant}")]
        log = self.work / f"micro-child-{variant}.log"
        env = {**os.environ, "PYTHONPATH": str(self.store_project(variant))}
        proc = self.processes.start(argv, env=env, cwd=self.work, log=log)
        try:
            proc.wait(timeout=600)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        text = log.read_text(errors="replace")
        line = next((ln for ln in text.splitlines() if ln.startswith("BENCH-MICRO ")), None)
        if proc.returncode != 0 or line is None:
            return {"error": f"the child process failed ({proc.returncode}):\n{text[-3000:]}"}, {}
        found = json.loads(line.split(" ", 1)[1])
        return found["costs"], found["profile"]

    def _micro(self, variant: str) -> tuple[dict[str, str], dict[str, Any]]:
        """Per-call costs through the app's own objects, in this process, for one backend
        variant; then a cProfile of in-process page requests (see `profile_pages`)."""
        import importlib
        import logging

        import flask
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log

        holder: dict[str, Any] = {}

        def forward(environ: Any, start_response: Any) -> Any:
            return holder["app"](environ, start_response)

        httpd = make_server("127.0.0.1", 0, forward, threaded=True)
        port = httpd.server_port
        app_url = f"http://localhost:{port}"
        client_id, secret = f"bench-micro-{variant}", secrets.token_urlsafe(24)
        self.standin.register_client(client_id, secret,
                                     [app_url + self.defaults.redirect_path, app_url + "/"])
        folder = self.work / f"micro-{variant}"
        folder.mkdir()
        create_app = importlib.import_module(f"{self.package}.app").create_app
        app = create_app({**self.app_env(variant, app_url, client_id, secret, folder),
                          **self.store_env(variant, f"micro-{variant}")})
        holder["app"] = app
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        out: dict[str, str] = {}
        profile: dict[str, Any] = {}
        try:
            page = f"/api/{self.api_name}"
            cookie = self._sign_in(app_url + page, self.users[2].username, f"{variant} in-process")
            services = app.extensions["msal_webapp"]
            web = importlib.import_module(f"{self.package}.core.web")
            scopes = list(services.settings.apis[self.api_name].scopes)
            grants = sum(self.standin.token_calls.values())
            with app.test_request_context(page, headers={"Cookie": cookie}):
                interface = app.session_interface
                session = interface.open_session(app, flask.request)
                user = web.current_user(session)
                if user is None:
                    raise BenchmarkError("the session loaded in-process holds no user")
                out["session load"] = _timed(
                    lambda: interface.open_session(app, flask.request))
            hid = user.home_account_id
            caches = services.caches
            key = caches.key(hid)
            out["token-cache store.version"] = _timed(lambda: caches.store.version(key))
            out["token-cache store.get"] = _timed(lambda: caches.store.get(key))
            out.update(self._round_trips(variant))

            def cache_open() -> None:
                with caches.open(hid):
                    pass

            out["token-cache open (locked read)"] = _timed(cache_open)
            if hasattr(caches, "peek"):  # a lock-free read for the cache-hit path
                out["token-cache peek"] = _timed(lambda: caches.peek(hid))
                cache = caches.peek(hid)
            else:
                with caches.open(hid) as cache:
                    pass

            def silent() -> None:
                client = services.clients.build(cache)
                accounts = [a for a in client.get_accounts() if a.get("home_account_id") == hid]
                result = client.acquire_token_silent_with_error(scopes, accounts[0])
                assert result and "access_token" in result, result

            out["MSAL client + silent call"] = _timed(silent)
            out["acquire_token (all of it)"] = _timed(
                lambda: services.auth.acquire_token(user, scopes))
            profile = self.profile_pages(variant, app, services, app_url, page, cookie)
            if sum(self.standin.token_calls.values()) != grants:
                raise BenchmarkError("a microbenchmark reached /token: not a cache hit")
        except Exception as exc:  # noqa: BLE001 - report what could be measured
            out["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            httpd.shutdown()
            httpd.server_close()
        return out, profile

    def _round_trips(self, variant: str) -> dict[str, str]:
        """One round trip to the store's server and nothing else, for comparison with the
        store's calls: a PING on a plain socket and through redis-py; a `SELECT 1` on one
        psycopg connection in autocommit (no pool, no transaction)."""
        if variant not in STORE_VARIANTS:
            return {}
        if STORE_VARIANTS[variant][0] == "redis":
            import redis

            client = redis.Redis.from_url(self.stores.redis_url)
            options = client.connection_pool.connection_kwargs
            raw = socket.create_connection((options["host"], options["port"]), timeout=5)
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def ping() -> None:
                raw.sendall(b"*1\r\n$4\r\nPING\r\n")
                if raw.recv(64) != b"+PONG\r\n":
                    raise BenchmarkError("the plain socket PING got another answer")

            try:
                return {"one round trip: socket PING": _timed(ping),
                        "one round trip: redis-py PING": _timed(client.ping)}
            finally:
                raw.close()
                client.close()
        if SQL_KIND[variant] != "postgresql":
            return {}  # measured for PostgreSQL only
        import psycopg
        import sqlalchemy as sa

        url = sa.make_url(self.sql_urls[variant])
        with psycopg.connect(host=url.host, port=url.port or 5432, user=url.username,
                             password=url.password, dbname=url.database,
                             autocommit=True) as connection:
            return {"one round trip: psycopg SELECT 1": _timed(
                lambda: connection.execute("SELECT 1").fetchone())}

    def profile_pages(self, variant: str, app: Any, services: Any, app_url: str, page: str,
                      cookie: str) -> dict[str, Any]:
        """Where a signed-in page's time goes, in-process: `PROFILED_PAGES` requests of the page
        through Flask's test client (the whole app: session load, token, the API call over
        loopback, rendering), timed without a profiler, then again under cProfile; the
        cumulative time per page of the functions in PROFILE_ROWS, and for a SQL store the
        database round trips per page counted by SQLAlchemy events."""
        import cProfile
        import pstats

        # Without its cookie jar, which would replace the Cookie header given here.
        client = app.test_client(use_cookies=False)
        headers = {"Cookie": cookie}

        def pages(count: int) -> None:
            for _ in range(count):
                answer = client.get(page, base_url=app_url, headers=headers)
                if answer.status_code != 200 or self.marker.encode() not in answer.data:
                    raise BenchmarkError(f"in-process page answered {answer.status_code} "
                                         f"{answer.headers.get('Location', '')}")

        pages(30)  # warm-up
        count = self.args.profile_pages
        # The wall and CPU time of the store-facing calls, without a profiler: the session's
        # load, the token's whole acquisition and, within it, the token-cache read.
        spent: dict[str, list[float]] = {}
        timed_calls = {"session load (Sessions.load)": (services.sessions, "load"),
                       "token (AuthService.acquire_token)": (services.auth, "acquire_token"),
                       "- token-cache peek": (services.caches, "peek")}
        for label, (owner, name) in timed_calls.items():
            setattr(owner, name, _clocked(getattr(owner, name), spent.setdefault(label,
                                                                                  [0.0, 0.0])))
        collections = [0.0, 0.0, 0.0]  # seconds of garbage collection, by generation
        began: list[float] = []

        def collecting(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                began.append(time.perf_counter())
            elif began:
                collections[info["generation"]] += time.perf_counter() - began.pop()

        gc.callbacks.append(collecting)
        try:
            start, cpu = time.perf_counter(), time.process_time()
            pages(count)
            wall = (time.perf_counter() - start) / count
            cpu = (time.process_time() - cpu) / count  # this process: the app, not the API
        finally:
            gc.callbacks.remove(collecting)
            for owner, name in timed_calls.values():
                delattr(owner, name)  # the instance attribute: the method shows again
        events = self._count_sql_events(services)
        profiler = cProfile.Profile()
        profiler.enable()
        pages(count)
        profiler.disable()
        if self.args.profile_dir:
            folder = Path(self.args.profile_dir)
            folder.mkdir(parents=True, exist_ok=True)
            profiler.dump_stats(folder / f"{variant}.pstats")
        stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
        rows: dict[str, list[float]] = {}
        for label, path, function in PROFILE_ROWS:
            calls = cumulative = 0.0
            for (file, _, name), (_, ncalls, _, cum, _) in stats.items():
                if name == function and path in file.replace(os.sep, "/"):
                    calls += ncalls
                    cumulative += cum
            if calls:
                rows[label] = [1000 * cumulative / count, calls / count]
        own = sorted(((tt, f"{Path(f).name}:{n}") for (f, _, n), (_, _, tt, _, _)
                      in stats.items()), reverse=True)[:12]
        result: dict[str, Any] = {
            "method": f"cProfile of {count} in-process GET {page} through Flask's test client "
                      f"(after 30 unprofiled); wall without the profiler measured first",
            "pages": count, "wall_ms": 1000 * wall, "cpu_ms": 1000 * cpu, "rows": rows,
            "clocked": {k: [1000 * v[0] / count, 1000 * v[1] / count] for k, v in spent.items()},
            "gc_ms": [1000 * seconds / count for seconds in collections],
            "own_time_top": [[name, 1000 * tt / count] for tt, name in own]}
        if events is not None:
            result["sql_per_page"] = {k: v / count for k, v in events.items()}
        return result

    @staticmethod
    def _count_sql_events(services: Any) -> dict[str, int] | None:
        """For a SQL store: counters of the round trips to the database, which the next
        requests then advance: pool pre-pings (if the pool pings), statements, and outside
        autocommit the transactions begun (psycopg sends BEGIN before the first statement) and
        committed. None for other stores."""
        engines = {id(e): e for e in (getattr(services.sessions.store, "engine", None),
                                      getattr(services.caches.store, "engine", None))
                   if e is not None}
        if not engines:
            return None
        import sqlalchemy as sa

        counts = {"pre-pings": 0, "BEGIN": 0, "statements": 0, "COMMIT": 0}

        def bump(name: str, transactions: bool = False) -> Callable[..., None]:
            def listener(connection: Any, *args: Any, **kwargs: Any) -> None:
                # In autocommit the driver sends no BEGIN, and its commit is a no-op.
                if transactions and connection.get_execution_options().get(
                        "isolation_level") == "AUTOCOMMIT":
                    return
                counts[name] += 1
            return listener

        for engine in engines.values():
            if getattr(engine.pool, "_pre_ping", False):
                sa.event.listen(engine.pool, "checkout", bump("pre-pings"))
            sa.event.listen(engine, "begin", bump("BEGIN", transactions=True))
            sa.event.listen(engine, "before_cursor_execute", bump("statements"))
            sa.event.listen(engine, "commit", bump("COMMIT", transactions=True))
        return counts


def _clocked(fn: Callable[..., Any], total: list[float]) -> Callable[..., Any]:
    """`fn`, adding its wall and thread CPU seconds to `total` ([wall, cpu]) at each call."""
    def clocked(*args: Any, **kwargs: Any) -> Any:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            total[0] += time.perf_counter() - wall
            total[1] += time.thread_time() - cpu
    return clocked


def _timed(fn: Callable[[], object], batch: int = 200, batches: int = 11) -> str:
    """Median over batches of the mean time per call, after a warm-up."""
    for _ in range(20):
        fn()
    means = []
    for _ in range(batches):
        start = time.perf_counter()
        for _ in range(batch):
            fn()
        means.append((time.perf_counter() - start) / batch)
    return f"{statistics.median(means) * 1000:.3f} ms"


# ============================================================================ report
def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = []
    for name in ("msal", "flask", "flask-session", "gunicorn", "identity", "requests",
                 "django", "fastapi", "starlette", "uvicorn", "httpx"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions.append(f"{name} {metadata.version(name)}")
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split()
    return (f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}, "
            + ", ".join(versions) + (f", wrk {wrk[1]}" if len(wrk) > 1 else ""))


def median(values: list[float]) -> float:
    return statistics.median(values)


def report(bench: Bench, api: WrkResult, grants: list[dict[str, Any]],
           micro: dict[str, dict[str, str]], profiles: dict[str, dict[str, Any]],
           started: float) -> dict[str, Any]:
    args = bench.args
    against = ("the page written by hand (measure 2)" if args.floor == "hand" else
               "the no-auth floor (measure 1)")
    print(f"\n## Throughput against {against} ({args.rounds} rounds x {args.seconds} s, "
          f"wrk -t{args.wrk_threads} -c{args.connections}; medians over rounds)\n")
    # The judged figure: the floor's CPU per request over the app's, per round (the server's
    # processes' CPU holds on a shared machine where req/s swings).
    print("| Variant | CPU per request, of the floor (rounds' range) "
          "| App CPU ms/req (floor / variant) | Floor req/s | Variant req/s "
          "| req/s ratio (rounds' range) | p50 ms (floor / variant) | p99 ms (floor / variant) "
          "| Store server CPU ms/req (floor / variant) |")
    print("|---|---|---|---|---|---|---|---|---|")
    table = []
    for variant in args.variants:
        floor = next(s for s in bench.servers if s.variant == variant and s.floor)
        app = next(s for s in bench.servers if s.variant == variant and not s.floor)
        row = {
            "variant": variant, "workers": WORKERS[variant], "threads": args.threads,
            "floor_rps": median([r.rate for r in floor.rounds]),
            "variant_rps": median([r.rate for r in app.rounds]),
            "ratios": [a.rate / f.rate for a, f in zip(app.rounds, floor.rounds, strict=True)],
            "cpu_ratios": [f.cpu_ms_per_request / a.cpu_ms_per_request
                           for a, f in zip(app.rounds, floor.rounds, strict=True)],
            "floor_p50": median([r.p50_ms for r in floor.rounds]),
            "variant_p50": median([r.p50_ms for r in app.rounds]),
            "floor_p99": median([r.p99_ms for r in floor.rounds]),
            "variant_p99": median([r.p99_ms for r in app.rounds]),
            "floor_cpu": median([r.cpu_ms_per_request for r in floor.rounds]),
            "variant_cpu": median([r.cpu_ms_per_request for r in app.rounds]),
            "floor_store_cpu": median([r.store_cpu_ms_per_request for r in floor.rounds]),
            "variant_store_cpu": median([r.store_cpu_ms_per_request for r in app.rounds]),
            "rounds": {"floor": [round(r.rate, 1) for r in floor.rounds],
                       "variant": [round(r.rate, 1) for r in app.rounds]},
        }
        row["ratio"] = median(row["ratios"])
        row["cpu_ratio"] = median(row["cpu_ratios"])
        table.append(row)
        label = (f"{variant} (uvicorn, 1 process)" if SERVER.get(variant) == "uvicorn" else
                 f"{variant} ({WORKERS[variant]} worker{'s' if WORKERS[variant] > 1 else ''})")
        print(f"| {label} | **{row['cpu_ratio']:.2f}** ({min(row['cpu_ratios']):.2f}–"
              f"{max(row['cpu_ratios']):.2f}) | "
              f"{row['floor_cpu']:.2f} / {row['variant_cpu']:.2f} | "
              f"{row['floor_rps']:.0f} | {row['variant_rps']:.0f} | "
              f"{row['ratio']:.2f} ({min(row['ratios']):.2f}–{max(row['ratios']):.2f}) | "
              f"{row['floor_p50']:.2f} / {row['variant_p50']:.2f} | "
              f"{row['floor_p99']:.2f} / {row['variant_p99']:.2f} | "
              + (f"{row['floor_store_cpu']:.2f} / {row['variant_store_cpu']:.2f} |"
                 if variant in STORE_VARIANTS else "- |"))
    # The API's own cost, alone and as measured inside the rounds.
    results = [r for s in bench.servers for r in s.rounds]
    per_call = sum(r.api_cpu for r in results) / max(1, sum(r.api_calls for r in results))
    busiest = max(results, key=lambda r: r.rate)
    print(f"\nDownstream API stand-in: alone {api.rate:.0f} req/s (p50 {api.p50_ms:.2f} ms, "
          f"{1e6 * api.api_cpu / api.requests:.0f} us CPU per call); during the rounds "
          f"{1e6 * per_call:.0f} us CPU per call, i.e. "
          f"{100 * busiest.api_cpu / busiest.seconds:.0f}% of one core at the fastest round "
          f"({busiest.rate:.0f} req/s).")
    wrk_share = statistics.median(r.wrk_cpu / r.seconds for r in results)
    print(f"wrk itself used {100 * wrk_share:.0f}% of one core (median over rounds).")
    print(f"/token grants during warm-up and rounds (tokens valid all run): "
          f"{bench.grants_during_load}")
    if grants:
        print(f"\n/token refresh grants per user under load (access tokens of "
              f"{args.grant_window} s + MSAL's 5-minute margin; "
              f"{args.grant_seconds} s of wrk each):\n")
        print("| Variant | Token expiries | Refresh grants | Grants per expiry | "
              "Per user per hour with 1-hour tokens |")
        print("|---|---|---|---|---|")
        for row in grants:
            failed = f" (+{row['failed_refreshes']} failed)" if row["failed_refreshes"] else ""
            print(f"| {row['variant']} | {row['expiries']} | {row['grants']}{failed} | "
                  f"{row['grants_per_expiry']:.1f} | {row['per_hour']:.1f} |")
    if micro:
        print("\nPer-call costs in-process (median of 11 batches of 200 calls):\n")
        names = sorted({k for costs in micro.values() for k in costs if k != "error"},
                       key=lambda k: MICRO_ORDER.index(k) if k in MICRO_ORDER else 99)
        print("| Backend | " + " | ".join(names) + " |")
        print("|---" * (len(names) + 1) + "|")
        for backend, costs in micro.items():
            print(f"| {backend} | " + " | ".join(costs.get(n, "n/a") for n in names) + " |")
            if "error" in costs:
                print(f"  ({backend}: stopped early: {costs['error']})")
    report_profiles(profiles)
    print(f"\nMachine: {machine()}. Total time {time.time() - started:.0f} s.")
    return {"table": table, "api_alone_rps": api.rate, "grants": grants, "micro": micro,
            "profiles": profiles}


def report_profiles(profiles: dict[str, dict[str, Any]]) -> None:
    profiles = {k: v for k, v in profiles.items() if v}
    if not profiles:
        return
    first = next(iter(profiles.values()))
    print(f"\nWhere a page's time goes, in-process: {first['method']}. Cumulative ms per "
          "page under the profiler (calls per page); the profiler inflates them. The first "
          "rows are without it: the page's wall and CPU time, then the wall and thread CPU "
          "time of the session load, the token and the token-cache read in it:\n")
    names = list(profiles)
    print("| Function | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    print("| wall ms per page, no profiler | "
          + " | ".join(f"{profiles[n]['wall_ms']:.3f}" for n in names) + " |")
    print("| CPU ms per page (this process), no profiler | "
          + " | ".join(f"{profiles[n]['cpu_ms']:.3f}" for n in names) + " |")
    print("| garbage collection ms per page (generations 0 / 1 / 2), no profiler | "
          + " | ".join(" / ".join(f"{ms:.3f}" for ms in profiles[n]["gc_ms"]) for n in names)
          + " |")
    for label in profiles[names[0]].get("clocked", {}):
        print(f"| {label}: wall / CPU ms, no profiler | "
              + " | ".join("{:.3f} / {:.3f}".format(*profiles[n]["clocked"][label])
                           if label in profiles[n].get("clocked", {}) else "-"
                           for n in names) + " |")
    for label, _, _ in PROFILE_ROWS:
        if not any(label in profiles[n]["rows"] for n in names):
            continue
        cells = []
        for n in names:
            found = profiles[n]["rows"].get(label)
            cells.append(f"{found[0]:.3f} ({found[1]:g})" if found else "-")
        print(f"| {label} | " + " | ".join(cells) + " |")
    for n in names:
        if "sql_per_page" in profiles[n]:
            counts = profiles[n]["sql_per_page"]
            trips = sum(counts.values())
            print(f"\n{n}: database round trips per page: {trips:g} = "
                  + " + ".join(f"{v:g} {k}" for k, v in counts.items()))
        print(f"{n}: most own time per page (ms, under the profiler): "
              + ", ".join(f"{name} {ms:.3f}" for name, ms in profiles[n]["own_time_top"][:8]))


MICRO_ORDER = ["one round trip: socket PING", "one round trip: redis-py PING",
               "one round trip: psycopg SELECT 1",
               "session load", "token-cache store.version", "token-cache store.get",
               "token-cache open (locked read)", "token-cache peek",
               "MSAL client + silent call", "acquire_token (all of it)"]
# The functions a page's profile reports: (label, a part of the file's path, function name).
PROFILE_ROWS = [
    ("page (Flask wsgi_app)", "flask/app.py", "wsgi_app"),
    ("session load (Sessions.load)", "core/sessions.py", "load"),
    ("token (AuthService.acquire_token)", "core/auth.py", "acquire_token"),
    ("- token-cache peek", "core/token_cache.py", "peek"),
    ("- MSAL client build", "core/identity.py", "build"),
    ("- MSAL silent call", "msal/application.py", "acquire_token_silent_with_error"),
    ("store get (session and token cache)", "core/stores/", "get"),
    ("store version (token cache)", "core/stores/", "version"),
    ("- SQL pool checkout (and its pre-ping, if the pool pings)", "sqlalchemy/pool/base.py",
     "_checkout"),
    ("- SQL pre-ping", "sqlalchemy/engine/default.py", "_do_ping_w_event"),
    ("- SQL statement (and psycopg's BEGIN, outside autocommit)", "sqlalchemy/engine/base.py",
     "_execute_context"),
    ("- SQL COMMIT", "sqlalchemy/engine/base.py", "_commit_impl"),
    ("- SQL pool return", "sqlalchemy/pool/base.py", "_finalize_fairy"),
    ("- Redis command", "redis/client.py", "_execute_command"),
    ("API call (requests)", "requests/sessions.py", "request"),
    ("template render", "flask/templating.py", "render_template"),
]


# ============================================================================ main
def run(args: argparse.Namespace) -> int:
    started = time.time() - args.prepared_seconds
    sys.path[:0] = [args.project, str(HELPERS)]
    bench = Bench(args)

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    # Ctrl-C raises KeyboardInterrupt even where SIGINT came in ignored (a background job).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if args.micro_child:
        return micro_child(bench)
    try:
        print(f"Machine: {machine()}", flush=True)
        if bench.redis_used:
            bench.stores.check_redis()
        bench.start_infrastructure()
        api = bench.api_alone()
        print(f"downstream API stand-in alone: {api.rate:.0f} req/s, p50 {api.p50_ms:.2f} ms",
              flush=True)
        print("starting servers and signing in", flush=True)
        bench.start_servers()
        print(f"warm-up ({args.warmup} s each)", flush=True)
        bench.warm_up()
        print(f"{args.rounds} rounds of {args.seconds} s", flush=True)
        bench.rounds()
        grants = []
        if args.grant_seconds > 0:
            print("token refreshes under load", flush=True)
            grants = bench.grants()
        micro: dict[str, dict[str, str]] = {}
        profiles: dict[str, dict[str, Any]] = {}
        if not args.no_micro:
            print("in-process per-call costs and page profiles", flush=True)
            micro, profiles = bench.micro()
        results = report(bench, api, grants, micro, profiles, started)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2))
        return 0
    except BenchmarkError as exc:
        print(f"\nFAILED: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, SystemExit):
        print("\ninterrupted; stopping the servers", file=sys.stderr)
        raise
    finally:
        bench.processes.stop_all()
        with contextlib.suppress(AttributeError):
            bench.standin.stop()
        removed, failed = bench.stores.clean(bench.redis_used, bench.postgres_used)
        if removed:
            print(f"removed the run's store namespaces: {', '.join(removed)}")
        if failed:
            print(f"could not remove all of the run's store namespaces: {'; '.join(failed)}",
                  file=sys.stderr)
        if args.keep:
            print(f"(kept {bench.work})")
        else:
            shutil.rmtree(bench.work, ignore_errors=True)


def micro_child(bench: Bench) -> int:
    """The child process of `Bench._micro_child`: its own stand-ins, one variant's `_micro`,
    one BENCH-MICRO line of JSON. The parent removes the keys and schema it used."""
    variant = bench.args.micro_child

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    try:
        bench.start_infrastructure()
        costs, profile = bench._micro(variant)
        print("BENCH-MICRO " + json.dumps({"costs": costs, "profile": profile}), flush=True)
        return 0
    finally:
        bench.processes.stop_all()
        with contextlib.suppress(AttributeError):
            bench.standin.stop()
        shutil.rmtree(bench.work, ignore_errors=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=10,
                        help="seconds per server per round (in two halves)")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per server")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS,
                        default=list(DEFAULT_VARIANTS),
                        help="default: the first five; redis, redis-nol1 and sql need the "
                             "servers of --redis-url and --postgres-url")
    parser.add_argument("--redis-url", default=REDIS_URL,
                        help="the Redis of the redis variants (a key prefix per server)")
    parser.add_argument("--postgres-url", default=POSTGRES_URL,
                        help="the PostgreSQL of the sql variant (a schema per variant)")
    parser.add_argument("--mariadb-url", default=MARIADB_URL,
                        help="the MariaDB of the sql-mariadb variant (a database per variant)")
    parser.add_argument("--floor", choices=("app", "hand"), default="app",
                        help="app: measure 1, the app minus token acquisition and session "
                             "store; hand: measure 2, the page written by hand in the same "
                             "framework and server (benchmarks/throughput/hand_*.py)")
    parser.add_argument("--session-bytes", type=int, default=1024,
                        help="the size of the value a hand-written floor reads from a shared "
                             "store (the app's session entry is about that size)")
    parser.add_argument("--profile-pages", type=int, default=PROFILED_PAGES,
                        help="in-process page requests profiled per backend variant")
    parser.add_argument("--profile-dir", help="also write each variant's profile there "
                                              "(<variant>.pstats, for pstats or snakeviz)")
    parser.add_argument("--venv", help="reuse this virtual environment (the baked app and "
                                       "identity are installed into it)")
    parser.add_argument("--threads", type=int, default=4, help="gthread threads per worker")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--grant-seconds", type=int, default=20,
                        help="seconds of load per variant when counting /token grants (0: skip)")
    parser.add_argument("--grant-window", type=int, default=5,
                        help="seconds an access token is usable in that phase")
    parser.add_argument("--no-micro", action="store_true", help="skip the in-process costs")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    # Set by the first stage for the second (inside the baked app's venv).
    parser.add_argument("--inner", help=argparse.SUPPRESS)
    parser.add_argument("--project", help=argparse.SUPPRESS)
    parser.add_argument("--package", help=argparse.SUPPRESS)
    parser.add_argument("--prepared-seconds", type=float, default=0.0, help=argparse.SUPPRESS)
    # A child process measuring one store variant's in-process costs (see Bench._micro_child).
    parser.add_argument("--micro-child", choices=tuple(STORE_VARIANTS), help=argparse.SUPPRESS)
    parser.add_argument("--marker", help=argparse.SUPPRESS)
    parser.add_argument("--sql-url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.seconds < 1:
        parser.error("--rounds and --seconds must be at least 1")
    return args


def main() -> int:
    args = parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed; on Debian or Ubuntu: apt-get install -y wrk",
              file=sys.stderr)
        return 2
    if args.inner:
        try:
            return run(args)
        except KeyboardInterrupt:
            return 130
    try:
        prepare(args)
    except BenchmarkError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0  # not reached: prepare() replaces this process


if __name__ == "__main__":
    sys.exit(main())
