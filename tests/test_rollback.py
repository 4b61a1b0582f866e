"""Rollback: dry runs that find every conflict, and rollbacks that restore the target exactly.

Legacy stores are small hand-made OPUS stores (``tests/opus_fixture.py``); the target runs on
every backend. "Exactly" is checked with an order-independent digest of every row of every
table (and mig_xref) before the run and after its rollback.
"""

from __future__ import annotations

import datetime as dt
import json
import stat
import time
import uuid
from pathlib import Path

import openpyxl
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from core import schema
from core.errors import RunInProgress, RunNotFound
from main import app
from mappings import ids
from migrate import rollback as rb
from migrate.engine import migrate
from reports.rollback_report import write_rollback_report
from tests.opus_fixture import make_legacy, update_legacy, table_digests

ALL_TABLES = tuple(schema.target_metadata.tables)  # iOPS and mig_ tables
INTEL_TEXT = "SUBJECT SEEN DEALING NEAR PICCADILLY GARDENS"
SECRET_TEXT = "SECRET SOURCE SAYS THE LOCKUP ON DALE STREET"


# ------------------------------------------------------------------------------ fixtures


def opus_store(url: str) -> str:
    """A small OPUS store: 8 crimes, 6 nominals (one with no LAST_UPD), 4 links, 3 intel entries."""
    return make_legacy(
        url,
        crimes=[{"crime_no": f"CR/{i:06d}/18"} for i in range(1, 8)]
        + [{"crime_no": "CR/000008/18", "grid_e": None, "grid_n": None, "pcode": None}],
        nominals=[{"nom_id": i, "surname": f"SURNAME{i}"} for i in range(1, 5)]
        + [{"nom_id": 5, "surname": "NOUPD", "last_upd": None}, {"nom_id": 6, "surname": "SIXTH"}],
        links=[{"crime_no": "CR/000001/18", "nom_id": 1, "role": "V"},
               {"crime_no": "CR/000002/18", "nom_id": 2, "role": "S"},
               {"crime_no": "CR/000003/18", "nom_id": 3, "role": "W"},
               {"crime_no": "CR/000004/18", "nom_id": 1, "role": "O"}],
        intel=[{"intel_no": "IN/000001/18", "subj_nom_id": 1, "int_text": INTEL_TEXT},
               {"intel_no": "IN/000002/18", "grid_e": None, "grid_n": None},
               {"intel_no": "IN/000003/18", "subj_nom_id": 5, "handling": "4"}],
    )


def change_legacy(url: str) -> None:
    """What changes in OPUS between run 1 and run 2: updates, a gained location, new records."""
    update_legacy(url, "nominal", {"nom_id": 2}, surname="JONES")
    update_legacy(url, "nominal", {"nom_id": 5}, forenames="CHANGED")  # its timestamps are the run's start
    update_legacy(url, "crime", {"crime_no": "CR/000003/18"}, mo_text="CHANGED MO", addr_line="1 NEW STREET")
    update_legacy(url, "intel", {"intel_no": "IN/000002/18"}, grid_e=384000, grid_n=397500)  # gains a location
    update_legacy(url, "intel", {"intel_no": "IN/000001/18"}, int_text=SECRET_TEXT)
    engine = sa.create_engine(url)
    tables = schema.legacy_tables(engine)
    with engine.begin() as conn:
        crime = {c.name: None for c in tables["crime"].columns}
        crime.update(crime_no="CR/000009/18", off_code="TFMV", rec_date="01/07/2018", rec_time="1000",
                     status="O", div="MC", grid_e=383000, grid_n=398000, last_upd="20180701100000")
        conn.execute(tables["crime"].insert(), [crime])
        # A new link to a person run 1 migrated: it depends on that person.
        conn.execute(tables["crime_nom"].insert(), [{"crime_no": "CR/000009/18", "nom_id": 6, "role": "V"}])
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def target_backend(request) -> str:
    """Conflict tests run on SQLite and PostgreSQL; exact restores (``backend``) on all three.

    ``make_store`` fails rather than skips a server test when OPUS2IOPS_REQUIRE_SERVERS=1.
    """
    return request.param


@pytest.fixture
def legacy(tmp_path) -> str:
    return opus_store(f"sqlite:///{tmp_path / 'opus.db'}")


snapshot = table_digests  # one definition, in tests/opus_fixture.py


