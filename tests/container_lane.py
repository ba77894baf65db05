"""Helpers of the container lane (tests/test_container_image.py): a local base image, podman,
and an image's file system run with chroot.

The lane builds each generated project's Dockerfile with podman from a base image made on this
machine (debootstrap, then `podman import`), so that it needs no registry. The sandbox it runs
in refuses `podman run`; an image is run instead the way a container runtime would start it,
short of namespaces: a container of the image is created and mounted (`podman mount`), and the
image's command runs in that file system under chroot, as the image's user, with the image's
environment and working directory, on the machine's network.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# The base image, kept by podman between runs (made again when missing). Debian's python3 is
# 3.11, the oldest the projects support; the official slim image the Dockerfile defaults to
# is a newer one on the same Debian.
BASE_IMAGE = "localhost/msal-webapp-base:bookworm"
BASE_SUITE = "bookworm"
BASE_MIRROR = os.environ.get("MSAL_WEBAPP_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# What the Dockerfile runs in its base besides a minimal Debian: python3 -m venv (pip comes
# with the venv module), useradd (in every Debian), and the CA certificates pip trusts.
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
# Certificate authorities this machine trusts in addition to Debian's (a proxy's, a company's):
# the base image trusts them too, as an organisation's own base image would, so that pip in
# the build reaches the package index through the same network.
LOCAL_CAS = Path("/usr/local/share/ca-certificates")
# Debian's pip reads this file; the Dockerfile sets no index or certificate of its own.
PIP_CONF = "[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n"
TIMEOUT = 1800


class PodmanError(AssertionError):
    pass


def run(command: Sequence[str], *, timeout: float = TIMEOUT, check: bool = True,
        **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(command), capture_output=True, text=True, timeout=timeout,
                          check=False, **kwargs)  # type: ignore[call-overload]
    if check and done.returncode != 0:
        raise PodmanError(f"{' '.join(command)}: exit {done.returncode}\n"
                          f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done  # type: ignore[no-any-return]


def podman(*args: str, timeout: float = TIMEOUT, check: bool = True
           ) -> subprocess.CompletedProcess[str]:
    return run(["podman", *args], timeout=timeout, check=check)


def missing_tools() -> list[str]:
    return [tool for tool in ("podman", "debootstrap", "chroot", "mount", "umount")
            if shutil.which(tool) is None]


def ensure_base_image() -> tuple[str, bool]:
    """The base image's name, made now if podman does not have it (then True)."""
    if podman("image", "exists", BASE_IMAGE, check=False).returncode == 0:
        return BASE_IMAGE, False
    work = Path(tempfile.mkdtemp(prefix="msal-webapp-base-"))
    root = work / "root"
    try:
        run(["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
             BASE_SUITE, str(root), BASE_MIRROR])
        import_base(root, work / "root.tar")
    finally:
        remove_tree(work)
    return BASE_IMAGE, True


def import_base(root: Path, archive: Path) -> None:
    """`root` (a Debian made by debootstrap) trimmed and imported as BASE_IMAGE."""
    local_cas = sorted(LOCAL_CAS.glob("*.crt")) if LOCAL_CAS.is_dir() else []
    for ca in local_cas:
        shutil.copy(ca, root / "usr/local/share/ca-certificates" / ca.name)
    if local_cas:
        run(["chroot", str(root), "update-ca-certificates"])
    (root / "etc/pip.conf").write_text(PIP_CONF)
    # What an image needs no copy of: package lists and downloads, documentation.
    for folder in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc",
                   "usr/share/man", "usr/share/locale", "usr/share/info"):
        run(["find", str(root / folder), "-mindepth", "1", "-xdev", "-not", "-name", "lock",
             "-delete"], check=False)
    run(["tar", "--numeric-owner", "--one-file-system", "-C", str(root), "-cf", str(archive),
         "."])
    podman("import",
           "--change", "ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "--change", "ENV=LANG=C.UTF-8",
           "--change", 'CMD=["python3"]',
           str(archive), BASE_IMAGE)


