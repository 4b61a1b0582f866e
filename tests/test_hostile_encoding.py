"""Hostile stores: legacy values whose stored bytes are not UTF-8 text.

One such byte used to stop every command on the first row that held it ("Could not decode to
UTF-8 column 'INT_TEXT' with text '…'": the intelligence text on the console), and every
--resume met the same row again. Such a record is a reject like any other (INVALID_ENCODING,
the column named, the value escaped, intelligence text never shown) and the run goes on:

* SQLite: undecodable text in every column of every legacy table (keys too), and BLOBs — valid
  UTF-8 (migrated as text) or not (rejected);
* PostgreSQL: a SQL_ASCII database holds any byte (a UTF8 one refuses it on input);
* MariaDB: a VARBINARY column hands back bytes (utf8mb4 refuses 0xFF on input, see
  ``test_mariadb_utf8mb4_cannot_hold_undecodable_text``; latin1 decodes any byte).
"""

from __future__ import annotations

import csv
import json
import sqlite3
import zipfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from core import db, schema
from main import app
from migrate.engine import migrate
from opus_fixture import make_legacy, table_digests

LEGACY_TABLES = ("nominal", "crime", "crime_nom", "intel")
ENTITY = {"nominal": "person", "crime": "crime", "crime_nom": "crime_person", "intel": "intelligence"}
# NOMINAL.NOM_ID is SQLite's rowid (INTEGER PRIMARY KEY): it cannot hold text at all.
CANNOT_HOLD_TEXT = {("nominal", "nom_id")}


def _columns(table: str) -> list[str]:
    return [c.name for c in schema.legacy_metadata.tables[table].columns if (table, c.name) not in CANNOT_HOLD_TEXT]


def _intel_texts(conn) -> list[str]:
    texts = [r[0] for r in conn.execute("SELECT INT_TEXT FROM INTEL WHERE INT_TEXT IS NOT NULL")]
    return sorted({t.strip()[:40] for t in texts if len(t.strip()) >= 40})


def _output_text(folder: Path, console: list[str], target: str) -> str:
    """Everything a user or auditor can see: console, every report file, every mig_ table."""
    parts = list(console)
    for path in sorted(folder.rglob("*")):
        if path.suffix in (".csv", ".json"):
            parts.append(path.read_text(encoding="utf-8"))
        elif path.suffix == ".xlsx":
            with zipfile.ZipFile(path) as zf:
                parts += [zf.read(n).decode("utf-8").replace("&amp;", "&").replace("&apos;", "'")
                          .replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
                          for n in zf.namelist() if n.endswith(".xml")]
    engine = sa.create_engine(target)
    with engine.connect() as conn:
        for name, table in schema.target_metadata.tables.items():
            if name.startswith("mig_"):
                parts += [repr(tuple(r)) for r in conn.execute(sa.select(table))]
    engine.dispose()
    return "\n".join(parts)


def _spoil_every_column(legacy_db: Path) -> dict[tuple[str, str], str | None]:
    """In a generated store, append a 0xFF byte to one column of one (live) record, for every
    column of every legacy table; also BLOB values. Returns {(entity, FIELD): escaped key or
    None} of the records expected to be rejected as INVALID_ENCODING."""
    expected: dict[tuple[str, str], str | None] = {}
    with sqlite3.connect(legacy_db) as conn:
        conn.text_factory = db.decode_legacy_text
        for table in LEGACY_TABLES:
            live = "" if table == "crime_nom" else " WHERE DEL_FLAG IS NULL OR DEL_FLAG <> 'Y'"
            rowids = [r[0] for r in conn.execute(f"SELECT rowid FROM {table}{live} ORDER BY rowid")]  # constant names
            columns = _columns(table)
            assert len(rowids) > len(columns) + 3
            for rowid, column in zip(rowids[1::2], columns):
                conn.execute(f"UPDATE {table} SET {column} = CAST(COALESCE(CAST({column} AS TEXT), '') || X'FF' AS TEXT) "
                             "WHERE rowid = ?", (rowid,))
                key_column = {"crime": "crime_no", "intel": "intel_no"}.get(table)
                key = None
                if column == key_column:
                    key = conn.execute(f"SELECT {column} FROM {table} WHERE rowid = ?", (rowid,)).fetchone()[0]
                expected[(ENTITY[table], column.upper())] = key
        # Text stored as BLOB: invalid UTF-8 is rejected, valid UTF-8 is text like any other.
        crimes = [r[0] for r in conn.execute("SELECT rowid FROM CRIME WHERE DEL_FLAG IS NULL OR DEL_FLAG <> 'Y' "
                                             "ORDER BY rowid")]
        conn.execute("UPDATE CRIME SET MO_TEXT = X'C328' WHERE rowid = ?", (crimes[-1],))
        conn.execute("UPDATE CRIME SET CRIME_NO = X'43FF' WHERE rowid = ?", (crimes[-3],))
        conn.execute("UPDATE CRIME SET ADDR_LINE = CAST('1 BLOB STREET, MANCHESTER' AS BLOB), STATUS = 'F', "
                     "DISPOSAL = 'NFA' WHERE rowid = ?", (crimes[0],))
        intel = [r[0] for r in conn.execute("SELECT rowid FROM INTEL WHERE DEL_FLAG IS NULL OR DEL_FLAG <> 'Y' "
                                            "ORDER BY rowid")]
        conn.execute("UPDATE INTEL SET INT_TEXT = CAST(INT_TEXT AS BLOB) || X'FF' WHERE rowid = ?", (intel[-1],))
    return expected


