"""The real-time path: EventBridge events on an SQS queue (moto server), consumed by `serve`."""

from __future__ import annotations

import json
import time
import uuid

import boto3
import pytest

from bot.checks.eventbridge import accept_event
from tests.conftest import CORPUS, new_account_id
from tests.fakes.aws_standin import root_login_record
from tests.harness import Serve, free_port, serve_env, wait_for
from tests.store.conftest import new_postgres_database, postgres_server  # noqa: F401 - fixtures


def _envelope(record: dict, account: str | None = None, source: str = "aws.signin") -> dict:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "AWS Console Sign In via CloudTrail",
        "source": source,
        "account": account or record["recipientAccountId"],
        "time": record["eventTime"],
        "region": "us-east-1",
        "resources": [],
        "detail": record,
    }


@pytest.fixture
def sqs(moto_server):
    client = boto3.client(
        "sqs",
        endpoint_url=moto_server,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    name = f"rootcheck-{uuid.uuid4().hex[:8]}"
    dlq = client.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = client.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": "1",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"}),
        },
    )["QueueUrl"]
    return client, url, dlq


def _count(client, url: str) -> int:
    attrs = client.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def _posts(fake, channel: str, account: str) -> list[dict]:
    return [
        m
        for m in fake.messages(channel)
        if (m.get("metadata") or {}).get("event_payload", {}).get("account_id") == account
    ]


@pytest.fixture
def bot(fake_slack, standin, sqs, moto_server, tmp_path):
    client, url, dlq = sqs
    account = new_account_id()
    channel = f"C{uuid.uuid4().hex[:8].upper()}"
    fake_slack.add_channel(channel, members=["U0ADMIN"])
    standin.add_account(account, report_state="complete")
    env = serve_env(
        fake_slack,
        standin.env() | {"AWS_ENDPOINT_URL_SQS": moto_server},
        f"sqlite:///{tmp_path}/rc.db",
        ROOTCHECK_ACCOUNTS=account,
        ROOTCHECK_QUEUE_URL=url,
        ROOTCHECK_CHANNEL=channel,
        ROOTCHECK_SWEEP_INTERVAL="3s",
    )
    with Serve(env, tmp_path / "serve.log") as serve:
        yield {"serve": serve, "sqs": client, "url": url, "dlq": dlq, "account": account, "channel": channel}


def test_root_signin_on_the_queue_is_posted_once_within_seconds(bot, fake_slack, standin):
    record = root_login_record(bot["account"])
    sent = time.monotonic()
    for _ in range(2):  # delivered twice (EventBridge is at-least-once)
        bot["sqs"].send_message(QueueUrl=bot["url"], MessageBody=json.dumps(_envelope(record)))
    (post,) = wait_for(lambda: _posts(fake_slack, bot["channel"], bot["account"]), timeout=20)
    assert time.monotonic() - sent < 10
    assert post["metadata"]["event_payload"]["kind"] == "root_console_login"
    wait_for(lambda: _count(bot["sqs"], bot["url"]) == 0)  # deleted once stored
    standin.add_events(bot["account"], "us-east-1", [record])  # the poller sees the same sign-in later
    serve = bot["serve"]
    wait_for(lambda: serve.health()[1].get("last_sweep_finished_at"), timeout=20)
    time.sleep(4)  # at least one more sweep that reads the record
    assert len(_posts(fake_slack, bot["channel"], bot["account"])) == 1
    status, health = serve.health()
    assert health["queue"]["messages"] >= 2 and health["queue"]["state"] == "running"


def test_garbage_iam_user_and_forged_events(bot, fake_slack):
    iam = json.loads((CORPUS / "07_iam_user_console_login_success_no_mfa.json").read_text())
    iam.update(recipientAccountId=bot["account"], eventID=str(uuid.uuid4()))
    forged = root_login_record(bot["account"])
    other = new_account_id()
    send = lambda body: bot["sqs"].send_message(QueueUrl=bot["url"], MessageBody=body)  # noqa: E731
    send("{this is not json")
    send(json.dumps(_envelope(iam)))  # an IAM user: no alert
    send(json.dumps(_envelope(forged, account=other)))  # another account claims it
    send(json.dumps(_envelope(forged, source="custom.rootcheck")))  # not from an AWS service
    good = root_login_record(bot["account"])
    send(json.dumps(_envelope(good)))  # not blocked by the others
    wait_for(lambda: _posts(fake_slack, bot["channel"], bot["account"]), timeout=20)
    wait_for(lambda: _count(bot["sqs"], bot["dlq"]) == 1, timeout=30)  # the garbage went to the DLQ
    assert _count(bot["sqs"], bot["url"]) == 0
    posts = _posts(fake_slack, bot["channel"], bot["account"])
    assert [p["metadata"]["event_payload"]["kind"] for p in posts] == ["root_console_login"]
    assert bot["serve"].process.poll() is None


