"""A pairing round: partners abroad for every opted-in school that can have one, coverage
first, then total score, within every school's free capacity (docs/protocol.md, "Pairing
rounds"). Pure: schools, a pair score and the week in; pairs and a report out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from .pairing_assignment import CHUNK, assign
from .pairing_candidates import K_BEST, POOL, Pairable, PairScores, Progress, candidate_graph
from .pairing_lp import COVER_POINTS

# Why a pair is excluded, one short sentence each (matching.exclusions, both ways).
Explain = Callable[[Pairable, Pairable], list[str]]
# Excluded schools named in an unpaired school's reason, and full candidates.
NAMED = 3


@dataclass(frozen=True)
class Pair:
    """Two schools to propose to each other, `a` < `b` by actor id, and their score."""

    a: str
    b: str
    score: float


@dataclass(frozen=True)
class Unpaired:
    actor: str
    reason: str
    candidates: int  # schools it could have been paired with (after pruning)


@dataclass(frozen=True)
class RoundReport:
    """What a round decided: the pairs, each school's partners, the unpaired with reasons."""

    week: date
    schools: Sequence[Pairable]
    pairs: list[Pair]
    partners: dict[str, list[tuple[str, float]]]  # paired school -> (partner, score), best first
    unpaired: list[Unpaired]
    with_candidates: int  # schools with at least one candidate: the most that could be paired
    scored: int  # pairs scored while pruning
    edges: int  # candidate pairs kept
    exact: bool  # see docs/protocol.md: the assignment is the best one (within the bound)
    phases: dict[str, int]
    bound: float | None = None  # the relaxation's optimum (pairing_lp), when it ran
    relaxation: str | None = None  # how it was solved: "flow" (OR-Tools) or "simplex"

    @property
    def paired(self) -> int:
        return len(self.partners)

    @property
    def total_score(self) -> float:
        return sum(pair.score for pair in self.pairs)

    @property
    def score_bound(self) -> float | None:
        """The most total score an assignment pairing as many schools can have (large
        rounds: the relaxation's bound less COVER_POINTS a school paired)."""
        return None if self.bound is None else self.bound - COVER_POINTS * self.paired


def pairing_round(
    schools: Sequence[Pairable],
    scorer: PairScores,
    explain: Explain,
    week: date,
    *,
    k: int = K_BEST,
    chunk: int = CHUNK,
    progress: Progress | None = None,
) -> RoundReport:
    """Pair `schools` (opted in, each once) for the round of `week`; `scorer` scores pairs
    of them by index (pairing_score.PairScorer); `explain` says why a pair is excluded."""
    graph = candidate_graph(schools, scorer, week, k, progress)
    capacity = [max(school.capacity, 0) for school in schools]
    assignment = assign(capacity, graph.edges, progress, chunk)
    partners: dict[int, list[tuple[float, int]]] = {}
    pairs: list[Pair] = []
    for (i, j), value in assignment.chosen.items():
        partners.setdefault(i, []).append((value, j))
        partners.setdefault(j, []).append((value, i))
        a, b = sorted((schools[i].actor, schools[j].actor))
        pairs.append(Pair(a, b, value))
    pairs.sort(key=lambda pair: (-pair.score, pair.a, pair.b))
    degree = [0] * len(schools)
    for i, chosen in partners.items():
        degree[i] = len(chosen)
    # Candidates of the unpaired schools only (a large round pairs nearly all).
    neighbours: dict[int, list[int]] = {i: [] for i in range(len(schools)) if i not in partners}
    with_candidates = len(partners)
    for i, j in graph.edges:
        if i in neighbours:
            neighbours[i].append(j)
        if j in neighbours:
            neighbours[j].append(i)
    with_candidates += sum(1 for found in neighbours.values() if found)
    unpaired = [
        Unpaired(
            schools[i].actor,
            _reason(schools, i, graph.pools[i], neighbours[i], degree, capacity, explain),
            len(neighbours[i]),
        )
        for i in range(len(schools))
        if i not in partners
    ]
    return RoundReport(
        week=week,
        schools=schools,
        pairs=pairs,
        partners={
            schools[i].actor: [
                (schools[j].actor, value)
                for value, j in sorted(chosen, key=lambda item: (-item[0], item[1]))
            ]
            for i, chosen in partners.items()
        },
        unpaired=unpaired,
        with_candidates=with_candidates,
        scored=graph.scored,
        edges=len(graph.edges),
        exact=not assignment.cut and (assignment.bound is None or not assignment.fractional),
        bound=assignment.bound,
        relaxation=assignment.method,
        phases={
            "relaxed": assignment.relaxed,
            "fractional": assignment.fractional,
            "core": assignment.core,
            "repaired": assignment.repaired,
            "reached": assignment.reached,
            "rescued": assignment.rescued,
            "filled": assignment.filled,
            "swapped": assignment.swapped,
            "pieces": assignment.pieces,
        },
    )


def _reason(
    schools: Sequence[Pairable],
    i: int,
    pool: list[int],
    candidates: list[int],
    degree: list[int],
    capacity: list[int],
    explain: Explain,
) -> str:
    school = schools[i]
    if capacity[i] <= 0:
        return "no free capacity (capacity 0)"
    if candidates:
        full = sorted(candidates, key=lambda j: schools[j].actor)[:NAMED]
        named = ", ".join(f"{schools[j].actor} ({degree[j]}/{capacity[j]})" for j in full)
        return (
            f"all {len(candidates)} of its candidates reached their capacity with partners "
            f"the round preferred: {named}"
        )
    if not pool:
        ages = f"{school.ages[0]}-{school.ages[1]}"
        return (
            "no opted-in school abroad shares a working language with it for pupils aged "
            f"{ages} (instructed by one, instructed or learned by the other)"
        )
    nearest = []
    for j in pool[:NAMED]:
        why = explain(school, schools[j]) or ["scored too low to be kept"]
        nearest.append(f"{schools[j].actor}: {'; '.join(why)}")
    return (
        f"none of the {len(pool)} schools abroad it was compared with (at most {POOL}) can "
        f"pair with it; nearest: {' | '.join(nearest)}"
    )


def round_json(report: RoundReport, names: dict[str, str], countries: list[str]) -> dict[str, Any]:
    """The report as `amity pairing-round --json` prints it (docs/protocol.md)."""
    by_actor = {school.actor: school for school in report.schools}

    def school(actor: str) -> dict[str, Any]:
        return {
            "actor": actor,
            "name": names.get(actor, actor),
            "country": by_actor[actor].country,
        }

    bound = report.with_candidates
    return {
        "week": report.week.isoformat(),
        "countries": countries,
        "schools": len(report.schools),
        "with_candidates": bound,
        "paired": report.paired,
        "share_paired": round(report.paired / bound, 4) if bound else None,
        "total_score": round(report.total_score, 3),
        "exact": report.exact,
        "score_bound": None if report.score_bound is None else round(report.score_bound, 3),
        "pairs": [
            {"schools": [pair.a, pair.b], "score": round(pair.score, 3)} for pair in report.pairs
        ],
        "paired_schools": [
            {
                **school(actor),
                "partners": [
                    {**school(partner), "score": round(value, 3)} for partner, value in chosen
                ],
            }
            for actor, chosen in sorted(report.partners.items())
        ],
        "unpaired": [
            {**school(item.actor), "reason": item.reason, "candidates": item.candidates}
            for item in sorted(report.unpaired, key=lambda item: item.actor)
        ],
    }
