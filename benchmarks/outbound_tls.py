"""What a new outbound HTTPS connection costs the app's client. Prints its figures.

    .venv/bin/python benchmarks/outbound_tls.py [--rounds 5] [--calls 100] [--project DIR]

Bakes examples/app.yaml (or uses the baked project DIR, e.g. one baked from an older commit)
and calls a loopback HTTPS server that closes every connection after its answer, so that each
call opens a new connection, through:

1. the generated app's session (`core/http.py` `build_session` with CA_BUNDLE: the default
   trust store, certifi's, plus the server's CA, as in production);
2. a plain `requests.Session` verifying against the same combined file: what requests does on
   its own (a new TLS context per connection, the file read into it each time).

The figure is the calling thread's CPU per call (the server runs in other threads), the median
over rounds, the two sides alternating which goes first.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import io
import ssl
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
import trustme

ROOT = Path(__file__).resolve().parents[1]


def bake(work: Path) -> Path:
    sys.path.insert(0, str(ROOT))
    from generator.cli import main as cli

    (work / "spec.yaml").write_text((ROOT / "examples/app.yaml").read_text())
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli(["new", str(work / "spec.yaml"), "-o", str(work)]) == 0
    return next(p for p in work.iterdir() if p.is_dir())


class _Closing(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


def per_call_cpu(call: Callable[[], object], calls: int) -> float:
    start = time.thread_time()
    for _ in range(calls):
        call()
    return (time.thread_time() - start) / calls * 1000  # ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--project", type=Path, help="a baked project (default: bake one)")
    args = parser.parse_args()

    project = args.project or bake(Path(tempfile.mkdtemp(prefix="outbound-tls-")))
    sys.path.insert(0, str(project))
    package = project.name.replace("-", "_")
    http_module: Any = __import__(f"{package}.core.http", fromlist=["build_session"])

    work = Path(tempfile.mkdtemp(prefix="outbound-tls-ca-"))
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(work / "ca.pem"))
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_tls)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Closing)
    server.daemon_threads = True
    server.socket = server_tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"https://localhost:{server.server_address[1]}/"

    app_session = http_module.build_session(work / "ca.pem", environ={})
    bundle = app_session.ca_bundle
    plain = requests.Session()
    plain.trust_env = False
    plain.verify = bundle
    sides = {"app session (core/http.py)": app_session, "plain requests.Session": plain}
    for session in sides.values():  # warm: imports, the app session's one context
        session.get(url).raise_for_status()
    results: dict[str, list[float]] = {name: [] for name in sides}
    for round_ in range(args.rounds):
        order = list(sides.items())
        for name, session in order if round_ % 2 == 0 else reversed(order):
            results[name].append(per_call_cpu(lambda s=session: s.get(url).raise_for_status(),
                                              args.calls))
    size = Path(bundle).stat().st_size // 1024
    print(f"trust store: {size} KB; {args.rounds} rounds of {args.calls} calls, "
          "each on a new connection; CPU of the calling thread per call:")
    for name, figures in results.items():
        print(f"  {name:28} median {statistics.median(figures):6.2f} ms "
              f"(rounds {min(figures):.2f}-{max(figures):.2f})")
    server.shutdown()


if __name__ == "__main__":
    main()
