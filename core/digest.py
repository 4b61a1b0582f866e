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
import zlib
from typing import Any, Iterable, Mapping


_UTC = dt.timezone.utc
# Mapped rows repeat instants (a crime's recorded_at is also its created_at and often its
# updated_at), so the last few thousand canonical forms are kept; cleared, not evicted, when full.
_DATETIME_TEXT: dict[dt.datetime, str] = {}


def _canonical_datetime(value: dt.datetime) -> str:
    text = _DATETIME_TEXT.get(value)
    if text is not None and value.tzinfo is _UTC:  # same instant *and* same zone: same text
        return text
    if value.tzinfo is _UTC and not value.microsecond:
        text = value.isoformat()[:19] + "Z"  # the usual case: what the mapping produces
    else:
        offset = value.utcoffset()
        if offset is None:
            raise ValueError("naive datetime has no canonical form")
        if offset or value.microsecond:
            # Whole seconds: MariaDB DATETIME keeps none of the fraction.
            value = value.astimezone(_UTC).replace(microsecond=0)
        text = value.isoformat()[:19] + "Z"
        return text
    if len(_DATETIME_TEXT) >= 8192:
        _DATETIME_TEXT.clear()
    _DATETIME_TEXT[value] = text
    return text


def _canonical_number(value) -> str:
    return f"{float(value):.6f}"


# Dispatch on the exact type: this runs for every column of every row the migration writes.
_BY_TYPE = {
    str: lambda v: v,
    int: str,
    bool: lambda v: "true" if v else "false",
    float: _canonical_number,
    decimal.Decimal: _canonical_number,
    dt.datetime: _canonical_datetime,
    dt.date: dt.date.isoformat,
}


def canonical(value: Any) -> str | None:
    """One text per value, independent of engine round-trips. None stays None."""
    if value is None:
        return None
    convert = _BY_TYPE.get(type(value))
    if convert is not None:
        return convert(value)
    # Subclasses (e.g. a driver's own datetime or str type): the slow, general path.
    for kind in (bool, dt.datetime, dt.date, float, decimal.Decimal, int):
        if isinstance(value, kind):
            return _BY_TYPE[kind](value)
    return str(value)


def canonical_row(row: Mapping[str, Any], columns: Iterable[str] | None = None) -> dict[str, str | None]:
    names = sorted(row) if columns is None else list(columns)
    return {name: canonical(row.get(name)) for name in names}


_FIELD, _RECORD, _NULL = "\x1f", "\x1e", "\x00"


def row_digest(row: Mapping[str, Any], columns: Iterable[str] | None = None) -> str:
    """SHA-256 of the canonical row (all its columns, or those named), in column-name order.

    Separators are control characters that cannot be confused with values; NULL is told
    apart from the empty string.
    """
    names = sorted(row) if columns is None else sorted(columns)
    get = row.get
    by_type = _BY_TYPE
    parts = []
    # ``canonical`` inlined: this runs for every column of every row the migration writes.
    for name in names:
        value = get(name)
        if value is None:
            text = _NULL
        elif type(value) is str:
            text = value
        else:
            convert = by_type.get(type(value))
            text = convert(value) if convert is not None else canonical(value)
        parts.append(name + _FIELD + text)
    return hashlib.sha256(_RECORD.join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def record_digests(rows: Mapping[str, Mapping[str, Any]],
                   run_started: dt.datetime | None) -> tuple[str, dict[str, str]]:
    """Digest of everything one legacy record maps to — ``rows``: target table -> row — for
    change detection across runs (mig_xref), and the digest of each of its rows (the ledger).

    A person whose LAST_UPD is blank gets the run's start time as created/updated (mapping.md);
    that value changes every run without the legacy record changing, so the record digest
    replaces it by a marker — otherwise every re-run would "update" those persons. The
    migration writes these digests; a rollback recomputes them to repair mig_xref.
    """
    row_digests = {table_name: row_digest(row) for table_name, row in rows.items()}
    parts = []
    for table_name in sorted(rows):
        row = rows[table_name]
        if run_started is not None and run_started in (row.get("created_at"), row.get("updated_at")):
            stable = {k: ("RUN_START" if k in ("created_at", "updated_at") and v == run_started else v)
                      for k, v in row.items()}
            parts.append(f"{table_name}:{row_digest(stable)}")
        else:
            parts.append(f"{table_name}:{row_digests[table_name]}")
    return hashlib.sha256(";".join(parts).encode()).hexdigest(), row_digests


def record_digest(rows: Mapping[str, Mapping[str, Any]], run_started: dt.datetime | None) -> str:
    """The record digest of :func:`record_digests` alone."""
    return record_digests(rows, run_started)[0]


def text_fingerprint(text: str | None) -> str | None:
    """What reports show instead of sensitive text: a SHA-256 prefix and the length."""
    if text is None:
        return None
    if isinstance(text, (bytes, bytearray, memoryview)):  # a BLOB, or VARBINARY on MariaDB
        text = bytes(text).decode("utf-8", "surrogateescape")
    # surrogateescape: text read with bytes that are not UTF-8 (core/db.py) is fingerprinted
    # as the bytes stored; for any other text it changes nothing.
    return f"sha256:{hashlib.sha256(text.encode('utf-8', 'surrogateescape')).hexdigest()[:12]} len={len(text)}"


# ----------------------------------------------------------------- compact digests (mig_xref)

_NUL = b"\x00"


def row_fingerprint(row: Mapping[str, Any]) -> tuple[bytes, bytes]:
    """(16-byte digest of the canonical row, one fingerprint byte per column), columns in
    name order: what mig_xref keeps of each row the tool wrote. The digest decides whether a
    row changed; the bytes only say *which* columns did (a change that leaves a column's byte
    equal is still a change by the digest, merely not named)."""
    names = sorted(row)
    get = row.get
    by_type = _BY_TYPE
    parts = []
    fingerprints = bytearray()
    crc = zlib.crc32
    for name in names:
        value = get(name)
        if value is None:
            data = _NUL
        else:
            if type(value) is str:
                text = value
            else:
                convert = by_type.get(type(value))
                text = convert(value) if convert is not None else canonical(value)
            data = text.encode("utf-8", "surrogatepass")
        parts.append(data)
        fingerprints.append(crc(data) & 0xFF)
    return hashlib.blake2b(b"\x1e".join(parts), digest_size=16).digest(), bytes(fingerprints)


def short_digest(row: Mapping[str, Any]) -> str:
    """The 16-byte row digest as hex: what mig_ledger keeps of a row a run wrote."""
    return row_fingerprint(row)[0].hex()


def written_image(rows: Mapping[str, Mapping[str, Any]], tables: tuple[str, ...]) -> bytes:
    """mig_xref.written: per row of the record, in ``tables`` order, the table's number, the
    row's digest and its column fingerprints (``row_fingerprint``)."""
    out = bytearray()
    for number, name in enumerate(tables):
        row = rows.get(name)
        if row is not None:
            digest, fingerprints = row_fingerprint(row)
            out.append(number)
            out += digest
            out += fingerprints
    return bytes(out)


def read_written(blob: bytes, tables: tuple[str, ...], widths: Mapping[str, int]) -> dict[str, tuple[bytes, bytes]]:
    """``written_image`` read back: {table: (digest, column fingerprints)}."""
    out = {}
    pos, end = 0, len(blob)
    while pos < end:
        name = tables[blob[pos]]
        width = widths[name]
        out[name] = (bytes(blob[pos + 1:pos + 17]), bytes(blob[pos + 17:pos + 17 + width]))
        pos += 17 + width
    return out
