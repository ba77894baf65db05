#!/usr/bin/env bash
# Generate an app from examples/app.yaml into demo/ and run it in local development mode:
# a local identity provider and API stand-ins, the app at http://localhost:5000 (PORT=5050 to
# use another port).
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
port="${PORT:-5000}"
case "$port" in
    '' | *[!0-9]*) echo "scripts/demo.sh: PORT must be a number, got '$port'" >&2; exit 2 ;;
esac

# A demo that is still running serves from demo/: check the port BEFORE replacing that folder.
# Busy = something answers on 127.0.0.1 or ::1, or the address cannot be bound.
if "$python" - "$port" <<'PY'
import socket
import sys

port = int(sys.argv[1])
for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
    try:
        with socket.socket(family) as probe:
            probe.settimeout(1)
            if probe.connect_ex((host, port)) == 0:
                sys.exit(0)
    except OSError:
        pass  # no IPv6 on this machine
with socket.socket() as probe:
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is not "busy"
    try:
        probe.bind(("127.0.0.1", port))
    except OSError:
        sys.exit(0)
sys.exit(1)
PY
then
    echo "scripts/demo.sh: port $port is already in use (is a demo still running? stop it" \
         "with Ctrl-C, or choose another port: PORT=5050 bash scripts/demo.sh)." \
         "demo/ was left as it is." >&2
    exit 1
fi

if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet -e .
.venv/bin/msal-webapp new examples/app.yaml -o demo --force
cd demo/contoso-portal
../../.venv/bin/python -m pip install --quiet -e '.[dev]'
exec ../../.venv/bin/python -m devprovider --port "$port"
