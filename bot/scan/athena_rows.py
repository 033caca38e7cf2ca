"""`rootcheck scan --athena`: the rows of Athena's results file back into CloudTrail records.

The query selects individual fields (a struct would come back as `{k=v}` text, not JSON), named
by their table paths; each row is rebuilt into the camelCase record a trail file holds, so the
detectors read it exactly as they read the file. Pure: text in, records out.
"""

from __future__ import annotations

import csv
from itertools import compress
from typing import Iterable, Iterator

from bot.checks.records import account_from_path

try:
    from orjson import loads as _loads
except ImportError:  # pragma: no cover - orjson is a dependency; the stdlib is the fallback
    from json import loads as _loads

# What the detectors and the grouping read, as table paths, and where each goes in a record.
_TOP = (("eventid", "eventID"), ("eventtime", "eventTime"), ("eventname", "eventName"),
        ("eventsource", "eventSource"), ("eventtype", "eventType"), ("awsregion", "awsRegion"),
        ("sourceipaddress", "sourceIPAddress"), ("useragent", "userAgent"), ("errorcode", "errorCode"),
        ("errormessage", "errorMessage"), ("readonly", "readOnly"), ("recipientaccountid", "recipientAccountId"),
        ("responseelements", "responseElements"), ("additionaleventdata", "additionalEventData"),
        ("sessioncredentialfromconsole", "sessionCredentialFromConsole"))
_IDENTITY = (("type", "type"), ("principalid", "principalId"), ("arn", "arn"), ("accountid", "accountId"),
             ("accesskeyid", "accessKeyId"), ("username", "userName"), ("invokedby", "invokedBy"))
_ATTRIBUTES = (("mfaauthenticated", "mfaAuthenticated"), ("creationdate", "creationDate"))
FIELDS = (tuple(path for path, _ in _TOP) + tuple(f"useridentity.{path}" for path, _ in _IDENTITY)
          + tuple(f"useridentity.sessioncontext.attributes.{path}" for path, _ in _ATTRIBUTES))
PATH = "$path"  # Athena's hidden column: the S3 object a row came from, for the account folder
_JSON_TEXT = ("responseElements", "additionalEventData")  # JSON objects stored as text in AWS's DDL


def read_rows(lines: Iterable[str]) -> Iterator[tuple[dict, str | None]]:
    """Records, and the account folder of the file each came from, from an Athena results CSV.

    Athena quotes every value and writes NULL as an empty field; Python's csv reader reads both
    as '', and an absent field and an empty one are the same to the detectors, so both are left
    out of the record. ValueError when the header is not the one `plan`'s SQL asks for.
    """
    rows = csv.reader(lines)
    header = next(rows, None)
    if header != [*FIELDS, PATH]:
        raise ValueError(f"the results do not have the columns rootcheck's query selects (got {header!r:.120})")
    top, identity_keys, attribute_keys = ([key for _, key in part] for part in (_TOP, _IDENTITY, _ATTRIBUTES))
    identity_at, attributes_at = len(_TOP), len(_TOP) + len(_IDENTITY)
    hints: dict[str, str | None] = {}
    for row in rows:  # compress(pairs, values): the pairs whose value is not empty, at C speed
        record = dict(compress(zip(top, row), row))
        values = row[identity_at:attributes_at]
        identity = dict(compress(zip(identity_keys, values), values))
        values = row[attributes_at:-1]
        if any(values):
            identity["sessionContext"] = {"attributes": dict(compress(zip(attribute_keys, values), values))}
        if identity:
            record["userIdentity"] = identity
        _restore_types(record)
        path = row[-1]
        if path not in hints:
            hints[path] = account_from_path(path)
        yield record, hints[path]


def slices(blocks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """A results file in slices of at least `size` bytes (the last may be shorter), each ending at
    the end of a record, so each can be read on its own (the first starts with the header).

    Athena quotes every value, so a newline after an even number of quotes ends a record; both
    are single bytes in UTF-8, so the bytes are cut without being decoded.
    """
    pending = b""
    for block in blocks:
        pending += block
        if len(pending) >= size:
            cut = _record_end(pending)
            if cut:
                yield pending[:cut]
                pending = pending[cut:]
    if pending:
        yield pending


def _record_end(data: bytes) -> int:
    """Where the last whole record of `data` ends (it starts at a record), or 0 if none does."""
    end = data.rfind(b"\n")
    quotes = data.count(b'"', 0, end) if end >= 0 else 0
    while end >= 0 and quotes % 2:
        previous = data.rfind(b"\n", 0, end)
        quotes -= data.count(b'"', previous + 1, end)
        end = previous
    return end + 1


def _restore_types(record: dict) -> None:
    """Undo the table's flattening: `readOnly` was a boolean, the JSON-text columns were objects."""
    read_only = record.get("readOnly")
    if read_only in ("true", "false"):
        record["readOnly"] = read_only == "true"
    for key in _JSON_TEXT:
        text = record.get(key)
        if text is not None and text[:1] in "{[":
            try:
                record[key] = _loads(text)
            except ValueError:
                pass  # not JSON after all: the detectors read it as text, as they would from a file
