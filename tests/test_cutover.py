"""Delta runs (cutover.md): every row of the decision table, with the invariant's counts, on
every target engine; officers' work in iOPS survives re-runs; take-opus and stop; records
deleted in OPUS are reported, never deleted; a delta run rolls back to the state before it."""

from __future__ import annotations

import sqlalchemy as sa

from core import schema
from mappings import ids
from migrate import rollback as rb
from migrate.engine import migrate
from tests.opus_fixture import make_legacy, table_digests, update_legacy

ALL_TABLES = tuple(schema.target_metadata.tables)
OFFICER = {"status": "FINALISED", "mo_summary": "OFFICER ADDED: SUSPECT CHARGED AT CUSTODY SUITE"}


def opus(url: str) -> str:
    return make_legacy(
        url,
        crimes=[{"crime_no": f"CR/{i:06d}/18", "mo_text": f"ORIGINAL MO {i}", "status": "O"} for i in range(1, 7)],
        nominals=[{"nom_id": i, "surname": f"SURNAME{i}"} for i in range(1, 4)],
        links=[{"crime_no": "CR/000001/18", "nom_id": 1, "role": "V"},
               {"crime_no": "CR/000002/18", "nom_id": 3, "role": "S"}],
        intel=[{"intel_no": "IN/000001/18", "subj_nom_id": 2}],
    )


def sql(url: str, *statements) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(statement)
    engine.dispose()


def crime_row(url: str, crime_no: str) -> dict | None:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        row = conn.execute(sa.select(schema.crime).where(schema.crime.c.crime_id == ids.crime_id(crime_no))).mappings().first()
    engine.dispose()
    return dict(row) if row else None


def conflicts(url: str, run_id: int) -> dict[str, dict]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(schema.mig_conflict).where(schema.mig_conflict.c.run_id == run_id)).mappings().all()
    engine.dispose()
    return {r["legacy_key"]: dict(r) for r in rows}


def officer_edits(url: str, crime_no: str) -> None:
    t = schema.crime
    sql(url, t.update().where(t.c.crime_id == ids.crime_id(crime_no)).values(**OFFICER))


def opus_changes(legacy: str) -> None:
    """Between the bulk load and the delta: CR/3 and CR/4 corrected, CR/5 flagged deleted,
    CR/6 removed, CR/7 new."""
    update_legacy(legacy, "crime", {"crime_no": "CR/000003/18"}, mo_text="CORRECTED MO 3")
    update_legacy(legacy, "crime", {"crime_no": "CR/000004/18"}, mo_text="CORRECTED MO 4")
    update_legacy(legacy, "crime", {"crime_no": "CR/000005/18"}, del_flag="Y")
    engine = sa.create_engine(legacy)
    tables = schema.legacy_tables(engine)
    with engine.begin() as conn:
        conn.execute(tables["crime"].delete().where(tables["crime"].c.crime_no == "CR/000006/18"))
        crime = {c.name: None for c in tables["crime"].columns}
        crime.update(crime_no="CR/000007/18", off_code="TFMV", rec_date="01/07/2018", rec_time="1000", status="O",
                     div="MC", grid_e=383000, grid_n=398000, last_upd="20180701100000")
        conn.execute(tables["crime"].insert(), [crime])
    engine.dispose()


