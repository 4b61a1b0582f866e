"""Per entity, what the reconciler compares and where it finds it in iOPS.

An ``EntitySpec`` is reconcile's half of an entity: the catalogue ``Entity``
(``mappings.entities``: legacy table, key column, mapping, key encoding — shared with the
migration) plus the target side — the iOPS table, its key, id and reference columns — and the
field rules of ``reconciliation.md`` (``reconcile.compare.FieldRule``: how each mapped value is
compared, and which legacy columns it comes from). ``expected_values`` reads a mapped record's
compared values in rule order, as the keyed look-up fetches the new record's. Pure data and
functions: no database.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from core.refs import decode_ref
from mappings import entities
from mappings.entities import Entity
from mappings.outcome import Mapped, MappingContext
from reconcile.compare import COORD, EXACT, INSTANT, SECRET, TEXT, FieldRule

PERSON_RULES = (
    FieldRule("family_name", TEXT, ("surname", "forenames")),
    FieldRule("given_names", TEXT, ("surname", "forenames")),
    FieldRule("date_of_birth", EXACT, ("dob",)),
    FieldRule("sex", EXACT, ("sex",)),
    FieldRule("pnc_id", EXACT, ("pnc_id",)),
    FieldRule("ethnicity_code", EXACT, ("eth_code",)),
    FieldRule("source_system", EXACT),
)

_LOCATION_RULES = (
    FieldRule("location.address", TEXT, ("addr_line",)),
    FieldRule("location.postcode", EXACT, ("pcode",)),
    FieldRule("location.easting", EXACT, ("grid_e",)),
    FieldRule("location.northing", EXACT, ("grid_n",)),
    FieldRule("location.latitude", COORD, ("grid_e", "grid_n")),
    FieldRule("location.longitude", COORD, ("grid_e", "grid_n")),
    FieldRule("location.beat", EXACT, ("beat",)),
    FieldRule("location.district_code", EXACT, ("div",)),
)

CRIME_RULES = (
    FieldRule("crime_ref", EXACT, ("crime_no",)),
    FieldRule("ho_offence_code", EXACT, ("off_code",)),
    FieldRule("offence_description", TEXT, ("off_code",)),  # prose: case/space do not count
    FieldRule("offence_group", EXACT, ("off_code",)),
    FieldRule("police_uk_category", EXACT, ("off_code",)),
    FieldRule("recorded_at", INSTANT, ("rec_date", "rec_time")),
    FieldRule("committed_from", INSTANT, ("from_date", "from_time")),
    FieldRule("committed_to", INSTANT, ("to_date", "to_time")),
    FieldRule("district_code", EXACT, ("div",)),
    FieldRule("status", EXACT, ("status",)),
    FieldRule("outcome_code", EXACT, ("disposal",)),
    FieldRule("mo_summary", TEXT, ("mo_text",)),
    FieldRule("oic_collar", EXACT, ("oic",)),
    FieldRule("source_system", EXACT),
) + _LOCATION_RULES

INTEL_RULES = (
    FieldRule("intel_ref", EXACT, ("intel_no",)),
    FieldRule("submitted_at", INSTANT, ("submit_date", "submit_time")),
    FieldRule("source_evaluation", EXACT, ("src_eval",)),
    FieldRule("intelligence_assessment", EXACT, ("int_eval",)),
    FieldRule("handling_code", EXACT, ("handling",)),
    FieldRule("handling_conditions", TEXT, ("handling",)),
    FieldRule("grading_review_required", EXACT, ("src_eval", "int_eval", "handling")),
    # Compared as the subject's legacy NOM_ID: the uuid is a surrogate key.
    FieldRule("subject_person_id", EXACT, ("subj_nom_id",)),
    FieldRule("intel_text", SECRET, ("int_text",)),
    FieldRule("district_code", EXACT, ("div",)),
    FieldRule("review_date", EXACT, ("review_date",)),
    FieldRule("officer_collar", EXACT, ("officer",)),
    FieldRule("source_system", EXACT),
    # An intelligence location carries the grid only (mapping.md): no address, postcode, beat.
    FieldRule("location.address", TEXT),
    FieldRule("location.postcode", EXACT),
    FieldRule("location.easting", EXACT, ("grid_e",)),
    FieldRule("location.northing", EXACT, ("grid_n",)),
    FieldRule("location.latitude", COORD, ("grid_e", "grid_n")),
    FieldRule("location.longitude", COORD, ("grid_e", "grid_n")),
    FieldRule("location.beat", EXACT),
    FieldRule("location.district_code", EXACT, ("div",)),
)


@dataclass(frozen=True)
class EntitySpec:
    """One keyed entity as the reconciler compares it: the catalogue entity and the target side."""

    entity: Entity  # legacy table, key column, mapping, key encoding (mappings.entities)
    target_table: str
    main_table: str  # the mapped row that is the record (Mapped.rows key)
    target_key: str  # legacy_ref | legacy_nominal_id
    target_id: str  # crime_id | intel_id | person_id
    new_ref: str  # crime_ref | intel_ref | person_id
    rules: tuple[FieldRule, ...]

    @property
    def name(self) -> str:  # person | crime | intelligence (reconcile.model.ENTITIES)
        return self.entity.name

    @property
    def legacy_table(self) -> str:
        return self.entity.legacy_table

    @property
    def key_column(self) -> str:  # legacy key, streamed in this order
        return self.entity.key_column

    @property
    def map_batch(self) -> Callable[[Sequence, MappingContext], list[Mapped]]:
        return self.entity.map_batch

    @property
    def encode_key(self) -> Callable[[Any], int | str]:
        return self.entity.encode_key


PERSON = EntitySpec(entities.PERSON, "person", "person", "legacy_nominal_id", "person_id", "person_id", PERSON_RULES)
CRIME = EntitySpec(entities.CRIME, "crime", "crime", "legacy_ref", "crime_id", "crime_ref", CRIME_RULES)
INTEL = EntitySpec(entities.INTELLIGENCE, "intelligence_report", "intelligence_report", "legacy_ref", "intel_id",
                   "intel_ref", INTEL_RULES)
SPECS: dict[str, EntitySpec] = {s.name: s for s in (PERSON, CRIME, INTEL)}


def expected_values(spec: EntitySpec, m: Mapped) -> list:
    """The mapped value of every compared field, in ``spec.rules`` order (the record's own
    columns first, then its location's — the order the rules are declared in)."""
    getters = _GETTERS[spec.name]
    main = m.rows[spec.main_table]
    try:
        values = list(getters[0](main))
    except KeyError:  # a mapped row without some column: treat it as NULL
        values = [main.get(c) for c in getters[2]]
    if getters[1] is not None:
        location = m.rows.get("location")
        if location is None:
            values.extend([None] * len(getters[3]))
        else:
            try:
                values.extend(getters[1](location))
            except KeyError:
                values.extend(location.get(c) for c in getters[3])
    return values


def _getters(spec: EntitySpec):
    own = tuple(r.name for r in spec.rules if not r.name.startswith("location."))
    loc = tuple(r.name[9:] for r in spec.rules if r.name.startswith("location."))
    names = [r.name for r in spec.rules]
    assert names == list(own) + [f"location.{c}" for c in loc], "location rules must come last"

    def getter(columns):
        if not columns:
            return None
        get = operator.itemgetter(*columns)
        return get if len(columns) > 1 else (lambda row: (get(row),))

    return getter(own), getter(loc), own, loc


_GETTERS = {spec.name: _getters(spec) for spec in (PERSON, CRIME, INTEL)}

# Where the crime statistics' columns sit among a fetched crime's compared values.
RECORDED, DISTRICT, GROUP, STATUS, LATITUDE, LONGITUDE = (
    [r.name for r in CRIME_RULES].index(name) for name in (
        "recorded_at", "district_code", "offence_group", "status", "location.latitude", "location.longitude"))


#: Whether the keyed pass can have looked a new record's raw key up: it asks for trimmed text
#: references, and for persons for whole numbers (``reconcile.evaluate.lookup_key``).
LOOKED_UP: dict[str, Callable[[Any], bool]] = {
    "person": lambda raw: type(raw) is int,
    "crime": lambda raw: type(raw) is str,
    "intelligence": lambda raw: type(raw) is str,
}
#: The raw key a key set's key stands for (the inverse of each entity's encoder).
DECODE: dict[str, Callable[[Any], Any]] = {
    "person": lambda k: k,
    "crime": lambda k: decode_ref(k, "CR") if type(k) is int else k,
    "intelligence": lambda k: decode_ref(k, "IN") if type(k) is int else k,
}
