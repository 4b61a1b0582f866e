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

from sqlalchemy import String

from core.schema import target_metadata
from mappings.outcome import Issue, Mapped

_LIMITS: dict[str, dict[str, int]] = {
    table.name: {c.name: c.type.length for c in table.columns if isinstance(c.type, String) and c.type.length}
    for table in target_metadata.tables.values()
}


def reject_unstorable(results: list[Mapped]) -> list[Mapped]:
    """Turn accepted records holding unstorable values into rejects, in place."""
    for m in results:
        if m.rows and m.reject is None and not m.excluded:
            issue = _first_problem(m)
            if issue is not None:
                m.rows, m.reject, m.warnings = {}, issue, []
    return results


def _first_problem(m: Mapped) -> Issue | None:
    for table_name, row in m.rows.items():
        limits = _LIMITS.get(table_name, {})
        for column, value in row.items():
            if type(value) is not str:
                continue
            if "\x00" in value:
                # The value is not repeated: it may be intelligence text.
                return Issue("INVALID_CHARACTER", f"{table_name}.{column}".upper(), None)
            limit = limits.get(column)
            if limit is not None and len(value) > limit:
                shown = None if column == "intel_text" else value[:200]
                return Issue("VALUE_TOO_LONG", f"{table_name}.{column}".upper(), shown)
    return None