def test_every_row_of_the_decision_table_and_the_officers_work_survives(backend, make_store, tmp_path):
    legacy = opus(f"sqlite:///{tmp_path / 'opus.db'}")
    target = make_store(backend, "target")
    first = migrate(legacy, target, batch_size=4)
    assert first.exit_code == 0 and first.counts["crime"].written == 6
    officer_edits(target, "CR/000002/18")  # OPUS unchanged, iOPS changed
    officer_edits(target, "CR/000004/18")  # both changed
    opus_changes(legacy)

    for n in range(2):  # the officers' work survives every re-run, and the conflict is reported each time
        delta = migrate(legacy, target, batch_size=4)
        c = delta.counts["crime"]
        assert (c.read, c.written, c.updated, c.unchanged, c.conflicted, c.excluded, c.rejected) == \
            (6, 1 - n, 1 - n, 2 + 2 * n, 1, 1, 0), c
        assert c.balanced and delta.balanced and c.deleted_in_opus == 2 and c.overwritten == 0
        assert delta.exit_code == 1
        assert crime_row(target, "CR/000003/18")["mo_summary"] == "CORRECTED MO 3"  # updated
        for crime_no in ("CR/000002/18", "CR/000004/18"):
            row = crime_row(target, crime_no)
            assert {k: row[k] for k in OFFICER} == OFFICER, crime_no
        assert crime_row(target, "CR/000005/18") is not None and crime_row(target, "CR/000006/18") is not None
        found = conflicts(target, delta.run_id)
        assert set(found) == {"CR/000004/18", "CR/000005/18", "CR/000006/18"}
        both = found["CR/000004/18"]
        assert (both["kind"], both["resolution"], both["target_table"], both["target_id"]) == \
            ("CHANGED_BOTH", "KEPT_IOPS", "crime", ids.crime_id("CR/000004/18"))
        assert "mo_summary" in both["opus_fields"].split(";")
        assert set(both["iops_fields"].split(";")) == {"status", "mo_summary"}
        assert {found[k]["kind"] for k in ("CR/000005/18", "CR/000006/18")} == {"DELETED_IN_OPUS"}
        assert {found[k]["resolution"] for k in ("CR/000005/18", "CR/000006/18")} == {"KEPT_IOPS"}
    # Nothing else was decided by mapping: only the changed, flagged and new crimes were mapped.
    assert delta.counts["crime"].mapped == 2  # the conflict and the flagged one, on the last run
    assert delta.counts["person"].mapped == 0 and delta.counts["crime_person"].mapped == 0


def test_a_no_op_rerun_maps_no_record(backend, make_store, tmp_path):
    legacy = opus(f"sqlite:///{tmp_path / 'opus.db'}")
    target = make_store(backend, "target")
    first = migrate(legacy, target, batch_size=2)
    assert sum(c.mapped for c in first.counts.values()) == sum(c.read for c in first.counts.values())
    before = table_digests(target, ALL_TABLES)
    again = migrate(legacy, target, batch_size=3)
    assert again.exit_code == 0 and again.balanced
    assert all(c.mapped == 0 and c.written == c.updated == 0 and c.unchanged == c.read
               for c in again.counts.values()), again.counts
    after = table_digests(target, ALL_TABLES)
    assert {t: after[t] for t in schema.TARGET_TABLES + ("mig_xref",)} == \
        {t: before[t] for t in schema.TARGET_TABLES + ("mig_xref",)}


def test_take_opus_overwrites_reports_it_and_rolls_back_to_the_officers_edit(backend, make_store, tmp_path):
    legacy = opus(f"sqlite:///{tmp_path / 'opus.db'}")
    target = make_store(backend, "target")
    migrate(legacy, target, batch_size=4)
    officer_edits(target, "CR/000004/18")
    opus_changes(legacy)
    before = table_digests(target, ALL_TABLES)

    delta = migrate(legacy, target, batch_size=4, on_conflict="take-opus")
    c = delta.counts["crime"]
    assert (c.conflicted, c.overwritten, c.updated, c.written) == (1, 1, 1, 1) and c.balanced
    assert delta.exit_code == 1
    row = crime_row(target, "CR/000004/18")
    assert row["mo_summary"] == "CORRECTED MO 4" and row["status"] != "FINALISED"
    assert conflicts(target, delta.run_id)["CR/000004/18"]["resolution"] == "OVERWRITTEN"

    # Rolling the delta back restores exactly the state before it: the officer's edit, the
    # rows it updated, no trace of its inserts, and the bookkeeping (mig_xref) as it was.
    with rb.rollback(target, delta.run_id) as dry:
        assert dry.conflict_count == 0 and dry.restore_count == 2 and dry.tables["crime"].delete == 1
        assert {p.record for p in dry.records.restores()} == {"crime CR/000003/18", "crime CR/000004/18"}
    with rb.rollback(target, delta.run_id, execute=True) as done:
        assert done.mode == "executed"
    after = table_digests(target, ALL_TABLES)
    keep = schema.TARGET_TABLES + ("mig_xref", "mig_xref_before", "mig_ledger")
    assert {t: after[t] for t in keep} == {t: before[t] for t in keep}