def execute_sql(url: str, statement, params=None) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(statement, params or {})
    engine.dispose()


def scalar(url: str, statement):
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        value = conn.execute(statement).scalar()
    engine.dispose()
    return value


def index_names(engine) -> dict[str, list[str]]:
    inspector = sa.inspect(engine)
    return {t: sorted(ix["name"] for ix in inspector.get_indexes(t)) for t in schema.TARGET_TABLES}


def iops_crime(crime_ref: str = "IOPS-2026-00001") -> dict:
    """A crime an officer entered in iOPS after go-live."""
    now = dt.datetime(2026, 1, 5, 9, 30, tzinfo=dt.timezone.utc)
    return {"crime_id": str(uuid.uuid4()), "crime_ref": crime_ref, "legacy_ref": None, "ho_offence_code": "45/1",
            "offence_description": "Theft from a vehicle", "offence_group": "Theft", "police_uk_category": "vehicle-crime",
            "recorded_at": now, "committed_from": None, "committed_to": None, "location_id": None,
            "district_code": "E08000003", "status": "OPEN", "outcome_code": None, "mo_summary": "ENTERED IN IOPS",
            "oic_collar": "9999", "source_system": "IOPS", "created_at": now, "updated_at": now}


def iops_intel(subject_person_id: str | None, location_id: str | None = None) -> dict:
    now = dt.datetime(2026, 1, 6, 9, 30, tzinfo=dt.timezone.utc)
    return {"intel_id": str(uuid.uuid4()), "intel_ref": "IOPS-INT-00001", "legacy_ref": None, "submitted_at": now,
            "source_evaluation": "2", "intelligence_assessment": "B", "handling_code": "P", "handling_conditions": None,
            "grading_review_required": False, "subject_person_id": subject_person_id, "intel_text": "NEW INTEL",
            "location_id": location_id, "district_code": None, "review_date": None, "officer_collar": "9999",
            "source_system": "IOPS", "created_at": now, "updated_at": now}


def run_twice(legacy: str, target: str, *, later_second: bool = False) -> tuple[int, int, dict, dict]:
    """Run 1, change OPUS, run 2 (``later_second``: so that run-start timestamps differ)."""
    first = migrate(legacy, target, batch_size=3)
    after_first = snapshot(target, ALL_TABLES)
    change_legacy(legacy)
    if later_second:
        time.sleep(1.1)
    second = migrate(legacy, target, batch_size=3)
    assert second.counts["person"].updated == 2 and second.counts["crime"].written == 1
    return first.run_id, second.run_id, after_first, snapshot(target, ALL_TABLES)


def rollback(target: str, run_id: int, *, execute: bool = False, out_dir: Path, **limits):
    """The rollback as the command line does it: the library's result, its report written into ``out_dir``."""
    with rb.rollback(target, run_id, execute=execute, **limits) as result:
        if result.mode != "already_rolled_back":
            write_rollback_report(result, out_dir)
    return result


def refused(target: str, run_id: int, out_dir: Path):
    """An execution refused for conflicts: nothing done, mode ``refused``, exit code 1, report written."""
    result = rollback(target, run_id, execute=True, out_dir=out_dir)
    assert result.mode == "refused" and result.exit_code == 1 and result.conflict_count
    return result


def kinds(result) -> dict[str, int]:
    return dict(result.conflict_counts)


# ------------------------------------------------------------------------------ exact restores


