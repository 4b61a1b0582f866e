"""Weak spots of the command line (issue 16): each a real store or a real process, no mocks.

* ``--max-rejects`` exceeded says so on stderr: how many, the limit, where the rejects are.
* A legacy store missing a table's column fails before anything is written, with one line
  naming TABLE.COLUMN — for migrate, its dry run, reconcile and simulate, on every engine.
* A WAL-mode legacy SQLite store in a read-only folder (a read-only mount: root ignores
  chmod) is read; one with an unfinished write-ahead log there is refused in one line.
* ``--workers`` is bounded.
* ``--help`` of every command: flags show no type, every option is explained, nothing cut.
* A reconciliation killed with SIGKILL leaves a spool folder that the next run removes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from core import schema
from core.db import resolve_tables
from main import MAX_WORKERS, app
from reconcile.spool import DiscrepancySpool, remove_stale_spools
from tests.opus_fixture import make_legacy
from tests.test_crash_safety import ROOT, build_legacy

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def one_error_line(res, code: int = 2) -> str:
    assert res.exit_code == code, (res.exit_code, res.output)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.output, res.output
    return lines[0]


# ------------------------------------------------------------------ --max-rejects


def test_max_rejects_exceeded_says_why(tmp_path):
    legacy = build_legacy(f"sqlite:///{tmp_path / 'opus.db'}", crimes=60)
    target = f"sqlite:///{tmp_path / 'iops.db'}"
    res = invoke("migrate", "--legacy", legacy, "--target", target, "--quiet", "--max-rejects", "3")
    line = one_error_line(res, 1)
    (run,) = json.loads(invoke("runs", "--target", target, "--json").stdout)
    rejected = sum(c["rejected"] for c in run["counts"].values())
    assert rejected > 3
    assert line == (f"error: {rejected:,} records rejected, more than --max-rejects 3: "
                    f"see the target's mig_reject table, run_id = {run['id']}")

    dry = invoke("migrate", "--legacy", legacy, "--target", f"sqlite:///{tmp_path / 'dry.db'}", "--quiet",
                 "--dry-run", "--max-rejects", "3")
    assert one_error_line(dry, 1) == (f"error: {rejected:,} records rejected, more than --max-rejects 3: see "
                                      "this dry run's summary above (a dry run writes no mig_reject)")
    # At the limit: no finding, nothing on stderr.
    ok = invoke("migrate", "--legacy", legacy, "--target", target, "--quiet", "--dry-run",
                "--max-rejects", str(rejected))
    assert ok.exit_code == 0 and ok.stderr == "", ok.output


# ------------------------------------------------------------------ a legacy column missing

ALL_COLUMNS = [(t.name, c.name) for t in schema.legacy_metadata.tables.values() for c in t.columns]
#: One column a table, the first its reader would not reach until late (a key where that is all).
ONE_PER_TABLE = [("offence_code", "active"), ("division", "div_name"), ("crime", "last_upd"),
                 ("nominal", "eth_code"), ("crime_nom", "role"), ("intel", "int_text")]


def drop_column(url: str, table: str, column: str) -> None:
    """Rebuild ``table`` without ``column`` (the same statements on every engine, key columns too)."""
    engine = sa.create_engine(url)
    real = resolve_tables(engine, schema.legacy_metadata)[table]
    q = engine.dialect.identifier_preparer.quote
    keep = ", ".join(q(c.name) for c in real.columns if c.name != column)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE {q('rebuilt')} AS SELECT {keep} FROM {q(real.name)}")
        conn.exec_driver_sql(f"DROP TABLE {q(real.name)}")
        conn.exec_driver_sql(f"ALTER TABLE {q('rebuilt')} RENAME TO {q(real.name)}")
    engine.dispose()


@pytest.fixture(scope="module")
def small_legacy(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("legacy") / "opus.db"
    build_legacy(f"sqlite:///{path}", crimes=30, padded_duplicates=False)
    return path


def command_args(command: str, legacy: str, tmp_path: Path) -> list[str]:
    target = f"sqlite:///{tmp_path / 'iops.db'}"
    if command == "reconcile":  # it compares with an existing store: an empty iOPS one
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'iops-empty.db'}")
        schema.create_target_schema(engine)
        engine.dispose()
        target = f"sqlite:///{tmp_path / 'iops-empty.db'}"
    return {
        "migrate": ["migrate", "--legacy", legacy, "--target", target, "--quiet"],
        "dry-run": ["migrate", "--legacy", legacy, "--target", target, "--quiet", "--dry-run"],
        "reconcile": ["reconcile", "--legacy", legacy, "--target", target, "--out", str(tmp_path / "rec"),
                      "--quiet"],
        "simulate": ["simulate", "--legacy", legacy, "--target", target, "--quiet"],
    }[command]


def assert_refused_up_front(res, table: str, column: str, target: str) -> None:
    line = one_error_line(res)
    assert line.startswith(f"error: the legacy store has no column {table.upper()}.{column.upper()}:"), line
    engine = sa.create_engine(target)
    try:
        assert sa.inspect(engine).get_table_names() == []  # nothing written, not even the schema
    finally:
        engine.dispose()


@pytest.mark.parametrize("table,column", ALL_COLUMNS, ids=[f"{t}.{c}" for t, c in ALL_COLUMNS])
def test_migrate_refuses_a_legacy_store_missing_any_column(small_legacy, tmp_path, table, column):
    legacy = tmp_path / "opus.db"
    shutil.copy(small_legacy, legacy)
    drop_column(f"sqlite:///{legacy}", table, column)
    res = invoke(*command_args("migrate", f"sqlite:///{legacy}", tmp_path))
    assert_refused_up_front(res, table, column, f"sqlite:///{tmp_path / 'iops.db'}")


@pytest.mark.parametrize("command", ["dry-run", "reconcile", "simulate"])
@pytest.mark.parametrize("table,column", ONE_PER_TABLE, ids=[t for t, _ in ONE_PER_TABLE])
def test_every_reader_refuses_a_legacy_store_missing_a_column(small_legacy, tmp_path, command, table, column):
    legacy = tmp_path / "opus.db"
    shutil.copy(small_legacy, legacy)
    drop_column(f"sqlite:///{legacy}", table, column)
    res = invoke(*command_args(command, f"sqlite:///{legacy}", tmp_path))
    assert_refused_up_front(res, table, column, f"sqlite:///{tmp_path / 'iops.db'}")
    assert not (tmp_path / "rec").exists() or not any((tmp_path / "rec").iterdir())


@pytest.mark.parametrize("server", ["postgresql", "mysql"])
def test_server_legacy_store_missing_a_column_is_refused_up_front(make_store, tmp_path, server):
    for table, column in ONE_PER_TABLE:
        legacy = make_legacy(make_store(server, f"opus_{table}"), crimes=[{"crime_no": "CR/000001/18"}],
                             nominals=[{"nom_id": 1, "surname": "SMITH"}],
                             links=[{"crime_no": "CR/000001/18", "nom_id": 1, "role": "V"}],
                             intel=[{"intel_no": "IN/000001/18"}])
        drop_column(legacy, table, column)
        target = tmp_path / f"iops-{table}.db"
        res = invoke("migrate", "--legacy", legacy, "--target", f"sqlite:///{target}", "--quiet")
        assert_refused_up_front(res, table, column, f"sqlite:///{target}")


# ------------------------------------------------------------------ WAL store in a read-only folder


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder on its own tmpfs, to be remounted read-only: root ignores chmod 0555, a
    read-only file system stops root too."""
    folder = tmp_path / "media"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(folder)], check=True)

    def make_read_only() -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)

    yield folder, make_read_only
    subprocess.run(["umount", str(folder)], check=False)


