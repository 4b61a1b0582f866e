"""The migration engine: batches, ledger, idempotency, dry run, resume, rejects, read-only legacy."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from core import schema
from core.digest import row_digest
from main import app
from mappings.entities import ENTITIES
from migrate.engine import migrate
from tests.opus_fixture import make_legacy, update_legacy, table_digests

IOPS_TABLES = schema.TARGET_TABLES




def rows(url: str, table_name: str) -> list[dict]:
    engine = sa.create_engine(url)
    table = schema.target_metadata.tables[table_name]
    with engine.connect() as conn:
        result = [dict(r) for r in conn.execute(sa.select(table)).mappings()]
    engine.dispose()
    return result


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def small_legacy(tmp_path):
    url = f"sqlite:///{tmp_path / 'opus.db'}"
    make_legacy(
        url,
        crimes=[
            {"crime_no": "CR/000001/18"},
            {"crime_no": "CR/000002/18", "rec_date": "31/03/2019", "rec_time": "0130"},
            {"crime_no": " CR/000003/18 ", "off_code": "burg-dw", "rec_date": "01/04/2017"},
            {"crime_no": "CR/000004/18", "off_code": "OLDCODE"},  # UNMAPPED_OFFENCE
            {"crime_no": "CR/000005/18", "del_flag": "Y"},  # excluded
            {"crime_no": "BAD/5/18"},  # BAD_REFERENCE
            {"crime_no": "CR/000006/18", "rec_date": "31/02/2015"},  # INVALID_DATE
        ],
        nominals=[
            {"nom_id": 1, "surname": "O'BRIEN, SEAN", "forenames": ""},
            {"nom_id": 2, "surname": "MÜLLER", "forenames": "ZOË"},
            {"nom_id": 3, "surname": "  "},  # MISSING_NAME
            {"nom_id": 4, "del_flag": "Y"},
        ],
        links=[
            {"crime_no": "CR/000001/18", "nom_id": 1, "role": "V"},
            {"crime_no": "CR/000001/18", "nom_id": 2, "role": "s"},
            {"crime_no": "CR/000004/18", "nom_id": 1, "role": "V"},  # crime rejected → ORPHAN_LINK
            {"crime_no": "CR/000002/18", "nom_id": 9, "role": "W"},  # nominal absent → ORPHAN_LINK
            {"crime_no": "CR/000002/18", "nom_id": 2, "role": "Q"},  # INVALID_ROLE
        ],
        intel=[
            {"intel_no": "IN/000001/18", "subj_nom_id": 1},
            {"intel_no": "IN/000002/18", "subj_nom_id": 99},  # ORPHAN_SUBJECT warning
            {"intel_no": "IN/000003/18", "int_text": "   "},  # EMPTY_INTELLIGENCE
            {"intel_no": "IN/000004/18", "src_eval": "Z"},  # INVALID_GRADING
        ],
    )
    return url


def test_small_store_counts_and_invariant(small_legacy, tmp_path):
    target = f"sqlite:///{tmp_path / 'iops.db'}"
    result = migrate(small_legacy, target, batch_size=2)
    assert result.state == "complete" and result.balanced and result.exit_code == 0
    c = result.counts
    assert (c["crime"].read, c["crime"].written, c["crime"].excluded, c["crime"].rejected) == (7, 3, 1, 3)
    assert c["crime"].rejected_by == {"UNMAPPED_OFFENCE": 1, "BAD_REFERENCE": 1, "INVALID_DATE": 1}
    assert (c["person"].written, c["person"].rejected, c["person"].excluded) == (2, 1, 1)
    assert c["crime_person"].written == 2
    assert c["crime_person"].rejected_by == {"ORPHAN_LINK": 2, "INVALID_ROLE": 1}
    assert c["intelligence"].written == 2
    assert c["intelligence"].rejected_by == {"EMPTY_INTELLIGENCE": 1, "INVALID_GRADING": 1}
    assert c["intelligence"].warnings_by.get("ORPHAN_SUBJECT") == 1

    crimes = {r["legacy_ref"]: r for r in rows(target, "crime")}
    assert set(crimes) == {"CR/000001/18", "CR/000002/18", "CR/000003/18"}
    assert crimes["CR/000003/18"]["ho_offence_code"] == "28E"  # lower-case code, dated crosswalk
    # 01:30 on the spring-forward Sunday does not exist in UK time; fold=0 reads it as GMT.
    assert crimes["CR/000002/18"]["recorded_at"] == dt.datetime(2019, 3, 31, 1, 30, tzinfo=dt.timezone.utc)
    persons = {r["legacy_nominal_id"]: r for r in rows(target, "person")}
    assert (persons[1]["family_name"], persons[1]["given_names"]) == ("O'BRIEN", "SEAN")
    assert persons[2]["family_name"] == "MÜLLER" and persons[2]["given_names"] == "ZOË"
    roles = sorted(r["role"] for r in rows(target, "crime_person"))
    assert roles == ["SUSPECT", "VICTIM"]


def test_rejects_keep_raw_row_without_intelligence_text(small_legacy, tmp_path):
    target = f"sqlite:///{tmp_path / 'iops.db'}"
    migrate(small_legacy, target)
    rejects = rows(target, "mig_reject")
    by_key = {(r["entity"], r["legacy_key"]): r for r in rejects}
    bad_grade = by_key[("intelligence", "IN/000004/18")]
    assert bad_grade["reason"] == "INVALID_GRADING"
    raw = json.loads(bad_grade["raw_row"])
    assert raw["src_eval"] == "Z"
    assert "DEALING" not in bad_grade["raw_row"] and raw["int_text"].startswith("sha256:")
    assert by_key[("crime", "CR/000004/18")]["value"] == "OLDCODE"


def test_second_run_writes_nothing_new(small_legacy, tmp_path):
    target = f"sqlite:///{tmp_path / 'iops.db'}"
    first = migrate(small_legacy, target, batch_size=3)
    before = table_digests(target)
    second = migrate(small_legacy, target, batch_size=3)
    assert table_digests(target) == before
    for entity, counts in second.counts.items():
        assert counts.written == 0 and counts.updated == 0, entity
        assert counts.unchanged == first.counts[entity].written + first.counts[entity].unchanged
        assert counts.balanced
    ledger_run2 = [r for r in rows(target, "mig_ledger") if r["run_id"] == second.run_id]
    assert ledger_run2 == []


def test_changed_legacy_record_is_updated_alone_with_before_image(small_legacy, tmp_path):
    target = f"sqlite:///{tmp_path / 'iops.db'}"
    migrate(small_legacy, target)
    before_rows = {r["legacy_ref"]: r for r in rows(target, "crime")}
    update_legacy(small_legacy, "crime", {"crime_no": "CR/000001/18"}, status="O", disposal=None,
                  last_upd="20190101120000")
    second = migrate(small_legacy, target)
    assert second.counts["crime"].updated == 1 and second.counts["crime"].written == 0
    assert second.counts["person"].updated == 0
    after_rows = {r["legacy_ref"]: r for r in rows(target, "crime")}
    assert after_rows["CR/000001/18"]["status"] == "OPEN"
    assert after_rows["CR/000002/18"] == before_rows["CR/000002/18"]
    ledger = [r for r in rows(target, "mig_ledger") if r["run_id"] == second.run_id]
    assert [(r["table_name"], r["action"]) for r in ledger] == [("crime", "update")]
    image = json.loads(ledger[0]["before_image"])
    assert image["status"] == "FINALISED" and image["outcome_code"] == "18"


def test_dry_run_writes_nothing(small_legacy, tmp_path):
    target_path = tmp_path / "iops.db"
    target = f"sqlite:///{target_path}"
    result = migrate(small_legacy, target, dry_run=True)
    assert result.run_id is None and result.balanced
    assert result.counts["crime"].written == 3
    assert not target_path.exists()  # not even the file, let alone the schema
    migrate(small_legacy, target)
    before = table_digests(target, tuple(schema.target_metadata.tables))
    again = migrate(small_legacy, target, dry_run=True)
    assert again.counts["crime"].written == 0 and again.counts["crime"].unchanged == 3
    assert table_digests(target, tuple(schema.target_metadata.tables)) == before


def test_legacy_store_is_left_byte_identical(small_legacy, tmp_path):
    legacy_path = Path(small_legacy.removeprefix("sqlite:///"))
    before = file_hash(legacy_path)
    migrate(small_legacy, f"sqlite:///{tmp_path / 'iops.db'}")
    migrate(small_legacy, f"sqlite:///{tmp_path / 'iops2.db'}", dry_run=True)
    assert file_hash(legacy_path) == before


def test_interrupted_run_resumes_to_the_same_target(small_legacy, tmp_path):
    straight = f"sqlite:///{tmp_path / 'straight.db'}"
    migrate(small_legacy, straight, batch_size=2)

    resumed = f"sqlite:///{tmp_path / 'resumed.db'}"
    first = migrate(small_legacy, resumed, batch_size=2, stop_after_batches=3)
    assert first.state == "interrupted"
    second = migrate(small_legacy, resumed, batch_size=2, resume=first.run_id)
    assert second.state == "complete" and second.run_id == first.run_id and second.balanced
    assert table_digests(resumed) == table_digests(straight)
    # Counts continue across the interruption: the same totals as the uninterrupted run.
    straight_counts = json.loads(rows(straight, "mig_run")[0]["counts"])
    resumed_counts = json.loads(rows(resumed, "mig_run")[0]["counts"])
    assert resumed_counts == straight_counts


def test_resume_of_unknown_or_complete_run_is_a_usage_error(small_legacy, tmp_path):
    target = f"sqlite:///{tmp_path / 'iops.db'}"
    done = migrate(small_legacy, target)
    runner = CliRunner()
    res = runner.invoke(app, ["migrate", "--legacy", small_legacy, "--target", target, "--resume", "42"])
    assert res.exit_code == 2 and "no run 42" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["migrate", "--legacy", small_legacy, "--target", target, "--resume", str(done.run_id)])
    assert res.exit_code == 2 and "complete" in res.output


def test_cli_migrate_prints_run_id_and_invariant(small_legacy, tmp_path):
    target = f"sqlite:///{tmp_path / 'iops.db'}"
    res = CliRunner().invoke(app, ["migrate", "--legacy", small_legacy, "--target", target, "--batch-size", "2"])
    assert res.exit_code == 0, res.output
    assert "run 1 complete" in res.output
    assert "invariant" in res.output and "BROKEN" not in res.output
    assert "UNMAPPED_OFFENCE" in res.output


def test_cli_errors_are_one_line(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["migrate", "--legacy", f"sqlite:///{tmp_path / 'nope.db'}",
                              "--target", f"sqlite:///{tmp_path / 't.db'}"])
    assert res.exit_code == 2 and "legacy store not found" in res.output
    res = runner.invoke(app, ["migrate", "--legacy", "nonsense://", "--target", f"sqlite:///{tmp_path / 't.db'}"])
    assert res.exit_code == 2 and "Traceback" not in res.output
    res = runner.invoke(app, ["migrate", "--legacy", "postgresql+psycopg://u:secret@127.0.0.1:1/x",
                              "--target", f"sqlite:///{tmp_path / 't.db'}"])
    assert res.exit_code == 2 and "secret" not in res.output and len(res.output.strip().splitlines()) == 1


# --- end to end on generated stores, across engines ------------------------------------

E2E_CRIMES = 3000


def _expected_by_pk(legacy_url: str) -> dict[str, dict[tuple, dict]]:
    """Map the legacy store independently of the engine's writes: table → pk → row."""
    from core.db import open_legacy
    from mappings.outcome import MappingContext
    from mappings.reference import load_reference
    from migrate.accepted import AcceptedKeys

    legacy = open_legacy(legacy_url)
    tables = schema.legacy_tables(legacy)
    accepted = AcceptedKeys()
    out: dict[str, dict[tuple, dict]] = {name: {} for name in IOPS_TABLES}
    # Fallback timestamps are not compared; the date matters only for "DOB after the run date".
    started = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    ctx = MappingContext(load_reference(), started, accepted.has_person, accepted.has_crime)
    with legacy.connect() as conn:
        for spec in ENTITIES:
            t = tables[spec.legacy_table]
            batch = [dict(r) for r in conn.execute(sa.select(t).order_by(*[t.c[k] for k in spec.key_columns])).mappings()]
            for m in spec.map_batch(batch, ctx):
                if m.accepted:
                    accepted.add(spec.name, m.legacy_key)
                    for table_name, row in m.rows.items():
                        key = tuple(row[k] for k in schema.TARGET_KEYS[table_name])
                        out[table_name].setdefault(key, row)
    legacy.dispose()
    return out


