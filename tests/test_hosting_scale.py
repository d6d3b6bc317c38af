"""A node hosting many schools stays fair and calm: the delivery queue takes turns between
schools, re-publishing for liveness is spread over the week, keys are read lazily into a
bounded cache."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from amity.federation import delivery_queue
from amity.node import liveness
from amity.node.key_cache import KeyCache
from amity.node.keys import generate_keys
from amity.node.node import Node, init_node
from amity.node.outbox import send

from .helpers import EXAMPLE_PROFILE


class SteppedClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 0, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _ministry(tmp_path: Path, clock: Any, schools: int) -> Node:
    node = init_node(
        tmp_path / "ministry",
        handle="ministry",
        base_url="http://127.0.0.1:8080",
        kind="authority",
        clock=clock,
    )
    keys = generate_keys()  # shared here only to keep the test fast
    for n in range(schools):
        node.add_school(f"school-{n:03d}", EXAMPLE_PROFILE, keys)
    return node


def test_one_schools_big_fan_out_does_not_starve_the_others(tmp_path: Path) -> None:
    clock = SteppedClock()
    with _ministry(tmp_path, clock, 3) as node:
        db, now = node.store.db, clock().timestamp()

        def queue(handle: str, count: int, tag: str) -> None:
            activity = {"id": f"https://x.example/{tag}", "type": "Update", "actor": handle}
            inboxes = [f"https://peer{n}.example/inbox" for n in range(count)]
            with db.atomic():
                send(db, handle, activity, inboxes, "2026-03-02T00:00:00Z", now)

        queue("school-000", 5000, "big")
        queue("school-001", 1, "small")
        queue("school-002", 3, "three")
        first = delivery_queue.due_deliveries(db, now, set(), 32, 60.0)
        handles = [d.handle for d in first]
        # The later schools' deliveries come in the first round, not after 5,000 others.
        assert handles.count("school-001") == 1 and handles.count("school-002") == 3
        assert handles.index("school-001") <= 2
        # And a school queuing later still goes before the bulk of the big one's.
        taken = ",".join(str(d.id) for d in first)
        db.execute(f"DELETE FROM deliveries WHERE id IN ({taken})")
        queue("school-001", 1, "later")
        second = delivery_queue.due_deliveries(db, now, set(), 32, 60.0)
        assert "school-001" in [d.handle for d in second[:3]]


def test_liveness_slots_spread_over_the_week() -> None:
    per_day = Counter(liveness.slot_offset(f"school-{n}") // 86400 for n in range(7000))
    assert set(per_day) == set(range(7))
    assert all(800 <= count <= 1200 for count in per_day.values())  # about 1,000 each


def test_each_school_republishes_once_a_week_at_its_own_slot(tmp_path: Path) -> None:
    clock = SteppedClock()
    with _ministry(tmp_path, clock, 24) as node:
        handles = node.school_handles()
        republished: Counter[str] = Counter()
        per_hour: list[int] = []
        versions = {h: node.store.profile(h).updated for h in handles}  # type: ignore[union-attr]
        start = clock.now
        for _hour in range(24 * 15):  # fifteen days, hour by hour
            clock.now += timedelta(hours=1)
            done, more = liveness.republish_due(node)
            assert not more
            per_hour.append(done)
            for handle in handles:
                updated = node.store.profile(handle).updated  # type: ignore[union-attr]
                if updated != versions[handle]:
                    republished[handle] += 1
                    versions[handle] = updated
        assert set(republished) == set(handles)
        # Two weeks on: each school twice (or thrice if its first slot came early).
        assert all(2 <= count <= 3 for count in republished.values())
        assert max(per_hour) <= 3  # never all at once
        assert clock.now - start == timedelta(days=15)
        # Never more than eight days between two versions.
        assert liveness.due_schools(node) == []


def test_keys_are_read_lazily_into_a_bounded_cache(tmp_path: Path) -> None:
    clock = SteppedClock()
    with _ministry(tmp_path, clock, 3) as node:
        data_dir = node.config.data_dir
    with Node.open(data_dir, clock) as node:
        assert node.key_cache is not None and len(node.key_cache) == 1  # the first account's
        cache = KeyCache(node.config.keys_dir, size=2)
        first = cache.get("school-000")
        cache.get("school-001")
        cache.get("school-002")
        assert len(cache) == 2
        again = cache.get("school-000")  # read again after it was evicted
        assert again is not first and again.ed25519_seed == first.ed25519_seed
        # A school's rotated keys are read again, not served stale.
        school = node.for_school("school-001")
        before = school.keys.ed25519_public
        school.rotate_keys()
        assert node.key_cache.get("school-001").ed25519_public != before
        fresh = KeyCache(node.config.keys_dir, size=2)
        assert fresh.get("school-001").ed25519_public == school.keys.ed25519_public
