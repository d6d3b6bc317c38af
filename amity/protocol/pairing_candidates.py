"""Candidates for a pairing round: an index on language, age and time zone, never all pairs.

A school's pool is drawn from index buckets keyed by (working-language role, language, age
year): the schools that instruct a language it instructs or learns, and those that learn a
language it instructs, whose age range covers that year. Each bucket is sorted by UTC
offset, and from each the `WINDOW` schools abroad nearest in offset are taken, up to `POOL`
schools in all; the pool is scored, and the best `K_BEST` scored candidates of each school
are kept as edges (an edge kept by either school counts for both).
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Protocol
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

# Candidates kept per school, by score: the pruned graph has at most K_BEST * n edges.
K_BEST = 10
# Schools scored per school at most, and taken from one index bucket at most.
POOL = 24
WINDOW = 4
# Index entries looked at per bucket while skipping schools of the school's own country.
_WALK = 4 * WINDOW


class Pairable(Protocol):
    """What the candidate index reads of a school (matching.School has it)."""

    @property
    def actor(self) -> str: ...
    @property
    def country(self) -> str: ...
    @property
    def timezone(self) -> str: ...
    @property
    def instruction(self) -> Collection[str]: ...
    @property
    def learning(self) -> Collection[str]: ...
    @property
    def ages(self) -> Sequence[int]: ...
    @property
    def capacity(self) -> int: ...


class PairScores(Protocol):
    """The symmetric scores of pairs of a round's schools, by index (NaN: excluded)."""

    def scores(
        self, first: npt.NDArray[np.int64], second: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.float64]: ...


Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class CandidateGraph:
    """Schools by index, the pruned edges (i < j) with their scores, and each school's
    pool (the schools it was compared with, best first as the index offered them)."""

    edges: dict[tuple[int, int], float]
    pools: list[list[int]]
    scored: int  # pairs scored


def _offset_minutes(zone: str, week: date) -> float:
    moment = datetime.combine(week, time(12), tzinfo=ZoneInfo(zone))
    offset = moment.utcoffset()
    return offset.total_seconds() / 60 if offset is not None else 0.0


def _spread(actor: str) -> int:
    return int.from_bytes(hashlib.blake2b(actor.encode(), digest_size=4).digest(), "big")


Entry = tuple[int, int]  # (spread, school)


class _Bucket:
    """One index bucket: its schools grouped by UTC offset, each group in spread order."""

    def __init__(self) -> None:
        self.groups: dict[float, list[Entry]] = {}
        self.offsets: list[float] = []
        # Per offset, in spread order: the spreads, and the schools.
        self.spreads: dict[float, list[int]] = {}
        self.members: dict[float, list[int]] = {}

    def seal(self) -> None:
        for offset, group in self.groups.items():
            group.sort()
            self.spreads[offset] = [spread for spread, _ in group]
            self.members[offset] = [i for _, i in group]
        self.offsets = sorted(self.groups)
        self.groups = {}


