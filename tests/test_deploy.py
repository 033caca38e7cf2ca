"""Checks for the CloudFormation templates in deploy/.

The permissions granted by these templates are part of rootcheck's public
interface, so the tests pin them exactly. Helpers (``load_template``,
``resolve``, ``member_role_actions`` ...) are module-level so other tests can
reuse them, e.g. to compare ``member_role_actions()`` with the AWS calls the
code makes.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode_str

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
CORPUS = Path(__file__).resolve().parent / "fixtures" / "corpus"
CFN_LINT = Path(sys.executable).with_name("cfn-lint")

#: What the read-only audit role in every member account may do.
MEMBER_ACTIONS = frozenset(
    {
        "cloudtrail:LookupEvents",
        "iam:GenerateCredentialReport",
        "iam:GetCredentialReport",
        "iam:ListAccountAliases",
    }
)
#: Added to the member role (and the hub's own-account grant) when AllRegions=true,
#: i.e. when the bot runs with ROOTCHECK_REGIONS=all.
ALL_REGIONS_ACTIONS = frozenset({"account:ListRegions"})
#: Hub-only actions: reach the member roles and enumerate the Organization.
HUB_ACTIONS = frozenset({"sts:AssumeRole", "organizations:ListAccounts", "organizations:ListTagsForResource"})
#: Hub actions on the root-activity queue, only when a queue is configured.
QUEUE_ACTIONS = frozenset({"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"})

ROOT_DETAIL_TYPES = frozenset({"AWS Console Sign In via CloudTrail", "AWS API Call via CloudTrail"})

EXPECTED_TEMPLATES = {
    "member-role.yaml",
    "member-events.yaml",
    "hub-role.yaml",
    "hub-events.yaml",
}
#: Templates meant to run as service-managed StackSets across the Organization.
STACKSET_TEMPLATES = ("member-role.yaml", "member-events.yaml")

NO_VALUE = object()


# --------------------------------------------------------------------------
# Template helpers
# --------------------------------------------------------------------------


def _plain(node: Any) -> Any:
    """cfn-lint's decoder returns dict/str subclasses with line marks; strip them."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    return node


@cache
def _load(name: str) -> str:
    text = (DEPLOY / name).read_text(encoding="utf-8")
    template, matches = decode_str(text)
    assert not matches, f"{name}: {matches}"
    return json.dumps(_plain(template))


def load_template(name: str) -> dict:
    """Parse deploy/<name> with cfn-lint's decoder (understands !Ref, !Sub, !If ...).

    Short-form tags come back in long form (``{"Ref": ...}``, ``{"Fn::Sub": ...}``).
    A fresh copy is returned on every call.
    """
    return json.loads(_load(name))


def parameter_values(template: Mapping, **overrides: Any) -> dict:
    """Parameter defaults of ``template`` updated with ``overrides`` (all as strings)."""
    values = {name: str(p["Default"]) for name, p in template.get("Parameters", {}).items() if "Default" in p}
    values.update({k: str(v) for k, v in overrides.items()})
    return values


def _eval_condition(template: Mapping, expr: Any, params: Mapping[str, str]) -> Any:
    if isinstance(expr, dict) and len(expr) == 1:
        ((fn, arg),) = expr.items()
        if fn == "Fn::Equals":
            a, b = (_eval_condition(template, x, params) for x in arg)
            return str(a) == str(b)
        if fn == "Fn::Not":
            return not _eval_condition(template, arg[0], params)
        if fn == "Fn::And":
            return all(_eval_condition(template, x, params) for x in arg)
        if fn == "Fn::Or":
            return any(_eval_condition(template, x, params) for x in arg)
        if fn == "Condition":
            return condition_value(template, arg, params)
        if fn == "Ref":
            if arg not in params:
                raise KeyError(f"condition needs a value for parameter {arg!r}")
            return params[arg]
    return expr


def condition_value(template: Mapping, name: str, params: Mapping[str, str]) -> bool:
    """Evaluate the named condition of ``template`` for the given parameter values."""
    return bool(_eval_condition(template, template["Conditions"][name], params))


