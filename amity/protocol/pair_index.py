"""The match index's arrays, scoring many pairs of its own schools at once: each pair's
`matching.evaluate` score, the same double (docs/protocol.md, "Pairing rounds")."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import numpy.typing as npt

from .match_index import Floats, Ints, MatchIndex, language_parts, meets
from .matching import (
    LIVE_FULL_MINUTES,
    LIVE_MINIMUM,
    LIVE_POINTS,
    MatchContext,
    School,
    activity_points,
    answer_points,
)

# evaluate's live part for each whole number of minutes, rounded as evaluate rounds it.
_LIVE_PARTS = np.array(
    [round(LIVE_POINTS * m / LIVE_FULL_MINUTES, 2) for m in range(LIVE_FULL_MINUTES + 1)]
)


def round_cents(values: Floats) -> Floats:
    """Python's `round(value, 2)` of each value: numpy's rounding (times 100, to the nearest
    integer, divided by 100) gives the same double except near a half cent, where the
    value is rounded as Python rounds it."""
    rounded = np.round(values, 2)
    scaled = values * 100
    for at in np.flatnonzero(np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6).tolist():
        rounded[at] = round(float(values[at]), 2)
    return rounded


class PairIndex(MatchIndex):
    """A match index that also scores pairs of its schools, by position."""

    def __init__(self, schools: Sequence[School]) -> None:
        super().__init__(schools)
        self._sides_by_context: dict[
            tuple[datetime, frozenset[str]], tuple[Floats, Floats, Floats]
        ] = {}

    def _sides(self, ctx: MatchContext) -> tuple[Floats, Floats, Floats]:
        """The parts of a match's score that are the other school's alone, as evaluate
        rounds them: endorsed, active, answers (capacity is `capacity_points`)."""
        key = (ctx.now, ctx.trusted)
        found = self._sides_by_context.get(key)
        if found is None:
            endorsed = self._endorsed_points(ctx.trusted, {})
            active = np.array(
                [round(activity_points(s.last_active, ctx.now)[0], 2) for s in self.schools]
            )
            answers = np.array([round(answer_points(s), 2) for s in self.schools])
            found = self._sides_by_context[key] = (
                endorsed,
                active.reshape(-1),
                answers.reshape(-1),
            )
        return found

    def pair_scores(
        self, me: npt.NDArray[np.intp], other: npt.NDArray[np.intp], ctx: MatchContext, live: Ints
    ) -> Floats:
        """For each k, `evaluate(schools[me[k]], schools[other[k]], ctx).score`, NaN where
        evaluate gives None; `live[k]` is the pair's minutes of live window in `ctx.week`.
        The same doubles: the same parts, rounded as Python rounds, added in the same order."""
        both_live = self.live[me] & self.live[other]
        possible = (
            (self.country[me] != self.country[other])
            & (self.capacity[me] > 0)
            & (self.capacity[other] > 0)
            & (
                np.maximum(self.age_min[me], self.age_min[other])
                <= np.minimum(self.age_max[me], self.age_max[other])
            )
            & (
                meets(self.uses[other], self.instruction[me])
                | meets(self.instruction[other], self.learning[me])
            )
            & (
                (self.asynchronous[me] & self.asynchronous[other])
                | (both_live & (live >= LIVE_MINIMUM))
            )
        )
        for actor in ctx.blocked:
            n = self.position.get(actor)
            if n is not None:
                possible &= other != n
        tandem, shared, subjects = language_parts(
            (self.instruction[me], self.learning[me], self.subjects[me]),
            (self.instruction[other], self.learning[other], self.subjects[other]),
        )
        endorsed, active, answers = self._sides(ctx)
        live_part = np.where(both_live, _LIVE_PARTS[np.minimum(live, LIVE_FULL_MINUTES)], 0.0)
        total = tandem + shared
        for part in (live_part, subjects, endorsed[other], active[other], answers[other]):
            total = total + part
        total = round_cents(total + self.capacity_points[other])
        return np.where(possible, total, np.nan)
