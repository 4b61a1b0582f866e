"""The decisions of a reconciliation, taken in one process, in key order: the ``Reconciler``.

The evaluation of a batch (``reconcile.evaluate``) is pure and may run in any process; what
depends on the records before it is decided here, as the outcomes come back in key order:

* which legacy record owns a key that two records share once trimmed
  (``mappings.entities.first_key_wins``, as the migration decides it);
* the key sets (``reconcile.keys``) the later passes read — accepted, rejected, excluded,
  and the accepted records left without a keyed counterpart (the candidates of unkeyed
  matching);
* the totals of each entity and the crime statistics.

The passes are generators of findings (``reconcile.model.Discrepancy``): the caller
(``reconcile.run``) puts them in the spool and counts them. Order matters as in the
migration: persons, crimes, unkeyed crimes, links, intelligence — the mapping of a link or of
an intelligence subject depends on which persons and crimes the mapping accepts, and links are
compared only for crimes and persons both matched (keyed or AUTO), so after unkeyed matching.

After each keyed pass the target table's keys are read (``reconcile.census``) to find the
new records the keyed look-ups cannot see: ``UNEXPECTED`` ones (a legacy key that is no live
legacy record) and unkeyed ones (no legacy key), and — for crimes — the new side of the crime
statistics.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections import defaultdict
from typing import Callable, Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.batches import legacy_batches
from core.db import connect, store_errors
from core.progress import bar
from core.refs import decode_ref
from mappings import map_persons
from mappings.entities import first_key_wins
from mappings.outcome import Issue, Mapped, MappingContext
from reconcile import similarity
from reconcile.census import Census, CensusReader
from mappings import describe
from mappings.explanations import explain
from reconcile.evaluate import (LOOKUP_CHUNK, BatchEvaluator, Candidate, LinkEvaluator, Outcome, _intel_record,
                                _issue_text, _prefix, _where, expected_links, key_ranges, keys_in, mapping_context)
from reconcile.keys import EntityKeys
from reconcile.sample import MatchedSample
from reconcile.model import Discrepancy, EntityTotals
from reconcile.specs import CRIME, DECODE, INTEL, LOOKED_UP, PERSON, SPECS, EntitySpec
from reconcile.stats import CrimeCells, CrimeStats

#: Findings as the passes yield them (``Reconciler`` methods are generators of these).
Findings = Iterator[Discrepancy]

#: A well-formed crime or intelligence reference, once trimmed.
_REF = re.compile(r"^(?:CR|IN)/(\d{6})/(\d{2})$")


class Reconciler:
    """One reconciliation's passes and everything they remember (key sets, candidates, AUTO
    pairs, crime statistics, totals). Each pass is a generator of findings; run them in the
    order of ``reconcile.run._run_passes``."""

    def __init__(self, legacy: Engine, target: Engine, legacy_tables: dict, target_tables: dict,
                 ctx: MappingContext, totals: dict[str, EntityTotals], *, batch_size: int, auto_threshold: float,
                 review_threshold: float, on_batch: Callable[[str, int], None] | None = None,
                 workers=None, lookup_chunk: int = LOOKUP_CHUNK, sample: MatchedSample | None = None,
                 cells: CrimeCells | None = None) -> None:
        self.lookup_chunk = lookup_chunk  # ids or keys per IN (...) of a look-up
        self.legacy = legacy
        #: reconcile.parallel.EvaluationWorkers, or None: keyed batches are evaluated here.
        self.workers = workers
        self.on_batch = on_batch
        self.target = target
        self.lt = legacy_tables
        self.tt = target_tables
        self.totals = totals  # per entity; the categories are counted by whoever consumes the findings
        self.batch_size = batch_size
        self.auto_threshold = auto_threshold
        self.review_threshold = review_threshold
        self.keys = {name: EntityKeys(spec.encode_key) for name, spec in SPECS.items()}
        persons, crimes = self.keys["person"], self.keys["crime"]
        self.ctx = mapping_context(ctx.reference, ctx.run_started, persons, crimes)
        #: How crimes are placed in the statistics (code tables, go-live); workers build the same.
        self.cells = cells if cells is not None else CrimeCells(ctx.reference, None)
        self.stats = CrimeStats(self.cells)
        self.candidates: dict[str, dict[str, Candidate]] = {"crime": {}, "intelligence": {}}  # entity -> key -> …
        #: entity -> encoded key -> outcome of a rejected record whose key the new store holds, kept
        #: until an accepted record with that key takes the new records or the pass ends (few).
        self._held: dict[str, dict] = {name: {} for name in SPECS}
        self.padded_links: dict[str, list[dict]] = {}  # trimmed CRIME_NO -> CRIME_NOM rows typed padded
        self.auto_pairs: dict[str, tuple[str, str]] = {}  # legacy crime key -> (crime_id, crime_ref) of AUTO pairs
        #: Entities whose new store holds unkeyed records: only then are candidates kept in memory.
        self.collect_similarity: set[str] = set()
        self.sample = sample if sample is not None else MatchedSample()  # matched records to check by hand
        #: entity -> new_ref -> RecordContext of the unkeyed new records (the new side of a pair).
        self.new_context: dict[str, dict] = {}
        self.links_read = 0  # CRIME_NOM rows read by the link pass (the rest: crimes not migrated)
        #: The new store holds persons without a legacy id: unmatched nominals wait for
        #: reconcile.persons (paired, or reported MISSING there) instead of being MISSING at once.
        self.match_persons = False
        self.person_auto: dict[str, int] = {}  # person_id -> NOM_ID of AUTO person pairs
        self.evaluator = BatchEvaluator(target, target_tables, self.ctx, lookup_chunk, self.cells,
                                        self.sample.rank_of)

    def set_go_live(self, go_live) -> None:
        """Go-live for the crime statistics, here and in the worker processes of later passes."""
        self.cells.set_go_live(go_live)
        if self.workers is not None:
            self.workers = dataclasses.replace(self.workers, go_live=go_live)

    # ------------------------------------------------------------------ reading helpers

    def _count(self, engine: Engine, role: str, table: sa.Table) -> int:
        stmt = sa.select(sa.func.count()).select_from(table)
        with store_errors(engine, role), engine.connect() as conn:
            return conn.execute(stmt).scalar_one()

    # ------------------------------------------------------------------ keyed passes

    def keyed_pass(self, spec: EntitySpec) -> Iterator[Discrepancy]:
        """Every legacy record of ``spec`` against its keyed counterparts: yields the findings;
        returns (``census = yield from ...``) the census
        of the new store's keys, read beside the pass (``reconcile.census``)."""
        totals = self.totals[spec.name]
        keys = self.keys[spec.name]
        total = self._count(self.legacy, "legacy", self.lt[spec.legacy_table])
        done = 0
        with self._census_reader(spec) as census, \
                bar(f"reconcile {spec.name:<12}", total=total, unit="rec") as progress:
            for outcomes in self._evaluated_batches(spec, total):
                yield from self._apply(spec, outcomes, keys, totals)
                progress.update(len(outcomes))
                done += len(outcomes)
                if self.on_batch is not None:
                    self.on_batch(spec.name, done)
            yield from self._release_held(spec, totals)
        return census.result()

    def _census_reader(self, spec: EntitySpec) -> CensusReader:
        main = self.tt[spec.target_table]
        prepare = self._unkeyed_records(spec) if spec.name in self.collect_similarity else None
        return CensusReader(self.target, main, spec.target_id, spec.new_ref, spec.target_key, self.keys[spec.name].encode,
                            LOOKED_UP[spec.name], prepare)

    def _evaluated_batches(self, spec: EntitySpec, rows: int) -> Iterator[list[Outcome]]:
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
            for batch in legacy_batches(self.legacy, table, (spec.key_column,), self.batch_size):
                yield self.evaluator.evaluate(spec, batch, tconn)

    def _apply(self, spec: EntitySpec, outcomes: list[Outcome], keys: EntityKeys,
               totals: EntityTotals) -> Findings:
        """The order-dependent half of a keyed batch (see BatchEvaluator): runs in key order."""
        encode = keys.encode
        entity = spec.entity
        is_crime = spec is CRIME
        stats = self.stats
        add_legacy, add_new = stats.add_legacy, stats.add_new
        held = self._held[spec.name]
        name = spec.name
        excluded = live = 0
        ranked = []  # (rank, key) of the matched records: offered to the sample as a batch
        for o in outcomes:
            key = o.key
            encoded = encode(key)
            if o.excluded:
                excluded += 1
                keys.excluded.add(encoded)
                continue
            live += 1
            reject = o.reject
            taken = encoded in keys.accepted
            if reject is None:
                # Two legacy keys equal once trimmed: the first record the mapping accepts owns
                # the key and its new records, a later accepted one is DUPLICATE_KEY — as the
                # migration decides (mappings.entities.first_key_wins).
                reject = first_key_wins(entity, Mapped(spec.name, key), taken).reject
                if reject is not None:
                    if is_crime and o.legacy_cell is not None:
                        add_legacy(key, o.legacy_cell, False)
                    yield self._missing(name, key, reject, o.context)
                    continue
                keys.accepted.add(encoded)
                if o.day is not None:
                    totals.live_by_day[o.day] += 1
                earlier = held.pop(encoded, None)
                if earlier is not None:
                    # A rejected record before it held the key's new records: they are this
                    # one's (what the migration wrote); the rejected one is not migrated.
                    yield self._missing(name, earlier.key, earlier.reject, earlier.context)
            else:
                # A rejected record owns nothing: the key's new records are an earlier record's,
                # or (held until the pass ends) those of an accepted record that may follow.
                seen = taken or encoded in keys.rejected
                keys.rejected.add(encoded)
                if is_crime and o.legacy_cell is not None:
                    add_legacy(key, o.legacy_cell, False)  # counted by OPUS, not migrated
                if seen:
                    yield self._missing(name, key, reject, o.context)
                    continue
                if o.found:
                    held[encoded] = o
                    continue
            if is_crime:
                if reject is None and o.legacy_cell is not None:
                    add_legacy(key, o.legacy_cell, True)
                for cell in o.new_cells:  # every crime row in the store is counted once: here, or in the scan
                    add_new(cell)
            if o.found:
                totals.matched_keyed += 1
                ranked.append((o.rank, key))
                yield from o.findings
            elif o.reject is not None:
                yield self._missing(name, key, o.reject, o.context)
            else:
                keys.unmatched.add(encoded)
                candidate = o.candidate
                if candidate is not None and name in self.collect_similarity:
                    self.candidates[name][key] = candidate
                elif spec is PERSON and self.match_persons:
                    pass  # kept in keys.unmatched for reconcile.persons
                else:
                    # No unkeyed record of this entity in the new store (or a person, which is
                    # never similarity-matched): nothing could pair with it, so it is missing now.
                    if is_crime:
                        stats.missing(key)
                    yield self._missing(name, key, None, o.context)
        self.sample.offer_ranked(name, ranked)
        totals.legacy_excluded += excluded
        totals.legacy_total += live

    def _release_held(self, spec: EntitySpec, totals: EntityTotals) -> Findings:
        """At the end of a keyed pass: the rejected records whose new records no accepted record
        with their key took — the new store holds records the mapping rejects (LEGACY_REJECTED)."""
        held = self._held[spec.name]
        for o in held.values():
            if spec is CRIME:
                for cell in o.new_cells:
                    self.stats.add_new(cell)
            totals.matched_keyed += 1
            yield from o.findings
        held.clear()

    @staticmethod
    def _missing(entity: str, key: str, reject: Issue | None = None, context=None) -> Discrepancy:
        """MISSING: explained (with its reason) when the mapping rejects the record; with the
        record's time, offence, district and place (``mappings.describe``)."""
        where = _where(context)
        if reject is not None:
            return Discrepancy(entity, "MISSING", key, None, None, _issue_text(reject), None, None, None, reject.code,
                               explain(reject.code), *where)
        return Discrepancy(entity, "MISSING", key, None, None, None, None, None, None, None,
                           explain("MISSING_NO_REASON"), *where)

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

    def link_pass(self) -> Findings:
        """crime_person, for every matched crime (keyed or AUTO): the links the mapping
        produces against the links of every new record that carries the crime."""
        crimes = self.keys["crime"]
        total = len(crimes.accepted) - len(crimes.unmatched)
        with bar("reconcile crime_person", total=total, unit="crime") as progress:
            totals = self.totals["crime_person"]
            for matched, findings, counts in self._evaluated_links(self._matched_crime_batches(progress), total):
                totals.matched_keyed += matched
                self.links_read += counts.read
                totals.not_expected.update(counts.not_expected)
                totals.not_compared.update(counts.not_compared)
                yield from findings
        self._count_links_of_missing_crimes()

    def _count_links_of_missing_crimes(self) -> None:
        """The legacy links of the crimes the mapping accepts but iOPS lacks (MISSING): not
        compared. Few: only their rows are read (exact, trimmed CRIME_NO, as the link pass)."""
        crimes = self.keys["crime"]
        keys = sorted(DECODE["crime"](k) for k in crimes.unmatched)
        if not keys:
            return
        table = self.lt["crime_nom"]
        stmt = sa.select(table.c.crime_no, table.c.nom_id, table.c.role).where(keys_in(table.c.crime_no))
        rows = set()
        with store_errors(self.legacy, "legacy"), self.legacy.connect() as conn:
            for start in range(0, len(keys), self.lookup_chunk):
                chunk = keys[start:start + self.lookup_chunk]
                wanted = set(chunk)
                for r in conn.execute(stmt, {"keys": chunk}):
                    if isinstance(r[0], str) and r[0].strip() in wanted:
                        rows.add(tuple(r))
                for key in chunk:
                    rows.update((r["crime_no"], r["nom_id"], r["role"]) for r in self.padded_links.get(key, ()))
        self.links_read += len(rows)
        if rows:
            self.totals["crime_person"].not_compared["LINK_CRIME_MISSING"] += len(rows)

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
                padded_links=self.padded_links, auto_pairs=self.auto_pairs, person_auto=self.person_auto)
            return
        links = self.link_evaluator()
        with connect(self.legacy, "legacy") as lconn, connect(self.target, "target") as tconn:
            for keys in key_batches:
                yield links.evaluate(lconn, tconn, keys)

    def link_evaluator(self) -> LinkEvaluator:
        return LinkEvaluator(self.legacy, self.target, self.lt, self.tt, self.ctx, self.keys["person"],
                             self.padded_links, self.auto_pairs, self.lookup_chunk, self.person_auto)

    # ------------------------------------------------------------------ target scans

    def scan_target(self, spec: EntitySpec, census: Census) -> Iterator[Discrepancy]:
        """The new records the keyed pass could not see, from the census read beside it:
        count the table, report UNEXPECTED the records whose key no live legacy record holds
        (fetched by key: normally few), and return the unkeyed records as (id, new ref). Yields the findings.

        Crime statistics, new side: the records the keyed pass fetched were counted there; the
        others (unkeyed, unexpected) are counted here, fetched by id.
        """
        self.totals[spec.name].new_total += census.total
        keys = self.keys[spec.name]
        main = self.tt[spec.target_table]
        key_column = main.c[spec.target_key]
        decode = DECODE[spec.name]
        # Raw keys as the store holds them: a number of the key set decodes to its exact text.
        unexpected = [decode(k) for k in census.keys.without(keys.accepted, keys.rejected)] + census.strays
        wanted = set(unexpected)
        seen: set = set()
        not_fetched = [record_id for record_id, _ in census.unkeyed]
        # What a reader recognises the iOPS record by: a person's name (not its uuid); a crime's or
        # report's time, offence, district and place (normally few records: fetched with them).
        location = self.tt["location"]
        null = sa.null()
        if spec.name == "person":
            shown, joined = (main.c.family_name, main.c.given_names, null, null, null, null, null), main
        else:
            joined = main.outerjoin(location, main.c.location_id == location.c.location_id)
            shown = (null, null, main.c.recorded_at if spec is CRIME else main.c.submitted_at,
                     main.c.offence_description if spec is CRIME else null, main.c.district_code,
                     location.c.address, location.c.postcode)
        stmt = (sa.select(main.c[spec.target_id], main.c[spec.new_ref], key_column, *shown)
                .select_from(joined).where(keys_in(key_column)))
        reference = self.ctx.reference
        with connect(self.target, "target") as conn, store_errors(self.target, "target"):
            for start in range(0, len(unexpected), self.lookup_chunk):
                for target_id, new_ref, key, family, given, moment, offence, district, address, postcode in \
                        conn.execute(stmt, {"keys": unexpected[start:start + self.lookup_chunk]}):
                    # Exact keys only, each record once: MariaDB's PAD SPACE also returns
                    # 'CR/000001/19 ' for 'CR/000001/19', which may be asked for in another chunk.
                    if key not in wanted or target_id in seen:
                        continue
                    seen.add(target_id)
                    not_fetched.append(target_id)
                    deleted = keys.is_excluded(key)
                    yield Discrepancy(spec.name, "UNEXPECTED", str(key), str(new_ref), None, None, None, None, None,
                                      "DELETED_IN_OPUS" if deleted else "NOT_IN_OPUS",
                                      explain("DELETED_IN_OPUS_MIGRATED" if deleted else "NOT_IN_OPUS"),
                                      describe.uk_local(moment), offence, describe.district_name(reference, district),
                                      describe.place_of(address, postcode),
                                      describe.person_name(family, given, key) if spec.name == "person" else None)
        if spec is CRIME:
            self._count_new_stats(not_fetched)
        return census.unkeyed

    def _count_new_stats(self, crime_ids: list[str]) -> None:
        crime, location = self.tt["crime"], self.tt["location"]
        joined = crime.outerjoin(location, crime.c.location_id == location.c.location_id)
        with store_errors(self.target, "target"), self.target.connect() as conn:
            for start in range(0, len(crime_ids), self.lookup_chunk):
                stmt = (sa.select(crime.c.recorded_at, crime.c.district_code, crime.c.offence_group, crime.c.status,
                                  location.c.latitude, location.c.longitude)
                        .select_from(joined).where(crime.c.crime_id.in_(crime_ids[start:start + self.lookup_chunk])))
                for row in conn.execute(stmt):
                    self.stats.count_new(*row)

    # ------------------------------------------------------------------ unkeyed records

    def resolve_unkeyed(self, spec: EntitySpec, unkeyed: list[tuple[str, str]],
                        prepared: tuple[list, dict] | None = None) -> Findings:
        """Match the unkeyed new records of ``spec`` against its candidates; report the
        PROBABLE_MATCH pairs and the candidates left MISSING; count what is new in iOPS.
        AUTO pairs count as present (a crime's links are then compared by ``link_pass``);
        their fields are not compared — see reconcile/run.py. ``prepared``: the unkeyed
        records' SimRecords and ref → id, when the census already fetched them."""
        totals = self.totals[spec.name]
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
        if pairs:
            legacy_by_ref = {r.ref: r for r in legacy_records}
            new_by_ref = {r.ref: r for r in new_records}
        new_context = self.new_context.get(spec.name, {})
        for pair in pairs:
            context = candidates[pair.legacy_ref].context if pair.legacy_ref in candidates else None
            theirs = new_context.get(pair.new_ref) or describe.RecordContext()
            differs = similarity.differing(legacy_by_ref[pair.legacy_ref], new_by_ref[pair.new_ref])
            text = f"{explain(pair.band)} (score {pair.score:.1f}; differs: {', '.join(differs) or 'nothing compared'})"
            yield Discrepancy(spec.name, "PROBABLE_MATCH", pair.legacy_ref, pair.new_ref, None, None, None, None,
                              pair.score, pair.band, text, *_where(context), theirs.recorded_local, theirs.offence,
                              theirs.district, theirs.place, ", ".join(differs) or None)
            if pair.band == similarity.AUTO:
                auto.add(pair.legacy_ref)
                self.sample.offer(spec.name, pair.legacy_ref, pair.new_ref, "AUTO")
                keys.unmatched.discard(keys.encode(pair.legacy_ref))
                if spec is CRIME:
                    self.auto_pairs[pair.legacy_ref] = (by_ref[pair.new_ref], pair.new_ref)
        totals.matched_auto += len(auto)
        totals.new_in_iops += len(unkeyed) - len(pairs)
        for key, candidate in candidates.items():
            if spec is CRIME:
                (self.stats.found if key in auto else self.stats.missing)(key)
            if key not in auto:
                yield self._missing(spec.name, key, None, candidate.context)
        candidates.clear()
        new_context.clear()

    def _candidate_records(self, spec: EntitySpec, candidates: dict[str, Candidate]) -> list[similarity.SimRecord]:
        """SimRecords of the candidates, with the mapped names of their people (a crime's
        linked people, an intelligence report's subject)."""
        if spec is CRIME:
            keys = list(candidates)
            links = self.link_evaluator()
            with store_errors(self.legacy, "legacy"), self.legacy.connect() as conn:
                for start in range(0, len(keys), self.lookup_chunk):
                    chunk = keys[start:start + self.lookup_chunk]
                    for key, mapped in links.legacy_links(conn, chunk).items():
                        linked = {nom for nom, _ in expected_links(mapped)[0]}
                        candidates[key].nom_ids = tuple(sorted(n for n in linked if isinstance(n, int)))
        nom_ids = sorted({n for c in candidates.values() for n in c.nom_ids})
        names: dict[int, tuple] = {}
        table = self.lt["nominal"]
        with store_errors(self.legacy, "legacy"), self.legacy.connect() as conn:
            for start in range(0, len(nom_ids), self.lookup_chunk):
                chunk = nom_ids[start:start + self.lookup_chunk]
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
        contexts = self.new_context.setdefault("crime", {})
        with store_errors(self.target, "target"), self.target.connect() as conn:
            for start in range(0, len(unkeyed), self.lookup_chunk):
                ids = [cid for cid, _ in unkeyed[start:start + self.lookup_chunk]]
                people: dict[str, list] = defaultdict(list)
                stmt = (sa.select(cp.c.crime_id, person.c.family_name, person.c.given_names)
                        .select_from(cp.join(person, cp.c.person_id == person.c.person_id))
                        .where(cp.c.crime_id.in_(ids)))
                for cid, family, given in conn.execute(stmt):
                    people[cid].append((family, given))
                stmt = (sa.select(crime.c.crime_id, crime.c.crime_ref, crime.c.recorded_at, crime.c.ho_offence_code,
                                  crime.c.offence_group, crime.c.mo_summary, location.c.postcode, location.c.address,
                                  location.c.easting, location.c.northing, crime.c.offence_description,
                                  crime.c.district_code)
                        .select_from(crime.outerjoin(location, crime.c.location_id == location.c.location_id))
                        .where(crime.c.crime_id.in_(ids)))
                for row in conn.execute(stmt):
                    by_ref[row.crime_ref] = row.crime_id
                    contexts[row.crime_ref] = describe.RecordContext(
                        recorded_local=describe.uk_local(row.recorded_at), offence=row.offence_description,
                        district=describe.district_name(self.ctx.reference, row.district_code),
                        place=describe.place_of(row.address, row.postcode))
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
        contexts = self.new_context.setdefault("intelligence", {})
        joined = (ir.outerjoin(location, ir.c.location_id == location.c.location_id)
                  .outerjoin(person, ir.c.subject_person_id == person.c.person_id))
        with store_errors(self.target, "target"), self.target.connect() as conn:
            for start in range(0, len(unkeyed), self.lookup_chunk):
                ids = [iid for iid, _ in unkeyed[start:start + self.lookup_chunk]]
                stmt = (sa.select(ir, location.c.easting, location.c.northing, person.c.family_name,
                                  person.c.given_names)
                        .select_from(joined).where(ir.c.intel_id.in_(ids)))
                for row in conn.execute(stmt).mappings():
                    by_ref[row["intel_ref"]] = row["intel_id"]
                    contexts[row["intel_ref"]] = describe.RecordContext(
                        recorded_local=describe.uk_local(row["submitted_at"]),
                        district=describe.district_name(self.ctx.reference, row["district_code"]))
                    people = [(row["family_name"], row["given_names"])] if row["family_name"] else []
                    records.append(similarity.make_record(row["intel_ref"], people=people, **_intel_record(
                        row, {"easting": row["easting"], "northing": row["northing"]})))
        records.sort(key=lambda r: r.ref)
        return records, by_ref

    # ------------------------------------------------------------------ totals of links

    def count_links(self) -> None:
        """Totals of links; the legacy links of crimes the mapping does not migrate (rejected,
        deleted, absent) are the rest — never read: no crime to compare them with."""
        totals = self.totals["crime_person"]
        totals.legacy_total = self._count(self.legacy, "legacy", self.lt["crime_nom"])
        totals.new_total = self._count(self.target, "target", self.tt["crime_person"])
        rest = totals.legacy_total - self.links_read
        if rest:
            totals.not_expected["LINK_CRIME_NOT_MIGRATED"] += rest
