"""Keyed matching and field comparison, entity by entity (``reconciliation.md``, Matching 1,
Categories, Comparing fields); the links of matched crimes; the glue to unkeyed matching.

Per entity the legacy table is streamed in key order in batches (as ``migrate/engine.py``
does); each batch is mapped by the same pure functions the migration uses, which gives the
*expected* rows; the target rows carrying the batch's trimmed keys are fetched with one
indexed ``legacy_ref IN (...)`` (person: ``legacy_nominal_id IN (...)``) and compared. Nothing
is held per record beyond compact integer key sets (``core.intset``), so memory
does not grow with the size of the stores, except for the legacy records left without a
keyed counterpart (the candidates of unkeyed matching, normally few).

After each keyed pass the target table is streamed once to find ``UNEXPECTED`` records
(a legacy key that is no live legacy record), count the new side, collect unkeyed records
and — for crimes — the new side of the crime statistics.

Order matters as in the migration: persons, crimes, unkeyed crimes, links, intelligence —
the mapping of a link or of an intelligence subject depends on which persons and crimes the
mapping accepts, and links are compared only for crimes and persons both matched (keyed or
AUTO), so after unkeyed matching.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import operator
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.db import connect, legacy_key_bound, store_errors, stream
from core.keyset import KeySet as IntSet  # (the name kept until keyed.py is split: core.keyset.KeySet)
from core.refs import decode_ref, encode_crime_ref, encode_intel_ref
from core.progress import bar
from mappings import map_crimes, map_intel, map_links, map_persons
from mappings.ids import SKIPPED as NO_IDS
from mappings.outcome import Issue, Mapped, MappingContext
from mappings.parse import parse_nom_id
from reconcile import similarity
from reconcile.census import Census, CensusReader
from reconcile.compare import COORD, EXACT, INSTANT, SECRET, TEXT, FieldRule, diff_fields
from reconcile.model import Discrepancy, EntityTotals
from reconcile.stats import CrimeStats, cell_of, mapped_cell

#: Target rows fetched per ``IN (...)`` when looking records up by id.
LOOKUP_CHUNK = 1000


def keys_in(column: sa.ColumnElement) -> sa.ColumnElement:
    """``column IN (...)`` over the list given as ``{"keys": [...]}`` when executed.

    The batch look-ups run once per batch with up to a batch of keys: built this way the
    statement is constructed once per reconciliation, not once per batch with every key
    coerced into a literal (measured: ~3 ms of CPU per batch of 2,000).
    """
    return column.in_(sa.bindparam("keys", expanding=True, type_=column.type))

# ------------------------------------------------------------------------------------ keys

_REF = re.compile(r"^(?:CR|IN)/(\d{6})/(\d{2})$")


def encode_person(key: Any) -> int | str:
    try:
        return int(key)
    except (TypeError, ValueError):
        return str(key)


#: Whether the keyed pass can have looked a new record's raw key up: it asks for trimmed text
#: references, and for persons for whole numbers (``_lookup_key``).
_LOOKED_UP: dict[str, Callable[[Any], bool]] = {
    "person": lambda raw: type(raw) is int,
    "crime": lambda raw: type(raw) is str,
    "intelligence": lambda raw: type(raw) is str,
}
#: The raw key a key set's key stands for (the inverse of each entity's encoder).
_DECODE: dict[str, Callable[[Any], Any]] = {
    "person": lambda k: k,
    "crime": lambda k: decode_ref(k, "CR") if type(k) is int else k,
    "intelligence": lambda k: decode_ref(k, "IN") if type(k) is int else k,
}


class EntityKeys:
    """What the reconciler remembers of one legacy entity, as compact sets of encoded keys.

    ``accepted``: live records the mapping migrates (the big set). ``rejected``: live records
    the mapping rejects. ``excluded``: logically deleted. ``unmatched``: accepted records
    with no keyed counterpart (yet) — the candidates of unkeyed matching.
    """

    def __init__(self, encode: Callable[[Any], int | str]) -> None:
        self.encode = encode
        self.accepted = IntSet()  # the big one: a bitmap, cheap to hold and to send to workers
        self.rejected: set = set()
        self.excluded: set = set()
        self.unmatched: set = set()

    def claim(self, k, accepted: bool) -> bool:
        """Record a live record by its encoded key, accepted by the mapping or not; False (and
        nothing recorded) if a live record with this key was met before."""
        if k in self.rejected:
            return False
        if accepted:
            return self.accepted.add(k)
        if k in self.accepted:
            return False
        self.rejected.add(k)
        return True

    def is_live(self, key) -> bool:
        k = self.encode(key)
        return k in self.accepted or k in self.rejected

    def is_excluded(self, key) -> bool:
        return self.encode(key) in self.excluded

    def is_accepted(self, key) -> bool:
        return self.encode(key) in self.accepted

    def is_matched(self, key) -> bool:
        """Accepted by the mapping and present in the new store (keyed or AUTO)."""
        k = self.encode(key)
        return k in self.accepted and k not in self.unmatched


# --------------------------------------------------------------------------- entity specs

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
    name: str  # person | crime | intelligence (reconcile.model.ENTITIES)
    legacy_table: str
    key_column: str  # legacy key, streamed in this order
    map_batch: Callable[[Sequence, MappingContext], list[Mapped]]
    target_table: str
    main_table: str  # the mapped row that is the record (Mapped.rows key)
    target_key: str  # legacy_ref | legacy_nominal_id
    target_id: str  # crime_id | intel_id | person_id
    new_ref: str  # crime_ref | intel_ref | person_id
    rules: tuple[FieldRule, ...]


PERSON = EntitySpec("person", "nominal", "nom_id", map_persons, "person", "person", "legacy_nominal_id",
                    "person_id", "person_id", PERSON_RULES)
CRIME = EntitySpec("crime", "crime", "crime_no", map_crimes, "crime", "crime", "legacy_ref",
                   "crime_id", "crime_ref", CRIME_RULES)
INTEL = EntitySpec("intelligence", "intel", "intel_no", map_intel, "intelligence_report", "intelligence_report",
                   "legacy_ref", "intel_id", "intel_ref", INTEL_RULES)


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
_RECORDED, _DISTRICT, _GROUP, _STATUS, _LATITUDE, _LONGITUDE = (
    [r.name for r in CRIME_RULES].index(name) for name in (
        "recorded_at", "district_code", "offence_group", "status", "location.latitude", "location.longitude"))


#: Ranks a new record without created_at after every record that has one.
_NEVER = dt.datetime.max.replace(tzinfo=dt.timezone.utc)


@dataclass(slots=True)
class TargetRecord:
    """One new record carrying a legacy key: its ids and its compared values."""

    target_id: str
    new_ref: str
    created_at: dt.datetime | None
    values: list
    subject_person_id: str | None = None  # intelligence: the raw uuid, resolved to NOM_ID later


# ------------------------------------------------------------------------ batch evaluation
#
# A keyed batch is reconciled in two steps. ``BatchEvaluator.evaluate`` does everything that
# depends on the batch alone — map it, look its keys up in the new store, compare fields, place
# each crime in the statistics — and returns one compact *outcome* per legacy record.
# ``Reconciler._apply`` then does what depends on the records before it in key order (two
# legacy keys equal once trimmed; the key sets later passes use) and emits the findings. The
# first step is nearly all the work and is pure, so it can run in worker processes
# (``reconcile/parallel.py``); the second is cheap and always runs here, in key order, so the
# result is the same whichever process evaluated a batch.

#: Fields of an outcome: a plain tuple, because outcomes cross process boundaries (pickling a
#: tuple costs a fraction of a dataclass).
(O_KEY, O_EXCLUDED, O_REJECT, O_LEGACY_CELL, O_NEW_CELLS, O_FOUND, O_FINDINGS, O_CANDIDATE) = range(8)


class _TargetReader:
    """Look-ups in the new store by batch: statements compiled once, errors as StoreUnavailable."""

    def __init__(self, target: Engine, target_tables: dict, ctx: MappingContext) -> None:
        self.target = target
        self.tt = target_tables
        self.ctx = ctx
        self._statements: dict[str, Any] = {}

    def _target_all(self, conn, stmt, keys: list | None = None) -> list:
        """All rows of ``stmt``; ``keys``: the list for its ``keys_in`` condition."""
        with store_errors(self.target, "target"):
            return conn.execute(stmt, None if keys is None else {"keys": keys}).all()

    def _statement(self, name: str, build: Callable[[], Any]):
        """The look-up statement ``name``, built on first use (they take ``keys`` when executed)."""
        stmt = self._statements.get(name)
        if stmt is None:
            stmt = self._statements[name] = build()
        return stmt


class BatchEvaluator(_TargetReader):
    """The pure half of a keyed batch: legacy rows in, one outcome per row out (above).

    Reads the new store only (one keyed look-up per batch); holds no state between batches
    beyond its compiled statements, so any process can evaluate any batch.
    """

    def evaluate(self, spec: EntitySpec, batch: list[dict], tconn) -> list[tuple]:
        mapped = spec.map_batch(batch, self.ctx)
        lookups = [None if m.excluded else _lookup_key(spec, m) for m in mapped]
        # Every live record's key is looked up, also a second record whose key equals an
        # earlier one's once trimmed: _apply ignores that one's outcome, as it must.
        found = self._fetch_keyed(tconn, spec, list(dict.fromkeys(k for k in lookups if k is not None)))
        if spec is INTEL:
            self._resolve_subjects(tconn, found, batch, mapped)
        is_crime = spec is CRIME
        # Equal statistics cells as one object: a batch of outcomes then pickles each distinct
        # cell once (measured at 100k crimes: pickled and unpickled in 4.2 µs a crime instead of 10.1).
        cells: dict = {}
        same_cell = lambda cell: cells.setdefault(cell, cell)  # noqa: E731
        outcomes = []
        for raw, m, lookup in zip(batch, mapped, lookups, strict=True):
            if m.excluded:
                outcomes.append((m.legacy_key, True, None, None, (), 0, (), None))
                continue
            records = found.get(lookup) if lookup is not None else None
            legacy_cell, new_cells = None, ()
            if is_crime:
                if m.reject is None:
                    legacy_cell = same_cell(mapped_cell(m.rows["crime"], m.rows.get("location")))
                if records:
                    new_cells = tuple(same_cell(cell) for rec in records if (cell := cell_of(
                        rec.values[_RECORDED], rec.values[_DISTRICT], rec.values[_GROUP], rec.values[_STATUS],
                        rec.values[_LATITUDE], rec.values[_LONGITUDE])) is not None)
            findings, candidate = (), None
            if records:
                findings = (self._rejected_findings(spec, m, records) if m.reject is not None
                            else self._matched_findings(spec, raw, m, records))
            elif m.reject is None and spec is not PERSON:
                candidate = _candidate(spec, raw, m)
            outcomes.append((m.legacy_key, False, m.reject, legacy_cell, new_cells,
                             len(records) if records else 0, findings, candidate))
        return outcomes

    # ------------------------------------------------------------------ target reads

    def _target_select(self, spec: EntitySpec):
        main = self.tt[spec.target_table]
        location = self.tt["location"]
        # created_at only matters to choose among duplicates: fetched for those alone (_created_at).
        columns = [main.c[spec.target_id], main.c[spec.new_ref], main.c[spec.target_key]]
        joined = main
        if any(r.name.startswith("location.") for r in spec.rules):
            joined = main.outerjoin(location, main.c.location_id == location.c.location_id)
        for rule in spec.rules:
            if rule.name.startswith("location."):
                columns.append(location.c[rule.name[9:]])
            else:
                columns.append(main.c[rule.name])
        return sa.select(*columns).select_from(joined)

    def _fetch_keyed(self, conn, spec: EntitySpec, keys: list) -> dict[Any, list[TargetRecord]]:
        """New records whose legacy key equals one of ``keys`` exactly (grouped by that key)."""
        if not keys:
            return {}
        main = self.tt[spec.target_table]
        stmt = self._statement(f"keyed {spec.name}",
                               lambda: self._target_select(spec).where(keys_in(main.c[spec.target_key])))
        wanted = set(keys)
        found: dict[Any, list[TargetRecord]] = defaultdict(list)
        subject_index = next((i for i, r in enumerate(spec.rules) if r.name == "subject_person_id"), None)
        for target_id, new_ref, key, *values in self._target_all(conn, stmt, keys):
            # Exact equality, checked here: MariaDB's PAD SPACE collations would also return
            # 'CR/000001/19 ' for 'CR/000001/19', which is not the trimmed key.
            if key not in wanted:
                continue
            subject = values[subject_index] if subject_index is not None else None
            found[key].append(TargetRecord(target_id, new_ref, None, values, subject))
        several = [rec for records in found.values() if len(records) > 1 for rec in records]
        if several:
            self._created_at(conn, spec, several)
        return found

    def _created_at(self, conn, spec: EntitySpec, records: list[TargetRecord]) -> None:
        main = self.tt[spec.target_table]
        by_id = {rec.target_id: rec for rec in records}
        ids = sorted(by_id)
        for start in range(0, len(ids), LOOKUP_CHUNK):
            stmt = (sa.select(main.c[spec.target_id], main.c.created_at)
                    .where(main.c[spec.target_id].in_(ids[start:start + LOOKUP_CHUNK])))
            for target_id, created_at in self._target_all(conn, stmt):
                by_id[target_id].created_at = created_at

    def _nom_ids_of(self, conn, person_ids: Iterable[str]) -> dict[str, int | None]:
        """person_id → legacy_nominal_id (None for a person created in iOPS)."""
        person = self.tt["person"]
        ids = sorted({p for p in person_ids if p is not None})
        resolved: dict[str, int | None] = {}
        stmt = self._statement("nom_ids", lambda: sa.select(person.c.person_id, person.c.legacy_nominal_id)
                               .where(keys_in(person.c.person_id)))
        for start in range(0, len(ids), LOOKUP_CHUNK):
            for pid, nom in self._target_all(conn, stmt, ids[start:start + LOOKUP_CHUNK]):
                resolved[pid] = nom
        return resolved

    def _resolve_subjects(self, tconn, found: dict, batch: list[dict], mapped: list[Mapped]) -> None:
        """subject_person_id is compared as the subject's legacy NOM_ID, on both sides."""
        index = next(i for i, r in enumerate(INTEL_RULES) if r.name == "subject_person_id")
        all_records = [rec for records in found.values() for rec in records]
        resolved = self._nom_ids_of(tconn, (r.subject_person_id for r in all_records))
        for rec in all_records:
            pid = rec.subject_person_id
            if pid is None:
                rec.values[index] = None
            else:
                nom = resolved.get(pid)
                # A subject that is no migrated nominal shows as its uuid: it cannot equal a NOM_ID.
                rec.values[index] = nom if nom is not None else f"person_id={pid}"
        for raw, m in zip(batch, mapped):
            report = m.rows.get("intelligence_report")
            if report is not None and report.get("subject_person_id") is not None:
                report = dict(report)
                report["subject_person_id"] = parse_nom_id(raw.get("subj_nom_id"))
                m.rows["intelligence_report"] = report

    # ------------------------------------------------------------------ comparing

    def _matched_findings(self, spec: EntitySpec, raw: dict, m: Mapped, records: list[TargetRecord]) -> tuple:
        """ALTERED rows of the counterpart (the record closest to the mapping) and DUPLICATE
        rows of every other new record carrying the key."""
        counterpart, diffs = _counterpart(spec, m, records)
        findings = [Discrepancy(spec.name, "ALTERED", m.legacy_key, str(counterpart.new_ref), diff.rule.name,
                                diff.rule.legacy_value(raw), diff.rule.shown(diff.expected),
                                diff.rule.shown(diff.actual), None, diff.detail) for diff in diffs]
        findings += [Discrepancy(spec.name, "DUPLICATE", m.legacy_key, other.new_ref)
                     for other in records if other is not counterpart]
        return tuple(findings)

    @staticmethod
    def _rejected_findings(spec: EntitySpec, m: Mapped, records: list[TargetRecord]) -> tuple:
        """The mapping rejects the record, yet the new store holds it: one ALTERED row (field
        empty) — the new store holds a record the mapping says cannot be migrated as is."""
        ordered = sorted(records, key=lambda r: (r.created_at or _NEVER, str(r.new_ref)))
        first = Discrepancy(spec.name, "ALTERED", m.legacy_key, str(ordered[0].new_ref), None,
                            _issue_text(m.reject), None, None, None, f"LEGACY_REJECTED:{m.reject.code}")
        return (first, *(Discrepancy(spec.name, "DUPLICATE", m.legacy_key, str(other.new_ref))
                         for other in ordered[1:]))


