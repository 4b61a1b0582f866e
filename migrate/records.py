"""What the bookkeeping knows of a migrated record without a ledger row per target row.

Target ids are deterministic (``mappings.ids``): from a record's entity and trimmed legacy key
follow the keys of every row the migration can have written for it — its main row and, for
crimes and intelligence, the one location it owns. ``mig_xref`` therefore holds one row per
record (what was read, what was written, by which runs), and the rollback and a delta run
find the record's target rows from it.
"""

from __future__ import annotations

from core import schema
from mappings import ids

#: The main target table of each entity (what a record's conflict names).
MAIN_TABLE = {"person": "person", "crime": "crime", "crime_person": "crime_person",
              "intelligence": "intelligence_report"}
#: Which entity writes each target table's rows (a location: crimes and intelligence).
LOCATION_OWNER = {"crime": "crime", "intelligence": "intelligence"}

#: Columns of each target table in name order: the order of ``core.digest.row_fingerprint``.
COLUMNS = {name: tuple(sorted(c.name for c in schema.target_metadata.tables[name].columns))
           for name in schema.TARGET_TABLES}
WIDTH = {name: len(columns) for name, columns in COLUMNS.items()}


def target_keys(entity: str, legacy_key: str) -> dict[str, str]:
    """{table: row key} of every row a migrated record may have (composite keys joined by '|')."""
    if entity == "person":
        return {"person": ids.person_id(int(legacy_key))}
    if entity == "crime":
        return {"crime": ids.crime_id(legacy_key), "location": ids.location_id("crime", legacy_key)}
    if entity == "intelligence":
        return {"intelligence_report": ids.intel_id(legacy_key),
                "location": ids.location_id("intelligence", legacy_key)}
    if entity == "crime_person":
        crime_no, nom_id, role = legacy_key.rsplit(":", 2)
        return {"crime_person": f"{ids.linked_crime_id(crime_no)}|{ids.linked_person_id(int(nom_id))}|{role}"}
    raise ValueError(f"unknown entity {entity!r}")


def main_key(entity: str, legacy_key: str) -> str:
    return target_keys(entity, legacy_key)[MAIN_TABLE[entity]]


def describe(entity: str, legacy_key: str | None, table: str | None = None, person: dict | None = None) -> str:
    """A record as an engineer reads it: ``crime CR/000002/18``, ``person NOM_ID 2 (JONES, ANNE)``,
    ``link CR/000001/18 - NOM_ID 1 - VICTIM``, ``location of crime CR/000003/18``."""
    if legacy_key is None:
        return ""
    if entity == "person":
        name = ""
        if person:
            name = ", ".join(p for p in (person.get("family_name"), person.get("given_names")) if p)
        return f"person NOM_ID {legacy_key}" + (f" ({name})" if name else "")
    if entity == "crime_person":
        parts = legacy_key.rsplit(":", 2)
        return f"link {parts[0]} - NOM_ID {parts[1]} - {parts[2]}" if len(parts) == 3 else f"link {legacy_key}"
    what = {"crime": "crime", "intelligence": "intelligence"}.get(entity, entity)
    if table == "location":
        return f"location of {what} {legacy_key}"
    return f"{what} {legacy_key}"


def entity_of(table: str, legacy_key: str | None) -> str:
    """The entity that wrote a row of ``table`` for ``legacy_key`` (a location: by its owner's key)."""
    if table == "location":
        return "intelligence" if (legacy_key or "").startswith("IN") else "crime"
    return {v: k for k, v in MAIN_TABLE.items()}[table]
