"""What the legacy store can hold, the bookkeeping holds; targets the tool did not make are refused.

* Keys: every key a legacy store can hold — 12 characters of VARCHAR(12) in 2-, 3- and 4-byte
  UTF-8, and on a SQLite legacy store (which enforces no VARCHAR length) keys of any length —
  goes through every bookkeeping column that holds a legacy key or value (checkpoint, xref,
  ledger, reject key/value/raw row, warning) on every target engine, and a run interrupted
  after each such key resumes.
* Capacities: "unbounded" text is unbounded on every engine — values around MariaDB's TEXT
  capacity (65,535 / 65,536 bytes), multi-byte, and 1 MB, in every unbounded target column
  the legacy store fills, in a reject's raw row, and in the ledger's before-image.
* Foreign targets (another tool's rows, a same-named table of another shape) are refused in
  one line before anything is created; ``--batch-size`` is bounded.
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from core import schema
from main import app
from migrate.engine import migrate
from tests.opus_fixture import make_legacy, table_names, update_legacy

# 12 characters each: what VARCHAR(12) holds on every engine (characters, not bytes).
KEYS_OF_12 = ("ÄÖÜÄÖÜÄÖÜÄÖÜ", "€€€€€€€€€€€€", "😀😀😀😀😀😀😀😀😀😀😀😀", "CR/00Ω001/18", "CR/000001/1é")
# Only a SQLite legacy store can hold these (it enforces no VARCHAR length).
KEYS_OVER_LONG = ("CR/000001/18" + "X" * 40, "😀" * 500, "K" * 70_000)


def hostile_legacy(url: str, over_long: bool) -> str:
    keys = KEYS_OF_12 + (KEYS_OVER_LONG if over_long else ())
    crimes = [{"crime_no": f"CR/{i:06d}/18"} for i in range(1, 4)] + [{"crime_no": k} for k in keys]
    intel = [{"intel_no": "IN/000001/18", "subj_nom_id": 1}] + [{"intel_no": k, "subj_nom_id": 1} for k in keys]
    nominals = [{"nom_id": 1}, {"nom_id": 2, "surname": "É" * 40, "forenames": "😀" * 60}]
    links = [{"crime_no": "CR/000001/18", "nom_id": 1, "role": "V"}] + [
        {"crime_no": k, "nom_id": 1, "role": "S"} for k in keys]
    if over_long:  # an over-long role, and a text nominal id, in CHAR(1) and INTEGER columns
        links += [{"crime_no": "CR/000002/18", "nom_id": 1, "role": "Ж" * 3000},
                  {"crime_no": "CR/000002/18", "nom_id": "N" * 3000, "role": "V"}]
    return make_legacy(url, crimes=crimes, nominals=nominals, links=links, intel=intel)


def rows(url: str, table: sa.Table) -> list[dict]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(table)).mappings()]
    finally:
        engine.dispose()


def bookkeeping_without_run_ids(url: str) -> dict:
    """What the runs left in the bookkeeping, comparable across targets and run splits."""
    out = {}
    for table, drop in ((schema.mig_xref, {"first_run", "last_run"}), (schema.mig_reject, {"run_id", "reject_id"}),
                        (schema.mig_warning, {"run_id", "warning_id"})):
        out[table.name] = sorted(json.dumps({k: bytes(v).hex() if isinstance(v, (bytes, memoryview)) else v
                                             for k, v in r.items() if k not in drop}, sort_keys=True)
                                 for r in rows(url, table))
    return out


@pytest.mark.parametrize("legacy_backend", ["sqlite", "mysql"])
def test_every_key_the_legacy_store_holds_fits_the_bookkeeping_and_resumes(legacy_backend, backend, make_store):
    legacy = hostile_legacy(make_store(legacy_backend, "legacy"), over_long=legacy_backend == "sqlite")
    straight = make_store(backend, "straight")
    whole = migrate(legacy, straight, batch_size=1)
    assert whole.state == "complete" and whole.balanced
    assert whole.total_rejected >= len(KEYS_OF_12) * 3  # each hostile key is a bad reference

    # One record per batch, interrupted after every third batch: each hostile key is, in
    # turn, the checkpoint a resume starts from.
    target = make_store(backend, "target")
    result = migrate(legacy, target, batch_size=1, stop_after_batches=3)
    run_id = result.run_id
    for _ in range(200):
        if result.state == "complete":
            break
        assert result.state == "interrupted"
        result = migrate(legacy, target, batch_size=1, resume=run_id, stop_after_batches=3)
    assert result.state == "complete" and result.balanced
    assert {k: v.to_json() for k, v in result.counts.items()} == {k: v.to_json() for k, v in whole.counts.items()}
    assert bookkeeping_without_run_ids(target) == bookkeeping_without_run_ids(straight)

    # The bookkeeping holds each key as the legacy store does: the raw row exactly, the
    # reject's key and value whole when short, bounded (a prefix) when a SQLite store's key is huge.
    rejects = rows(target, schema.mig_reject)
    for key in KEYS_OF_12 + (KEYS_OVER_LONG if legacy_backend == "sqlite" else ()):
        mine = [r for r in rejects if r["entity"] == "crime" and json.loads(r["raw_row"])["crime_no"] == key]
        assert len(mine) == 1, key
        assert key.startswith(mine[0]["legacy_key"]) and (len(key) > 40 or mine[0]["legacy_key"] == key)
    (checkpoint,) = {r["entity"]: r for r in rows(target, schema.mig_checkpoint)}["crime"],
    assert checkpoint["done"]


# ----------------------------------------------------------------------------- capacities

BYTES_64K = 65_535  # MariaDB TEXT's capacity in bytes
SIZES = {
    "ascii-65535": "a" * BYTES_64K,
    "ascii-65536": "a" * (BYTES_64K + 1),
    "2byte-65536": "é" * 32_768,
    "3byte-65535": "€" * 21_845,
    "3byte-65538": "€" * 21_846,
    "4byte-65536": "😀" * 16_384,
    "ascii-1MB": "m" * (1 << 20),
    "4byte-1MB": "😀" * (1 << 18),
}


def big_legacy(url: str) -> str:
    names = list(SIZES)
    crimes = [{"crime_no": f"CR/{i:06d}/18", "mo_text": SIZES[n]} for i, n in enumerate(names, 1)]
    intel = [{"intel_no": f"IN/{i:06d}/18", "int_text": SIZES[n]} for i, n in enumerate(names, 1)]
    # A surname that does not fit family_name: rejected, its raw row (with the whole surname) kept.
    nominals = [{"nom_id": i, "surname": SIZES[n]} for i, n in enumerate(names, 1)]
    return make_legacy(url, crimes=crimes, nominals=nominals, intel=intel)


def test_unbounded_text_is_unbounded_on_every_engine(backend, make_store, tmp_path):
    legacy = big_legacy(f"sqlite:///{tmp_path / 'opus.db'}")
    target = make_store(backend, "target")
    result = migrate(legacy, target, batch_size=3)
    assert result.state == "complete" and result.balanced
    assert result.counts["crime"].written == len(SIZES) and result.counts["intelligence"].written == len(SIZES)
    assert result.counts["person"].rejected_by == {"VALUE_TOO_LONG": len(SIZES)}

    by_ref = {r["legacy_ref"]: r["mo_summary"] for r in rows(target, schema.crime)}
    intel = {r["legacy_ref"]: r["intel_text"] for r in rows(target, schema.intelligence_report)}
    for i, value in enumerate(SIZES.values(), 1):
        assert by_ref[f"CR/{i:06d}/18"] == value
        assert intel[f"IN/{i:06d}/18"] == value
    surnames = sorted(json.loads(r["raw_row"])["surname"] for r in rows(target, schema.mig_reject))
    assert surnames == sorted(SIZES.values())

    # An update keeps the row's before-image (a 1 MB MO among it) in the ledger.
    for i in range(1, len(SIZES) + 1):
        update_legacy(legacy, "crime", {"crime_no": f"CR/{i:06d}/18"}, mo_text="SHORTER NOW",
                      last_upd="20190101120000")
    again = migrate(legacy, target, batch_size=3)
    assert again.state == "complete" and again.counts["crime"].updated == len(SIZES)
    images = [json.loads(r["before_image"])["mo_summary"] for r in rows(target, schema.mig_ledger)
              if r["action"] == "update" and r["table_name"] == "crime"]
    assert sorted(images) == sorted(SIZES.values())


def test_every_unbounded_column_of_the_schema_is_unbounded_on_mariadb():
    """The class: no Text column of the target or bookkeeping is MariaDB's 64 KB TEXT."""
    from sqlalchemy.dialects import mysql

    for table in schema.target_metadata.tables.values():
        for column in table.columns:
            if isinstance(column.type, sa.Text):
                ddl = column.type.compile(dialect=mysql.dialect())
                assert ddl == "LONGTEXT", (table.name, column.name, ddl)


