"""`python -m devprovider`: the app on http://localhost against the local stand-in, whose sign-in
pages are on another site (http://127.0.0.1), as a real tenant's are."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from {{ cookiecutter.package_name }}.config import DEFAULTS
from {{ cookiecutter.package_name }}.core.services import Services

from devprovider import DEFAULT_USERS, StandIn
from devprovider.__main__ import start_dev_environment
from tests.app_server import PROJECT, production_server, serve
from tests.browser import Browser
from tests.conftest import page_of, server_process_environment, user_apis
from tests.processes import require_ctrl_c, start, stop
from tests.servers import free_port, listening_socket, wait_for_port

ALICE = DEFAULT_USERS[0]


@pytest.fixture
def dev_app(tmp_path: Path) -> Iterator[tuple[str, Services]]:
    started: list[StandIn] = []

    def env_for(base_url: str) -> dict[str, str]:
        standin, env = start_dev_environment(tmp_path, base_url)
        started.append(standin)
        return env

    with serve(env_for, None, host="localhost") as served:
        try:
            yield served
        finally:
            for standin in started:
                standin.stop()


@pytest.mark.parametrize("profile", ["chromium", "firefox", "safari"])
def test_sign_in_on_localhost_in_every_browser(dev_app: tuple[str, Services], profile: str) -> None:
    base_url, services = dev_app
    browser = Browser(verify=True, profile=profile)  # plain http only: no test CA is needed
    start = browser.get(base_url + "/login", allow_redirects=False)
    (name, morsel), = SimpleCookie(start.headers["Set-Cookie"]).items()
    # Not Secure (Safari drops Secure cookies on http://localhost), Lax, and the answer comes
    # back as a top-level GET, the one cross-site request that carries a Lax cookie.
    assert name.startswith("auth-flow-") and morsel["samesite"] == "Lax" and not morsel["secure"]
    assert parse_qs(urlsplit(start.headers["Location"]).query)["response_mode"] == ["query"]
    page = browser.get(start.headers["Location"])
    where = urlsplit(page.url)
    assert where.scheme == "http" and where.hostname != urlsplit(base_url).hostname
    final = browser.sign_in(page, ALICE.username)
    assert final.url == base_url + "/" and ALICE.name in final.text
    for api in user_apis(services.settings.apis):
        page = browser.get(base_url + page_of(api))
        if urlsplit(page.url).path.endswith("/authorize"):  # consent for an API
            page = browser.sign_in(page, ALICE.username)
        assert page.status_code == 200 and ALICE.oid in page.text


# ------------------------------------------------------------------ the command itself
def read_env_file(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            name, value = line.split("=", 1)
            (env[name],) = shlex.split(value)
    return env


def test_provider_only_on_fixed_ports_with_the_production_server(tmp_path: Path) -> None:
    """The README's steps: the stand-in alone on the ports given, then the production server
    with the settings it wrote, and a sign-in through both."""
    require_ctrl_c()  # the stand-in stops on SIGINT, as in a terminal
    listener = listening_socket()  # the app's, bound first: its port is in REDIRECT_URI
    app_port = listener.getsockname()[1]
    provider_port, pages_port = free_port(), free_port()
    env_file = tmp_path / "devprovider.env"
    provider = start(
        [sys.executable, "-m", "devprovider", "--provider-only", "--port", str(app_port),
         "--pages-port", str(pages_port), "--env-file", str(env_file)],
        cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "TMPDIR": str(tmp_path), "PYTHONUNBUFFERED": "1",
             "DEVPROVIDER_PROVIDER_PORT": str(provider_port)})
    server = None
    try:
        wait_for_port(provider_port, provider)
        wait_for_port(pages_port, provider)
        deadline = time.monotonic() + 30
        while not env_file.exists():
            assert time.monotonic() < deadline, "no settings file written"
            time.sleep(0.1)
        env = read_env_file(env_file)
        assert f"127.0.0.1:{provider_port}" in (env["OIDC_AUTHORITY"] or env["AUTHORITY"])
        command, server_env = production_server(listener.fileno(), None)
        server = start(command, cwd=tmp_path, pass_fds=[listener.fileno()],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env={**env, **server_env, "PYTHONPATH": str(PROJECT),
                            **server_process_environment()})
        app_url = f"http://localhost:{app_port}"
        browser = Browser(verify=env["CA_BUNDLE"])
        page = browser.get(app_url + "/login", timeout=60)
        assert page.url.startswith(f"http://127.0.0.1:{pages_port}/"), page.url
        page = browser.sign_in(page, ALICE.username)
        assert page.url.startswith(app_url) and ALICE.name in page.text, page.url
    finally:
        listener.close()
        if server is not None:
            stop(server, signal.SIGINT, whole_group=True)
        stop(provider, signal.SIGINT, whole_group=True)
    output = provider.communicate()[0]
    assert "Traceback" not in output, output
    assert not env_file.exists(), "the settings file outlives the run"


# What a credential looks like in a log: a JWT (access, ID tokens, assertions), or the value of
# a field named as one that is not the redaction mark.
JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.")
UNREDACTED_FIELD = re.compile(
    r"""(?<![\w-])["']?(code|code_verifier|access_token|refresh_token|id_token|client_secret)"""
    r"""["']?\s*[=:]\s*["']?(?!\[redacted\]|\*{8}|["'\s,}&])""")