@pytest.mark.parametrize("target_backend", ["sqlite", "postgresql"])
def test_undecodable_text_in_every_legacy_column_is_rejected_and_every_command_runs_to_the_end(
        tmp_path, make_store, target_backend):
    from synth.generate import generate

    legacy_db = tmp_path / "opus.db"
    legacy = f"sqlite:///{legacy_db}"
    generate(legacy, crimes=120, seed=3)
    with sqlite3.connect(legacy_db) as conn:
        texts = _intel_texts(conn)
        counts = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in LEGACY_TABLES}
    assert len(texts) > 20  # the leak check below is not vacuous
    expected = _spoil_every_column(legacy_db)
    target = make_store(target_backend, "target")
    runner = CliRunner()
    console: list[str] = []

    def run(*args: str) -> str:
        res = runner.invoke(app, list(args))
        console.append(res.output)
        assert res.exit_code == 0, res.output
        assert "Traceback" not in res.output and "Could not decode" not in res.output
        return res.output

    dry = run("migrate", "--legacy", legacy, "--target", target, "--dry-run", "--batch-size", "7")
    assert "INVALID_ENCODING" in dry
    first = migrate(legacy, target, batch_size=7, stop_after_batches=9)
    assert first.state == "interrupted"
    run("migrate", "--legacy", legacy, "--target", target, "--batch-size", "7", "--resume", str(first.run_id))
    run("reconcile", "--legacy", legacy, "--target", target, "--out", str(tmp_path / "out"))
    run("runs", "--target", target)

    engine = sa.create_engine(target)
    with engine.connect() as conn:
        run_counts = json.loads(conn.execute(sa.select(schema.mig_run.c.counts)).scalar_one())
        rejects = conn.execute(sa.select(schema.mig_reject.c.entity, schema.mig_reject.c.legacy_key,
                                         schema.mig_reject.c.field, schema.mig_reject.c.value)
                               .where(schema.mig_reject.c.reason == "INVALID_ENCODING")).all()
        address = conn.execute(sa.select(schema.target_metadata.tables["location"].c.address)
                               .where(sa.text("address = '1 BLOB STREET, MANCHESTER'"))).all()
    engine.dispose()
    for table, entity in ENTITY.items():
        c = run_counts[entity]
        assert c["read"] == counts[table], entity  # every row read once, across the interruption
        assert c["read"] == c["written"] + c["updated"] + c["unchanged"] + c["excluded"] + c["rejected"], entity
    by_field = {(e, f) for e, _, f, _ in rejects}
    assert set(expected) <= by_field
    assert ("crime", "MO_TEXT") in by_field and ("intelligence", "INT_TEXT") in by_field
    assert len(rejects) == len(expected) + 3  # one per spoiled column, two BLOBs and the BLOB key
    keys = {(e, k) for e, k, _, _ in rejects}
    for (entity, _), key in expected.items():
        if key is not None:  # an undecodable key is kept escaped
            assert (entity, key.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")) in keys
    assert ("crime", "C\\xff") in keys
    assert all(v is None for e, _, f, v in rejects if f == "INT_TEXT")
    assert any(v is not None and v.endswith("\\xff") for _, _, f, v in rejects if f == "SURNAME")
    assert address == [("1 BLOB STREET, MANCHESTER",)]  # a BLOB holding UTF-8 is text

    # The reconciler, with the same mapping, lists each such record as MISSING with the reason
    # (a link only where its crime and person are matched, as for every link reject: here none).
    assert _missing_by_reason(tmp_path / "out", "INVALID_ENCODING") == {
        (e, k) for e, k, _, _ in rejects if e != "crime_person"}

    outputs = _output_text(tmp_path / "out", console, target)
    leaked = [t for t in texts if t in outputs]
    assert leaked == []


def _missing_by_reason(out: Path, reason: str) -> set[tuple[str, str]]:
    with open(out / "discrepancies.csv", encoding="utf-8-sig", newline="") as f:
        return {(r["entity"], r["legacy_ref"]) for r in csv.DictReader(f)
                if r["category"] == "MISSING" and r["detail"] == reason}


def _resume_store(url: str) -> str:
    """A few records of each kind whose keys are undecodable, beside ones that are not: with
    batches of one record, every key is once the point a run resumes from."""
    return make_legacy(
        url,
        crimes=[{"crime_no": f"CR/00000{i}/18"} for i in range(1, 5)],
        nominals=[{"nom_id": n} for n in (70001, 70002)],
        links=[{"crime_no": "CR/000001/18", "nom_id": 70001, "role": "V"},
               {"crime_no": "CR/000002/18", "nom_id": 70002, "role": "S"},
               {"crime_no": "CR/000003/18", "nom_id": 70001, "role": "W"}],
        intel=[{"intel_no": f"IN/00000{i}/18"} for i in range(1, 4)],
    )


def _spoil_keys_sqlite(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE CRIME SET CRIME_NO = CAST(CRIME_NO || X'FF' AS TEXT) WHERE CRIME_NO = 'CR/000002/18'")
        conn.execute("UPDATE CRIME SET CRIME_NO = X'43FF' WHERE CRIME_NO = 'CR/000004/18'")
        conn.execute("UPDATE CRIME_NOM SET CRIME_NO = CAST('CR/000001/18' || X'FF' AS TEXT) "
                     "WHERE NOM_ID = 70001 AND ROLE = 'V'")
        conn.execute("UPDATE CRIME_NOM SET NOM_ID = CAST('70002' || X'FF' AS TEXT) WHERE NOM_ID = 70002")
        conn.execute("UPDATE INTEL SET INTEL_NO = CAST(INTEL_NO || X'E9' AS TEXT) WHERE INTEL_NO = 'IN/000001/18'")
        conn.execute("UPDATE CRIME_NOM SET ROLE = CAST(X'FF' AS TEXT) WHERE ROLE = 'W'")


def _resumed_to_the_end(legacy: str, target: str) -> None:
    run = migrate(legacy, target, batch_size=1, stop_after_batches=1)
    for _ in range(40):
        if run.state == "complete":
            return
        run = migrate(legacy, target, batch_size=1, resume=run.run_id, stop_after_batches=1)
    pytest.fail("the run did not finish")


def _bookkeeping(url: str) -> tuple:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rejects = sorted(tuple(r) for r in conn.execute(sa.select(
            schema.mig_reject.c.entity, schema.mig_reject.c.legacy_key, schema.mig_reject.c.reason,
            schema.mig_reject.c.field, schema.mig_reject.c.value)))
        counts = json.loads(conn.execute(sa.select(schema.mig_run.c.counts)).scalar_one())
    engine.dispose()
    return rejects, counts


def test_resume_from_every_undecodable_key_gives_the_uninterrupted_run(tmp_path):
    legacy_db = tmp_path / "opus.db"
    legacy = _resume_store(f"sqlite:///{legacy_db}")
    _spoil_keys_sqlite(legacy_db)
    straight, resumed = (f"sqlite:///{tmp_path / n}" for n in ("straight.db", "resumed.db"))
    migrate(legacy, straight, batch_size=1)
    _resumed_to_the_end(legacy, resumed)
    assert table_digests(resumed) == table_digests(straight)
    rejects, counts = _bookkeeping(resumed)
    assert (rejects, counts) == _bookkeeping(straight)
    assert {c["read"] for c in counts.values()} >= {4, 2, 3}
    assert {(e, k, f) for e, k, r, f, _ in rejects if r == "INVALID_ENCODING"} == {
        ("crime", "CR/000002/18\\xff", "CRIME_NO"), ("crime", "C\\xff", "CRIME_NO"),
        ("crime_person", "CR/000001/18\\xff:70001:VICTIM", "CRIME_NO"),
        ("crime_person", "CR/000002/18:70002\\xff:SUSPECT", "NOM_ID"),
        ("crime_person", "CR/000003/18:70001:\\XFF", "ROLE"),
        ("intelligence", "IN/000001/18\\xe9", "INTEL_NO")}
    out = CliRunner().invoke(app, ["reconcile", "--legacy", legacy, "--target", resumed, "--out", str(tmp_path / "out")])
    assert out.exit_code == 0, out.output
    assert _missing_by_reason(tmp_path / "out", "INVALID_ENCODING") == {
        ("crime", "CR/000002/18\\xff"), ("crime", "C\\xff"), ("intelligence", "IN/000001/18\\xe9"),
        ("crime_person", "CR/000003/18:70001:\\XFF")}  # the link whose crime and person are matched


def test_reconcile_workers_cut_key_ranges_at_undecodable_keys_as_one_process_does(tmp_path):
    """Batches of one record: every key, undecodable ones included, bounds a range a worker
    reads back from the legacy store (``reconcile.evaluate.legacy_range``)."""
    from reconcile.run import ReconcileOptions, reconcile
    from reports.reconciliation import write_reconciliation_reports

    legacy_db = tmp_path / "opus.db"
    legacy = _resume_store(f"sqlite:///{legacy_db}")
    _spoil_keys_sqlite(legacy_db)
    target = f"sqlite:///{tmp_path / 'iops.db'}"
    migrate(legacy, target)
    reports = {}
    for workers in (1, 2):
        out = tmp_path / f"out{workers}"
        result = reconcile(legacy, target, ReconcileOptions(workers=workers, batch_size=1, parallel_min_rows=0))
        assert result.exit_code == 0
        write_reconciliation_reports(result, out)
        reports[workers] = (out / "discrepancies.csv").read_text(encoding="utf-8")
    assert reports[2] == reports[1]
    assert reports[1].count("INVALID_ENCODING") == 4


# --- PostgreSQL: a SQL_ASCII database holds any byte -------------------------------------------


@pytest.fixture
def sql_ascii_legacy():
    from conftest import need_server

    need_server("postgresql")
    name = f"o2i_ascii_{__import__('uuid').uuid4().hex[:10]}"
    admin = sa.create_engine(db.server_url("postgresql"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}" ENCODING \'SQL_ASCII\' LC_COLLATE \'C\' LC_CTYPE \'C\' '
                             "TEMPLATE template0"))
    admin.dispose()
    yield db.server_url("postgresql", name).render_as_string(hide_password=False)
    db.drop_database("postgresql", name)


def test_postgresql_utf8_database_cannot_hold_undecodable_text(make_store):
    url = make_store("postgresql", "legacy")
    make_legacy(url)
    engine = sa.create_engine(url)
    with pytest.raises(sa.exc.DataError, match="invalid byte sequence"), engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO crime (crime_no, mo_text) "
                             "VALUES ('CR/000009/18', convert_from('\\xff'::bytea, 'SQL_ASCII'))"))
    engine.dispose()


