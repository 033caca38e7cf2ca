"""Exactly one scheduler per database: the leader lock.

PostgreSQL: a session advisory lock on a dedicated connection; if the leader dies its
connection closes and the lock is free at once, so another replica takes over at its next try.
SQLite: an exclusive OS lock on a file next to the database, released when the process dies;
a second scheduler on the same file is refused (SQLite is for one replica).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

LOCK_KEY = 0x726F6F74636B  # "rootck"
# Is the lock still ours? A session that was cut and silently reconnected answers SELECT 1 but holds nothing.
_STILL_HELD = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
    "AND pid = pg_backend_pid() AND ((classid::bigint << 32) | objid::bigint) = :k"
)


class Leadership:
    def __init__(self, engine: Engine):
        self.engine = engine
        self._connection: Connection | None = None
        self._file: IO[str] | None = None

    @property
    def exclusive(self) -> bool:
        """Holding SQLite's lock proves no other rootcheck runs on this file: whatever another process
        left half done is debris. A PostgreSQL lock only proves the other lost it, not that it died."""
        return self.engine.dialect.name == "sqlite" and self.held

    @property
    def held(self) -> bool:
        return self._connection is not None or self._file is not None

    def try_acquire(self) -> bool:
        """Take the lock if it is free; keep it (and check it is still ours) if we have it."""
        if self.engine.dialect.name == "sqlite":
            return self._file_lock()
        if self._connection is not None:
            try:
                held = self._connection.execute(_STILL_HELD, {"k": LOCK_KEY}).scalar()
                self._connection.commit()
                if held:
                    return True
            except SQLAlchemyError:
                pass
            self.release()
            return False
        try:
            connection = self.engine.connect()
            if connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY}).scalar():
                connection.commit()  # the session lock outlives the transaction; do not sit "idle in transaction"
                self._connection = connection
                return True
            connection.close()
        except SQLAlchemyError:
            pass
        return False

    def release(self) -> None:
        if self._connection is not None:
            for step in (
                lambda c: c.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY}),
                lambda c: c.close(),
            ):  # close even when the unlock fails (a dead session)
                try:
                    step(self._connection)
                except SQLAlchemyError:
                    pass
            self._connection = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def _file_lock(self) -> bool:
        if self._file is not None:
            return True
        database = self.engine.url.database or ""
        path = Path(database + ".scheduler.lock") if database and database != ":memory:" else None
        if path is None:
            self._file = open(os.devnull)  # an in-memory database has one process by definition
            return True
        handle = open(path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._file = handle
        return True