def test_rollback_dry_run_names_records_as_an_engineer_reads_them(make_store, tmp_path):
    legacy = opus(f"sqlite:///{tmp_path / 'opus.db'}")
    target = make_store("sqlite", "target")
    first = migrate(legacy, target, batch_size=4)
    officer_edits(target, "CR/000002/18")
    t = schema.person
    sql(target, t.update().where(t.c.person_id == ids.person_id(3)).values(ethnicity_code="IC9"))
    with rb.rollback(target, first.run_id) as dry:
        names = {c.record for c in dry.conflicts}
        assert names == {"crime CR/000002/18", "person NOM_ID 3 (SURNAME3, JOHN)"}, names
        assert all(c.to_json()["record"] for c in dry.conflicts)


def test_stop_writes_nothing_of_the_conflicting_batch_and_resumes(backend, make_store, tmp_path):
    legacy = opus(f"sqlite:///{tmp_path / 'opus.db'}")
    target = make_store(backend, "target")
    migrate(legacy, target, batch_size=10)
    officer_edits(target, "CR/000004/18")
    opus_changes(legacy)
    stopped = migrate(legacy, target, batch_size=10, on_conflict="stop")  # all crimes in one batch
    assert stopped.state == "interrupted" and stopped.exit_code == 1 and stopped.stopped_at_conflict == 1
    assert crime_row(target, "CR/000003/18")["mo_summary"] == "ORIGINAL MO 3"  # same batch: not updated
    assert crime_row(target, "CR/000007/18") is None  # nor inserted
    assert {k: v["resolution"] for k, v in conflicts(target, stopped.run_id).items()} == {"CR/000004/18": "STOPPED"}
    resumed = migrate(legacy, target, batch_size=10, resume=stopped.run_id)  # keep-iops now
    assert resumed.state == "complete" and resumed.counts["crime"].updated == 1
    assert crime_row(target, "CR/000003/18")["mo_summary"] == "CORRECTED MO 3"
    assert crime_row(target, "CR/000004/18")["status"] == "FINALISED"


def _rejects(url: str, run_id: int) -> list[tuple]:
    r = schema.mig_reject
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(r.c.entity, r.c.legacy_key, r.c.reason, r.c.field, r.c.value, r.c.raw_row)
                            .where(r.c.run_id == run_id)).all()
    engine.dispose()
    return sorted(tuple(row) for row in rows)


