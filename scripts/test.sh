#!/usr/bin/env bash
# Run every test: the generator's own, and the test suite of each generated sample app.
# Creates .venv on first use and installs the generator with its test extras into it.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
# One xdist worker per core. worksteal: the bakes (half a minute each) sit together at the start
# of the collection; the default scheduler hands them out in chunks, so one worker gets them all.
exec .venv/bin/python -m pytest -n auto --dist worksteal "$@"