# --------------------------------------------------------------------------- foreign targets

ALL_TABLES = tuple(schema.target_metadata.tables)


def run_cli(*args: str):
    return CliRunner().invoke(app, list(args))


def assert_one_line_error(res, *fragments: str) -> str:
    assert isinstance(res.exception, SystemExit), f"uncaught {type(res.exception).__name__}: {res.exception}"
    assert res.exit_code == 2, (res.exit_code, res.output)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.output
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


@pytest.fixture
def small_legacy(tmp_path):
    return make_legacy(f"sqlite:///{tmp_path / 'opus.db'}",
                       crimes=[{"crime_no": f"CR/{i:06d}/18"} for i in range(1, 6)],
                       nominals=[{"nom_id": 1}, {"nom_id": 2}],
                       links=[{"crime_no": "CR/000001/18", "nom_id": 1, "role": "V"}],
                       intel=[{"intel_no": "IN/000001/18", "subj_nom_id": 1}])


def copy_rows(source: str, target: str, table: sa.Table, where=None) -> int:
    """Put ``source``'s rows of ``table`` into ``target``, as another tool would have written them."""
    src, dst = sa.create_engine(source), sa.create_engine(target)
    try:
        with src.connect() as conn:
            stmt = sa.select(table) if where is None else sa.select(table).where(where)
            found = [dict(r) for r in conn.execute(stmt).mappings()]
        with dst.begin() as conn:
            conn.execute(table.insert(), found)
        return len(found)
    finally:
        src.dispose()
        dst.dispose()