def resolve(template: Mapping, **params: Any) -> dict:
    """Return ``template`` as deployed with ``params`` (defaults fill the rest).

    Resolves ``Fn::If``, drops ``Ref: AWS::NoValue`` and drops resources and
    outputs whose ``Condition`` is false. Other intrinsics are left as they are.
    """
    values = parameter_values(template, **params)

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if set(node) == {"Fn::If"}:
                cond, if_true, if_false = node["Fn::If"]
                branch = if_true if condition_value(template, cond, values) else if_false
                return walk(branch)
            if node == {"Ref": "AWS::NoValue"}:
                return NO_VALUE
            out = {}
            for k, v in node.items():
                v = walk(v)
                if v is not NO_VALUE:
                    out[k] = v
            return out
        if isinstance(node, list):
            return [v for v in (walk(x) for x in node) if v is not NO_VALUE]
        return node

    out = walk({k: v for k, v in template.items() if k != "Conditions"})
    for section in ("Resources", "Outputs"):
        for name, body in list(out.get(section, {}).items()):
            if "Condition" in body and not condition_value(template, body["Condition"], values):
                del out[section][name]
    return out


def resources_of_type(template: Mapping, type_: str) -> dict:
    return {name: body for name, body in template.get("Resources", {}).items() if body["Type"] == type_}


def only_resource(template: Mapping, type_: str) -> tuple[str, dict]:
    found = resources_of_type(template, type_)
    assert len(found) == 1, f"expected one {type_}, found {sorted(found)}"
    return next(iter(found.items()))


def statements(document: Mapping) -> list[dict]:
    stmts = document["Statement"]
    return [stmts] if isinstance(stmts, dict) else list(stmts)


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def allowed_actions(document: Mapping) -> frozenset:
    """Actions of all Allow statements; fails on anything that widens the grant."""
    actions: set = set()
    for st in statements(document):
        assert "NotAction" not in st and "NotResource" not in st, st
        if st["Effect"] == "Allow":
            for action in _as_list(st["Action"]):
                assert "*" not in action, f"wildcard action {action!r}"
                actions.add(action)
    return frozenset(actions)


def member_role(**params: Any) -> dict:
    """Properties of the member audit role as deployed with ``params``."""
    template = resolve(load_template("member-role.yaml"), **params)
    return only_resource(template, "AWS::IAM::Role")[1]["Properties"]


def member_role_actions(all_regions: bool = False) -> frozenset:
    """Every action the member audit role grants (inline + managed policies)."""
    props = member_role(AllRegions=str(all_regions).lower())
    assert not props.get("ManagedPolicyArns"), "member role must carry only its inline policy"
    actions: set = set()
    for policy in props.get("Policies", []):
        actions |= allowed_actions(policy["PolicyDocument"])
    return frozenset(actions)


def hub_policy_document(**params: Any) -> dict:
    template = resolve(load_template("hub-role.yaml"), **params)
    return only_resource(template, "AWS::IAM::ManagedPolicy")[1]["Properties"]["PolicyDocument"]


def hub_actions(**params: Any) -> frozenset:
    return allowed_actions(hub_policy_document(**params))


def event_pattern_matches(pattern: Mapping, event: Mapping) -> bool:
    """Minimal EventBridge matcher: nested objects and lists of exact values."""
    for key, expected in pattern.items():
        if key not in event:
            return False
        actual = event[key]
        if isinstance(expected, dict):
            if not isinstance(actual, dict) or not event_pattern_matches(expected, actual):
                return False
        else:
            assert all(not isinstance(v, dict) for v in expected), "matcher handles exact values only"
            values = actual if isinstance(actual, list) else [actual]
            if not any(v in expected for v in values):
                return False
    return True


def assert_root_pattern(pattern: Mapping) -> None:
    assert pattern["detail"]["userIdentity"]["type"] == ["Root"]
    assert set(pattern["detail-type"]) == ROOT_DETAIL_TYPES
    assert len(pattern["detail-type"]) == len(ROOT_DETAIL_TYPES)


# --------------------------------------------------------------------------
# cfn-lint
# --------------------------------------------------------------------------

TEMPLATES = sorted(DEPLOY.glob("*.yaml")) + sorted(DEPLOY.glob("*.yml")) + sorted(DEPLOY.glob("*.json"))


