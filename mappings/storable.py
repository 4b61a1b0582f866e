"""First and last rules of every mapping: a record is only mapped if its text can be read, and
only accepted if every target engine can store it.

``mapping.md`` cannot foresee three faults that real OPUS text has:

* ``INVALID_ENCODING`` — a value whose stored bytes are not UTF-8 (any column of any legacy
  table: SQLite and a PostgreSQL SQL_ASCII database hold whatever they were given; a BLOB or
  VARBINARY value is bytes). ``core/db.py`` hands such text over with each bad byte as a lone
  surrogate instead of failing the read; here the record is rejected *before* the spec's rules
  (a date or key that cannot be read cannot be judged), naming the column and showing the value
  escaped (``\\xff``; never intelligence text). The record's legacy key, if it is the
  undecodable value, is kept escaped too, so every bookkeeping table and report can hold it.
  Bytes that are UTF-8 are text like any other. Applied first, so the entity rules only ever
  see ``str``.

The other two PostgreSQL and MariaDB refuse (SQLite would silently accept them, so a SQLite
rehearsal would pass and the production load would abort a batch):

* ``INVALID_CHARACTER`` — a NUL character in any text (PostgreSQL text cannot hold it);
* ``VALUE_TOO_LONG`` — a value longer than its target column, e.g. a beat whose upper-casing
  grows (``ß`` → ``SS``) past text(6).

These two are applied after the spec's own rules (so a record with a
spec fault is rejected for that first), and reported like every other reject.
"""

from __future__ import annotations

import re
from typing import Callable, Iterable, Mapping

from sqlalchemy import String

from core.schema import target_metadata, text_length
from mappings.outcome import Issue, Mapped
from mappings.parse import text

#: The legacy column each text column of the target comes from, so a reject names what to fix.
SOURCE_COLUMN = {
    ("location", "address"): "addr_line", ("location", "postcode"): "pcode", ("location", "beat"): "beat",
    ("crime", "mo_summary"): "mo_text", ("crime", "oic_collar"): "oic", ("crime", "legacy_ref"): "crime_no",
    ("person", "family_name"): "surname", ("person", "given_names"): "forenames", ("person", "pnc_id"): "pnc_id",
    ("person", "ethnicity_code"): "eth_code",
    ("intelligence_report", "officer_collar"): "officer", ("intelligence_report", "legacy_ref"): "intel_no",
    ("intelligence_report", "intel_text"): "int_text",
}


def map_storable(rows, ctx, map_batch: Callable[[list, object], list[Mapped]]) -> list[Mapped]:
    """``map_batch`` (an entity's batch mapping) under the rules of this module: records with
    undecodable text rejected first, unstorable values last. 1:1 with ``rows``, same order."""
    rows = rows if isinstance(rows, list) else list(rows)
    readable, undecodable = _readable(rows)
    return reject_unstorable(rows, map_batch(readable, ctx), undecodable)


def escaped(value) -> str | None:
    """A legacy value as text that any store and console can hold: bytes that are not UTF-8 (as
    bytes, or as the lone surrogates ``core/db.py`` reads them as) shown as ``\\xff``."""
    value = text(value)  # bytes: escaped there
    if value is None:
        return None
    if value.isascii() or not _SURROGATE(value):
        return value
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


_SURROGATE = re.compile("[\ud800-\udfff]").search