def test_rollback_restores_the_target_exactly(backend, make_store, legacy, tmp_path):
    """Rows entered in iOPS before the run stay; everything the run wrote goes."""
    target = make_store(backend, "target")
    engine = sa.create_engine(target)
    schema.create_target_schema(engine)
    with engine.begin() as conn:
        conn.execute(schema.crime.insert(), [iops_crime()])
    indexes_before = index_names(engine)
    engine.dispose()
    before = snapshot(target)

    run = migrate(legacy, target, batch_size=3)
    assert snapshot(target) != before

    dry = rollback(target, run.run_id, out_dir=tmp_path / "dry")
    assert dry.exit_code == 0 and dry.conflict_count == 0 and dry.mode == "dry_run"
    assert dry.tables["crime"].delete == 8 and dry.tables["person"].delete == 6
    assert dry.tables["crime_person"].delete == 4 and dry.tables["intelligence_report"].delete == 3
    assert dry.tables["location"].delete == 8 + 2  # every crime, and the two gridded intel entries
    assert dry.restore_count == 0

    done = rollback(target, run.run_id, execute=True, out_dir=tmp_path / "exec")
    assert done.exit_code == 0 and done.mode == "executed"
    assert done.xref.deleted == 8 + 6 + 4 + 3 and done.xref.restored == 0
    assert snapshot(target) == before
    engine = sa.create_engine(target)
    assert index_names(engine) == indexes_before  # the indexes built for the deletes are gone
    engine.dispose()
    assert scalar(target, sa.select(sa.func.count()).select_from(schema.mig_xref)) == 0
    assert scalar(target, sa.select(schema.mig_run.c.state).where(schema.mig_run.c.run_id == run.run_id)) == "rolled_back"
    assert scalar(target, sa.select(sa.func.count()).select_from(schema.mig_lock)) == 0

    # A second rollback of the same run is a no-op that says so.
    again = rollback(target, run.run_id, execute=True, out_dir=tmp_path / "again")
    assert again.mode == "already_rolled_back" and again.exit_code == 0

    # And the records can be migrated again, as if never migrated.
    rerun = migrate(legacy, target, batch_size=3)
    assert rerun.counts["crime"].written == 8 and rerun.balanced


def test_rollback_of_a_later_run_returns_to_the_state_after_the_earlier_one(backend, make_store, legacy, tmp_path):
    target = make_store(backend, "target")
    run1, run2, after_first, after_second = run_twice(legacy, target, later_second=True)

    dry = rollback(target, run2, out_dir=tmp_path / "dry", page=3)  # many pages, many IN lists, keyset paging
    assert dry.exit_code == 0, dry.conflicts
    # Run 2 updated two persons, a crime and its location, two intel entries; inserted a crime,
    # its location, a link, and the location intel 2 gained.
    assert (dry.tables["person"].restore, dry.tables["crime"].restore, dry.tables["location"].restore) == (2, 1, 1)
    assert dry.tables["intelligence_report"].restore == 2
    assert (dry.tables["crime"].delete, dry.tables["location"].delete, dry.tables["crime_person"].delete) == (1, 2, 1)
    assert snapshot(target, ALL_TABLES) == after_second  # the dry run wrote nothing

    done = rollback(target, run2, execute=True, out_dir=tmp_path / "exec", page=3)
    assert done.exit_code == 0
    assert done.xref.restored == 2 + 1 + 2 and done.xref.deleted == 2 and done.xref.recheck == 0
    # Every iOPS table as after run 1 — before-images restored — and mig_xref too: the previous
    # digests are recomputed exactly (including the run-start timestamps of nominal 5).
    assert snapshot(target) == {k: after_first[k] for k in schema.TARGET_TABLES}
    assert snapshot(target, ["mig_xref"])["mig_xref"] == after_first["mig_xref"]

    # The legacy changes are still there: a new run re-applies them as updates and inserts.
    third = migrate(legacy, target, batch_size=3)
    assert third.counts["person"].updated == 2 and third.counts["crime"].written == 1
    assert third.counts["intelligence"].updated == 2


def test_after_a_rollback_an_unchanged_legacy_store_migrates_as_unchanged(make_store, tmp_path):
    """Proof that the restored xref digests are the previous ones: nothing is re-written."""
    legacy = opus_store(f"sqlite:///{tmp_path / 'opus.db'}")
    target = make_store("sqlite", "target")
    migrate(legacy, target, batch_size=3)
    after_first = snapshot(target)
    pristine = tmp_path / "pristine.db"
    pristine.write_bytes((tmp_path / "opus.db").read_bytes())
    change_legacy(legacy)
    time.sleep(1.1)
    second = migrate(legacy, target, batch_size=3)
    rollback(target, second.run_id, execute=True, out_dir=tmp_path / "rb")
    third = migrate(f"sqlite:///{pristine}", target, batch_size=3)
    assert all(c.written == 0 and c.updated == 0 for c in third.counts.values()), third.counts
    assert snapshot(target) == after_first


