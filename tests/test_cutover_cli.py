"""The cutover as a user runs it (cutover.md): bulk load, officers edit in iOPS, OPUS changes,
``migrate … --out DIR`` again. What the command exits with, prints and writes, and what it
leaves in iOPS, for each ``--on-conflict``, on every target engine."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from core import schema
from main import app
from tests.opus_fixture import make_legacy, update_legacy

OFFICER = "OFFICER ADDED: victim re-contacted; closed"
CORRECTED = "SIDE WINDOW SMASHED, SATNAV AND DASHCAM TAKEN"


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


def read_rows(path: Path) -> list[dict]:
    text = path.read_bytes().decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text[1:], newline="")))


def crimes(target: str) -> dict[str, dict]:
    engine = sa.create_engine(target)
    try:
        with engine.connect() as conn:
            return {r["legacy_ref"]: dict(r) for r in conn.execute(sa.select(schema.crime)).mappings()}
    finally:
        engine.dispose()


@pytest.fixture
def cutover(tmp_path, make_store, backend):
    """Bulk load; an officer closes CR/000001/18 in iOPS; OPUS then corrects CR/000001/18 (a
    conflict) and CR/000002/18, flags CR/000003/18 deleted and records CR/000005/18."""
    legacy = make_legacy(f"sqlite:///{tmp_path / 'opus.db'}", crimes=[
        {"crime_no": f"CR/00000{n}/18", "status": "O"} for n in (1, 2, 3, 4)])
    target = make_store(backend, "iops")
    res = cli("migrate", "--legacy", legacy, "--target", target, "--out", str(tmp_path / "bulk"), "-q")
    assert res.exit_code == 0, res.output
    engine = sa.create_engine(target)
    with engine.begin() as conn:
        conn.execute(schema.crime.update().where(schema.crime.c.legacy_ref == "CR/000001/18")
                     .values(status="FINALISED", mo_summary=OFFICER))
    engine.dispose()
    make_legacy_changes(legacy)
    return legacy, target


def make_legacy_changes(legacy: str) -> None:
    for ref in ("CR/000001/18", "CR/000002/18"):
        update_legacy(legacy, "crime", {"crime_no": ref}, mo_text=CORRECTED, last_upd="20260101120000")
    update_legacy(legacy, "crime", {"crime_no": "CR/000003/18"}, del_flag="Y", last_upd="20260101120000")
    engine = sa.create_engine(legacy)
    table = schema.legacy_tables(engine)["crime"]
    with engine.begin() as conn:
        row = dict(conn.execute(sa.select(table).where(table.c.crime_no == "CR/000004/18")).mappings().one())
        conn.execute(table.insert().values(**{**row, "crime_no": "CR/000005/18"}))
    engine.dispose()


def test_keep_iops_reports_the_conflict_and_leaves_the_officers_work(cutover, tmp_path):
    legacy, target = cutover
    out = tmp_path / "delta"
    res = cli("migrate", "--legacy", legacy, "--target", target, "--out", str(out), "-q")
    assert res.exit_code == 1, res.output  # conflicts and deletions are findings
    rows = {(r["legacy_key"], r["kind"]): r for r in read_rows(out / "conflicts.csv")}
    both = rows.pop(("CR/000001/18", "CHANGED_BOTH"))
    assert both["entity"] == "crime" and both["resolution"] == "KEPT_IOPS" and both["target_table"] == "crime"
    assert "mo_summary" in both["opus_fields"].split(";")
    assert {"status", "mo_summary"} <= set(both["iops_fields"].split(";"))
    gone = rows.pop(("CR/000003/18", "DELETED_IN_OPUS"))
    assert gone["resolution"] == "KEPT_IOPS"
    assert all(key[0] != "CR/000002/18" for key in rows)  # changed in OPUS only: an update, no conflict
    doc = json.loads((out / "run.json").read_text(encoding="utf-8"))
    c = doc["counts"]["crime"]
    assert (c["read"], c["written"], c["updated"], c["unchanged"], c["conflicted"], c["excluded"], c["rejected"]) \
        == (5, 1, 1, 1, 1, 1, 0)
    assert c["deleted_in_opus"] == 1 and c["overwritten"] == 0 and doc["balanced"] is True
    assert doc["files"]["conflicts.csv"]["rows"] == len(read_rows(out / "conflicts.csv"))
    text = " ".join(res.output.split())
    assert "conflicts: 1 record changed in OPUS and edited in iOPS" in text and "iOPS edits kept 1" in text
    assert "deleted in OPUS: 1 record the tool migrated" in text

    after = crimes(target)
    assert (after["CR/000001/18"]["status"], after["CR/000001/18"]["mo_summary"]) == ("FINALISED", OFFICER)
    assert after["CR/000002/18"]["mo_summary"] == CORRECTED
    assert "CR/000003/18" in after and "CR/000005/18" in after  # nothing deleted in iOPS

    # Every later re-run with keep-iops leaves the officer's work as it is.
    # The OPUS change is still not applied, so the conflict is still one (reported again).
    res = cli("migrate", "--legacy", legacy, "--target", target, "--out", str(out), "-q")
    assert res.exit_code == 1, res.output
    assert [(r["legacy_key"], r["resolution"]) for r in read_rows(out / "conflicts.csv")
            if r["kind"] == "CHANGED_BOTH"] == [("CR/000001/18", "KEPT_IOPS")]
    after = crimes(target)
    assert (after["CR/000001/18"]["status"], after["CR/000001/18"]["mo_summary"]) == ("FINALISED", OFFICER)


def test_take_opus_overwrites_and_says_so(cutover, tmp_path):
    legacy, target = cutover
    out = tmp_path / "delta"
    res = cli("migrate", "--legacy", legacy, "--target", target, "--out", str(out), "--on-conflict", "take-opus", "-q")
    assert res.exit_code == 1, res.output
    both = [r for r in read_rows(out / "conflicts.csv") if r["kind"] == "CHANGED_BOTH"]
    assert [(r["legacy_key"], r["resolution"]) for r in both] == [("CR/000001/18", "OVERWRITTEN")]
    c = json.loads((out / "run.json").read_text(encoding="utf-8"))["counts"]["crime"]
    assert (c["conflicted"], c["overwritten"]) == (1, 1)
    assert "overwritten 1" in " ".join(res.output.split())
    assert crimes(target)["CR/000001/18"]["mo_summary"] == CORRECTED


def test_stop_writes_nothing_of_the_conflicting_batch(cutover, tmp_path):
    legacy, target = cutover
    before = crimes(target)
    out = tmp_path / "delta"
    res = cli("migrate", "--legacy", legacy, "--target", target, "--out", str(out), "--on-conflict", "stop", "-q")
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    text = " ".join(res.output.split())
    assert "stopped (--on-conflict stop) at 1 record changed in OPUS and edited in iOPS" in text
    assert "migrate --resume 2 --on-conflict keep-iops" in text
    stopped = [r for r in read_rows(out / "conflicts.csv") if r["kind"] == "CHANGED_BOTH"]
    assert [(r["legacy_key"], r["resolution"]) for r in stopped] == [("CR/000001/18", "STOPPED")]
    after = crimes(target)
    assert after["CR/000002/18"]["mo_summary"] == before["CR/000002/18"]["mo_summary"]  # one batch: none of it
    assert "CR/000005/18" not in after
    assert (after["CR/000001/18"]["status"], after["CR/000001/18"]["mo_summary"]) == ("FINALISED", OFFICER)
    # The advice printed works: the stopped run, resumed with a decision, finishes the delta.
    res = cli("migrate", "--legacy", legacy, "--target", target, "--out", str(out), "--resume", "2",
              "--on-conflict", "keep-iops", "-q")
    assert res.exit_code == 1, res.output  # the conflict and the deletion are still findings
    doc = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert (doc["id"], doc["state"], doc["balanced"]) == (2, "complete", True)
    assert [r["resolution"] for r in read_rows(out / "conflicts.csv") if r["kind"] == "CHANGED_BOTH"][-1] == "KEPT_IOPS"
    after = crimes(target)
    assert after["CR/000002/18"]["mo_summary"] == CORRECTED and "CR/000005/18" in after
    assert (after["CR/000001/18"]["status"], after["CR/000001/18"]["mo_summary"]) == ("FINALISED", OFFICER)
