"""The generated projects' production image (their Dockerfile), built with podman and run.

The container lane, outside the default run (marker `container`; a minute or more per image):
`.ci/run` runs it after the default suite, as root (podman, debootstrap, chroot and mount need
it):

    python -m pytest -m container -p no:randomly tests/test_container_image.py

The base image and the layers of the locked dependencies stay in podman's store between runs
(a warm run rebuilds only the app's layers); `podman rmi localhost/msal-webapp-base:bookworm`
makes the next run build the base afresh with Debian's updates, and `podman image prune`
drops earlier runs' untagged images (a few MB each).

For every framework with every store (memory, filesystem, Redis, SQL on PostgreSQL), a project
is rendered, its hashed lock written as `msal-webapp new` writes it, and its image built from a
Debian base made on this machine (tests/container_lane.py; kept by podman, made again when
missing). The stores' images differ in their locked drivers (psycopg's compiled wheel, redis),
the settings they are given, the SQL store's `upgrade` run from the image before the app starts,
and gunicorn's worker count (one process for memory, several otherwise).

Each image then serves a sign-in: the project's local stand-in (`python -m devprovider
--provider-only`) runs on this machine, the image's command runs inside the image's file system
as the image's user, and a scripted browser (the project's tests/browser.py) signs in through
it. The image's health check goes red before the server listens and green after the sign-in,
its user is not root, and no layer holds the .env, key and settings files left in the
project folder before the build.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import importlib.util
import os
import re
import secrets
import shlex
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from baking import FRAMEWORKS
from conftest import BASE_SPEC
from container_lane import ImageConfig, MountedImage, ensure_base_image, missing_tools, mounted
from container_lane import podman as podman_run
from msal_webapp_rules import lock
from test_ci_files import STORES

from generator import cli

pytestmark = pytest.mark.container

# Every framework with every store.
CASES = [(framework, store) for framework in FRAMEWORKS for store in STORES]
REDIS_URL = os.environ.get("MSAL_WEBAPP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get("MSAL_WEBAPP_TEST_POSTGRES_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")
USERNAME, USER_NAME = "alice@contoso.test", "Alice Smith"  # devprovider's first test user
IMAGE_PREFIX = "localhost/msal-webapp-lane"
# The image's Python runs the app: these seconds cover its start (a cold one compiles the
# app's modules) and the stand-in's, on a busy machine.
START_SECONDS = 90
# The base (about 110 MB for Debian's, 120 MB for python:3.12-slim) and the virtual environment
# (about 60-100 MB): a build tool, cache or source tree left in the image goes past it.
MAX_IMAGE_MEGABYTES = 400


@dataclass
class Built:
    framework: str
    store: str
    project: Path
    image: str
    config: ImageConfig
    secret: str  # the SECRET_KEY of the .env left in the project folder before the build
    stamp: str  # written into the package's __init__.py before the build: this build's code
    build_seconds: float


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="session")
def base_image() -> str:
    missing = missing_tools()
    if missing:
        pytest.fail(f"the container lane needs {', '.join(missing)}: apt-get install podman "
                    "debootstrap (as root)")
    if os.geteuid() != 0:
        pytest.fail("the container lane runs as root (podman build, chroot, mount)")
    image, _ = ensure_base_image()
    return image


def render(framework: str, store: str, out: Path) -> Path:
    spec = copy.deepcopy(BASE_SPEC)
    spec["framework"], spec["cache"] = framework, {"backend": store}
    spec_file = out / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    assert cli.main(["new", str(spec_file), "-o", str(out / "out")]) == 0
    (project,) = (out / "out").iterdir()
    return project


def leave_secrets(project: Path, package: str) -> str:
    """What a developer's folder holds and no image may: .env, the stand-in's settings file, a
    key and a certificate, in the project and in the package. Returns the SECRET_KEY used."""
    secret = secrets.token_urlsafe(48)
    for folder in (project, project / package):
        (folder / ".env").write_text(f"SECRET_KEY={secret}\nCLIENT_SECRET={secret}\n")
        (folder / "devprovider.env").write_text(f"SECRET_KEY={secret}\n")
        (folder / "client.pem").write_text(f"-----BEGIN PRIVATE KEY-----\n{secret}\n")
        (folder / "app.pfx").write_text(secret)
    return secret


@pytest.fixture(scope="module", params=CASES, ids=[f"{f}-{s}" for f, s in CASES])
def built(request: pytest.FixtureRequest, base_image: str,
          tmp_path_factory: pytest.TempPathFactory) -> Built:
    framework, store = request.param
    project = render(framework, store, tmp_path_factory.mktemp(f"{framework}-{store}"))
    package = project.name.replace("-", "_")
    # The hashed lock the Dockerfile installs from, as `msal-webapp new` writes it (the tests'
    # renders skip it: tests/conftest.py).
    problem = lock.write_locks(project, store)
    assert problem is None, problem
    secret = leave_secrets(project, package)
    stamp = f"# build {secrets.token_hex(8)}\n"
    with (project / package / "__init__.py").open("a") as init:
        init.write(stamp)
    image = f"{IMAGE_PREFIX}/{framework}-{store}:latest"
    started = time.monotonic()
    # --format docker: an OCI image (podman's default) has no HEALTHCHECK.
    podman_run("build", "--isolation=chroot", "--network", "host", "--layers",
               "--format", "docker", "--build-arg", f"BASE_IMAGE={base_image}", "-t", image,
               str(project))
    return Built(framework, store, project, image, ImageConfig.of(image), secret, stamp,
                 time.monotonic() - started)


# ------------------------------------------------------------------------------ helpers
def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:]


def stop(process: subprocess.Popen[str], sig: int = signal.SIGTERM) -> None:
    """Stop `process` and what it started (its own process group)."""
    if process.poll() is None:
        with_group(process, sig)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with_group(process, signal.SIGKILL)
            process.wait(timeout=10)
    with_group(process, signal.SIGKILL)  # anything left in the group


def with_group(process: subprocess.Popen[str], sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def read_env_file(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            name, value = line.split("=", 1)
            (env[name],) = shlex.split(value) or [""]
    return env


@functools.cache
def project_module(project: Path, name: str) -> ModuleType:
    """A helper module of the project's own tests (tests/NAME.py, standard library and the
    generator's environment only: browser, servers): the same code as its suite uses."""
    spec = importlib.util.spec_from_file_location(f"{name}_{project.parent.parent.name}",
                                                  project / "tests" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


class StandIn:
    """`python -m devprovider --provider-only` of the project, on this machine."""

    def __init__(self, project: Path, folder: Path, app_port: int) -> None:
        self.env_file = folder / "devprovider.env"
        self.log = folder / "devprovider.log"
        servers = project_module(project, "servers")
        provider_port, pages_port = servers.free_port(), servers.free_port()
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "devprovider", "--provider-only", "--port", str(app_port),
                 "--provider-port", str(provider_port), "--pages-port", str(pages_port),
                 "--env-file", str(self.env_file)],
                cwd=project, stdout=out, stderr=subprocess.STDOUT, text=True,
                start_new_session=True,
                env={**os.environ, "PYTHONPATH": str(project), "TMPDIR": str(folder),
                     "PYTHONUNBUFFERED": "1"})
        for port in (provider_port, pages_port):
            servers.wait_for_port(port, self.process, lambda: tail(self.log), START_SECONDS)
        deadline = time.monotonic() + START_SECONDS
        while not self.env_file.exists():
            assert time.monotonic() < deadline, "the stand-in wrote no settings file"
            time.sleep(0.1)

    def settings(self) -> dict[str, str]:
        return read_env_file(self.env_file)

    def stop(self) -> str:
        stop(self.process, signal.SIGINT)
        return self.log.read_text(errors="replace")