@pytest.mark.slow
def test_end_to_end_every_target_row_is_the_mapping_of_its_legacy_row(pair, make_store):
    from synth.generate import generate

    legacy_backend, target_backend = pair
    legacy = make_store(legacy_backend, "legacy")
    target = make_store(target_backend, "target")
    generate(legacy, crimes=E2E_CRIMES, seed=11)

    result = migrate(legacy, target, batch_size=500)
    assert result.state == "complete" and result.balanced
    assert result.counts["crime"].rejected > 0 and result.counts["crime"].excluded > 0  # quirks were there

    expected = _expected_by_pk(legacy)
    engine = sa.create_engine(target)
    with engine.connect() as conn:
        for table_name in IOPS_TABLES:
            table = schema.target_metadata.tables[table_name]
            got = {tuple(r[k] for k in schema.TARGET_KEYS[table_name]): dict(r)
                   for r in conn.execute(sa.select(table)).mappings()}
            assert set(got) == set(expected[table_name]), table_name
            skip = {"created_at", "updated_at"} if table_name == "person" else set()
            for key, row in got.items():
                want = expected[table_name][key]
                cols = [c for c in want if c not in skip]
                assert row_digest(row, cols) == row_digest(want, cols), (table_name, key)
    engine.dispose()

    again = migrate(legacy, target, batch_size=700)
    assert all(c.written == 0 and c.updated == 0 for c in again.counts.values())
    assert all(c.balanced for c in again.counts.values())


def test_values_no_engine_can_store_are_rejected_not_fatal(tmp_path, make_store):
    """A NUL in free text and a beat that grows past text(6) when upper-cased: PostgreSQL
    would abort the batch; the mapping rejects the record instead, on every engine."""
    legacy = make_legacy(
        f"sqlite:///{tmp_path / 'opus.db'}",
        crimes=[{"crime_no": "CR/000001/18", "mo_text": "BROKE IN\x00 VIA REAR"},
                {"crime_no": "CR/000002/18", "beat": "straße"},
                {"crime_no": "CR/000003/18"}],
    )
    target = make_store("postgresql", "target")
    result = migrate(legacy, target)
    assert result.state == "complete" and result.balanced
    assert result.counts["crime"].rejected_by == {"INVALID_CHARACTER": 1, "VALUE_TOO_LONG": 1}
    assert result.counts["crime"].written == 1
