"""A pairing round's view of matching: one symmetric score per pair, and why a pair is out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .matching import MatchContext, School, evaluate, exclusions

# The parts of a match's score that are about the other school alone (its endorsement,
# activity, answers to proposals, free places); the rest (tandem, shared languages, live
# overlap, subjects) is the same both ways. tests/test_pairing.py checks the mean below
# against both directions evaluated in full.
SIDE_PARTS = ("endorsed", "active", "answers", "capacity")


def pair_scorer(ctx: MatchContext) -> Callable[[Any, Any], float | None]:
    """The score of a pair: the mean of both directions' matching scores, None if the pair
    is excluded. One evaluation per pair: the other direction differs only by SIDE_PARTS,
    which depend on one school each and are kept once per school. `ctx.blocked` must be
    empty (a round leaves out blocked schools before): blocking is the only constraint that
    is not symmetric."""
    if ctx.blocked:
        raise ValueError("a pairing round leaves blocked schools out before scoring")
    side: dict[str, float] = {}

    def side_of(school: School, me: School) -> float:
        value = side.get(school.actor)
        if value is None:
            match = evaluate(me, school, ctx)
            value = 0.0 if match is None else sum(match.parts[p] for p in SIDE_PARTS)
            side[school.actor] = value
        return value

    def score(a: School, b: School) -> float | None:
        first = evaluate(a, b, ctx)
        if first is None:
            return None
        side[b.actor] = sum(first.parts[p] for p in SIDE_PARTS)
        return first.score + (side_of(a, b) - side[b.actor]) / 2

    return score


def pair_explainer(ctx: MatchContext) -> Callable[[Any, Any], list[str]]:
    """Why a pair is excluded: every constraint it fails, as `a` would read them."""

    def explain(a: School, b: School) -> list[str]:
        return exclusions(a, b, ctx)

    return explain
