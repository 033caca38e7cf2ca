"""The confirmer in process: a real store (SQLite file), a real WebClient and the fake Slack.

What a bad day does to the owners' questions: the store failing around a direct message.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from bot.slack.confirm import Confirmer
from bot.slack.notifier import Notifier, make_client
from bot.slack.people import People
from bot.store import Placement, Store
from tests.slack.test_delivery import NOW, Clock, failing_writes, login, make_deliverer


@pytest.fixture
def setup(fake_slack, tmp_path):
    channel = "C" + uuid.uuid4().hex[:10].upper()
    fake_slack.add_channel(channel, members=["U0ADMIN"])
    owners = [f"U0OWN{uuid.uuid4().hex[:6].upper()}" for _ in range(2)]
    for owner in owners:
        fake_slack.add_user(owner, name=owner.lower())
    store = Store(f"sqlite:///{tmp_path / 'confirm.db'}")
    clock = Clock()
    client = make_client(fake_slack.bot_token, fake_slack.api_url, retries=0)
    notifier = Notifier(client, pace=0, edit_pace=0)
    deliverer = make_deliverer(store, notifier, channel, clock)
    confirmer = Confirmer(
        store,
        notifier,
        People(client),
        lambda a: None,
        lambda a: None,
        "host:1",
        timedelta(minutes=30),
        timedelta(minutes=30),
        clock,
        retry_base=0.01,
    )
    placement = Placement(target=lambda a: channel, remind_after=timedelta(minutes=30))
    yield store, deliverer, confirmer, placement, owners
    store.close()


def test_a_question_the_store_could_neither_record_nor_mark_is_reconciled_at_the_next_run_and_strands_nothing(
    setup, fake_slack, monkeypatch
):
    """PostgreSQL restarting under a direct message: recording it failed, and so did marking it for
    the reconcile. The exception left the deliver job: the other questions of its batch stayed
    claimed, and all waited out the 5-minute deadline of an abandoned claim (the same defect as an
    alert's, found in the soak, bench/soak.py)."""
    store, deliverer, confirmer, placement, owners = setup
    f = login("300000000016")
    store.alerts.ingest([f], NOW, placement)
    deliverer.deliver()
    assert store.questions.ask(f.id, owners, [], NOW)
    with monkeypatch.context() as patch:  # the claim goes through; the first question's record and its mark fail
        patch.setattr(store.questions, "write", failing_writes(store.questions, 2, 3))
        assert confirmer.send() == 1, "the rest of the batch is sent"
    confirmer.reconcile()  # the same delivery run, the store back: found by its metadata, not sent again
    assert [q.state for q in store.questions.of(f.id)] == ["posted", "posted"]
    for owner in owners:
        asked = [
            m
            for m in fake_slack.messages(fake_slack.dm_channel(owner))
            if (m.get("metadata") or {}).get("event_type") == "rootcheck_question"
        ]
        assert len(asked) == 1, f"{owner} asked {len(asked)} times"
