"""One writer per target: a second migration (or a rollback) refuses while another holds the target.

The holder is always a genuinely live process: either a real ``migrate`` running in a
subprocess, or a ``mig_lock`` row naming a live ``sleep`` on this host. A lock left by a
process that has exited is taken over; a lock held from another machine is respected while
its heartbeat is fresh, and taken over once it has been silent for ``STALE_AFTER``.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from core import schema
from main import app
from migrate import lock
from tests.opus_fixture import update_legacy
from tests.test_crash_safety import Progress, build_legacy, runs_of, start_migrate
from tests.test_migrate import table_digests

ALL_TABLES = tuple(schema.target_metadata.tables)


def run_cli(*args: str):
    return CliRunner().invoke(app, list(args))


def migrate_cli(legacy: str, target: str, *extra: str):
    return run_cli("migrate", "--legacy", legacy, "--target", target, "--quiet", *extra)


def assert_refused(res, *fragments: str, why: str = "in use") -> str:
    """Exit 2 with one line that says the target is busy and to wait."""
    assert isinstance(res.exception, SystemExit), f"uncaught {type(res.exception).__name__}: {res.exception}"
    assert res.exit_code == 2, (res.exit_code, res.output)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert why in lines[0] and "wait for it to finish" in lines[0], lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert res.stdout == ""  # no run id: no run was started
    return lines[0]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def plant_lock(target: str, *, pid: int, host: str = lock.HOST, age: dt.timedelta = dt.timedelta(0),
               run_id: int | None = None) -> None:
    """Put a lock row in the target as another process would have."""
    engine = sa.create_engine(target)
    try:
        schema.create_target_schema(engine)
        at = _now() - age
        with engine.begin() as conn:
            conn.execute(schema.mig_lock.insert().values(lock_id=1, run_id=run_id, purpose="migrate", host=host,
                                                         pid=pid, acquired_at=at, heartbeat_at=at))
    finally:
        engine.dispose()


def lock_rows(target: str) -> list[dict]:
    engine = sa.create_engine(target)
    try:
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(schema.mig_lock)).mappings()]
    finally:
        engine.dispose()


@pytest.fixture
def legacy(tmp_path):
    return build_legacy(f"sqlite:///{tmp_path / 'opus.db'}", crimes=60)


@pytest.fixture
def live_pid():
    """The pid of a live process on this host that is not us."""
    proc = subprocess.Popen(["sleep", "120"])
    yield proc.pid
    proc.kill()
    proc.wait()


@pytest.fixture
def dead_pid():
    """The pid of a process on this host that has exited (and been reaped)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


# ---------------------------------------------------------------------- a live holder


def test_refused_while_a_live_process_on_this_host_holds_the_target(backend, legacy, make_store, live_pid):
    target = make_store(backend, "target")
    assert migrate_cli(legacy, target).exit_code == 0
    # The legacy store changes, so a run that got through would write updates.
    update_legacy(legacy, "crime", {"crime_no": "CR/000001/18"}, status="O", disposal=None,
                  last_upd="20190101120000")
    plant_lock(target, pid=live_pid, run_id=1)
    before = table_digests(target, ALL_TABLES)

    line = assert_refused(migrate_cli(legacy, target), f"pid {live_pid}", lock.HOST)
    assert "run 1" in line
    assert_refused(migrate_cli(legacy, target, "--resume", "1"))
    assert table_digests(target, ALL_TABLES) == before  # not a row, not even the lock, was touched


def test_a_live_holder_keeps_the_target_however_long_its_heartbeat_is_silent(legacy, make_store, tmp_path,
                                                                            live_pid):
    """On this host the OS says whether the holder lives: a long batch (or a rollback's single
    transaction, whose heartbeats nobody sees until it commits) must not lose the lock."""
    target = f"sqlite:///{tmp_path / 'iops.db'}"
    plant_lock(target, pid=live_pid, age=lock.STALE_AFTER + dt.timedelta(minutes=5))
    before = table_digests(target, ALL_TABLES)
    assert_refused(migrate_cli(legacy, target), f"pid {live_pid}")
    assert table_digests(target, ALL_TABLES) == before


@pytest.mark.parametrize("target_backend", ["sqlite", "postgresql"])
def test_second_migrate_refused_while_a_real_migration_runs(target_backend, make_store, tmp_path):
    # Ten times the usual store: the first migration must outlast three refused commands even
    # on a fast machine (with 60 crimes it once finished first: the test then proves nothing).
    legacy = build_legacy(f"sqlite:///{tmp_path / 'opus-large.db'}", crimes=600)
    straight = make_store(target_backend, "straight")
    assert migrate_cli(legacy, straight).exit_code == 0
    target = make_store(target_backend, "target")

    proc = start_migrate(legacy, target, batch_size=2)  # ~1,000 small transactions: seconds of work
    try:
        progress = Progress(target)
        assert progress.wait_for(proc, 3), proc.communicate()
        progress.close()
        (run,) = runs_of(target)
        line = assert_refused(migrate_cli(legacy, target), f"pid {proc.pid}")
        assert f"run {run['run_id']}" in line
        assert_refused(migrate_cli(legacy, target, "--resume", str(run["run_id"])), f"pid {proc.pid}")
        assert_refused(run_cli("rollback", str(run["run_id"]), "--target", target, "--execute",
                               "--out", str(tmp_path / "rollback")), f"pid {proc.pid}", why="still running")
        assert proc.poll() is None, "the first migration ended before the refusals were tried: the test proved nothing"
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err

    # The refused commands left no trace: one run, the same rows as a run that was alone.
    (run,) = runs_of(target)
    assert run["state"] == "complete"
    assert table_digests(target) == table_digests(straight)
    assert json.loads(run["counts"]) == json.loads(runs_of(straight)[0]["counts"])
    assert lock_rows(target) == []


# ---------------------------------------------------------------------- stale and foreign locks


def test_lock_of_a_process_that_has_exited_is_taken_over(backend, legacy, make_store, dead_pid):
    target = make_store(backend, "target")
    plant_lock(target, pid=dead_pid)  # fresh heartbeat: it is the pid that proves the holder gone
    res = migrate_cli(legacy, target)
    assert res.exit_code == 0, res.output
    assert "run 1 complete" in res.stdout
    assert lock_rows(target) == []
    (run,) = runs_of(target)
    assert run["state"] == "complete"


def test_fresh_lock_from_another_machine_is_respected(backend, legacy, make_store, dead_pid):
    target = make_store(backend, "target")
    # The pid means nothing on another machine (here it is even dead on ours): only the heartbeat counts.
    plant_lock(target, pid=dead_pid, host="batch-server-02.example", age=dt.timedelta(minutes=2))
    before = table_digests(target, ALL_TABLES)
    assert_refused(migrate_cli(legacy, target), "batch-server-02.example")
    assert table_digests(target, ALL_TABLES) == before


def test_silent_lock_from_another_machine_is_taken_over(legacy, make_store, tmp_path, dead_pid):
    target = f"sqlite:///{tmp_path / 'iops.db'}"
    plant_lock(target, pid=dead_pid, host="batch-server-02.example", age=lock.STALE_AFTER + dt.timedelta(minutes=1))
    res = migrate_cli(legacy, target)
    assert res.exit_code == 0, res.output
    assert lock_rows(target) == []
