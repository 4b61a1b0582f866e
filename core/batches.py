"""Reading a legacy table in key order, a batch at a time: the one reader of OPUS rows.

The migration (with resume), the reconciler (its single-process path and each worker's key
range) and the simulator read legacy rows the same way: ``SELECT * ... ORDER BY key``, streamed
from the server, as lists of dicts keyed by lower-case column names (what the mapping reads).
Key bounds are given as read (or as a checkpoint holds them) and bound through
``core.db.legacy_key_bound``, so a key with undecodable bytes compares as the stored key does.
"""

from __future__ import annotations

import contextlib

from typing import Any, Callable, Iterator, NamedTuple, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.db import UndecodableText, driver_text_decoding, legacy_key_bound, store_errors, stream


def select_in_key_order(table: sa.Table, key_columns: Sequence[str], dialect, *,
                        start: Sequence[Any] | None = None, after: Sequence[Any] | None = None,
                        upto: Sequence[Any] | None = None, below: Sequence[Any] | None = None,
                        columns: Sequence[str] | None = None):
    """``SELECT * FROM table ORDER BY keys`` (or only ``columns``) with optional bounds on the key
    (tuple-compared when the key has several columns): ``>= start``, ``> after``, ``<= upto``, ``< below``."""
    keys = [table.c[name] for name in key_columns]
    stmt = (sa.select(table) if columns is None else sa.select(*[table.c[name] for name in columns])).order_by(*keys)
    key_expr = keys[0] if len(keys) == 1 else sa.tuple_(*keys)

    def bound(values):
        values = [legacy_key_bound(dialect, v) for v in values]
        if len(keys) == 1:
            return values[0]
        return sa.tuple_(*[v if isinstance(v, sa.ColumnElement) else sa.literal(v) for v in values])

    if start is not None:
        stmt = stmt.where(key_expr >= bound(start))
    if after is not None:
        stmt = stmt.where(key_expr > bound(after))
    if upto is not None:
        stmt = stmt.where(key_expr <= bound(upto))
    if below is not None:
        stmt = stmt.where(key_expr < bound(below))
    return stmt


class RowBatch(NamedTuple):
    """A batch as plain tuples: ``names`` (lower-case column names) and ``rows`` in key order."""

    names: list[str]
    rows: list[tuple]


def legacy_batches(legacy: Engine, table: sa.Table, key_columns: Sequence[str], batch_size: int, *,
                   after: Sequence[Any] | None = None, upto: Sequence[Any] | None = None,
                   every_batch: Callable[[int], None] | None = None) -> Iterator[list[dict]]:
    """The rows of ``table`` in key order, ``batch_size`` at a time, as dicts.

    One snapshot, except where a SQLite store holds text that is not UTF-8: the read then
    continues after the last batch handed out with the escaping decoder
    (``core.db.driver_text_decoding``), a second snapshot of the rows not yet read.
    ``every_batch(n)`` is called after the n-th batch has been handed out (e.g. to collect
    garbage by hand every so many batches). Legacy errors are ``StoreUnavailable``."""
    for batch in legacy_row_batches(legacy, table, key_columns, batch_size, after=after, upto=upto,
                                    every_batch=every_batch):
        names = batch.names
        # zip over plain rows: cheaper than building dicts from RowMappings.
        yield [dict(zip(names, row)) for row in batch.rows]


def legacy_row_batches(legacy: Engine, table: sa.Table, key_columns: Sequence[str], batch_size: int, *,
                       after: Sequence[Any] | None = None, upto: Sequence[Any] | None = None,
                       every_batch: Callable[[int], None] | None = None,
                       columns: Sequence[str] | None = None) -> Iterator[RowBatch]:
    """``legacy_batches`` as plain tuples (``RowBatch``): for a reader that looks at most rows
    without mapping them (a delta run digests the raw row) and makes dicts only of the few it maps.
    ``columns``: only these (which must include the key columns), e.g. the keys alone to cut a
    table into key ranges."""
    n = 0
    for fast in (True, False):
        try:
            for batch in _batches(legacy, table, key_columns, batch_size, after, upto, fast, columns):
                n += 1
                yield batch
                at = [batch.names.index(name) for name in key_columns]
                after = [batch.rows[-1][i] for i in at]
                if every_batch is not None:
                    every_batch(n)
            return
        except UndecodableText:
            continue  # the batch that met it was not handed out: read it again, escaping


def _batches(legacy: Engine, table: sa.Table, key_columns: Sequence[str], batch_size: int, after, upto,
             fast: bool, columns: Sequence[str] | None = None) -> Iterator[RowBatch]:
    stmt = select_in_key_order(table, key_columns, legacy.dialect, after=after, upto=upto, columns=columns)
    with store_errors(legacy, "legacy"), legacy.connect() as conn:
        with (driver_text_decoding(conn) if fast else contextlib.nullcontext()):
            result = stream(conn, stmt)
            names = list(result.keys())
            for partition in result.partitions(batch_size):
                # Plain tuples (a delta run marshals them): SQLAlchemy's public Row API has no
                # zero-copy tuple, so each row is copied (~0.7 µs at 20 columns).
                yield RowBatch(names, [tuple(row) for row in partition])


def read_range(conn: sa.Connection, stmt) -> list[dict]:
    """All rows of a bounded SELECT as dicts: with the driver's text decoding, and once more
    escaping when a SQLite value is not UTF-8 (``core.db.driver_text_decoding``)."""
    try:
        with driver_text_decoding(conn):
            return _all(conn, stmt)
    except UndecodableText:
        return _all(conn, stmt)


def _all(conn: sa.Connection, stmt) -> list[dict]:
    result = conn.execute(stmt)
    names = list(result.keys())
    return [dict(zip(names, row)) for row in result.all()]