def test_expected_templates_exist():
    assert EXPECTED_TEMPLATES <= {p.name for p in TEMPLATES}


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_cfn_lint_clean(path):
    assert CFN_LINT.exists(), f"cfn-lint not found next to {sys.executable}"
    proc = subprocess.run(
        [str(CFN_LINT), "--format", "parseable", "--", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    # exit code 0 = no errors, warnings or informational matches
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == ""


# --------------------------------------------------------------------------
# member-role.yaml
# --------------------------------------------------------------------------


def test_member_role_grants_exactly_the_member_actions():
    assert member_role_actions(all_regions=False) == MEMBER_ACTIONS


def test_member_role_list_regions_only_with_all_regions():
    assert member_role_actions(all_regions=True) == MEMBER_ACTIONS | ALL_REGIONS_ACTIONS
    assert load_template("member-role.yaml")["Parameters"]["AllRegions"]["Default"] == "false"


def test_member_role_name_parameter():
    template = load_template("member-role.yaml")
    assert template["Parameters"]["RoleName"]["Default"] == "RootCheckAudit"
    assert member_role()["RoleName"] == {"Ref": "RoleName"}


@pytest.mark.parametrize(
    "hub_role_arn, principal",
    [
        ("", {"Fn::Sub": "arn:${AWS::Partition}:iam::${HubAccountId}:root"}),
        ("arn:aws:iam::111122223333:role/RootCheckHub", {"Ref": "HubRoleArn"}),
    ],
    ids=["hub-account", "hub-role"],
)
def test_member_role_trust_requires_external_id(hub_role_arn, principal):
    trust = member_role(HubRoleArn=hub_role_arn)["AssumeRolePolicyDocument"]
    stmts = statements(trust)
    assert len(stmts) == 1
    (st,) = stmts
    assert st["Effect"] == "Allow"
    assert _as_list(st["Action"]) == ["sts:AssumeRole"]
    assert st["Principal"] == {"AWS": principal}
    assert st["Condition"] == {"StringEquals": {"sts:ExternalId": {"Ref": "ExternalId"}}}
    params = load_template("member-role.yaml")["Parameters"]
    assert params["ExternalId"].get("NoEcho") is True
    assert "Default" not in params["ExternalId"]
    assert "Default" not in params["HubAccountId"]


@pytest.mark.parametrize("name", STACKSET_TEMPLATES)
def test_stackset_templates_are_account_neutral(name):
    text = (DEPLOY / name).read_text(encoding="utf-8")
    assert not re.search(r"(?<![0-9])[0-9]{12}(?![0-9])", text), "hard-coded account id"
    template = load_template(name)
    for output in template.get("Outputs", {}).values():
        assert "Export" not in output


# --------------------------------------------------------------------------
# hub-role.yaml
# --------------------------------------------------------------------------

QUEUE_ARN = "arn:aws:sqs:us-east-1:111122223333:rootcheck-Queue-ABC"


@pytest.mark.parametrize("all_regions", [False, True])
@pytest.mark.parametrize("queue_arn", ["", QUEUE_ARN], ids=["no-queue", "queue"])
def test_hub_policy_grants_exactly_the_hub_actions(all_regions, queue_arn):
    expected = MEMBER_ACTIONS | HUB_ACTIONS
    if all_regions:
        expected |= ALL_REGIONS_ACTIONS
    if queue_arn:
        expected |= QUEUE_ACTIONS
    assert hub_actions(AllRegions=str(all_regions).lower(), QueueArn=queue_arn) == expected


def test_hub_policy_resources():
    for st in statements(hub_policy_document(QueueArn=QUEUE_ARN, AllRegions="true")):
        actions = set(_as_list(st["Action"]))
        if actions == {"sts:AssumeRole"}:
            assert st["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:iam::*:role/${MemberRoleName}"}
        elif actions <= QUEUE_ACTIONS:
            assert actions == QUEUE_ACTIONS
            assert st["Resource"] == {"Ref": "QueueArn"}
        else:
            assert st["Resource"] == "*"
    template = load_template("hub-role.yaml")
    assert template["Parameters"]["MemberRoleName"]["Default"] == "RootCheckAudit"
    assert template["Parameters"]["QueueArn"]["Default"] == ""


def test_hub_role_optional_and_carries_only_the_policy():
    template = load_template("hub-role.yaml")
    policy_name, _ = only_resource(template, "AWS::IAM::ManagedPolicy")

    without = resolve(template, CreateRole="false")
    assert resources_of_type(without, "AWS::IAM::Role") == {}
    assert "PolicyArn" in without["Outputs"] and "RoleArn" not in without["Outputs"]

    with_role = resolve(template)  # defaults: CreateRole=true, ECS tasks
    _, role = only_resource(with_role, "AWS::IAM::Role")
    props = role["Properties"]
    assert props["ManagedPolicyArns"] == [{"Ref": policy_name}]
    assert "Policies" not in props
    (st,) = statements(props["AssumeRolePolicyDocument"])
    assert st["Principal"] == {"Service": {"Ref": "TrustedService"}}
    assert template["Parameters"]["TrustedService"]["Default"] == "ecs-tasks.amazonaws.com"


# --------------------------------------------------------------------------
# member-events.yaml
# --------------------------------------------------------------------------


def test_member_rule_forwards_root_activity_to_hub_bus():
    template = resolve(load_template("member-events.yaml"))
    _, rule = only_resource(template, "AWS::Events::Rule")
    props = rule["Properties"]
    assert_root_pattern(props["EventPattern"])
    assert props.get("EventBusName", "default") == "default"
    (target,) = props["Targets"]
    assert target["Arn"] == {"Ref": "HubEventBusArn"}
    role_name, role = only_resource(template, "AWS::IAM::Role")
    assert target["RoleArn"] == {"Fn::GetAtt": [role_name, "Arn"]}
    (policy,) = role["Properties"]["Policies"]
    (st,) = statements(policy["PolicyDocument"])
    assert st["Effect"] == "Allow"
    assert _as_list(st["Action"]) == ["events:PutEvents"]
    assert st["Resource"] == {"Ref": "HubEventBusArn"}
    (trust,) = statements(role["Properties"]["AssumeRolePolicyDocument"])
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}


@pytest.mark.parametrize("name", ["member-events.yaml", "hub-events.yaml"])
@pytest.mark.parametrize(
    "read_only, state",
    [("true", "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"), ("false", "ENABLED")],
)
def test_rule_state_follows_read_only_switch(name, read_only, state):
    template = resolve(load_template(name), IncludeReadOnlyEvents=read_only)
    _, rule = only_resource(template, "AWS::Events::Rule")
    assert rule["Properties"]["State"] == state


def _envelope(path: Path) -> dict | None:
    """The EventBridge event CloudTrail would emit for a corpus record."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None
    if "CloudTrailEvent" in data:  # LookupEvents item
        data = json.loads(data["CloudTrailEvent"])
    record = data.get("detail", data)
    detail_type = {
        "awsconsolesignin": "AWS Console Sign In via CloudTrail",
        "awsapicall": "AWS API Call via CloudTrail",
        "awsserviceevent": "AWS Service Event via CloudTrail",
    }.get(str(record.get("eventType", "")).lower())
    if detail_type is None:
        return None
    return {
        "detail-type": detail_type,
        "source": "aws." + str(record.get("eventSource", "")).split(".")[0],
        "detail": record,
    }


def _corpus_events_with_findings():
    """Corpus records (tests/fixtures/corpus) for which expected.json lists findings.

    The corpus belongs to the detector tests; anything unexpected in it is
    skipped here rather than breaking collection.
    """
    try:
        expected = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    cases = []
    for name, entry in sorted(expected.items()):
        findings = entry.get("findings") if isinstance(entry, dict) else None
        if not isinstance(findings, list) or not findings:
            continue
        if not name.endswith(".json") or not (CORPUS / name).exists():
            continue
        event = _envelope(CORPUS / name)
        if event is not None and "userIdentity" in event["detail"]:
            cases.append(pytest.param(event, id=name))
    return cases


@pytest.mark.parametrize(
    "event", _corpus_events_with_findings() or [pytest.param(None, marks=pytest.mark.skip("no corpus"))]
)
def test_rules_deliver_every_corpus_record_the_bot_reports(event):
    """Whatever the detectors report from CloudTrail must pass both rules."""
    for name in ("member-events.yaml", "hub-events.yaml"):
        _, rule = only_resource(resolve(load_template(name)), "AWS::Events::Rule")
        assert event_pattern_matches(rule["Properties"]["EventPattern"], event), name


def test_rule_ignores_non_root_sign_in():
    _, rule = only_resource(resolve(load_template("member-events.yaml")), "AWS::Events::Rule")
    pattern = rule["Properties"]["EventPattern"]
    event = {
        "detail-type": "AWS Console Sign In via CloudTrail",
        "detail": {"userIdentity": {"type": "IAMUser"}, "eventName": "ConsoleLogin"},
    }
    assert not event_pattern_matches(pattern, event)
    event["detail"]["userIdentity"]["type"] = "Root"
    assert event_pattern_matches(pattern, event)
    event["detail-type"] = "AWS Service Event via CloudTrail"
    assert not event_pattern_matches(pattern, event)


# --------------------------------------------------------------------------
# hub-events.yaml
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hub_events():
    return resolve(load_template("hub-events.yaml"))


def test_bus_policy_admits_only_the_organization(hub_events):
    bus_name, _ = only_resource(hub_events, "AWS::Events::EventBus")
    _, policy = only_resource(hub_events, "AWS::Events::EventBusPolicy")
    props = policy["Properties"]
    assert props["EventBusName"] == {"Ref": bus_name}
    stmts = _as_list(props["Statement"])
    assert len(stmts) == 1
    (st,) = stmts
    assert st["Effect"] == "Allow"
    assert _as_list(st["Action"]) == ["events:PutEvents"]
    assert st["Resource"] == {"Fn::GetAtt": [bus_name, "Arn"]}
    assert st["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": {"Ref": "OrgId"}}}


def test_hub_rule_routes_root_activity_from_bus_to_queue(hub_events):
    bus_name, _ = only_resource(hub_events, "AWS::Events::EventBus")
    _, rule = only_resource(hub_events, "AWS::Events::Rule")
    props = rule["Properties"]
    assert props["EventBusName"] == {"Ref": bus_name}
    assert_root_pattern(props["EventPattern"])
    (target,) = props["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["Queue", "Arn"]}


def test_queue_policy_lets_only_the_hub_rule_send(hub_events):
    rule_name, _ = only_resource(hub_events, "AWS::Events::Rule")
    _, policy = only_resource(hub_events, "AWS::SQS::QueuePolicy")
    props = policy["Properties"]
    assert props["Queues"] == [{"Ref": "Queue"}]
    allows = [st for st in statements(props["PolicyDocument"]) if st["Effect"] == "Allow"]
    assert len(allows) == 1
    (st,) = allows
    assert st["Principal"] == {"Service": "events.amazonaws.com"}
    assert _as_list(st["Action"]) == ["sqs:SendMessage"]
    assert st["Resource"] == {"Fn::GetAtt": ["Queue", "Arn"]}
    ((operator, keys),) = st["Condition"].items()
    assert operator in ("ArnEquals", "StringEquals")
    assert keys == {"aws:SourceArn": {"Fn::GetAtt": [rule_name, "Arn"]}}


def test_queues_encrypted_with_dead_letter_redrive(hub_events):
    queues = resources_of_type(hub_events, "AWS::SQS::Queue")
    assert set(queues) == {"Queue", "DeadLetterQueue"}
    for queue in queues.values():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True
    redrive = queues["Queue"]["Properties"]["RedrivePolicy"]
    assert redrive == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
        "maxReceiveCount": {"Ref": "MaxReceiveCount"},
    }
    assert "RedrivePolicy" not in queues["DeadLetterQueue"]["Properties"]
    assert load_template("hub-events.yaml")["Parameters"]["MaxReceiveCount"]["Default"] == 5


def test_hub_events_outputs(hub_events):
    outputs = hub_events["Outputs"]
    assert outputs["QueueUrl"]["Value"] == {"Ref": "Queue"}
    assert outputs["QueueArn"]["Value"] == {"Fn::GetAtt": ["Queue", "Arn"]}
    bus_name, _ = only_resource(hub_events, "AWS::Events::EventBus")
    assert outputs["EventBusArn"]["Value"] == {"Fn::GetAtt": [bus_name, "Arn"]}
