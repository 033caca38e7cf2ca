"""Grouping findings into alerts: the day in `corpus/sessions`, then each rule on its own shapes."""

from __future__ import annotations

import copy
import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from bot.checks.cloudtrail import check_record
from bot.checks.grouping import group
from bot.checks.story import credentials_label
from bot.models import CREDENTIALS, FAILURES, HIGH_RISK, SESSION
from tests.conftest import CORPUS

SESSIONS = CORPUS / "sessions"
DAY = [json.loads(line) for line in (SESSIONS / "day.jsonl").read_text().splitlines() if line.strip()]
BY_ID = {record["eventID"]: record for record in DAY}
T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)  # s-login


def record(template: str, event_id: str, at: datetime | None = None, identity: dict | None = None, **changes):
    """A copy of a day record with a new id (and time, identity fields, top-level fields)."""
    copied = copy.deepcopy(BY_ID[template])
    copied["eventID"] = event_id
    if at is not None:
        copied["eventTime"] = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    copied["userIdentity"].update(identity or {})
    for key, value in changes.items():
        if value is None:
            copied.pop(key, None)
        else:
            copied[key] = value
    return copied


def findings(records):
    return [f for f in (check_record(r) for r in records) if f is not None]


def alerts_of(records, **options):
    outcome = group(findings(records), [], **options)
    return outcome, sorted(outcome.alerts.values(), key=lambda a: (a.opened_at or "", a.id))


def severity(alert):
    return alert.severity()


def test_the_day_gives_exactly_the_expected_alerts():
    expected = json.loads((SESSIONS / "expected_alerts.json").read_text())
    day = findings(DAY)
    assert len(day) == expected["findings"]
    event_of = {f.id: f.event_id for f in day}
    outcome = group(day, [])
    got = sorted((a.account_id, event_of[a.id], a.kind, severity(a), a.summary.count) for a in outcome.alerts.values())
    want = sorted((a["account_id"], a["opened_by"], a["kind"], a["severity"], a["count"]) for a in expected["alerts"])
    assert got == want


def test_the_day_session_reads_as_its_story():
    outcome = group(findings(DAY), [])
    session = next(a for a in outcome.alerts.values() if a.grouping == SESSION)
    summary = session.summary
    assert (summary.calls, summary.read_only, summary.failures_before) == (4, 2, 3)
    assert summary.regions == ["eu-west-1", "us-east-1"]
    assert summary.keys == ["ASIAEXAMPLESESSION01", "ASIAEXAMPLESESSION02"]
    assert [r["event_name"] for r in summary.risky] == ["StopLogging"]
    assert (summary.first, summary.last) == ("2026-11-20T10:00:00Z", "2026-11-20T10:07:00Z")


def test_the_same_events_in_any_order_give_the_same_alerts():
    baseline = {(a.id, a.summary.count) for a in group(findings(DAY), []).alerts.values()}
    for seed in range(5):
        shuffled = findings(DAY)
        random.Random(seed).shuffle(shuffled)
        assert {(a.id, a.summary.count) for a in group(shuffled, []).alerts.values()} == baseline


def test_a_session_of_100_calls_is_one_alert():
    calls = [record("s-call-1", f"c{n}", T0 + timedelta(seconds=30 + n)) for n in range(100)]
    outcome, alerts = alerts_of([BY_ID["s-login"], *calls])
    assert len(alerts) == 1 and alerts[0].summary.count == 101 and alerts[0].summary.calls == 100


def test_150_failures_are_one_alert_with_count_150_and_look_like_guessing():
    failures = [
        record("s-fail-1", f"f{n}", T0 + timedelta(seconds=3 * n), sourceIPAddress=f"203.0.113.{n % 7}")
        for n in range(150)
    ]
    _, alerts = alerts_of(failures)
    [alert] = alerts
    assert alert.grouping == FAILURES and alert.summary.count == 150 and severity(alert) == "high"
    assert len(alert.summary.ips) == 7


def test_failures_under_the_threshold_stay_medium_and_a_window_is_fixed_by_its_first_failure():
    failures = [record("s-fail-1", f"f{n}", T0 + timedelta(minutes=7 * n)) for n in range(10)]  # 10 in 63 min
    _, alerts = alerts_of(failures)
    assert [a.summary.count for a in alerts] == [9, 1]  # [T0, T0+1h) holds 0..56 min; 63 min opens a window
    assert {severity(a) for a in alerts} == {"medium"}