def test_a_reject_unchanged_in_opus_is_reported_again_without_being_mapped(backend, make_store, tmp_path):
    """A reject's verdict follows from its source digest (raw row, code tables, what its mapping asks
    about): a re-run reports it again, with the same mig_reject row, without mapping it — except
    DUPLICATE_KEY, which depends on another record: once that one is rejected, it migrates."""
    legacy = make_legacy(
        f"sqlite:///{tmp_path / 'opus.db'}",
        crimes=[{"crime_no": "CR/000001/18"}, {"crime_no": " CR/000002/18", "oic": "1111"},
                {"crime_no": "CR/000002/18", "oic": "2222"}, {"crime_no": "CR/000003/18", "off_code": "NOPE"}],
        nominals=[{"nom_id": 1, "surname": "GOOD"}, {"nom_id": 2, "surname": None}],
        links=[{"crime_no": "CR/000001/18", "nom_id": 2, "role": "V"},
               {"crime_no": "CR/000001/18", "nom_id": 1, "role": "X"}],
    )
    target = make_store(backend, "target")
    first = migrate(legacy, target, batch_size=2)
    assert first.counts["crime"].rejected_by == {"DUPLICATE_KEY": 1, "UNMAPPED_OFFENCE": 1}
    assert first.counts["person"].rejected_by == {"MISSING_NAME": 1}
    assert first.counts["crime_person"].rejected_by == {"ORPHAN_LINK": 1, "INVALID_ROLE": 1}
    second = migrate(legacy, target, batch_size=3)
    assert second.exit_code == 0 and second.balanced
    assert {e: c.rejected_by for e, c in second.counts.items()} == {e: c.rejected_by for e, c in first.counts.items()}
    assert {e: c.mapped for e, c in second.counts.items()} == {"person": 0, "crime": 1, "crime_person": 0,
                                                                "intelligence": 0}  # the DUPLICATE_KEY alone
    assert _rejects(target, second.run_id) == _rejects(target, first.run_id)
    # The record that owned CR/000002/18 is rejected now, and the person the link names is fixed.
    update_legacy(legacy, "crime", {"crime_no": " CR/000002/18"}, off_code="NOPE")
    update_legacy(legacy, "nominal", {"nom_id": 2}, surname="FIXED")
    third = migrate(legacy, target, batch_size=2)
    assert third.counts["crime"].rejected_by == {"UNMAPPED_OFFENCE": 2} and third.counts["crime"].updated == 1
    assert crime_row(target, "CR/000002/18")["oic_collar"] == "2222"
    assert third.counts["person"].written == 1 and third.counts["crime_person"].written == 1
    assert third.counts["crime_person"].rejected_by == {"INVALID_ROLE": 1}


def test_a_link_rejected_as_orphan_migrates_once_its_person_is_fixed(backend, make_store, tmp_path):
    legacy = make_legacy(
        f"sqlite:///{tmp_path / 'opus.db'}",
        crimes=[{"crime_no": "CR/000001/18"}],
        nominals=[{"nom_id": 1, "surname": "GOOD"}, {"nom_id": 2, "surname": None}],
        links=[{"crime_no": "CR/000001/18", "nom_id": 2, "role": "V"}],
        intel=[{"intel_no": "IN/000001/18", "subj_nom_id": 2}],
    )
    target = make_store(backend, "target")
    first = migrate(legacy, target)
    assert first.counts["person"].rejected == 1 and first.counts["crime_person"].rejected == 1
    update_legacy(legacy, "nominal", {"nom_id": 2}, surname="FIXED")
    second = migrate(legacy, target)
    assert second.counts["person"].written == 1 and second.counts["crime_person"].written == 1
    assert second.counts["intelligence"].updated == 1  # its subject is a migrated person now
    engine = sa.create_engine(target)
    with engine.connect() as conn:
        subject = conn.execute(sa.select(schema.intelligence_report.c.subject_person_id)).scalar_one()
    engine.dispose()
    assert subject == ids.person_id(2)
    third = migrate(legacy, target)
    assert all(c.mapped == 0 for c in third.counts.values()) and third.exit_code == 0


def test_a_rerun_decides_from_key_ranges_whatever_the_key_order(pair, make_store):
    """Re-runs read mig_xref by the key ranges of each batch (in the legacy store's order, which
    is not the target's: NOM_ID 99,999 is followed by 100,000, "100000" < "99999" as text; a
    MariaDB legacy beside a PostgreSQL target): a no-op re-run maps nothing, a removed or
    flagged nominal anywhere in the order is DELETED_IN_OPUS, a changed one is updated."""
    legacy_backend, target_backend = pair
    ids_ = [7, 8, 9, 99_997, 99_998, 99_999, 100_000, 100_001, 100_002, 1_000_000, 1_000_001]
    legacy = make_legacy(make_store(legacy_backend, "legacy"),
                         nominals=[{"nom_id": i, "surname": f"SURNAME{i}"} for i in ids_],
                         links=[{"crime_no": "CR/000001/18", "nom_id": i, "role": "V"} for i in ids_],
                         crimes=[{"crime_no": "CR/000001/18"}])
    target = make_store(target_backend, "target")
    first = migrate(legacy, target, batch_size=4)
    assert first.counts["person"].written == len(ids_) and first.counts["crime_person"].written == len(ids_)
    again = migrate(legacy, target, batch_size=5)
    assert all(c.mapped == 0 and c.unchanged == c.read and c.deleted_in_opus == 0 for c in again.counts.values()), \
        again.counts
    update_legacy(legacy, "nominal", {"nom_id": 100_000}, surname="CORRECTED")
    update_legacy(legacy, "nominal", {"nom_id": 9}, del_flag="Y")
    engine = sa.create_engine(legacy)
    tables = schema.legacy_tables(engine)
    with engine.begin() as conn:
        conn.execute(tables["nominal"].delete().where(tables["nominal"].c.nom_id == 99_999))
    engine.dispose()
    delta = migrate(legacy, target, batch_size=4)
    p = delta.counts["person"]
    assert (p.read, p.updated, p.excluded, p.unchanged, p.deleted_in_opus, p.mapped) == \
        (len(ids_) - 1, 1, 1, len(ids_) - 3, 2, 2), p
    assert set(conflicts(target, delta.run_id)) >= {"9", "99999"}


