"""Pairing rounds: the profile flag, the assignment against exact optima, the report's
reasons, and `amity pairing-round` on a real hub's directory."""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import networkx as nx
import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import lil_matrix

from amity.cli.main import cli
from amity.protocol.errors import ValidationFailed
from amity.protocol.matching import MatchContext, School, evaluate
from amity.protocol.pairing import pairing_round
from amity.protocol.pairing_assignment import assign
from amity.protocol.pairing_candidates import _best_first_order, candidate_graph
from amity.protocol.pairing_lp import COVER_POINTS, FLOW_UNITS, relax
from amity.protocol.pairing_score import PairScorer, pair_explainer, pair_score
from amity.protocol.profile import validate_profile
from amity.protocol.profile_document import profile_document, profile_from_document

from .helpers import EXAMPLE_PROFILE
from .inprocess import LiveNode, start_node

T = TypeVar("T")
WEEK = date(2026, 12, 7)
CTX = MatchContext(week=WEEK, now=datetime(2026, 12, 1, tzinfo=UTC))

# --- the profile flag ---------------------------------------------------------------------


def test_pairing_rounds_flag_is_validated_with_the_rest_and_published() -> None:
    data = validate_profile({**EXAMPLE_PROFILE, "pairing_rounds": True})
    assert data["pairing_rounds"] is True
    assert "pairing_rounds" not in validate_profile(EXAMPLE_PROFILE)  # absent means false
    with pytest.raises(ValidationFailed) as caught:
        validate_profile({**EXAMPLE_PROFILE, "pairing_rounds": "yes", "capacity": -1})
    assert ("pairing_rounds", 'must be true or false (got "yes")') in caught.value.problems
    assert any(field == "capacity" for field, _ in caught.value.problems)
    actor = "https://a.example/actors/a"
    document = profile_document(
        data, profile_id=f"{actor}/profile", actor_id=actor, published="x", updated="x"
    )
    assert document["pairingRounds"] is True
    assert profile_from_document(document) == data
    older = profile_document(
        validate_profile(EXAMPLE_PROFILE),
        profile_id=f"{actor}/profile",
        actor_id=actor,
        published="x",
        updated="x",
    )
    assert "pairing_rounds" not in profile_from_document(older)


# --- the assignment against exact optima --------------------------------------------------


@st.composite
def graphs(draw: Any, max_nodes: int = 9, max_edges: int = 11, caps: tuple[int, ...] = (1,)):  # type: ignore[no-untyped-def]
    n = draw(st.integers(2, max_nodes))
    pairs = [(u, v) for u in range(n) for v in range(u + 1, n)]
    chosen = draw(st.lists(st.sampled_from(pairs), min_size=1, max_size=max_edges, unique=True))
    edges = {edge: float(draw(st.integers(1, 60))) for edge in chosen}
    capacity = [draw(st.sampled_from(caps)) for _ in range(n)]
    return capacity, edges


def _degrees(n: int, chosen: dict[tuple[int, int], float]) -> list[int]:
    degree = [0] * n
    for u, v in chosen:
        degree[u] += 1
        degree[v] += 1
    return degree


def _covered(chosen: dict[tuple[int, int], float]) -> int:
    return len({x for edge in chosen for x in edge})


def _brute_force(capacity: list[int], edges: dict[tuple[int, int], float]) -> tuple[int, float]:
    """The lexicographic optimum (schools covered, then total score) over every subset."""
    items = list(edges.items())
    best = (0, 0.0)
    for mask in range(1 << len(items)):
        picked = {edge: s for bit, (edge, s) in enumerate(items) if mask >> bit & 1}
        if all(d <= c for d, c in zip(_degrees(len(capacity), picked), capacity, strict=True)):
            best = max(best, (_covered(picked), sum(picked.values())))
    return best


