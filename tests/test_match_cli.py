"""`amity match` on real node data directories, and what `amity directory` shows for it."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from amity.cli.main import cli
from amity.federation import directory
from amity.node.node import Node, init_node
from amity.protocol.live_window import coming_monday
from amity.protocol.profile import validate_profile
from amity.protocol.profile_document import profile_document
from amity.protocol.proofs import ProofInfo

from .helpers import EXAMPLE_PROFILE, amity, free_port, make_school, query, wait_until

PRIVATE = "--allow-private-network"
# The example school (Benito Juárez, MX, es taught, en learned, Mexico City 08:00-14:00,
# i.e. 14:00-20:00 UTC in December, in term until Friday 2026-12-18).
LEEDS = {
    "name": "Leeds Primary",
    "country": "GB",
    "timezone": "Europe/London",
    "languages": {"instruction": ["en"], "learning": ["es"]},
    "school_hours": ["08:00", "16:00"],
    "terms": [],
}
HAMBURG = {
    "name": "Hamburg Grundschule",
    "country": "DE",
    "timezone": "Europe/Berlin",
    "languages": {"instruction": ["de"], "learning": ["fr"]},
}


def _add(
    node: Node, handle: str, changes: dict[str, Any], days: int = 3, paused: bool = False
) -> str:
    """List a school in `node`'s directory as if it came from a hub (the directory trusts
    its callers to have checked the proof)."""
    updated = (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    actor = f"https://{handle}.example/actors/{handle}"
    data = validate_profile({**EXAMPLE_PROFILE, **changes})
    document = profile_document(
        data,
        profile_id=f"{actor}/profile",
        actor_id=actor,
        published=updated,
        updated=updated,
        paused=paused,
    )
    document["proof"] = {"type": "DataIntegrityProof"}
    checked = ProofInfo(f"{actor}#ed25519-key", updated, bytes(32))
    directory.store_profile(node.store.db, document, time.time(), [], checked, time.time())
    return actor


def _run(node: Node, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--data", str(node.config.data_dir)])


def _json(node: Node, *args: str) -> Any:
    result = _run(node, *args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_match_on_real_served_nodes_ranks_the_tandem_and_explains_the_rest(
    tmp_path: Path, served: Any
) -> None:
    ports = [free_port() for _ in range(3)]
    benito = make_school(tmp_path, "benito", ports[0])
    leeds = make_school(tmp_path, "leeds", ports[1], **LEEDS)
    hamburg = make_school(tmp_path, "hamburg", ports[2], **HAMBURG)
    for data, port in zip((benito, leeds, hamburg), ports, strict=True):
        served(data, port, PRIVATE)
    amity("follow", f"leeds@127.0.0.1:{ports[1]}", PRIVATE, data=benito)
    amity("follow", f"hamburg@127.0.0.1:{ports[2]}", PRIVATE, data=benito)
    leeds_actor = f"http://127.0.0.1:{ports[1]}/actors/leeds"
    hamburg_actor = f"http://127.0.0.1:{ports[2]}/actors/hamburg"
    wait_until(
        lambda: query(benito, "SELECT count(*) FROM following WHERE state = 'accepted'") == [(2,)]
    )
    # Each publishes a new version of its profile, which reaches its new follower.
    for data, changes in ((leeds, LEEDS), (hamburg, HAMBURG)):
        path = tmp_path / f"{data.name}-again.json"
        path.write_text(json.dumps({**EXAMPLE_PROFILE, **changes}))
        amity("profile", "import", str(path), data=data)
    wait_until(
        lambda: (
            {row[0] for row in query(benito, "SELECT actor FROM directory")}
            >= {leeds_actor, hamburg_actor}
        )
    )

    found = json.loads(amity("match", "--json", "--week", "2026-12-14", data=benito).stdout)
    # Hamburg (de taught, fr learned) has no working language with es/en: left out.
    assert [item["actor"] for item in found] == [leeds_actor]
    item = found[0]
    assert (item["name"], item["country"]) == ("Leeds Primary", "GB")
    assert item["working_languages"] == ["en", "es"] and item["tandem"] is True
    # London +0 08:00-16:00 against Mexico City 14:00-20:00 UTC: 14:00-16:00, 2 h a day,
    # Monday to Friday (Benito's term ends Friday 12-18): 600 minutes in 5 windows.
    assert (item["live_minutes"], item["live_possible"], len(item["windows"])) == (600, True, 5)
    assert item["windows"][0] == {
        "start": "2026-12-14T14:00:00Z",
        "end": "2026-12-14T16:00:00Z",
        "local_self": {"start": "2026-12-14T08:00:00-06:00", "end": "2026-12-14T10:00:00-06:00"},
        "local_partner": {
            "start": "2026-12-14T14:00:00+00:00",
            "end": "2026-12-14T16:00:00+00:00",
        },
    }
    assert (
        "Live calls possible: 600 minutes of school hours in common that week, in 5 windows."
        in (item["reasons"])
    )
    # The week after Benito's term: no windows, still a match for asynchronous exchange.
    later = json.loads(amity("match", "--json", "--week", "2026-12-21", data=benito).stdout)
    assert (later[0]["live_minutes"], later[0]["live_possible"]) == (0, False)

    text = amity("match", "--week", "2026-12-14", data=benito).stdout
    assert text.startswith("Partner suggestions for Escuela Primaria Benito Juárez, week of ")
    assert "1. Leeds Primary  [GB]  score " in text
    assert "window: Mon 14 Dec 08:00-10:00 your time = Mon 14 Dec 14:00-16:00 theirs" in text

    explained = amity("match", "--explain", f"hamburg@127.0.0.1:{ports[2]}", data=benito).stdout
    assert explained.splitlines()[1] == (
        "  - No working language: you teach in es and learn en; they teach in de and learn fr."
    )

    # Once proposed to, Leeds is no longer suggested (a second proposal would be refused),
    # and --explain says why.
    amity("propose", leeds_actor, PRIVATE, data=benito)
    assert json.loads(amity("match", "--json", "--week", "2026-12-14", data=benito).stdout) == []
    explained = amity("match", "--explain", leeds_actor, data=benito).stdout
    assert explained.splitlines()[1:] == [
        "  - You already have a partnership or a pending proposal with this school "
        "(see: amity proposals).",
        f"  {leeds_actor}",
    ]


@pytest.fixture
def listed(school: Node) -> Node:
    """The example school (es/en, MX) with schools abroad in its directory."""
    _add(school, "leeds", LEEDS)
    _add(school, "hamburg", HAMBURG)
    _add(school, "lyon", {"name": "Collège Lumière", "country": "FR",
                          "timezone": "Europe/Paris",
                          "languages": {"instruction": ["fr"], "learning": ["es"]}})  # fmt: skip
    return school


def test_json_is_best_first_with_every_field(listed: Node) -> None:
    found = _json(listed, "match", "--week", "2026-12-07")
    assert [item["name"] for item in found] == ["Leeds Primary", "Collège Lumière"]
    assert found[0]["score"] > found[1]["score"]
    lyon = found[1]
    # A working language through a language being learned: Lyon learns es, Benito's own.
    assert (lyon["working_languages"], lyon["tandem"]) == (["es"], False)
    # Paris +1 08:00-14:00 (07:00-13:00 UTC) never meets Mexico City's 14:00-20:00 UTC.
    assert (lyon["live_minutes"], lyon["windows"], lyon["live_possible"]) == (0, [], False)
    assert {
        "actor",
        "name",
        "country",
        "score",
        "working_languages",
        "tandem",
        "live_minutes",
        "live_possible",
        "windows",
        "reasons",
    } <= set(lyon)
    assert _json(listed, "match", "--week", "2026-12-07", "--limit", "1")[0]["name"] == (
        "Leeds Primary"
    )


def test_explain_names_each_hard_constraint(listed: Node) -> None:
    cases = {
        "puebla": (
            {"name": "Puebla", "country": "MX"},
            "Same country (MX): partners are schools abroad.",
        ),
        "full": (
            {**LEEDS, "name": "Full School", "capacity": 0},
            "Full School has no free partnership place left.",
        ),
        "teens": (
            {**LEEDS, "name": "Teens", "ages": [15, 18]},
            "Ages do not overlap: your pupils are 9-12, theirs 15-18.",
        ),
        "berlin": (
            {
                **HAMBURG,
                "languages": {"instruction": ["de"], "learning": ["es"]},
                "modes": ["live"],
                "name": "Berlin Live",
            },
            "No way to work together: you offer async, live, they offer live, and there is no "
            "live window of 30 minutes that week.",
        ),
        "resting": (
            {**LEEDS, "name": "Resting"},
            "Resting has paused its listing (on holiday, or full).",
        ),
    }
    for handle, (changes, sentence) in cases.items():
        actor = _add(listed, handle, changes, paused=handle == "resting")
        result = _run(listed, "match", "--explain", actor, "--week", "2026-12-07")
        assert result.exit_code == 0, result.stderr
        assert result.stdout.splitlines()[1:] == [f"  - {sentence}", f"  {actor}"], handle
        explained = _json(listed, "match", "--explain", f"{handle}@{handle}.example")
        assert (explained["candidate"], explained["exclusions"]) == (False, [sentence])
    shown = [item["name"] for item in _json(listed, "match", "--week", "2026-12-07")]
    assert shown == ["Leeds Primary", "Collège Lumière"]


def test_explain_a_blocked_school_and_a_full_own_school(listed: Node) -> None:
    leeds = "https://leeds.example/actors/leeds"
    assert _run(listed, "block", leeds).exit_code == 0
    result = _run(listed, "match", "--explain", leeds)
    assert result.stdout.splitlines()[1] == (
        f"  - You block this school (amity unblock {leeds} lifts the block)."
    )
    assert _json(listed, "match", "--explain", "leeds@leeds.example")["exclusions"] == [
        f"You block this school (amity unblock {leeds} lifts the block)."
    ]
    assert "Leeds Primary" not in [item["name"] for item in _json(listed, "match")]

    listed.publish_profile({**EXAMPLE_PROFILE, "capacity": 0})
    explained = _json(listed, "match", "--explain", "https://lyon.example/actors/lyon")
    assert explained["exclusions"] == [
        "Your school has no free partnership place left (capacity used up)."
    ]
    assert _json(listed, "match") == []


def test_explain_a_candidate_shows_its_full_result(listed: Node) -> None:
    result = _run(listed, "match", "--explain", "leeds@leeds.example", "--week", "2026-12-14")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "Leeds Primary is a candidate for Escuela Primaria Benito Juárez in the week of 2026-12-14:"
    )
    assert "    - Working languages: en, es." in lines
    explained = _json(listed, "match", "--explain", "leeds@leeds.example", "--week", "2026-12-14")
    assert explained["candidate"] is True and explained["exclusions"] == []
    assert explained["match"]["live_minutes"] == 600


def test_default_week_is_the_coming_monday(listed: Node) -> None:
    before = coming_monday(datetime.now(UTC))
    text = _run(listed, "match").stdout
    after = coming_monday(datetime.now(UTC))
    assert f"week of Monday {before}" in text or f"week of Monday {after}" in text


def test_clear_errors(listed: Node, tmp_path: Path) -> None:
    for args, message in [
        (
            ("--week", "2026-12-09"),
            "--week 2026-12-09: is a Wednesday, not a Monday; did you mean 2026-12-07?",
        ),
        (
            ("--week", "next"),
            f"--week 'next': give a Monday as YYYY-MM-DD, e.g. {coming_monday(datetime.now(UTC))}",
        ),
        (
            ("--week", "9999-12-27"),  # a Monday, at the calendar's end
            "--week 9999-12-27: give a week within ten years of "
            f"{coming_monday(datetime.now(UTC))}",
        ),
        (
            ("--week", "2026-W51-1"),  # an ISO week date: Python reads it, a teacher would not
            "--week '2026-W51-1': give a Monday as YYYY-MM-DD, e.g. "
            f"{coming_monday(datetime.now(UTC))}",
        ),
        (
            ("--explain", "nobody@nowhere.example"),
            "nobody@nowhere.example is not in this node's directory; `amity directory` lists "
            "the schools it knows",
        ),
        (("--explain", "leeds"), "'leeds': name a school by actor URL or as NAME@HOST"),
        (
            ("--explain", listed.urls.id),
            f"{listed.urls.id} is this node's own school; name another school",
        ),
    ]:
        result = _run(listed, "match", *args)
        assert (result.exit_code, result.stderr) == (1, f"error: {message}\n"), args

    empty = init_node(tmp_path / "empty", handle="e", base_url="http://127.0.0.1:1", kind="school")
    result = _run(empty, "match")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: this node has no school profile yet; import one with: "
        f"amity profile import FILE.json --data {empty.config.data_dir}\n"
    )
    empty.close()
    hub = init_node(tmp_path / "hub", handle="h", base_url="http://127.0.0.1:2", kind="hub")
    result = _run(hub, "match")
    assert (
        result.stderr == "error: this node is a hub; `amity match` suggests partners for a school\n"
    )
    hub.close()


def test_directory_shows_timetable_and_capacity_and_tells_teaches_from_learns(
    listed: Node,
) -> None:
    leeds = next(i for i in _json(listed, "directory") if i["name"] == "Leeds Primary")
    assert leeds["school_days"] == ["mon", "tue", "wed", "thu", "fri"]
    assert leeds["school_hours"] == ["08:00", "16:00"]
    assert leeds["terms"] == []
    assert leeds["capacity"] == 2
    hamburg = next(i for i in _json(listed, "directory") if i["name"] == "Hamburg Grundschule")
    assert hamburg["terms"] == [{"start": "2026-08-24", "end": "2026-12-18"}]

    def names(*args: str) -> list[str]:
        return [item["name"] for item in _json(listed, "directory", *args)]

    assert names("--teaches", "en") == ["Leeds Primary"]
    assert names("--learns", "es") == ["Collège Lumière", "Leeds Primary"]
    assert names("--teaches", "es") == []
    assert names("--learns", "en") == []
    # --language: taught in or being learned, as before.
    assert names("--language", "es") == ["Collège Lumière", "Leeds Primary"]
    assert names("--language", "de") == ["Hamburg Grundschule"]
    assert _run(listed, "directory", "--teaches", "English").stderr.startswith("error: ")

    text = _run(listed, "directory", "--teaches", "de").stdout
    assert (
        "    school days mon-fri 08:00-14:00; terms 2026-08-24..2026-12-18; 2 partnership places\n"
    ) in text
