"""Errors a user can act on: one line on stderr saying what to fix, exit 2, no traceback, no password.

Every case goes through the real CLI (``main.app`` with Typer's runner), so the whole path —
library error → ``main._run`` → exit code — is what is tested.
"""

from __future__ import annotations

import importlib.util
import os

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from core import schema
from main import app
from tests.opus_fixture import make_legacy
from tests.test_migrate import table_digests

PASSWORD = "s3cr3t-pw"
UNREACHABLE = f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:1/x"
ALL_TABLES = tuple(schema.target_metadata.tables)


def run_cli(*args: str):
    return CliRunner().invoke(app, list(args))


def assert_user_error(res, *fragments: str) -> str:
    """Exit 2, exactly one line on stderr naming the problem, nothing else, no secret."""
    assert not isinstance(res.exception, Exception) or isinstance(res.exception, SystemExit), (
        f"uncaught {type(res.exception).__name__}: {res.exception}")
    assert res.exit_code == 2, (res.exit_code, res.output)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    line = lines[0]
    assert line.startswith("error: "), line
    assert "Traceback" not in res.output and "sqlalchemy" not in line.lower() and "File \"" not in res.output
    assert PASSWORD not in res.output
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    return line


@pytest.fixture
def legacy(tmp_path):
    return make_legacy(f"sqlite:///{tmp_path / 'opus.db'}",
                       crimes=[{"crime_no": f"CR/{i:06d}/18"} for i in range(1, 6)],
                       nominals=[{"nom_id": 1}],
                       links=[{"crime_no": "CR/000001/18", "nom_id": 1, "role": "V"}],
                       intel=[{"intel_no": "IN/000001/18", "subj_nom_id": 1}])


@pytest.fixture
def target(tmp_path):
    return f"sqlite:///{tmp_path / 'iops.db'}"


@pytest.fixture
def random_bytes_file(tmp_path):
    path = tmp_path / "garbage.db"
    path.write_bytes(os.urandom(8192))
    return path


@pytest.fixture
def unrelated_sqlite(tmp_path):
    path = tmp_path / "payroll.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE employee (id INTEGER PRIMARY KEY, name TEXT)")
        conn.exec_driver_sql("INSERT INTO employee VALUES (1, 'A. N. OTHER')")
    engine.dispose()
    return path


# ------------------------------------------------------------------------------ migrate: URLs


@pytest.mark.parametrize("role", ["legacy", "target"])
def test_nonsense_url(role, legacy, target):
    args = {"legacy": legacy, "target": target, role: "nonsense"}
    res = run_cli("migrate", "--legacy", args["legacy"], "--target", args["target"])
    assert_user_error(res, "not a database URL", "'nonsense'")


@pytest.mark.parametrize("role", ["legacy", "target"])
def test_in_memory_sqlite_is_refused(role, legacy, target):
    args = {"legacy": legacy, "target": target, role: "sqlite://"}
    res = run_cli("migrate", "--legacy", args["legacy"], "--target", args["target"])
    assert_user_error(res, "SQLite file", "in-memory")


def test_unsupported_database(legacy):
    res = run_cli("migrate", "--legacy", legacy, "--target", f"oracle://scott:{PASSWORD}@db.example/orcl")
    assert_user_error(res, "unsupported database 'oracle'")


@pytest.mark.parametrize("role", ["legacy", "target"])
def test_unreachable_server(role, legacy, target):
    args = {"legacy": legacy, "target": target, role: UNREACHABLE}
    res = run_cli("migrate", "--legacy", args["legacy"], "--target", args["target"])
    line = assert_user_error(res, f"{role} store", "127.0.0.1:1", "refused")
    assert "postgres:***@" in line  # the URL is shown, masked


def test_database_that_does_not_exist_on_the_server(legacy, make_store):
    make_store("postgresql", "probe")  # the server must be up: this is about the database name
    url = f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:5432/o2i_no_such_database"
    res = run_cli("migrate", "--legacy", legacy, "--target", url)
    assert_user_error(res, "target store", "o2i_no_such_database", "does not exist")


@pytest.mark.parametrize("url, module, package, instead", [
    (f"postgresql+asyncpg://postgres:{PASSWORD}@127.0.0.1/x", "asyncpg", "asyncpg", "postgresql+psycopg://"),
    (f"mysql+mysqldb://root:{PASSWORD}@127.0.0.1/x", "MySQLdb", "mysqlclient", "mysql+pymysql://"),
    # SQLAlchemy's default PostgreSQL driver
    (f"postgresql://postgres:{PASSWORD}@127.0.0.1/x", "psycopg2", "psycopg2-binary", "postgresql+psycopg://"),
])
def test_missing_driver(url, module, package, instead, legacy, target):
    assert importlib.util.find_spec(module) is None, f"{module} is installed: pick a driver that is not"
    res = run_cli("migrate", "--legacy", url, "--target", target)
    assert_user_error(res, "driver", module, "not installed", f"pip install {package}", instead)
    res = run_cli("migrate", "--legacy", legacy, "--target", url)
    assert_user_error(res, "driver", module, "not installed", f"pip install {package}", instead)


# ------------------------------------------------------------------------------ migrate: stores


def test_legacy_file_that_does_not_exist(tmp_path, target):
    res = run_cli("migrate", "--legacy", f"sqlite:///{tmp_path / 'nope.db'}", "--target", target)
    assert_user_error(res, "legacy store not found", "nope.db")
    assert not (tmp_path / "nope.db").exists()  # not created by trying to read it


