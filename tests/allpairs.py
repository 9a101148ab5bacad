"""A small covering set: every value of every asked question, and every pair of asked answer values of
questions that meet, appears in some combination."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Mapping, Sequence

Combo = dict[str, str]
Pair = tuple[tuple[str, str], tuple[str, str]]
# What a combination covers: a single (name, value), or a pair of them.
Feature = tuple[tuple[str, str]] | Pair


def _every_pair(first: str, second: str) -> bool:
    return True


def pairs_of(combo: Mapping[str, str], meet: Callable[[str, str], bool] = _every_pair) -> set[Pair]:
    """The value pairs of `combo`, of the questions that `meet` (names in sorted order)."""
    return {pair for pair in itertools.combinations(sorted(combo.items()), 2) if meet(pair[0][0], pair[1][0])}


def all_pairs(
    choices: Mapping[str, Sequence[str]],
    possible: Callable[[Mapping[str, str]], bool],
    asked: Callable[[Mapping[str, str]], Mapping[str, str]] = dict,
    meet: Callable[[str, str], bool] = _every_pair,
    paired_as: Callable[[Mapping[str, str]], Mapping[str, str]] = dict,
    tries: int = 16,
) -> list[Combo]:
    """Greedy: repeatedly take the possible combination that covers most uncovered features; over
    the product order and `tries` seeded shuffles of it (the greedy's ties decide its size), the
    smallest set wins, the first of equals.

    `asked(combo)` is the part of a combination that its render actually asks (a question
    skipped by `when` covers nothing); every asked value must appear once. `meet(a, b)` says
    whether questions a and b (sorted) need their pairs covered at all; `paired_as(answers)` is
    what a combination counts as for pairs (a value that renders another's code pairs as that
    value). Deterministic (fixed seeds); the candidate pool is the whole product (under a thousand
    here, 16 ms a try).
    """
    candidates = [dict(zip(choices, values, strict=True)) for values in itertools.product(*choices.values())]

    def features(combo: Combo) -> set[Feature]:
        answers = asked(combo)
        singles: set[Feature] = {(item,) for item in answers.items()}
        return singles | pairs_of(paired_as(answers), meet)

    pools = [(combo, features(combo)) for combo in candidates if possible(combo)]
    orders = [pools]
    for seed in range(tries):
        shuffled = pools[:]
        random.Random(seed).shuffle(shuffled)
        orders.append(shuffled)
    return min((_greedy(order) for order in orders), key=len)


def _greedy(pools: list[tuple[Combo, set[Feature]]]) -> list[Combo]:
    """Take the combination that covers most uncovered features until none is left (ties: the first)."""
    uncovered = set().union(*(covered for _, covered in pools))
    chosen: list[Combo] = []
    while uncovered:
        best, covered = max(pools, key=lambda pool: len(pool[1] & uncovered))
        chosen.append(best)
        uncovered -= covered
    return chosen
