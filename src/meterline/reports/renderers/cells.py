"""Cell values made safe for spreadsheets.

A string that starts with ``=``, ``+``, ``-``, ``@``, tab, CR or LF is read as a formula by
spreadsheet programs (``=HYPERLINK(…)`` exfiltrates data when a report is opened), so it
gets a leading apostrophe; numbers are left as numbers.
"""

from __future__ import annotations

from typing import Any

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")


def neutralise(value: Any) -> Any:
    """``value`` unchanged unless it is a string a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(_TRIGGERS):
        return "'" + value
    return value
