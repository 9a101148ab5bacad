"""A small covering set: every pair of asked answer values appears together in some combination."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence

Combo = dict[str, str]
Pair = tuple[tuple[str, str], tuple[str, str]]


def _pairs(combo: Mapping[str, str]) -> set[Pair]:
    return set(itertools.combinations(sorted(combo.items()), 2))


def all_pairs(
    choices: Mapping[str, Sequence[str]],
    possible: Callable[[Mapping[str, str]], bool],
    asked: Callable[[Mapping[str, str]], Mapping[str, str]] = dict,
) -> list[Combo]:
    """Greedy: repeatedly take the possible combination that covers most uncovered pairs.

    `asked(combo)` is the part of a combination that its render actually asks (a question
    skipped by `when` covers no pair). Deterministic: ties go to the first combination in
    product order; the candidate pool is the whole product (under a thousand here).
    """
    candidates = [dict(zip(choices, values, strict=True)) for values in itertools.product(*choices.values())]
    pools = [(combo, _pairs(asked(combo))) for combo in candidates if possible(combo)]
    uncovered = set().union(*(pairs for _, pairs in pools))
    chosen: list[Combo] = []
    while uncovered:
        best, pairs = max(pools, key=lambda pool: len(pool[1] & uncovered))
        chosen.append(best)
        uncovered -= pairs
    return chosen
