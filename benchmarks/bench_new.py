"""`msal-webapp new examples/app.yaml`, in-process, as benchmarks/bench_app.py measures it.

    .venv/bin/python benchmarks/bench_new.py [SOURCE_TREE ...] [--rounds N] [--runs N]

Renders examples/app.yaml with the generator of each SOURCE_TREE (default: this checkout) N
times per round, the trees taking turns round by round (so that a loaded machine weighs on each
alike), and prints the median wall time and the median CPU time (this process and its children:
the hooks, when a generator runs them) per render. The first render of a process pays the
imports; it is left out of the medians and printed apart.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import contextlib, io, json, os, sys, tempfile, time
from pathlib import Path
root = Path(sys.argv[1]); runs = int(sys.argv[2])
sys.path.insert(0, str(root))
from generator.cli import main as cli
work = Path(tempfile.mkdtemp(prefix="bench-new-"))
samples = []
for i in range(runs + 1):
    start, cpu, children = time.perf_counter(), time.process_time(), os.times()
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli(["new", str(root / "examples" / "app.yaml"), "-o", str(work / f"r{i}")]) == 0
    after = os.times()
    samples.append(((time.perf_counter() - start) * 1000,
                    (time.process_time() - cpu + after.children_user - children.children_user
                     + after.children_system - children.children_system) * 1000))
print(json.dumps(samples))
"""


def one_round(tree: Path, runs: int) -> list[tuple[float, float]]:
    done = subprocess.run([sys.executable, "-c", CHILD, str(tree), str(runs)],
                          capture_output=True, text=True, check=True)
    return [(float(wall), float(cpu)) for wall, cpu in json.loads(done.stdout)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("trees", nargs="*", type=Path, default=[ROOT])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    warm: dict[Path, list[tuple[float, float]]] = {tree: [] for tree in args.trees}
    first: dict[Path, list[tuple[float, float]]] = {tree: [] for tree in args.trees}
    for _ in range(args.rounds):
        for tree in args.trees:
            samples = one_round(tree, args.runs)
            first[tree].append(samples[0])
            warm[tree].extend(samples[1:])
    for tree in args.trees:
        wall = statistics.median(s[0] for s in warm[tree])
        cpu = statistics.median(s[1] for s in warm[tree])
        cold = statistics.median(s[0] for s in first[tree])
        print(f"{tree}: new examples/app.yaml: median {wall:.0f} ms wall, {cpu:.0f} ms CPU "
              f"({len(warm[tree])} renders); first render of a process {cold:.0f} ms wall")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