@settings(max_examples=200, deadline=None, derandomize=True)
@given(graphs(max_nodes=14, max_edges=30))
def test_capacity_one_equals_networkx_exact_optimum(
    case: tuple[list[int], dict[tuple[int, int], float]],
) -> None:
    capacity, edges = case
    result = assign(capacity, edges)
    graph = nx.Graph()
    graph.add_weighted_edges_from((u, v, s) for (u, v), s in edges.items())
    best = nx.max_weight_matching(graph, maxcardinality=True)
    assert _covered(result.chosen) == 2 * len(best)
    assert sum(result.chosen.values()) == pytest.approx(sum(edges[(min(e), max(e))] for e in best))


@settings(max_examples=300, deadline=None, derandomize=True)
@given(graphs(caps=(0, 1, 1, 2, 3)))
def test_coverage_equals_the_brute_force_optimum_within_capacity(
    case: tuple[list[int], dict[tuple[int, int], float]],
) -> None:
    capacity, edges = case
    result = assign(capacity, edges)
    degree = _degrees(len(capacity), result.chosen)
    assert all(d <= c for d, c in zip(degree, capacity, strict=True))
    assert set(result.chosen) <= set(edges)
    covered, _score = _brute_force(capacity, edges)
    assert _covered(result.chosen) == covered


def _ilp_optimum(capacity: list[int], edges: dict[tuple[int, int], float]) -> tuple[int, float]:
    """The most schools any assignment pairs, then its highest total score: an integer
    program (HiGHS) maximising COVER_POINTS * paired + score, as the relaxation does."""
    n, keys = len(capacity), list(edges)
    m = len(keys)
    rows = lil_matrix((2 * n, m + n))  # x_e, then y_v (paired)
    for index, (u, v) in enumerate(keys):
        for x in (u, v):
            rows[x, index] = 1
            rows[n + x, index] = -1
    for x in range(n):
        rows[n + x, m + x] = 1
    result = milp(
        c=-np.array([edges[e] for e in keys] + [COVER_POINTS] * n),
        constraints=LinearConstraint(rows.tocsr(), -np.inf, np.array([*capacity, *[0] * n])),
        integrality=np.ones(m + n),
        bounds=Bounds(0, 1),
    )
    assert result.success
    picked = {keys[at]: edges[keys[at]] for at in range(m) if result.x[at] > 0.5}
    return _covered(picked), sum(picked.values())


@settings(max_examples=150, deadline=None, derandomize=True)
@given(graphs(max_nodes=30, max_edges=60, caps=(0, 1, 1, 2, 3)))
def test_relaxation_path_equals_the_integer_optimum(
    case: tuple[list[int], dict[tuple[int, int], float]],
) -> None:
    capacity, edges = case
    result = assign(capacity, edges, chunk=4)  # a component of more than 4: the relaxation
    degree = _degrees(len(capacity), result.chosen)
    assert all(d <= c for d, c in zip(degree, capacity, strict=True))
    assert set(result.chosen) <= set(edges)
    covered, total = _covered(result.chosen), sum(result.chosen.values())
    best_covered, best_total = _ilp_optimum(capacity, edges)
    if result.bound is None:  # every component small enough: the exact core ran
        assert covered == best_covered
        return
    # The relaxation's optimum bounds every assignment, the integer optimum included.
    assert COVER_POINTS * best_covered + best_total <= result.bound + 1e-6
    assert covered == best_covered
    if not result.fractional:  # an integral relaxation is the optimum itself
        assert total == pytest.approx(best_total)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(graphs(max_nodes=30, max_edges=70, caps=(0, 1, 1, 2, 3)), st.integers(1, 13))
def test_the_flow_and_the_simplex_reach_the_same_optimum(
    case: tuple[list[int], dict[tuple[int, int], float]], divisor: int
) -> None:
    """The min-cost flow on the double cover, completed by HiGHS, against HiGHS alone:
    the same optimum (within the rounding margin the bound adds), pairs within capacity."""
    capacity, whole = case
    edges = {edge: score / divisor for edge, score in whole.items()}  # not only integers
    flow, simplex = relax(capacity, edges), relax(capacity, edges, flow=False)
    assert flow is not None and simplex is not None
    if any(capacity[u] and capacity[v] for u, v in edges):  # else nothing was solved
        assert (flow.method, simplex.method) == ("flow", "simplex")
    margin = sum(capacity) / FLOW_UNITS
    assert simplex.bound - 1e-6 <= flow.bound <= simplex.bound + margin + 1e-6
    for result in (flow, simplex):
        chosen = dict.fromkeys(result.chosen, 0.0)
        assert set(chosen) <= set(edges) and not set(result.partial) & set(chosen)
        degree = _degrees(len(capacity), chosen)
        assert all(d <= c for d, c in zip(degree, capacity, strict=True))