class _Index:
    def __init__(self, schools: Sequence[Pairable], week: date) -> None:
        self.schools = schools
        zones = {school.timezone for school in schools}
        by_zone = {zone: _offset_minutes(zone, week) for zone in zones}
        self.offsets = [by_zone[school.timezone] for school in schools]
        # Schools of one zone share an offset: a stable hash of each actor spreads the
        # choices among them, so they do not all pick the same few nearest schools.
        self.spread = [_spread(school.actor) for school in schools]
        codes: dict[str, int] = {}
        self.country = [codes.setdefault(school.country, len(codes)) for school in schools]
        # Schools with the same languages, ages and offset go to the same buckets.
        alike: dict[tuple[tuple[str, ...], tuple[str, ...], int, int, float], list[Entry]] = {}
        for i, school in enumerate(schools):
            if school.capacity <= 0:
                continue  # never a candidate: it cannot take a partner
            key = (
                tuple(school.instruction),
                tuple(school.learning),
                school.ages[0],
                school.ages[1],
                self.offsets[i],
            )
            alike.setdefault(key, []).append((self.spread[i], i))
        buckets: dict[tuple[str, str, int], _Bucket] = {}
        for (instruction, learning, low, high, offset), members in alike.items():
            for role, languages in (("i", instruction), ("l", learning)):
                for language in languages:
                    for year in range(low, high + 1):
                        bucket = buckets.setdefault((role, language, year), _Bucket())
                        bucket.groups.setdefault(offset, []).extend(members)
        for bucket in buckets.values():
            bucket.seal()
        self.buckets = buckets

    def pool(self, i: int) -> list[int]:
        """Up to POOL schools abroad sharing a working language and an age year with school
        `i`, possible tandems first, each bucket's nearest in UTC offset first."""
        school = self.schools[i]
        low, high = school.ages[0], school.ages[1]
        middle = (low + high) // 2
        years = sorted(range(low, high + 1), key=lambda y: (abs(y - middle), y))
        wanted: list[tuple[str, str]] = [("i", lang) for lang in sorted(school.learning)]
        wanted += [("l", lang) for lang in sorted(school.instruction)]
        wanted += [("i", lang) for lang in sorted(school.instruction)]
        found: dict[int, None] = {}
        for role, language in wanted:
            for year in years:
                if len(found) >= POOL:
                    return list(found)
                bucket = self.buckets.get((role, language, year))
                if bucket is not None:
                    self._nearest(i, bucket, found)
        return list(found)

    def _nearest(self, i: int, bucket: _Bucket, found: dict[int, None]) -> None:
        """Add up to WINDOW schools abroad from `bucket`: offset groups nearest first, at
        most half of them from one group, each group read from school `i`'s spread on."""
        country, mine, spread = self.country[i], self.offsets[i], self.spread[i]
        countries = self.country
        offsets = bucket.offsets
        right = bisect.bisect_left(offsets, mine)
        left = right - 1
        taken = 0
        per_group = max(1, WINDOW // 2)
        while taken < WINDOW and (left >= 0 or right < len(offsets)):
            if right >= len(offsets) or (
                left >= 0 and mine - offsets[left] <= offsets[right] - mine
            ):
                at = offsets[left]
                left -= 1
            else:
                at = offsets[right]
                right += 1
            group = bucket.members[at]
            start = bisect.bisect_left(bucket.spreads[at], spread)
            size = len(group)
            here = 0
            for step in range(min(size, _WALK)):
                j = group[(start + step) % size]
                if j == i or j in found or countries[j] == country:
                    continue
                found[j] = None
                taken += 1
                here += 1
                if len(found) >= POOL or taken >= WINDOW or here >= per_group:
                    break
            if len(found) >= POOL:
                return


def candidate_graph(
    schools: Sequence[Pairable],
    scorer: PairScores,
    week: date,
    k: int = K_BEST,
    progress: Progress | None = None,
) -> CandidateGraph:
    """The pruned graph of a round: each school's pool scored (each pair once, all at once),
    its best `k` kept."""
    index = _Index(schools, week)
    total = len(schools)
    pools: list[list[int]] = []
    for i in range(total):
        pools.append(index.pool(i) if schools[i].capacity > 0 else [])
        if progress is not None and (i + 1) % 1000 == 0:
            progress("candidates", i + 1, total)
    sizes = np.fromiter((len(pool) for pool in pools), np.int64, count=total)
    mine = np.repeat(np.arange(total, dtype=np.int64), sizes)
    theirs = np.fromiter((j for pool in pools for j in pool), np.int64, count=int(sizes.sum()))
    low, high = np.minimum(mine, theirs), np.maximum(mine, theirs)
    pairs, back = np.unique(low * max(total, 1) + high, return_inverse=True)
    first, second = np.divmod(pairs, max(total, 1))
    values = scorer.scores(first, second)[back.reshape(-1)]
    # Each school's candidates, best first (ties: lower index first); the first k kept.
    keep = ~np.isnan(values)
    mine, theirs, values = mine[keep], theirs[keep], values[keep]
    low, high = low[keep], high[keep]
    order = _best_first_order(mine, values, theirs, total)
    mine, values, low, high = mine[order], values[order], low[order], high[order]
    starts = np.searchsorted(mine, mine, side="left")
    kept = np.arange(len(mine)) - starts < k
    edges = dict(
        zip(
            zip(low[kept].tolist(), high[kept].tolist(), strict=True),
            values[kept].tolist(),
            strict=True,
        )
    )
    if progress is not None:
        progress("candidates", total, total)
    return CandidateGraph(edges, pools, len(pairs))


def _best_first_order(
    mine: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    theirs: npt.NDArray[np.int64],
    total: int,
) -> npt.NDArray[np.intp]:
    """np.lexsort((theirs, -values, mine)): by school, best score first, then by index.
    When the three fit one int64 key (the scores replaced by their rank), that key's sort
    does it: 1 s against lexsort's 4 s for 4.7 million random rows on a 2-core machine."""
    distinct, rank = np.unique(-values, return_inverse=True)
    width = max(total, 1)
    if width * width * max(len(distinct), 1) >= 2**62:
        return np.lexsort((theirs, -values, mine))
    key = (mine * len(distinct) + rank.reshape(-1)) * width + theirs
    return np.argsort(key, kind="stable")
