"""What a reconciliation worker runs: map a legacy batch, look it up in iOPS, compare.

``BatchEvaluator.evaluate`` takes one batch of legacy rows of a keyed entity (persons,
crimes, intelligence) and returns one ``Outcome`` per row: the mapping's verdict, the new
records found under its key, the findings of comparing them field by field, the crime's
statistics cells, and — when nothing carries its key — what unkeyed matching needs of it.
``LinkEvaluator.evaluate`` does the same for the links of a batch of matched crimes.

Both are pure given their inputs (the batch, the reference tables, the person and crime key
sets of the passes before): they read the new store, hold nothing between batches but
compiled statements, and decide nothing that depends on another batch. So any process can
evaluate any batch (``reconcile.parallel``), and what depends on the order of records —
two keys equal once trimmed, the key sets later passes read — is decided in one process, in
key order, by ``reconcile.decide``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.batches import read_range, select_in_key_order
from core.db import store_errors, stream
from mappings import describe, map_links
from mappings.entities import encode_nominal
from mappings.explanations import explain
from mappings.ids import SKIPPED as NO_IDS
from mappings.outcome import Issue, Mapped, MappingContext
from mappings.parse import parse_nom_id
from reconcile import similarity
from reconcile.compare import diff_fields, explain_diffs
from reconcile.keys import EntityKeys
from reconcile.model import Discrepancy
from reconcile.specs import (CRIME, DISTRICT, GROUP, INTEL, INTEL_RULES, LATITUDE, LONGITUDE, PERSON, RECORDED,
                             STATUS, EntitySpec, expected_values)
from reconcile.stats import CrimeCells

#: Target rows fetched per ``IN (...)`` when looking records up by id.
LOOKUP_CHUNK = 1000


def keys_in(column: sa.ColumnElement) -> sa.ColumnElement:
    """``column IN (...)`` over the list given as ``{"keys": [...]}`` when executed.

    The batch look-ups run once per batch with up to a batch of keys: built this way the
    statement is constructed once per reconciliation, not once per batch with every key
    coerced into a literal (measured: ~3 ms of CPU per batch of 2,000).
    """
    return column.in_(sa.bindparam("keys", expanding=True, type_=column.type))


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
# ``reconcile.decide.Reconciler`` then does what depends on the records before it in key order (two
# legacy keys equal once trimmed; the key sets later passes use) and emits the findings. The
# first step is nearly all the work and is pure, so it can run in worker processes
# (``reconcile/parallel.py``); the second is cheap and always runs here, in key order, so the
# result is the same whichever process evaluated a batch.

class Outcome(NamedTuple):
    """What evaluating one legacy record found; ``reconcile.decide`` takes it from here.

    A NamedTuple, because outcomes cross process boundaries a batch at a time. Pickled and
    unpickled, the 100,000 outcomes of 100k crimes took 0.2 s of CPU as plain tuples, 0.55 s as
    a NamedTuple, 0.8 s as a slotted dataclass (of a ~20 s reconciliation); rebuilt by
    ``tuple.__new__`` (``__reduce__``) rather than the NamedTuple's own ``__new__``, 0.3 s."""

    key: str  # the trimmed legacy key (Mapped.legacy_key)
    excluded: bool  # logically deleted in OPUS: nothing else is set
    reject: Issue | None  # the mapping's reason not to migrate the record
    legacy_cell: Any  # crime: its statistics entry (reconcile.stats.CrimeCells.legacy_entry; None: not counted)
    new_cells: tuple  # crime: the entries of the new records carrying the key
    found: int  # new records carrying the key
    findings: tuple[Discrepancy, ...]  # ALTERED/DUPLICATE rows of those records
    candidate: "Candidate | None"  # accepted, nothing carries the key: what unkeyed matching needs
    #: A record that may be MISSING (rejected, or nothing carries its key): how a reader
    #: recognises it (``mappings.describe.RecordContext``); None for the others.
    context: Any = None
    day: str | None = None  # accepted crime / report: UK local day recorded ("missing by day")
    #: A record some new record carries the key of: its rank in the matched sample
    #: (``reconcile.sample.ranker``; None when nothing is sampled).
    rank: int | None = None

    def __reduce__(self):
        return (tuple.__new__, (Outcome, tuple(self)))


