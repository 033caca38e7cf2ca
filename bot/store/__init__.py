"""The state store: the only package that touches the database (SQLite by default, PostgreSQL)."""

from __future__ import annotations

from bot.store.alerts import Alerts, Placed, Placement
from bot.store.cursors import BEFORE_REGIONS, Cursors
from bot.store.db import StoreError, migrate, open_engine
from bot.store.directory import Directory
from bot.store.leader import Leadership
from bot.store.messages import Messages, Reply
from bot.store.questions import Answer, Question, Questions
from bot.store.state import Expectation, State, SweepRun


class Store:
    """One engine, migrated at open: `alerts` (findings and the alerts they form), `messages` (what
    Slack shows: posts, edits, replies, acks, reminders), `state` (everything else)."""

    def __init__(self, url: str):
        self.url = url
        self.engine = open_engine(url)
        self.revision = migrate(self.engine)
        self.alerts = Alerts(self.engine)
        self.messages = Messages(self.engine)
        self.questions = Questions(self.engine)
        self.cursors = Cursors(self.engine)
        self.directory = Directory(self.engine)
        self.state = State(self.engine)
        self.leadership = Leadership(self.engine)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def close(self) -> None:
        self.leadership.release()
        self.engine.dispose()


__all__ = [
    "BEFORE_REGIONS",
    "Answer",
    "Expectation",
    "Placed",
    "Placement",
    "Question",
    "Reply",
    "Store",
    "StoreError",
    "SweepRun",
]
