"""Where offline input comes from: files, folders (a trail archive), stdin, and S3.

Only names and bytes leave this module; parsing and detection happen in `bot.scan.offline`.
Folder walks and S3 listings are lazy, so an archive of any size is never listed into memory
at once, and S3 is imported only when an `s3://` path is given.
"""

from __future__ import annotations

import gzip
import os
import sys
import zlib
from collections.abc import Callable, Iterator

from bot.checks.records import is_archive_file
from bot.models import Document

GZIP_MAGIC = b"\x1f\x8b"


class InputError(Exception):
    """An input that cannot be read at all: named, one line, exit status 2."""


def iter_documents(
    spec: str, on_error: Callable[[str], None], keep: Callable[[str], bool] = lambda name: True
) -> Iterator[Document]:
    """Documents named by one `--events`/`--credential-report` argument.

    `keep` prunes archive paths before they are opened (date folders outside the window).
    Errors are reported through `on_error` and the rest is still read.
    """
    if spec == "-":
        yield Document(name="<stdin>", data=sys.stdin.buffer.read())
    elif spec.startswith("s3://"):
        from bot.aws.s3 import iter_s3_documents  # noqa: PLC0415 - keeps boto3 off offline start-up

        yield from iter_s3_documents(spec, on_error, keep)
    elif os.path.isdir(spec):
        yield from _walk(spec, on_error, keep)
    elif os.path.exists(spec):
        yield Document(name=spec, path=spec)
    else:
        on_error(f"{spec}: no such file or folder")


def read_bytes(document: Document) -> bytes:
    """The document's content, gunzipped when it is gzip whatever its name says."""
    data = document.data
    if data is None:
        try:
            with open(document.path, "rb") as handle:  # type: ignore[arg-type]
                data = handle.read()
        except OSError as exc:
            raise InputError(f"{document.name}: cannot read ({exc.strerror or exc})") from None
    if data[:2] == GZIP_MAGIC:
        try:
            return gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"{document.name}: corrupt gzip ({exc})") from None
    return data


def _walk(root: str, on_error: Callable[[str], None], keep: Callable[[str], bool]) -> Iterator[Document]:
    def report(exc: OSError) -> None:
        on_error(f"{exc.filename}: cannot read folder ({exc.strerror})")

    for folder, dirs, files in os.walk(root, onerror=report):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(folder, name)
            if is_archive_file(name) and keep(path):
                yield Document(name=path, path=path)