def test_postgresql_sql_ascii_store_with_undecodable_text_migrates_and_reconciles(sql_ascii_legacy, tmp_path):
    legacy = sql_ascii_legacy
    # Written through a UTF8 client: psycopg on a SQL_ASCII client reads even the server
    # version as bytes, which plain SQLAlchemy cannot connect with (core/db.py's legacy engine can).
    writer = f"{legacy}?client_encoding=utf8"
    _resume_store(writer)
    secret = "INFORMATION RECEIVED THAT THE SUBJECT STORES STOLEN PHONES AT HIS ADDRESS"
    engine = sa.create_engine(writer)
    ff = "convert_from('\\xff'::bytea, 'SQL_ASCII')"
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE crime SET crime_no = left(crime_no, 11) || {ff} WHERE crime_no = 'CR/000002/18'"))
        conn.execute(sa.text(f"UPDATE crime SET mo_text = mo_text || {ff} WHERE crime_no = 'CR/000003/18'"))
        conn.execute(sa.text(f"UPDATE crime SET addr_line = 'CAFÉ ROYAL, MANCHESTER' WHERE crime_no = 'CR/000001/18'"))
        conn.execute(sa.text(f"UPDATE nominal SET surname = 'SMITH' || {ff} WHERE nom_id = 70002"))
        conn.execute(sa.text(f"UPDATE intel SET int_text = :t || {ff} WHERE intel_no = 'IN/000002/18'"), {"t": secret})
        conn.execute(sa.text(f"UPDATE intel SET intel_no = left(intel_no, 11) || {ff} WHERE intel_no = 'IN/000003/18'"))
    engine.dispose()
    straight, resumed = (f"sqlite:///{tmp_path / n}" for n in ("straight.db", "resumed.db"))
    migrate(legacy, straight, batch_size=1)
    _resumed_to_the_end(legacy, resumed)
    rejects, counts = _bookkeeping(resumed)
    assert (rejects, counts) == _bookkeeping(straight)
    assert {(e, k, f, v) for e, k, r, f, v in rejects if r == "INVALID_ENCODING"} == {
        ("crime", "CR/000002/1\\xff", "CRIME_NO", "CR/000002/1\\xff"),
        ("crime", "CR/000003/18", "MO_TEXT", "SIDE WINDOW SMASHED, SATNAV TAKEN\\xff"),
        ("person", "70002", "SURNAME", "SMITH\\xff"),
        ("intelligence", "IN/000002/18", "INT_TEXT", None),
        ("intelligence", "IN/000003/1\\xff", "INTEL_NO", "IN/000003/1\\xff")}
    out = CliRunner().invoke(app, ["reconcile", "--legacy", legacy, "--target", resumed, "--out", str(tmp_path / "out")])
    assert out.exit_code == 0, out.output
    discrepancies = (tmp_path / "out" / "discrepancies.csv").read_text(encoding="utf-8")
    assert discrepancies.count("INVALID_ENCODING") == 5
    assert "CAFÉ ROYAL" in "".join(str(r) for r in _target_addresses(resumed))  # UTF-8 text in SQL_ASCII is text
    assert secret not in _output_text(tmp_path / "out", [out.output], resumed)


