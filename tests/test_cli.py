"""The operator contract: init, profile show/import, errors as one line."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from amity.cli.main import cli
from amity.node.node import Node

from .helpers import ROOT

EXAMPLE = str(ROOT / "examples" / "profile.json")


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def init_school(tmp_path: Path) -> str:
    """A school node made with the example profile; returns its data directory."""
    data = str(tmp_path / "node")
    result = run(
        "init",
        "--data",
        data,
        "--name",
        "benito",
        "--base-url",
        "http://127.0.0.1:8080",
        "--profile",
        EXAMPLE,
    )
    assert result.exit_code == 0, result.stderr
    return data


def test_init_creates_config_database_and_private_keys(tmp_path: Path) -> None:
    data = tmp_path / "node"
    result = run(
        "init",
        "--data",
        str(data),
        "--name",
        "benito",
        "--base-url",
        "http://127.0.0.1:8080",
        "--profile",
        EXAMPLE,
    )
    assert result.exit_code == 0, result.output
    assert "@benito@127.0.0.1:8080" in result.stdout
    assert (data / "amity.toml").exists() and (data / "amity.db").exists()
    for key in ("benito.ed25519", "benito.rsa.pem"):
        mode = stat.S_IMODE((data / "keys" / key).stat().st_mode)
        assert mode == 0o600
    assert stat.S_IMODE((data / "amity.toml").stat().st_mode) == 0o600
    assert stat.S_IMODE((data / "amity.db").stat().st_mode) == 0o600
    assert stat.S_IMODE(data.stat().st_mode) == 0o700


def test_init_refuses_to_overwrite_a_node(tmp_path: Path) -> None:
    data = tmp_path / "node"
    run("init", "--data", str(data), "--name", "benito", "--base-url", "http://127.0.0.1:8080")
    keys_before = (data / "keys" / "benito.ed25519").read_bytes()
    result = run("init", "--data", str(data), "--name", "other", "--base-url", "http://a.example")
    assert result.exit_code == 1
    assert (
        result.stderr.strip() == f"error: {data} already holds an Amity node; choose another --data"
    )
    assert (data / "keys" / "benito.ed25519").read_bytes() == keys_before
    assert not (data / "keys" / "other.ed25519").exists()


def test_init_with_a_bad_profile_leaves_nothing_behind(
    tmp_path: Path, profile: dict[str, Any]
) -> None:
    profile["timezone"] = "Atlantis/Capital"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(profile))
    data = tmp_path / "node"
    result = run(
        "init",
        "--data",
        str(data),
        "--name",
        "benito",
        "--base-url",
        "http://127.0.0.1:8080",
        "--profile",
        str(bad),
    )
    assert result.exit_code == 1
    assert "profile field 'timezone'" in result.stderr
    assert not data.exists()


def test_init_checks_name_url_and_kind(tmp_path: Path) -> None:
    cases = [
        (["--name", "Benito Juárez", "--base-url", "http://a.example"], "--name"),
        (["--name", "benito", "--base-url", "ftp://a.example"], "--base-url"),
        (["--name", "benito", "--base-url", "https://a.example/school"], "--base-url"),
    ]
    for args, named in cases:
        result = run("init", "--data", str(tmp_path / "n"), *args)
        assert result.exit_code == 1
        assert result.stderr.startswith(f"error: {named}")
        assert not (tmp_path / "n").exists()
    result = run(
        "init",
        "--data",
        str(tmp_path / "n"),
        "--name",
        "x",
        "--base-url",
        "http://a.example",
        "--kind",
        "ministry",
    )
    assert result.exit_code == 2
    assert "school" in result.stderr


def test_profile_show_forms(tmp_path: Path) -> None:
    data = init_school(tmp_path)
    human = run("profile", "show", "--data", data)
    assert "Escuela Primaria Benito Juárez" in human.stdout
    assert "Oaxaca, Mexico" in human.stdout
    as_json = json.loads(run("profile", "show", "--json", "--data", data).stdout)
    assert as_json == json.loads(Path(EXAMPLE).read_text())
    signed = json.loads(run("profile", "show", "--signed", "--data", data).stdout)
    assert signed["proof"]["cryptosuite"] == "eddsa-jcs-2022"


def test_profile_show_json_round_trips_through_import(tmp_path: Path) -> None:
    data = init_school(tmp_path)
    exported = run("profile", "show", "--json", "--data", data).stdout
    result = CliRunner().invoke(cli, ["profile", "import", "-", "--data", data], input=exported)
    assert result.exit_code == 0, result.stderr
    assert json.loads(run("profile", "show", "--json", "--data", data).stdout) == json.loads(
        exported
    )


def test_school_without_profile_says_how_to_add_one(tmp_path: Path) -> None:
    data = str(tmp_path / "node")
    run("init", "--data", data, "--name", "benito", "--base-url", "http://127.0.0.1:8080")
    result = run("profile", "show", "--data", data)
    assert result.exit_code == 1
    assert "amity profile import" in result.stderr


def test_hub_refuses_a_school_profile(tmp_path: Path) -> None:
    data = str(tmp_path / "hub")
    run(
        "init",
        "--data",
        data,
        "--name",
        "hub",
        "--base-url",
        "http://127.0.0.1:8080",
        "--kind",
        "hub",
    )
    result = run("profile", "import", EXAMPLE, "--data", data)
    assert result.exit_code == 1
    assert "profiles belong on school nodes" in result.stderr


def test_oversized_profile_file_is_refused(school: Node, tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    big.write_text('{"name": "' + "x" * 70_000 + '"}')
    result = run("profile", "import", str(big), "--data", str(school.config.data_dir))
    assert result.exit_code == 1
    assert "over 64 KiB" in result.stderr


def test_missing_file_and_damaged_config_are_one_line(tmp_path: Path, school: Node) -> None:
    data = school.config.data_dir
    result = run("profile", "import", str(tmp_path / "nope.json"), "--data", str(data))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: Invalid value for 'FILE'")
    assert "No such file" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    (data / "amity.toml").write_text("this is [not toml")
    result = run("profile", "show", "--data", str(data))
    assert result.exit_code == 1
    assert "damaged" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_block_unblock_followers_following_and_queue_commands(tmp_path: Path) -> None:
    data = init_school(tmp_path)
    assert run("followers", "--data", data).stdout.strip() == "no followers yet"
    assert json.loads(run("following", "--json", "--data", data).stdout) == []
    assert run("queue", "--data", data).stdout.startswith("0 pending, 0 retrying, 0 dead")
    assert run("block", "spam.example", "--data", data).stdout.strip() == (
        "Blocked domain spam.example"
    )
    result = run("block", "https://spam.example/users/x", "--data", data)
    assert result.stdout.strip() == "Blocked actor https://spam.example/users/x"
    bad = run("block", "not a domain/x", "--data", data)
    assert bad.exit_code == 1 and bad.stderr.startswith("error:")
    assert run("unblock", "SPAM.example", "--data", data).exit_code == 0
    again = run("unblock", "spam.example", "--data", data)
    assert again.exit_code == 1 and "is not blocked" in again.stderr
