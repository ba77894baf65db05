#!/usr/bin/env bash
# Generate an app from examples/app.yaml into demo/ and run it in local development mode:
# a local identity provider and API stand-ins, the app at http://localhost:5000.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
port="${PORT:-5000}"
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet -e .
.venv/bin/msal-webapp new examples/app.yaml -o demo --force
cd demo/contoso-portal
../../.venv/bin/python -m pip install --quiet -e '.[dev]'
exec ../../.venv/bin/python -m devprovider --port "$port"