def legacy_batches(legacy: Engine, table: sa.Table, key_column: str, batch_size: int) -> Iterator[list[dict]]:
    """The batches of a legacy table streamed in key order, rows as dicts (one snapshot)."""
    stmt = sa.select(table).order_by(table.c[key_column])
    with store_errors(legacy, "legacy"), legacy.connect() as conn:
        result = stream(conn, stmt)
        names = list(result.keys())
        for partition in result.partitions(batch_size):
            yield [dict(zip(names, row)) for row in partition]


#: A batch of a legacy table as a key range: (lowest key, key of the next batch); ``None``
#: leaves that end open.
KeyRange = tuple[Any, Any]


def key_ranges(legacy: Engine, table: sa.Table, key_column: str, batch_size: int) -> Iterator[KeyRange]:
    """The legacy table cut into key ranges of about ``batch_size`` rows, in key order, from a
    stream of its keys alone (worker processes then read each range themselves:
    ``legacy_range``).

    The ranges cover every possible key exactly once — the first is open below, the last
    above, each ends where the next begins — and are compared by the database itself, so a
    record is in exactly one batch even where the database's collation holds keys equal that
    Python does not (MariaDB's PAD SPACE: 'CR/000001/19 ' = 'CR/000001/19' — such keys fall
    on the same side of every boundary), and even if the table is written meanwhile.
    """
    column = table.c[key_column]
    stmt = sa.select(column).order_by(column)
    lower = None
    with store_errors(legacy, "legacy"), legacy.connect() as conn:
        for n, partition in enumerate(stream(conn, stmt).partitions(batch_size)):
            if n:
                upper = partition[0][0]
                yield lower, upper
                lower = upper
    yield lower, None  # also for an empty table: one range, empty (rows may have been added since)


