"""Closed vocabularies of the school profile, shared by validation and matching."""

from __future__ import annotations

# Subjects are codes, not free text, so schools teaching in different languages can match
# on them; the web interface shows each in the teacher's language.
SUBJECTS = frozenset(
    {
        "art",
        "citizenship",
        "computing",
        "culture",
        "drama",
        "economics",
        "environment",
        "ethics",
        "geography",
        "health",
        "history",
        "languages",
        "literature",
        "mathematics",
        "music",
        "physical-education",
        "science",
        "social-studies",
        "technology",
    }
)

MODES = ("async", "live")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
NODE_KINDS = ("school", "hub", "authority")

MIN_AGE = 3
MAX_AGE = 19
MAX_CAPACITY = 100
MAX_NAME = 200
MAX_LOCALITY = 200
MAX_DESCRIPTION = 4000
MAX_LIST = 20
MAX_TERMS = 12