@dataclass
class PostgresSchema:
    """A schema of its own on the machine's PostgreSQL, dropped on leaving."""

    url: str = ""
    name: str = ""

    def __enter__(self) -> str:
        import sqlalchemy as sa

        self.name = f"msal_webapp_image_{secrets.token_hex(4)}"
        server = sa.make_url(POSTGRES_URL)
        admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                connection.execute(sa.text(f"CREATE SCHEMA {self.name}"))
        finally:
            admin.dispose()
        self.url = server.update_query_dict(
            {"options": f"-csearch_path={self.name}"}).render_as_string(hide_password=False)
        return self.url

    def __exit__(self, *exc: object) -> None:
        import sqlalchemy as sa

        admin = sa.create_engine(sa.make_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                connection.execute(sa.text(f"DROP SCHEMA IF EXISTS {self.name} CASCADE"))
        finally:
            admin.dispose()


def in_image(mount: MountedImage, argv: list[str], env: dict[str, str],
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(mount.command(argv, env), capture_output=True, text=True,
                          timeout=timeout, check=False)


# ------------------------------------------------------------------------------ tests
def test_a_user_signs_in_through_the_images_server(built: Built, tmp_path: Path) -> None:
    """The image's command (podman inspect) as the image's user, against the stand-in: a
    sign-in through it, and its health check red before it listens, green after."""
    servers = project_module(built.project, "servers")
    app_port = servers.free_port()
    standin = StandIn(built.project, tmp_path, app_port)
    server = None
    schema = PostgresSchema()
    database = schema if built.store == "sql" else contextlib.nullcontext()
    redis_prefix = f"container-lane-{secrets.token_hex(4)}"
    try:
        with mounted(built.image) as mount, database:
            settings = standin.settings()
            ca_file = settings["CA_BUNDLE"]  # the stand-in's https, for the browser here
            # ... and for the app, where the image's user can read it.
            settings["CA_BUNDLE"] = mount.put("/tmp/devprovider-ca.pem",
                                              Path(ca_file).read_bytes())
            env = {**settings, "PORT": str(app_port)}
            if built.store == "sql":
                env["TOKEN_CACHE_SQL_URL"] = schema.url
                package = built.project.name.replace("-", "_")
                done = in_image(mount, ["python", "-m", f"{package}.core.stores.sql", "upgrade"],
                                env)
                assert done.returncode == 0, done.stdout + done.stderr
            if built.store == "redis":
                # Keys of this run only, removed below.
                env["TOKEN_CACHE_REDIS_URL"] = REDIS_URL
                env["TOKEN_CACHE_PREFIX"] = redis_prefix
            health = in_image(mount, mount.config.health_command(), env, timeout=30)
            assert health.returncode != 0, "the health check passes with no server running"
            log = tmp_path / "server.log"
            with log.open("w") as out:
                server = subprocess.Popen(
                    mount.command([*mount.config.entrypoint, *mount.config.cmd], env),
                    stdout=out, stderr=subprocess.STDOUT, text=True, start_new_session=True)
            servers.wait_for_port(app_port, server, lambda: tail(log), START_SECONDS)
            browser = project_module(built.project, "browser").Browser(verify=ca_file)
            app_url = f"http://localhost:{app_port}"
            page = browser.get(app_url + "/login", timeout=60)
            assert "/authorize" in page.url or page.url.startswith("http://127.0.0.1"), page.url
            page = browser.sign_in(page, USERNAME)
            assert page.url.startswith(app_url) and USER_NAME in page.text, (
                page.url, page.status_code, log.read_text(errors="replace")[-3000:])
            health = in_image(mount, mount.config.health_command(), env, timeout=30)
            assert health.returncode == 0, health.stdout + health.stderr
            if built.framework == "django":
                # The command migrated the container's database of user rows (request.user).
                done = in_image(mount, ["python", "manage.py", "migrate", "--check"], env)
                assert done.returncode == 0, done.stdout + done.stderr
            server_uid = process_uid(server.pid)
            assert server_uid not in (None, 0), server_uid
            stop(server)
            output = log.read_text(errors="replace")
            assert "Traceback" not in output, output[-4000:]
    finally:
        if server is not None:
            stop(server, signal.SIGKILL)
        standin_output = standin.stop()
        if built.store == "redis":
            drop_redis_keys(redis_prefix)
    assert "Traceback" not in standin_output, standin_output[-4000:]


def drop_redis_keys(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def process_uid(pid: int) -> int | None:
    """The real uid of the server: the process chroot became (it execs the image's command)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^Uid:\s+(\d+)", status, re.MULTILINE)
    return int(match.group(1)) if match else None


def test_the_image_runs_as_a_user_of_its_own(built: Built) -> None:
    user = built.config.user
    assert user and user.split(":")[0] not in ("0", "root"), f"the image's user: {user!r}"
    with mounted(built.image) as mount:
        done = in_image(mount, ["python3", "-c", "import os; print(os.getuid(), os.getgid())"],
                        {})
        assert done.returncode == 0, done.stderr
        uid, gid = map(int, done.stdout.split())
        assert uid != 0 and gid != 0, (uid, gid)
        # It can write to instance/ (the filesystem and SQLite stores' folder), not to its code.
        probe = in_image(mount, ["python3", "-c", "import sys, pathlib; "
                                 "pathlib.Path(sys.argv[1]).write_text('x')",
                                 "instance/probe"], {})
        assert probe.returncode == 0, probe.stderr
        code = in_image(mount, ["python3", "-c", "import os, sys; "
                                "sys.exit(os.access(sys.prefix, os.W_OK))"], {})
        assert code.returncode == 0, "the image's user can change the installed packages"


def test_no_layer_holds_a_secret_or_a_settings_file(built: Built, tmp_path: Path) -> None:
    """Every layer of the saved image, file names and contents: none of the .env, settings,
    key and certificate files left in the project folder, nor the SECRET_KEY they hold."""
    archive = tmp_path / "image.tar"
    podman_run("save", "--format", "docker-archive", "-o", str(archive), built.image)
    secret = built.secret.encode()
    found: list[str] = []
    names: set[str] = set()
    with tarfile.open(archive) as saved:
        for member in saved:
            if not member.name.endswith(".tar") and "/layer" not in member.name:
                continue
            layer = saved.extractfile(member)
            assert layer is not None
            with tarfile.open(fileobj=layer) as files:
                for entry in files:
                    base = entry.name.rsplit("/", 1)[-1]
                    names.add(entry.name)
                    if base in (".env", "devprovider.env", "client.pem", "app.pfx"):
                        found.append(f"{member.name}: {entry.name}")
                    if entry.isfile():
                        content = files.extractfile(entry)
                        if content is not None and secret in content.read():
                            found.append(f"{member.name}: {entry.name} holds the SECRET_KEY")
    assert names, "no layer read from the saved image"
    assert not found, found
    package = built.project.name.replace("-", "_")
    assert any(f"/{package}/app.py" in f"/{name}" or f"/{package}/wsgi.py" in f"/{name}"
               for name in names), "the app's code is in no layer: the check reads nothing"


def test_the_image_holds_the_app_and_no_build_leftovers(built: Built) -> None:
    """The last stage has the virtual environment with this build's app and the server's
    settings, not the build's sources, wheels or caches; and stays within a size that a
    bloated layer would exceed."""
    package = built.project.name.replace("-", "_")
    with mounted(built.image) as mount:
        root = mount.root
        for gone in ("src", "wheels", "tmp/requirements.txt", "root/.cache/pip"):
            assert not (root / gone).exists(), f"/{gone} is in the image"
        (init,) = root.glob(f"opt/venv/lib/python3*/site-packages/{package}/__init__.py")
        # This build's code, not a cached layer of an earlier build's.
        assert init.read_text().endswith(built.stamp), "the image holds an earlier build's app"
        if built.framework != "fastapi":
            assert (root / "app/gunicorn.conf.py").is_file()
    megabytes = built.config.size / 1e6
    print(f"{built.image}: {megabytes:.0f} MB, built in {built.build_seconds:.0f} s")
    assert megabytes < MAX_IMAGE_MEGABYTES, f"{megabytes:.0f} MB"
