"""Pairwise covering arrays: few rows that hold every pair of option values that can occur.

A "factor" is an option with a few values; a "row" picks one value per factor; ``is_valid``
says which rows can exist (the spec rules refuse some combinations). The covering rows hold
every valid PAIR of values (any two factors, any values both can take together): most bugs
need at most two options to show, and a pairwise set is far smaller than every combination
(e.g. 12 rows instead of 36 for 3 x 4 x 3 values).

Used by `msal-webapp check --matrix pairwise` (the option values of a team's spec) and by this
repository's bake tests (the spec shapes of tests/shapes.py).
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Mapping, Sequence

Factors = Mapping[str, Sequence[str]]  # factor -> its values, in the order rows are searched
Row = tuple[str, ...]  # one value per factor, in the factors' order
Pair = tuple[tuple[str, str], tuple[str, str]]  # ((factor, value), (factor, value))
Validity = Callable[[Row], bool]


def all_valid_rows(factors: Factors, is_valid: Validity) -> list[Row]:
    """Every combination of the factors' values that ``is_valid`` accepts (the full matrix)."""
    return [row for row in itertools.product(*factors.values()) if is_valid(row)]


def pairs_of(factors: Factors, row: Row) -> set[Pair]:
    named = list(zip(factors, row, strict=True))
    return set(itertools.combinations(named, 2))


def valid_pairs(factors: Factors, is_valid: Validity) -> set[Pair]:
    """Every pair of values that at least one valid row holds."""
    rows = all_valid_rows(factors, is_valid)
    return {((f1, v1), (f2, v2))
            for (i, f1), (j, f2) in itertools.combinations(enumerate(factors), 2)
            for v1, v2 in {(row[i], row[j]) for row in rows}}


def uncovered_pairs(factors: Factors, is_valid: Validity, already: Sequence[Row]) -> set[Pair]:
    """The valid pairs that none of ``already`` holds."""
    held: set[Pair] = set().union(*(pairs_of(factors, row) for row in already))
    return valid_pairs(factors, is_valid) - held


def lower_bound(uncovered: set[Pair]) -> int:
    """No fewer rows can cover ``uncovered``: one row holds one pair of any two factors."""
    by_factors: dict[tuple[str, str], int] = {}
    for (f1, _), (f2, _) in uncovered:
        by_factors[f1, f2] = by_factors.get((f1, f2), 0) + 1
    return max(by_factors.values(), default=0)


def search(factors: Factors, is_valid: Validity, size: int, uncovered: set[Pair], seed: int,
           steps: int = 20_000) -> list[Row] | None:
    """``size`` rows that cover ``uncovered``, or None if ``steps`` steps do not find them.

    From random valid rows, each step puts an uncovered pair into the row where that loses the
    fewest other pairs (changing a third factor at random now and then), and keeps the change
    if it covers at least as many pairs as it loses or, less and less often, if it does not
    (simulated annealing).
    """
    rng = random.Random(seed)
    candidates = all_valid_rows(factors, is_valid)
    index = {factor: i for i, factor in enumerate(factors)}
    rows = [list(rng.choice(candidates)) for _ in range(size)]
    count: dict[Pair, int] = dict.fromkeys(uncovered, 0)
    for row in rows:
        for pair in pairs_of(factors, tuple(row)) & uncovered:
            count[pair] += 1
    for step in range(steps):
        left = sorted(pair for pair, n in count.items() if n == 0)
        if not left:
            return [tuple(row) for row in rows]
        (f1, v1), (f2, v2) = rng.choice(left)
        best: tuple[int, int, list[str]] | None = None
        for i in rng.sample(range(size), size):
            new = list(rows[i])
            if rng.random() < 0.3:
                other = rng.choice(list(factors))
                new[index[other]] = rng.choice(factors[other])
            new[index[f1]], new[index[f2]] = v1, v2
            if not is_valid(tuple(new)):
                continue
            old_pairs = pairs_of(factors, tuple(rows[i])) & uncovered
            new_pairs = pairs_of(factors, tuple(new)) & uncovered
            delta = (sum(1 for pair in new_pairs - old_pairs if count[pair] == 0)
                     - sum(1 for pair in old_pairs - new_pairs if count[pair] == 1))
            if best is None or delta > best[0]:
                best = (delta, i, new)
        if best is None:
            continue
        delta, i, new = best
        temperature = max(0.02, 0.6 * (1 - step / steps))
        if delta >= 0 or rng.random() < math.exp(delta / temperature):
            for pair in pairs_of(factors, tuple(rows[i])) & uncovered:
                count[pair] -= 1
            for pair in pairs_of(factors, tuple(new)) & uncovered:
                count[pair] += 1
            rows[i] = new
    return None


def covering_rows(factors: Factors, is_valid: Validity, already: Sequence[Row] = (),
                  seeds: int = 1000, steps: int = 20_000) -> list[Row]:
    """The fewest rows `search` finds (from the lower bound up) that, with ``already``, cover
    every valid pair; the same rows for the same input (the seeds are fixed)."""
    uncovered = uncovered_pairs(factors, is_valid, already)
    if not uncovered:
        return []
    size = lower_bound(uncovered)
    while True:
        for seed in range(seeds):
            rows = search(factors, is_valid, size, uncovered, seed, steps)
            if rows is not None:
                return rows
        size += 1
