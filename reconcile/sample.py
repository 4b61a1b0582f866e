"""A seeded random sample of the matched records of each entity, for an auditor's manual check.

An auditor does not take "nothing differs" on trust: they pick records at random and compare
them by hand in both systems. The reconciler offers each matched record (keyed, or paired
``AUTO``) to :class:`MatchedSample`, which keeps, per entity, the ``size`` records whose keyed
hash of (seed, entity, key) is smallest — a "bottom-k" sample: uniformly random without
replacement, held in ``size`` entries of memory, and fixed by the seed and the keys alone. Unlike
a reservoir filled in arrival order, it does not depend on the order the records are offered
in, so it is the same whatever the number of worker processes and however batches are cut.

:func:`describe` then reads, from the new store, what an auditor needs to find each sampled
record on screen (its reference, when it was recorded, what, where / who) — a few rows per
entity. Never intelligence text.
"""

from __future__ import annotations

import hashlib
import heapq
from dataclasses import dataclass
from typing import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.db import store_errors

#: Records sampled per entity, and the seed, unless told otherwise (``ReconcileOptions``).
DEFAULT_SIZE = 25
DEFAULT_SEED = 2019


@dataclass(frozen=True)
class SampledRecord:
    """One matched record to check by hand: keys of both sides and how to recognise it."""

    entity: str
    legacy_ref: str
    new_ref: str | None = None
    how: str = "key"  # "key" (matched by its legacy key) or "AUTO" (paired by similarity)
    when: object = None  # recorded / submitted (aware UTC) or date of birth
    what: str | None = None  # offence; a person's name
    where: str | None = None  # address, else postcode; district


def ranker(seed: int, entity: str) -> Callable[[str], int]:
    """The sample's rank of a key of ``entity``: its keyed hash of (seed, entity, key), a 64-bit
    number. Worker processes rank the records they evaluate (``reconcile.evaluate``), so the
    process that decides only compares numbers; the hasher keyed by the seed is set up once and
    copied per key (the same digest as hashing ``entity NUL key`` afresh, and cheaper)."""
    salt = hashlib.blake2b(str(seed).encode(), digest_size=16).digest()
    base = hashlib.blake2b(f"{entity}\x00".encode("utf-8", "surrogateescape"), digest_size=8, key=salt)
    from_bytes = int.from_bytes

    def rank(key: str) -> int:
        h = base.copy()
        h.update(key.encode("utf-8", "surrogateescape"))
        return from_bytes(h.digest(), "big")

    return rank


class MatchedSample:
    """Per entity, the ``size`` matched records of smallest keyed hash (see the module doc)."""

    def __init__(self, seed: int = DEFAULT_SEED, size: int = DEFAULT_SIZE) -> None:
        self.seed = seed
        self.size = max(0, int(size))
        self._rankers: dict[str, Callable[[str], int]] = {}
        self._heaps: dict[str, list] = {}  # entity -> max-heap of (-rank, key, new_ref, how)
        self.offered: dict[str, int] = {}

    def rank_of(self, entity: str) -> Callable[[str], int] | None:
        """How keys of ``entity`` are ranked (``ranker``); None when nothing is sampled."""
        if not self.size:
            return None
        found = self._rankers.get(entity)
        if found is None:
            found = self._rankers[entity] = ranker(self.seed, entity)
        return found

    def offer(self, entity: str, key: str, new_ref: str | None = None, how: str = "key") -> None:
        """A record of ``entity`` was matched (called once per matched record, in any order)."""
        rank = self.rank_of(entity)
        self.offer_ranked(entity, [(rank(key) if rank else 0, key)], new_ref, how)

    def offer_ranked(self, entity: str, ranked: list[tuple[int, str]], new_ref: str | None = None,
                     how: str = "key") -> None:
        """Records of ``entity`` matched, as (``rank_of(entity)(key)``, key): a batch at a time."""
        self.offered[entity] = self.offered.get(entity, 0) + len(ranked)
        if not self.size or not ranked:
            return
        heap = self._heaps.setdefault(entity, [])
        size = self.size
        for rank, key in ranked:
            if len(heap) < size:
                heapq.heappush(heap, (-rank, key, new_ref, how))
            elif -rank > heap[0][0] or (-rank == heap[0][0] and key < heap[0][1]):
                heapq.heapreplace(heap, (-rank, key, new_ref, how))

    def chosen(self) -> dict[str, list[tuple[str, str | None, str]]]:
        """entity -> [(legacy key, new ref or None, how)], in sample order (smallest hash first)."""
        return {entity: [(key, new_ref, how) for _, key, new_ref, how in sorted(heap, key=lambda e: (-e[0], e[1]))]
                for entity, heap in self._heaps.items()}