def test_a_store_another_tool_filled_is_refused_before_anything_is_created(backend, small_legacy, make_store):
    """iOPS tables holding records whose ids are the very ones we would write, and no mig_ table."""
    ours = make_store(backend, "ours")
    assert migrate(small_legacy, ours).state == "complete"
    foreign = make_store(backend, "foreign")
    engine = sa.create_engine(foreign)
    schema.target_metadata.create_all(engine, tables=[schema.target_metadata.tables[n] for n in schema.TARGET_TABLES])
    engine.dispose()
    for name in schema.TARGET_TABLES:
        copy_rows(ours, foreign, schema.target_metadata.tables[name])

    res = run_cli("migrate", "--legacy", small_legacy, "--target", foreign, "--quiet")
    assert_one_line_error(res, "already holds migrated OPUS", "no migration of this tool")
    assert table_names(foreign) == set(schema.TARGET_TABLES)  # no mig_ table was made


def test_a_record_another_tool_wrote_since_is_one_line_not_a_traceback(backend, small_legacy, make_store):
    """Our bookkeeping is there (a run was interrupted), then another tool writes a crime whose
    id is the one the resumed run writes: the collision is reported in one line."""
    ours = make_store(backend, "ours")
    assert migrate(small_legacy, ours).state == "complete"
    target = make_store(backend, "target")
    first = migrate(small_legacy, target, batch_size=2, stop_after_batches=1)  # persons only
    assert first.state == "interrupted"
    copy_rows(ours, target, schema.location)
    assert copy_rows(ours, target, schema.crime, schema.crime.c.legacy_ref == "CR/000003/18") == 1

    res = run_cli("migrate", "--legacy", small_legacy, "--target", target, "--quiet", "--resume", str(first.run_id))
    line = assert_one_line_error(res, "collides", "did not write")
    assert "CR/000003/18" not in line  # no value of a record