def test_rollback_leaves_no_temporary_index_behind_in_this_process(make_store, legacy, tmp_path):
    """The indexes a rollback builds for its deletes belong to that rollback: a later target
    created in the same process gets none of them, and rolls back in its turn."""
    for n in (1, 2):
        target = make_store("sqlite", f"target{n}")
        run = migrate(legacy, target, batch_size=3)
        rollback(target, run.run_id, execute=True, out_dir=tmp_path / f"rb{n}")
        engine = sa.create_engine(target)
        names = {ix["name"] for t in schema.TARGET_TABLES for ix in sa.inspect(engine).get_indexes(t)}
        engine.dispose()
        assert not [name for name in names if name.startswith("tmp_rollback")]
    assert not [ix.name for t in schema.target_metadata.tables.values() for ix in t.indexes
                if ix.name.startswith("tmp_rollback")]


def test_an_interrupted_run_can_be_rolled_back(make_store, legacy, tmp_path):
    target = make_store("sqlite", "target")
    before = snapshot(target)
    broken = migrate(legacy, target, batch_size=2, stop_after_batches=3)
    assert broken.state == "interrupted"
    done = rollback(target, broken.run_id, execute=True, out_dir=tmp_path / "rb")
    assert done.exit_code == 0 and done.delete_count > 0
    after = snapshot(target)
    assert all(after[t].endswith(":0") for t in schema.TARGET_TABLES) and before["crime"] is None


# ------------------------------------------------------------------------------ conflicts


def test_a_generated_store_round_trips_and_officers_work_is_found(target_backend, make_store, tmp_path):
    """The project's generator (every OPUS quirk: rejects, exclusions, odd dates) end to end."""
    from synth.generate import generate

    legacy = f"sqlite:///{tmp_path / 'generated.db'}"
    generate(legacy, crimes=400, seed=11)
    target = make_store(target_backend, "target")
    run = migrate(legacy, target, batch_size=97)
    written = sum(c.rows_written for c in run.counts.values())
    crime = schema.crime

    # After go-live: officers edit five migrated crimes and link a migrated person to a new crime.
    engine = sa.create_engine(target)
    with engine.begin() as conn:
        originals = [dict(r) for r in conn.execute(
            sa.select(crime.c.crime_id, crime.c.status, crime.c.oic_collar).order_by(crime.c.crime_ref).limit(5)
        ).mappings()]
        edited = [r["crime_id"] for r in originals]
        conn.execute(crime.update().where(crime.c.crime_id.in_(edited)).values(status="CANCELLED", oic_collar="7777"))
        person_id = conn.execute(sa.select(schema.person.c.person_id).limit(1)).scalar_one()
        new_crime = iops_crime()
        conn.execute(crime.insert(), [new_crime])
        conn.execute(schema.crime_person.insert(), [{"crime_id": new_crime["crime_id"], "person_id": person_id,
                                                     "role": "SUSPECT"}])
    engine.dispose()

    dry = rollback(target, run.run_id, out_dir=tmp_path / "dry")
    assert kinds(dry) == {"CHANGED_SINCE": 5, "DEPENDENT_ROW": 1}
    assert {c.row_key for c in dry.conflicts if c.kind == "CHANGED_SINCE"} == set(edited)
    assert all(not c.fields_proven for c in dry.conflicts)  # inserted rows: the ledger has only a digest
    assert dry.delete_count == written and dry.restore_count == 0

    # The new link is removed: the edits still block.
    execute_sql(target, schema.crime_person.delete().where(schema.crime_person.c.crime_id == new_crime["crime_id"]))
    refused(target, run.run_id, tmp_path / "exec")

    # The edits are undone: the rollback goes through, and only the officers' own crime is left.
    engine = sa.create_engine(target)
    with engine.begin() as conn:
        for r in originals:
            conn.execute(crime.update().where(crime.c.crime_id == r["crime_id"])
                         .values(status=r["status"], oic_collar=r["oic_collar"]))
    engine.dispose()
    done = rollback(target, run.run_id, execute=True, out_dir=tmp_path / "exec2")
    assert done.delete_count == written
    assert scalar(target, sa.select(crime.c.crime_id)) == new_crime["crime_id"]
    for table in ("location", "person", "crime_person", "intelligence_report"):
        assert scalar(target, sa.select(sa.func.count()).select_from(schema.target_metadata.tables[table])) == 0


