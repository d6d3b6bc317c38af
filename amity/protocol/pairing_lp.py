"""The linear-programming relaxation of a round's assignment (docs/protocol.md, "Pairing
rounds").

Variables: x_e in [0, 1] for each candidate pair e, s_v in [0, 1] for each school v with a
candidate (s_v = 1: v left without a partner). Maximise
    sum_e score_e * x_e  -  COVER_POINTS * sum_v s_v
subject to, for each school v: sum_{e at v} x_e <= capacity_v and sum_{e at v} x_e + s_v >= 1.
Its optimum is an upper bound of COVER_POINTS * paired + total score over every assignment
of the candidate pairs; when the solution is integral, it is such an assignment, and the
best one.

Solved by HiGHS's dual simplex (scipy.optimize.linprog), or faster, when OR-Tools is
installed, in two steps: a min-cost flow on the bipartite double cover (each school once
as a giver, once as a taker, each pair as two arcs of half its score) has the same optimum
and gives a solution in halves; the pairs at 1 are kept, and HiGHS solves the program left
over the schools that a half touches, with the capacity left. That rest holds the halves,
so its optimum completes the flow's to an optimum of the whole program.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import linprog
from scipy.sparse import coo_matrix, hstack, vstack

# What one school paired is worth against the scores (a pair scores at most 116 points):
# the relaxation gives up a school paired only for more than 100,000 points of score.
COVER_POINTS = 100_000.0
# An x_e this close to 1 is taken as 1.
INTEGRAL = 1e-6
# The flow's costs are integers: this many per point (half a unit of rounding per arc; the
# bound adds what that can hide, at most one point per million places).
FLOW_UNITS = 1_000_000

Edge = tuple[int, int]
Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Relaxation:
    """The relaxation's optimum: its value, the pairs at 1 and how many were fractional."""

    bound: float  # the optimum as COVER_POINTS * paired + total score: none has more
    chosen: list[Edge]  # pairs with x_e = 1
    partial: list[Edge]  # pairs with 0 < x_e < 1 (left out of the assignment)
    method: str = "simplex"  # "flow" when the min-cost flow found the optimum first

    @property
    def fractional(self) -> int:
        return len(self.partial)


def relax(
    capacity: Sequence[int], edges: dict[Edge, float], *, flow: bool = True
) -> Relaxation | None:
    """The relaxation over the pairs whose schools both have capacity; None if no optimum
    was found. `flow`: use the min-cost flow when OR-Tools is installed."""
    # The edges in the dict's order, as arrays (a list of a million tuples is slow).
    ends = np.fromiter(itertools.chain.from_iterable(edges), np.int64, count=2 * len(edges))
    ends = ends.reshape(-1, 2)
    scores = np.fromiter(edges.values(), np.float64, count=len(edges))
    free = np.asarray(capacity, np.int64) > 0
    live = free[ends[:, 0]] & free[ends[:, 1]]
    ends, scores = ends[live], scores[live]
    if not len(ends):
        return Relaxation(0.0, [], [])
    vertices, local = np.unique(ends.reshape(-1), return_inverse=True)
    local = local.reshape(-1, 2)
    places = np.asarray(capacity, np.int64)[vertices]
    halves = _flow_halves(places, local, scores) if flow else None
    x = None if halves is None else _complete(places, local, scores, halves)
    # A flow optimal for the rounded costs is within this much of the true optimum.
    margin, method = float(places.sum()) / FLOW_UNITS, "flow"
    if x is None:  # no OR-Tools, or no optimum by that way: HiGHS solves it all
        x = _simplex(places, local, scores, np.ones(len(vertices), bool))
        margin, method = 0.0, "simplex"
    if x is None:
        return None
    ones = x > 1 - INTEGRAL
    chosen = [(u, v) for u, v in vertices[local[ones]].tolist()]
    partial = [(u, v) for u, v in vertices[local[(x > INTEGRAL) & ~ones]].tolist()]
    degree = np.bincount(local.reshape(-1), np.repeat(x, 2), minlength=len(vertices))
    value = float(scores @ x) + COVER_POINTS * float(np.minimum(degree, 1.0).sum())
    return Relaxation(value + margin, chosen, partial, method)


