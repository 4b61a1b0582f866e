"""A run's counts are those of its committed batches, whatever ends it (issue 16, item 8).

``runs --json`` once showed a batch that had been rolled back (disk full on the target:
read 3,000 / written 2,973 shown, 2,500 / 2,478 committed). Each test here ends a real
migration with a real failure — a constraint the target enforces, a disk that fills, the
server cutting the connection, Ctrl-C — and then holds the counts ``runs --json`` shows to
what the committed rows say: records read up to the checkpoint's key, ``mig_xref`` rows
written, ``mig_reject`` rows, ``mig_ledger`` rows, ``mig_warning`` rows.
"""

from __future__ import annotations

import collections
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from core import schema
from core.digest import read_written
from migrate import records
from core.errors import ForeignSchemaError
from main import app
from migrate.engine import migrate
from tests.opus_fixture import connection_killer
from tests.test_connection_loss import cut_until_exit
from tests.test_crash_safety import Progress, build_legacy, start_migrate

ENTITY_KEYS = {"person": ("nominal", ("nom_id",)), "crime": ("crime", ("crime_no",)),
               "crime_person": ("crime_nom", ("crime_no", "nom_id", "role")),
               "intelligence": ("intel", ("intel_no",))}


def runs_json(target: str) -> list[dict]:
    res = CliRunner().invoke(app, ["runs", "--target", target, "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def committed(legacy: str, target: str, run_id: int) -> dict[str, dict]:
    """Per entity, the counts the committed rows of the run imply (a fresh target: no updates)."""
    lg, tg = sa.create_engine(legacy), sa.create_engine(target)
    out: dict[str, dict] = {}
    try:
        with tg.connect() as conn:
            checkpoints = {r.entity: r for r in conn.execute(
                sa.select(schema.mig_checkpoint).where(schema.mig_checkpoint.c.run_id == run_id))}

            def per_entity(table, *extra):
                run_column = table.c.first_run if table is schema.mig_xref else table.c.run_id
                query = (sa.select(table.c.entity, *extra, sa.func.count()).where(run_column == run_id)
                         .group_by(table.c.entity, *extra))
                return conn.execute(query).all()

            written = {e: n for e, n in per_entity(schema.mig_xref)}
            rejected = {e: n for e, n in per_entity(schema.mig_reject)}
            warnings = collections.defaultdict(dict)
            for e, code, n in per_entity(schema.mig_warning, schema.mig_warning.c.reason):
                warnings[e][code] = n
            # Target rows the run wrote: those of the records it inserted (each named by its
            # mig_xref row) and those its ledger holds (none in a first run).
            ledger = conn.execute(sa.select(sa.func.count()).select_from(schema.mig_ledger)
                                  .where(schema.mig_ledger.c.run_id == run_id)).scalar_one()
            ledger += sum(len(read_written(bytes(w), schema.TARGET_TABLES, records.WIDTH)) for w in conn.execute(
                sa.select(schema.mig_xref.c.written).where(schema.mig_xref.c.first_run == run_id)).scalars())
        with lg.connect() as conn:
            for entity, cp in checkpoints.items():
                table, keys = ENTITY_KEYS[entity]
                rows = [tuple(r) for r in conn.execute(sa.text(f"SELECT {', '.join(keys)} FROM {table}"))]
                if cp.done:
                    read = len(rows)
                else:  # the legacy store is SQLite: text keys compare by code point, as here
                    last = tuple(json.loads(cp.last_key))
                    read = sum(1 for r in rows if r <= last)
                out[entity] = {"read": read, "written": written.get(entity, 0),
                               "rejected": rejected.get(entity, 0), "warnings_by": dict(warnings[entity])}
    finally:
        lg.dispose()
        tg.dispose()
    out["_ledger"] = ledger
    return out


def assert_counts_are_committed(legacy: str, target: str) -> dict:
    (run,) = runs_json(target)
    assert run["state"] == "interrupted", run
    truth = committed(legacy, target, run["id"])
    ledger = truth.pop("_ledger")
    shown = run["counts"]
    assert set(shown) == set(truth), (shown, truth)
    for entity, facts in truth.items():
        counts = shown[entity]
        assert {k: counts[k] for k in facts} == facts, entity
        assert counts["read"] == (counts["written"] + counts["updated"] + counts["unchanged"]
                                  + counts["excluded"] + counts["rejected"]), entity
    assert sum(c["rows_written"] for c in shown.values()) == ledger
    assert sum(c["read"] for c in shown.values()) > 0  # the failure came mid-run, after commits
    return run


# --------------------------------------------------------------- a constraint error, every engine


def test_constraint_error_mid_run_leaves_committed_counts(backend, make_store, tmp_path):
    """The target already holds a row with the id a mid-store person maps to (made by hand,
    say): the batch holding that person fails on the primary key and is rolled back."""
    legacy = build_legacy(f"sqlite:///{tmp_path / 'opus.db'}", crimes=120, padded_duplicates=False)
    scratch = f"sqlite:///{tmp_path / 'scratch.db'}"
    migrate(legacy, scratch, batch_size=25)
    se = sa.create_engine(scratch)
    with se.connect() as conn:
        squatter = dict(conn.execute(sa.select(schema.person).where(schema.person.c.legacy_nominal_id == 60))
                        .mappings().one())
    se.dispose()

    target = make_store(backend, "target")
    engine = sa.create_engine(target)
    schema.create_target_schema(engine)
    # Entered in iOPS (no OPUS key, so the target is not refused up front as another tool's
    # migration), but with the very id the 60th nominal maps to.
    squatter.update(legacy_nominal_id=None, source_system="IOPS")
    with engine.begin() as conn:
        conn.execute(schema.person.insert().values(**squatter))
    engine.dispose()

    with pytest.raises(ForeignSchemaError):  # the collision, as one line naming the table
        migrate(legacy, target, batch_size=25)
    run = assert_counts_are_committed(legacy, target)
    assert run["counts"]["person"]["read"] == 50  # two batches of 25 committed; the third failed


# --------------------------------------------------------------- disk full (SQLite on a small tmpfs)


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()

    def mount_of(size: str) -> Path:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], check=True)
        return mount

    yield mount_of
    subprocess.run(["umount", str(mount)], check=False)