def _target_addresses(url: str) -> list:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(schema.target_metadata.tables["location"].c.address)).all()
    engine.dispose()
    return rows


# --- MariaDB: utf8mb4 refuses undecodable text; VARBINARY gives bytes ----------------------


def test_mariadb_utf8mb4_cannot_hold_undecodable_text(make_store):
    url = make_store("mysql", "legacy")
    make_legacy(url)
    engine = sa.create_engine(url)
    for client in ("utf8mb4", "binary"):
        with pytest.raises(sa.exc.DBAPIError, match="Incorrect string value"), engine.begin() as conn:
            conn.exec_driver_sql(f"SET NAMES {client}")
            conn.exec_driver_sql("INSERT INTO CRIME (CRIME_NO, MO_TEXT) VALUES ('CR/000009/18', x'41ff')")
    engine.dispose()


def test_mariadb_varbinary_columns_with_undecodable_bytes_migrate_and_reconcile(make_store, tmp_path):
    legacy = _resume_store(make_store("mysql", "legacy"))
    engine = sa.create_engine(legacy)
    with engine.begin() as conn:
        for table, column, size in (("CRIME", "CRIME_NO", 12), ("CRIME", "MO_TEXT", 2000), ("NOMINAL", "SURNAME", 40),
                                    ("INTEL", "INT_TEXT", 4000)):
            conn.exec_driver_sql(f"ALTER TABLE {table} MODIFY {column} VARBINARY({size})")
        conn.exec_driver_sql("UPDATE CRIME SET CRIME_NO = x'43522f3030303030322f31ff' WHERE CRIME_NO = 'CR/000002/18'")
        conn.exec_driver_sql("UPDATE CRIME SET MO_TEXT = x'c328' WHERE CRIME_NO = 'CR/000003/18'")
        conn.exec_driver_sql("UPDATE NOMINAL SET SURNAME = x'534d495448ff' WHERE NOM_ID = 70002")
        conn.exec_driver_sql("UPDATE INTEL SET INT_TEXT = CONCAT(INT_TEXT, x'ff') WHERE INTEL_NO = 'IN/000002/18'")
    engine.dispose()
    straight, resumed = make_store("postgresql", "straight"), make_store("postgresql", "resumed")
    migrate(legacy, straight, batch_size=1)
    _resumed_to_the_end(legacy, resumed)
    rejects, counts = _bookkeeping(resumed)
    assert (rejects, counts) == _bookkeeping(straight)
    assert table_digests(resumed) == table_digests(straight)
    assert {(e, k, f, v) for e, k, r, f, v in rejects if r == "INVALID_ENCODING"} == {
        ("crime", "CR/000002/1\\xff", "CRIME_NO", "CR/000002/1\\xff"),
        ("crime", "CR/000003/18", "MO_TEXT", "\\xc3("),
        ("person", "70002", "SURNAME", "SMITH\\xff"),
        ("intelligence", "IN/000002/18", "INT_TEXT", None)}
    out = CliRunner().invoke(app, ["reconcile", "--legacy", legacy, "--target", resumed, "--out", str(tmp_path / "out")])
    assert out.exit_code == 0, out.output
    discrepancies = (tmp_path / "out" / "discrepancies.csv").read_text(encoding="utf-8")
    assert discrepancies.count("INVALID_ENCODING") == 4
    # The VARBINARY columns' other values are UTF-8: migrated as text.
    assert "SIDE WINDOW SMASHED, SATNAV TAKEN" in "".join(
        str(r) for r in _target_column(resumed, "crime", "mo_summary"))


