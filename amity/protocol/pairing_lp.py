"""The linear-programming relaxation of a round's assignment (docs/protocol.md, "Pairing
rounds"), solved by HiGHS (scipy.optimize.linprog).

Variables: x_e in [0, 1] for each candidate pair e, s_v in [0, 1] for each school v with a
candidate (s_v = 1: v left without a partner). Maximise
    sum_e score_e * x_e  -  COVER_POINTS * sum_v s_v
subject to, for each school v: sum_{e at v} x_e <= capacity_v and sum_{e at v} x_e + s_v >= 1.
Its optimum is an upper bound of COVER_POINTS * paired + total score over every assignment
of the candidate pairs; when the solution is integral, it is such an assignment, and the
best one.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import coo_matrix, hstack, identity, vstack

# What one school paired is worth against the scores (a pair scores at most 116 points):
# the relaxation gives up a school paired only for more than 100,000 points of score.
COVER_POINTS = 100_000.0
# An x_e this close to 1 is taken as 1.
INTEGRAL = 1e-6

Edge = tuple[int, int]


@dataclass(frozen=True)
class Relaxation:
    """The relaxation's optimum: its value, the pairs at 1 and how many were fractional."""

    bound: float  # the optimum as COVER_POINTS * paired + total score: none has more
    chosen: list[Edge]  # pairs with x_e = 1
    partial: list[Edge]  # pairs with 0 < x_e < 1 (left out of the assignment)

    @property
    def fractional(self) -> int:
        return len(self.partial)


def relax(capacity: Sequence[int], edges: dict[Edge, float]) -> Relaxation | None:
    """The relaxation over the pairs whose schools both have capacity; None if HiGHS did not
    find its optimum."""
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
    n, m = len(vertices), len(ends)
    columns = np.repeat(np.arange(m), 2)
    incidence = coo_matrix((np.ones(2 * m), (local.reshape(-1), columns)), shape=(n, m)).tocsr()
    rows = vstack(
        [
            hstack([-incidence, -identity(n, format="csr")]),  # partners + alone >= 1
            hstack([incidence, coo_matrix((n, n))]),  # partners <= capacity
        ]
    ).tocsr()
    limits = np.concatenate([-np.ones(n), np.asarray(capacity, np.float64)[vertices]])
    cost = np.concatenate([-scores, np.full(n, COVER_POINTS)])
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
    x = result.x[:m]
    ones = x > 1 - INTEGRAL
    chosen = [(u, v) for u, v in ends[ones].tolist()]
    partial = [(u, v) for u, v in ends[(x > INTEGRAL) & ~ones].tolist()]
    return Relaxation(COVER_POINTS * n - float(result.fun), chosen, partial)
