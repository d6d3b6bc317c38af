"""The README and docs/protocol.md say what the code does."""

from __future__ import annotations

import json
import re

import click

from amity.cli.main import cli
from amity.node.app import create_app
from amity.node.node import Node
from amity.protocol.contexts import ACTOR_CONTEXT, PROFILE_CONTEXT
from amity.protocol.endorsement import ENDORSEMENT_CONTEXT, read_endorsement
from amity.protocol.profile_document import profile_from_document
from amity.protocol.proofs import find_assertion_key, verify_with_actor
from amity.protocol.vocabulary import SUBJECTS

from .helpers import ROOT

README = (ROOT / "README.md").read_text()
PROTOCOL = (ROOT / "docs" / "protocol.md").read_text()


def _commands(group: click.Group, prefix: str = "amity") -> list[str]:
    names = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            names += _commands(command, f"{prefix} {name}")
        else:
            names.append(f"{prefix} {name}")
    return names


def test_every_command_is_documented_in_the_readme() -> None:
    commands = _commands(cli)
    assert "amity profile import" in commands
    for command in commands:
        assert f"`{command}" in README, f"{command} is not in README.md"


def test_readme_test_command_is_what_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    command = "python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[test]' && pytest"
    assert command in README
    assert command in ci


def _example(name: str) -> dict[str, object]:
    match = re.search(rf"<!-- example: {name} -->\n```json\n(.*?)\n```", PROTOCOL, re.S)
    assert match, f"docs/protocol.md has no {name} example"
    return dict(json.loads(match.group(1)))


def test_protocol_examples_verify_and_match_the_code() -> None:
    actor, profile = _example("actor"), _example("profile")
    info = verify_with_actor(profile, actor)
    assert info.verification_method == f"{actor['id']}#ed25519-key"
    assert profile["@context"] == PROFILE_CONTEXT
    assert actor["@context"] == ACTOR_CONTEXT
    example_profile = json.loads((ROOT / "examples" / "profile.json").read_text())
    assert profile_from_document(profile) == example_profile


def test_protocol_endorsement_example_is_made_out_to_the_example_school() -> None:
    actor, endorsement = _example("actor"), _example("endorsement")
    read = read_endorsement(endorsement)
    assert read.school == actor["id"]
    assert read.key == find_assertion_key(actor, f"{actor['id']}#ed25519-key")
    assert endorsement["@context"] == ENDORSEMENT_CONTEXT


def test_protocol_lists_every_route_and_subject(school: Node) -> None:
    app = create_app(school)
    routes = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method in ("GET", "POST")
    }
    assert ("POST", "/inbox") in routes
    for method, path in routes:
        documented = path.replace("{handle}", "HANDLE").split("/{collection")[0]
        assert f"`{method} {documented}" in PROTOCOL, f"{method} {path} is not in protocol.md"
    for subject in SUBJECTS:
        assert f"`{subject}`" in PROTOCOL
