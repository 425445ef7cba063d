"""Which images a study rates (``--sample N --seed S``) and in which order each rater sees them.

`balanced_sample` deals images round-robin: over methods (their order shuffled), and inside a method over
identities, so method counts differ by at most one, and so do identity counts within a method, unless a
group runs out. `rater_order` is a permutation seeded by the study seed and the rater's name: the same rater
always gets the same order, two raters get different ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TypeVar

import numpy as np

from idportrait.errors import UserError
from idportrait.evaluation.rating_items import RatingItem

T = TypeVar("T")


def balanced_sample(items: list[RatingItem], n: int, seed: int) -> list[RatingItem]:
    """``n`` of ``items`` balanced across methods and identities, in the input's order."""
    if n > len(items):
        raise UserError(f"--sample {n} asks for more images than there are ({len(items)})")
    rng = np.random.default_rng(seed)
    methods = sorted({item.study.method for item in items})
    per_method = []
    for method in _shuffled(methods, rng):
        mine = [item for item in items if item.study.method == method]
        people = sorted({item.study.identity for item in mine})
        groups = [_shuffled([i for i in mine if i.study.identity == who], rng) for who in _shuffled(people, rng)]
        per_method.append(_round_robin(groups, len(mine)))
    chosen = {id(item) for item in _round_robin(per_method, n)}
    return [item for item in items if id(item) in chosen]


def rater_order(count: int, rater: str, seed: int) -> list[int]:
    """A permutation of ``range(count)`` that depends only on ``rater`` and ``seed``."""
    digest = hashlib.sha256(f"{seed}\0{rater}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little")).permutation(count).tolist()


def _round_robin(groups: list[list[T]], n: int) -> list[T]:
    """One from each group in turn until ``n`` are taken or every group is empty."""
    out: list[T] = []
    depth = 0
    while len(out) < n and any(depth < len(g) for g in groups):
        out += [g[depth] for g in groups if depth < len(g)][: n - len(out)]
        depth += 1
    return out


def _shuffled(values: Sequence[T], rng: np.random.Generator) -> list[T]:
    return [values[i] for i in rng.permutation(len(values))]
