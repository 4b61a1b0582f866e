"""The run history: states as they really are, counts, masked stores, JSON for scripts."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from core import schema
from main import app
from migrate.engine import migrate
from migrate.lock import HOST
from migrate.rollback import rollback
from migrate.runs import list_runs
from reports.text_runs import render_runs, runs_json
from tests.test_rollback import change_legacy, execute_sql, opus_store, target_backend  # noqa: F401 (fixture)


@pytest.fixture
def legacy(tmp_path) -> str:
    return opus_store(f"sqlite:///{tmp_path / 'opus.db'}")


def test_runs_report_states_counts_and_who(target_backend, make_store, legacy, tmp_path):
    target = make_store(target_backend, "target")
    first = migrate(legacy, target, batch_size=3)
    change_legacy(legacy)
    second = migrate(legacy, target, batch_size=3)
    interrupted = migrate(legacy, target, batch_size=1, stop_after_batches=1)  # nothing left to write but reads
    with rollback(target, second.run_id, execute=True) as undone:
        assert undone.mode == "executed"

    runs = list_runs(target)
    assert [r.id for r in runs] == [first.run_id, second.run_id, interrupted.run_id]
    assert [r.state for r in runs] == ["complete", "rolled_back", "interrupted"]
    one, two, three = runs
    assert one.counts["crime"]["written"] == 8 and one.counts["person"]["read"] == 6
    assert two.counts["person"]["updated"] == 2 and two.rolled_back_at is not None
    assert one.finished_at >= one.started_at and three.finished_at is None
    assert one.host == HOST and one.tool_version and one.batch_size == 3
    assert one.legacy_store.startswith("sqlite:///") and one.total("read") == 8 + 6 + 4 + 3

    text = render_runs(runs)
    assert "rolled_back" in text and "interrupted" in text and f"migrate --resume {three.id}" in text


def test_a_running_state_without_a_live_holder_is_interrupted(make_store, legacy):
    target = make_store("sqlite", "target")
    run = migrate(legacy, target, batch_size=3)
    # A killed process never recorded its end: mig_run still says running, nobody holds the lock.
    execute_sql(target, schema.mig_run.update().values(state="running", finished_at=None))
    (info,) = list_runs(target)
    assert info.state == "interrupted" and info.recorded_state == "running"

    # While a live process holds the target for the run, it is running.
    now = dt.datetime.now(dt.timezone.utc)
    execute_sql(target, schema.mig_lock.insert().values(lock_id=1, run_id=run.run_id, purpose="migrate", host=HOST,
                                                        pid=os.getppid(), acquired_at=now, heartbeat_at=now))
    (info,) = list_runs(target)
    assert info.state == "running"

    # A holder on this host whose process is gone does not count.
    execute_sql(target, schema.mig_lock.update().values(pid=_dead_pid()))
    (info,) = list_runs(target)
    assert info.state == "interrupted"


def _dead_pid() -> int:
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid += 1


def test_a_target_without_runs_gives_an_empty_list_and_a_note(backend, make_store, tmp_path):
    missing = f"sqlite:///{tmp_path / 'nothing-here.db'}"
    runs = list_runs(missing)
    assert runs == [] and "no target store" in runs.note
    assert not (tmp_path / "nothing-here.db").exists()  # looking never creates a store

    target = make_store(backend, "target")
    engine = sa.create_engine(target)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE unrelated (x INTEGER)"))
    engine.dispose()
    runs = list_runs(target)
    assert runs == [] and "no mig_run table" in runs.note
    assert render_runs(runs) == runs.note and runs_json(runs) == "[]"


def test_runs_command_line_json_and_text(target_backend, make_store, legacy):
    target = make_store(target_backend, "target")
    migrate(legacy, target, batch_size=3)
    runner = CliRunner()
    res = runner.invoke(app, ["runs", "--target", target, "--json"])
    assert res.exit_code == 0, res.output
    (item,) = json.loads(res.stdout)
    assert {"id", "state", "started_at", "finished_at", "counts"} <= set(item)
    assert item["id"] == 1 and item["state"] == "complete"
    for key in ("started_at", "finished_at"):
        parsed = dt.datetime.fromisoformat(item[key].replace("Z", "+00:00"))
        assert parsed.utcoffset() == dt.timedelta(0)
    assert item["counts"]["crime"]["written"] == 8
    assert "password" not in res.stdout

    res = runner.invoke(app, ["runs", "--target", target])
    assert res.exit_code == 0 and "complete" in res.output and "started (UTC)" in res.output


def test_runs_command_line_on_an_empty_folder(tmp_path):
    res = CliRunner().invoke(app, ["runs", "--target", f"sqlite:///{tmp_path / 'none.db'}"])
    assert res.exit_code == 0 and "no target store" in res.output
    res = CliRunner().invoke(app, ["runs", "--target", "notaurl"])
    assert res.exit_code == 2 and "Traceback" not in res.output


def test_stored_legacy_urls_are_shown_masked(make_store, legacy):
    target = make_store("sqlite", "target")
    migrate(legacy, target, batch_size=3)
    # A URL stored by an older tool version, unmasked: never printed as it is.
    execute_sql(target, schema.mig_run.update().values(legacy_url="postgresql+psycopg://opus:s3cret@db/opus"))
    (info,) = list_runs(target)
    assert "s3cret" not in info.legacy_store and "s3cret" not in render_runs([info])
    assert "s3cret" not in runs_json([info])
    assert Path(target.removeprefix("sqlite:///")).exists()
