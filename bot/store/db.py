"""Opening the database: engine options per dialect, and Alembic migrations applied at start.

SQLite runs in WAL mode with a busy timeout, so readers never block the writer, and its
transactions are real ones: the driver's own handling would run DDL (a migration) outside them,
so a start killed half-way through an upgrade could leave half a schema. A transaction opened
with `execution_options(immediate=True)` takes SQLite's write lock at once (the grouping writer
reads, then writes, and must not lose that race). A database whose schema is newer than this
rootcheck is refused rather than guessed at.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError

MIGRATIONS = Path(__file__).with_name("migrations")
MIGRATION_LOCK = 0x726F6F746D67  # "rootmg": replicas starting together migrate one at a time
# A lost network must not hang the leader check or a delivery run: bound every wait on PostgreSQL.
PG_CONNECT_ARGS = {
    "connect_timeout": 10,
    "options": "-c statement_timeout=30000 -c lock_timeout=15000 -c idle_in_transaction_session_timeout=60000",
}


class StoreError(Exception):
    """The store cannot be used as configured: one line naming what to fix."""


def open_engine(url: str) -> Engine:
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
            event.listen(engine, "connect", _sqlite_pragmas)
            event.listen(engine, "begin", _sqlite_begin)
        else:
            engine = create_engine(
                url,
                pool_pre_ping=True,
                pool_size=10,
                max_overflow=10,
                pool_timeout=15,
                connect_args=PG_CONNECT_ARGS if url.startswith("postgresql") else {},
            )
    except (ArgumentError, SQLAlchemyError, ImportError) as exc:
        raise StoreError(f"ROOTCHECK_DATABASE_URL: cannot use it ({exc.__class__.__name__}: {exc})") from None
    return engine


def writer(engine: Engine) -> Engine:
    """The engine for transactions that write: on SQLite they take the write lock at BEGIN, so a
    transaction that reads and then writes waits for another writer instead of failing."""
    return engine.execution_options(immediate=True)


def migrate(engine: Engine) -> str:
    """Upgrade the schema to this version's head; refuse a database from a newer rootcheck."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    script = ScriptDirectory.from_config(config)
    known = {rev.revision for rev in script.walk_revisions()}
    try:
        with writer(engine).begin() as connection:
            if engine.dialect.name == "postgresql":  # held until this transaction ends
                connection.execute(text("SET LOCAL statement_timeout = 0"))  # a big upgrade may take a while
                connection.execute(text("SET LOCAL lock_timeout = 0"))  # another replica may be migrating
                connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
            current = MigrationContext.configure(connection).get_current_revision()
            if current is not None and current not in known:
                raise StoreError(
                    f"the database schema ({current}) is newer than this rootcheck "
                    f"(knows up to {script.get_current_head()}): upgrade rootcheck, "
                    "or point ROOTCHECK_DATABASE_URL at another database"
                )
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except OperationalError as exc:
        raise StoreError(f"ROOTCHECK_DATABASE_URL: cannot open the database ({exc.orig})") from None
    except StoreError:
        raise
    except Exception as exc:  # noqa: BLE001 - the upgrade is one transaction: it is rolled back whole
        raise StoreError(
            f"ROOTCHECK_DATABASE_URL: the upgrade to schema {script.get_current_head()} failed, "
            f"nothing was changed ({exc.__class__.__name__}: {exc})"
        ) from None
    return script.get_current_head() or ""


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (_sqlite_begin)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(connection) -> None:
    immediate = connection.get_execution_options().get("immediate")
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