def test_an_edited_crime_is_a_conflict_until_the_edit_is_undone(target_backend, make_store, legacy, tmp_path):
    target = make_store(target_backend, "target")
    run = migrate(legacy, target, batch_size=3)
    crime_id = ids.crime_id("CR/000002/18")
    crime = schema.crime
    original = scalar(target, sa.select(crime.c.mo_summary).where(crime.c.crime_id == crime_id))
    execute_sql(target, crime.update().where(crime.c.crime_id == crime_id).values(mo_summary="OFFICER ADDED DETAIL"))
    edited = snapshot(target, ALL_TABLES)

    dry = rollback(target, run.run_id, out_dir=tmp_path / "dry")
    assert dry.exit_code == 1 and kinds(dry) == {"CHANGED_SINCE": 1}
    (conflict,) = dry.conflicts
    assert (conflict.table, conflict.row_key, conflict.legacy_key) == ("crime", crime_id, "CR/000002/18")
    assert conflict.run_action == "insert" and "inserted" in conflict.detail
    assert dry.tables["crime"].conflicts == 1

    refusal = refused(target, run.run_id, tmp_path / "exec")
    assert [p.name for p in refusal.report_files] == ["rollback.json", "rollback.xlsx"]
    assert json.loads(refusal.report_files[0].read_text(encoding="utf-8"))["mode"] == "refused"
    assert snapshot(target, ALL_TABLES) == edited  # refused means nothing changed, not even the run state

    execute_sql(target, crime.update().where(crime.c.crime_id == crime_id).values(mo_summary=original))
    assert rollback(target, run.run_id, out_dir=tmp_path / "dry2").exit_code == 0
    assert rollback(target, run.run_id, execute=True, out_dir=tmp_path / "exec2").mode == "executed"


def test_an_edit_to_an_updated_row_names_the_edited_field(make_store, legacy, tmp_path):
    """For a row the run updated, the before-image lets the digest prove which field was edited."""
    target = make_store("sqlite", "target")
    _, run2, _, _ = run_twice(legacy, target)
    person_id = ids.person_id(2)  # run 2 changed its family name
    execute_sql(target, schema.person.update().where(schema.person.c.person_id == person_id)
                .values(ethnicity_code="IC3"))
    dry = rollback(target, run2, out_dir=tmp_path / "dry")
    assert kinds(dry) == {"CHANGED_SINCE": 1}
    (conflict,) = dry.conflicts
    assert conflict.fields_proven and [f.field for f in conflict.fields] == ["ethnicity_code"]
    assert (conflict.fields[0].current, conflict.fields[0].other) == ("IC3", "IC1")


def test_rows_added_in_iops_that_depend_on_migrated_rows_are_conflicts(target_backend, make_store, legacy, tmp_path):
    target = make_store(target_backend, "target")
    run = migrate(legacy, target, batch_size=3)
    new_crime = iops_crime()
    person_id = ids.person_id(3)
    location_id = ids.location_id("crime", "CR/000001/18")
    link = {"crime_id": new_crime["crime_id"], "person_id": person_id, "role": "WITNESS"}
    intel = iops_intel(subject_person_id=person_id, location_id=location_id)
    engine = sa.create_engine(target)
    with engine.begin() as conn:
        conn.execute(schema.crime.insert(), [new_crime])
        conn.execute(schema.crime_person.insert(), [link])
        conn.execute(schema.intelligence_report.insert(), [intel])
    engine.dispose()
    with_new_work = snapshot(target, ALL_TABLES)

    dry = rollback(target, run.run_id, out_dir=tmp_path / "dry")
    assert dry.exit_code == 1 and kinds(dry) == {"DEPENDENT_ROW": 3}
    found = {(c.table, c.refers_to) for c in dry.conflicts}
    assert found == {("crime_person", f"person {person_id}"),
                     ("intelligence_report", f"person {person_id}"),
                     ("intelligence_report", f"location {location_id}")}
    assert all(c.written_by_run is None for c in dry.conflicts)
    assert any("entered in iOPS" in c.detail for c in dry.conflicts)

    refused(target, run.run_id, tmp_path / "exec")
    assert snapshot(target, ALL_TABLES) == with_new_work

    engine = sa.create_engine(target)
    with engine.begin() as conn:  # the officers' new work is re-pointed / removed
        conn.execute(schema.crime_person.delete())
        conn.execute(schema.intelligence_report.update()
                     .where(schema.intelligence_report.c.intel_id == intel["intel_id"])
                     .values(subject_person_id=None, location_id=None))
    engine.dispose()
    clean = rollback(target, run.run_id, out_dir=tmp_path / "dry2")
    assert clean.exit_code == 0, clean.conflicts
    done = rollback(target, run.run_id, execute=True, out_dir=tmp_path / "exec2")
    assert done.mode == "executed"
    # The officers' crime and intelligence stay; every migrated row is gone.
    assert scalar(target, sa.select(sa.func.count()).select_from(schema.crime)) == 1
    assert scalar(target, sa.select(sa.func.count()).select_from(schema.intelligence_report)) == 1
    assert scalar(target, sa.select(sa.func.count()).select_from(schema.person)) == 0