def wal_legacy(path: Path) -> str:
    url = build_legacy(f"sqlite:///{path}", crimes=40)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode=WAL").scalar_one() == "wal"
    engine.dispose()
    assert path.read_bytes()[18] == 2 and not Path(f"{path}-wal").exists()
    return url


def test_wal_legacy_store_in_a_read_only_folder_is_read(read_only_folder, tmp_path):
    folder, make_read_only = read_only_folder
    legacy = wal_legacy(folder / "opus.db")
    make_read_only()
    with pytest.raises(OSError):
        (folder / "probe").touch()
    target = f"sqlite:///{tmp_path / 'iops.db'}"
    res = invoke("migrate", "--legacy", legacy, "--target", target, "--quiet")
    assert res.exit_code == 0, res.output
    assert "run 1 complete" in res.stdout
    rec = invoke("reconcile", "--legacy", legacy, "--target", target, "--out", str(tmp_path / "rec"), "--quiet",
                 "--workers", "2")
    assert rec.exit_code == 0, rec.output
    assert sorted(os.listdir(folder)) == ["opus.db"]


def test_wal_legacy_store_with_an_unfinished_log_in_a_read_only_folder_is_refused(read_only_folder, tmp_path):
    folder, make_read_only = read_only_folder
    path = folder / "opus.db"
    legacy = wal_legacy(path)
    # A writer that died with its last transaction still in the log (no checkpoint).
    code = ("import os, sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('PRAGMA wal_autocheckpoint=0');"
            "c.execute(\"UPDATE CRIME SET OIC = 'X1' WHERE CRIME_NO = 'CR/000001/18'\"); c.commit(); os._exit(0)")
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)
    Path(f"{path}-shm").unlink()
    assert Path(f"{path}-wal").stat().st_size > 0
    make_read_only()
    res = invoke("migrate", "--legacy", legacy, "--target", f"sqlite:///{tmp_path / 'iops.db'}", "--quiet")
    line = one_error_line(res)
    assert "read-only folder with an unfinished write-ahead log (opus.db-wal)" in line, line


