"""The whole discovery network as real `amity serve` processes on 127.0.0.1: four schools, two
hubs that follow each other and an authority, driven only through the `amity` command."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .helpers import amity, free_port, make_school, query, wait_until

PRIVATE = "--allow-private-network"
SCHOOLS = {"s1": "MX", "s2": "KE", "s3": "NP", "s4": "FR"}


def _make(tmp_path: Path, name: str, kind: str, port: int) -> Path:
    data = tmp_path / name
    amity(
        "init", "--name", name, "--kind", kind, "--base-url", f"http://127.0.0.1:{port}", data=data
    )
    with (data / "amity.toml").open("a") as config:
        config.write("\n[federation]\nfirst_retry_seconds = 1\n")
    return data


def _listed(data: Path) -> set[str]:
    return {row[0] for row in query(data, "SELECT actor FROM directory WHERE deleted_at IS NULL")}


def _directory(data: Path, *args: str) -> dict[str, dict[str, Any]]:
    listings = json.loads(amity("directory", "--json", *args, data=data).stdout)
    return {item["actor"]: item for item in listings}


def _capacity(data: Path, actor: str) -> int | None:
    rows = query(data, "SELECT document FROM directory WHERE actor = ?", actor)
    return json.loads(rows[0][0])["capacity"] if rows and rows[0][0] else None


def _endorsers(data: Path, actor: str) -> list[str]:
    """What `amity directory --json` says endorses `actor` (read through the database, to
    poll cheaply; the test checks the command's own output at each step)."""
    rows = query(
        data,
        "SELECT authority FROM endorsements e WHERE school = ? AND (expires IS NULL OR "
        "expires > strftime('%Y-%m-%dT%H:%M:%SZ', 'now')) "
        "AND NOT EXISTS (SELECT 1 FROM revocations r WHERE r.id = e.id)",
        actor,
    )
    return [row[0] for row in rows]


def test_four_schools_two_hubs_and_an_authority(tmp_path: Path, served: Any) -> None:
    ports = {name: free_port() for name in ["hub1", "hub2", "ministry", *SCHOOLS]}
    data = {
        "hub1": _make(tmp_path, "hub1", "hub", ports["hub1"]),
        "hub2": _make(tmp_path, "hub2", "hub", ports["hub2"]),
        "ministry": _make(tmp_path, "ministry", "authority", ports["ministry"]),
    }
    for name, country in SCHOOLS.items():
        data[name] = make_school(tmp_path, name, ports[name], country=country)
    for name, path in data.items():
        served(path, ports[name], PRIVATE)
    actor = {name: f"http://127.0.0.1:{port}/actors/{name}" for name, port in ports.items()}
    handle = {name: f"{name}@127.0.0.1:{port}" for name, port in ports.items()}
    schools = list(SCHOOLS)

    # The hubs follow each other; two schools and the authority follow hub1, two hub2.
    for follower, hub in [
        ("hub1", "hub2"),
        ("hub2", "hub1"),
        ("s1", "hub1"),
        ("s2", "hub1"),
        ("s3", "hub2"),
        ("s4", "hub2"),
        ("ministry", "hub1"),
    ]:
        amity("follow", handle[hub], PRIVATE, data=data[follower])

    everyone = {actor[name] for name in schools}
    wait_until(lambda: all(_listed(data[n]) == everyone for n in [*schools, "hub1", "hub2"]), 30)
    seen_by_s4 = _directory(data["s4"])
    assert set(seen_by_s4) == everyone - {actor["s4"]}  # a school never lists itself
    assert {item["country"] for item in seen_by_s4.values()} == {
        country for name, country in SCHOOLS.items() if name != "s4"
    }
    assert all(item["endorsed_by"] == [] and not item["verified"] for item in seen_by_s4.values())

    # An update crosses both hubs (timed: the trip sets how long an endorsement below lasts).
    trip_started = time.monotonic()
    profile = json.loads(amity("profile", "show", "--json", data=data["s2"]).stdout)
    changed = tmp_path / "s2-changed.json"
    changed.write_text(json.dumps({**profile, "capacity": 9}))
    amity("profile", "import", str(changed), data=data["s2"])
    wait_until(lambda: all(_capacity(data[n], actor["s2"]) == 9 for n in schools), 30)
    trip = time.monotonic() - trip_started

    # The authority endorses s1 for good and s2 until shortly; s4 trusts the authority.
    # "Shortly" outlasts the steps that see s2's endorsement in force (a trip across the
    # hubs and a few commands) many times over, however slow this machine is today.
    lasts = max(10, round(10 * trip))
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=lasts)
    amity("endorse", handle["s1"], PRIVATE, data=data["ministry"])
    amity(
        "endorse",
        actor["s2"],
        "--expires",
        expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        PRIVATE,
        data=data["ministry"],
    )
    trusted = amity("trust", handle["ministry"], PRIVATE, data=data["s4"])
    assert actor["ministry"] in trusted.stdout
    for name in ("s3", "s4"):
        wait_until(
            lambda n=name: (
                _endorsers(data[n], actor["s1"]) == [actor["ministry"]]
                and _endorsers(data[n], actor["s2"]) == [actor["ministry"]]
            ),
            30,
        )
    seen_by_s4 = _directory(data["s4"])
    seen_by_s3 = _directory(data["s3"])
    for name in ("s1", "s2"):
        assert seen_by_s4[actor[name]]["endorsed_by"] == [actor["ministry"]]
        assert seen_by_s4[actor[name]]["verified"] is True  # s4 trusts the ministry
        assert seen_by_s3[actor[name]]["endorsed_by"] == [actor["ministry"]]
        assert seen_by_s3[actor[name]]["verified"] is False  # s3 does not
    assert not seen_by_s4[actor["s3"]]["verified"]
    verified = _directory(data["s4"], "--verified")
    assert set(verified) == {actor["s1"], actor["s2"]}
    assert set(_directory(data["s3"], "--endorsed-by", actor["ministry"])) == set(verified)
    assert _directory(data["s3"], "--verified") == {}

    # Revocation reaches everyone, through both hubs; s1 stops carrying it.
    amity("endorse", "--revoke", handle["s1"], data=data["ministry"])
    wait_until(lambda: all(_endorsers(data[n], actor["s1"]) == [] for n in schools), 30)
    assert _directory(data["s4"])[actor["s1"]]["verified"] is False
    assert _directory(data["s3"])[actor["s1"]]["endorsed_by"] == []
    wait_until(lambda: "No endorsements" in amity("endorsements", data=data["s1"]).stdout, 30)
    issued = json.loads(amity("endorsements", "--json", data=data["ministry"]).stdout)
    assert {(row["school"], row["revoked_at"] is not None) for row in issued} == {
        (actor["s1"], True),
        (actor["s2"], False),
    }

    # A withdrawal crosses both hubs and leaves tombstones.
    amity("profile", "delete", "--yes", data=data["s3"])
    gone = everyone - {actor["s3"]}
    wait_until(lambda: all(_listed(data[n]) == gone for n in [*schools, "hub1", "hub2"]), 30)
    assert set(_directory(data["s1"])) == gone - {actor["s1"]}

    # Expiry: s2's endorsement stops counting everywhere with no message at all.
    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 1)
    assert _directory(data["s4"])[actor["s2"]]["verified"] is False
    assert _directory(data["s3"])[actor["s2"]]["endorsed_by"] == []
    assert _directory(data["s4"], "--verified") == {}

    # Nothing arrived twice: each hub relayed each profile version and each signed Delete
    # (withdrawal, revocation) once, whichever way it reached the hub.
    for hub in ("hub1", "hub2"):
        rows = query(
            data[hub],
            "SELECT json_extract(document, '$.object.id'), "
            "coalesce(json_extract(document, '$.object.updated'), "
            "json_extract(document, '$.object.object.id')), count(*) "
            "FROM outbox WHERE type = 'Announce' GROUP BY 1, 2",
        )
        assert rows and all(count == 1 for _, _, count in rows), rows
