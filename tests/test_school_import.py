"""`amity school import`: many hosted schools from a CSV or JSONL file, through the real
command, on a real node (served by `amity serve` where the schools must be reachable)."""

from __future__ import annotations

import json
import os
import signal
import urllib.parse
from pathlib import Path
from typing import Any

from amity.node.keys import generate_keys, load_keys, save_keys
from amity.node.node import Node
from amity.protocol.proofs import verify_with_actor

from .helpers import EXAMPLE_PROFILE, ROOT, ServedNode, amity, make_school, query, wait_until

CSV_HEADER = (
    "handle,name,country,timezone,languages.instruction,languages.learning,ages,modes,"
    "school_days,school_hours,capacity,terms"
)
CSV_ROWS = [
    "amani,Amani School,KE,Africa/Nairobi,en;sw,,10-13,async;live,mon;tue;wed,08:00-15:00,2,",
    "Escuela Sol,Escuela Sol,MX,America/Mexico_City,es,en,9-12,live,mon,08:00-14:00,1,",
    "hanami,Hanami School,JP,Tokyo,ja,en,12-15,live,Monday,08:30-15:00,1,2026-08-25",
    "tallinn,Tallinn School,EE,Europe/Tallinn,et,en;fi,11-14,async,mon;fri,08:00-14:00,3,",
    "amani,Second Amani,KE,Africa/Nairobi,en,,9-11,async,mon,08:00-12:00,1,",
]


def _handles(data: Path) -> list[str]:
    listed = json.loads(amity("school", "list", "--json", data=data).stdout)
    return [row["handle"] for row in listed]


def _import(data: Path, source: Path, *flags: str) -> Any:
    return amity("school", "import", str(source), *flags, data=data, check=False)


def test_bad_rows_are_each_reported_and_nothing_is_added(tmp_path: Path) -> None:
    data = make_school(tmp_path, "ministry", 8080)
    source = tmp_path / "schools.csv"
    source.write_text("\n".join([CSV_HEADER, *CSV_ROWS]) + "\n")
    result = _import(data, source)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: line")]
    assert errors == [
        "error: line 3, field 'handle': 'Escuela Sol' is not a handle: use 1-64 lower-case "
        "letters, digits, '_' or '-'; did you mean 'escuela-sol'?",
        "error: line 4 (handle 'hanami'), field 'timezone': 'Tokyo' is not a full zone name; "
        "did you mean Asia/Tokyo?",
        "error: line 4 (handle 'hanami'), field 'school_days[0]': 'Monday' is not a day code; "
        "did you mean mon?",
        "error: line 4 (handle 'hanami'), field 'terms': term 1 '2026-08-25' is not START/END "
        "(2026-08-24/2026-12-18)",
        "error: line 6, field 'handle': 'amani' is also the handle on line 2; each school needs "
        "its own (did you mean 'amani-2'?)",
    ]
    assert "3 rows of 5 have problems" in result.stderr
    assert "--skip-invalid to add the 2 schools that are good" in result.stderr
    assert _handles(data) == ["ministry"]

    dry = _import(data, source, "--dry-run", "--skip-invalid")
    assert dry.returncode == 1 and "2 of 5 rows can be added" in dry.stdout
    assert "Nothing was added" in dry.stdout and _handles(data) == ["ministry"]

    skipped = _import(data, source, "--skip-invalid")
    assert skipped.returncode == 1  # rows were refused
    assert "skipped: line 4 (handle 'hanami'), field 'timezone'" in skipped.stderr
    assert "Added 2 schools from schools.csv" in skipped.stdout
    assert "skipped 3 rows with problems" in skipped.stdout
    assert _handles(data) == ["amani", "ministry", "tallinn"]


