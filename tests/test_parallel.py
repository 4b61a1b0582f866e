"""The reconciler's worker processes (``reconcile/parallel.py``; the pool itself is tested in
test_pool.py): a store a worker cannot use is the worker's StoreUnavailable; the key ranges
workers read their batches by hold every legacy row once. That the reports are the same with
and without workers is tested in test_reconcile.py and test_simulate.py, on every engine."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from core.errors import StoreUnavailable
from reconcile import parallel
from reconcile.run import MAX_AUTO_WORKERS, default_workers


def test_a_lost_store_in_a_worker_is_store_unavailable(tmp_path):
    """A worker whose store cannot be opened: the reconciliation fails with the worker's own
    one-line StoreUnavailable (exit 2), not a traceback or a shorter result."""
    from mappings.reference import load_reference
    import datetime as dt

    plan = parallel.EvaluationWorkers(2, f"sqlite:///{tmp_path / 'opus.db'}", f"sqlite:///{tmp_path / 'iops.db'}",
                                      load_reference(), dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc), 10)
    (tmp_path / "opus.db").write_bytes(b"this is not a database" * 100)
    (tmp_path / "iops.db").write_bytes(b"")
    with pytest.raises(StoreUnavailable, match="legacy store"):
        list(plan.evaluated_batches("crime", [(None, None)]))


def test_default_workers_is_between_one_and_the_cap():
    assert 1 <= default_workers() <= MAX_AUTO_WORKERS


@pytest.mark.parametrize("batch_size", [1, 2, 3, 50])
def test_key_ranges_hold_every_legacy_row_exactly_once_in_key_order(backend, make_store, batch_size):
    """Workers read their batches as key ranges cut by this process: together the ranges
    must give every row once, in the order one stream of the table gives them — padded and
    odd keys included — and a row added after the ranges were cut must still land in one."""
    from core import schema
    from core.batches import legacy_batches
    from reconcile.evaluate import key_ranges, legacy_range

    url = make_store(backend, "ranges")
    engine = sa.create_engine(url)
    table = schema.legacy_crime
    try:
        schema.legacy_metadata.create_all(engine, tables=[table])
        keys = ["CR/000001/19", "CR/000002/19", " CR/00003/19", "CR/000004/19", "CR/0005/19", "X", "cr/000006/19",
                "CR/000007/19", "CR/0001/19"]
        if backend != "mysql":  # MariaDB's PAD SPACE key holds these equal to their trimmed twins
            keys += ["CR/0001/19 ", "CR/0001/19  "]
        with engine.begin() as conn:
            conn.execute(table.insert(), [{"crime_no": k, "status": "O"} for k in keys])
        one_stream = [row["crime_no"] for batch in legacy_batches(engine, table, ("crime_no",), batch_size)
                      for row in batch]
        assert sorted(one_stream) == sorted(keys)
        ranges = list(key_ranges(engine, table, "crime_no", batch_size))
        assert len(ranges) == -(-len(keys) // batch_size)
        with engine.begin() as conn:
            conn.execute(table.insert(), [{"crime_no": "A-first", "status": "O"},
                                          {"crime_no": "CR/000003/19", "status": "O"}])
        with engine.connect() as conn:
            by_range = [[row["crime_no"] for row in legacy_range(conn, table, "crime_no", r)] for r in ranges]
        assert all(len(batch) <= batch_size + 2 for batch in by_range)  # + the two rows added
        read = [key for batch in by_range for key in batch]
        with engine.connect() as conn:
            in_order = list(conn.execute(sa.select(table.c.crime_no).order_by(table.c.crime_no)).scalars())
        assert read == in_order  # every row once, in the database's key order
        assert sorted(read) == sorted(keys + ["A-first", "CR/000003/19"])
    finally:
        engine.dispose()