# ------------------------------------------------------------------ --workers


@pytest.mark.parametrize("workers", ["0", str(MAX_WORKERS + 1), "1000"])
def test_workers_out_of_bounds_is_a_usage_error(small_legacy, tmp_path, workers):
    res = invoke("reconcile", "--legacy", f"sqlite:///{small_legacy}", "--target", f"sqlite:///{tmp_path / 'i.db'}",
                 "--out", str(tmp_path / "rec"), "--workers", workers)
    assert res.exit_code == 2, res.output
    bound = f"less than or equal to {MAX_WORKERS}" if int(workers) > MAX_WORKERS else "greater than or equal to 1"
    assert f"Invalid value for '--workers': Input should be {bound}" in words(res.output), res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "rec").exists()


# ------------------------------------------------------------------ --help

COMMANDS = [[]] + [[name] for name in ("generate", "migrate", "simulate", "reconcile", "runs", "rollback", "demo")]


def help_text(args: list[str], columns: int | None) -> str:
    env = {**os.environ, "COLUMNS": str(columns)} if columns else {k: v for k, v in os.environ.items()
                                                                    if k != "COLUMNS"}
    out = subprocess.run([sys.executable, "main.py", *args, "--help"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60)  # a pipe, as `| less` would be
    assert out.returncode == 0 and out.stderr == "", out
    return out.stdout


def words(text: str) -> str:
    """The help as running text: box drawing and line breaks gone."""
    return " ".join(text.replace("│", " ").split())


@pytest.mark.parametrize("columns", [80, None])
@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0] if a else "main")
def test_help_reads_right(args, columns):
    text = help_text(args, columns)
    assert "<bool>" not in text and "<str>" not in text and "<float>" not in text and "<path>" not in text, text
    assert "…" not in text, text  # nothing cut short by a narrow column
    command = app.registered_commands and next((c for c in app.registered_commands
                                                if args and c.callback.__name__ == args[0]), None)
    if command is not None:
        import inspect

        for param in inspect.signature(command.callback).parameters.values():
            info = param.default
            assert getattr(info, "help", None), f"{args[0]} {param.name} has no help"
    if args == ["generate"]:
        assert "only ever read" not in words(text) and "to create and fill" in words(text)
    if args in (["migrate"], ["reconcile"], ["simulate"]):
        assert "OPUS store, only ever read" in words(text)  # --legacy


def test_rollback_usage_names_the_run_id():
    assert "RUN_ID" in help_text(["rollback"], 80)


# ------------------------------------------------------------------ temp files after kill -9


def spool_folders(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.glob("o2i-spool-*"))


def test_spool_of_a_killed_reconciliation_is_removed_by_the_next(tmp_path):
    legacy = build_legacy(f"sqlite:///{tmp_path / 'opus.db'}", crimes=3000, padded_duplicates=False)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'iops.db'}")
    schema.create_target_schema(engine)  # an empty iOPS store: every record MISSING
    engine.dispose()
    target = f"sqlite:///{tmp_path / 'iops.db'}"
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp)}
    args = [sys.executable, "main.py", "reconcile", "--legacy", legacy, "--target", target,
            "--out", str(tmp_path / "rec"), "--quiet", "--workers", "1"]
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not spool_folders(tmp):
        assert proc.poll() is None and time.monotonic() < deadline, "the reconciliation never made its spool"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    left = spool_folders(tmp)
    assert left == [f for f in left if f.startswith(f"o2i-spool-{proc.pid}-")] and left

    second = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 1, second  # differences: every record is missing
    assert spool_folders(tmp) == []


def test_a_live_process_spool_is_kept(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f"o2i-spool-{sleeper.pid}-abc"
        live.mkdir()
        mine = DiscrepancySpool(directory=tmp_path)
        assert live.exists()
        sleeper.kill()
        sleeper.wait()
        assert remove_stale_spools(tmp_path) == [live] and not live.exists()
        own = spool_folders(tmp_path)  # this process's own spool stays
        assert len(own) == 1 and own[0].startswith(f"o2i-spool-{os.getpid()}-")
        mine.discard()
    finally:
        sleeper.kill()
