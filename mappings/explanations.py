"""One table of plain-English explanations for every code the tool reports: the mapping's
reject and warning codes, the reconciler's ``detail`` codes, conflict kinds and their
resolutions. Data, not code (``explanations.csv``), so wording is corrected without a release;
the migrate console, the migration's ``--out`` files and the reconciler's ``explanation``
column all read it here.
"""

from __future__ import annotations

import csv
import re
from functools import lru_cache
from pathlib import Path

_TABLE = Path(__file__).with_name("explanations.csv")
_OFFSET = re.compile(r"^OFFSET_(-?\d+)H$")


@lru_cache(maxsize=1)
def table() -> dict[str, tuple[str, str]]:
    """code -> (kind, explanation), as the data file holds them."""
    with _TABLE.open(newline="", encoding="utf-8") as f:
        return {row["code"]: (row["kind"], row["explanation"]) for row in csv.DictReader(f)}


def explain(code: str | None, **values) -> str:
    """The plain-English explanation of ``code``; ``""`` for no code, the code itself when the
    table does not know it (a new code must never make a report fail). ``values`` fill the
    ``{name}`` places of an explanation that has them (``OFFSET_BST``: ``what``)."""
    if not code:
        return ""
    known = table()
    if code in known:
        text = known[code][1]
        if values and "{" in text:
            try:
                return text.format(**values)
            except (KeyError, IndexError, ValueError):
                return text
        return text
    offset = _OFFSET.match(code)
    if offset:
        n = int(offset.group(1))
        return known["OFFSET_<n>H"][1].format(n=abs(n), direction="late" if n > 0 else "early")
    return code


def codes(kind: str) -> list[str]:
    """Every code of one kind (``reject``, ``warning``, ``discrepancy``, ``conflict``, ``resolution``)."""
    return [code for code, (k, _) in table().items() if k == kind]