def describe(sample: MatchedSample, target: Engine, tables: dict[str, sa.Table]) -> list[SampledRecord]:
    """The sampled records as an auditor finds them in iOPS (a few look-ups, ``size`` keys each)."""
    chosen = sample.chosen()
    out: list[SampledRecord] = []
    with store_errors(target, "target"), target.connect() as conn:
        for entity in ("person", "crime", "intelligence"):
            picks = chosen.get(entity) or []
            if not picks:
                continue
            found = _look_up(conn, entity, tables, picks)
            for key, new_ref, how in picks:
                row = found.get(new_ref if how == "AUTO" else key)
                if row is None:
                    out.append(SampledRecord(entity, key, new_ref, how))
                    continue
                out.append(SampledRecord(entity, key, row["ref"] if row["ref"] is not None else new_ref, how,
                                         row["when"], row["what"], row["where"]))
    return out


def _look_up(conn, entity: str, tables: dict[str, sa.Table], picks) -> dict:
    """ref or legacy key -> {ref, when, what, where} of the new records (the first by reference)."""
    location = tables["location"]
    if entity == "person":
        t = tables["person"]
        nominal_ids = [int(k) for k, _, how in picks if how != "AUTO" and str(k).isdigit()]
        stmt = (sa.select(t.c.legacy_nominal_id.label("key"), t.c.person_id.label("ref"),
                          t.c.date_of_birth.label("when"), t.c.family_name, t.c.given_names)
                .where(t.c.legacy_nominal_id.in_(nominal_ids)).order_by(t.c.person_id))
        found = {}
        for row in conn.execute(stmt).mappings():
            name = ", ".join(p for p in (row["family_name"], row["given_names"]) if p)
            found.setdefault(str(row["key"]), {"ref": row["ref"], "when": row["when"], "what": name, "where": None})
        return found
    t = tables["crime"] if entity == "crime" else tables["intelligence_report"]
    ref, when = (t.c.crime_ref, t.c.recorded_at) if entity == "crime" else (t.c.intel_ref, t.c.submitted_at)
    what = t.c.offence_description if entity == "crime" else sa.null()
    keyed = [k for k, _, how in picks if how != "AUTO"]
    refs = [r for _, r, how in picks if how == "AUTO" and r]
    joined = t.outerjoin(location, t.c.location_id == location.c.location_id)
    stmt = (sa.select(t.c.legacy_ref.label("key"), ref.label("ref"), when.label("when"), what.label("what"),
                      location.c.address, location.c.postcode, location.c.district_code.label("district"))
            .select_from(joined).where(sa.or_(t.c.legacy_ref.in_(keyed), ref.in_(refs))).order_by(ref))
    found: dict = {}
    for row in conn.execute(stmt).mappings():
        where = row["address"] or row["postcode"]
        if entity == "intelligence":
            where = where or row["district"]
        doc = {"ref": row["ref"], "when": row["when"], "what": row["what"], "where": where}
        for name in (row["key"], row["ref"]):
            if name is not None:
                found.setdefault(name, doc)
    return found
