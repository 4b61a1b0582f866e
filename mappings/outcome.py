"""What a mapping function returns: target rows, or a reject, plus warnings.

Every mapping module (``mappings/person.py`` …) turns legacy rows into ``Mapped`` values and
nothing else: no database, no I/O. The migration engine writes them; the reconciler uses the
same values as the *expected* content of the new store.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Callable

from mappings import ids as ids_module
from mappings.parse import INVALID, UNKNOWN, parse_last_upd, text
from mappings.reference import Reference


@dataclass(frozen=True)
class Issue:
    """A reject or warning: reason code of ``mapping.md``, the legacy field and its value."""

    code: str
    field: str | None = None
    value: str | None = None  # offending value as text; never intelligence text


def optional_value(parsed, raw, warnings: list[Issue], code: str, field: str):
    """An optional field's value (mapping.md): None when absent; None and a warning ``code``
    naming ``field`` and its raw value when present but invalid — never a reject."""
    if parsed is UNKNOWN:
        return None
    if parsed is INVALID:
        warnings.append(Issue(code, field, text(raw)))
        return None
    return parsed


def updated_at(raw_last_upd, otherwise: dt.datetime, ctx: "MappingContext") -> dt.datetime:
    """``updated_at`` (and a person's stamps): LAST_UPD when the context reads it and it is a
    valid time, else ``otherwise`` (the record's own time) — no warning exists for it."""
    if not ctx.last_upd:
        return otherwise
    last_upd = parse_last_upd(raw_last_upd)
    return otherwise if last_upd is UNKNOWN or last_upd is INVALID else last_upd


@dataclass
class Mapped:
    entity: str  # person | crime | crime_person | intelligence
    legacy_key: str  # trimmed key: CRIME_NO, INTEL_NO, str(NOM_ID), or CRIME_NO:NOM_ID:ROLE
    rows: dict[str, dict] = field(default_factory=dict)  # target table -> row; empty unless accepted
    reject: Issue | None = None
    warnings: list[Issue] = field(default_factory=list)
    excluded: bool = False  # DEL_FLAG = 'Y': neither migrated nor rejected

    @property
    def accepted(self) -> bool:
        return not self.excluded and self.reject is None

    def __reduce__(self):
        # Pickled by its fields, rebuilt by its constructor: ~3x cheaper to unpickle than a
        # dataclass's default (object state set attribute by attribute), and the migration's
        # workers send every mapped record to the writer.
        return Mapped, (self.entity, self.legacy_key, self.rows, self.reject, self.warnings, self.excluded)


@dataclass(frozen=True)
class MappingContext:
    reference: Reference
    run_started: dt.datetime  # aware UTC, whole seconds: person timestamps fall back to it
    # Whether the migration accepts (or accepted) this record: link and subject rules need it.
    person_migrated: Callable[[int], bool] = lambda nom_id: True
    crime_migrated: Callable[[str], bool] = lambda crime_no: True
    # How target ids are made (mappings.ids): real ones unless a caller compares no ids.
    ids: ids_module.IdFunctions = ids_module.REAL
    # Whether LAST_UPD is read for updated_at (and a person's created_at). False: the stamps fall
    # back as for a blank LAST_UPD — for a caller that compares none of them (the reconciler:
    # parsing it is ~4 µs a record, millions of records). Nothing else depends on LAST_UPD.
    last_upd: bool = True