def test_a_late_failure_joins_the_window_that_holds_its_time_or_opens_one():
    first = findings([record("s-fail-1", "f1", T0), record("s-fail-1", "f2", T0 + timedelta(minutes=10))])
    earlier = group(first, []).alerts.values()
    late = findings(
        [record("s-fail-1", "f3", T0 + timedelta(minutes=30)), record("s-fail-1", "f4", T0 - timedelta(minutes=5))]
    )
    outcome = group(late, list(earlier))
    placed = {d.finding.event_id: (d.alerts, d.opened) for d in outcome.decisions}
    assert placed["f3"] == ([first[0].id], [])
    assert placed["f4"][1] == placed["f4"][0]  # opened its own window


def test_after_10_failures_a_signin_with_mfa_is_critical_and_says_so():
    failures = [record("s-fail-1", f"f{n}", T0 - timedelta(minutes=30) + timedelta(seconds=20 * n)) for n in range(12)]
    login = record("s-login", "ok", T0, additionalEventData={"MFAUsed": "Yes"})
    outcome, alerts = alerts_of([*failures, login])
    session = next(a for a in alerts if a.grouping == SESSION)
    assert session.summary.failures_before == 12 and severity(session) == "critical"


def test_a_failure_that_arrives_after_the_signin_updates_its_count():
    outcome = group(findings([BY_ID["s-login"]]), [])
    session = next(iter(outcome.alerts.values()))
    later = group(findings([record("s-fail-1", "f-late", T0 - timedelta(minutes=20))]), [session])
    assert later.sessions_recounted == {session.id} and session.summary.failures_before == 1


def test_a_call_a_few_minutes_before_its_signin_joins_it_clock_skew():
    call = record("s-call-1", "early", T0 - timedelta(minutes=4))
    _, alerts = alerts_of([call, BY_ID["s-login"]])
    assert [a.summary.count for a in alerts] == [2]
    too_early = record("s-call-1", "too-early", T0 - timedelta(minutes=6), identity={"accessKeyId": "ASIAOTHER"})
    _, alerts = alerts_of([too_early, BY_ID["s-login"]])
    assert sorted(a.grouping for a in alerts) == [CREDENTIALS, SESSION]


def test_console_calls_join_by_ip_only_from_the_signins_address():
    same_ip = record("s-call-3", "a", T0 + timedelta(minutes=1), identity={"accessKeyId": "ASIANEW1"})
    other_ip = record(
        "s-call-3", "b", T0 + timedelta(minutes=2), identity={"accessKeyId": "ASIANEW2"}, sourceIPAddress="192.0.2.99"
    )
    _, alerts = alerts_of([BY_ID["s-login"], same_ip, other_ip])
    assert sorted((a.grouping, a.summary.count) for a in alerts) == [(CREDENTIALS, 1), (SESSION, 2)]


def test_empty_access_key_joins_by_console_marker_and_ip():
    call = record("s-call-1", "nokey", T0 + timedelta(minutes=1), identity={"accessKeyId": ""})
    _, alerts = alerts_of([BY_ID["s-login"], call])
    assert [a.summary.count for a in alerts] == [2]


def test_a_non_console_call_never_joins_a_session_by_ip():
    call = record("s-key-1", "cli", T0 + timedelta(minutes=1), sourceIPAddress="198.51.100.23")
    _, alerts = alerts_of([BY_ID["s-login"], call])
    assert sorted(a.grouping for a in alerts) == [CREDENTIALS, SESSION]


def test_the_session_key_from_a_new_address_is_called_out_once():
    moved = [
        record("s-call-1", f"m{n}", T0 + timedelta(minutes=5 + n), sourceIPAddress="203.0.113.66") for n in range(3)
    ]
    outcome, _ = alerts_of([BY_ID["s-login"], BY_ID["s-call-1"], *moved])
    assert [d.new_ip for d in outcome.decisions if d.new_ip] == ["203.0.113.66"]


def test_twelve_hours_after_the_signin_a_call_opens_its_own_alert():
    inside = record("s-call-1", "in", T0 + timedelta(hours=12))
    outside = record("s-call-1", "out", T0 + timedelta(hours=12, seconds=1))
    _, alerts = alerts_of([BY_ID["s-login"], inside, outside])
    assert sorted((a.grouping, a.summary.count) for a in alerts) == [(CREDENTIALS, 1), (SESSION, 2)]


