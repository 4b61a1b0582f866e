"""One writer per target: the ``mig_lock`` row.

A migration or rollback inserts the single lock row (primary key 1) in its own committed
transaction; a second process's insert fails on the key, so two writers can never
interleave. A holder killed with SIGKILL leaves its row behind: it is taken over when the
holder is provably gone: on the same host, its process no longer exists, or its pid now
names another process (the OS reuses pids: the row records when its process started, and a
live pid that started at another time is not the holder); on another host, it has been
silent for ``STALE_AFTER``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
from contextlib import contextmanager
from typing import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.db import store_errors
from core.errors import RunInProgress
from core.schema import mig_lock, utc_now

STALE_AFTER = dt.timedelta(minutes=10)
HOST = socket.gethostname()[:120]


def process_start(pid: int) -> str | None:
    """When process ``pid`` started, as ``BOOT_ID/TICKS``: the kernel's id of this boot and the
    start time in clock ticks since boot (field 22 of ``/proc/PID/stat``). Two processes that
    share a pid never share both. None where there is no ``/proc`` (or no such process)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            boot = f.read().strip()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces or ')': split after the last ')'.
    fields = stat[stat.rfind(")") + 2:].split()
    return f"{boot}/{fields[19]}" if len(fields) > 19 else None


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder_gone(row) -> bool:
    if row.host == HOST:
        # On this machine the OS knows: a live holder keeps the target however long its
        # heartbeat is silent (a slow batch, a resume re-reading the legacy store, a rollback's
        # single transaction whose heartbeat nobody sees until it commits).
        if not _process_alive(row.pid):
            return True
        return row.pid_started is not None and process_start(row.pid) not in (None, row.pid_started)
    return utc_now() - row.heartbeat_at > STALE_AFTER


def holder(engine: Engine):
    """The current lock row, or None."""
    with engine.connect() as conn:
        return conn.execute(sa.select(mig_lock)).first()


@contextmanager
def target_lock(engine: Engine, purpose: str, run_id: int | None = None) -> Iterator[None]:
    """Hold the target for the duration of the block, or raise ``RunInProgress``."""
    row = {"lock_id": 1, "run_id": run_id, "purpose": purpose, "host": HOST, "pid": os.getpid(),
           "pid_started": process_start(os.getpid()), "acquired_at": utc_now(), "heartbeat_at": utc_now()}
    with store_errors(engine, "target"):
        _acquire(engine, row)
    try:
        yield
    except BaseException:
        # The work failed, often because the store went away: its error is the one to report.
        # A row we cannot delete now names this process, which is ending: the next run takes it over.
        with contextlib.suppress(sa.exc.DBAPIError):
            _release(engine)
        raise
    with store_errors(engine, "target"):
        _release(engine)


def _acquire(engine: Engine, row: dict) -> None:
    for _attempt in range(2):
        try:
            with engine.begin() as conn:
                conn.execute(mig_lock.insert(), [row])
            return
        except sa.exc.IntegrityError:
            current = holder(engine)
            if current is None:
                continue
            if not _holder_gone(current):
                what = f"run {current.run_id}" if current.run_id else current.purpose
                raise RunInProgress(
                    f"the target is in use by {current.purpose} ({what}, pid {current.pid} on {current.host}, "
                    f"since {current.acquired_at:%Y-%m-%d %H:%M} UTC): wait for it to finish; "
                    f"{_how_to_clear(current)}"
                ) from None
            with engine.begin() as conn:  # take over a dead holder's lock
                conn.execute(mig_lock.delete().where(mig_lock.c.pid == current.pid, mig_lock.c.host == current.host))
    raise RunInProgress("could not take the target lock: another process keeps taking it")


def _how_to_clear(current) -> str:
    """How a person clears a lock this tool cannot prove abandoned, once they have checked."""
    where = "is not running" if current.host == HOST else f"is not running on {current.host}"
    return f"only if pid {current.pid} {where} as this tool, clear the lock with: DELETE FROM mig_lock"


def _release(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(mig_lock.delete().where(mig_lock.c.pid == os.getpid(), mig_lock.c.host == HOST))


def heartbeat(conn: sa.Connection) -> None:
    """Refresh the lock inside a batch transaction, so a live run never looks stale."""
    conn.execute(mig_lock.update().where(mig_lock.c.pid == os.getpid(), mig_lock.c.host == HOST)
                 .values(heartbeat_at=utc_now()))


def is_held_by_live_process(engine: Engine, run_id: int) -> bool:
    row = holder(engine)
    return row is not None and row.run_id == run_id and not _holder_gone(row)
