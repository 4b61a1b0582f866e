"""The lock against the OS's and the database's races: a reused pid, and first runs at once.

* A holder killed long ago whose pid the OS has given to another process: the lock row
  records when its process started (``lock.process_start``), so a live pid that started at
  another time is a dead holder, taken over. A live holder with its own start time keeps the
  target, and the refusal says how a person clears a lock.
* Three first runs started at the same instant into a fresh target: the schema is created
  once (the lock table tolerates the race; the rest is created under the lock); one run
  migrates, each other one completes after it or is refused in one line — never a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

import sqlalchemy as sa

from core import schema
from migrate import lock
from tests.test_concurrency import assert_refused, legacy, live_pid, lock_rows, migrate_cli, plant_lock  # noqa: F401
from tests.test_crash_safety import ROOT, runs_of
from tests.test_migrate import table_digests

ALL_TABLES = tuple(schema.target_metadata.tables)


def set_pid_started(target: str, value: str | None) -> None:
    engine = sa.create_engine(target)
    try:
        with engine.begin() as conn:
            conn.execute(schema.mig_lock.update().values(pid_started=value))
    finally:
        engine.dispose()


def test_process_start_tells_two_processes_apart_and_stays_put(live_pid):
    mine = lock.process_start(os.getpid())
    assert mine is not None and mine == lock.process_start(os.getpid())
    theirs = lock.process_start(live_pid)
    assert theirs is not None and theirs != mine
    boot, ticks = theirs.rsplit("/", 1)
    assert boot == mine.rsplit("/", 1)[0] and int(ticks) >= int(mine.rsplit("/", 1)[1])


def test_process_start_reads_a_command_name_with_spaces_and_parentheses(tmp_path):
    odd = tmp_path / "x) (y z"
    odd.symlink_to("/bin/sleep")
    proc = subprocess.Popen([str(odd), "30"])
    try:
        time.sleep(0.2)
        started = lock.process_start(proc.pid)
        assert started is not None and started.rsplit("/", 1)[1].isdigit()
        assert started.rsplit("/", 1)[0] == lock.process_start(os.getpid()).rsplit("/", 1)[0]
    finally:
        proc.kill()
        proc.wait()


def test_a_reused_pid_is_a_dead_holder(backend, legacy, make_store, live_pid):
    """The row names a live pid, but one that started after the holder did: the OS reused it."""
    target = make_store(backend, "target")
    plant_lock(target, pid=live_pid)
    set_pid_started(target, lock.process_start(live_pid).rsplit("/", 1)[0] + "/1")  # started at boot
    res = migrate_cli(legacy, target)
    assert res.exit_code == 0, res.output
    assert lock_rows(target) == []
    assert [r["state"] for r in runs_of(target)] == ["complete"]


def test_a_pid_from_an_earlier_boot_is_a_dead_holder(legacy, make_store, tmp_path, live_pid):
    target = f"sqlite:///{tmp_path / 'iops.db'}"
    plant_lock(target, pid=live_pid)
    set_pid_started(target, "00000000-0000-0000-0000-000000000000/" + lock.process_start(live_pid).rsplit("/", 1)[1])
    assert migrate_cli(legacy, target).exit_code == 0


@pytest.mark.parametrize("recorded", ["its own", "unknown"])
def test_a_live_holder_with_its_start_time_keeps_the_target(recorded, backend, legacy, make_store, live_pid):
    """Its own start time, or none recorded (no /proc where it ran): the live pid holds."""
    target = make_store(backend, "target")
    plant_lock(target, pid=live_pid)
    set_pid_started(target, lock.process_start(live_pid) if recorded == "its own" else None)
    before = table_digests(target, ALL_TABLES)
    line = assert_refused(migrate_cli(legacy, target), f"pid {live_pid}")
    assert "DELETE FROM mig_lock" in line  # how a person clears it, once they have checked
    assert table_digests(target, ALL_TABLES) == before


def test_the_lock_row_records_the_start_of_its_process(tmp_path):
    """What a holder writes is what ``process_start`` later reads for its pid."""
    from core.db import open_target

    engine = open_target(f"sqlite:///{tmp_path / 'iops.db'}")
    try:
        schema.create_target_schema(engine)
        with lock.target_lock(engine, "migrate"):
            with engine.connect() as conn:
                (row,) = conn.execute(sa.select(schema.mig_lock)).mappings().all()
        assert row["pid"] == os.getpid() and row["pid_started"] == lock.process_start(os.getpid())
    finally:
        engine.dispose()


# ------------------------------------------------------------------------ first runs at once

_AT_ONCE = """
import sys, time
from main import app
start_at = float(sys.argv[1])
time.sleep(max(0.0, start_at - time.time()))
sys.argv = ["main.py", *sys.argv[2:]]
app(prog_name="main.py")
"""


@pytest.mark.parametrize("attempt", range(2))
def test_three_first_runs_at_once_into_a_fresh_target(attempt, backend, legacy, make_store, tmp_path):
    target = make_store(backend, "target")
    straight = make_store(backend, "straight")
    assert migrate_cli(legacy, straight).exit_code == 0

    start_at = time.time() + 4  # after every interpreter has started and imported the tool
    procs = [subprocess.Popen([sys.executable, "-c", _AT_ONCE, str(start_at), "migrate", "--legacy", legacy,
                               "--target", target, "--quiet"], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outcomes = [p.communicate(timeout=300) + (p.returncode,) for p in procs]
    for out, err, code in outcomes:
        assert "Traceback" not in err, err
        if code == 2:
            (line,) = err.strip().splitlines()
            assert line.startswith("error: the target is in use") and "wait for it to finish" in line, line
        else:
            assert code == 0 and err.strip() == "", (code, err)
    assert any(code == 0 for *_, code in outcomes)
    assert lock_rows(target) == []
    assert all(r["state"] == "complete" for r in runs_of(target))
    # What the first run wrote is what one run alone writes (a later one found it unchanged).
    digests, alone = table_digests(target, schema.TARGET_TABLES), table_digests(straight, schema.TARGET_TABLES)
    assert digests == alone