def test_calls_of_other_accounts_never_join():
    other = record("s-call-1", "x", T0 + timedelta(minutes=1), recipientAccountId="999988887777")
    _, alerts = alerts_of([BY_ID["s-login"], other])
    assert sorted((a.account_id, a.summary.count) for a in alerts) == [("111122223333", 1), ("999988887777", 1)]


def test_a_high_risk_call_in_a_session_has_its_own_critical_alert_and_counts_in_the_session():
    outcome, alerts = alerts_of([BY_ID["s-login"], BY_ID["s-call-3"], BY_ID["s-call-4"]])
    own = next(a for a in alerts if a.grouping == HIGH_RISK)
    session = next(a for a in alerts if a.grouping == SESSION)
    assert severity(own) == "critical" and own.summary.count == 1 and session.summary.count == 3
    decision = next(d for d in outcome.decisions if d.finding.event_id == "s-call-4")
    assert decision.alerts == [session.id, own.id] and decision.opened == [own.id]


def test_a_high_risk_call_that_opens_a_credentials_alert_makes_one_message_and_later_calls_join_it():
    key = {"accessKeyId": "AKIAROOTKEY"}
    first = record("s-key-1", "k1", T0, identity=key, eventName="CreateAccessKey", readOnly=False)
    later = record("s-key-1", "k2", T0 + timedelta(minutes=1), identity=key)
    _, alerts = alerts_of([first, later])
    [alert] = alerts
    assert alert.summary.count == 2 and severity(alert) == "critical"
    assert alert.severity(expected=True) == "critical"


def test_root_access_key_and_assume_root_credentials_are_named_for_what_they_are():
    outcome = group(findings(DAY), [])
    labels = {a.key: credentials_label(a) for a in outcome.alerts.values() if a.grouping == CREDENTIALS}
    assert labels["AKIAEXAMPLEROOTKEY01"] == "Root access key in use"
    assert labels["ASIAEXAMPLEASSUMEROOT"] == "Temporary root credentials in use"
    assert labels["ASIAEXAMPLESESSION03"] == "Root console session, sign-in not in view"


def test_calls_without_a_key_group_by_source_ip():
    calls = [record("s-key-1", f"n{n}", T0 + timedelta(minutes=n), identity={"accessKeyId": None}) for n in range(3)]
    _, alerts = alerts_of(calls)
    assert [(a.key, a.summary.count) for a in alerts] == [("192.0.2.44", 3)]


def test_the_running_bot_waits_two_minutes_for_a_console_calls_signin():
    call = findings([BY_ID["s-call-1"]])
    seen = T0 + timedelta(minutes=5)
    waiting = group(call, [], now=seen + timedelta(seconds=119), seen_at={call[0].id: seen})
    assert waiting.decisions[0].waiting and not waiting.alerts
    timed_out = group(call, [], now=seen + timedelta(minutes=2), seen_at={call[0].id: seen})
    assert [a.grouping for a in timed_out.alerts.values()] == [CREDENTIALS]
    signin_came = group(
        findings([BY_ID["s-login"]]) + call, [], now=seen + timedelta(seconds=30), seen_at={call[0].id: seen}
    )
    assert [a.summary.count for a in signin_came.alerts.values()] == [2]


def test_high_risk_and_non_console_calls_never_wait():
    risky = findings([record("s-call-4", "stop", T0 + timedelta(minutes=7), identity={"accessKeyId": "ASIAX"})])
    key = findings([BY_ID["s-key-1"]])
    outcome = group(risky + key, [], now=T0 + timedelta(minutes=8))
    assert not any(d.waiting for d in outcome.decisions) and len(outcome.alerts) == 2


def test_a_scan_over_files_never_waits():
    assert not any(d.waiting for d in group(findings([BY_ID["s-call-1"]]), []).decisions)


@pytest.mark.parametrize("region", ["eu-west-1", "ap-southeast-2"])
def test_calls_in_other_regions_join_by_key(region):
    call = record("s-call-1", "r", T0 + timedelta(minutes=3), awsRegion=region)
    _, alerts = alerts_of([BY_ID["s-login"], BY_ID["s-call-1"], call])
    assert [a.summary.count for a in alerts] == [3] and region in alerts[0].summary.regions


def test_an_expected_alert_is_low_unless_it_is_a_high_risk_calls_own():
    outcome = group(findings(DAY), [])
    for alert in outcome.alerts.values():
        lowered = alert.severity(expected=True)
        assert lowered == ("critical" if alert.grouping == HIGH_RISK else "low")
