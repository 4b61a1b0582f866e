"""What one migration run found, read back from the target's bookkeeping (cutover.md).

``run_findings(target, run_id)`` gives the run's facts (``mig_run``: state, start, end, counts
per entity with the invariant's terms) and three lazy streams: its rejects (``mig_reject``),
warnings (``mig_warning``) and conflicts (``mig_conflict``). The streams read in pages of
``batch_size`` rows in key order (keyset: ``id > last``), each page on a short connection of its
own: a run with a million rejects needs the memory of one page, and no read holds a snapshot
or a lock for the whole time a report takes to write.

The records are what the engine stored: a reject's ``value`` is never intelligence text (the
mapping names INT_TEXT without its value, and ``raw_row`` holds its fingerprint); conflicts
name target columns, never values. This module returns them as they are; what a report shows
(explanations, spreadsheet safety, fingerprints as a second line of defence) is ``reports/``'s.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core import schema
from core.db import mask_url, open_target, store_errors
from core.errors import RunNotFound
from migrate.runs import load_run

#: Rows per page of a stream: a page is one short query, and all the memory a stream holds.
BATCH_SIZE = 5000

#: The terms of the invariant (cutover.md): read = the sum of the others.
INVARIANT_TERMS = ("written", "updated", "unchanged", "conflicted", "excluded", "rejected")
INVARIANT = "read = " + " + ".join(INVARIANT_TERMS)
#: Counted beside the invariant: a vanished legacy row is not read; overwritten is a part of conflicted.
BESIDE_INVARIANT = ("deleted_in_opus", "overwritten")
COUNT_NAMES = ("read", *INVARIANT_TERMS, *BESIDE_INVARIANT)


@dataclass(frozen=True)
class Issue:
    """One row of ``mig_reject`` or ``mig_warning``: ``reason`` is the mapping's code."""

    entity: str
    legacy_key: str | None
    reason: str
    field: str | None
    value: str | None


@dataclass(frozen=True)
class Conflict:
    """One row of ``mig_conflict``. ``opus_fields`` / ``iops_fields``: target column names."""

    entity: str
    legacy_key: str
    target_table: str
    target_id: str
    kind: str  # CHANGED_BOTH | DELETED_IN_OPUS
    opus_fields: tuple[str, ...]
    iops_fields: tuple[str, ...]
    resolution: str  # KEPT_IOPS | OVERWRITTEN | STOPPED


@dataclass
class EntityTally:
    """One entity's counts as the run recorded them (``mig_run.counts``)."""

    entity: str
    counts: dict[str, int]
    rejected_by: dict[str, int] = field(default_factory=dict)
    warnings_by: dict[str, int] = field(default_factory=dict)

    def __getitem__(self, name: str) -> int:
        return int(self.counts.get(name) or 0)

    @property
    def balanced(self) -> bool:
        return self["read"] == sum(self[term] for term in INVARIANT_TERMS)


@dataclass
class RunFindings:
    """A run's facts and its records. Use as a context manager (or ``close()``) when it was
    opened from a URL: it then owns a connection pool to the target."""

    run_id: int
    state: str  # running | interrupted | complete | rolled_back (migrate.runs: as it really is)
    started_at: dt.datetime
    finished_at: dt.datetime | None
    entities: dict[str, EntityTally]
    target_url: str  # masked
    legacy_url: str | None  # masked
    batch_size: int = BATCH_SIZE
    _engine: Engine | None = field(default=None, repr=False)
    _owns_engine: bool = field(default=False, repr=False)

    @property
    def balanced(self) -> bool:
        return all(t.balanced for t in self.entities.values())

    def total(self, name: str) -> int:
        return sum(t[name] for t in self.entities.values())

    def rejects(self) -> Iterator[Issue]:
        t = schema.mig_reject
        for row in self._pages(t, t.c.reject_id, (t.c.entity, t.c.legacy_key, t.c.reason, t.c.field, t.c.value)):
            yield Issue(row.entity, row.legacy_key, row.reason, row.field, row.value)

    def warnings(self) -> Iterator[Issue]:
        t = schema.mig_warning
        for row in self._pages(t, t.c.warning_id, (t.c.entity, t.c.legacy_key, t.c.reason, t.c.field, t.c.value)):
            yield Issue(row.entity, row.legacy_key, row.reason, row.field, row.value)

    def conflicts(self) -> Iterator[Conflict]:
        t = schema.mig_conflict
        columns = (t.c.entity, t.c.legacy_key, t.c.target_table, t.c.target_id, t.c.kind, t.c.opus_fields,
                   t.c.iops_fields, t.c.resolution)
        for row in self._pages(t, t.c.conflict_id, columns):
            yield Conflict(row.entity, row.legacy_key, row.target_table, row.target_id, row.kind,
                           _names(row.opus_fields), _names(row.iops_fields), row.resolution)

    def _pages(self, table: sa.Table, key: sa.Column, columns) -> Iterator[sa.Row]:
        """The run's rows of ``table`` in ``key`` order, ``batch_size`` per query."""
        engine = self._engine
        if engine is None:
            raise RuntimeError("these findings are closed")
        with store_errors(engine, "target"):
            if not sa.inspect(engine).has_table(table.name):
                return  # a target written before the table existed: the run recorded none
        last = None
        while True:
            query = sa.select(key, *columns).where(table.c.run_id == self.run_id)
            if last is not None:
                query = query.where(key > last)
            query = query.order_by(key).limit(self.batch_size)
            with store_errors(engine, "target"), engine.connect() as conn:
                page = conn.execute(query).all()
            yield from page
            if len(page) < self.batch_size:
                return
            last = page[-1][0]

    def close(self) -> None:
        if self._owns_engine and self._engine is not None:
            self._engine.dispose()
        self._engine = None

    def __enter__(self) -> "RunFindings":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run_findings(target: str | Engine, run_id: int, *, batch_size: int = BATCH_SIZE) -> RunFindings:
    """The findings of run ``run_id`` in the target (a URL, or an engine the caller keeps).

    Never writes to the target. ``RunNotFound`` (a usage error) when there is no such run.
    """
    if not 1 <= batch_size:
        raise ValueError("batch_size must be at least 1")
    owns = not isinstance(target, Engine)
    if owns:
        engine = open_target(target, read_only=True)
        if engine is None:
            raise RunNotFound(f"no run {run_id}: there is no target store at {mask_url(target)}")
    else:
        engine = target
    try:
        with store_errors(engine, "target"):
            run = load_run(engine, run_id)
    except BaseException:
        if owns:
            engine.dispose()
        raise
    entities = {}
    for entity, data in run.counts.items():
        data = data if isinstance(data, dict) else {}
        entities[entity] = EntityTally(
            entity,
            {name: int(data.get(name) or 0) for name in COUNT_NAMES},
            dict(data.get("rejected_by") or {}),
            dict(data.get("warnings_by") or {}),
        )
    url = getattr(engine, "display_url", engine.url)
    return RunFindings(run.id, run.state, run.started_at, run.finished_at, entities, mask_url(url),
                       run.legacy_store, batch_size, engine, owns)


def _names(text: str | None) -> tuple[str, ...]:
    return tuple(name for name in (text or "").split(";") if name)
