"""The one legacy batch reader: every row exactly once, in key order, whatever bytes it holds.

SQLite legacy text is read with sqlite3's own decoder and read again escaping only when a
value is not UTF-8 (core.db.driver_text_decoding); the switch must never lose, repeat or
reorder a row, wherever in a batch the undecodable value sits.
"""

import sqlite3

import pytest
import sqlalchemy as sa

from core.batches import legacy_batches, read_range, select_in_key_order
from core.db import open_legacy

ROWS = 10


def _store(path, bad_at: set[int]):
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)")
    conn.executemany("INSERT INTO t VALUES (?, ?)", [(f"k{i:03}", f"value {i}") for i in range(ROWS)])
    for i in bad_at:
        conn.execute("UPDATE t SET v = CAST(X'41FF42' AS TEXT) WHERE k = ?", (f"k{i:03}",))
    conn.commit()
    conn.close()
    engine = open_legacy(f"sqlite:///{path}")
    return engine, sa.Table("t", sa.MetaData(), autoload_with=engine)


@pytest.mark.parametrize("bad_at", [set(), {0}, {4}, {5}, {9}, {2, 7}, set(range(ROWS))])
@pytest.mark.parametrize("batch_size", [1, 3, 4, 100])
def test_every_row_once_in_order_and_bad_bytes_escaped(tmp_path, bad_at, batch_size):
    engine, table = _store(tmp_path / "legacy.db", bad_at)
    try:
        batches = list(legacy_batches(engine, table, ("k",), batch_size))
        rows = [row for batch in batches for row in batch]
        assert [r["k"] for r in rows] == [f"k{i:03}" for i in range(ROWS)]
        assert all(len(b) <= batch_size for b in batches)
        for i, row in enumerate(rows):
            assert row["v"] == ("A\udcffB" if i in bad_at else f"value {i}")
        with engine.connect() as conn:
            ranged = read_range(conn, select_in_key_order(table, ("k",), conn.dialect, start=("k002",), below=("k008",)))
        assert [r["v"] for r in ranged] == [("A\udcffB" if i in bad_at else f"value {i}") for i in range(2, 8)]
    finally:
        engine.dispose()


def test_every_batch_callback_counts_batches_across_the_switch(tmp_path):
    engine, table = _store(tmp_path / "legacy.db", {5})
    seen = []
    try:
        for _ in legacy_batches(engine, table, ("k",), 2, every_batch=seen.append):
            pass
    finally:
        engine.dispose()
    assert seen == [1, 2, 3, 4, 5]


def test_a_connection_decodes_escaping_again_after_the_fast_read(tmp_path):
    """The fast decoder is the reader's own: a connection handed back to the pool must read
    undecodable text escaping again (other readers rely on it)."""
    engine, table = _store(tmp_path / "legacy.db", {3})
    try:
        list(legacy_batches(engine, table, ("k",), 4))
        with engine.connect() as conn:
            assert conn.execute(sa.select(table.c.v).where(table.c.k == "k003")).scalar_one() == "A\udcffB"
    finally:
        engine.dispose()
