"""Hosting as a volunteer meets it: a spreadsheet's CSV, mistyped handles, a --school where
none belongs, a stale AMITY_SCHOOL, a wrong export directory. Every refusal says what to do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .helpers import EXAMPLE_PROFILE, ServedNode, amity, free_port, make_school

# What a spreadsheet set to a comma decimal mark saves as "CSV UTF-8": semicolons between
# cells, list cells quoted, a byte-order mark, Windows line endings and a last empty line.
SEMICOLON_CSV = (
    "\ufeffhandle;name;country;timezone;languages.instruction;ages;modes;school_days;"
    "school_hours;capacity\r\n"
    'mwangaza;Mwangaza Primary;KE;Africa/Nairobi;"en;sw";10-13;async;"mon;tue";'
    "08:00-15:00;2\r\n"
    "upendo;Upendo School;Kenya;Nairobi;English;10-13;async;mon;08:00-15:00;2\r\n"
    "\r\n"
)


def _ministry(tmp_path: Path) -> Path:
    data = make_school(tmp_path, "ministry", 8080)
    profile = tmp_path / "uhuru.json"
    profile.write_text(json.dumps(EXAMPLE_PROFILE))
    amity("school", "add", "uhuru", "--profile", str(profile), data=data)
    return data


def _errors(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_a_semicolon_separated_spreadsheet_imports(tmp_path: Path) -> None:
    data = _ministry(tmp_path)
    source = tmp_path / "schools.csv"
    source.write_bytes(SEMICOLON_CSV.encode("utf-8"))
    result = amity("school", "import", str(source), "--dry-run", data=data, check=False)
    assert _errors(result) == [
        "error: line 3 (handle 'upendo'), field 'country': 'Kenya' is a country name, not an "
        "ISO 3166-1 alpha-2 code; did you mean KE (Kenya)?",
        "error: line 3 (handle 'upendo'), field 'timezone': 'Nairobi' is not a full zone "
        "name; did you mean Africa/Nairobi?",
        "error: line 3 (handle 'upendo'), field 'languages.instruction[0]': 'English' is a "
        "language name, not a BCP 47 tag; did you mean en (English)?",
    ]
    result = amity("school", "import", str(source), "--skip-invalid", data=data, check=False)
    assert result.returncode == 1
    shown = json.loads(amity("profile", "show", "--json", "--school", "mwangaza", data=data).stdout)
    assert shown["languages"]["instruction"] == ["en", "sw"]
    assert shown["school_days"] == ["mon", "tue"]


def test_an_unquoted_list_in_a_semicolon_file_says_to_quote_it(tmp_path: Path) -> None:
    data = _ministry(tmp_path)
    source = tmp_path / "schools.csv"
    source.write_text("handle;name;languages.instruction\nab;Ab School;en;sw\n")
    result = amity("school", "import", str(source), "--dry-run", data=data, check=False)
    assert _errors(result) == [
        "error: line 2: has 4 cells where the header has 3; a cell holding a semicolon "
        "(a list such as en;sw) must be in double quotes"
    ]


def test_school_add_suggests_a_handle(tmp_path: Path) -> None:
    data = _ministry(tmp_path)
    profile = str(tmp_path / "uhuru.json")
    amity("school", "add", "kibera", "--profile", profile, data=data)
    amity("school", "remove", "kibera", "--yes", data=data)
    tries = {
        "uhuru": "error: 'uhuru' is already an account on this node (see amity school list); "
        "choose another, such as 'uhuru-2'",
        "kibera": "error: 'kibera' was already used by a school removed from this node, and a "
        "handle is never given to another school (its old actor answers 410 Gone); choose "
        "another, such as 'kibera-2'",
        "Jua Kali": "error: school handle 'Jua Kali': use 1-64 lower-case letters, digits, "
        "'_' or '-'; did you mean 'jua-kali'?",
        "ministry": "error: 'ministry' is already this node's first account; choose another, "
        "such as 'ministry-2'",
        "Uhuru": "error: school handle 'Uhuru': use 1-64 lower-case letters, digits, "
        "'_' or '-'; 'uhuru' is taken already: did you mean 'uhuru-2'?",
    }
    for handle, expected in tries.items():
        result = amity("school", "add", handle, "--profile", profile, data=data, check=False)
        assert result.returncode == 1
        assert _errors(result) == [expected]


def test_school_on_a_node_wide_command_says_why(tmp_path: Path) -> None:
    data = _ministry(tmp_path)
    for command in (["block", "spam.example"], ["queue"], ["serve"], ["queue", "retry", "--all"]):
        result = amity(*command, "--school", "uhuru", data=data, check=False)
        assert result.returncode == 2
        words = " ".join(c for c in command if not c.startswith("--") and "." not in c)
        [error] = _errors(result)
        assert error.endswith(
            f" {words}` acts for the whole node, every school it hosts, and takes no "
            "--school; leave --school out"
        )


def _run_with_env(data: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "amity.cli", *args, "--data", str(data)]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=60, env={**os.environ, **env}
    )


def test_a_stale_amity_school_is_named(tmp_path: Path) -> None:
    data = _ministry(tmp_path)
    amity("school", "remove", "uhuru", "--yes", data=data)
    result = _run_with_env(data, "profile", "show", AMITY_SCHOOL="uhuru")
    assert result.returncode == 1
    assert _errors(result) == [
        "error: school 'uhuru' was removed from this node; `amity school list` shows the "
        "others (the school came from AMITY_SCHOOL=uhuru: unset AMITY_SCHOOL, or give "
        "--school HANDLE)"
    ]
    result = amity("profile", "show", "--school", "uhuru", data=data, check=False)
    assert _errors(result) == [
        "error: school 'uhuru' was removed from this node; `amity school list` shows the others"
    ]
    # A node-wide command does not read AMITY_SCHOOL at all.
    assert _run_with_env(data, "queue", AMITY_SCHOOL="uhuru").returncode == 0


def test_init_from_a_wrong_directory_names_the_right_one(tmp_path: Path) -> None:
    data = _ministry(tmp_path)
    export = tmp_path / "uhuru-export"
    amity("school", "export", "uhuru", str(export), data=data)
    base = ["init", "--base-url", "http://127.0.0.1:8099", "--from"]
    missing = tmp_path / "nowhere"
    result = amity(*base, str(missing), data=tmp_path / "new", check=False)
    assert _errors(result) == [
        f"error: {missing} does not exist; give the directory `amity school export` wrote "
        "(make one on the old node with: amity school export HANDLE DIR)"
    ]
    result = amity(*base, str(export / "keys"), data=tmp_path / "new", check=False)
    assert _errors(result) == [
        f"error: {export / 'keys'} is inside an export; give the export itself: --from {export}"
    ]
    assert not (tmp_path / "new").exists()


def test_a_hosted_school_s_follow_names_the_school(tmp_path: Path) -> None:
    port, other_port = free_port(), free_port()
    ministry = make_school(tmp_path, "ministry", port)
    profile = tmp_path / "uhuru.json"
    profile.write_text(json.dumps(EXAMPLE_PROFILE))
    amity("school", "add", "uhuru", "--profile", str(profile), data=ministry)
    other = make_school(tmp_path, "other", other_port)
    flag = "--allow-private-network"
    served = [
        ServedNode(data, p, flag).start() for data, p in ((ministry, port), (other, other_port))
    ]
    try:
        target = f"other@127.0.0.1:{other_port}"
        flags = ("--allow-private-network", "--wait")
        result = amity("follow", target, "--school", "uhuru", *flags, data=ministry)
        assert "accepted: school uhuru follows it." in result.stdout
        result = amity("follow", target, *flags, data=ministry)
        assert "accepted: this node follows it." in result.stdout
    finally:
        for node in served:
            node.stop()