def test_slack_outage_while_messages_arrive_loses_nothing(bot, fake_slack):
    records = [root_login_record(bot["account"]) for _ in range(3)]
    fake_slack.outage(4, status=500, method="chat.postMessage")
    for record in records:
        bot["sqs"].send_message(QueueUrl=bot["url"], MessageBody=json.dumps(_envelope(record)))
    wait_for(lambda: _count(bot["sqs"], bot["url"]) == 0, timeout=20)  # stored and deleted during the outage
    posts = wait_for(
        lambda: (
            len(_posts(fake_slack, bot["channel"], bot["account"])) == 3
            and _posts(fake_slack, bot["channel"], bot["account"])
        ),
        timeout=40,
    )
    ids = {p["metadata"]["event_payload"]["finding_id"] for p in posts}
    assert len(ids) == 3


def test_sigterm_while_queue_messages_wake_delivery_stops_cleanly_and_loses_nothing(bot, fake_slack):
    """Each stored batch wakes delivery through the scheduler: that must not block a shutdown."""
    import signal

    records = [root_login_record(bot["account"]) for _ in range(30)]
    for record in records:
        bot["sqs"].send_message(QueueUrl=bot["url"], MessageBody=json.dumps(_envelope(record)))
    wait_for(lambda: _posts(fake_slack, bot["channel"], bot["account"]), timeout=20)
    asked = time.monotonic()
    assert bot["serve"].stop(signal.SIGTERM, timeout=60) == 0
    assert time.monotonic() - asked < 15
    bot["serve"].start()  # whatever was not posted is still on the queue or in the store
    posts = wait_for(
        lambda: (lambda found: found if len(found) >= 30 else None)(_posts(fake_slack, bot["channel"], bot["account"])),
        timeout=60,
    )
    ids = [p["metadata"]["event_payload"]["finding_id"] for p in posts]
    assert len(ids) == len(set(ids)) == 30, "each sign-in posted once"


@pytest.mark.parametrize(
    "event,reason",
    [
        ({"source": "aws.signin", "account": "111122223333", "detail": {"recipientAccountId": "111122223333"}}, ""),
        (
            {"source": "aws.signin", "account": "999999999999", "detail": {"recipientAccountId": "111122223333"}},
            "does not match",
        ),
        (
            {"source": "acme.signin", "account": "111122223333", "detail": {"recipientAccountId": "111122223333"}},
            "is not an AWS service",
        ),
        ({"source": "aws.signin", "account": "111122223333", "detail": "x"}, "no CloudTrail record"),
        ([], "not a JSON object"),
    ],
)
def test_accept_event(event, reason):
    record, why = accept_event(event)
    assert (record is not None) is (reason == "") and reason in why


def test_every_replica_sends_queue_alerts_to_the_accounts_own_channel(
    fake_slack, standin, sqs, moto_server, tmp_path, new_postgres_database
):
    """Both replicas consume the queue; a standby that never swept must still know the account's channel."""
    import yaml

    client, url, _ = sqs
    account = new_account_id()
    default, own = (f"C{uuid.uuid4().hex[:8].upper()}" for _ in range(2))
    for channel in (default, own):
        fake_slack.add_channel(channel, members=["U0ADMIN"])
    standin.add_account(account, report_state="complete")
    accounts_file = tmp_path / "accounts.yml"
    accounts_file.write_text(yaml.safe_dump([{"id": account, "channel": own}]))
    database = new_postgres_database()
    env = serve_env(
        fake_slack,
        standin.env() | {"AWS_ENDPOINT_URL_SQS": moto_server},
        database,
        ROOTCHECK_ACCOUNTS_FILE=str(accounts_file),
        ROOTCHECK_QUEUE_URL=url,
        ROOTCHECK_CHANNEL=default,
        ROOTCHECK_SWEEP_INTERVAL="30s",
    )
    with Serve(env, tmp_path / "one.log") as one, Serve(dict(env, PORT=str(free_port())), tmp_path / "two.log") as two:
        roles = wait_for(
            lambda: (lambda r: r if sorted(r) == ["leader", "standby"] else None)(
                [one.health()[1]["scheduler"], two.health()[1]["scheduler"]]
            ),
            timeout=15,
        )
        assert roles
        records = [root_login_record(account) for _ in range(12)]
        for record in records:
            client.send_message(QueueUrl=url, MessageBody=json.dumps(_envelope(record)))
        wait_for(lambda: len(_posts(fake_slack, own, account)) == 12, timeout=40)
        assert _posts(fake_slack, default, account) == []
        consumed = [r.health()[1]["queue"]["messages"] for r in (one, two)]
        assert all(consumed), f"both replicas consumed: {consumed}"