def _like(table: sa.Table, *extra: sa.Column, **replace: sa.Column) -> sa.Table:
    """A table named and shaped like one of ours (no foreign keys), some columns replaced, some added."""
    columns = [replace[c.name] if c.name in replace else
               sa.Column(c.name, c.type, nullable=c.nullable, primary_key=c.primary_key) for c in table.columns]
    return sa.Table(table.name, sa.MetaData(), *columns, *extra)


def _person_with(*extra: sa.Column, replace: dict | None = None) -> sa.Table:
    return _like(schema.person, *extra, **(replace or {}))


def _crime_with(**replace: sa.Column) -> sa.Table:
    return _like(schema.crime, **replace)


FOREIGN_SHAPES = {
    # name: (the foreign table, the words the refusal must hold, or None: a shape we can write to)
    "extra-not-null": (lambda: _person_with(sa.Column("nhs_number", sa.String(10), nullable=False)),
                       ("'person'", "nhs_number", "NOT NULL")),
    "extra-not-null-with-default": (lambda: _person_with(sa.Column("nhs_number", sa.String(10), nullable=False,
                                                                   server_default="unknown")), None),
    "extra-nullable": (lambda: _person_with(sa.Column("nhs_number", sa.String(10))), None),
    "text-too-short": (lambda: _person_with(replace={"family_name": sa.Column("family_name", sa.String(20),
                                                                             nullable=False)}),
                       ("'person'", "family_name", "too small")),
    "wrong-kind": (lambda: _person_with(replace={"date_of_birth": sa.Column("date_of_birth", sa.Integer)}),
                   ("'person'", "date_of_birth")),
    "unbounded-as-varchar": (lambda: _crime_with(mo_summary=sa.Column("mo_summary", sa.String(2000))),
                             ("'crime'", "mo_summary", "unbounded text")),
}


@pytest.mark.parametrize("shape", list(FOREIGN_SHAPES))
def test_the_whole_target_shape_is_checked_before_anything_is_created(shape, backend, small_legacy, make_store):
    make_table, refusal = FOREIGN_SHAPES[shape]
    target = make_store(backend, "foreign")
    engine = sa.create_engine(target)
    foreign = make_table()
    foreign.create(engine)
    engine.dispose()

    res = run_cli("migrate", "--legacy", small_legacy, "--target", target, "--quiet")
    if refusal is None:
        assert res.exit_code == 0, res.output
        assert migrate(small_legacy, target).counts["person"].unchanged == 2
        return
    assert_one_line_error(res, *refusal, "not an iOPS store")
    assert table_names(target) == {foreign.name}  # nothing else was created


def test_mariadb_text_of_64kb_is_refused_where_unbounded_text_is_needed(make_store, small_legacy):
    """A target whose MO column is MariaDB's TEXT (65,535 bytes): refused, not a DataError later."""
    target = make_store("mysql", "foreign")
    engine = sa.create_engine(target)
    _crime_with(mo_summary=sa.Column("mo_summary", sa.dialects.mysql.TEXT())).create(engine)
    engine.dispose()
    res = run_cli("migrate", "--legacy", small_legacy, "--target", target, "--quiet")
    assert_one_line_error(res, "'crime'", "mo_summary", "TEXT", "unbounded text")


@pytest.mark.parametrize("size", ["0", "-1", "100001", "2147483648", "99999999999999999999999"])
def test_batch_size_out_of_range_is_one_line(size, small_legacy, tmp_path):
    target = f"sqlite:///{tmp_path / 'iops.db'}"
    res = run_cli("migrate", "--legacy", small_legacy, "--target", target, "--quiet", "--batch-size", size)
    assert_one_line_error(res, "--batch-size", "100,000")
    assert not (tmp_path / "iops.db").exists() or table_names(target) == set()


def test_the_largest_batch_size_is_accepted(small_legacy, tmp_path):
    target = f"sqlite:///{tmp_path / 'iops.db'}"
    res = run_cli("migrate", "--legacy", small_legacy, "--target", target, "--quiet", "--batch-size", "100000")
    assert res.exit_code == 0, res.output