def test_without_or_tools_the_simplex_solves_it_all(monkeypatch: pytest.MonkeyPatch) -> None:
    """A node installed without the `rounds` extra: HiGHS alone, the same optimum."""
    capacity = [1, 2, 1, 1, 2, 1]
    edges = {(0, 1): 5.0, (1, 2): 4.0, (2, 0): 3.0, (3, 4): 2.5, (4, 5): 1.5, (1, 4): 6.0}
    with_flow = relax(capacity, edges)
    monkeypatch.setitem(sys.modules, "ortools.graph.python", None)  # import fails
    without = relax(capacity, edges)
    assert with_flow is not None and without is not None
    assert (with_flow.method, without.method) == ("flow", "simplex")
    assert without.bound == pytest.approx(with_flow.bound, abs=sum(capacity) / FLOW_UNITS)


# --- rounds over matching's schools -------------------------------------------------------

ZONES = {
    "MX": ("America/Mexico_City", "es"),
    "KE": ("Africa/Nairobi", "en"),
    "FR": ("Europe/Paris", "fr"),
    "GB": ("Europe/London", "en"),
    "BR": ("America/Sao_Paulo", "pt"),
    "JP": ("Asia/Tokyo", "ja"),
    "IN": ("Asia/Kolkata", "en"),
    "EG": ("Africa/Cairo", "ar"),
}


def _school(n: int, country: str, **changes: Any) -> School:
    zone, language = ZONES[country]
    fields: dict[str, Any] = {
        "actor": f"https://s{n}.example/actors/s{n}",
        "name": f"School {n}",
        "country": country,
        "timezone": zone,
        "instruction": (language,),
        "learning": ("en",) if language != "en" else ("fr",),
        "ages": (9, 12),
        "subjects": frozenset({"science"}),
        "modes": frozenset({"async", "live"}),
        "school_days": ("mon", "tue", "wed", "thu", "fri"),
        "school_hours": ("08:00", "14:00"),
        "terms": (),
        "capacity": 1,
    }
    fields.update(changes)
    return School(**fields)


def _generated(count: int, seed: int) -> list[School]:
    rng = random.Random(seed)
    learned = ["en", "fr", "es", "pt", "ar", "ja"]
    schools = []
    for n in range(count):
        country = rng.choice(list(ZONES))
        language = ZONES[country][1]
        low = rng.randint(6, 14)
        schools.append(
            _school(
                n,
                country,
                learning=tuple(sorted({rng.choice(learned)} - {language})),
                ages=(low, low + rng.randint(1, 4)),
                modes=frozenset(rng.choice([("async",), ("live",), ("async", "live")])),
                capacity=rng.choice([1, 1, 2, 3]),
            )
        )
    return schools


def _max_coverage(capacity: list[int], edges: list[tuple[int, int]]) -> int:
    """The most schools any b-matching of these edges covers: an integer program (HiGHS)."""
    n, m = len(capacity), len(edges)
    # Variables: x_e (edge used) then y_v (school covered); maximise the y's.
    rows = lil_matrix((2 * n, m + n))
    for index, (u, v) in enumerate(edges):
        for x in (u, v):
            rows[x, index] = 1  # degree <= capacity
            rows[n + x, index] = -1  # covered <= degree
    for x in range(n):
        rows[n + x, m + x] = 1
    upper = np.array([*capacity, *([0] * n)], dtype=float)
    result = milp(
        c=np.array([0.0] * m + [-1.0] * n),
        constraints=LinearConstraint(rows.tocsr(), -np.inf, upper),
        integrality=np.ones(m + n),
        bounds=Bounds(0, 1),
    )
    assert result.success
    return round(-result.fun)