def legacy_range(conn, table: sa.Table, key_column: str, key_range: KeyRange) -> list[dict]:
    """The legacy rows of one ``key_ranges`` range, in key order, as dicts."""
    column = table.c[key_column]
    lower, upper = key_range
    stmt = sa.select(table).order_by(column)
    if lower is not None:
        stmt = stmt.where(column >= legacy_key_bound(conn.dialect, lower))
    if upper is not None:
        stmt = stmt.where(column < legacy_key_bound(conn.dialect, upper))
    result = conn.execute(stmt)
    names = list(result.keys())
    return [dict(zip(names, row)) for row in result.all()]


class LinkEvaluator(_TargetReader):
    """The link pass, a batch of matched crimes (trimmed keys) at a time: the links the
    mapping expects against the links of every new record that carries each crime, compared
    where the person is matched too. Pure given the person keys (complete once the person
    pass is done), so worker processes can evaluate batches; the caller emits the findings
    in batch order."""

    def __init__(self, legacy: Engine, target: Engine, legacy_tables: dict, target_tables: dict,
                 ctx: MappingContext, persons: "EntityKeys", padded_links: dict[str, list[dict]],
                 auto_pairs: dict[str, tuple[str, str]]) -> None:
        super().__init__(target, target_tables, ctx)
        self.legacy = legacy
        self.lt = legacy_tables
        self.persons = persons
        self.padded_links = padded_links  # trimmed CRIME_NO -> CRIME_NOM rows typed padded
        self.auto_pairs = auto_pairs  # legacy crime key -> (crime_id, crime_ref) of AUTO pairs

    def evaluate(self, lconn, tconn, keys: list[str]) -> tuple[int, list[tuple[Discrepancy, bool]]]:
        """(links matched, [(finding, explained)]) of these crimes, in their order."""
        legacy = self.legacy_links(lconn, keys)
        carriers = self._target_links(tconn, keys)
        matched = 0
        findings: list[tuple[Discrepancy, bool]] = []
        for key in keys:
            expected, rejects = expected_links(legacy.get(key, []))
            refs, actual = carriers.get(key, ((), {}))
            matched += self._compare_link_sets(key, min(refs) if refs else None, expected, rejects, actual,
                                               findings)
        return matched, findings

    def _compare_link_sets(self, crime_key: str, new_ref: str | None, expected: frozenset, rejects: tuple,
                           actual: dict[tuple, str], findings: list) -> int:
        """Links are compared only where both the crime and the person are matched; returns
        how many matched, appends what differs to ``findings``."""
        is_matched = self.persons.is_matched
        missing = []
        matched = 0
        for link in expected:
            if link in actual:
                if is_matched(link[0]):
                    matched += 1
            elif is_matched(link[0]):
                missing.append(link)
        if len(actual) == matched and not missing and not rejects:
            return matched  # the usual crime: every link found, nothing else there
        extra = [link for link in actual if link not in expected and link[0] is not None and is_matched(link[0])]
        for nom, role in sorted(missing, key=_link_order):
            findings.append((Discrepancy("crime_person", "MISSING", f"{crime_key}:{nom}:{role}", new_ref), False))
        for link_key, code, nom, issue in rejects:
            if is_matched(nom):
                findings.append((Discrepancy("crime_person", "MISSING", link_key, new_ref, None, issue,
                                             None, None, None, code), True))
        for nom, role in sorted(extra, key=_link_order):
            findings.append((Discrepancy("crime_person", "UNEXPECTED", f"{crime_key}:{nom}:{role}",
                                         actual[(nom, role)]), False))
        return matched

    def legacy_links(self, lconn, crime_keys: list[str]) -> dict[str, list[Mapped]]:
        """The mapped CRIME_NOM rows of these crimes, grouped by trimmed CRIME_NO."""
        if not crime_keys:
            return {}
        table = self.lt["crime_nom"]
        stmt = self._statement("legacy links", lambda: sa.select(table.c.crime_no, table.c.nom_id, table.c.role)
                               .where(keys_in(table.c.crime_no)))
        with store_errors(self.legacy, "legacy"):
            found = lconn.execute(stmt, {"keys": crime_keys}).all()
        rows = {tuple(r): {"crime_no": r[0], "nom_id": r[1], "role": r[2]} for r in found}
        if self.padded_links:
            for key in crime_keys:
                for r in self.padded_links.get(key, ()):
                    rows.setdefault((r["crime_no"], r["nom_id"], r["role"]), r)
        raw_rows = list(rows.values())
        grouped: dict[str, list[Mapped]] = defaultdict(list)
        for raw, m in zip(raw_rows, map_links(raw_rows, self.ctx)):
            crime_no = raw["crime_no"]
            grouped[crime_no.strip() if isinstance(crime_no, str) else crime_no].append(m)
        return grouped

    def _target_links(self, tconn, keys: list[str]) -> dict[str, tuple[list, dict]]:
        """legacy key → (crime_refs of the new records carrying it, {(NOM_ID, role): crime_ref})."""
        crime, cp, person = self.tt["crime"], self.tt["crime_person"], self.tt["person"]
        joined = (crime.outerjoin(cp, cp.c.crime_id == crime.c.crime_id)
                  .outerjoin(person, cp.c.person_id == person.c.person_id))
        columns = (crime.c.legacy_ref, crime.c.crime_ref, person.c.legacy_nominal_id, cp.c.role)
        out: dict[str, tuple[dict, dict]] = {}

        def add(key, crime_ref, nom, role):
            entry = out.get(key)
            if entry is None:
                entry = out[key] = ({}, {})
            entry[0][crime_ref] = None  # an ordered set of the carriers' references
            if role is not None:
                # Shown with the link: the least crime_ref of the records carrying it (a
                # duplicate record may carry it too), not whichever row the database sent first.
                link = (nom, role)
                shown = entry[1].get(link)
                if shown is None or crime_ref < shown:
                    entry[1][link] = crime_ref

        wanted = set(keys)
        stmt = self._statement("target links", lambda: sa.select(*columns).select_from(joined)
                               .where(keys_in(crime.c.legacy_ref)))
        for legacy_ref, crime_ref, nom, role in self._target_all(tconn, stmt, keys):
            if legacy_ref in wanted:  # exact equality (MariaDB's PAD SPACE also returns 'CR/... ')
                add(legacy_ref, crime_ref, nom, role)
        auto = {self.auto_pairs[k][0]: k for k in keys if k in self.auto_pairs}
        if auto:
            stmt = self._statement("auto links", lambda: sa.select(
                crime.c.crime_id, crime.c.crime_ref, person.c.legacy_nominal_id, cp.c.role)
                .select_from(joined).where(keys_in(crime.c.crime_id)))
            for crime_id, crime_ref, nom, role in self._target_all(tconn, stmt, sorted(auto)):
                add(auto[crime_id], crime_ref, nom, role)
        return out


