"""Which store is which: the legacy store is never named as target, and a resume reads its own store.

1. "A store given as legacy is never written, whatever the command: the same database named
   as both legacy and target is refused before anything is created" (cli.md). However the
   two are spelt — relative and absolute paths, ``./`` and ``..``, symlinks and hard links,
   URL options, ``sqlite+pysqlite``; ``localhost``, ``127.0.0.1`` and the machine's name,
   default and explicit ports, ``mysql+pymysql`` and ``mariadb+pymysql`` — migrate (also
   ``--dry-run`` and ``--resume``), simulate and reconcile refuse with one line, and neither
   the legacy store nor any file has changed. Distinct stores (another database on the same
   server, a copy of the file) are not refused.
2. ``--resume`` continues a run only with the legacy store it started on: another store is
   refused and nothing is written; a copy of it, or the same store after officers edited it,
   continues. A target made before ``mig_run.legacy_fingerprint`` existed is still listed,
   migrated into (the column is added), and its old runs are not resumed blind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from core import db, schema
from migrate.engine import migrate
from tests.opus_fixture import make_legacy, table_digests, table_names, update_legacy
from tests.test_user_errors import assert_user_error as assert_refused
from tests.test_user_errors import run_cli


def small_legacy(url: str, rec_date: str = "15/06/2018", crimes: int = 3) -> str:
    return make_legacy(url, crimes=[{"crime_no": f"CR/{i:06d}/18", "rec_date": rec_date} for i in range(1, crimes + 1)],
                       nominals=[{"nom_id": i} for i in range(1, crimes + 1)],
                       links=[{"crime_no": f"CR/{i:06d}/18", "nom_id": i, "role": "V"} for i in range(1, crimes + 1)],
                       intel=[{"intel_no": "IN/000001/18", "subj_nom_id": 1}])


def _commands(legacy: str, target: str, out: Path) -> list[list[str]]:
    stores = ["--legacy", legacy, "--target", target]
    return [["migrate", *stores], ["migrate", *stores, "--dry-run"], ["migrate", *stores, "--resume", "1"],
            ["simulate", *stores, "--truth", str(out / "truth.json")], ["reconcile", *stores, "--out", str(out / "reports")]]


def _files(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


# ------------------------------------------------------------------------ one SQLite file, many spellings

SQLITE_SPELLINGS = {
    # name: (legacy URL, target URL), given the store at <tmp>/stores/opus.db and cwd <tmp>/work
    "absolute": lambda d: (f"sqlite:///{d}/stores/opus.db", f"sqlite:///{d}/stores/opus.db"),
    "relative": lambda d: (f"sqlite:///{d}/stores/opus.db", "sqlite:///../stores/opus.db"),
    "relative-legacy": lambda d: ("sqlite:///../stores/opus.db", f"sqlite:///{d}/stores/opus.db"),
    "dot-dotdot": lambda d: (f"sqlite:///{d}/stores/opus.db", "sqlite:///./../work/../stores/./opus.db"),
    "symlink": lambda d: (f"sqlite:///{d}/stores/opus.db", f"sqlite:///{d}/link-to-opus.db"),
    "hard-link": lambda d: (f"sqlite:///{d}/stores/opus.db", f"sqlite:///{d}/hard-opus.db"),
    "url-option": lambda d: (f"sqlite:///{d}/stores/opus.db", f"sqlite:///{d}/stores/opus.db?timeout=5"),
    "pysqlite-driver": lambda d: (f"sqlite:///{d}/stores/opus.db", f"sqlite+pysqlite:///{d}/stores/opus.db"),
}


@pytest.mark.parametrize("spelling", SQLITE_SPELLINGS)
def test_one_sqlite_file_as_legacy_and_target_is_refused_and_nothing_is_created(tmp_path, monkeypatch, spelling):
    (tmp_path / "stores").mkdir()
    (tmp_path / "work").mkdir()
    small_legacy(f"sqlite:///{tmp_path}/stores/opus.db")
    (tmp_path / "link-to-opus.db").symlink_to(tmp_path / "stores" / "opus.db")
    os.link(tmp_path / "stores" / "opus.db", tmp_path / "hard-opus.db")
    monkeypatch.chdir(tmp_path / "work")
    legacy, target = SQLITE_SPELLINGS[spelling](tmp_path)
    before = _files(tmp_path)
    for command in _commands(legacy, target, tmp_path / "work"):
        assert_refused(run_cli(*command), "same database")
        assert _files(tmp_path) == before, command  # the legacy file as it was; no report, truth or -wal file


def test_distinct_sqlite_files_are_not_refused_and_a_new_target_is_not_created_by_the_check(tmp_path):
    legacy_url = small_legacy(f"sqlite:///{tmp_path}/opus.db")
    shutil.copy2(tmp_path / "opus.db", tmp_path / "copy.db")  # same bytes, another file: another store
    legacy = db.open_legacy(legacy_url)
    try:
        db.refuse_same_store(legacy, f"sqlite:///{tmp_path}/copy.db")
        db.refuse_same_store(legacy, f"sqlite:///{tmp_path}/new-iops.db")
        assert not (tmp_path / "new-iops.db").exists()
    finally:
        legacy.dispose()


# ------------------------------------------------------------------------ one server database, many spellings


def _server_spellings(url: str) -> dict[str, str]:
    """The same database as ``url`` (127.0.0.1, explicit port) written otherwise."""
    u = make_url(url)
    host = socket.gethostname()
    spellings = {
        "localhost-default-port": u.set(host="localhost", port=None),
        "machine-name": u.set(host=host),
        "url-option": u.update_query_dict({"connect_timeout": "5"}),
    }
    if u.get_backend_name() == "mysql":
        spellings["mariadb-dialect"] = u.set(drivername="mariadb+pymysql", host="localhost")
    return {name: s.render_as_string(hide_password=False) for name, s in spellings.items()}


def _legacy_contents(url: str) -> dict[str, str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {name: hashlib.sha256(repr(sorted(map(tuple, conn.execute(sa.select(table))))).encode()).hexdigest()
                    for name, table in schema.legacy_tables(engine).items()}
    finally:
        engine.dispose()


@pytest.mark.parametrize("server", ["postgresql", "mysql"])
def test_one_server_database_as_legacy_and_target_is_refused_however_spelt(tmp_path, make_store, server):
    legacy = small_legacy(make_store(server, "legacy"))
    legacy_tables = table_names(legacy)
    contents = _legacy_contents(legacy)
    spellings = _server_spellings(legacy)
    assert len(spellings) >= 3
    before_files = _files(tmp_path)
    for name, other in spellings.items():
        for legacy_url, target_url in ((legacy, other), (other, legacy)):
            for command in _commands(legacy_url, target_url, tmp_path):
                assert_refused(run_cli(*command), "same database")
        assert table_names(legacy) == legacy_tables, name  # no iOPS or mig_ table created in it
    assert _legacy_contents(legacy) == contents
    assert _files(tmp_path) == before_files


@pytest.mark.parametrize("server", ["postgresql", "mysql"])
def test_another_database_on_the_same_server_is_not_refused(make_store, server):
    legacy_url = small_legacy(make_store(server, "legacy"))
    other = make_url(make_store(server, "target"))
    legacy = db.open_legacy(legacy_url)
    try:
        for spelling in _server_spellings(other.render_as_string(hide_password=False)).values():
            db.refuse_same_store(legacy, spelling)
    finally:
        legacy.dispose()


# ------------------------------------------------------------------------ a resume reads its own store


def _store(make_store, backend: str, label: str, tmp_path: Path, **kwargs) -> str:
    if backend == "sqlite":
        return small_legacy(f"sqlite:///{tmp_path / (label + '.db')}", **kwargs)
    return small_legacy(make_store(backend, label), **kwargs)


def _interrupted_run(legacy: str, target: str) -> int:
    result = migrate(legacy, target, batch_size=10, stop_after_batches=2)
    assert result.state == "interrupted"
    return result.run_id


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mysql"])
def test_resume_with_another_legacy_store_is_refused_and_writes_nothing(tmp_path, make_store, backend):
    # Two OPUS stores with the same key scheme (as two generated or two forces' stores have),
    # recorded on other days.
    legacy = _store(make_store, backend, "legacy", tmp_path, crimes=40)
    other = _store(make_store, backend, "other", tmp_path, crimes=40, rec_date="03/02/2017")
    target = make_store(backend, "target")
    run_id = _interrupted_run(legacy, target)
    kept = tuple(name for name in schema.target_metadata.tables if name != "mig_lock")  # the lock is taken first
    before = table_digests(target, kept)
    line = assert_refused(run_cli("migrate", "--legacy", other, "--target", target, "--resume", str(run_id)),
                          f"run {run_id} read another legacy store")
    assert "CR/" not in line
    assert table_digests(target, kept) == before
    res = run_cli("runs", "--target", target, "--json")
    assert res.exit_code == 0 and '"interrupted"' in res.output


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mysql"])
def test_resume_continues_with_a_copy_of_its_store(tmp_path, make_store, backend):
    legacy = _store(make_store, backend, "legacy", tmp_path, crimes=40)
    if backend == "sqlite":  # a rehearsal's copy of the file
        copy = f"sqlite:///{tmp_path / 'copy.db'}"
        shutil.copy2(make_url(legacy).database, make_url(copy).database)
    else:  # the same store loaded into another database
        copy = _store(make_store, backend, "copy", tmp_path, crimes=40)
    target = make_store(backend, "target")
    run_id = _interrupted_run(legacy, target)
    res = run_cli("migrate", "--legacy", copy, "--target", target, "--resume", str(run_id))
    assert res.exit_code == 0, res.output
    assert _run_state(target, run_id) == "complete"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mysql"])
def test_resume_continues_with_its_store_after_officers_edited_it(tmp_path, make_store, backend):
    # OPUS lives on between runs (cutover.md): edits and deleted flags are not another store.
    legacy = _store(make_store, backend, "legacy", tmp_path, crimes=40)
    target = make_store(backend, "target")
    run_id = _interrupted_run(legacy, target)
    update_legacy(legacy, "crime", {"crime_no": "CR/000002/18"}, mo_text="EDITED SINCE", del_flag="Y",
                  last_upd="20190101120000")
    update_legacy(legacy, "nominal", {"nom_id": 3}, surname="JONES", dob="02/03/1981")
    res = run_cli("migrate", "--legacy", legacy, "--target", target, "--resume", str(run_id))
    assert res.exit_code == 0, res.output
    assert _run_state(target, run_id) == "complete"


def _run_state(target: str, run_id: int) -> str:
    engine = sa.create_engine(target)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(schema.mig_run.c.state).where(schema.mig_run.c.run_id == run_id)).scalar_one()
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mysql"])
def test_a_target_from_before_the_fingerprint_is_listed_migrated_and_not_resumed_blind(tmp_path, make_store, backend):
    legacy = _store(make_store, backend, "legacy", tmp_path, crimes=40)
    target = make_store(backend, "target")
    run_id = _interrupted_run(legacy, target)
    engine = sa.create_engine(target)
    with engine.begin() as conn:  # what an older version made: mig_run without the column
        conn.execute(sa.text("ALTER TABLE mig_run DROP COLUMN legacy_fingerprint"))

    listed = run_cli("runs", "--target", target, "--json")
    assert listed.exit_code == 0 and f'"id": {run_id}' in listed.output, listed.output
    assert_refused(run_cli("migrate", "--legacy", legacy, "--target", target, "--resume", str(run_id)),
                   "older opus2iops")
    res = run_cli("migrate", "--legacy", legacy, "--target", target)
    assert res.exit_code == 0, res.output
    with engine.connect() as conn:
        stored = dict(conn.execute(sa.text("SELECT run_id, legacy_fingerprint FROM mig_run")).all())
    engine.dispose()
    assert stored[run_id] is None and len(stored) == 2
    assert all(len(v) == 64 for k, v in stored.items() if k != run_id)
    listed = json.loads(run_cli("runs", "--target", target, "--json").output)
    assert {r["id"]: r["legacy_fingerprint"] for r in listed} == stored  # what each run read, for an auditor
