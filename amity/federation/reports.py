"""Flag reports from other nodes (reports), within their quotas.

Every function takes the sqlite-utils Database and runs on the node's database thread.
"""

from __future__ import annotations

import json
from typing import Any

from sqlite_utils import Database

from . import limits
from .limits import row_host


def report_refusal(db: Database, actor: str) -> str | None:
    """Why a new report from `actor` cannot be kept now (a quota is full), or None."""
    host = row_host(actor)
    for where, args, cap, whose in (
        ("actor = ?", [actor], limits.REPORTS_PER_ACTOR, f"from {actor}"),
        ("host = ?", [host], limits.REPORTS_PER_HOST, f"from {host}"),
        ("1", [], limits.REPORTS_IN_ALL, "in all"),
    ):
        if db.execute(f"SELECT count(*) FROM reports WHERE {where}", args).fetchone()[0] >= cap:
            return f"this node already keeps {cap} reports {whose}; try again later"
    return None


def add_report(
    db: Database, report_id: str, actor: str, document: dict[str, Any], now: float
) -> bool:
    """Keep a Flag for the operator unless a quota is full (report_refusal); False if not."""
    if report_refusal(db, actor) is not None:
        return False
    db.table("reports").insert(
        {
            "id": report_id,
            "actor": actor,
            "document": json.dumps(document, ensure_ascii=False),
            "received_at": now,
            "host": row_host(actor),
        },
        pk="id",
        ignore=True,
    )
    return True