def test_dev_mode_at_debug_logs_no_secret_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    """`python -m devprovider` with LOG_LEVEL=DEBUG (the app's logging, MSAL's, the development
    server's access log): a sign-in and an API call leave no code, code verifier or token in
    what it wrote; then Ctrl-C in its terminal (SIGINT to every process of the group) stops it
    without a traceback and removes the run's keys. One start for both: the command is the
    same, and a start is most of such a test's time. (Ctrl-C is not checked on Windows: a
    process group's SIGINT is POSIX.)"""
    ctrl_c = sys.platform != "win32"
    if ctrl_c:
        require_ctrl_c()
    port = free_port()
    log = tmp_path / "dev.log"
    with log.open("w") as out:  # a file, not a pipe: a full pipe would block the server
        process = start([sys.executable, "-m", "devprovider", "--port", str(port)],
                        cwd=PROJECT, stdout=out, stderr=subprocess.STDOUT, text=True,
                        env={**os.environ, "TMPDIR": str(tmp_path), "PYTHONUNBUFFERED": "1",
                             "LOG_LEVEL": "DEBUG"})
    try:
        # Ready when it says so (after which Ctrl+C is a stop, not an error) and serving.
        deadline = time.monotonic() + 60
        while "Ctrl+C stops" not in log.read_text(errors="replace"):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        wait_for_port(port, process, log.read_text)
        app_url = f"http://localhost:{port}"
        with Browser() as browser:
            page = browser.sign_in(browser.get(app_url + "/login", timeout=60), ALICE.username)
            assert page.url.startswith(app_url) and ALICE.name in page.text, page.url
            codes = [parse_qs(urlsplit(url).query).get("code", [""])[0]
                     for url in [*(hop.url for hop in page.history), page.url]]
            codes = [code for code in codes if code]
            assert codes, "no authorization code in the redirects (response_mode=query)"
            api = next(iter(user_apis(DEFAULTS.downstream_apis)), None)
            if api is not None:
                assert browser.get(app_url + page_of(api), timeout=60).status_code == 200
        if ctrl_c:
            # Ctrl-C just as a connection opens (a browser's next request, a health probe):
            # the server hands it to a thread as the SIGINT lands, and must not print a
            # traceback.
            wait_for_port(port, process, log.read_text)
            os.killpg(process.pid, signal.SIGINT)
            process.wait(timeout=30)
    finally:
        stop(process)  # and nothing it started is left
    text = log.read_text(errors="replace")
    # DEBUG was on and the sign-in was logged: MSAL's token_cache event, the access log.
    assert "event=" in text and DEFAULTS.redirect_path in text, text
    for code in codes:
        assert code not in text, "the authorization code is in the log"
    for found in (JWT.search(text), UNREDACTED_FIELD.search(text)):
        assert found is None, text[max(0, found.start() - 200):found.end() + 200]
    if ctrl_c:
        assert "Traceback" not in text and "KeyboardInterrupt" not in text, (
            f"a traceback in dev mode's output:\n{text}")
        assert process.returncode == 0, f"exit {process.returncode}: {text}"
        assert not list(tmp_path.glob("devprovider-*")), "the run's key folder is left"