def test_round_over_generated_schools_covers_as_the_optimum_does() -> None:
    schools = _generated(2000, seed=3)
    score = PairScorer(schools, CTX)
    report = pairing_round(schools, score, pair_explainer(CTX), WEEK)
    by_actor = {s.actor: s for s in schools}
    for actor, partners in report.partners.items():
        assert len(partners) <= by_actor[actor].capacity
        for partner, _ in partners:
            assert by_actor[partner].country != by_actor[actor].country
            assert evaluate(by_actor[actor], by_actor[partner], CTX) is not None
    graph = candidate_graph(schools, score, WEEK)
    optimum = _max_coverage([s.capacity for s in schools], list(graph.edges))
    assert report.paired == optimum  # every school the optimum pairs gets a partner
    assert report.with_candidates >= optimum
    assert {u.actor for u in report.unpaired} == set(by_actor) - set(report.partners)
    assert report.bound is None and report.score_bound is None  # small: the exact core
    # The same schools as a large round (components above 500 schools): the relaxation.
    large = pairing_round(schools, score, pair_explainer(CTX), WEEK, chunk=500)
    assert large.paired == optimum and large.score_bound is not None
    assert large.total_score <= large.score_bound + 1e-6
    assert large.exact == (large.phases["fractional"] == 0)
    if large.exact:  # the optimum: no assignment pairing as many scores more
        assert large.total_score == pytest.approx(large.score_bound)
        assert large.total_score >= report.total_score - 1e-6
    for pair in large.pairs:
        assert pair.score == pytest.approx(pair_score(by_actor[pair.a], by_actor[pair.b], CTX))


def test_pair_score_is_the_mean_of_both_directions() -> None:
    schools = _generated(300, seed=5)
    scorer = PairScorer(schools, CTX)
    rng = random.Random(1)
    picks = [rng.sample(range(len(schools)), 2) for _ in range(400)]
    got = scorer.scores(np.array([a for a, _ in picks]), np.array([b for _, b in picks]))
    for value, (a, b) in zip(got.tolist(), picks, strict=True):
        there, back = evaluate(schools[a], schools[b], CTX), evaluate(schools[b], schools[a], CTX)
        expected = None if there is None or back is None else (there.score + back.score) / 2
        assert pair_score(schools[a], schools[b], CTX) == expected
        assert (expected is None and np.isnan(value)) or value == expected


def test_unpaired_schools_say_why() -> None:
    schools = [
        # Languages kept apart, so each school's candidates are the ones named here.
        _school(0, "MX", learning=("de",)),  # the one school KE 1 and KE 2 can pair with
        _school(1, "KE", instruction=("sw",), learning=("es",)),
        _school(2, "KE", instruction=("sw",), learning=("es",)),
        _school(3, "JP", instruction=("ja",), learning=("ko",)),  # no one uses ja or ko
        _school(4, "FR", learning=("it",), capacity=0),
        # live only, with no hour in common
        _school(
            5, "EG", learning=("he",), modes=frozenset({"live"}), school_hours=("22:00", "23:00")
        ),
        _school(6, "GB", learning=("ar",), modes=frozenset({"live"})),
    ]
    report = pairing_round(schools, PairScorer(schools, CTX), pair_explainer(CTX), WEEK)
    reasons = {u.actor.split("//s")[1].split(".")[0]: u.reason for u in report.unpaired}
    assert report.paired == 2 and report.with_candidates == 3
    (alone,) = {"1", "2"} & set(reasons)
    assert reasons[alone].startswith("all 1 of its candidates reached their capacity")
    assert "https://s0.example/actors/s0 (1/1)" in reasons[alone]
    assert reasons["3"].startswith("no opted-in school abroad shares a working language")
    assert reasons["4"] == "no free capacity (capacity 0)"
    assert "https://s6.example/actors/s6: No way to work together" in reasons["5"]


