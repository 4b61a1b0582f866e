"""What a migration run writes for people (cutover.md): ``migrate --out DIR`` and its console.

The files are read back as a person would open them: UTF-8 with a byte-order mark, RFC 4180,
one explained row per reject, warning and conflict, mode 0600, published together.
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from core import schema
from core.digest import text_fingerprint
from core.publish import SETS
from main import app
from mappings.explanations import explain
from migrate.engine import migrate
from migrate.findings import run_findings
from reports.migration_files import CONFLICT_COLUMNS, ISSUE_COLUMNS, shown_value, write_migration_files
from tests.opus_fixture import make_legacy

ROOT = Path(__file__).resolve().parents[1]
SECRET_INTEL = ("SUBJECT KNOWN AS TOMMY KEEPS A FIREARM AT 4 ACACIA AVENUE",
                "INFORMANT SAYS THE VAN IS RESPRAYED AT A LOCK-UP IN GORTON")
FORMULA = "=HYPERLINK(1)"
PASSWORD = "s3cret-Pw"


@pytest.fixture
def legacy(tmp_path):
    """Rejects and warnings of several codes, a value that is a formula, a value that is not
    ASCII, and intelligence text on a rejected and a warned entry."""
    url = f"sqlite:///{tmp_path / 'opus.db'}"
    make_legacy(
        url,
        crimes=[
            {"crime_no": "CR/000001/18"},
            {"crime_no": "CR/000002/18", "off_code": "OLDCODE"},  # UNMAPPED_OFFENCE
            {"crime_no": "CR/000003/18", "off_code": "@SUM(A1)"},  # UNMAPPED_OFFENCE, a formula
            {"crime_no": "BAD/5/18"},  # BAD_REFERENCE
            {"crime_no": "CR/000004/18", "pcode": "MÖ1 5QA"},  # INVALID_POSTCODE, not ASCII
            {"crime_no": "CR/000005/18", "del_flag": "Y"},  # excluded
        ],
        nominals=[
            {"nom_id": 1, "surname": "MÜLLER", "forenames": "ZOË"},
            {"nom_id": 2, "pnc_id": FORMULA},  # INVALID_PNC warning, a formula
            {"nom_id": 3, "surname": "  "},  # MISSING_NAME
        ],
        links=[{"crime_no": "CR/000001/18", "nom_id": 1, "role": "V"},
               {"crime_no": "CR/000002/18", "nom_id": 1, "role": "V"}],  # ORPHAN_LINK
        intel=[
            {"intel_no": "IN/000001/18", "subj_nom_id": 1},
            {"intel_no": "IN/000002/18", "src_eval": "Z", "int_text": SECRET_INTEL[0]},  # INVALID_GRADING
            {"intel_no": "IN/000003/18", "subj_nom_id": 99, "int_text": SECRET_INTEL[1]},  # ORPHAN_SUBJECT
        ],
    )
    return url


def with_password(url: str, backend: str) -> str:
    """PostgreSQL here trusts local connections: a password in the URL is accepted and ignored,
    so it can prove the password never reaches a file or the console."""
    if backend != "postgresql":
        return url
    return sa.engine.make_url(url).set(password=PASSWORD).render_as_string(hide_password=False)


def read_csv(path: Path) -> tuple[bytes, list[str], list[dict]]:
    raw = path.read_bytes()
    text = raw.decode("utf-8")
    assert text.startswith("\ufeff")
    lines = list(csv.reader(io.StringIO(text[1:], newline="")))
    header, body = lines[0], lines[1:]
    return raw, header, [dict(zip(header, row)) for row in body]


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


def test_files_read_back_with_every_row_explained(legacy, make_store, backend, tmp_path):
    target = with_password(make_store(backend, "iops"), backend)
    out = tmp_path / "run-files"
    res = cli("migrate", "--legacy", legacy, "--target", target, "--out", str(out), "--max-rejects", "0", "-q")
    assert res.exit_code == 1, res.output  # rejects above --max-rejects: a finding
    assert sorted(p.name for p in out.iterdir()) == sorted(SETS["migration"])
    for p in out.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p.name
    doc = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert doc["id"] == 1 and doc["state"] == "complete" and doc["balanced"] is True
    assert doc["started_at"].endswith("Z") and doc["finished_at"] >= doc["started_at"]

    expected_rows = {}
    for name, counted in (("rejects.csv", "rejected_by"), ("warnings.csv", "warnings_by")):
        raw, header, rows = read_csv(out / name)
        assert b"\r\n" in raw and header == list(ISSUE_COLUMNS)
        for row in rows:
            assert row["explanation"] and row["explanation"] == explain(row["reason"]) != row["reason"]
        by_code = {}
        for row in rows:
            by_code[(row["entity"], row["reason"])] = by_code.get((row["entity"], row["reason"]), 0) + 1
        expected_rows[name] = {(e, code): n for e, c in doc["counts"].items() for code, n in c[counted].items()}
        assert by_code == expected_rows[name]
        assert doc["files"][name]["rows"] == len(rows)
    _, header, conflicts = read_csv(out / "conflicts.csv")
    assert header == list(CONFLICT_COLUMNS) and conflicts == []  # a first run meets no conflict

    rejects = {(r["entity"], r["reason"], r["field"], r["value"]) for r in read_csv(out / "rejects.csv")[2]}
    warnings = {(r["entity"], r["reason"], r["field"], r["value"]) for r in read_csv(out / "warnings.csv")[2]}
    assert ("crime", "UNMAPPED_OFFENCE", "OFF_CODE", "'@SUM(A1)") in rejects  # shown, never evaluated
    assert ("person", "INVALID_PNC", "PNC_ID", "'" + FORMULA) in warnings
    assert ("crime", "INVALID_POSTCODE", "PCODE", "MÖ1 5QA") in warnings
    assert ("intelligence", "INVALID_GRADING", "SRC_EVAL", "Z") in rejects

    # The invariant's terms, per entity, as the run counted them (the same as `runs --json`).
    listed = json.loads(cli("runs", "--target", target, "--json").output)[0]["counts"]
    for entity, counts in doc["counts"].items():
        assert counts["read"] == sum(counts[t] for t in ("written", "updated", "unchanged", "conflicted",
                                                          "excluded", "rejected"))
        for term in ("read", "written", "updated", "unchanged", "excluded", "rejected"):
            assert counts[term] == listed[entity][term], (entity, term)
    assert doc["counts"]["crime"]["rejected"] == 3 and doc["counts"]["crime"]["excluded"] == 1

    everything = b"".join(p.read_bytes() for p in out.iterdir()).decode("utf-8") + res.output
    for text in SECRET_INTEL:
        assert text not in everything and text[:20] not in everything
    assert PASSWORD not in everything

    # The console: each code once per entity, with its explanation, and where the files are.
    for (entity, code), n in expected_rows["rejects.csv"].items():
        assert any(line.split()[:3] == [entity, code, str(n)] and explain(code) in line
                   for line in res.output.splitlines()), (entity, code)
    assert f"files in {out}" in res.output
    assert f"more than --max-rejects 0: see {out / 'rejects.csv'}" in res.output


def test_a_rerun_writes_its_own_files(legacy, tmp_path):
    target = f"sqlite:///{tmp_path / 'iops.db'}"
    out = tmp_path / "files"
    assert cli("migrate", "--legacy", legacy, "--target", target, "--out", str(out), "-q").exit_code == 0
    first = json.loads((out / "run.json").read_text(encoding="utf-8"))
    (out / "my-notes.txt").write_text("mine")
    res = cli("migrate", "--legacy", legacy, "--target", target, "--out", str(out), "-q")
    assert res.exit_code == 0, res.output
    second = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert (first["id"], second["id"]) == (1, 2)
    assert second["counts"]["crime"]["written"] == 0
    assert second["counts"]["crime"]["unchanged"] == first["counts"]["crime"]["written"]
    # Rejected records are rejected again by each run, and listed in its files.
    assert second["files"]["rejects.csv"]["rows"] == sum(c["rejected"] for c in second["counts"].values()) > 0
    assert (out / "my-notes.txt").read_text() == "mine"


@pytest.mark.parametrize("batch_size", [1, 2, 3, 5000])
def test_findings_stream_in_pages_of_any_size(legacy, tmp_path, batch_size):
    target = f"sqlite:///{tmp_path / 'iops.db'}"
    result = migrate(legacy, target)
    with run_findings(target, result.run_id) as whole, \
            run_findings(target, result.run_id, batch_size=batch_size) as paged:
        assert list(paged.rejects()) == list(whole.rejects())
        assert len(list(paged.rejects())) == result.total_rejected
        assert list(paged.warnings()) == list(whole.warnings())
        assert len(list(paged.warnings())) == sum(sum(c.warnings_by.values()) for c in result.counts.values())
        assert paged.balanced and paged.total("rejected") == result.total_rejected


def test_findings_of_an_unknown_run_are_a_usage_error(legacy, tmp_path):
    target = f"sqlite:///{tmp_path / 'iops.db'}"
    migrate(legacy, target)
    res = cli("runs", "--target", target)  # the run exists
    assert res.exit_code == 0
    from core.errors import RunNotFound

    with pytest.raises(RunNotFound):
        run_findings(target, 7)
    with pytest.raises(RunNotFound):
        run_findings(f"sqlite:///{tmp_path / 'none.db'}", 1)


@pytest.mark.parametrize("backend_name", ["sqlite", "mysql"])
def test_conflicts_file_lists_what_the_run_recorded(legacy, make_store, tmp_path, backend_name):
    """The writer's half of conflicts: rows recorded in mig_conflict the way a delta run records
    them (the engine's own detection is tested with the engine)."""
    target = make_store(backend_name, "iops")
    result = migrate(legacy, target)
    engine = sa.create_engine(target)
    crime, person = schema.crime, schema.person
    with engine.begin() as conn:
        crime_id = conn.execute(sa.select(crime.c.crime_id).where(crime.c.legacy_ref == "CR/000001/18")).scalar_one()
        person_id = conn.execute(sa.select(person.c.person_id)).scalars().first()
        conn.execute(schema.mig_conflict.insert(), [
            {"run_id": result.run_id, "entity": "crime", "legacy_key": "CR/000001/18", "target_table": "crime",
             "target_id": str(crime_id), "kind": "CHANGED_BOTH", "opus_fields": "mo_summary",
             "iops_fields": "status;mo_summary", "resolution": "KEPT_IOPS"},
            {"run_id": result.run_id, "entity": "person", "legacy_key": "1", "target_table": "person",
             "target_id": str(person_id), "kind": "DELETED_IN_OPUS", "opus_fields": None, "iops_fields": None,
             "resolution": "KEPT_IOPS"},
            {"run_id": result.run_id + 1, "entity": "crime", "legacy_key": "CR/000009/18", "target_table": "crime",
             "target_id": "another run's", "kind": "CHANGED_BOTH", "opus_fields": "status", "iops_fields": "status",
             "resolution": "OVERWRITTEN"},
        ])
    engine.dispose()
    out = tmp_path / "files"
    with run_findings(target, result.run_id, batch_size=1) as findings:
        write_migration_files(findings, out)
    _, header, rows = read_csv(out / "conflicts.csv")
    assert header == list(CONFLICT_COLUMNS)
    assert rows == [
        {"entity": "crime", "legacy_key": "CR/000001/18", "target_table": "crime", "target_id": str(crime_id),
         "kind": "CHANGED_BOTH", "opus_fields": "mo_summary", "iops_fields": "status;mo_summary",
         "resolution": "KEPT_IOPS"},
        {"entity": "person", "legacy_key": "1", "target_table": "person", "target_id": str(person_id),
         "kind": "DELETED_IN_OPUS", "opus_fields": "", "iops_fields": "", "resolution": "KEPT_IOPS"},
    ]
    assert json.loads((out / "run.json").read_text(encoding="utf-8"))["files"]["conflicts.csv"]["rows"] == 2


def test_intelligence_text_named_as_a_value_is_only_a_fingerprint():
    assert shown_value("INT_TEXT", SECRET_INTEL[0]) == text_fingerprint(SECRET_INTEL[0])
    assert shown_value("intel_text", SECRET_INTEL[1]) == text_fingerprint(SECRET_INTEL[1])
    fp = text_fingerprint("x")
    assert shown_value("INT_TEXT", fp) == fp  # already a fingerprint: not fingerprinted twice
    assert shown_value("OFF_CODE", "+CMD") == "'+CMD" and shown_value("GRID_E", "-12") == "-12"
    assert shown_value("PCODE", None) == ""


_WRITE_WITH_LIMIT = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
from migrate.findings import run_findings
from reports.migration_files import write_migration_files
from core.errors import Opus2IopsError
findings = run_findings(sys.argv[1], 1)
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[3]), int(sys.argv[3])))
try:
    write_migration_files(findings, sys.argv[2])
