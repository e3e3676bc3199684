"""The forms of request parameters that are not JSON: what the server accepts, exactly.

Each is a regular expression the server checks a value against and the OpenAPI document
declares as the parameter's ``pattern``, so that every value the document calls valid is
accepted (docs/security.md, "What was tried").
"""

from __future__ import annotations

import re

# `from`: a position, 0 or more (at most 18 digits: any such number fits a 64-bit integer).
POSITION = "[0-9]{1,18}"
# `size` (-1: every entry) and Last-Event-ID (-1: from the start).
COUNT_OR_ALL = "-1|[0-9]{1,18}"
# `levels`: a bitmask of DEBUG=1, INFO=2, WARN=4, ERROR=8.
LEVELS = "[0-9]|1[0-5]"
# The cursor of executions and SSH keys: the last item's creation time (microseconds since
# 1970) and ID.
KEYSET_CURSOR = "[0-9]{1,16}\\.[0-9a-f-]{1,36}"
# The cursor of the audit log: the last event's number.
AUDIT_CURSOR = "[0-9]{1,18}"
# A workflow ID: `<application>@<environment>@<workflow>`, no part empty.
WORKFLOW_ID = "[^@]+@[^@]+@[^@]+"


def matches(form: str, value: str) -> bool:
    """Whether ``value`` has the form ``form`` (one of the expressions above), whole."""
    return re.fullmatch(form, value) is not None


def declared(form: str, *, may_be_empty: bool = True) -> str:
    """The ``pattern`` of ``form`` in the OpenAPI document (ECMA-262, anchored)."""
    return f"^({form}){'?' if may_be_empty else ''}$"
