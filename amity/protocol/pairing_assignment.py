"""Who is paired with whom in a round: a b-matching of the pruned candidate graph, coverage
first, then total score (docs/protocol.md, "Pairing rounds", states what it guarantees).

0. Relaxation, when a connected component has more than `CHUNK` schools: the linear
   program of pairing_lp (a min-cost flow with OR-Tools, then HiGHS; or HiGHS alone); its
   pairs at 1 are kept, and phases 1-5 work on what it left (phases 4-5 only near what
   changed after it; nothing when it was integral).
1. Core: a maximum-cardinality matching of maximum weight among those (Edmonds' blossom
   algorithm, rustworkx), one partner each, per connected component: of the whole graph,
   or after the relaxation of the schools it left alone. A component larger than `CHUNK`
   (with no relaxation: no optimum was found) is cut into pieces along a reverse
   Cuthill-McKee order (scipy), which keeps neighbours close, each piece matched exactly;
   then schools left alone that can still be matched to each other are, and augmenting
   paths of length 3 are removed.
2. Reach: schools still without a partner are attached to candidates with capacity left,
   as many as possible, then by score (a maximum-cardinality, maximum-weight matching of
   the bipartite graph of the alone and the copies of the seats left).
3. Rescue: alternating paths give a partner to schools still alone.
4. Fill: the capacity left is filled with the best remaining edges that score above 0.
5. Swap: a better unused edge replaces the weakest partners of its full ends, when those
   keep another partner; then fill again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import rustworkx as rx
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components, reverse_cuthill_mckee

from .pairing_candidates import Progress
from .pairing_lp import relax

# The largest piece matched exactly at once (rustworkx's blossom is O(n^3)).
CHUNK = 4000
# Schools an alternating-path search looks at, at most, for one school left alone.
RESCUE_VISITS = 2000
# Scores become integer weights (rustworkx needs integers) with this many steps per point.
SCALE = 1000

Edge = tuple[int, int]


@dataclass
class Assignment:
    """The edges chosen (i < j) with their scores, and how they were found."""

    chosen: dict[Edge, float] = field(default_factory=dict)
    pieces: int = 0  # exact matchings run in the core phase
    cut: bool = False  # a component was cut into pieces: the core is then not exact
    bound: float | None = None  # the relaxation's optimum, when it ran (pairing_lp)
    method: str | None = None  # how the relaxation was solved: "flow" or "simplex"
    fractional: int = 0  # pairs the relaxation left between 0 and 1
    relaxed: int = 0  # pairs from each phase
    core: int = 0
    repaired: int = 0
    reached: int = 0
    rescued: int = 0
    filled: int = 0
    swapped: int = 0


def _key(u: int, v: int) -> Edge:
    return (u, v) if u < v else (v, u)


class _Matcher:
    """Exact matchings of pieces of at most `chunk` vertices, with integer weights."""

    def __init__(
        self, edges: dict[Edge, float], chunk: int, progress: Progress | None = None
    ) -> None:
        self.progress = progress
        self.edges = edges
        # Shifting every weight by one constant leaves the best of the maximum-cardinality
        # matchings the same (they all have the same number of edges).
        self.low = min(edges.values(), default=0.0)
        self.chunk = chunk
        self.pieces = 0
        self.cut = False

    def match(self, vertices: Sequence[int], edges: Sequence[Edge]) -> list[Edge]:
        """A maximum-cardinality, maximum-weight matching of each component, exact for
        components of at most `chunk` vertices, per piece for larger ones."""
        graph = rx.PyGraph()
        graph.add_nodes_from(list(vertices))
        local = {vertex: index for index, vertex in enumerate(vertices)}
        low, scores = self.low, self.edges
        graph.add_edges_from(
            [(local[u], local[v], round((scores[(u, v)] - low) * SCALE) + 1) for u, v in edges]
        )
        result: list[Edge] = []
        for component in rx.connected_components(graph):
            nodes = sorted(component)
            if len(nodes) < 2:
                continue
            if len(nodes) <= self.chunk:
                result += self._exact(graph, nodes)
                continue
            self.cut = True
            pieces = self._pieces(graph, nodes)
            for number, piece in enumerate(pieces, 1):
                result += self._exact(graph, piece)
                if self.progress is not None:
                    self.progress("matching pieces", number, len(pieces))
        return [_key(u, v) for u, v in result]

    def _exact(self, graph: rx.PyGraph, nodes: list[int]) -> list[Edge]:
        self.pieces += 1
        sub = graph.subgraph(nodes)
        pairs = rx.max_weight_matching(sub, max_cardinality=True, weight_fn=lambda w: int(w))
        return [(sub[u], sub[v]) for u, v in pairs]  # the payloads: vertex ids

    def _pieces(self, graph: rx.PyGraph, nodes: list[int]) -> list[list[int]]:
        position = {node: index for index, node in enumerate(nodes)}
        rows: list[int] = []
        cols: list[int] = []
        for u, v in graph.edge_list():
            if u in position and v in position:
                rows += [position[u], position[v]]
                cols += [position[v], position[u]]
        size = len(nodes)
        matrix = coo_matrix(([1] * len(rows), (rows, cols)), shape=(size, size)).tocsr()
        order = [nodes[int(i)] for i in reverse_cuthill_mckee(matrix, symmetric_mode=True)]
        return [order[start : start + self.chunk] for start in range(0, size, self.chunk)]


def assign(
    capacity: Sequence[int],
    edges: dict[Edge, float],
    progress: Progress | None = None,
    chunk: int = CHUNK,
) -> Assignment:
    """The pairs of a round over schools 0..n-1 with these free `capacity`s and edges."""
    result = Assignment()
    if not edges:
        return result
    neighbours: list[list[int]] = [[] for _ in capacity]
    for u, v in edges:
        neighbours[u].append(v)
        neighbours[v].append(u)
    matcher = _Matcher(edges, chunk, progress)
    usable = [u for u in range(len(capacity)) if neighbours[u] and capacity[u] > 0]
    live = [edge for edge in edges if capacity[edge[0]] > 0 and capacity[edge[1]] > 0]
    if progress is not None:
        progress("matching", 0, len(usable))
    mate: dict[int, int] = {}
    chosen: dict[Edge, float] = {}
    large = _largest_component(len(capacity), live) > chunk
    relaxation = relax(capacity, edges) if large else None
    # After the relaxation, the schools whose pairs can still change (None: all of them).
    changing: set[int] | None = None
    if relaxation is not None:
        result.bound, result.fractional = relaxation.bound, relaxation.fractional
        result.method = relaxation.method
        chosen = {edge: edges[edge] for edge in relaxation.chosen}
        result.relaxed = len(chosen)
        covered = {x for edge in chosen for x in edge}
        alone = [u for u in usable if u not in covered]
        changing = {x for edge in relaxation.partial for x in edge} | set(alone)
        alone_set = set(alone)
        between = [_key(u, v) for u in alone for v in neighbours[u] if v in alone_set and u < v]
        for u, v in matcher.match(alone, between):
            chosen[_key(u, v)] = edges[_key(u, v)]
        result.core = len(chosen) - result.relaxed
        result.cut = matcher.cut
    else:
        for u, v in matcher.match(usable, live):
            mate[u], mate[v] = v, u
        result.core = len(mate) // 2
        result.cut = matcher.cut
        if matcher.cut:
            _repair(mate, usable, neighbours, edges, matcher)
            result.repaired = len(mate) // 2 - result.core
        chosen = {_key(u, v): edges[_key(u, v)] for u, v in mate.items() if u < v}
    result.pieces = matcher.pieces
    degree = [0] * len(capacity)
    for u, v in chosen:
        degree[u] += 1
        degree[v] += 1
    if progress is not None:
        progress("matching", len(usable), len(usable))
    before = set(chosen)
    result.reached = _reach(capacity, degree, neighbours, edges, chosen, matcher)
    result.rescued = _rescue(capacity, degree, neighbours, chosen, edges)
    if changing is not None:
        # An integral relaxation is the optimum: nothing below can improve on it. Else only
        # moves near what rounding and the phases above changed are looked for.
        changing |= {x for edge in before ^ set(chosen) for x in edge}
        if not changing:
            result.chosen = chosen
            return result
        near = set(changing)
        for u, v in chosen:
            if u in changing or v in changing:
                near.update((u, v))
        order = _best_first({e: s for e, s in edges.items() if e[0] in near or e[1] in near})
    else:
        order = _best_first(edges)
    result.filled = _fill(capacity, degree, order, chosen)
    result.swapped = _swap(capacity, degree, order, chosen)
    if result.swapped:
        result.filled += _fill(capacity, degree, order, chosen)
    result.chosen = chosen
    return result


def _largest_component(n: int, edges: Sequence[Edge]) -> int:
    """The number of schools in the largest connected component of the graph of `edges`."""
    if not edges:
        return 0
    ends = np.array(edges, np.int64)
    graph = coo_matrix((np.ones(len(ends)), (ends[:, 0], ends[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return int(np.bincount(labels).max())


def _best_first(edges: dict[Edge, float]) -> list[tuple[Edge, float]]:
    """The edges by score, highest first, then by (u, v)."""
    keys = list(edges)
    ends = np.array(keys, np.int64).reshape(-1, 2)
    scores = np.fromiter(edges.values(), np.float64, count=len(keys))
    order = np.lexsort((ends[:, 1], ends[:, 0], -scores)).tolist()
    return [(keys[at], edges[keys[at]]) for at in order]


def _repair(
    mate: dict[int, int],
    usable: list[int],
    neighbours: list[list[int]],
    edges: dict[Edge, float],
    matcher: _Matcher,
) -> None:
    """After pieces: match the alone among themselves until the matching is maximal, then
    remove every augmenting path of length 3 (a-u=v-b becomes a=u, v=b)."""
    allowed = set(usable)
    for _ in range(8):
        alone = [u for u in usable if u not in mate]
        alone_set = set(alone)
        between = [_key(u, v) for u in alone for v in neighbours[u] if v in alone_set and u < v]
        if not between:
            break
        for u, v in matcher.match(alone, between):
            mate[u], mate[v] = v, u
    for u in sorted(usable):  # greedy, so the matching is maximal whatever happened above
        if u in mate:
            continue
        free = [v for v in neighbours[u] if v not in mate and v in allowed]
        if free:
            best = max(free, key=lambda w: edges[_key(u, w)])
            mate[u], mate[best] = best, u
    changed = True
    while changed:
        changed = False
        for u in sorted(mate):
            partner = mate.get(u)
            if partner is None or partner < u:
                continue
            v = partner
            a_side = [a for a in neighbours[u] if a not in mate and a in allowed]
            b_side = [b for b in neighbours[v] if b not in mate and b in allowed]
            options = [
                (edges[_key(a, u)] + edges[_key(v, b)], a, b)
                for a in a_side
                for b in b_side
                if a != b
            ]
            if options:
                _, a, b = max(options)
                mate[a], mate[u], mate[v], mate[b] = u, a, b, v
                changed = True


def _reach(
    capacity: Sequence[int],
    degree: list[int],
    neighbours: list[list[int]],
    edges: dict[Edge, float],
    chosen: dict[Edge, float],
    matcher: _Matcher,
) -> int:
    """Attach schools without a partner to candidates with seats left: as many as possible,
    then the best by score. Returns how many were attached."""
    alone = [
        u for u in range(len(capacity)) if degree[u] == 0 and capacity[u] > 0 and neighbours[u]
    ]
    if not alone:
        return 0
    seats: dict[int, int] = {}
    for u in alone:
        for v in neighbours[u]:
            if degree[v] > 0:
                seats[v] = seats.get(v, 0) + 1
    # Vertex ids beyond n stand for the seats: copy c of school v.
    base = len(capacity)
    copies: dict[int, int] = {}
    copy_edges: dict[Edge, float] = {}
    next_id = base
    slots: dict[int, list[int]] = {}
    for v, wanted in seats.items():
        count = min(capacity[v] - degree[v], wanted)
        slots[v] = list(range(next_id, next_id + max(count, 0)))
        for copy in slots[v]:
            copies[copy] = v
        next_id += max(count, 0)
    for u in alone:
        for v in neighbours[u]:
            for copy in slots.get(v, []):
                copy_edges[(u, copy)] = edges[_key(u, v)]
    if not copy_edges:
        return 0
    seat_matcher = _Matcher(copy_edges, matcher.chunk)
    vertices = sorted({x for edge in copy_edges for x in edge})
    attached = 0
    for u, copy in seat_matcher.match(vertices, list(copy_edges)):
        v = copies[copy]
        chosen[_key(u, v)] = edges[_key(u, v)]
        degree[u] += 1
        degree[v] += 1
        attached += 1
    matcher.pieces += seat_matcher.pieces
    return attached


def _rescue(
    capacity: Sequence[int],
    degree: list[int],
    neighbours: list[list[int]],
    chosen: dict[Edge, float],
    edges: dict[Edge, float],
) -> int:
    """For each school still alone, look for an alternating path that gives it a partner
    and leaves everyone covered still covered: it takes a seat of a full candidate v, which
    drops a partner w; w keeps another partner, or (its only one lost) looks on the same way,
    until a candidate with a seat left. Returns how many were given a partner."""
    partners: list[set[int]] = [set() for _ in capacity]
    for u, v in chosen:
        partners[u].add(v)
        partners[v].add(u)
    rescued = 0
    for start in range(len(capacity)):
        if degree[start] or capacity[start] <= 0 or not neighbours[start]:
            continue
        path = _alternating_path(start, capacity, degree, neighbours, partners)
        if path is None:
            continue
        for x, v, w in path:
            chosen[_key(x, v)] = edges[_key(x, v)]
            partners[x].add(v)
            partners[v].add(x)
            degree[x] += 1
            degree[v] += 1
            if w is not None:
                del chosen[_key(v, w)]
                partners[v].discard(w)
                partners[w].discard(v)
                degree[v] -= 1
                degree[w] -= 1
        rescued += 1
    return rescued


def _alternating_path(
    start: int,
    capacity: Sequence[int],
    degree: list[int],
    neighbours: list[list[int]],
    partners: list[set[int]],
) -> list[tuple[int, int, int | None]] | None:
    """Steps (x takes v, v drops w or nobody) that cover `start`, breadth first. A school
    is tried once as a taker (v) and once as a dropped partner (w); on one path it appears
    once, but for the path's own start or dropped schools that take a further partner."""
    came: dict[int, tuple[int, int]] = {}  # w -> (x, v): w was dropped by v for x
    as_taker: set[int] = set()
    as_dropped = {start}
    frontier = [start]
    while frontier and len(as_taker) + len(as_dropped) < RESCUE_VISITS:
        following: list[int] = []
        for x in frontier:
            takers, dropped = _chain(came, x, start)
            for v in neighbours[x]:
                if capacity[v] <= 0 or v in partners[x] or v in takers:
                    continue
                if v in dropped:
                    # On x's own path: after it v holds as many partners as now (the start:
                    # one); it takes x too if a seat is left then.
                    if v != x and degree[v] + (v == start) + 1 <= capacity[v]:
                        return _steps(came, x, v, None)
                    continue
                if v in as_taker:
                    continue
                as_taker.add(v)
                if degree[v] < capacity[v]:
                    return _steps(came, x, v, None)
                for w in sorted(partners[v]):
                    if w in as_dropped or w in takers or w in dropped:
                        continue
                    if degree[w] >= 2:
                        return _steps(came, x, v, w)
                    as_dropped.add(w)
                    came[w] = (x, v)
                    following.append(w)
        frontier = following
    return None