def expected_links(mapped_links: list[Mapped]) -> tuple[frozenset, tuple]:
    """(expected {(nom_id, role)}, rejected [(link key, code, nom, issue)]) of one crime."""
    expected = set()
    rejects = []
    for m in mapped_links:
        if m.reject is not None:
            nom = encode_person(m.legacy_key.rsplit(":", 2)[1])
            rejects.append((m.legacy_key, m.reject.code, nom, _issue_text(m.reject)))
        elif m.rows:
            expected.add((encode_person(m.legacy_key.rsplit(":", 2)[1]), m.rows["crime_person"]["role"]))
    return frozenset(expected), tuple(rejects)


def _lookup_key(spec: EntitySpec, m: Mapped):
    """The value the new store carries the legacy key as: a person's NOM_ID is its encoded key
    (an int; a NOM_ID that is no number can match no legacy_nominal_id), the others their
    trimmed key."""
    if spec is PERSON:
        k = encode_person(m.legacy_key)
        return k if isinstance(k, int) else None
    return m.legacy_key or None


def _counterpart(spec: EntitySpec, m: Mapped, records: list[TargetRecord]):
    """The new record closest to the mapping: fewest differing fields, then earliest
    created_at, then smallest new reference. Returns it with its differences."""
    expected = expected_values(spec, m)
    if len(records) == 1:  # the usual case: nothing to rank
        return records[0], diff_fields(spec.rules, expected, records[0].values)
    best = None
    for rec in records:
        diffs = diff_fields(spec.rules, expected, rec.values)
        rank = (len(diffs), rec.created_at or _NEVER, str(rec.new_ref))
        if best is None or rank < best[0]:
            best = (rank, rec, diffs)
    return best[1], best[2]


