"""What the generated suites' test browser pays per request for `requests`, against
`http.client` on the same kept-alive TLS connection to a local server.

    .venv/bin/python benchmarks/browser_client_cost.py [--requests 500]

Prints the client thread's CPU per GET (`time.thread_time`, the server's threads apart) of a
sign-in-sized URL (twelve 40-character query parameters) answered with 2 kB and a cookie. The
test browser (the generated `tests/browser.py`) sends every request through `requests`; this
measures what a lighter client would save per request (docs/benchmarks.md, "Fifth round").
"""

from __future__ import annotations

import argparse
import http.client
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
import trustme


class Answer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # kept-alive connections, as the test servers keep them

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = b"x" * 2000
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Set-Cookie", "a=b; Path=/; Secure; HttpOnly; SameSite=Lax")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=500)
    count = parser.parse_args().requests
    ca = trustme.CA()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    path = "/authorize?" + "&".join(f"p{i}=" + "v" * 40 for i in range(12))
    with ca.cert_pem.tempfile() as ca_file:
        session = requests.Session()
        session.trust_env = False
        session.verify = ca_file
        for _ in range(20):  # warm: the connection is open and kept
            session.get(f"https://localhost:{port}{path}")
        started = time.thread_time()
        for _ in range(count):
            session.get(f"https://localhost:{port}{path}", allow_redirects=False, timeout=30)
        per_requests = (time.thread_time() - started) / count
        connection = http.client.HTTPSConnection(
            "localhost", port, context=ssl.create_default_context(cafile=ca_file))
        for _ in range(20):
            connection.request("GET", path)
            connection.getresponse().read()
        started = time.thread_time()
        for _ in range(count):
            connection.request("GET", path, headers={"Cookie": "a=b"})
            answer = connection.getresponse()
            answer.read()
            answer.getheaders()
        per_plain = (time.thread_time() - started) / count
    server.shutdown()
    print(f"requests:    {per_requests * 1000:.3f} ms of client CPU per request")
    print(f"http.client: {per_plain * 1000:.3f} ms of client CPU per request")
    print(f"difference:  {(per_requests - per_plain) * 1000:.3f} ms")


if __name__ == "__main__":
    main()
