"""The one base class for errors a user can fix, so every command reports them the same way.

Every CLI entry point catches `UserError` and prints one line (`<command>: error: <message>`) with
`exit_code`, never a traceback. Raise a subclass with a message that names the file, line and field, or the
option and its value, or the endpoint.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input, a bad option value or an unusable path: the message says which, and what to do."""

    exit_code = 2