class _TargetReader:
    """Look-ups in the new store by batch: statements compiled once, errors as StoreUnavailable."""

    def __init__(self, target: Engine, target_tables: dict, ctx: MappingContext,
                 lookup_chunk: int = LOOKUP_CHUNK) -> None:
        self.lookup_chunk = lookup_chunk  # ids per IN (...) of a look-up by id
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
    ``cells``: how crimes are placed in the statistics (code tables and go-live); ``sample``:
    how matched records are ranked for the sample (``MatchedSample.rank_of``; None: not ranked).
    """

    def __init__(self, target: Engine, target_tables: dict, ctx: MappingContext,
                 lookup_chunk: int = LOOKUP_CHUNK, cells: CrimeCells | None = None,
                 sample: Callable[[str], Callable[[str], int] | None] | None = None) -> None:
        super().__init__(target, target_tables, ctx, lookup_chunk)
        self.cells = cells if cells is not None else CrimeCells(ctx.reference, None)
        self.sample = sample

    def evaluate(self, spec: EntitySpec, batch: list[dict], tconn) -> list[Outcome]:
        mapped = spec.map_batch(batch, self.ctx)
        lookups = [None if m.excluded else lookup_key(spec, m) for m in mapped]
        # Every live record's key is looked up, also a second record whose key equals an
        # earlier one's once trimmed: reconcile.decide ignores that one's outcome, as it must.
        found = self._fetch_keyed(tconn, spec, list(dict.fromkeys(k for k in lookups if k is not None)))
        if spec is INTEL:
            self._resolve_subjects(tconn, found, batch, mapped)
        is_crime = spec is CRIME
        cells_of = self.cells
        # The day each accepted crime / report was recorded ("missing by day"): per record, so lean.
        day_row, day_column = describe.DAY_SOURCE.get(spec.name, (None, None))
        uk_day = describe.uk_day
        reference = self.ctx.reference
        # Equal statistics cells as one object: a batch of outcomes then pickles each distinct
        # cell once (measured at 100k crimes: pickled and unpickled in 4.2 µs a crime instead of 10.1).
        cells: dict = {}
        same_cell = lambda cell: cells.setdefault(cell, cell)  # noqa: E731
        rank_of = self.sample(spec.name) if self.sample is not None else None
        outcomes = []
        for raw, m, lookup in zip(batch, mapped, lookups, strict=True):
            if m.excluded:
                outcomes.append(Outcome(m.legacy_key, True, None, None, (), 0, (), None))
                continue
            day = uk_day(m.rows[day_row][day_column]) if day_row is not None and m.reject is None else None
            records = found.get(lookup) if lookup is not None else None
            legacy_cell, new_cells = None, ()
            if is_crime:
                # Rejected or not, a live crime counts on the OPUS side (mapping.md, Crime statistics).
                legacy_cell = same_cell(cells_of.legacy_entry(
                    raw, m, [(rec.values[LATITUDE], rec.values[LONGITUDE]) for rec in records] if records else None))
                if records:
                    new_cells = tuple(same_cell(cell) for rec in records if (cell := cells_of.new_entry(
                        rec.values[RECORDED], rec.values[DISTRICT], rec.values[GROUP], rec.values[STATUS],
                        rec.values[LATITUDE], rec.values[LONGITUDE])) is not None)
            findings, candidate, context = (), None, None
            if records:
                findings = (self._rejected_findings(spec, raw, m, records) if m.reject is not None
                            else self._matched_findings(spec, raw, m, records))
            else:
                context = describe.context(spec.name, raw, m, reference)
                if m.reject is None and spec is not PERSON:
                    candidate = _candidate(spec, raw, m, context)
            if m.reject is not None and context is None:
                context = describe.context(spec.name, raw, m, reference)  # MISSING if another owns the key
            outcomes.append(Outcome(m.legacy_key, False, m.reject, legacy_cell, new_cells,
                                    len(records) if records else 0, findings, candidate, context, day,
                                    rank_of(m.legacy_key) if records and rank_of is not None else None))
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
        for start in range(0, len(ids), self.lookup_chunk):
            stmt = (sa.select(main.c[spec.target_id], main.c.created_at)
                    .where(main.c[spec.target_id].in_(ids[start:start + self.lookup_chunk])))
            for target_id, created_at in self._target_all(conn, stmt):
                by_id[target_id].created_at = created_at

    def _nom_ids_of(self, conn, person_ids: Iterable[str]) -> dict[str, int | None]:
        """person_id → legacy_nominal_id (None for a person created in iOPS)."""
        person = self.tt["person"]
        ids = sorted({p for p in person_ids if p is not None})
        resolved: dict[str, int | None] = {}
        stmt = self._statement("nom_ids", lambda: sa.select(person.c.person_id, person.c.legacy_nominal_id)
                               .where(keys_in(person.c.person_id)))
        for start in range(0, len(ids), self.lookup_chunk):
            for pid, nom in self._target_all(conn, stmt, ids[start:start + self.lookup_chunk]):
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
        counterpart, diffs, expected = _counterpart(spec, m, records)
        if not diffs and len(records) == 1:
            return ()
        ctx = describe.context(spec.name, raw, m, self.ctx.reference)
        where = _where(ctx)
        explained = explain_diffs(diffs, dict(zip((r.name for r in spec.rules), expected)), raw,
                                  self.ctx.reference) if diffs else ()
        findings = [Discrepancy(spec.name, "ALTERED", m.legacy_key, str(counterpart.new_ref), e.diff.rule.name,
                                e.diff.rule.legacy_value(raw), e.diff.rule.shown(e.diff.expected),
                                e.diff.rule.shown(e.diff.actual), None, e.detail, e.explanation, *where)
                    for e in explained]
        surplus = f"{explain('DUPLICATE_RECORD')} (the one compared is {counterpart.new_ref})"
        findings += [Discrepancy(spec.name, "DUPLICATE", m.legacy_key, other.new_ref, None, None, None, None, None,
                                 None, surplus, *where)
                     for other in records if other is not counterpart]
        return tuple(findings)

    def _rejected_findings(self, spec: EntitySpec, raw: dict, m: Mapped, records: list[TargetRecord]) -> tuple:
        """The mapping rejects the record, yet the new store holds it: one ALTERED row (field
        empty) — the new store holds a record the mapping says cannot be migrated as is."""
        ordered = sorted(records, key=lambda r: (r.created_at or _NEVER, str(r.new_ref)))
        where = _where(describe.context(spec.name, raw, m, self.ctx.reference))
        why = explain(m.reject.code)
        text = f"{explain('LEGACY_REJECTED')}: {why.split(': ', 1)[-1]}" if why else explain("LEGACY_REJECTED")
        first = Discrepancy(spec.name, "ALTERED", m.legacy_key, str(ordered[0].new_ref), None,
                            _issue_text(m.reject), None, None, None, f"LEGACY_REJECTED:{m.reject.code}", text, *where)
        surplus = f"{explain('DUPLICATE_RECORD')} (the one compared is {ordered[0].new_ref})"
        return (first, *(Discrepancy(spec.name, "DUPLICATE", m.legacy_key, str(other.new_ref), None, None, None,
                                     None, None, None, surplus, *where)
                         for other in ordered[1:]))

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
    lower, upper = key_range
    stmt = select_in_key_order(table, (key_column,), conn.dialect,
                               start=None if lower is None else (lower,), below=None if upper is None else (upper,))
    return read_range(conn, stmt)


class LinkEvaluator(_TargetReader):
    """The link pass, a batch of matched crimes (trimmed keys) at a time: the links the
    mapping expects against the links of every new record that carries each crime, compared
    where the person is matched too. Pure given the person keys (complete once the person
    pass is done), so worker processes can evaluate batches; the caller emits the findings
    in batch order."""

    def __init__(self, legacy: Engine, target: Engine, legacy_tables: dict, target_tables: dict,
                 ctx: MappingContext, persons: EntityKeys, padded_links: dict[str, list[dict]],
                 auto_pairs: dict[str, tuple[str, str]], lookup_chunk: int = LOOKUP_CHUNK,
                 person_auto: dict[str, int] | None = None) -> None:
        super().__init__(target, target_tables, ctx, lookup_chunk)
        #: person_id -> NOM_ID of AUTO person pairs: such a person's links count as the nominal's.
        self.person_auto = person_auto or {}
        self.legacy = legacy
        self.lt = legacy_tables
        self.persons = persons
        self.padded_links = padded_links  # trimmed CRIME_NO -> CRIME_NOM rows typed padded
        self.auto_pairs = auto_pairs  # legacy crime key -> (crime_id, crime_ref) of AUTO pairs

    def evaluate(self, lconn, tconn, keys: list[str]) -> tuple[int, list[Discrepancy], "LinkCounts"]:
        """(links matched, findings, where the other legacy links went) of these crimes, in
        their order."""
        legacy = self.legacy_links(lconn, keys)
        carriers = self._target_links(tconn, keys)
        matched = 0
        findings: list[Discrepancy] = []
        counts = LinkCounts()
        for key in keys:
            mapped = legacy.get(key, ())
            counts.read += len(mapped)
            expected, rejects = expected_links(mapped)
            repeats = len(mapped) - len(expected) - len(rejects)  # DUPLICATE_LINK: migrated once
            if repeats:
                counts.not_expected["DUPLICATE_LINK"] += repeats
            refs, actual = carriers.get(key, ((), {}))
            matched += self._compare_link_sets(key, min(refs) if refs else None, expected, rejects, actual,
                                               findings, counts)
        if findings:
            self._name_people(lconn, findings)
        return matched, findings, counts

    def _name_people(self, lconn, findings: list[Discrepancy]) -> None:
        """Each link row names its person (``SMITH, John (NOM_ID 70031)``), from OPUS."""
        from mappings.describe import person_name

        noms = sorted({n for d in findings if (n := parse_nom_id(d.legacy_ref.rsplit(":", 2)[1])) is not None})
        table = self.lt["nominal"]
        names: dict[int, str] = {}
        stmt = self._statement("link names", lambda: sa.select(table.c.nom_id, table.c.surname, table.c.forenames)
                               .where(keys_in(table.c.nom_id)))
        for start in range(0, len(noms), self.lookup_chunk):
            with store_errors(self.legacy, "legacy"):
                for nom, surname, forenames in lconn.execute(stmt, {"keys": noms[start:start + self.lookup_chunk]}):
                    names[nom] = person_name(surname, forenames, nom)
        for i, d in enumerate(findings):
            nom = parse_nom_id(d.legacy_ref.rsplit(":", 2)[1])
            findings[i] = dataclasses.replace(d, person=names.get(nom) or (f"NOM_ID {nom}" if nom is not None else None))

    def _compare_link_sets(self, crime_key: str, new_ref: str | None, expected: frozenset, rejects: tuple,
                           actual: dict[tuple, str], findings: list, counts: "LinkCounts") -> int:
        """Links are compared only where both the crime and the person are matched; returns
        how many matched, appends what differs to ``findings`` and counts the links neither
        matched nor reported in ``counts``."""
        is_matched = self.persons.is_matched
        missing = []
        matched = 0
        for link in expected:
            if is_matched(link[0]):
                if link in actual:
                    matched += 1
                else:
                    missing.append(link)
            else:  # its person is missing in iOPS: the link cannot be compared
                counts.not_compared["LINK_PERSON_MISSING"] += 1
        if len(actual) == matched and not missing and not rejects:
            return matched  # the usual crime: every link found, nothing else there
        extra = [link for link in actual if link not in expected and link[0] is not None and is_matched(link[0])]
        for nom, role in sorted(missing, key=_link_order):
            findings.append(Discrepancy("crime_person", "MISSING", f"{crime_key}:{nom}:{role}", new_ref, None, None,
                                        None, None, None, None, explain("MISSING_NO_REASON")))
        for link_key, code, nom, issue in rejects:
            if is_matched(nom):
                findings.append(Discrepancy("crime_person", "MISSING", link_key, new_ref, None, issue, None, None,
                                            None, code, explain(code)))
            else:  # not reported: its person is not migrated (or not matched), so nothing to compare
                counts.not_expected[code] += 1
        for nom, role in sorted(extra, key=_link_order):
            findings.append(Discrepancy("crime_person", "UNEXPECTED", f"{crime_key}:{nom}:{role}",
                                        actual[(nom, role)], None, None, None, None, None, None,
                                        explain("LINK_UNEXPECTED")))
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
        columns = (crime.c.legacy_ref, crime.c.crime_ref, person.c.legacy_nominal_id, cp.c.role, cp.c.person_id)
        out: dict[str, tuple[dict, dict]] = {}
        person_auto = self.person_auto

        def add(key, crime_ref, nom, role, person_id):
            if nom is None and person_auto:
                nom = person_auto.get(person_id)
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
        for legacy_ref, crime_ref, nom, role, person_id in self._target_all(tconn, stmt, keys):
            if legacy_ref in wanted:  # exact equality (MariaDB's PAD SPACE also returns 'CR/... ')
                add(legacy_ref, crime_ref, nom, role, person_id)
        auto = {self.auto_pairs[k][0]: k for k in keys if k in self.auto_pairs}
        if auto:
            stmt = self._statement("auto links", lambda: sa.select(
                crime.c.crime_id, crime.c.crime_ref, person.c.legacy_nominal_id, cp.c.role, cp.c.person_id)
                .select_from(joined).where(keys_in(crime.c.crime_id)))
            for crime_id, crime_ref, nom, role, person_id in self._target_all(tconn, stmt, sorted(auto)):
                add(auto[crime_id], crime_ref, nom, role, person_id)
        return out


@dataclass
class LinkCounts:
    """Where the legacy links of a batch of matched crimes went, beyond matched and reported:
    rows read, and by reason (mappings/explanations.csv codes) those not expected and those
    not compared (``reconcile.model.EntityTotals.not_expected`` / ``not_compared``)."""

    read: int = 0
    not_expected: Counter = dataclasses.field(default_factory=Counter)
    not_compared: Counter = dataclasses.field(default_factory=Counter)


def expected_links(mapped_links: list[Mapped]) -> tuple[frozenset, tuple]:
    """(expected {(nom_id, role)}, rejected [(link key, code, nom, issue)]) of one crime."""
    expected = set()
    rejects = []
    for m in mapped_links:
        if m.reject is not None:
            nom = encode_nominal(m.legacy_key.rsplit(":", 2)[1])
            rejects.append((m.legacy_key, m.reject.code, nom, _issue_text(m.reject)))
        elif m.rows:
            expected.add((encode_nominal(m.legacy_key.rsplit(":", 2)[1]), m.rows["crime_person"]["role"]))
    return frozenset(expected), tuple(rejects)


def lookup_key(spec: EntitySpec, m: Mapped):
    """The value the new store carries the legacy key as: a person's NOM_ID is its encoded key
    (an int; a NOM_ID that is no number can match no legacy_nominal_id), the others their
    trimmed key."""
    if spec is PERSON:
        k = encode_nominal(m.legacy_key)
        return k if isinstance(k, int) else None
    return m.legacy_key or None


def _counterpart(spec: EntitySpec, m: Mapped, records: list[TargetRecord]):
    """The new record closest to the mapping: fewest differing fields, then earliest
    created_at, then smallest new reference. Returns it with its differences and the mapped
    values compared (in rule order)."""
    expected = expected_values(spec, m)
    if len(records) == 1:  # the usual case: nothing to rank
        return records[0], diff_fields(spec.rules, expected, records[0].values), expected
    best = None
    for rec in records:
        diffs = diff_fields(spec.rules, expected, rec.values)
        rank = (len(diffs), rec.created_at or _NEVER, str(rec.new_ref))
        if best is None or rank < best[0]:
            best = (rank, rec, diffs)
    return best[1], best[2], expected


def _where(ctx) -> tuple:
    """A record context as the row's trailing columns: recorded_local, offence, district,
    place, person (``reconcile.model.ROW_FIELDS`` after ``explanation``)."""
    if ctx is None:
        return (None, None, None, None, None)
    return (ctx.recorded_local, ctx.offence, ctx.district, ctx.place, ctx.person)


def _candidate(spec: EntitySpec, raw: dict, m: Mapped, context=None) -> "Candidate":
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
        return Candidate(m.legacy_key, record, context=context)
    report = m.rows["intelligence_report"]
    subject = parse_nom_id(raw.get("subj_nom_id")) if report.get("subject_person_id") else None
    return Candidate(m.legacy_key, _intel_record(report, location), (subject,) if subject is not None else (),
                     context)

@dataclass
class Candidate:
    """A live accepted legacy crime or intelligence report with no keyed counterpart: what
    unkeyed matching needs of it."""

    key: str
    record: dict  # the mapped values similarity compares
    nom_ids: tuple = ()  # NOM_IDs of its people (a crime's linked people, a report's subject)
    context: Any = None  # mappings.describe.RecordContext: shown on its MISSING or PROBABLE_MATCH row
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
