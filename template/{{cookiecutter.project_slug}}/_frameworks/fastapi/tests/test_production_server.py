"""The documented production server (uvicorn, README.md): its start-up with bad settings, and
a provider or API slower than any client would wait, under the real command line."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from {{ cookiecutter.package_name }}.config import DEFAULTS
from {{ cookiecutter.package_name }}.core.settings import EXIT_BAD_SETTINGS

from devprovider import DEFAULT_USERS, StandIn
from tests.app_server import UVICORN_APP
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
# OUTBOUND_DEADLINE_SECONDS of the served app: longer than the sign-ins before the slow call
# take on a loaded machine.
DEADLINE = 5
# The documented command (README.md), without its address.
COMMAND = [sys.executable, "-m", "uvicorn", "--factory", UVICORN_APP, "--no-proxy-headers"]


def test_the_production_server_reports_bad_settings_without_a_traceback(tmp_path: Path) -> None:
    with running([*COMMAND, "--port", "0"], cwd=tmp_path,
                 env={"PYTHONPATH": str(PROJECT), "SECRET_KEY": "short"},
                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as server:
        _, stderr = server.communicate(timeout=60)
    assert server.returncode == EXIT_BAD_SETTINGS
    assert "SECRET_KEY is shorter than 32 characters" in stderr
    assert names_the_credential(stderr)
    assert "Traceback" not in stderr


@pytest.fixture
def uvicorn_app(standin: StandIn, server_cert_files: tuple[str, str], ca_bundle_path: str,
                tmp_path: Path) -> Iterator[tuple[AppUnderTest, dict[str, str]]]:
    """The app under the documented uvicorn command, over https on a socket bound here (so its
    port is known before the app's REDIRECT_URI is)."""
    listener = listening_socket()
    base_url = base_url_of(listener, server_cert_files, "localhost")
    env = app_environment(standin, base_url, ca_bundle_path, tmp_path,
                          OUTBOUND_DEADLINE_SECONDS=str(DEADLINE))
    log = tmp_path / "uvicorn.log"
    with log.open("wb") as out:  # a file, not a pipe: a full pipe would block the server
        server = start(
            [*COMMAND, "--fd", str(listener.fileno()), "--ssl-certfile", server_cert_files[0],
             "--ssl-keyfile", server_cert_files[1]],
            cwd=tmp_path,
            env={**env, "PYTHONPATH": str(PROJECT), **server_process_environment()},
            pass_fds=[listener.fileno()], stdout=out, stderr=subprocess.STDOUT)
    # The socket listens already: the first request waits in its backlog until uvicorn is up.
    app = AppUnderTest(base_url=base_url, standin=standin, services=None,  # type: ignore[arg-type]
                       ca_path=ca_bundle_path)
    try:
        yield app, env
    finally:
        app.close_browsers()  # before the server stops: it waits for open connections
        listener.close()
        # As Ctrl-C in a terminal; nothing of the server may be left.
        stop(server, signal.SIGINT, whole_group=True)
    output = log.read_text(errors="replace")
    assert "Traceback" not in output, output


def test_an_api_that_trickles_under_the_production_server(
        uvicorn_app: tuple[AppUnderTest, dict[str, str]]) -> None:
    """The page answers after the outbound deadline, and meanwhile (one event loop, one
    process) other users are served."""
    app, env = uvicorn_app
    name = DEFAULTS.sign_in_api or next(iter(user_apis(DEFAULTS.downstream_apis)), None)
    if name is None:
        pytest.skip("this app calls no API")
    others = app.browser()
    sign_in(app, others, BOB)
    browser = app.browser()
    sign_in(app, browser, ALICE, page_of(name))
    api_path = urlsplit(env[f"API_{name.upper()}_BASE_URL"]).path
    with app.standin.slow(api_path, trickle_bytes_every_s=TRICKLE):
        answer, elapsed = timed_get(browser, app.url(page_of(name)))
        assert BOB.name in others.get(app.url("/"), timeout=30).text
    assert answer.status_code == 502, answer.text
    assert "could not be reached" in answer.text
    assert DEADLINE <= elapsed < DEADLINE + SLACK
    assert ALICE.name in browser.get(app.url("/"), timeout=30).text
