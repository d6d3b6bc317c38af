"""A pairing round's view of matching: one symmetric score per pair, and why a pair is out.

The score of a pair is the mean of both directions' match scores (matching.evaluate), None
when the pair is excluded. `PairScorer` computes it for many pairs at once with numpy
(pair_index.PairIndex.pair_scores), the same doubles as `pair_score`; the minutes of live window are
computed once per pair of timetables (zone, school days, hours, terms), which many schools
share, and kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from .live_window import Timetable, live_windows, minutes
from .matching import MatchContext, School, evaluate, exclusions
from .pair_index import PairIndex

Indices = npt.NDArray[np.intp]
Floats = npt.NDArray[np.float64]


def pair_score(a: School, b: School, ctx: MatchContext) -> float | None:
    """The score of the pair: the mean of `evaluate` both ways, None if either is None."""
    there, back = evaluate(a, b, ctx), evaluate(b, a, ctx)
    if there is None or back is None:
        return None
    return (there.score + back.score) / 2


class PairScorer:
    """Pair scores over one round's schools, by index, many pairs at a time."""

    def __init__(self, schools: Sequence[School], ctx: MatchContext) -> None:
        if ctx.blocked:
            # Blocking is the one constraint that is not symmetric.
            raise ValueError("a pairing round leaves blocked schools out before scoring")
        self.schools = schools
        self.ctx = ctx
        self.index = PairIndex(schools)
        tables: dict[Timetable, int] = {}
        self.table = np.array(
            [tables.setdefault(s.timetable, len(tables)) for s in schools], np.int64
        ).reshape(-1)
        self.timetables = list(tables)
        self._minutes: dict[int, int] = {}  # low * classes + high -> live minutes

    @property
    def classes(self) -> int:
        """Distinct timetables among the schools."""
        return len(self.timetables)

    @property
    def class_pairs(self) -> int:
        """Pairs of timetables whose live minutes were computed so far."""
        return len(self._minutes)

    def live_minutes(self, first: Indices, second: Indices) -> npt.NDArray[np.int64]:
        """Minutes of live window in the round's week for each pair (first[k], second[k])."""
        a, b = self.table[first], self.table[second]
        count = len(self.timetables)
        keys = np.minimum(a, b) * count + np.maximum(a, b)
        unique, back = np.unique(keys, return_inverse=True)
        found = np.empty(len(unique), np.int64)
        week = self.ctx.week
        for at, key in enumerate(unique.tolist()):
            value = self._minutes.get(key)
            if value is None:
                low, high = divmod(key, count)
                value = minutes(live_windows(self.timetables[low], self.timetables[high], week))
                self._minutes[key] = value
            found[at] = value
        return found[back.reshape(-1)]

    def scores(self, first: Indices, second: Indices) -> Floats:
        """`pair_score` of each pair (first[k], second[k]), NaN where it is None."""
        live = self.live_minutes(first, second)
        there = self.index.pair_scores(first, second, self.ctx, live)
        back = self.index.pair_scores(second, first, self.ctx, live)
        return (there + back) / 2

    def __call__(self, a: School, b: School) -> float | None:
        """`pair_score` of two schools of the round."""
        return pair_score(a, b, self.ctx)


def pair_explainer(ctx: MatchContext) -> Callable[[Any, Any], list[str]]:
    """Why a pair is excluded: every constraint it fails, as `a` would read them."""

    def explain(a: School, b: School) -> list[str]:
        return exclusions(a, b, ctx)

    return explain
