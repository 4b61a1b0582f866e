"""What makes a value safe to put in front of an auditor: no formulas, no passwords, no intelligence.

Spreadsheet ("CSV") injection
-----------------------------
The reports hold text that came out of two databases we do not control: names, addresses,
free text typed by officers, values typed into iOPS by another vendor. A spreadsheet program
treats a cell that *begins* with ``=``, ``+``, ``-`` or ``@`` as a formula, and a leading tab
or carriage return can smuggle one past a first-character check. Opening
``discrepancies.csv`` in Excel or LibreOffice would then run whatever an offender or a
careless import put in a street name (``=HYPERLINK(...)`` exfiltrating the row, ``=cmd|...``
DDE). OWASP's advice ("CSV Injection") is to prefix such cells with a single quote: the
spreadsheet then shows the text and never evaluates it, and a reader can *see* that the
value was neutralised (the quote is visible in the CSV, and in the workbook cell).

We do not prefix purely numeric text such as ``-2.5`` or ``-1``: a negative number is data,
not a formula, and mangling it would turn every negative easting or delta into a false
difference in the auditor's eyes.

The same text goes into the CSV and the workbook, so a value reads the same in both. In the
workbook the cell is additionally written with data type ``s`` (string), so even a value
that slipped past this rule could never be stored as a formula (see ``reports/xlsx.py``).

Passwords
---------
Store URLs arrive masked by ``core.db.mask_url``; :func:`mask_credentials` masks them again
(defence in depth, by the same rule) before anything is printed or written.
"""

from __future__ import annotations

import re

from core.db import mask_secrets

#: First characters that make a spreadsheet evaluate a cell (OWASP: = + - @ TAB CR).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

#: Text that is a plain number (optionally signed, decimal, exponent): data, never neutralised.
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")

#: The visible marker OWASP recommends.
QUOTE = "'"


def is_plain_number(text: str) -> bool:
    return _NUMBER.fullmatch(text) is not None


def needs_neutralising(text: str) -> bool:
    """True when a spreadsheet could read ``text`` as a formula."""
    return bool(text) and text.startswith(FORMULA_TRIGGERS) and not is_plain_number(text)


def neutralise(value):
    """``value`` made safe for a spreadsheet cell: text that could be a formula gets a leading ``'``.

    Non-text values (numbers, dates, None) pass through unchanged.
    """
    if isinstance(value, str) and needs_neutralising(value):
        return QUOTE + value
    return value


def mask_credentials(text: str | None) -> str | None:
    """Mask every credential in ``text`` (``core.db.mask_secrets``: the one rule). Idempotent;
    None stays None."""
    if text is None:
        return None
    return mask_secrets(str(text))
