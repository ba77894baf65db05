"""What the authorization guard costs a page. Prints its figures.

    .venv/bin/python benchmarks/guard_cost.py [--rounds 7] [--calls 20000]

Bakes examples/app.yaml (Flask, memory store; its spec defines the role Admin and the group
finance) and, in one process, against the app's own core services:

1. the guard alone: `flows.signed_in_user` (the login guard every signed-in page runs) against
   `flows.authorized_user` with one role and one group required, for a signed-in user whose
   ID token carried both; it also counts the store reads each makes (the guarded page's
   decision reads the session only, never the store);
2. a whole page through Flask's test client: two routes rendering the same template, one with
   `@login_required()`, one with `@login_required(roles=["Admin"], groups=["finance"])`.

Rounds alternate which side goes first; the figure is the median over rounds of the guarded
side's time over the unguarded side's (1.00: no cost), with the rounds' range.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def bake(work: Path) -> Path:
    sys.path.insert(0, str(ROOT))
    from generator.cli import main as cli

    spec = (ROOT / "examples/app.yaml").read_text()
    (work / "spec.yaml").write_text(spec)
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli(["new", str(work / "spec.yaml"), "-o", str(work)]) == 0
    return next(p for p in work.iterdir() if p.is_dir())


def per_call(fn: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e6  # µs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()

    project = bake(Path(tempfile.mkdtemp(prefix="guard-")))
    sys.path.insert(0, str(project))
    package = project.name.replace("-", "_")
    app_module: Any = __import__(f"{package}.app", fromlist=["create_app"])
    views: Any = __import__(f"{package}.views", fromlist=["login_required"])
    flows: Any = __import__(f"{package}.core.flows", fromlist=["flows"])
    authz: Any = __import__(f"{package}.core.authorization", fromlist=["Requirement"])
    auth: Any = __import__(f"{package}.core.auth", fromlist=["User"])
    web: Any = __import__(f"{package}.core.web", fromlist=["SESSION_USER"])
    config: Any = __import__(f"{package}.config", fromlist=["DEFAULTS"])

    roles = list(config.DEFAULTS.authorization["roles"])[:1]
    group_name, group_id = next(iter(config.DEFAULTS.authorization["groups"].items()))
    env = {
        "AUTHORITY": "https://login.microsoftonline.com/organizations",
        "CLIENT_ID": "00000000-0000-4000-8000-000000000001", "CLIENT_CREDENTIAL": "secret",
        "CLIENT_SECRET": "not-a-real-secret", "REDIRECT_URI": "http://localhost/getAToken",
        "SECRET_KEY": secrets.token_urlsafe(48), "TOKEN_CACHE_BACKEND": "memory",
        "LOG_LEVEL": "WARNING",
    }
    app = app_module.create_app(env)
    services = app.extensions["msal_webapp"]
    user = auth.User("oid-1.tid-1", "Ada", "ada@contoso.test", "oid-1", "tid-1",
                     "https://login.microsoftonline.com/tid-1/v2.0", "oid-1",
                     roles=tuple(roles), groups=(group_id,))
    state = services.sessions.load(None)
    state[web.SESSION_USER] = user.to_dict()
    saved = flows.save_session(services, flows.WebRequest("/", {}, state))
    cookie = services.session_cookie.name, state.sid

    # Store reads, counted on both stores.
    reads = {"n": 0}
    for store in (services.sessions.store, services.caches.store):
        for name in ("get", "version", "versions_of"):
            real = getattr(store, name)

            def counted(*a: Any, _real: Any = real, **k: Any) -> Any:
                reads["n"] += 1
                return _real(*a, **k)

            setattr(store, name, counted)

    needed = authz.Requirement(roles=tuple(roles), groups=(group_name,))
    loaded = services.sessions.load(state.sid)
    req = flows.WebRequest("/", {}, loaded)
    assert isinstance(flows.signed_in_user(services, req), auth.User)
    assert isinstance(flows.authorized_user(services, req, needed), authz.CurrentUser)
    reads["n"] = 0
    flows.authorized_user(services, req, needed)
    guard_reads = reads["n"]

    template = "access.html"

    @app.get("/_bench/plain")
    @views.login_required()
    def plain() -> Any:
        return views.respond(flows.Page(template, {"needs": "-", "current": views.g.user}))

    @app.get("/_bench/guarded")
    @views.login_required(roles=roles, groups=[group_name])
    def guarded() -> Any:
        return views.respond(flows.Page(template, {"needs": "-", "current": views.g.user}))

    client = app.test_client()
    client.set_cookie(cookie[0], cookie[1], domain="localhost")
    for path in ("/_bench/plain", "/_bench/guarded"):
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.status_code)

    def ratio_rounds(a: Callable[[], object], b: Callable[[], object], calls: int
                     ) -> tuple[float, float, list[float]]:
        ratios, a_times, b_times = [], [], []
        for i in range(args.rounds):
            first, second = (a, b) if i % 2 == 0 else (b, a)
            t1, t2 = per_call(first, calls), per_call(second, calls)
            ta, tb = (t1, t2) if i % 2 == 0 else (t2, t1)
            a_times.append(ta)
            b_times.append(tb)
            ratios.append(tb / ta)
        return statistics.median(a_times), statistics.median(b_times), ratios

    unguarded_us, guarded_us, ratios = ratio_rounds(
        lambda: flows.signed_in_user(services, req),
        lambda: flows.authorized_user(services, req, needed), args.calls)
    print(f"guard alone: signed_in_user {unguarded_us:.2f} µs, authorized_user(roles="
          f"{roles}, groups=[{group_name!r}]) {guarded_us:.2f} µs; ratio median "
          f"{statistics.median(ratios):.2f} (rounds {min(ratios):.2f}-{max(ratios):.2f}); "
          f"store reads by the guarded decision: {guard_reads}")

    page_calls = max(args.calls // 20, 200)
    plain_us, guarded_page_us, page_ratios = ratio_rounds(
        lambda: client.get("/_bench/plain"), lambda: client.get("/_bench/guarded"), page_calls)
    print(f"whole page (Flask test client, memory store): login_required() {plain_us:.0f} µs, "
          f"login_required(roles, groups) {guarded_page_us:.0f} µs; ratio median "
          f"{statistics.median(page_ratios):.2f} (rounds {min(page_ratios):.2f}-"
          f"{max(page_ratios):.2f})")
    del saved


if __name__ == "__main__":
    main()
