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
    pairs = [edge for edge in edges if capacity[edge[0]] > 0 and capacity[edge[1]] > 0]
    if not pairs:
        return Relaxation(0.0, [], [])
    ends = np.array(pairs, np.int64)
    vertices, local = np.unique(ends.reshape(-1), return_inverse=True)
    local = local.reshape(-1, 2)
    n, m = len(vertices), len(pairs)
    scores = np.array([edges[edge] for edge in pairs], np.float64)
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
    result = linprog(cost, A_ub=rows, b_ub=limits, bounds=(0, 1), method="highs")
    if result.status != 0 or result.x is None:
        return None
    x = result.x[:m]
    ones = x > 1 - INTEGRAL
    chosen = [pairs[at] for at in np.flatnonzero(ones).tolist()]
    partial = [pairs[at] for at in np.flatnonzero((x > INTEGRAL) & ~ones).tolist()]
    return Relaxation(COVER_POINTS * n - float(result.fun), chosen, partial)