def _candidate(spec: EntitySpec, raw: dict, m: Mapped) -> "Candidate":
    """What unkeyed matching needs of an accepted legacy record with no keyed counterpart."""
    location = m.rows.get("location") or {}
    if spec is CRIME:
        crime = m.rows["crime"]
        record = {
            "recorded_at": crime["recorded_at"], "offence_code": crime["ho_offence_code"],
            "offence_group": crime["offence_group"], "postcode": location.get("postcode"),
            "address": location.get("address"), "easting": location.get("easting"),
            "northing": location.get("northing"), "text": _prefix(crime.get("mo_summary")),
        }
        return Candidate(m.legacy_key, record)
    report = m.rows["intelligence_report"]
    subject = parse_nom_id(raw.get("subj_nom_id")) if report.get("subject_person_id") else None
    return Candidate(m.legacy_key, _intel_record(report, location), (subject,) if subject is not None else ())


# -------------------------------------------------------------------------- the reconciler


@dataclass
class Candidate:
    """A live accepted legacy crime or intelligence report with no keyed counterpart: what
    unkeyed matching needs of it."""

    key: str
    record: dict  # the mapped values similarity compares
    nom_ids: tuple = ()  # NOM_IDs of its people (a crime's linked people, a report's subject)


@dataclass
class FindingSink:
    """Where the reconciler puts what it finds: the spool and the per-entity totals."""

    spool: Any  # reconcile.spool.DiscrepancySpool
    totals: dict[str, EntityTotals]

    def emit(self, d: Discrepancy, explained: bool = False) -> None:
        self.spool.add(d)
        t = self.totals[d.entity]
        t.categories[d.category] += 1
        if explained:
            t.missing_explained += 1


def mapping_context(reference, run_started: dt.datetime, persons: EntityKeys | None = None,
                    crimes: EntityKeys | None = None) -> MappingContext:
    """How the reconciler maps: link and subject rules see which persons and crimes the
    mapping accepts (its key sets; a worker gets copies of them); no ids are computed — records
    are matched by legacy key and no id is compared (``mappings.ids.SKIPPED``) — and LAST_UPD
    is not read: no created_at or updated_at is compared either."""
    ctx = MappingContext(reference=reference, run_started=run_started, ids=NO_IDS, last_upd=False)
    if persons is not None:
        ctx = dataclasses.replace(ctx, person_migrated=persons.is_accepted)
    if crimes is not None:
        ctx = dataclasses.replace(ctx, crime_migrated=crimes.is_accepted)
    return ctx