# --- the command on a real hub ------------------------------------------------------------


async def _follow(follower: LiveNode, target: LiveNode) -> None:
    document = await target.run(target.node.actor_document)
    await follower.run(lambda: follower.node.follow(document))


@dataclass
class Network:
    hub: Path
    loop: asyncio.AbstractEventLoop
    nodes: list[LiveNode]

    def run(self, fn: Callable[[], T]) -> T:
        """`fn` in a thread while the nodes serve (the CLI talks to them)."""
        return self.loop.run_until_complete(asyncio.to_thread(fn))


@pytest.fixture
def network(tmp_path: Path) -> Iterator[Network]:
    """A served hub whose directory holds the listings of served schools that follow it:
    three opted in (MX, KE, FR), one not (GB)."""
    loop = asyncio.new_event_loop()
    nodes: list[LiveNode] = []

    async def build() -> None:
        hub = await start_node(tmp_path, "hub", kind="hub")
        nodes.append(hub)
        for handle, country, zone, languages, opted in (
            ("mx", "MX", "America/Mexico_City", {"instruction": ["es"], "learning": ["en"]}, True),
            ("ke", "KE", "Africa/Nairobi", {"instruction": ["en"], "learning": ["es"]}, True),
            ("fr", "FR", "Europe/Paris", {"instruction": ["fr"], "learning": ["en"]}, True),
            ("gb", "GB", "Europe/London", {"instruction": ["en"], "learning": ["fr"]}, False),
        ):
            school = await start_node(
                tmp_path,
                handle,
                name=f"School {handle}",
                country=country,
                timezone=zone,
                languages=languages,
                pairing_rounds=opted,
            )
            nodes.append(school)
            await _follow(school, hub)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            count = await hub.run(
                lambda: hub.node.store.db.execute(
                    "SELECT count(*) FROM directory WHERE key_confirmed_at IS NOT NULL"
                ).fetchone()[0]
            )
            if count == 4:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the hub did not list the four schools")

    async def close() -> None:
        for live in nodes:
            await live.server.close()
            live.node.close()

    loop.run_until_complete(build())
    try:
        yield Network(tmp_path / "hub", loop, nodes)
    finally:
        loop.run_until_complete(close())
        loop.close()


def _round(data: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["pairing-round", "--data", str(data), *args], prog_name="amity")


@pytest.fixture
def hub_with_listings(network: Network) -> Path:
    return network.hub


def test_dry_run_json_on_a_hub_pairs_the_opted_in_listings(hub_with_listings: Path) -> None:
    result = _round(hub_with_listings, "--dry-run", "--json", "--week", "2026-12-07")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["week"] == "2026-12-07" and report["dry_run"] is True
    assert report["schools"] == 3  # gb did not opt in
    countries = {s["country"] for s in [*report["paired_schools"], *report["unpaired"]]}
    assert countries == {"MX", "KE", "FR"}
    # ke teaches in en, which fr learns, and learns es, which mx teaches in; mx and fr share
    # no working language. Each has 2 free places: ke takes both.
    names = {s["actor"]: s["country"] for s in report["paired_schools"]}
    assert sorted(sorted(names[a] for a in p["schools"]) for p in report["pairs"]) == [
        ["FR", "KE"],
        ["KE", "MX"],
    ]
    ke = next(s for s in report["paired_schools"] if s["country"] == "KE")
    assert sorted(p["country"] for p in ke["partners"]) == ["FR", "MX"]
    assert report["unpaired"] == []
    assert report["with_candidates"] == 3 and report["share_paired"] == 1.0
    assert "progress" not in result.stdout
    assert "matching:" in result.stderr  # progress goes to stderr
    kenya = _round(hub_with_listings, "--dry-run", "--country", "ke", "--country", "MX")
    assert kenya.exit_code == 0, kenya.stderr
    assert "(KE, MX): 2 opted-in schools" in kenya.stdout
    assert "Dry run: no proposals sent." in kenya.stdout


