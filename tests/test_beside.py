"""core.beside: work on a thread whose error the main thread raises."""

from __future__ import annotations

import threading

import pytest

from core.beside import Beside


def test_the_result_comes_back_and_the_thread_times_itself():
    work = Beside("sum", lambda stopped: sum(range(100_000))).start()
    assert work.join() == sum(range(100_000))
    wall, cpu = work.seconds
    assert wall > 0 and cpu >= 0


def test_an_error_in_the_thread_is_raised_by_join():
    def fail(stopped):
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        Beside("fails", fail).start().join()


def test_stop_asks_the_work_to_stop_and_waits_for_it():
    started, steps = threading.Event(), []

    def endless(stopped):
        started.set()
        while not stopped():
            steps.append(1)
            threading.Event().wait(0.001)
        raise RuntimeError("stopped: this error is the caller's to drop")

    work = Beside("endless", endless).start()
    started.wait(5)
    work.stop()  # returns only once the thread has ended, and drops its error
    assert steps and not [t for t in threading.enumerate() if t.name == "endless"]
