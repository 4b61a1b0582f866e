"""Work done by a thread beside the main one, whose error is the main one's to raise.

The reconciler's main thread mostly waits for its worker processes; a thread can meanwhile
read the new store's keys (``reconcile.census``). That needs three things, kept here: the thread's error raised again where the run can
report it (an error in a thread would otherwise only be printed), a way to ask the work to
stop when the run fails, and the thread's own wall and CPU seconds for the timings.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable


class Beside:
    """Run ``work(stopped)`` in a thread from ``start()``; ``stopped()`` is true once ``stop()``
    is called (long work checks it between steps). ``join()`` waits and returns the work's
    result or raises its error."""

    def __init__(self, name: str, work: Callable[[Callable[[], bool]], Any]) -> None:
        self._work = work
        self._result: Any = None
        self._error: BaseException | None = None
        self._stopped = False
        self.seconds = (0.0, 0.0)  # (wall, CPU) of the thread, once it has ended
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> "Beside":
        self._thread.start()
        return self

    def _run(self) -> None:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            self._result = self._work(lambda: self._stopped)
        except BaseException as exc:  # raised again by join(), in the thread that can report it
            self._error = exc
        self.seconds = (time.perf_counter() - wall, time.thread_time() - cpu)

    def join(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._result

    def stop(self) -> None:
        """Ask the work to stop and wait for the thread; its error, if any, is dropped (the
        caller is already failing for a reason of its own)."""
        self._stopped = True
        self._thread.join()
