"""Where each account's lookups start next, per Region, and how often a Region failed in a row.

A Region that fails keeps its cursor (its events are read again next time; ids deduplicate) while
the others move on, so one Region not enabled never holds back the account's sign-ins.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from bot.store.db import writer
from bot.store.schema import region_cursors

BEFORE_REGIONS = "*"  # the account's cursor from before per-Region cursors: where a new Region starts


class Cursors:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.write = writer(engine).begin

    def of(self, account_id: str) -> dict[str, datetime | None]:
        """Region → cursor (`*`: the starting point for a Region not seen yet)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(region_cursors).where(region_cursors.c.account_id == account_id)).all()
        return {row.region: row.cursor for row in rows}

    def advanced(self, account_id: str, region: str, cursor: datetime) -> None:
        self._upsert(account_id, region, cursor=cursor, failures=0, last_error=None)

    def failed(self, account_id: str, region: str, error: str) -> int:
        """One more sweep in which this Region failed; returns how many in a row."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(region_cursors.c.failures).where(
                    region_cursors.c.account_id == account_id, region_cursors.c.region == region
                )
            ).first()
        failures = (row.failures if row else 0) + 1
        self._upsert(account_id, region, failures=failures, last_error=error[:1000])
        return failures

    def _upsert(self, account_id: str, region: str, **values) -> None:
        key = (region_cursors.c.account_id == account_id) & (region_cursors.c.region == region)
        with self.write() as conn:
            if conn.execute(update(region_cursors).where(key).values(**values)).rowcount:
                return
            try:
                with conn.begin_nested():
                    conn.execute(
                        insert(region_cursors).values(account_id=account_id, region=region, **{"failures": 0, **values})
                    )
            except IntegrityError:  # another replica inserted it first
                conn.execute(update(region_cursors).where(key).values(**values))
