"""The one worker-process pool (``core/pool.py``), through its public interface: results in
submission order whatever the workers' speed, at most ``ahead`` tasks outstanding, a task's
error raised in the caller as it was, a worker that dies is ``WorkerFailed`` (exit 2)."""

from __future__ import annotations

import multiprocessing
import os
import time

import pytest

from core.errors import StoreUnavailable
from core.pool import Pool, WorkerFailed

_state: dict = {}


def _remember(value) -> None:  # initializer: per-process state, set once
    _state["value"] = value


def _slow_for_small(n: int) -> tuple:
    time.sleep(0.05 if n % 3 == 0 else 0)  # later items often finish first
    return n, _state.get("value"), os.getpid()


def _lose_the_store(n: int) -> None:
    if n == 2:
        raise StoreUnavailable("target store sqlite:///x.db: connection lost")
    return None


def _die(n: int) -> None:
    os._exit(3)  # as if killed: no result, no exception


def test_results_come_in_submission_order_from_every_worker_set_up_once():
    with Pool(3, _remember, ("ready",)) as pool:
        got = list(pool.in_order(_slow_for_small, range(30)))
    assert [n for n, _, _ in got] == list(range(30))
    assert {value for _, value, _ in got} == {"ready"}
    assert len({pid for _, _, pid in got}) > 1  # shared, not one process doing it all


def test_at_most_ahead_tasks_are_outstanding():
    submitted = []

    def items():
        for n in range(20):
            submitted.append(n)
            yield n

    with Pool(2) as pool:
        for n, *_ in pool.in_order(_slow_for_small, items(), ahead=3):
            assert len(submitted) - n <= 3


def test_a_task_error_is_raised_in_the_caller_as_it_was():
    with pytest.raises(StoreUnavailable, match="connection lost"):
        with Pool(2) as pool:
            list(pool.in_order(_lose_the_store, range(10)))


def test_a_worker_that_dies_silently_is_worker_failed():
    with pytest.raises(WorkerFailed, match="ended unexpectedly") as caught:
        with Pool(1, what="reconciliation worker") as pool:
            list(pool.in_order(_die, range(3)))
    assert caught.value.exit_code == 2 and "\n" not in str(caught.value)


def test_stopping_early_leaves_no_process_running():
    before = set(multiprocessing.active_children())
    with Pool(2) as pool:
        for n, *_ in pool.in_order(_slow_for_small, range(100)):
            if n == 3:
                started = set(multiprocessing.active_children()) - before
                break
    assert started  # the workers were there while the pool worked
    assert not [p for p in started if p.is_alive()]
