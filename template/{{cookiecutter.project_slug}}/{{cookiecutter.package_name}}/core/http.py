# Managed by the msal-webapp template: regenerate rather than edit (your code goes outside core/).
"""The process-wide HTTP session used to talk to the identity provider and to downstream APIs.

One `requests.Session` is shared by every MSAL client the app builds (one per request, each over
one account's cache), so connections are pooled and TLS handshakes are not repeated.
"""

from __future__ import annotations

import atexit
import os
import tempfile
from pathlib import Path
from typing import Any

import certifi
import requests

DEFAULT_TIMEOUT = (5.0, 30.0)  # connect, read: a stuck provider must not hang a worker forever


class _Session(requests.Session):
    """A session whose CA bundle the environment cannot silently replace.

    `requests` lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override `verify`; when the operator named
    an extra CA in CA_BUNDLE we have already folded the environment's bundle into ours, so ours
    must win. Proxies from the environment are still honoured (corporate proxies).
    """

    ca_bundle: str | None = None

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any,
                                   cert: Any) -> Any:
        merged = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if self.ca_bundle:
            merged["verify"] = self.ca_bundle
        return merged

    def request(self, method: str | bytes, url: str | bytes, *args: Any,
                **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", DEFAULT_TIMEOUT)
        return super().request(method, url, *args, **kwargs)


def combined_ca_bundle(extra_ca: Path) -> str:
    """Write the default trust store plus `extra_ca` to one PEM file and return its path.

    Trust is added, never removed: TLS verification stays on for every host.
    """
    base = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    base_path = Path(base) if base and Path(base).is_file() else Path(certifi.where())
    pem = base_path.read_text(encoding="ascii") + "\n" + extra_ca.read_text(encoding="ascii")
    fd, path = tempfile.mkstemp(prefix="ca-bundle-", suffix=".pem")
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(pem)
    atexit.register(lambda: Path(path).unlink(missing_ok=True))
    return path


def build_session(extra_ca: Path | None) -> requests.Session:
    session = _Session()
    if extra_ca is not None:
        session.ca_bundle = combined_ca_bundle(extra_ca)
    # Pool size above the default 10 so concurrent requests do not queue for a connection.
    adapter = requests.adapters.HTTPAdapter(pool_connections=8, pool_maxsize=32)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
