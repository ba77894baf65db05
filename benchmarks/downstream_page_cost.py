"""What a page's downstream call costs: /profile through plain REST against /profile through the
Microsoft Graph SDK (downstream_apis.graph.sdk), against the stand-in's Graph, and a cached
app-only call (/api/reports, the app's own token) beside them. Prints a table.

    .venv/bin/python benchmarks/downstream_page_cost.py [--framework flask] [--rounds 5]
        [--requests 300] [--clients 4] [--page NAME=VARIANT:/path ...]

Run it with the generator's virtual environment (`pip install -e '.[test]'`: the generated
apps' dependencies, msgraph-sdk and gunicorn included). What it does:

1. bakes examples/app.yaml twice with `framework:` set (Flask by default), at one tenant (not
   `organizations`: the app's own token comes from one tenant) and with an app-only API
   `reports` added: as it is ("rest": /profile calls Graph's /me with the app's own requests
   transport, /api/reports the app-only API with the app's token) and with
   `downstream_apis.graph.sdk: true` ("sdk": /profile through GraphServiceClient and the user's
   credential; Flask and Django on the process's event loop thread, FastAPI awaiting it);
2. starts the devprovider stand-in in this process (its Graph answers /me), and each app as
   its README says (gunicorn gthread, 1 worker and --clients threads; FastAPI: one uvicorn
   process), in local development mode on http://localhost;
3. signs a user in to each (the project's test browser) and checks the page: a 200 showing
   the user's Graph object id, the sdk page's call made by the SDK (kiota's User-Agent);
4. runs rounds, the order of the pages alternating: each round sends --requests requests to
   each page from --clients threads (keep-alive) and reads the server processes' CPU (user +
   system, from /proc) before and after. A round is invalid (the script fails) unless every
   answer was a 200 page that called its API once (Graph, or the app-only API), with the
   cached token (no token request: the user's, or the app's from the shared app cache);
5. prints the medians over rounds: requests per second, server CPU ms per request, and the
   sdk page's CPU over the rest page's, per round (median and range);
6. times, in this process, the bridge that synchronous pages use for the async SDK: one GET
   to the stand-in on the shared event-loop thread with its pooled client (core/sdk.py
   `LoopThread`) against `asyncio.run` with a new httpx client per call (a new loop each time,
   so a new connection and TLS handshake).

More pages: `--page NAME=VARIANT:/path` adds a page of one of the two apps to every round, e.g.
`--page home=rest:/` (its check needs only a 200 page).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from throughput import cpu_seconds  # this script's folder: benchmarks/

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "examples" / "app.yaml"
VARIANTS = ("rest", "sdk")
TENANT = "7d3c5b1e-4f2a-4c8b-9e6d-1a2b3c4d5e6f"  # any one tenant: AUTHORITY names the stand-in's
REPORTS = {"base_url": "https://reports.contoso.com/",
           "scopes": ["api://22222222-3333-4444-5555-666666666666/.default"], "app_only": True}
APP_ONLY_API = (f"  reports:\n    base_url: {REPORTS['base_url']}\n"
                f"    scopes: [\"{REPORTS['scopes'][0]}\"]\n    app_only: true\n")


class BenchmarkError(Exception):
    pass


@dataclass
class App:
    variant: str
    project: Path
    package: str
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    cookie: str = ""
    log: Path = Path()

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"


@dataclass
class Page:
    name: str
    app: App
    path: str
    api: str | None  # the stand-in API the page calls once ("graph": the /profile pages)
    cpu_ms: list[float] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)


def bake(work: Path, framework: str, variant: str) -> App:
    """examples/app.yaml with `framework`, as it is or with graph.sdk; a name of its own."""
    sys.path.insert(0, str(ROOT))
    from generator.cli import main as cli
    from generator.spec import context_for_file

    text = re.sub(r"(?m)^framework:.*$", f"framework: {framework}", SPEC.read_text())
    text = re.sub(r"(?m)^project_name:.*$", f"project_name: Page Cost {variant}", text)
    text, tenants = re.subn(r"(?m)^  tenant: organizations$", f"  tenant: {TENANT}", text)
    text, apis = re.subn(r"(?m)^(downstream_apis:\n)", r"\1" + APP_ONLY_API, text)
    if (tenants, apis) != (1, 1):
        raise BenchmarkError(f"{SPEC}: no 'tenant: organizations' or no downstream_apis")
    if variant == "sdk":
        text, found = re.subn(r"(?m)^(  graph:\n    scopes: .*\n)", r"\1    sdk: true\n", text)
        if found != 1:
            raise BenchmarkError(f"{SPEC}: no graph API with scopes to add sdk: true to")
    spec = work / f"{variant}.yaml"
    spec.write_text(text)
    with contextlib.redirect_stdout(io.StringIO()):
        if cli(["new", str(spec), "-o", str(work / variant)]) != 0:
            raise BenchmarkError(f"baking {spec} failed")
    context = context_for_file(spec)
    return App(variant, work / variant / context["project_slug"], context["package_name"])


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.apps = {variant: bake(work, args.framework, variant) for variant in VARIANTS}
        self.procs: list[subprocess.Popen[bytes]] = []

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        # The stand-in and the test browser are the same in both projects: the rest one's.
        sys.path.insert(0, str(self.apps["rest"].project))
        from devprovider import DEFAULT_USERS, StandIn
        from devprovider.__main__ import write_tls_files

        self.user = DEFAULT_USERS[0]
        tls = self.work / "tls"
        tls.mkdir()
        self.ca_path, cert, key = write_tls_files(tls)
        self.standin = StandIn(cert, key, browser_base_url="http://127.0.0.1:0").start()
        try:
            for app in self.apps.values():
                self.start(app)
            yield
        finally:
            for proc in self.procs:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
            for proc in self.procs:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(10)
            self.standin.stop()

    def start(self, app: App) -> None:
        from devprovider.__main__ import grant_app_only_apis, register_apis

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        app.port = sock.getsockname()[1]
        sock.close()
        client_id, secret = f"bench-{app.variant}", secrets.token_urlsafe(24)
        apis = {"todo": {"base_url": "https://api.contoso.com/",
                         "scopes": ["api://11111111-2222-3333-4444-555555555555/Todo.Read"]},
                "reports": REPORTS}
        self.standin.register_client(client_id, secret, [f"{app.url}/getAToken", app.url + "/"])
        env = {key: value for key, value in os.environ.items()
               if key not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
        env.update({
            "AUTHORITY": self.standin.authority, "INSTANCE_DISCOVERY": "false",
            "CLIENT_ID": client_id, "CLIENT_SECRET": secret,
            "REDIRECT_URI": f"{app.url}/getAToken", "SECRET_KEY": secrets.token_urlsafe(48),
            "CA_BUNDLE": self.ca_path, "TOKEN_CACHE_BACKEND": "memory", "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(app.project),
            **register_apis(self.standin, apis),
        })
        grant_app_only_apis(self.standin, client_id, apis)
        bindir = Path(sys.executable).parent
        if self.args.framework == "fastapi":
            argv = [str(bindir / "uvicorn"), "--factory", f"{app.package}.app:create_app",
                    "--host", "127.0.0.1", "--port", str(app.port), "--log-level", "warning",
                    "--no-proxy-headers"]
        else:
            target = (f"{app.package}.app:create_app()" if self.args.framework == "flask"
                      else f"{app.package}.wsgi:application")
            argv = [str(bindir / "gunicorn"), "--bind", f"127.0.0.1:{app.port}",
                    "--worker-class", "gthread", "--workers", "1",
                    "--threads", str(self.args.clients), "--log-level", "warning",
                    "--max-requests", "0", "--config", str(app.project / "gunicorn.conf.py"),
                    target]
        app.log = self.work / f"{app.variant}.log"
        with app.log.open("wb") as log:
            app.proc = subprocess.Popen(argv, env=env, cwd=app.project, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(app.proc)
        import requests

        deadline = time.monotonic() + 60
        while True:
            if app.proc.poll() is not None or time.monotonic() > deadline:
                raise BenchmarkError(f"{app.variant} did not start:\n"
                                     + app.log.read_text(errors="replace")[-3000:])
            with contextlib.suppress(requests.RequestException):
                requests.get(app.url + "/", timeout=1)
                break
            time.sleep(0.2)

    def sign_in(self, app: App) -> None:
        from tests.browser import Browser

        with Browser(verify=self.ca_path) as browser:
            final = browser.sign_in(browser.get(app.url + "/profile"), self.user.username)
            if final.status_code != 200 or self.user.oid not in final.text:
                raise BenchmarkError(f"{app.variant}: signing in did not end on /profile "
                                     f"({final.status_code}):\n{final.text[:2000]}")
            app.cookie = "; ".join(f"{c.name}={c.value}" for c in browser.cookies
                                   if c.domain == "localhost")

    def check(self, page: Page) -> None:
        import requests

        self.standin.reset_counts()
        answer = requests.get(page.app.url + page.path, headers={"Cookie": page.app.cookie},
                              allow_redirects=False, timeout=30)
        if answer.status_code != 200:
            raise BenchmarkError(f"{page.name}: {page.path} answered {answer.status_code}:\n"
                                 f"{answer.text[:2000]}")
        calls = [c for c in self.standin.api_calls if c["api"] == page.api]
        if page.api and len(calls) != 1:
            raise BenchmarkError(f"{page.name}: {len(calls)} calls of {page.api}, not one")
        if page.api == "graph":
            (call,) = calls
            sdk = "kiota-python/" in str(call.get("user_agent"))
            if sdk != (page.app.variant == "sdk"):
                raise BenchmarkError(f"{page.name}: Graph was called by {call.get('user_agent')}")

    def round(self, page: Page) -> None:
        """--requests requests from --clients threads; the page's CPU per request and rate."""
        import requests

        sessions = threading.local()
        url, cookie = page.app.url + page.path, page.app.cookie

        def get(_: int) -> int:
            session = getattr(sessions, "session", None)
            if session is None:
                session = sessions.session = requests.Session()
            answer = session.get(url, headers={"Cookie": cookie}, allow_redirects=False,
                                 timeout=30)
            return answer.status_code

        self.standin.reset_counts()
        assert page.app.proc is not None
        with ThreadPoolExecutor(self.args.clients) as pool:
            list(pool.map(get, range(self.args.clients)))  # connections opened
            self.standin.reset_counts()
            cpu, began = cpu_seconds(page.app.proc.pid), time.perf_counter()
            statuses = list(pool.map(get, range(self.args.requests)))
            seconds = time.perf_counter() - began
            cpu = cpu_seconds(page.app.proc.pid) - cpu
        bad = [s for s in statuses if s != 200]
        calls = [c for c in self.standin.api_calls if c["api"] == page.api]
        tokens = sum(self.standin.token_calls.values())
        if bad or tokens or (page.api and len(calls) != self.args.requests):
            raise BenchmarkError(f"{page.name}: invalid round: {len(bad)} non-200 answers, "
                                 f"{len(calls)} calls of {page.api} for {self.args.requests} "
                                 f"pages, {tokens} token requests")
        page.cpu_ms.append(cpu * 1000 / self.args.requests)
        page.rates.append(self.args.requests / seconds)


