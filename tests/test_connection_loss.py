"""Connection loss mid-run: the CLI exits 2 with one line (no traceback, no password), and
``--resume RUN_ID`` then completes to exactly what an uninterrupted run writes.

The connections are cut by the database server itself, as a DBA or a failover would:
``pg_terminate_backend`` on the PostgreSQL target, ``KILL`` on the MariaDB legacy store. The
cut is repeated until the migration gives up, so it lands wherever the run happens to be
(inside a batch transaction, while streaming the legacy store, between batches, writing the
final state) rather than only where a single well-timed cut would.
"""

from __future__ import annotations

import time

from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from main import app
from migrate.engine import migrate
from tests.test_crash_safety import CliProcess, Progress, assert_consistent, bookkeeping, build_legacy, runs_of, start_migrate
from tests.opus_fixture import connection_killer
from tests.test_migrate import table_digests

PASSWORD = "pw-never-shown-7"  # PostgreSQL here trusts local users, so any password connects


def with_password(url: str) -> str:
    return make_url(url).set(password=PASSWORD).render_as_string(hide_password=False)


def reference_of(legacy: str, straight: str) -> dict:
    result = migrate(legacy, straight, batch_size=50)
    assert result.state == "complete"
    (run,) = runs_of(straight)
    import json

    return {"counts": json.loads(run["counts"]), "digests": table_digests(straight), "book": bookkeeping(straight)}


def cut_until_exit(proc: CliProcess, cut, timeout: float = 60) -> int:
    """Call ``cut()`` every few milliseconds until ``proc`` exits; return how many connections it cut."""
    deadline = time.monotonic() + timeout
    cuts = 0
    while proc.poll() is None:
        assert time.monotonic() < deadline, "the migration neither failed nor finished"
        cuts += cut()
        time.sleep(0.01)
    return cuts


def assert_one_line_store_error(proc: CliProcess, role: str) -> str:
    out, err = proc.communicate()
    assert proc.returncode == 2, (proc.returncode, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith(f"error: {role} store "), line
    assert "Traceback" not in err and PASSWORD not in err + out
    return line


def resume_to_completion(legacy: str, target: str, reference: dict) -> None:
    (run,) = runs_of(target)
    assert run["state"] in ("interrupted", "running")  # "running" if the state could not be written any more
    res = CliRunner().invoke(app, ["migrate", "--legacy", legacy, "--target", target, "--batch-size", "50",
                                   "--quiet", "--resume", str(run["run_id"])])
    assert res.exit_code == 0, res.output
    assert f"run {run['run_id']} resumed and complete" in res.stdout
    assert_consistent(target, reference)


def test_postgresql_target_terminated_mid_run(make_store, tmp_path):
    legacy = build_legacy(f"sqlite:///{tmp_path / 'opus.db'}")
    reference = reference_of(legacy, make_store("postgresql", "straight"))
    target = with_password(make_store("postgresql", "target"))
    database = make_url(target).database

    proc = start_migrate(legacy, target, batch_size=5)
    progress = Progress(target)
    try:
        assert progress.wait_for(proc, 2), proc.communicate()
    finally:
        progress.close()

    with connection_killer("postgresql") as kill:
        assert cut_until_exit(proc, lambda: kill(database)) >= 1
    line = assert_one_line_store_error(proc, "target")
    assert "postgres:***@" in line  # which store, with the password masked
    assert 0 < Progress(target).batches()  # it had really started
    resume_to_completion(legacy, target, reference)


def test_mariadb_legacy_killed_mid_run(make_store):
    legacy = build_legacy(make_store("mysql", "legacy"), padded_duplicates=False)
    reference = reference_of(legacy, make_store("postgresql", "straight"))
    target = with_password(make_store("postgresql", "target"))
    legacy_db = make_url(legacy).database

    proc = start_migrate(legacy, target, batch_size=5)
    progress = Progress(target)
    try:
        assert progress.wait_for(proc, 2), proc.communicate()
    finally:
        progress.close()

    with connection_killer("mysql") as kill:
        assert cut_until_exit(proc, lambda: kill(legacy_db)) >= 1
    line = assert_one_line_store_error(proc, "legacy")
    assert "mysql+pymysql://root@" in line
    resume_to_completion(legacy, target, reference)