def test_dry_run_of_a_good_file_adds_nothing_and_succeeds(tmp_path: Path) -> None:
    data = make_school(tmp_path, "ministry", 8080)
    result = _import(data, ROOT / "examples" / "schools.jsonl", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "4 of 4 rows can be added" in result.stdout
    assert _handles(data) == ["ministry"]


def test_whole_file_problems_are_one_clear_error(tmp_path: Path) -> None:
    data = make_school(tmp_path, "ministry", 8080)
    cases = {
        "empty.csv": (b"\xef\xbb\xbf\r\n", "empty.csv: the file is empty"),
        "latin.jsonl": ('{"name": "Juárez"}'.encode("latin-1"), "latin.jsonl line 1: byte 13"),
        "columns.csv": (b"handle,time_zone\nx,y\n", "did you mean 'timezone'?"),
        "schools.txt": (b"x", "give a .csv or .jsonl file"),
    }
    for name, (content, expected) in cases.items():
        (tmp_path / name).write_bytes(content)
        result = _import(data, tmp_path / name)
        assert result.returncode == 1 and expected in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    assert _handles(data) == ["ministry"]


def test_the_examples_import_as_real_served_accounts(tmp_path: Path, served: Any) -> None:
    from .helpers import free_port

    port = free_port()
    data = make_school(tmp_path, "ministry", port)
    node: ServedNode | None = None
    for name in ("schools.csv", "schools.jsonl"):
        if name == "schools.jsonl":  # the second file is imported while the node serves
            node = served(data, port)
        # A spreadsheet's export: byte-order mark and Windows line endings.
        source = tmp_path / name
        text = (ROOT / "examples" / name).read_text()
        source.write_bytes(("\ufeff" + text.replace("\n", "\r\n")).encode())
        result = _import(data, source)
        assert result.returncode == 0, result.stderr
        assert "Added 4 schools" in result.stdout
        assert "added 4 of 4 schools" in result.stderr  # progress at the end
    handles = [h for h in _handles(data) if h != "ministry"]
    assert len(handles) == 8
    with Node.open(data) as opened:
        for handle in handles:
            school = opened.for_school(handle)
            stored = school.profile()
            assert stored is not None and stored.document["attributedTo"] == school.urls.id
            verify_with_actor(stored.document, school.actor_document())  # its own key
    assert node is not None
    host = f"127.0.0.1:{port}"
    for handle in handles:
        resource = urllib.parse.quote(f"acct:{handle}@{host}")
        status, _, body = node.get(
            f"/.well-known/webfinger?resource={resource}", accept="application/jrd+json"
        )
        assert status == 200, (handle, body)
        links = json.loads(body)["links"]
        actor_url = next(link["href"] for link in links if link.get("rel") == "self")
        status, _, body = node.get(urllib.parse.urlparse(actor_url).path)
        actor = json.loads(body)
        assert status == 200 and actor["preferredUsername"] == handle
        status, _, body = node.get(urllib.parse.urlparse(actor["schoolProfile"]).path)
        assert status == 200
        verify_with_actor(json.loads(body), actor)


def _jsonl(count: int) -> str:
    rows = []
    for number in range(count):
        profile = {**EXAMPLE_PROFILE, "name": f"School {number}", "capacity": number % 5}
        rows.append(json.dumps({"handle": f"school-{number:03d}", **profile}))
    return "\n".join(rows) + "\n"


def _whole_schools(data: Path) -> list[str]:
    """Every hosted school's handle, each checked complete: keys, account, signed profile."""
    handles = [str(row[0]) for row in query(data, "SELECT handle FROM actors")]
    for handle in handles:
        load_keys(data / "keys", handle)
        assert query(data, "SELECT 1 FROM accounts WHERE handle = ?", handle), handle
    profiles = {str(row[0]) for row in query(data, "SELECT handle FROM profiles")}
    assert set(handles) <= profiles
    return handles


def test_an_import_killed_half_way_is_finished_by_running_it_again(tmp_path: Path) -> None:
    from .helpers import _start_logged

    data = make_school(tmp_path, "ministry", 8080)
    source = tmp_path / "schools.jsonl"
    source.write_text(_jsonl(150))
    args = ["school", "import", str(source), "--data", str(data), "--workers", "2"]
    process = _start_logged(args)
    try:
        wait_until(lambda: len(query(data, "SELECT handle FROM accounts")) > 1, timeout=60)
        process.kill()
        assert process.wait(timeout=20) == -9
    finally:
        if process.poll() is None:
            process.kill()
        if process.stdout is not None:
            process.stdout.close()
    added = _whole_schools(data)
    assert 1 < len(added) < 151, "the import should have been killed half-way"
    assert _handles(data) == sorted(added)  # the node opens and works

    again = _import(data, source)
    assert again.returncode == 1
    assert "on this node already, with this same profile" in again.stderr
    assert f"{len(added) - 1} schools of this file are on this node already" in again.stderr
    assert _whole_schools(data) == added

    finish = _import(data, source, "--skip-invalid")
    assert finish.returncode == 0, finish.stderr
    assert f"Added {151 - len(added)} schools" in finish.stdout
    assert f"left {len(added) - 1} schools that were on this node already" in finish.stdout
    assert len(_whole_schools(data)) == 151
    keys = {name.split(".")[0] for name in os.listdir(data / "keys") if "." in name}
    assert keys == set(_whole_schools(data))  # the killed batch's key files are gone


def test_ctrl_c_stops_between_whole_schools_with_one_line(tmp_path: Path) -> None:
    from .helpers import _start_logged

    data = make_school(tmp_path, "ministry", 8080)
    source = tmp_path / "schools.jsonl"
    source.write_text(_jsonl(100))
    process = _start_logged(["school", "import", str(source), "--data", str(data)])
    try:
        wait_until(lambda: len(query(data, "SELECT handle FROM accounts")) > 1, timeout=60)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 130
        assert process.stdout is not None
        output = process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
        if process.stdout is not None:
            process.stdout.close()
    assert "error: interrupted after adding" in output and "Traceback" not in output
    added = _whole_schools(data)
    assert 1 < len(added) < 101
    keys = {name.split(".")[0] for name in os.listdir(data / "keys") if "." in name}
    assert keys - {"removed"} == set(added)  # no key files of a school not added


def test_key_files_left_by_a_killed_batch_do_not_block_the_next_import(tmp_path: Path) -> None:
    data = make_school(tmp_path, "ministry", 8080)
    save_keys(data / "keys", "school-000", generate_keys())  # written, never committed
    source = tmp_path / "schools.jsonl"
    source.write_text(_jsonl(2))
    result = _import(data, source, "--workers", "1")
    assert result.returncode == 0, result.stderr
    assert _whole_schools(data) == ["ministry", "school-000", "school-001"]
    with Node.open(data) as node:
        school = node.for_school("school-000")
        verify_with_actor(school.profile().document, school.actor_document())  # type: ignore[union-attr]


def test_a_jsonl_file_with_bad_lines_adds_nothing(tmp_path: Path) -> None:
    data = make_school(tmp_path, "ministry", 8080)
    source = tmp_path / "schools.jsonl"
    lines = [
        json.dumps({"handle": "uhuru", **EXAMPLE_PROFILE}),
        '{"handle": "kibera", "name": "Kibera"',
        json.dumps({"handle": "ministry", **EXAMPLE_PROFILE, "capasity": 2}),
    ]
    source.write_text("\n".join(lines) + "\n")
    result = _import(data, source)
    assert result.returncode == 1
    assert "error: line 2: is not valid JSON: Expecting ',' delimiter at column 38" in result.stderr
    assert "error: line 3, field 'handle': 'ministry' is already an account" in result.stderr
    assert (
        "error: line 3 (handle 'ministry'), field 'capasity': unknown field; "
        "did you mean 'capacity'?"
    ) in result.stderr
    assert _handles(data) == ["ministry"]