def test_pairing_round_errors_are_one_line(hub_with_listings: Path, school: Any) -> None:
    wrong = _round(hub_with_listings, "--dry-run", "--country", "Kenya")
    assert wrong.exit_code == 2
    assert wrong.stderr.strip() == (
        "error: Invalid value for '--country': 'Kenya' is a country name, not an ISO 3166-1 "
        "alpha-2 code; did you mean KE (Kenya)? (see: amity pairing-round --help)"
    )
    monday = _round(hub_with_listings, "--dry-run", "--week", "2026-12-08")
    assert monday.stderr.strip().startswith("error: --week 2026-12-08: is a Tuesday")
    at_school = _round(school.config.data_dir, "--dry-run")
    assert at_school.exit_code == 1
    assert at_school.stderr.strip().startswith(
        "error: this node is a school; only authority and hub nodes run pairing rounds"
    )


def test_a_round_sends_each_pair_a_proposal_arranged_by_the_hub(network: Network) -> None:
    result = network.run(
        lambda: _round(network.hub, "--json", "--week", "2026-12-07", "--allow-private-network")
    )
    assert result.exit_code == 0, (result.stderr, result.exception)
    report = json.loads(result.stdout)
    assert report["dry_run"] is False and report["proposals_sent"] == 2
    assert all(item["proposal"] and item["error"] is None for item in report["proposals"])
    hub = network.nodes[0]
    rows = network.loop.run_until_complete(
        hub.run(
            lambda: hub.node.store.db.execute(
                "SELECT role, state FROM partnerships WHERE handle = 'hub'"
            ).fetchall()
        )
    )
    assert sorted(rows) == [("arranged", "pending")] * 2
    ke = next(n for n in network.nodes if n.node.config.handle == "ke")

    async def offers_arrived() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            count = await ke.run(
                lambda: ke.node.store.db.execute(
                    "SELECT count(*) FROM partnerships WHERE role = 'incoming'"
                ).fetchone()[0]
            )
            if count == 2:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("ke did not receive both arranged proposals")

    network.loop.run_until_complete(offers_arrived())
    # A second round finds both pairs already arranged: nothing new is sent, and it says why.
    again = network.run(lambda: _round(network.hub, "--json", "--allow-private-network"))
    assert again.exit_code == 0, again.stderr
    repeat = json.loads(again.stdout)
    assert repeat["proposals_sent"] == 0
    assert all("already has a proposal" in item["error"] for item in repeat["proposals"])


def test_a_round_with_no_opted_in_school_says_how_schools_take_part(tmp_path: Path) -> None:
    data = str(tmp_path / "hub")
    runner = CliRunner()
    made = runner.invoke(
        cli,
        [
            "init",
            "--data",
            data,
            "--name",
            "hub",
            "--kind",
            "hub",
            "--base-url",
            "http://h.example",
        ],
    )
    assert made.exit_code == 0, made.output
    result = runner.invoke(cli, ["pairing-round", "--dry-run", "--data", data])
    assert result.exit_code == 0, result.output
    assert ": 0 opted-in schools.\n" in result.output
    assert 'setting "pairing_rounds": true in its profile' in result.output


@given(
    st.lists(
        st.tuples(
            st.integers(0, 9), st.sampled_from([-3.0, 0.0, 1.5, 2.25, 40.0]), st.integers(0, 9)
        ),
        max_size=60,
    ),
    st.sampled_from([10, 2**31]),  # 2**31 schools: the key would overflow, lexsort is used
)
def test_best_first_order_is_lexsort_by_school_score_and_index(
    rows: list[tuple[int, float, int]], total: int
) -> None:
    rows.sort(key=lambda row: row[0])  # the candidate graph's rows come by school
    mine = np.array([r[0] for r in rows], np.int64)
    values = np.array([r[1] for r in rows], np.float64)
    theirs = np.array([r[2] for r in rows], np.int64)
    expected = np.lexsort((theirs, -values, mine))
    assert _best_first_order(mine, values, theirs, total).tolist() == expected.tolist()