def test_disk_full_mid_run_leaves_committed_counts(small_disk, tmp_path):
    legacy = build_legacy(f"sqlite:///{tmp_path / 'opus.db'}", crimes=1500, padded_duplicates=False)
    disk = small_disk("600k")  # a full migration of this store needs several MB
    target = f"sqlite:///{disk / 'iops.db'}"
    res = CliRunner().invoke(app, ["migrate", "--legacy", legacy, "--target", target, "--batch-size", "100",
                                   "--quiet"])
    assert res.exit_code == 2, res.output
    assert "full" in res.stderr, res.stderr
    assert_counts_are_committed(legacy, target)


# --------------------------------------------------------------- the server cuts the connection


def test_postgresql_backend_terminated_mid_run_leaves_committed_counts(make_store, tmp_path):
    legacy = build_legacy(f"sqlite:///{tmp_path / 'opus.db'}", crimes=600)
    target = make_store("postgresql", "target")
    database = make_url(target).database
    proc = start_migrate(legacy, target, batch_size=20)
    with connection_killer("postgresql") as kill:
        assert Progress(target).wait_for(proc, 5), proc.communicate()
        cut_until_exit(proc, lambda: kill(database))  # until it gives up, wherever that lands
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, (out, err)
    assert "error: target store" in err
    assert_counts_are_committed(legacy, target)


# --------------------------------------------------------------- Ctrl-C


def test_ctrl_c_mid_run_leaves_committed_counts_and_names_the_run(tmp_path):
    legacy = build_legacy(f"sqlite:///{tmp_path / 'opus.db'}", crimes=1500)
    target = f"sqlite:///{tmp_path / 'iops.db'}"
    proc = start_migrate(legacy, target, batch_size=20)
    assert Progress(target).wait_for(proc, 5), proc.communicate()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, (out, err)
    run = assert_counts_are_committed(legacy, target)
    assert err.strip() == (f"interrupted: committed batches are kept; continue with "
                           f"`migrate --resume {run['id']}` (see `runs`)"), err
