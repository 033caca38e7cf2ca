"""`rootcheck scan --athena`: the rows of Athena's results file back into CloudTrail records.

The query selects individual fields (a struct would come back as `{k=v}` text, not JSON), in the
order of `FIELDS`; each row is rebuilt into the camelCase record a trail file holds, so the
detectors read it exactly as they read the file. Pure: bytes in, records out.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import compress

from orjson import loads as _loads

from bot.checks.records import account_from_path

# What the detectors and the grouping read, as table paths, and where each goes in a record.
_TOP = (
    ("eventid", "eventID"),
    ("eventtime", "eventTime"),
    ("eventname", "eventName"),
    ("eventsource", "eventSource"),
    ("eventtype", "eventType"),
    ("awsregion", "awsRegion"),
    ("sourceipaddress", "sourceIPAddress"),
    ("useragent", "userAgent"),
    ("errorcode", "errorCode"),
    ("errormessage", "errorMessage"),
    ("readonly", "readOnly"),
    ("recipientaccountid", "recipientAccountId"),
    ("responseelements", "responseElements"),
    ("additionaleventdata", "additionalEventData"),
    ("sessioncredentialfromconsole", "sessionCredentialFromConsole"),
)
_IDENTITY = (
    ("type", "type"),
    ("principalid", "principalId"),
    ("arn", "arn"),
    ("accountid", "accountId"),
    ("accesskeyid", "accessKeyId"),
    ("username", "userName"),
    ("invokedby", "invokedBy"),
)
_ATTRIBUTES = (("mfaauthenticated", "mfaAuthenticated"), ("creationdate", "creationDate"))
FIELDS = (
    tuple(path for path, _ in _TOP)
    + tuple(f"useridentity.{path}" for path, _ in _IDENTITY)
    + tuple(f"useridentity.sessioncontext.attributes.{path}" for path, _ in _ATTRIBUTES)
)
PATH = "$path"  # Athena's hidden column: the S3 object a row came from, for the account folder
RECORD = "rootcheck_record"  # the one column of the results: [*FIELDS, PATH] as a JSON array
_TOP_KEYS, _IDENTITY_KEYS, _ATTRIBUTE_KEYS = ([key for _, key in part] for part in (_TOP, _IDENTITY, _ATTRIBUTES))
_IDENTITY_AT, _ATTRIBUTES_AT = len(_TOP), len(_TOP) + len(_IDENTITY)
_JSON_TEXT = ("responseElements", "additionalEventData")  # JSON objects stored as text in AWS's DDL


def read_rows(header: bytes, data: bytes) -> Iterator[tuple[dict, str | None]]:
    """Records, and the account folder of the file each came from, from Athena's results CSV.

    The query returns one column, `RECORD`: each row's fields as a JSON array, so a row is one
    line (JSON escapes newlines) that orjson reads at once, and NULL stays apart from "". Athena
    quotes the value and doubles the quotes in it, which `replace` undoes exactly. ValueError
    for anything else: a header that is not `RECORD`, a line that is not one such value.
    """
    if header.rstrip(b"\r\n") != b'"' + RECORD.encode() + b'"':
        raise ValueError(f"the results do not have the column rootcheck's query selects (got {header[:80]!r})")
    width = len(FIELDS) + 1
    hints: dict[str, str | None] = {}
    for line in data.split(b"\n"):
        if not line:
            continue
        try:
            row = _loads(line[1:-1].replace(b'""', b'"')) if line[:1] == line[-1:] == b'"' else None
        except ValueError:  # not JSON
            row = None
        if type(row) is not list or len(row) != width:
            raise ValueError(f"a results line is not a row of {width} fields: {line[:80]!r}")
        record = dict(compress(zip(_TOP_KEYS, row), row))  # the fields that are neither NULL nor ""
        values = row[_IDENTITY_AT:_ATTRIBUTES_AT]
        identity = dict(compress(zip(_IDENTITY_KEYS, values), values))
        values = row[_ATTRIBUTES_AT:-1]
        if any(values):
            identity["sessionContext"] = {"attributes": dict(compress(zip(_ATTRIBUTE_KEYS, values), values))}
        if identity:
            record["userIdentity"] = identity
        _restore_types(record)
        path = row[-1]
        if path not in hints:
            hints[path] = account_from_path(path or "")
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