def _simplex(
    places: Ints, local: Ints, scores: Floats, cover: npt.NDArray[np.bool_]
) -> Floats | None:
    """The program over these schools (`places` each) and pairs by HiGHS; a school `cover`
    leaves out is already paired (no s_v). Returns x, or None without an optimum."""
    n, m = len(places), len(local)
    columns = np.repeat(np.arange(m), 2)
    incidence = coo_matrix((np.ones(2 * m), (local.reshape(-1), columns)), shape=(n, m)).tocsr()
    alone = np.flatnonzero(cover)
    k = len(alone)
    lonely = coo_matrix((-np.ones(k), (np.arange(k), np.arange(k))), shape=(k, k))
    rows = vstack(
        [
            hstack([-incidence[alone], lonely]),  # partners + alone >= 1
            hstack([incidence, coo_matrix((n, k))]),  # partners <= capacity
        ]
    ).tocsr()
    limits = np.concatenate([-np.ones(k), places.astype(np.float64)])
    cost = np.concatenate([-scores, np.full(k, COVER_POINTS)])
    # Dual simplex with presolve off: HiGHS's presolve finds little to remove from this
    # program, and the solve took 10 to 20% longer with it at 100,000 schools.
    result = linprog(
        cost,
        A_ub=rows,
        b_ub=limits,
        bounds=(0, 1),
        method="highs-ds",
        options={"presolve": False},
    )
    if result.status != 0 or result.x is None:
        return None
    x: Floats = np.asarray(result.x[:m], np.float64)
    return x


def _flow_halves(places: Ints, local: Ints, scores: Floats) -> Floats | None:
    """x in {0, 1/2, 1}, optimal for the program (its costs rounded to FLOW_UNITS), from a
    min-cost flow on the double cover; None without OR-Tools or an optimum."""
    try:
        from ortools.graph.python import min_cost_flow
    except ImportError:
        return None
    n, m = len(places), len(local)
    source, sink = 0, 1
    giver, taker = 2 + np.arange(n), 2 + n + np.arange(n)
    ones_n, ones_m, zeros_n = np.ones(n, np.int64), np.ones(m, np.int64), np.zeros(n, np.int64)
    # A school's first place on each side earns half the cover points, the others nothing.
    first = np.full(n, -round(COVER_POINTS * FLOW_UNITS / 2), np.int64)
    half = -np.rint(scores * (FLOW_UNITS / 2)).astype(np.int64)
    total = int(places.sum())
    at_source, at_sink = np.full(n, source, np.int64), np.full(n, sink, np.int64)

    def column(*parts: Ints | list[int]) -> Ints:
        return np.concatenate(parts).astype(np.int64)

    # Arcs: source to givers (first place, other places), takers to sink (the same), each
    # pair both ways, and source to sink (places left unused).
    solver = min_cost_flow.SimpleMinCostFlow()
    arcs = solver.add_arcs_with_capacity_and_unit_cost(
        column(
            at_source, at_source, taker, taker, giver[local[:, 0]], giver[local[:, 1]], [source]
        ),
        column(giver, giver, at_sink, at_sink, taker[local[:, 1]], taker[local[:, 0]], [sink]),
        column(ones_n, places - 1, ones_n, places - 1, ones_m, ones_m, [total]),
        column(first, zeros_n, first, zeros_n, half, half, [0]),
    )
    supplies = np.zeros(2 + 2 * n, np.int64)
    supplies[source], supplies[sink] = total, -total
    solver.set_nodes_supplies(np.arange(2 + 2 * n, dtype=np.int64), supplies)
    if solver.solve() != solver.OPTIMAL:
        return None
    flows = np.asarray(solver.flows(arcs[4 * n : 4 * n + 2 * m]), np.float64)
    halves: Floats = (flows[:m] + flows[m:]) / 2
    return halves


def _complete(places: Ints, local: Ints, scores: Floats, halves: Floats) -> Floats | None:
    """The flow's pairs at 1, and HiGHS's optimum of the rest: the schools a half touches,
    with their capacity left, and the pairs between them."""
    x: Floats = (halves == 1).astype(np.float64)
    n = len(places)
    used = np.bincount(local[halves == 1].reshape(-1), minlength=n)
    touched = np.zeros(n, bool)
    touched[local[halves == 0.5].reshape(-1)] = True
    if not touched.any():
        return x
    left = places - used
    inner = touched[local[:, 0]] & touched[local[:, 1]] & (halves < 1)
    inner &= (left[local[:, 0]] > 0) & (left[local[:, 1]] > 0)
    schools = np.flatnonzero(touched)
    position = np.full(n, -1, np.int64)
    position[schools] = np.arange(len(schools))
    pairs = np.flatnonzero(inner)
    rest = _simplex(left[schools], position[local[pairs]], scores[pairs], used[schools] == 0)
    if rest is None:
        return None
    x[pairs] = rest
    return x