def test_later_runs_must_be_rolled_back_first(target_backend, make_store, legacy, tmp_path):
    target = make_store(target_backend, "target")
    before = snapshot(target)
    run1, run2, after_first, _ = run_twice(legacy, target)

    dry = rollback(target, run1, out_dir=tmp_path / "dry")
    assert dry.exit_code == 1
    # Run 2 updated 2 persons, a crime, its location and 2 intel entries that run 1 inserted;
    # its new link depends on a person run 1 inserted.
    assert kinds(dry) == {"DEPENDENT_ROW": 1, "LATER_RUN": 6}
    assert dry.runs_to_undo_first == [run2]
    later = [c for c in dry.conflicts if c.kind == "LATER_RUN"]
    assert all(c.later_runs == (run2,) for c in later)
    person = next(c for c in later if c.row_key == ids.person_id(2))
    assert person.fields_proven and [f.field for f in person.fields] == ["family_name"]
    dependent = next(c for c in dry.conflicts if c.kind == "DEPENDENT_ROW")
    assert dependent.table == "crime_person" and dependent.written_by_run == run2
    assert f"roll back run {run2} first" in dependent.detail

    refused(target, run1, tmp_path / "exec")

    rollback(target, run2, execute=True, out_dir=tmp_path / "exec2")
    assert snapshot(target) == {k: after_first[k] for k in schema.TARGET_TABLES}
    clean = rollback(target, run1, out_dir=tmp_path / "dry3")
    assert clean.exit_code == 0, clean.conflicts
    rollback(target, run1, execute=True, out_dir=tmp_path / "exec3")
    after = snapshot(target)
    assert before["crime"] is None and all(after[t].endswith(":0") for t in schema.TARGET_TABLES)


def test_deleted_rows_updated_rows_conflict_inserted_rows_are_notices(make_store, legacy, tmp_path):
    target = make_store("sqlite", "target")
    _, run2, _, _ = run_twice(legacy, target)
    new_link = {"crime_id": ids.crime_id("CR/000009/18"), "person_id": ids.person_id(6), "role": "VICTIM"}
    execute_sql(target, schema.crime_person.delete().where(schema.crime_person.c.crime_id == new_link["crime_id"]))
    dry = rollback(target, run2, out_dir=tmp_path / "dry")
    assert dry.exit_code == 0 and dry.notice_count == 1
    assert dry.notices[0].kind == "ALREADY_DELETED" and dry.notices[0].table == "crime_person"
    assert dry.tables["crime_person"].already_deleted == 1 and dry.tables["crime_person"].delete == 0

    execute_sql(target, schema.person.delete().where(schema.person.c.person_id == ids.person_id(2)))
    dry = rollback(target, run2, out_dir=tmp_path / "dry2")
    assert kinds(dry) == {"DELETED_SINCE": 1}
    assert dry.conflicts[0].row_key == ids.person_id(2)


# ------------------------------------------------------------------------------ never writes


def test_a_dry_run_never_writes_to_the_target(backend, make_store, legacy, tmp_path):
    target = make_store(backend, "target")
    run1, run2, _, _ = run_twice(legacy, target)
    execute_sql(target, schema.crime.update().where(schema.crime.c.crime_id == ids.crime_id("CR/000001/18"))
                .values(oic_collar="1111"))
    before = snapshot(target, ALL_TABLES)
    for run_id in (run1, run2):
        rollback(target, run_id, out_dir=tmp_path / f"dry{run_id}")
    assert snapshot(target, ALL_TABLES) == before


