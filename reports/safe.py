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

Invisible and reordering characters
-----------------------------------
A NUL, an escape sequence, or a right-to-left override (U+202E) in a street name reaches the
CSV and the workbook raw: a NUL truncates the field in some readers, a terminal runs escape
codes, and a bidi control makes a cell *display* other text than it holds (``evil\u202etxt.exe``
reads as ``evilexe.txt``). :func:`show_invisible` writes each such character visibly by its code
(``\x00``, ``\x1b``, ``\u202e``): C0 controls except tab, line feed and carriage return (what
CSV quoting carries, RFC 4180), DEL and the C1 controls, the bidi controls (U+061C, U+200E/F,
U+202A-202E, U+2066-2069), invisible separators and joiners that are no part of any script
(U+180E, U+200B, U+2060-2064, U+FEFF, U+2028/2029, U+FFF9-FFFB), tag characters
(U+E0000-E007F), lone surrogates and the non-characters U+FFFE/FFFF. The zero-width (non-)joiner
U+200C/D stays: names in several scripts need it. A backslash is not doubled, so a value that
literally holds the text ``\x00`` reads the same as one holding a NUL; both sides of a
difference are shown the same way, and readability wins. :func:`neutralise` applies it, so
every CSV and workbook text cell gets it (``reports.xlsx`` calls ``neutralise`` too).

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
    """``value`` made safe for a spreadsheet cell: invisible and reordering characters shown by
    their code (:func:`show_invisible`), then text that could be a formula gets a leading ``'``.

    The one function every CSV and workbook text cell goes through. Non-text values (numbers,
    dates, None) pass through unchanged.
    """
    if isinstance(value, str):
        # isprintable() (fast, in C) is False for every character _INVISIBLE matches.
        if not value.isprintable() and _INVISIBLE.search(value):
            value = _INVISIBLE.sub(_code, value)
        if needs_neutralising(value):
            return QUOTE + value
    return value


_INVISIBLE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u180e\u200b\u200e\u200f\u2028-\u202e"
    "\u2060-\u2064\u2066-\u2069\ufeff\ufff9-\ufffb\ufffe\uffff\ud800-\udfff\U000e0000-\U000e007f]")


def _code(match: re.Match) -> str:
    n = ord(match.group())
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


def show_invisible(text: str) -> str:
    """``text`` with each invisible or reordering character written as its code (``\\u202e``)."""
    return _INVISIBLE.sub(_code, text) if not text.isprintable() and _INVISIBLE.search(text) else text


def mask_credentials(text: str | None) -> str | None:
    """Mask every credential in ``text`` (``core.db.mask_secrets``: the one rule). Idempotent;
    None stays None."""
    if text is None:
        return None
    return mask_secrets(str(text))