class Reconciler:
    def __init__(self, legacy: Engine, target: Engine, legacy_tables: dict, target_tables: dict,
                 ctx: MappingContext, findings: FindingSink, *, batch_size: int, auto_threshold: float,
                 review_threshold: float, on_batch: Callable[[str, int], None] | None = None,
                 workers=None) -> None:
        self.legacy = legacy
        #: reconcile.parallel.EvaluationWorkers, or None: keyed batches are evaluated here.
        self.workers = workers
        self.on_batch = on_batch
        self.target = target
        self.lt = legacy_tables
        self.tt = target_tables
        self.findings = findings
        self.batch_size = batch_size
        self.auto_threshold = auto_threshold
        self.review_threshold = review_threshold
        self.keys = {"person": EntityKeys(encode_person), "crime": EntityKeys(encode_crime_ref),
                     "intelligence": EntityKeys(encode_intel_ref)}
        persons, crimes = self.keys["person"], self.keys["crime"]
        self.ctx = mapping_context(ctx.reference, ctx.run_started, persons, crimes)
        self.stats = CrimeStats()
        self.candidates: dict[str, dict[str, Candidate]] = {"crime": {}, "intelligence": {}}  # entity -> key -> …
        self.padded_links: dict[str, list[dict]] = {}  # trimmed CRIME_NO -> CRIME_NOM rows typed padded
        self.auto_pairs: dict[str, tuple[str, str]] = {}  # legacy crime key -> (crime_id, crime_ref) of AUTO pairs
        #: Entities whose new store holds unkeyed records: only then are candidates kept in memory.
        self.collect_similarity: set[str] = set()
        self.evaluator = BatchEvaluator(target, target_tables, self.ctx)

    # ------------------------------------------------------------------ reading helpers

    def _count(self, engine: Engine, role: str, table: sa.Table) -> int:
        stmt = sa.select(sa.func.count()).select_from(table)
        with store_errors(engine, role), engine.connect() as conn:
            return conn.execute(stmt).scalar_one()

    # ------------------------------------------------------------------ keyed passes

    def keyed_pass(self, spec: EntitySpec) -> Census:
        """Every legacy record of ``spec`` against its keyed counterparts; returns the census
        of the new store's keys, read beside the pass (``reconcile.census``)."""
        totals = self.findings.totals[spec.name]
        keys = self.keys[spec.name]
        total = self._count(self.legacy, "legacy", self.lt[spec.legacy_table])
        done = 0
        with self._census_reader(spec) as census, \
                bar(f"reconcile {spec.name:<12}", total=total, unit="rec") as progress:
            for outcomes in self._evaluated_batches(spec, total):
                self._apply(spec, outcomes, keys, totals)
                progress.update(len(outcomes))
                done += len(outcomes)
                if self.on_batch is not None:
                    self.on_batch(spec.name, done)
        return census.result()

    def _census_reader(self, spec: EntitySpec) -> CensusReader:
        main = self.tt[spec.target_table]
        prepare = self._unkeyed_records(spec) if spec.name in self.collect_similarity else None
        return CensusReader(self.target, main, spec.target_id, spec.new_ref, spec.target_key, self.keys[spec.name].encode,
                            _LOOKED_UP[spec.name], prepare)

    def _evaluated_batches(self, spec: EntitySpec, rows: int) -> Iterator[list[tuple]]:
        """The outcomes of every legacy batch of ``spec`` (``rows`` rows), in key order:
        evaluated by worker processes when the reconciliation has them, else here."""
        table = self.lt[spec.legacy_table]
        if self.workers is not None and self.workers.worth_it(rows):
            # Workers read their batches themselves, by key range; intelligence subjects are
            # mapped against the persons the mapping accepts.
            ranges = key_ranges(self.legacy, table, spec.key_column, self.batch_size)
            yield from self.workers.evaluated_batches(spec.name, ranges,
                                                      persons=self.keys["person"] if spec is INTEL else None)
            return
        with connect(self.target, "target") as tconn:
            for batch in legacy_batches(self.legacy, table, spec.key_column, self.batch_size):
                yield self.evaluator.evaluate(spec, batch, tconn)

    def _apply(self, spec: EntitySpec, outcomes: list[tuple], keys: EntityKeys, totals: EntityTotals) -> None:
        """The order-dependent half of a keyed batch (see BatchEvaluator): runs in key order."""
        encode, claim = keys.encode, keys.claim
        is_crime = spec is CRIME
        add_cell = self.stats.add_cell
        emit = self.findings.emit
        excluded = live = 0
        for o in outcomes:
            key = o[O_KEY]
            encoded = encode(key)
            if o[O_EXCLUDED]:
                excluded += 1
                keys.excluded.add(encoded)
                continue
            live += 1
            reject = o[O_REJECT]
            if not claim(encoded, reject is None):
                # Two legacy keys equal once trimmed: the first (in key order) owns the key and
                # its new records (already fetched and compared); the second is not migrated
                # (the engine rejects it DUPLICATE_KEY) and is listed as such. (Should the first
                # be rejected and the second not, the engine migrates the second: the first then
                # shows as LEGACY_REJECTED — a person must look at that pair either way.)
                self._missing(spec.name, key, reject or Issue("DUPLICATE_KEY", spec.key_column.upper(), key))
                continue
            if is_crime:
                if o[O_LEGACY_CELL] is not None:
                    add_cell(True, o[O_LEGACY_CELL])
                for cell in o[O_NEW_CELLS]:  # every crime row in the store is counted once: here, or in the scan
                    add_cell(False, cell)
            if o[O_FOUND]:
                totals.matched_keyed += 1
                for d in o[O_FINDINGS]:
                    emit(d)
            elif reject is not None:
                self._missing(spec.name, key, reject)
            else:
                keys.unmatched.add(encoded)
                candidate = o[O_CANDIDATE]
                if candidate is not None and spec.name in self.collect_similarity:
                    self.candidates[spec.name][key] = candidate
                else:
                    # No unkeyed record of this entity in the new store (or a person, which is
                    # never similarity-matched): nothing could pair with it, so it is missing now.
                    self._missing(spec.name, key)
        totals.legacy_excluded += excluded
        totals.legacy_total += live

    def _missing(self, entity: str, key: str, reject: Issue | None = None) -> None:
        """MISSING: explained (with its reason) when the mapping rejects the record."""
        if reject is not None:
            self.findings.emit(Discrepancy(entity, "MISSING", key, None, None, _issue_text(reject),
                                           None, None, None, reject.code), explained=True)
        else:
            self.findings.emit(Discrepancy(entity, "MISSING", key))

    # ------------------------------------------------------------------ links (crime_person)

    def load_padded_links(self) -> None:
        """CRIME_NOM rows whose CRIME_NO is typed with padding (or is malformed): the keyed
        ``crime_no IN (...)`` look-up cannot find them, so the few there are are held here,
        grouped by trimmed CRIME_NO. ``NOT LIKE`` runs in the database: one pass, no transfer."""
        table = self.lt["crime_nom"]
        stmt = sa.select(table).where(sa.not_(table.c.crime_no.like("CR/______/__")))
        with store_errors(self.legacy, "legacy"), self.legacy.connect() as conn:
            for row in conn.execute(stmt).mappings():
                raw = row["crime_no"]
                trimmed = raw.strip() if isinstance(raw, str) else raw
                if isinstance(raw, str) and trimmed != raw and _REF.match(trimmed):
                    self.padded_links.setdefault(trimmed, []).append(dict(row))

    def link_pass(self) -> None:
        """crime_person, for every matched crime (keyed or AUTO): the links the mapping
        produces against the links of every new record that carries the crime."""
        crimes = self.keys["crime"]
        total = len(crimes.accepted) - len(crimes.unmatched)
        with bar("reconcile crime_person", total=total, unit="crime") as progress:
            totals = self.findings.totals["crime_person"]
            for matched, findings in self._evaluated_links(self._matched_crime_batches(progress), total):
                totals.matched_keyed += matched
                for d, explained in findings:
                    self.findings.emit(d, explained)

    def _matched_crime_batches(self, progress) -> Iterator[list[str]]:
        """The trimmed keys of the matched crimes, a batch at a time, taken from the key sets
        (not from another read of the legacy table): every accepted crime not left unmatched,
        each once (a crime typed twice, once padded, is one key). In the order of their
        encoded keys (year, then number) — any order gives the same report: each crime's links
        are compared on their own and the spool sorts the findings."""
        crimes = self.keys["crime"]
        unmatched = crimes.unmatched
        keys: list[str] = []
        for k in itertools.chain(crimes.accepted.sorted_ints(), crimes.accepted.others()):
            if k in unmatched:
                continue
            keys.append(decode_ref(k, "CR") if type(k) is int else k)
            if len(keys) == self.batch_size:
                progress.update(len(keys))
                yield keys
                keys = []
        if keys:
            progress.update(len(keys))
            yield keys

    def _evaluated_links(self, key_batches: Iterator[list[str]], rows: int) -> Iterator[tuple]:
        if self.workers is not None and self.workers.worth_it(rows):
            yield from self.workers.evaluated_links(
                key_batches, persons=self.keys["person"], crimes=self.keys["crime"],
                padded_links=self.padded_links, auto_pairs=self.auto_pairs)
            return
        links = self.link_evaluator()
        with connect(self.legacy, "legacy") as lconn, connect(self.target, "target") as tconn:
            for keys in key_batches:
                yield links.evaluate(lconn, tconn, keys)

    def link_evaluator(self) -> "LinkEvaluator":
        return LinkEvaluator(self.legacy, self.target, self.lt, self.tt, self.ctx, self.keys["person"],
                             self.padded_links, self.auto_pairs)

    # ------------------------------------------------------------------ target scans

    def scan_target(self, spec: EntitySpec, census: Census) -> list[tuple[str, str]]:
        """The new records the keyed pass could not see, from the census read beside it:
        count the table, report UNEXPECTED the records whose key no live legacy record holds
        (fetched by key: normally few), and return the unkeyed records as (id, new ref).

        Crime statistics, new side: the records the keyed pass fetched were counted there; the
        others (unkeyed, unexpected) are counted here, fetched by id.
        """
        self.findings.totals[spec.name].new_total += census.total
        keys = self.keys[spec.name]
        main = self.tt[spec.target_table]
        key_column = main.c[spec.target_key]
        decode = _DECODE[spec.name]
        # Raw keys as the store holds them: a number of the key set decodes to its exact text.
        unexpected = [decode(k) for k in census.keys.without(keys.accepted, keys.rejected)] + census.strays
        wanted = set(unexpected)
        seen: set = set()
        not_fetched = [record_id for record_id, _ in census.unkeyed]
        stmt = sa.select(main.c[spec.target_id], main.c[spec.new_ref], key_column).where(keys_in(key_column))
        with connect(self.target, "target") as conn, store_errors(self.target, "target"):
            for start in range(0, len(unexpected), LOOKUP_CHUNK):
                for target_id, new_ref, key in conn.execute(stmt, {"keys": unexpected[start:start + LOOKUP_CHUNK]}):
                    # Exact keys only, each record once: MariaDB's PAD SPACE also returns
                    # 'CR/000001/19 ' for 'CR/000001/19', which may be asked for in another chunk.
                    if key not in wanted or target_id in seen:
                        continue
                    seen.add(target_id)
                    not_fetched.append(target_id)
                    detail = "DELETED_IN_OPUS" if keys.is_excluded(key) else "NOT_IN_OPUS"
                    self.findings.emit(Discrepancy(spec.name, "UNEXPECTED", str(key), str(new_ref), None, None,
                                                   None, None, None, detail))
        if spec is CRIME:
            self._count_new_stats(not_fetched)
        return census.unkeyed

    def _count_new_stats(self, crime_ids: list[str]) -> None:
        crime, location = self.tt["crime"], self.tt["location"]
        joined = crime.outerjoin(location, crime.c.location_id == location.c.location_id)
        with store_errors(self.target, "target"), self.target.connect() as conn:
            for start in range(0, len(crime_ids), LOOKUP_CHUNK):
                stmt = (sa.select(crime.c.recorded_at, crime.c.district_code, crime.c.offence_group, crime.c.status,
                                  location.c.latitude, location.c.longitude)
                        .select_from(joined).where(crime.c.crime_id.in_(crime_ids[start:start + LOOKUP_CHUNK])))
                for row in conn.execute(stmt):
                    self.stats.add("new", recorded_at=row[0], district_code=row[1], offence_group=row[2],
                                   status=row[3], latitude=row[4], longitude=row[5])

    # ------------------------------------------------------------------ unkeyed records

    def resolve_unkeyed(self, spec: EntitySpec, unkeyed: list[tuple[str, str]],
                        prepared: tuple[list, dict] | None = None) -> None:
        """Match the unkeyed new records of ``spec`` against its candidates; report the
        PROBABLE_MATCH pairs and the candidates left MISSING; count what is new in iOPS.
        AUTO pairs count as present (a crime's links are then compared by ``link_pass``);
        their fields are not compared — see reconcile/run.py. ``prepared``: the unkeyed
        records' SimRecords and ref → id, when the census already fetched them."""
        totals = self.findings.totals[spec.name]
        candidates = self.candidates[spec.name]
        pairs: list[similarity.Pair] = []
        by_ref: dict[str, str] = {}
        if unkeyed and candidates:
            legacy_records = self._candidate_records(spec, candidates)
            new_records, by_ref = prepared or self._unkeyed_records(spec)(unkeyed)
            with bar(f"match unkeyed {spec.name}", total=len(new_records), unit="rec") as progress:
                pairs = similarity.match(legacy_records, new_records, auto_threshold=self.auto_threshold,
                                         review_threshold=self.review_threshold)
                progress.update(len(new_records))
        keys = self.keys[spec.name]
        auto = set()
        for pair in pairs:
            self.findings.emit(Discrepancy(spec.name, "PROBABLE_MATCH", pair.legacy_ref, pair.new_ref, None, None,
                                           None, None, pair.score, pair.band))
            if pair.band == similarity.AUTO:
                auto.add(pair.legacy_ref)
                keys.unmatched.discard(keys.encode(pair.legacy_ref))
                if spec is CRIME:
                    self.auto_pairs[pair.legacy_ref] = (by_ref[pair.new_ref], pair.new_ref)
        totals.matched_auto += len(auto)
        totals.new_in_iops += len(unkeyed) - len(pairs)
        for key in candidates:
            if key not in auto:
                self.findings.emit(Discrepancy(spec.name, "MISSING", key))
        candidates.clear()

    def _candidate_records(self, spec: EntitySpec, candidates: dict[str, Candidate]) -> list[similarity.SimRecord]:
        """SimRecords of the candidates, with the mapped names of their people (a crime's
        linked people, an intelligence report's subject)."""
        if spec is CRIME:
            keys = list(candidates)
            links = self.link_evaluator()
            with store_errors(self.legacy, "legacy"), self.legacy.connect() as conn:
                for start in range(0, len(keys), LOOKUP_CHUNK):
                    chunk = keys[start:start + LOOKUP_CHUNK]
                    for key, mapped in links.legacy_links(conn, chunk).items():
                        linked = {nom for nom, _ in expected_links(mapped)[0]}
                        candidates[key].nom_ids = tuple(sorted(n for n in linked if isinstance(n, int)))
        nom_ids = sorted({n for c in candidates.values() for n in c.nom_ids})
        names: dict[int, tuple] = {}
        table = self.lt["nominal"]
        with store_errors(self.legacy, "legacy"), self.legacy.connect() as conn:
            for start in range(0, len(nom_ids), LOOKUP_CHUNK):
                chunk = nom_ids[start:start + LOOKUP_CHUNK]
                rows = [dict(r) for r in conn.execute(sa.select(table).where(table.c.nom_id.in_(chunk))).mappings()]
                for m in map_persons(rows, self.ctx):
                    if m.accepted:
                        p = m.rows["person"]
                        names[p["legacy_nominal_id"]] = (p["family_name"], p["given_names"])
        records = []
        for cand in candidates.values():
            people = [names[n] for n in cand.nom_ids if n in names]
            records.append(similarity.make_record(cand.key, people=people, **cand.record))
        return records

    def _unkeyed_records(self, spec: EntitySpec) -> Callable[[list[tuple[str, str]]], tuple[list, dict]]:
        """How the unkeyed new records of ``spec`` become SimRecords (and ref → id)."""
        return self._unkeyed_crimes if spec is CRIME else self._unkeyed_intel

    def _unkeyed_crimes(self, unkeyed: list[tuple[str, str]]):
        """SimRecords of the unkeyed new crimes, and crime_ref → crime_id."""
        crime, location = self.tt["crime"], self.tt["location"]
        cp, person = self.tt["crime_person"], self.tt["person"]
        records, by_ref = [], {}
        with store_errors(self.target, "target"), self.target.connect() as conn:
            for start in range(0, len(unkeyed), LOOKUP_CHUNK):
                ids = [cid for cid, _ in unkeyed[start:start + LOOKUP_CHUNK]]
                people: dict[str, list] = defaultdict(list)
                stmt = (sa.select(cp.c.crime_id, person.c.family_name, person.c.given_names)
                        .select_from(cp.join(person, cp.c.person_id == person.c.person_id))
                        .where(cp.c.crime_id.in_(ids)))
                for cid, family, given in conn.execute(stmt):
                    people[cid].append((family, given))
                stmt = (sa.select(crime.c.crime_id, crime.c.crime_ref, crime.c.recorded_at, crime.c.ho_offence_code,
                                  crime.c.offence_group, crime.c.mo_summary, location.c.postcode, location.c.address,
                                  location.c.easting, location.c.northing)
                        .select_from(crime.outerjoin(location, crime.c.location_id == location.c.location_id))
                        .where(crime.c.crime_id.in_(ids)))
                for row in conn.execute(stmt):
                    by_ref[row.crime_ref] = row.crime_id
                    records.append(similarity.make_record(
                        row.crime_ref, recorded_at=row.recorded_at, offence_code=row.ho_offence_code,
                        offence_group=row.offence_group, postcode=row.postcode, address=row.address,
                        easting=row.easting, northing=row.northing, people=people.get(row.crime_id, ()),
                        text=_prefix(row.mo_summary)))
        records.sort(key=lambda r: r.ref)
        return records, by_ref

    def _unkeyed_intel(self, unkeyed: list[tuple[str, str]]):
        """SimRecords of the unkeyed new intelligence reports, and intel_ref → intel_id.
        Their text is compared in memory only; nothing of it is kept or written."""
        ir, location, person = self.tt["intelligence_report"], self.tt["location"], self.tt["person"]
        records, by_ref = [], {}
        joined = (ir.outerjoin(location, ir.c.location_id == location.c.location_id)
                  .outerjoin(person, ir.c.subject_person_id == person.c.person_id))
        with store_errors(self.target, "target"), self.target.connect() as conn:
            for start in range(0, len(unkeyed), LOOKUP_CHUNK):
                ids = [iid for iid, _ in unkeyed[start:start + LOOKUP_CHUNK]]
                stmt = (sa.select(ir, location.c.easting, location.c.northing, person.c.family_name,
                                  person.c.given_names)
                        .select_from(joined).where(ir.c.intel_id.in_(ids)))
                for row in conn.execute(stmt).mappings():
                    by_ref[row["intel_ref"]] = row["intel_id"]
                    people = [(row["family_name"], row["given_names"])] if row["family_name"] else []
                    records.append(similarity.make_record(row["intel_ref"], people=people, **_intel_record(
                        row, {"easting": row["easting"], "northing": row["northing"]})))
        records.sort(key=lambda r: r.ref)
        return records, by_ref

    # ------------------------------------------------------------------ totals of links

    def count_links(self) -> None:
        totals = self.findings.totals["crime_person"]
        totals.legacy_total = self._count(self.legacy, "legacy", self.lt["crime_nom"])
        totals.new_total = self._count(self.target, "target", self.tt["crime_person"])


def _prefix(text) -> str | None:
    return (text or "")[: similarity.TEXT_PREFIX * 2] or None


def _intel_record(report, location) -> dict:
    """An intelligence report as the similarity matcher sees it: submitted_at as the date,
    the 3x5x2 grading as the "code", the district as the "group", the grid as the place, the
    text as free text (compared in memory only)."""
    grading = "".join(str(report.get(c) or "") for c in ("source_evaluation", "intelligence_assessment",
                                                         "handling_code"))
    return {"recorded_at": report.get("submitted_at"), "offence_code": grading,
            "offence_group": report.get("district_code"), "postcode": None, "address": None,
            "easting": location.get("easting"), "northing": location.get("northing"),
            "text": _prefix(report.get("intel_text"))}


def _link_order(link: tuple) -> tuple:
    nom, role = link
    return (str(nom).zfill(12), str(role))


def _issue_text(issue: Issue | None) -> str | None:
    """The offending legacy value of a reject, as ``FIELD=value`` (never intelligence text:
    the mapping puts none in an Issue)."""
    if issue is None:
        return None
    if issue.field and issue.value is not None:
        return f"{issue.field}={issue.value}"
    if issue.field:
        return f"{issue.field}="
    return issue.value
