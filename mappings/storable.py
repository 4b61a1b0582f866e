"""Last rule of every mapping: a record is only accepted if every target engine can store it.

``mapping.md`` cannot foresee two faults that real OPUS text has and that PostgreSQL and
MariaDB refuse (SQLite would silently accept them, so a SQLite rehearsal would pass and the
production load would abort a batch):

* ``INVALID_CHARACTER`` — a NUL character in any text (PostgreSQL text cannot hold it);
* ``VALUE_TOO_LONG`` — a value longer than its target column, e.g. a beat whose upper-casing
  grows (``ß`` → ``SS``) past text(6).

Both are our own reject codes, applied after the spec's own rules (so a record with a
spec fault is rejected for that first), and reported like every other reject.
"""

from __future__ import annotations

from typing import Iterable, Mapping

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


def reject_unstorable(rows: Iterable[Mapping], results: list[Mapped]) -> list[Mapped]:
    """Turn accepted records holding unstorable values into rejects, in place.

    ``rows`` are the legacy rows the results were mapped from (1:1, same order): the reject
    names the legacy column and repeats its raw value, like every other reject.
    """
    for raw, m in zip(rows, results, strict=True):
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