def test_report_files_are_private_complete_and_hold_no_intelligence_text(make_store, legacy, tmp_path):
    target = make_store("sqlite", "target")
    run1, run2, _, _ = run_twice(legacy, target)
    out = tmp_path / "report"
    dry = rollback(target, run1, out_dir=out)  # conflicts: run 2 updated intel 1's text
    json_path, xlsx_path = out / "rollback.json", out / "rollback.xlsx"
    assert dry.report_files == [json_path, xlsx_path]
    for path in (json_path, xlsx_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in out.iterdir()) == ["rollback.json", "rollback.xlsx"]  # no spools left

    doc = json.loads(json_path.read_text(encoding="utf-8"))
    assert doc["mode"] == "dry_run" and doc["result"] == "7 CONFLICTS"
    assert doc["summary"]["conflicts_by_kind"] == {"DEPENDENT_ROW": 1, "LATER_RUN": 6}
    assert len(doc["conflicts"]) == 7 and len(doc["delete"]) == dry.delete_count
    assert doc["summary"]["tables"]["crime"]["delete"] == 8

    wb = openpyxl.load_workbook(xlsx_path)
    assert wb.sheetnames == ["Summary", "Conflicts", "Notices"] + [f"Delete {t}" for t in schema.TARGET_TABLES]
    links = {c.hyperlink.location for row in wb["Summary"].iter_rows() for c in row if c.hyperlink}
    assert {"'Conflicts'!A1", "'Delete crime'!A1", "'Delete intelligence_report'!A1"} <= links
    delete_crime = wb["Delete crime"]
    assert delete_crime.max_row == 1 + 8 and delete_crime.freeze_panes == "A2"
    assert delete_crime["A1"].value == "row_key" and delete_crime["D1"].hyperlink.location == "'Summary'!A1"
    conflicts = wb["Conflicts"]
    assert conflicts.freeze_panes == "A2" and conflicts.auto_filter.ref == "A1:K8"
    assert conflicts.column_dimensions["K"].width >= 40

    # Run 2 changed intel 1's text: the later-run conflict names the field, shows no text.
    rollback(target, run2, out_dir=out)
    text = json_path.read_text(encoding="utf-8")
    assert SECRET_TEXT not in text and INTEL_TEXT not in text
    wb = openpyxl.load_workbook(xlsx_path)  # the file is zipped: look at the cells, not the bytes
    cells = [str(c.value) for ws in wb.worksheets for row in ws.iter_rows() for c in row if c.value is not None]
    assert not [v for v in cells if SECRET_TEXT in v or INTEL_TEXT in v]
    assert any(v.startswith("intel_text: 'sha256:") for v in cells)
    doc = json.loads(json_path.read_text(encoding="utf-8"))
    intel = [r for r in doc["restore"] if r["table"] == "intelligence_report" and r["legacy_key"] == "IN/000001/18"]
    assert intel and intel[0]["fields"][0]["field"] == "intel_text"
    assert intel[0]["fields"][0]["restored"].startswith("sha256:")


# ------------------------------------------------------------------------------ refusals


def test_unknown_runs_and_running_runs_are_refused(make_store, legacy, tmp_path):
    target = make_store("sqlite", "target")
    with pytest.raises(RunNotFound):
        rollback(target, 1, out_dir=tmp_path / "r")  # no such store: and it is not created
    assert not Path(target.removeprefix("sqlite:///")).exists()
    run = migrate(legacy, target, batch_size=3)
    with pytest.raises(RunNotFound) as missing:
        rollback(target, run.run_id + 41, out_dir=tmp_path / "r")
    assert missing.value.exit_code == 2

    # A run whose process is alive and holds the target is still running.
    import os

    from migrate.lock import HOST

    now = dt.datetime.now(dt.timezone.utc)
    execute_sql(target, schema.mig_run.update().values(state="running"))
    execute_sql(target, schema.mig_lock.insert().values(lock_id=1, run_id=run.run_id, purpose="migrate", host=HOST,
                                                        pid=os.getppid(), acquired_at=now, heartbeat_at=now))
    with pytest.raises(RunInProgress):
        rollback(target, run.run_id, out_dir=tmp_path / "r")


# ------------------------------------------------------------------------------ command line


