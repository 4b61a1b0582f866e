"""The worker-process plumbing of the reconciler (``reconcile/parallel.py``): a failure in a
worker reaches the main process as the error it was, and a worker that dies without a word
is an error (exit 2), never a silently shorter result. That the reports are the same with
and without workers is tested in test_reconcile.py and test_simulate.py, on every engine."""

from __future__ import annotations

import os

import pytest

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
    with parallel._Workers(3, _echo_worker, (), with_input=True) as workers:
        for n in range(6):
            workers.send(n % 3, n)
        got = [workers.take(n % 3) for n in range(6)]
        processes = workers.processes
    assert got == [(parallel._BATCH, (n % 3, n)) for n in range(6)]
    assert all(p.exitcode == 0 for p in processes)  # each ended on its own after the last batch


def test_default_workers_is_between_one_and_the_cap():
    assert 1 <= default_workers() <= MAX_AUTO_WORKERS


def test_workers_that_read_different_legacy_rows_stop_the_run():
    """Each worker cuts the whole legacy table into batches itself: if rows were added or
    removed between their reads, batches would not line up, so the run stops (exit 2)."""
    from reconcile.keyed import KeyFingerprint

    def fingerprint(keys: list) -> tuple[int, str]:
        f = KeyFingerprint()
        f.add(keys[:2])
        f.add(keys[2:])
        return f.value()

    same = fingerprint(["CR/000001/18", "CR/000002/18", "CR/000003/18"])
    parallel._check_same_stream("crime", same, [(parallel._DONE, same)])
    assert fingerprint(["CR/000001/18", "CR/000002/18"]) != same  # a row removed
    assert fingerprint(["CR/000001/18", "CR/000002/18", "CR/000003/18 "]) != same  # a key retyped
    with pytest.raises(parallel.LegacyChanged, match="changed while its crime records") as caught:
        parallel._check_same_stream("crime", same, [(parallel._DONE, fingerprint(["CR/000001/18"]))])
    assert caught.value.exit_code == 2
    with pytest.raises(parallel.LegacyChanged):  # another worker still had a batch to give
        parallel._check_same_stream("crime", same, [(parallel._BATCH, [])])
