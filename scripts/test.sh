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
# One xdist worker per core, plus one: a bake's own suite waits on loopback servers, deadlines and
# process starts for about a quarter of its time (measured: 25.6 s of CPU in 35.8 s), so a third
# worker on two cores cut the whole run from 610 s to 460 s. worksteal: the bakes (half a minute
# each) sit together at the start of the collection; the default scheduler hands them out in
# chunks, so one worker gets them all.
workers=$(( $(nproc 2>/dev/null || echo 1) + 1 ))
exec .venv/bin/python -m pytest -n "$workers" --dist worksteal "$@"