def _chain(came: dict[int, tuple[int, int]], x: int, start: int) -> tuple[set[int], set[int]]:
    """The takers and the dropped schools (with the start and `x`) on `x`'s path."""
    takers: set[int] = set()
    dropped = {x, start}
    while x in came:
        x, v = came[x]
        takers.add(v)
        dropped.add(x)
    return takers, dropped


def _steps(
    came: dict[int, tuple[int, int]], x: int, v: int, w: int | None
) -> list[tuple[int, int, int | None]]:
    steps: list[tuple[int, int, int | None]] = [(x, v, w)]
    while x in came:
        previous, dropper = came[x]
        steps.append((previous, dropper, x))
        x = previous
    return steps


def _swap(
    capacity: Sequence[int],
    degree: list[int],
    order: list[tuple[Edge, float]],
    chosen: dict[Edge, float],
) -> int:
    """Take an unused pair, best first, in place of the weakest partner of each full end
    when that raises the total and every school dropped keeps another partner (so no one
    covered is left alone). Returns how many pairs came in."""
    partners: list[dict[int, float]] = [{} for _ in capacity]
    for (u, v), score in chosen.items():
        partners[u][v] = score
        partners[v][u] = score
    swapped = 0
    for (u, v), score in order:
        if (u, v) in chosen or capacity[u] <= 0 or capacity[v] <= 0:
            continue
        dropped: list[tuple[int, int]] = []  # (end, partner it drops)
        for end, other in ((u, v), (v, u)):
            if degree[end] < capacity[end]:
                continue
            spare = [w for w in partners[end] if w != other and degree[w] >= 2]
            if not spare:
                break
            dropped.append((end, min(spare, key=lambda w: (partners[end][w], w))))
        else:
            lost = sum(partners[end][w] for end, w in dropped)
            same = len(dropped) == 2 and dropped[0][1] == dropped[1][1]
            if score <= lost or (same and degree[dropped[0][1]] < 3):
                continue
            for end, w in dropped:
                del chosen[_key(end, w)]
                del partners[end][w], partners[w][end]
                degree[end] -= 1
                degree[w] -= 1
            chosen[(u, v)] = score
            partners[u][v] = partners[v][u] = score
            degree[u] += 1
            degree[v] += 1
            swapped += 1
    return swapped


def _fill(
    capacity: Sequence[int],
    degree: list[int],
    order: list[tuple[Edge, float]],
    chosen: dict[Edge, float],
) -> int:
    """Fill the capacity left with the unused edges of `order` (best first) that score above
    0 (one that scores less would lower the total). Returns how many."""
    added = 0
    for (u, v), score in order:
        if score <= 0:
            break
        if (u, v) in chosen or degree[u] >= capacity[u] or degree[v] >= capacity[v]:
            continue
        chosen[(u, v)] = score
        degree[u] += 1
        degree[v] += 1
        added += 1
    return added