def test_target_folder_that_does_not_exist(legacy, tmp_path):
    res = run_cli("migrate", "--legacy", legacy, "--target", f"sqlite:///{tmp_path / 'missing' / 'iops.db'}")
    assert_user_error(res, "folder", "does not exist")


def test_legacy_store_that_is_not_an_opus_store(unrelated_sqlite, target):
    res = run_cli("migrate", "--legacy", f"sqlite:///{unrelated_sqlite}", "--target", target)
    assert_user_error(res, "is this an OPUS store?", "CRIME")


def test_legacy_file_that_is_not_a_database(random_bytes_file, target):
    res = run_cli("migrate", "--legacy", f"sqlite:///{random_bytes_file}", "--target", target)
    assert_user_error(res, "legacy store", "garbage.db", "not a database")


def test_target_file_that_is_not_a_database(legacy, random_bytes_file):
    before = random_bytes_file.read_bytes()
    res = run_cli("migrate", "--legacy", legacy, "--target", f"sqlite:///{random_bytes_file}")
    assert_user_error(res, "target store", "garbage.db", "not a database")
    assert random_bytes_file.read_bytes() == before


def test_target_with_a_foreign_schema(backend, legacy, make_store):
    """A table named like ours but holding something else: refused before anything is created."""
    target = make_store(backend, "foreign")
    engine = sa.create_engine(target)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE crime (id INTEGER PRIMARY KEY, name VARCHAR(40))")
        conn.exec_driver_sql("INSERT INTO crime VALUES (1, 'not ours')")
    engine.dispose()
    res = run_cli("migrate", "--legacy", legacy, "--target", target)
    assert_user_error(res, "'crime'", "lacks column", "not an iOPS store")
    engine = sa.create_engine(target)
    try:
        assert sa.inspect(engine).get_table_names() == ["crime"]  # no mig_ or iOPS tables made
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT id, name FROM crime").all() == [(1, "not ours")]
    finally:
        engine.dispose()


def test_unknown_run_id_writes_nothing(legacy, target):
    res = run_cli("migrate", "--legacy", legacy, "--target", target, "--quiet")
    assert res.exit_code == 0, res.output
    before = table_digests(target, ALL_TABLES)
    res = run_cli("migrate", "--legacy", legacy, "--target", target, "--resume", "999")
    assert_user_error(res, "no run 999")
    assert table_digests(target, ALL_TABLES) == before


def test_unknown_run_id_on_an_empty_target(legacy, target):
    res = run_cli("migrate", "--legacy", legacy, "--target", target, "--resume", "999")
    assert_user_error(res, "no run 999")


def test_dry_run_cannot_resume(legacy, target):
    res = run_cli("migrate", "--legacy", legacy, "--target", target, "--dry-run", "--resume", "1")
    assert_user_error(res, "--dry-run", "--resume")


# ------------------------------------------------------------------------------ runs, rollback, reconcile


def test_runs_errors(random_bytes_file):
    assert_user_error(run_cli("runs", "--target", UNREACHABLE), "target store", "refused")
    assert_user_error(run_cli("runs", "--target", "nonsense"), "not a database URL")
    assert_user_error(run_cli("runs", "--target", f"sqlite:///{random_bytes_file}"), "not a database")


def test_rollback_errors(legacy, target, tmp_path):
    out = str(tmp_path / "rollback")
    assert_user_error(run_cli("rollback", "1", "--target", UNREACHABLE, "--out", out), "target store", "refused")
    res = run_cli("migrate", "--legacy", legacy, "--target", target, "--quiet")
    assert res.exit_code == 0, res.output
    before = table_digests(target, ALL_TABLES)
    assert_user_error(run_cli("rollback", "999", "--target", target, "--out", out), "no run 999")
    assert_user_error(run_cli("rollback", "999", "--target", target, "--execute", "--out", out), "no run 999")
    assert table_digests(target, ALL_TABLES) == before


def test_reconcile_errors(legacy, target, tmp_path, random_bytes_file, unrelated_sqlite):
    res = run_cli("migrate", "--legacy", legacy, "--target", target, "--quiet")
    assert res.exit_code == 0, res.output
    a_file = tmp_path / "a-file.txt"
    a_file.write_text("not a folder")
    # Unwritable --out: under a regular file (root may write anywhere else, so chmod proves nothing).
    assert_user_error(run_cli("reconcile", "--legacy", legacy, "--target", target, "--out", str(a_file / "reports")),
                      str(a_file / "reports"))
    assert_user_error(run_cli("reconcile", "--legacy", legacy, "--target", target, "--out", str(a_file)),
                      str(a_file), "not a folder")
    assert a_file.read_text() == "not a folder"
    out = str(tmp_path / "rec")
    assert_user_error(run_cli("reconcile", "--legacy", legacy, "--target", UNREACHABLE, "--out", out),
                      "target store", "refused")
    assert_user_error(run_cli("reconcile", "--legacy", f"sqlite:///{random_bytes_file}", "--target", target,
                              "--out", out), "legacy store", "not a database")
    assert_user_error(run_cli("reconcile", "--legacy", f"sqlite:///{unrelated_sqlite}", "--target", target,
                              "--out", out), "is this an OPUS store?")
    assert_user_error(run_cli("reconcile", "--legacy", legacy, "--target", f"sqlite:///{unrelated_sqlite}",
                              "--out", out), "is this an iOPS store?")
