"""Canonical text of values and rows, and row digests.

A row's digest must be the same whether it was computed from the mapped values in memory
or from the row read back from any of the three engines — the ledger, rollback conflict
detection and crash-resume comparisons depend on it. So every value is reduced to one
canonical text first.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
from typing import Any, Iterable, Mapping


def canonical(value: Any) -> str | None:
    """One text per value, independent of engine round-trips. None stays None."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime has no canonical form")
        # Whole seconds: MariaDB DATETIME keeps none of the fraction.
        return value.astimezone(dt.timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (float, decimal.Decimal)):
        return f"{float(value):.6f}"
    if isinstance(value, int):
        return str(value)
    return str(value)


def canonical_row(row: Mapping[str, Any], columns: Iterable[str] | None = None) -> dict[str, str | None]:
    names = sorted(row) if columns is None else list(columns)
    return {name: canonical(row.get(name)) for name in names}


def row_digest(row: Mapping[str, Any], columns: Iterable[str] | None = None) -> str:
    """SHA-256 of the canonical row (all its columns, or those named)."""
    payload = json.dumps(canonical_row(row, columns), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def text_fingerprint(text: str | None) -> str | None:
    """What reports show instead of sensitive text: a SHA-256 prefix and the length."""
    if text is None:
        return None
    return f"sha256:{hashlib.sha256(text.encode('utf-8')).hexdigest()[:12]} len={len(text)}"