def _readable(rows: list[Mapping]) -> tuple[list[Mapping], dict[int, str]]:
    """(rows the entity rules can read, {row index: first column holding undecodable text}).

    A row with bytes or undecodable text is copied with each such value as text: UTF-8 bytes
    decoded, undecodable ones escaped (so its key rules give an escaped legacy key). Clean
    rows, nearly all, are passed as they are.
    """
    readable = rows
    undecodable: dict[int, str] = {}
    for i, row in enumerate(rows):
        if not _needs_reading(row):
            continue
        fixed = None
        for name, value in row.items():
            kind = type(value)
            if kind is str:
                if value.isascii() or not _SURROGATE(value):
                    continue
                shown = escaped(value)
            elif kind is bytes or kind is bytearray or kind is memoryview:
                try:
                    shown = bytes(value).decode("utf-8")
                except UnicodeDecodeError:  # (strict UTF-8 refuses encoded surrogates too)
                    shown = escaped(value)
                else:
                    fixed = fixed or dict(row)
                    fixed[name] = shown
                    continue
            else:
                continue
            fixed = fixed or dict(row)
            fixed[name] = shown
            undecodable.setdefault(i, name)
        if fixed is not None:
            if readable is rows:
                readable = list(rows)
            readable[i] = fixed
    return readable, undecodable


def _needs_reading(row: Mapping) -> bool:
    """Whether the row holds bytes or undecodable text (the fast test, run on every row)."""
    for value in row.values():
        kind = type(value)
        if kind is str:
            if value.isascii() or not _SURROGATE(value):
                continue
            return True
        if kind is bytes or kind is bytearray or kind is memoryview:
            return True
    return False


def reject_unstorable(rows: Iterable[Mapping], results: list[Mapped],
                      undecodable: dict[int, str] | None = None) -> list[Mapped]:
    """Turn accepted records holding unstorable values into rejects, in place.

    ``rows`` are the legacy rows the results were mapped from (1:1, same order): the reject
    names the legacy column and repeats its raw value, like every other reject.
    ``undecodable`` (from ``_readable``): rows to reject as INVALID_ENCODING whatever their
    mapping said — unless deleted (DEL_FLAG 'Y' read as such), which excludes any record.
    """
    undecodable = undecodable or {}
    for i, (raw, m) in enumerate(zip(rows, results, strict=True)):
        column = undecodable.get(i)
        if column is not None:
            if not m.excluded:
                # Intelligence text is never repeated anywhere, not even in a reject.
                shown = None if column == "int_text" else escaped(raw.get(column))
                m.rows, m.reject, m.warnings = {}, Issue("INVALID_ENCODING", column.upper(), shown), []
            continue
        if m.rows and m.reject is None and not m.excluded:
            problem = _first_problem(m)
            if problem is not None:
                code, table_name, column = problem
                source = SOURCE_COLUMN.get((table_name, column))
                if source is None:
                    issue = Issue(code, f"{table_name}.{column}".upper(), None)
                else:
                    value = raw.get(source)
                    # Intelligence text is never repeated anywhere, not even in a reject.
                    shown = None if source == "int_text" else text(value)
                    issue = Issue(code, source.upper(), shown)
                m.rows, m.reject, m.warnings = {}, issue, []
    return results


# Per table, the text columns to check and each one's limit (None: unbounded text): only those
# that carry text from OPUS (SOURCE_COLUMN). Every other text column holds a code table's value
# — checked once when the tables load (mappings/reference.py), a table that does not fit is
# refused there — or text the tool builds itself (ids, CRI-/INT- references, fixed words such
# as FINALISED or VICTIM), and dates and numbers cannot hold a NUL or outgrow a column.
# tests/test_mapping_properties.py holds every accepted record of arbitrary input to all columns.
_TEXT_COLUMNS: dict[str, tuple[tuple[str, int | None], ...]] = {
    table.name: tuple((c.name, text_length(table.name, c.name)) for c in table.columns
                      if isinstance(c.type, String) and (table.name, c.name) in SOURCE_COLUMN)
    for table in target_metadata.tables.values()
}


def _first_problem(m: Mapped) -> tuple[str, str, str] | None:
    for table_name, row in m.rows.items():
        get = row.get
        for column, limit in _TEXT_COLUMNS.get(table_name, ()):
            value = get(column)
            if type(value) is not str:
                continue
            if "\x00" in value:
                return "INVALID_CHARACTER", table_name, column
            if limit is not None and len(value) > limit:
                return "VALUE_TOO_LONG", table_name, column
    return None