except Opus2IopsError as exc:  # as main.py shows it
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(exc.exit_code)
"""


@pytest.mark.parametrize("limit", [300, 1_500])
def test_a_failure_half_way_leaves_the_old_set_and_nothing_half_written(legacy, tmp_path, limit):
    target = f"sqlite:///{tmp_path / 'iops.db'}"
    out = tmp_path / "files"
    assert cli("migrate", "--legacy", legacy, "--target", target, "--out", str(out), "-q").exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    sizes = {name: len(data) for name, data in before.items()}
    assert limit < max(sizes.values())  # some file of the set cannot be written whole
    res = subprocess.run([sys.executable, "-c", _WRITE_WITH_LIMIT, target, str(out), str(limit)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stderr == f"error: cannot write the migration's files into {out}: File too large\n"
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left


def test_usage_errors_are_one_line_and_come_before_the_work(legacy, tmp_path):
    target_file = tmp_path / "iops.db"
    target = f"sqlite:///{target_file}"
    res = cli("migrate", "--legacy", legacy, "--target", target, "--dry-run", "--out", str(tmp_path / "f"))
    assert res.exit_code == 2 and "--dry-run" in res.output and len(res.output.strip().splitlines()) == 1
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    res = cli("migrate", "--legacy", legacy, "--target", target, "--out", str(blocker))
    assert res.exit_code == 2, res.output
    assert res.output == f"error: cannot write the migration's files into {blocker}: it is a file, not a folder\n"
    assert not target_file.exists()  # refused before anything was migrated
    for bad in (["--on-conflict", "merge"], ["--workers", "0"], ["--workers", "33"]):
        res = cli("migrate", "--legacy", legacy, "--target", target, *bad)
        assert res.exit_code == 2 and "Traceback" not in res.output, bad
    assert not target_file.exists()


def test_help_explains_the_cutover_options():
    res = cli("migrate", "--help")
    assert res.exit_code == 0
    text = " ".join(res.output.replace("│", " ").split())
    for words in ("keep-iops (the default) leaves the iOPS edit", "take-opus overwrites it",
                  "stop ends the run at the first conflicting batch", "rejects.csv", "warnings.csv",
                  "conflicts.csv", "run.json", "--workers", "--on-conflict", "exit 1 on findings"):
        assert words in text, words


def test_workers_write_the_same_files(legacy, tmp_path):
    """--workers reaches the engine, and what the run writes for people does not depend on it."""
    files = {}
    for n in (1, 2):
        target, out = f"sqlite:///{tmp_path / f'iops-{n}.db'}", tmp_path / f"files-{n}"
        res = cli("migrate", "--legacy", legacy, "--target", target, "--out", str(out), "--workers", str(n),
                  "--batch-size", "2", "-q")
        assert res.exit_code == 0, res.output
        doc = json.loads((out / "run.json").read_text(encoding="utf-8"))
        files[n] = ({name: (out / name).read_bytes() for name in ("rejects.csv", "warnings.csv", "conflicts.csv")},
                    doc["counts"], doc["files"])
    assert files[1] == files[2]
    assert files[1][2]["rejects.csv"]["rows"] > 0
