"""The new store's keys, read by a thread while the keyed pass runs.

The keyed pass looks each legacy record up in the new store; the records no legacy key leads
to — UNEXPECTED ones, and those carrying no legacy key at all — it cannot see. Finding them
takes every new record's key, and which keys are live is only known once the pass is over.
So the keys are read *beside* the pass, from the key column alone (an index scan), into a
compact key set (``core.keyset.KeySet``: a Roaring bitmap for the usual references); the records
without a key are fetched too, and made ready for similarity matching. When the pass ends,
the keys no live legacy record holds are few — a difference of two bitmaps — and only their
records are fetched (``Reconciler.scan_target``).

Before, that scan read every new record's id, reference and key after the pass, in this
process alone, while the worker processes stood idle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.beside import Beside
from core.db import store_errors, stream
from core.keyset import KeySet


@dataclass
class Census:
    """One target table's records, by key."""

    total: int = 0  # records in the table
    keys: KeySet = field(default_factory=KeySet)  # encoded keys of the records that carry one
    #: Keys no legacy look-up can have asked for (a person's key that is no number, which only
    #: SQLite can hold): never the keyed pass's, so always UNEXPECTED.
    strays: list = field(default_factory=list)
    unkeyed: list[tuple[str, str]] = field(default_factory=list)  # (id, new ref) of records without a key
    similar: Any = None  # what ``prepare`` made of the unkeyed records (similarity), or None
    seconds: tuple[float, float] = (0.0, 0.0)  # (wall, CPU) of the reading thread


def is_blank(key: Any) -> bool:
    """No legacy key: NULL, or text of white space only (those records are 'unkeyed')."""
    return key is None or (type(key) is str and not key.strip())


class CensusReader:
    """Reads a ``Census`` in a thread: ``with reader: <keyed pass>`` then ``reader.result()``.

    ``encode`` makes the key set's key of a raw key, as the keyed pass's key sets do;
    ``looked_up(raw)`` says whether the keyed pass can have looked that raw value up at all;
    ``prepare(unkeyed)``, if given, runs in the thread on the unkeyed records (it fetches
    what similarity matching needs). Errors (a store lost) are raised again by ``result``;
    leaving the ``with`` block on an error stops the thread and waits for it.
    """

    def __init__(self, target: Engine, table: sa.Table, id_column: str, ref_column: str, key_column: str,
                 encode: Callable[[Any], Any], looked_up: Callable[[Any], bool],
                 prepare: Callable[[list[tuple[str, str]]], Any] | None = None) -> None:
        self.target = target
        self.table = table
        self.columns = (id_column, ref_column, key_column)
        self.encode = encode
        self.looked_up = looked_up
        self.prepare = prepare
        self._thread = Beside(f"census: {table.name}", self._read)

    def __enter__(self) -> "CensusReader":
        self._thread.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._thread.stop()

    def result(self) -> Census:
        census = self._thread.join()
        census.seconds = self._thread.seconds
        return census

    # ------------------------------------------------------------------ in the thread

    def _read(self, stopped: Callable[[], bool]) -> Census:
        census = Census()
        with store_errors(self.target, "target"), self.target.connect() as conn:
            blanks = self._keys(conn, census, stopped)
            if blanks is not None:
                census.unkeyed = self._unkeyed(conn, blanks)
        if self.prepare is not None and census.unkeyed and not stopped():
            census.similar = self.prepare(census.unkeyed)
        return census

    def _keys(self, conn, census: Census, stopped: Callable[[], bool]) -> set | None:
        """Stream the key column into ``census``; returns the blank text keys seen (a set,
        empty when only NULLs are blank), or None when every record carries a key."""
        column = self.table.c[self.columns[2]]
        add, encode, looked_up = census.keys.add, self.encode, self.looked_up
        blanks: set = set()
        unkeyed = 0
        for partition in stream(conn, sa.select(column)).scalars().partitions():
            if stopped():
                break
            census.total += len(partition)
            for key in partition:
                if key is None or (type(key) is str and not key.strip()):  # is_blank, inlined: a million calls
                    unkeyed += 1
                    if key is not None:
                        blanks.add(key)
                elif looked_up(key):
                    add(encode(key))
                else:
                    census.strays.append(key)
        return blanks if unkeyed else None

    def _unkeyed(self, conn, blanks: set) -> list[tuple[str, str]]:
        """(id, new ref) of the records without a key, in id order. Blank keys are asked for
        by value and checked here again: a collation may call other values equal to them."""
        id_column, ref_column, key_column = (self.table.c[name] for name in self.columns)
        condition = key_column.is_(None)
        if blanks:
            condition = sa.or_(condition, key_column.in_(sorted(blanks)))
        stmt = sa.select(id_column, ref_column, key_column).where(condition).order_by(id_column)
        return [(record_id, ref) for record_id, ref, key in conn.execute(stmt) if is_blank(key)]