def _comparable(counts: dict) -> dict:
    """A run's counts without ``mapped``: how many records a worker maps to learn that they did not
    change may differ (a link inserted by a batch still in flight), what is decided may not."""
    return {entity: {k: v for k, v in c.to_json().items() if k != "mapped"} for entity, c in counts.items()}


#: What differs between any two runs: a person without LAST_UPD is stamped with its run's start
#: (mapping.md), and so is what the bookkeeping says was written for it; ids of bookkeeping rows.
_PER_RUN = {"person": ("created_at", "updated_at"), "mig_xref": ("written",), "mig_reject": ("reject_id",),
            "mig_warning": ("warning_id",)}


def _rows(url: str, table: str) -> list:
    t = schema.target_metadata.tables[table]
    columns = [c for c in t.columns if c.name not in _PER_RUN.get(table, ())]
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = sorted(tuple(str(v) for v in r) for r in conn.execute(sa.select(*columns)))
    engine.dispose()
    return rows


def test_workers_give_the_same_result_as_one_process(pair, make_store):
    """Worker processes examine key ranges; the one writer decides and commits in key order: the
    target rows, the bookkeeping's xref and every count are those of a run in one process —
    first run, no-op re-run, and a delta with changes, a flagged and a removed crime."""
    from synth.generate import generate

    legacy_backend, target_backend = pair
    legacy = make_store(legacy_backend, "legacy")
    generate(legacy, crimes=1500, seed=5)
    one, two = make_store(target_backend, "one"), make_store(target_backend, "two")
    compared = schema.TARGET_TABLES + ("mig_xref", "mig_reject", "mig_warning")
    for step in ("first", "no-op", "delta"):
        if step == "delta":
            engine = sa.create_engine(legacy)
            tables = schema.legacy_tables(engine)
            crime = tables["crime"]
            with engine.begin() as conn:
                keys = conn.execute(sa.select(crime.c.crime_no).order_by(crime.c.crime_no)).scalars().all()
                conn.execute(crime.update().where(crime.c.crime_no.in_(keys[10:400:7])).values(mo_text="CORRECTED"))
                conn.execute(crime.update().where(crime.c.crime_no == keys[500]).values(del_flag="Y"))
                conn.execute(tables["crime_nom"].delete().where(tables["crime_nom"].c.crime_no == keys[600]))
                conn.execute(crime.delete().where(crime.c.crime_no == keys[600]))
            engine.dispose()
        a = migrate(legacy, one, batch_size=97)
        b = migrate(legacy, two, batch_size=97, workers=2)
        assert a.balanced and b.balanced and (a.state, a.exit_code) == (b.state, b.exit_code), step
        assert _comparable(a.counts) == _comparable(b.counts), step
        for table in compared:
            assert _rows(one, table) == _rows(two, table), (step, table)
        if step == "no-op":
            # Only what no run writes (rejected, flagged, a link repeating another) is mapped again, by either.
            assert {e: c.mapped for e, c in b.counts.items()} == {e: c.mapped for e, c in a.counts.items()}
            assert all(c.mapped <= c.rejected + c.excluded + c.unchanged // 50 for c in b.counts.values()), b.counts
        if step == "delta":
            assert b.counts["crime"].updated > 40 and b.counts["crime"].deleted_in_opus == 2


def test_workers_interrupted_then_resumed_give_the_uninterrupted_result(backend, make_store, tmp_path):
    """A run with workers stopped between batches (as a crash would) and resumed with workers
    writes what one uninterrupted run in one process writes."""
    from synth.generate import generate

    legacy = f"sqlite:///{tmp_path / 'opus.db'}"
    generate(legacy, crimes=600, seed=9)
    straight, resumed = make_store(backend, "straight"), make_store(backend, "resumed")
    a = migrate(legacy, straight, batch_size=53)
    first = migrate(legacy, resumed, batch_size=53, workers=2, stop_after_batches=7)
    assert first.state == "interrupted"
    b = migrate(legacy, resumed, batch_size=53, workers=2, resume=first.run_id)
    assert b.state == "complete" and b.balanced
    assert _comparable(a.counts) == _comparable(b.counts)
    for table in schema.TARGET_TABLES + ("mig_xref", "mig_reject", "mig_warning"):
        assert _rows(straight, table) == _rows(resumed, table), table


def test_automatic_workers_are_one_for_a_small_store(tmp_path):
    """workers=None: a store too small to repay starting worker processes is migrated in one."""
    from migrate.engine import WORKERS_FROM_RECORDS, auto_workers

    legacy = opus(f"sqlite:///{tmp_path / 'opus.db'}")
    engine = sa.create_engine(legacy)
    assert auto_workers(engine, schema.legacy_tables(engine)) == 1 < WORKERS_FROM_RECORDS
    engine.dispose()
    result = migrate(legacy, f"sqlite:///{tmp_path / 'iops.db'}", workers=None)
    assert result.state == "complete" and result.counts["crime"].written == 6


def test_repeated_links_keep_one_source_digest_and_a_vanished_link_is_reported(backend, make_store, tmp_path):
    """Two legacy links that normalise to one (crime, person, role), in different batches: the
    first in key order records its source digest, so a no-op writes no bookkeeping (they used to
    replace each other's digest, with a mig_xref_before row, on every run); a link gone from
    CRIME_NOM is still found among mig_xref's when every other key is accounted for by count."""
    legacy = make_legacy(
        f"sqlite:///{tmp_path / 'opus.db'}",
        crimes=[{"crime_no": "CR/000001/18"}],
        nominals=[{"nom_id": 1, "surname": "ONE"}, {"nom_id": 2, "surname": "TWO"}],
        links=[{"crime_no": " CR/000001/18", "nom_id": 1, "role": "V"},
               {"crime_no": "CR/000001/18", "nom_id": 1, "role": "V"},
               {"crime_no": "CR/000001/18", "nom_id": 2, "role": "S"}],
    )
    target = make_store(backend, "target")
    first = migrate(legacy, target, batch_size=1)
    assert (first.counts["crime_person"].written, first.counts["crime_person"].unchanged) == (2, 1)
    for _ in range(2):
        again = migrate(legacy, target, batch_size=1)
        links = again.counts["crime_person"]
        assert again.exit_code == 0 and (links.unchanged, links.mapped, links.deleted_in_opus) == (3, 1, 0)
        engine = sa.create_engine(target)
        with engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(schema.mig_xref_before)).scalar_one() == 0
        engine.dispose()
    engine = sa.create_engine(legacy)
    crime_nom = schema.legacy_tables(engine)["crime_nom"]
    with engine.begin() as conn:
        conn.execute(crime_nom.delete().where(crime_nom.c.nom_id == 2))
    engine.dispose()
    gone = migrate(legacy, target, batch_size=1)
    assert gone.exit_code == 1 and gone.counts["crime_person"].deleted_in_opus == 1
    assert conflicts(target, gone.run_id)["CR/000001/18:2:SUSPECT"]["kind"] == "DELETED_IN_OPUS"
