"""What a 64 MB API answer costs the app's worker: memory peak and time. Prints its figures.

    .venv/bin/python benchmarks/api_answer_memory.py [--mb 64] [--project DIR]

Bakes examples/app.yaml (or uses the baked project DIR) and serves a JSON answer of the given
size from a loopback server (with its Content-Length, then chunked). Each case runs in a new
process, so that its peak resident size is its own:

- "read whole": what API pages did before API_MAX_RESPONSE_BYTES: the body read whole by the
  shared session, decoded as JSON and pretty-printed for the page;
- "bounded": `OutboundSession.fetch` with the default bound (4 MiB), as API calls do now.

Figures: Python's allocation peak (tracemalloc), the growth of the peak resident size, time.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import json
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from outbound_tls import bake  # noqa: E402 - the benchmarks' shared baking of examples/app.yaml

BLOCK = 64 * 1024

CASE = r"""
import json, resource, sys, time, tracemalloc
from {package}.core.http import build_session
from {package}.core.errors import ResponseTooLarge
url, mode = sys.argv[1], sys.argv[2]
session = build_session(None, deadline_seconds=60, environ={{}})
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
started = time.perf_counter()
outcome = "answered"
if mode == "whole":
    body = session.request("GET", url).content
    pretty = json.dumps(json.loads(body), indent=2, sort_keys=True)
else:
    try:
        session.fetch("GET", url, headers={{}}, body=None, until=None, max_bytes=4 * 1024 * 1024)
    except ResponseTooLarge:
        outcome = "refused"
elapsed = time.perf_counter() - started
peak = tracemalloc.get_traced_memory()[1]
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(json.dumps({{"peak_mb": peak / 2**20, "rss_mb": grown / 1024, "ms": elapsed * 1000,
                  "outcome": outcome}}))
"""


def server(size: int) -> http.server.ThreadingHTTPServer:
    class Large(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            chunked = self.path == "/chunked"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(size))
            self.send_header("Connection", "close")
            self.end_headers()
            parts = [b'{"data": "']
            left = size - 12
            with contextlib.suppress(OSError):
                while parts or left:
                    if not parts:
                        n = min(BLOCK, left)
                        left -= n
                        parts = [b"x" * n] + ([b'"}'] if not left else [])
                    chunk = parts.pop(0)
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked
                                     else chunk)
                if chunked:
                    self.wfile.write(b"0\r\n\r\n")

        def log_message(self, format: str, *args: object) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Large)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=64)
    parser.add_argument("--project", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = args.project or bake(Path(tmp))
        package = next(p.parents[1].name for p in project.glob("*/core/http.py"))
        srv = server(args.mb * 2**20)
        base = f"http://127.0.0.1:{srv.server_address[1]}"
        print(f"{args.mb} MB answer | case | Python peak | peak RSS growth | time | outcome")
        for path in ("/length", "/chunked"):
            for mode in ("whole", "bounded"):
                out = subprocess.run(
                    [sys.executable, "-c", CASE.format(package=package), base + path, mode],
                    cwd=project, capture_output=True, text=True, check=True).stdout
                r = json.loads(out)
                print(f"{path[1:]} | {mode} | {r['peak_mb']:.1f} MB | {r['rss_mb']:.1f} MB | "
                      f"{r['ms']:.0f} ms | {r['outcome']}")
        srv.shutdown()


if __name__ == "__main__":
    main()
