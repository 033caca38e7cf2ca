"""The Organization's accounts (names, owners from the owner tag) as the leader last read them.

Reading 10,000 accounts' tags costs 10,000 calls: the leader does it about hourly and stores the
result here; every replica (standbys too) builds its account list from it without calling AWS.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Engine

from bot.models import Account
from bot.store.db import writer
from bot.store.schema import directory


class Directory:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.write = writer(engine).begin

    def accounts(self) -> list[Account]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(directory).order_by(directory.c.account_id)).all()
        return [Account(id=row.account_id, name=row.name, owners=tuple(json.loads(row.owners or "[]"))) for row in rows]

    def refreshed_at(self) -> datetime | None:
        with self.engine.connect() as conn:
            return conn.execute(select(func.min(directory.c.refreshed_at))).scalar()

    def replace(self, accounts: list[Account], now: datetime) -> None:
        """The whole Organization as just read (an account that left it is gone)."""
        with self.write() as conn:
            conn.execute(delete(directory))
            if accounts:
                conn.execute(
                    insert(directory),
                    [
                        {"account_id": a.id, "name": a.name, "owners": json.dumps(a.owners), "refreshed_at": now}
                        for a in accounts
                    ],
                )
