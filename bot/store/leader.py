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

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

LOCK_KEY = 0x726F6F74636B  # "rootck"


class Leadership:
    def __init__(self, engine: Engine):
        self.engine = engine
        self._connection = None
        self._file = None

    @property
    def held(self) -> bool:
        return self._connection is not None or self._file is not None

    def try_acquire(self) -> bool:
        """Take the lock if it is free; keep it (and check it is still ours) if we have it."""
        if self.engine.dialect.name == "sqlite":
            return self._file_lock()
        if self._connection is not None:
            try:
                self._connection.execute(text("SELECT 1"))
                return True
            except SQLAlchemyError:
                self.release()
                return False
        try:
            connection = self.engine.connect()
            if connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY}).scalar():
                self._connection = connection
                return True
            connection.close()
        except SQLAlchemyError:
            pass
        return False

    def release(self) -> None:
        if self._connection is not None:
            try:
                self._connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
                self._connection.close()
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