def remove_tree(folder: Path) -> None:
    """rm -r `folder`, refusing when anything is mounted below it (debootstrap mounts the
    machine's /proc, and may bind /dev, while it runs: removing through those would remove
    the machine's own files)."""
    prefix = str(folder.resolve()) + "/"
    mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    below = [m for m in mounts if m.startswith(prefix)]
    for mount in sorted(below, reverse=True):
        run(["umount", "--lazy", mount], check=False)
    mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    if any(m.startswith(prefix) for m in mounts):
        raise PodmanError(f"{folder} is left: something is still mounted below it")
    run(["rm", "-rf", "--one-file-system", str(folder)])


@dataclass(frozen=True)
class ImageConfig:
    """What `podman image inspect` says of an image that a runtime uses to start it."""

    user: str
    env: dict[str, str]
    workdir: str
    cmd: list[str]
    entrypoint: list[str]
    healthcheck: list[str]
    size: int

    @classmethod
    def of(cls, image: str) -> ImageConfig:
        (data,) = json.loads(podman("image", "inspect", image).stdout)
        config = data.get("Config") or {}
        env = dict(item.split("=", 1) for item in config.get("Env") or [])
        health = data.get("Healthcheck") or config.get("Healthcheck") or {}
        return cls(user=config.get("User") or "", env=env,
                   workdir=config.get("WorkingDir") or "/",
                   cmd=list(config.get("Cmd") or []),
                   entrypoint=list(config.get("Entrypoint") or []),
                   healthcheck=list(health.get("Test") or []), size=int(data.get("Size") or 0))

    def health_command(self) -> list[str]:
        """The HEALTHCHECK's command as a runtime runs it (CMD: as given; CMD-SHELL: /bin/sh)."""
        kind, *rest = self.healthcheck or ["NONE"]
        if kind == "CMD":
            return rest
        if kind == "CMD-SHELL":
            return ["/bin/sh", "-c", rest[0]]
        raise AssertionError(f"the image has no health check: {self.healthcheck!r}")


@dataclass
class MountedImage:
    """A container of an image, its file system mounted at `root` (see `mounted`)."""

    root: Path
    config: ImageConfig

    def command(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> list[str]:
        """`argv` as the image's user, in its working directory and environment plus `env`,
        inside the image's file system (chroot; the machine's network and processes)."""
        user = self.config.user
        spec = user if ":" in user else f"{user}:{user}"
        environment = {**self.config.env, **(env or {})}
        return ["chroot", f"--userspec={spec}", "--groups=", str(self.root), "/usr/bin/env", "-i",
                *(f"{name}={value}" for name, value in environment.items()),
                "/bin/sh", "-c", 'cd "$0" && exec "$@"', self.config.workdir, *argv]

    def put(self, path: str, content: bytes) -> str:
        """A file, readable by everyone, at `path` in the container's file system."""
        target = self.root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        target.chmod(0o644)
        return path


@contextlib.contextmanager
def mounted(image: str) -> Iterator[MountedImage]:
    """A new container of `image`, mounted, with /proc and /dev of the machine bound in (the
    app's processes read /proc, Python reads /dev/urandom and /dev/null); all undone on leaving."""
    container = podman("create", image).stdout.strip()
    binds: list[Path] = []
    try:
        root = Path(podman("mount", container).stdout.strip())
        for name in ("proc", "dev"):
            target = root / name
            target.mkdir(exist_ok=True)
            run(["mount", "--rbind" if name == "dev" else "--bind", f"/{name}", str(target)])
            binds.append(target)
        yield MountedImage(root, ImageConfig.of(image))
    finally:
        for target in reversed(binds):
            run(["umount", "--recursive", "--lazy", str(target)], check=False)
        podman("umount", container, check=False)
        podman("rm", "--force", container, check=False)


def saved_layers(image: str, folder: Path) -> Path:
    """The image as `podman save` writes it (docker-archive: every layer a tarball)."""
    archive = folder / "image.tar"
    podman("save", "--format", "docker-archive", "-o", str(archive), image)
    return archive
