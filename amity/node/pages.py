"""The public HTML pages a browser gets instead of ActivityPub JSON."""

from __future__ import annotations

import re
from typing import Any

from babel import Locale, UnknownLocaleError
from jinja2 import Environment, PackageLoader, select_autoescape

from ..protocol.text import clean_text

_env = Environment(
    loader=PackageLoader("amity.node", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def language_name(tag: str, locale: Locale) -> str:
    """A language tag in words (`pt-BR` -> `Portuguese (Brazil)`), or the tag itself."""
    try:
        return str(Locale.parse(tag, sep="-").get_display_name(locale))
    except (ValueError, UnknownLocaleError):
        return tag


def profile_facts(profile: dict[str, Any], locale: Locale) -> list[tuple[str, str]]:
    """The profile as labelled lines a teacher can read."""
    place = locale.territories.get(profile["country"], profile["country"])
    if "locality" in profile:
        place = f"{clean_text(profile['locality'])}, {place}"
    langs = profile["languages"]
    return [
        ("Where", place),
        ("Time zone", profile["timezone"]),
        ("Teaches in", ", ".join(language_name(t, locale) for t in langs["instruction"])),
        (
            "Learning",
            ", ".join(language_name(t, locale) for t in langs.get("learning", [])) or "-",
        ),
        ("Ages", f"{profile['ages'][0]} to {profile['ages'][1]}"),
        ("Subjects", ", ".join(profile.get("subjects", [])) or "-"),
        ("Ways to work", ", ".join(profile["modes"])),
        (
            "School week",
            f"{', '.join(profile['school_days'])}, "
            f"{profile['school_hours'][0]}-{profile['school_hours'][1]} local time",
        ),
        (
            "Terms",
            ", ".join(f"{t['start']} to {t['end']}" for t in profile.get("terms", [])) or "-",
        ),
        ("Partnerships open", str(profile["capacity"])),
    ]


def render_actor_page(
    actor: dict[str, Any], profile: dict[str, Any] | None, handle: str, updated: str | None
) -> str:
    """The public page of an account, with its school profile in words."""
    facts = profile_facts(profile, Locale("en")) if profile else []
    shown = {**actor}
    for key in ("name", "summary"):  # texts may come from a profile stored before cleaning
        if isinstance(actor.get(key), str):
            shown[key] = clean_text(actor[key], multiline=key == "summary")
    return _env.get_template("actor.html").render(
        actor=shown, facts=facts, handle=handle, updated=updated
    )


def inline_styles() -> list[str]:
    """The text of every <style> block of the templates, for the pages' CSP hashes."""
    assert _env.loader is not None
    found = []
    for name in _env.list_templates(extensions=["html"]):
        source = _env.loader.get_source(_env, name)[0]
        found += re.findall(r"<style>(.*?)</style>", source, flags=re.S)
    return found