def test_rollback_command_line_exit_codes(target_backend, make_store, legacy, tmp_path):
    target = make_store(target_backend, "target")
    run = migrate(legacy, target, batch_size=3)
    runner = CliRunner()
    out = str(tmp_path / "cli")

    res = runner.invoke(app, ["rollback", str(run.run_id), "--target", target, "--out", out])
    assert res.exit_code == 0, res.output
    assert "DRY RUN" in res.output and "CLEAN" in res.output and "rollback.xlsx" in res.output

    execute_sql(target, schema.person.update().where(schema.person.c.person_id == ids.person_id(1))
                .values(given_names="EDITED"))
    res = runner.invoke(app, ["rollback", str(run.run_id), "--target", target, "--out", out])
    assert res.exit_code == 1 and "CHANGED_SINCE" in res.output

    res = runner.invoke(app, ["rollback", str(run.run_id), "--target", target, "--out", out, "--execute"])
    assert res.exit_code == 1 and "NOT rolled back" in res.output and "Traceback" not in res.output

    res = runner.invoke(app, ["rollback", "999", "--target", target, "--out", out])
    assert res.exit_code == 2 and "no run 999" in res.output
    assert len(res.output.strip().splitlines()) == 1 and "Traceback" not in res.output

    execute_sql(target, schema.person.update().where(schema.person.c.person_id == ids.person_id(1))
                .values(given_names="JOHN"))
    res = runner.invoke(app, ["rollback", str(run.run_id), "--target", target, "--out", out, "--execute"])
    assert res.exit_code == 0 and "ROLLED BACK" in res.output
    res = runner.invoke(app, ["rollback", str(run.run_id), "--target", target, "--out", out, "--execute"])
    assert res.exit_code == 0 and "already rolled back" in res.output


# ------------------------------------------------------------------------------ values


@pytest.mark.parametrize("column", [c for t in schema.TARGET_TABLES for c in schema.target_metadata.tables[t].columns],
                         ids=lambda c: f"{c.table.name}.{c.name}")
def test_canonical_values_convert_back_to_their_column_types(column):
    from core.digest import canonical

    samples = {
        "UTCDateTime": dt.datetime(2019, 3, 31, 0, 30, 5, tzinfo=dt.timezone.utc),
        "Date": dt.date(1980, 2, 29),
        "Boolean": True,
        "Integer": 384000,
        "Numeric": 53.480123,
        "String": "O'BRIEN | =SUM(A1)",
        "Text": "line one\nline two",
    }
    value = samples[type(column.type).__name__]
    assert rb.from_canonical(column.type, canonical(value)) == value
    assert rb.from_canonical(column.type, None) is None


# ------------------------------------------------------------------------------ the result and its report


def test_the_migration_package_writes_no_report_and_imports_nothing_from_reports(make_store, legacy, tmp_path,
                                                                                 monkeypatch):
    """Results are data; reports/ renders them. A dry run through the library writes no file."""
    import ast

    package = Path(rb.__file__).parent
    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not [n for n in names if n == "reports" or n.startswith("reports.")], path.name

    target = make_store("sqlite", "target")
    run = migrate(legacy, target, batch_size=3)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    with rb.rollback(target, run.run_id) as dry:
        assert dry.mode == "dry_run" and dry.report_files == []
    assert list(cwd.iterdir()) == []  # no ./rollback-report/, no spool


def test_records_stream_every_row_beyond_what_the_result_keeps_in_memory(make_store, legacy, tmp_path):
    # The lists keep two; the records keep all, and move to their anonymous file at once.
    limits = {"kept_in_memory": 2, "records_in_memory": 64}
    target = make_store("sqlite", "target")
    run1, run2, _, _ = run_twice(legacy, target)
    with rb.rollback(target, run1, **limits) as dry:
        conflicts, deletes = list(dry.records.conflicts()), list(dry.records.deletes())
        assert len(dry.conflicts) == 2 and len(conflicts) == dry.conflict_count == 7
        assert conflicts[:2] == dry.conflicts and all(isinstance(c, rb.Conflict) for c in conflicts)
        assert len(deletes) == dry.delete_count and {p.action for p in deletes} == {"delete"}
        assert list(dry.records.restores()) == []  # run 1 inserted everything
        # Readers keep their own place: two at once read the same rows.
        first, second = dry.records.deletes(), dry.records.deletes()
        assert [(a, b) for a, b in zip(first, second) if a != b] == []
        paths = write_rollback_report(dry, tmp_path / "report")
    doc = json.loads(paths[0].read_text(encoding="utf-8"))
    assert len(doc["conflicts"]) == 7 and doc["conflicts"][6] == conflicts[6].to_json()
    assert doc["delete"] == [{"table": p.table, "row_key": p.row_key, "legacy_key": p.legacy_key, "record": p.record} for p in deletes]
    with rb.rollback(target, run2, **limits) as dry2:
        restores = list(dry2.records.restores())
        assert len(restores) == dry2.restore_count > 0 and all(p.action == "restore" for p in restores)
