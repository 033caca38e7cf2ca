"""Row ↔ model conversions shared by the store's modules, and the one way a thread reply is queued."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from bot.models import Alert, AlertRecord, Clues, Finding, Summary
from bot.store.schema import findings, replies


def add_reply(conn: Connection, reply_id: str, alert_id: str, body: dict[str, Any], now: datetime) -> None:
    """A thread reply, once: the id says what it is about, so a second call changes nothing.
    `body` is data (`kind` and its values); the Slack layer turns it into escaped text."""
    if conn.execute(select(replies.c.id).where(replies.c.id == reply_id)).first() is None:
        conn.execute(
            insert(replies).values(
                id=reply_id, alert_id=alert_id, body=json.dumps(body), state="pending", attempts=0, created_at=now
            )
        )


def to_finding(row: Any) -> Finding:
    finding = Finding.from_dict(json.loads(row.payload))
    clues = Clues(access_key_id=row.access_key_id, console=row.console, read_only=row.read_only, failed=row.failed)
    return Finding(**{**finding.to_dict(), "clues": clues})


def to_alert(row: Any) -> Alert:
    return Alert(
        id=row.id,
        account_id=row.account_id,
        kind=row.kind,
        grouping=row.grouping,
        start=row.window_start,
        key=row.group_key,
        ip=row.ip,
        console=row.console,
        opened_at=row.opened_at.strftime("%Y-%m-%dT%H:%M:%SZ") if row.opened_at else None,
        escalations=set(json.loads(row.escalations or "[]")),
        summary=Summary.from_json(json.loads(row.summary)),
    )


def to_record(conn: Connection, row: Any) -> AlertRecord:
    opener = conn.execute(select(findings).where(findings.c.id == row.id)).first()
    m = row._mapping
    return AlertRecord(
        alert=to_alert(row),
        opener=to_finding(opener) if opener else None,
        owners_asked=tuple(json.loads(m["owners_asked"] or "[]")),
        owners_more=tuple(json.loads(m["owners_more"] or "[]")),
        **{name: m[name] for name in AlertRecord.STATE_FIELDS},
    )
