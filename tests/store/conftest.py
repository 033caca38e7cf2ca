"""Databases for store and serve tests: SQLite files in tmp dirs and real PostgreSQL.

PostgreSQL comes from ROOTCHECK_TEST_POSTGRES_URL (`.ci/run` starts a throwaway cluster and sets
it); without it, every PostgreSQL test is skipped with that reason. Each test module (or test,
when it asks for `new_postgres_database`) gets a database of its own, dropped afterwards.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator

import pytest

POSTGRES_ENV = "ROOTCHECK_TEST_POSTGRES_URL"
NO_POSTGRES = (
    f"PostgreSQL tests need {POSTGRES_ENV} (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/postgres); "
    ".ci/run sets it"
)


def postgres_server_url() -> str | None:
    return os.environ.get(POSTGRES_ENV) or None


def _admin(url: str):
    from sqlalchemy import create_engine

    return create_engine(url, isolation_level="AUTOCOMMIT", pool_size=1, max_overflow=0)


def create_database(server_url: str) -> str:
    """A fresh, empty database on the test cluster; returns its SQLAlchemy URL."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    name = f"rc_{secrets.token_hex(6)}"
    engine = _admin(server_url)
    try:
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    """Drop a test database, closing whatever still connects to it (a killed replica's sessions)."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    server = make_url(url).set(database="postgres").render_as_string(hide_password=False)
    name = make_url(url).database
    engine = _admin(server)
    try:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def postgres_server() -> str:
    url = postgres_server_url()
    if not url:
        pytest.skip(NO_POSTGRES)
    return url


@pytest.fixture(scope="module")
def postgres_url(postgres_server) -> Iterator[str]:
    """A fresh PostgreSQL database for this test module (CREATE DATABASE rc_<random>)."""
    url = create_database(postgres_server)
    yield url
    drop_database(url)


@pytest.fixture
def new_postgres_database(postgres_server) -> Iterator[Callable[[], str]]:
    """Make as many fresh PostgreSQL databases as a test needs; all are dropped after it."""
    made: list[str] = []

    def make() -> str:
        made.append(create_database(postgres_server))
        return made[-1]

    yield make
    for url in made:
        drop_database(url)


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'rootcheck.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def dialect(request) -> str:
    return request.param


@pytest.fixture
def db_url(request, dialect, tmp_path) -> str:
    """A store URL for each dialect: a new SQLite file, or this module's PostgreSQL database."""
    if dialect == "sqlite":
        return f"sqlite:///{tmp_path / 'rootcheck.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def fresh_db_url(request, dialect, tmp_path) -> str:
    """Like `db_url`, but an empty database even on PostgreSQL (migration tests)."""
    if dialect == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh.db'}"
    return request.getfixturevalue("new_postgres_database")()