def _target_column(url: str, table: str, column: str) -> list:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(schema.target_metadata.tables[table].c[column])).all()
    engine.dispose()
    return rows


# --- driver messages never carry a record's value ----------------------------------------


def test_a_driver_error_quoting_intelligence_text_prints_none_of_it(tmp_path):
    """SQLite's decode error quotes the value up to its first line break: reading an iOPS store
    whose intelligence text is not UTF-8 (a rollback reads every before-image) used to print it."""
    legacy = _resume_store(f"sqlite:///{tmp_path / 'opus.db'}")
    target_db = tmp_path / "iops.db"
    migrate(legacy, f"sqlite:///{target_db}")
    secret = "SUBJECT SEEN DEALING NEAR PICCADILLY GARDENS"
    with sqlite3.connect(target_db) as conn:
        assert conn.execute("UPDATE intelligence_report SET intel_text = CAST(intel_text || X'FF' AS TEXT) "
                            "WHERE intel_text = ?", (secret,)).rowcount == 3
    res = CliRunner().invoke(app, ["rollback", "1", "--target", f"sqlite:///{target_db}"])
    assert res.exit_code == 2, res.output
    line, = res.output.strip().splitlines()
    assert "target store" in line and "column 'intel_text'" in line and "'…'" in line
    assert "SUBJECT SEEN" not in res.output


def test_mariadb_data_error_raised_as_operational_error_prints_no_value(make_store):
    """pymysql raises MariaDB's unmapped data errors (1292 'Truncated incorrect … value: <value>')
    as OperationalError, which store_errors reports: the value must not be in the message."""
    from core.errors import StoreUnavailable

    url = make_store("mysql", "legacy")
    make_legacy(url, intel=[{"intel_no": "IN/000001/18", "int_text": "INFORMATION RECEIVED THAT X"}])
    engine = sa.create_engine(url)
    with pytest.raises(StoreUnavailable) as caught, db.store_errors(engine, "legacy"), engine.begin() as conn:
        conn.exec_driver_sql("UPDATE INTEL SET OFFICER = 'A' WHERE INT_TEXT > 0 AND GRID_E = CAST(INT_TEXT AS DECIMAL)")
    engine.dispose()
    message = str(caught.value)
    assert "1292" in message and "'…'" in message and "INFORMATION" not in message
