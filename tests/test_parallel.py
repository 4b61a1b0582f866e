"""The worker-process plumbing of the reconciler (``reconcile/parallel.py``): a failure in a
worker reaches the main process as the error it was, and a worker that dies without a word
is an error (exit 2), never a silently shorter result; the key ranges workers read their
batches by hold every legacy row once. That the reports are the same with
and without workers is tested in test_reconcile.py and test_simulate.py, on every engine."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

from core.errors import StoreUnavailable
from reconcile import parallel
from reconcile.run import MAX_AUTO_WORKERS, default_workers


def _lose_the_store() -> None:
    raise StoreUnavailable("lost the connection to the target store (check it is running)")


def _failing_worker(index, out, inbox) -> None:
    parallel._reporting(_lose_the_store, out)


def _dying_worker(index, out, inbox) -> None:
    os._exit(3)  # as if killed: no report, no exception


def _echo_worker(index, out, inbox) -> None:
    def work() -> None:
        while (item := inbox.get()) is not None:
            out.put((parallel._BATCH, (index, item)))

    parallel._reporting(work, out)


def test_a_worker_error_is_raised_in_the_main_process_as_it_was():
    with pytest.raises(StoreUnavailable, match="target store"):
        with parallel._Workers(2, _failing_worker, ()) as workers:
            workers.take(1)


def test_a_worker_that_dies_silently_is_an_error():
    with pytest.raises(parallel.WorkerFailed, match="exit code 3") as caught:
        with parallel._Workers(1, _dying_worker, ()) as workers:
            workers.take(0)
    assert caught.value.exit_code == 2


def test_workers_take_their_own_inbox_and_stop_when_told():
    with parallel._Workers(3, _echo_worker, ()) as workers:
        for n in range(6):
            workers.send(n % 3, n)
        got = [workers.take(n % 3) for n in range(6)]
        processes = workers.processes
    assert got == [(parallel._BATCH, (n % 3, n)) for n in range(6)]
    assert all(p.exitcode == 0 for p in processes)  # each ended on its own after the last batch


def test_default_workers_is_between_one_and_the_cap():
    assert 1 <= default_workers() <= MAX_AUTO_WORKERS


@pytest.mark.parametrize("batch_size", [1, 2, 3, 50])
def test_key_ranges_hold_every_legacy_row_exactly_once_in_key_order(backend, make_store, batch_size):
    """Workers read their batches as key ranges cut by this process: together the ranges
    must give every row once, in the order one stream of the table gives them — padded and
    odd keys included — and a row added after the ranges were cut must still land in one."""
    from core import schema
    from reconcile.keyed import key_ranges, legacy_batches, legacy_range

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
        one_stream = [row["crime_no"] for batch in legacy_batches(engine, table, "crime_no", batch_size)
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