def bridge_cost(standin: Any, ca_path: str, package: str, calls: int, rounds: int
                ) -> tuple[float, float]:
    """Median ms per call over rounds: the shared loop thread (pooled client), and asyncio.run
    with a new client per call; each call one GET of the stand-in's Graph (a 401: no token)."""
    import httpx

    sdk = __import__(f"{package}.core.sdk", fromlist=["LOOP"])
    url = standin.graph_base_url.rstrip("/") + "/me"
    shared: dict[str, httpx.AsyncClient] = {}

    async def pooled() -> int:
        client = shared.get("client")
        if client is None:
            client = shared["client"] = httpx.AsyncClient(verify=ca_path)
        return (await client.get(url)).status_code

    async def fresh() -> int:
        async with httpx.AsyncClient(verify=ca_path) as client:
            return (await client.get(url)).status_code

    ways: dict[str, Callable[[], int]] = {
        "loop thread": lambda: sdk.LOOP.run(pooled(), 30),
        "asyncio.run": lambda: asyncio.run(fresh()),
    }
    results: dict[str, list[float]] = {name: [] for name in ways}
    for number in range(rounds):
        for name in (list(ways) if number % 2 == 0 else list(reversed(ways))):
            ways[name]()
            began = time.perf_counter()
            for _ in range(calls):
                if ways[name]() != 401:
                    raise BenchmarkError("the stand-in's Graph did not answer 401")
            results[name].append((time.perf_counter() - began) * 1000 / calls)
    return statistics.median(results["loop thread"]), statistics.median(results["asyncio.run"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--framework", choices=("flask", "django", "fastapi"), default="flask")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--page", action="append", default=[],
                        help="NAME=VARIANT:/path, another page of the rest or sdk app")
    args = parser.parse_args()
    if args.rounds < 5:
        parser.error("--rounds: at least 5 (rounds alternate the order of the pages)")
    work = Path(tempfile.mkdtemp(prefix="page-cost-"))
    bench = Bench(args, work)
    with bench.running():
        for app in bench.apps.values():
            bench.sign_in(app)
        pages = [Page("rest /profile", bench.apps["rest"], "/profile", "graph"),
                 Page("sdk /profile", bench.apps["sdk"], "/profile", "graph"),
                 Page("app-only /api/reports", bench.apps["rest"], "/api/reports", "reports")]
        for extra in args.page:
            name, _, where = extra.partition("=")
            variant, _, path = where.partition(":")
            if variant not in bench.apps or not path.startswith("/"):
                parser.error(f"--page {extra!r}: expected NAME=rest:/path or NAME=sdk:/path")
            pages.append(Page(name, bench.apps[variant], path, None))
        for page in pages:
            bench.check(page)
        for number in range(args.rounds):
            for page in (pages if number % 2 == 0 else list(reversed(pages))):
                bench.round(page)
        sys.path.insert(0, str(bench.apps["sdk"].project))
        loop_ms, run_ms = bridge_cost(bench.standin, bench.ca_path, bench.apps["sdk"].package,
                                      100, args.rounds)

    print(f"{args.framework}, {args.rounds} rounds of {args.requests} requests from "
          f"{args.clients} clients, against the stand-in's Graph (medians over rounds)")
    print(f"{'page':<24}{'req/s':>10}{'server CPU ms/req':>20}")
    for page in pages:
        print(f"{page.name:<24}{statistics.median(page.rates):>10.0f}"
              f"{statistics.median(page.cpu_ms):>20.2f}")
    for page in pages[1:3]:
        ratios = [cost / rest for rest, cost in zip(pages[0].cpu_ms, page.cpu_ms, strict=True)]
        print(f"{page.name} / rest /profile server CPU per request: median "
              f"{statistics.median(ratios):.2f} (rounds {min(ratios):.2f}-{max(ratios):.2f})")
    print(f"sync bridge, one GET of Graph: loop thread + pooled client {loop_ms:.2f} ms, "
          f"asyncio.run + new client {run_ms:.2f} ms per call")


if __name__ == "__main__":
    try:
        main()
    except BenchmarkError as exc:
        sys.exit(f"downstream_page_cost: {exc}")
