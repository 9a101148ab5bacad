"""A small covering set: every pair of answer values appears together in some combination."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping

Combo = dict[str, str]


def _pairs(combo: Mapping[str, str]) -> set[tuple[tuple[str, str], tuple[str, str]]]:
    return set(itertools.combinations(sorted(combo.items()), 2))


def all_pairs(choices: Mapping[str, list[str]], possible: Callable[[Mapping[str, str]], bool]) -> list[Combo]:
    """Greedy: repeatedly take the possible combination that covers most uncovered pairs.

    Deterministic (ties go to the first in product order); the candidate pool is the whole
    product, which is small here (under a thousand).
    """
    candidates = [dict(zip(choices, values, strict=True)) for values in itertools.product(*choices.values())]
    candidates = [combo for combo in candidates if possible(combo)]
    uncovered = set().union(*(_pairs(combo) for combo in candidates))
    chosen: list[Combo] = []
    while uncovered:
        best = max(candidates, key=lambda combo: len(_pairs(combo) & uncovered))
        chosen.append(best)
        uncovered -= _pairs(best)
    return chosen


def uncovered_pairs(
    combos: list[Combo], choices: Mapping[str, list[str]], possible: Callable[[Mapping[str, str]], bool]
) -> set[tuple[tuple[str, str], tuple[str, str]]]:
    """Pairs that some possible combination has but none of `combos` does."""
    everything = [dict(zip(choices, values, strict=True)) for values in itertools.product(*choices.values())]
    needed = set().union(*(_pairs(combo) for combo in everything if possible(combo)))
    return needed - set().union(*(_pairs(combo) for combo in combos))
