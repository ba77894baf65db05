"""The shipped production server (gunicorn with gunicorn.conf.py): its settings, its start-up
with bad settings, and a provider slower than its worker timeout."""

from __future__ import annotations

import os
import runpy
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from {{ cookiecutter.package_name }}.config import DEFAULTS

from devprovider import DEFAULT_USERS, StandIn, TestUser
from tests.app_server import GUNICORN_APP
from tests.browser import Browser
from tests.conftest import (
    AppUnderTest,
    app_environment,
    names_the_credential,
    page_of,
    server_process_environment,
    user_apis,
)
from tests.processes import running, start, stop
from tests.servers import base_url_of, listening_socket
from tests.test_time_limits import SLACK, TRICKLE, timed_get
from tests.test_web_flow import sign_in

ALICE, BOB = DEFAULT_USERS[0], DEFAULT_USERS[1]
PROJECT = Path(__file__).parents[1]
# OUTBOUND_DEADLINE_SECONDS of the served app: longer than the worker timeout of TEST_CONFIG,
# and than the sign-ins before the slow call take on a loaded machine.
DEADLINE = 5


def test_the_production_server_reports_bad_settings_without_a_traceback(tmp_path: Path) -> None:
    """The documented gunicorn command: the message, no traceback, and the master stops
    instead of re-spawning workers that cannot start."""
    pytest.importorskip("gunicorn")
    project = Path(__file__).parents[1]
    command = [sys.executable, "-m", "gunicorn", "-c", str(project / "gunicorn.conf.py"),
               "--bind", "127.0.0.1:0", GUNICORN_APP]
    with running(command, cwd=tmp_path, env={"PYTHONPATH": str(project), "SECRET_KEY": "short"},
                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as server:
        _, stderr = server.communicate(timeout=60)
    assert server.returncode != 0
    assert "SECRET_KEY is shorter than 32 characters" in stderr
    assert names_the_credential(stderr)
    assert "Traceback" not in stderr


# ------------------------------------------------------------------------------ gunicorn
# The shipped settings plus, for the test, a worker timeout shorter than the slow request: a
# sync worker would be killed by it (and answer 500); a threaded one keeps reporting.
TEST_CONFIG = """
import os
exec(compile(open({shipped!r}).read(), {shipped!r}, "exec"))
timeout = 3  # the slow call (DEADLINE) outlasts it
graceful_timeout = 5  # the test's own shutdown: not what is tested, and quick under load
control_socket_disable = True  # gunicorn 25+: no shared ~/.gunicorn/gunicorn.ctl between tests
"""


@pytest.mark.parametrize(("env", "workers"), [
    ({"TOKEN_CACHE_BACKEND": "memory", "WEB_CONCURRENCY": "4"}, 1),
    ({"TOKEN_CACHE_BACKEND": "filesystem"}, 2),
    ({"TOKEN_CACHE_BACKEND": "filesystem", "WEB_CONCURRENCY": "4"}, 4),
    ({}, 1 if DEFAULTS.token_cache_backend == "memory" else 2),
])
def test_the_shipped_gunicorn_settings(env: dict[str, str], workers: int,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """One process for the memory backend (its sessions and caches live in that process)."""
    for name in ("TOKEN_CACHE_BACKEND", "WEB_CONCURRENCY", "BIND", "PORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = runpy.run_path(str(PROJECT / "gunicorn.conf.py"))
    assert settings["workers"] == workers
    assert settings["worker_class"] == "gthread" and settings["threads"] > 1
    assert settings["bind"] == "0.0.0.0:8000"
    monkeypatch.setenv("PORT", "9000")
    assert runpy.run_path(str(PROJECT / "gunicorn.conf.py"))["bind"] == "0.0.0.0:9000"


# A gunicorn threaded worker, set up by gunicorn itself with the shipped hooks, whose main loop
# is replaced by the moment a quit signal arrives while the main thread hands an accepted
# connection to the worker's thread pool (ThreadPoolExecutor.submit holds the pool's lock
# meanwhile). Prints what the worker then does, if the handler returns at all.
QUIT_WHILE_ACCEPTING = """
import os, runpy, signal, sys
from gunicorn.config import Config
from gunicorn.glogging import Logger
from gunicorn.workers.gthread import ThreadWorker

shipped = runpy.run_path(sys.argv[1])
quit_signal = getattr(signal, sys.argv[2])
cfg = Config()
for name in ("threads", "post_worker_init", "worker_int"):
    if name in shipped:
        cfg.set(name, shipped[name])

class Worker(ThreadWorker):
    def load_wsgi(self):
        pass

    def run(self):
        with self.tpool._shutdown_lock:  # as within submit()
            os.kill(os.getpid(), quit_signal)  # the handler runs within the next steps
            sum(range(100_000))
        print("stopping" if not self.alive else "still running", flush=True)

Worker(1, os.getppid(), [], None, 30, cfg, Logger(cfg)).init_process()
"""


@pytest.mark.parametrize("quit_signal", ["SIGINT", "SIGQUIT"])
def test_a_worker_told_to_quit_while_accepting_a_connection_stops(quit_signal: str,
                                                                  tmp_path: Path) -> None:
    """Ctrl-C or SIGQUIT to the master sends the workers SIGQUIT (and Ctrl-C every worker
    SIGINT too). gunicorn's own handler shuts the thread pool down, taking the lock the
    interrupted main thread holds: the worker hangs for good (and outlives a master killed
    after a timeout). The shipped settings stop it as SIGTERM does, without a lock."""
    pytest.importorskip("gunicorn")
    command = [sys.executable, "-c", QUIT_WHILE_ACCEPTING, str(PROJECT / "gunicorn.conf.py"),
               quit_signal]
    with running(command, cwd=tmp_path, env={"PYTHONPATH": str(PROJECT),
                                             "PATH": os.environ.get("PATH", "")},
                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as worker:
        try:
            output, _ = worker.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the worker hung in its {quit_signal} handler")
    assert "stopping" in output, output
    assert "Traceback" not in output, output


@dataclass
class Served:
    app: AppUnderTest
    env: dict[str, str]


@pytest.fixture(params=["memory", "filesystem"])
def gunicorn_app(standin: StandIn, server_cert_files: tuple[str, str], ca_bundle_path: str,
                 tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Served]:
    """The app under gunicorn with the shipped gunicorn.conf.py (the app preloaded, then one
    worker for the memory backend, two for the filesystem one), over https on a socket bound
    here (so its port is known before the app's REDIRECT_URI is)."""
    pytest.importorskip("gunicorn")
    listener = listening_socket()
    base_url = base_url_of(listener, server_cert_files, "localhost")
    env = app_environment(standin, base_url, ca_bundle_path, tmp_path,
                          TOKEN_CACHE_BACKEND=request.param,
                          OUTBOUND_DEADLINE_SECONDS=str(DEADLINE))
    config = tmp_path / "gunicorn.test.py"
    config.write_text(TEST_CONFIG.format(shipped=str(PROJECT / "gunicorn.conf.py")))
    server_env = {**env, "PYTHONPATH": str(PROJECT), **server_process_environment(),
                  "BIND": f"fd://{listener.fileno()}"}
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:  # a file, not a pipe: a full pipe would block the server
        server = start(
            [sys.executable, "-m", "gunicorn", "-c", str(config), "--certfile",
             server_cert_files[0], "--keyfile", server_cert_files[1], GUNICORN_APP],
            cwd=tmp_path, env=server_env, pass_fds=[listener.fileno()], stdout=out,
            stderr=subprocess.STDOUT)
    # The socket listens already: the first request waits in its backlog until a worker is up.
    app = AppUnderTest(base_url=base_url, standin=standin, services=None,  # type: ignore[arg-type]
                       ca_path=ca_bundle_path)
    try:
        yield Served(app, env)
    finally:
        app.close_browsers()
        listener.close()
        # As Ctrl-C in a terminal: SIGINT to the master and its workers; nothing may be left.
        stop(server, signal.SIGINT, whole_group=True)
    output = log.read_text(errors="replace")
    assert "WORKER TIMEOUT" not in output, output
    assert "Traceback" not in output, output
    assert "was sent SIGKILL" not in output, output  # a worker that did not stop when told to


def signed_in_as(app: AppUnderTest, browser: Browser, user: TestUser) -> bool:
    return user.name in browser.get(app.url("/"), timeout=30).text


def test_the_shipped_gunicorn_settings_survive_a_provider_slower_than_the_worker_timeout(
        gunicorn_app: Served) -> None:
    app = gunicorn_app.app
    name = DEFAULTS.sign_in_api or next(iter(user_apis(DEFAULTS.downstream_apis)), None)
    if name is None:
        pytest.skip("this app calls no API")
    assert app.browser().get(app.url("/"), timeout=30).status_code == 200  # a worker is up
    others = app.browser()
    sign_in(app, others, BOB)
    browser = app.browser()
    sign_in(app, browser, ALICE, page_of(name))
    api_path = urlsplit(gunicorn_app.env[f"API_{name.upper()}_BASE_URL"]).path
    with app.standin.slow(api_path, trickle_bytes_every_s=TRICKLE):
        answer, elapsed = timed_get(browser, app.url(page_of(name)))
    assert answer.status_code == 502, answer.text
    assert "could not be reached" in answer.text
    # Longer than gunicorn's timeout (3 s), yet answered.
    assert DEADLINE <= elapsed < DEADLINE + SLACK
    # No worker was restarted: the other user's session (in a worker's memory, for the memory
    # backend) is still there. With two workers, the requests above reached both.
    assert signed_in_as(app, others, BOB)
    assert signed_in_as(app, browser, ALICE)
