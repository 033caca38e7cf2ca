"""A full session (serve with a sweep, alerts, an ack, commands, Slack failures; scan; doctor)
never prints a token, the signing secret, the ExternalId or the AWS secret key."""

from __future__ import annotations

import uuid

from tests.conftest import new_account_id
from tests.fakes.aws_standin import root_login_record
from tests.harness import SIGNING_SECRET, Serve, serve_env, wait_for

EXTERNAL_ID = "ext-id-do-not-log-4711"


def test_no_secret_in_any_output(fake_slack, run_rootcheck, tmp_path):
    from tests.fakes.aws_standin import AwsStandIn

    channel = f"C{uuid.uuid4().hex[:8].upper()}"
    fake_slack.add_channel(channel, members=["U0ADMIN"])
    account = new_account_id()
    with AwsStandIn(external_id=EXTERNAL_ID) as aws:
        aws.add_account(account, report_state="complete")
        aws.add_events(account, "us-east-1", [root_login_record(account)])
        env = serve_env(
            fake_slack,
            aws.env(),
            f"sqlite:///{tmp_path}/rc.db",
            ROOTCHECK_ACCOUNTS=account,
            ROOTCHECK_CHANNEL=channel,
            ROOTCHECK_EXTERNAL_ID=EXTERNAL_ID,
        )
        secrets = [env["SLACK_BOT_TOKEN"], SIGNING_SECRET, EXTERNAL_ID, env["AWS_SECRET_ACCESS_KEY"]]
        log = tmp_path / "serve.log"
        with Serve(env, log) as bot:
            post = wait_for(lambda: fake_slack.messages(channel))[0]
            response_url = fake_slack.new_response_url()
            fake_slack.fail_next(2, status=500, method="chat.update")
            bot.click(post["metadata"]["event_payload"]["finding_id"], post["ts"], user="U0ADMIN")
            for text in ("status", "open", "accounts", "bogus"):
                bot.command(text, user="U0ADMIN", response_url=response_url)
            fake_slack.set_error("chat.postMessage", "invalid_auth")
            aws.add_events(account, "us-east-1", [root_login_record(account)])
            wait_for(lambda: "invalid_auth" in log.read_text(), timeout=20)
            fake_slack.set_error("chat.postMessage", None)
        scan = run_rootcheck("scan", "--format", "json", env=env)
        doctor = run_rootcheck("doctor", env=env)
    outputs = {"serve": log.read_bytes(), "scan": scan.stdout + scan.stderr, "doctor": doctor.stdout + doctor.stderr}
    assert b'"level": "info"' in outputs["serve"]  # JSON logs were written
    for name, output in outputs.items():
        for secret in secrets:
            assert secret.encode() not in output, f"{name} printed a secret"
