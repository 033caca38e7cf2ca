"""Exit statuses and usage errors of the command line, shared by `cli` and the scan face.

`scan`: 0 no findings, 1 findings, 2 usage/configuration/input error, 3 some accounts could
not be checked; when several apply, 2 beats 3 beats 1.
"""

from __future__ import annotations

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR, EXIT_PARTIAL = 0, 1, 2, 3


class UsageError(Exception):
    """A mistake of the user's: one line on stderr, exit status 2, never a traceback."""


def exit_status(input_errors: bool, account_errors: bool, findings: bool) -> int:
    if input_errors:
        return EXIT_ERROR
    if account_errors:
        return EXIT_PARTIAL
    return EXIT_FINDINGS if findings else EXIT_CLEAN
