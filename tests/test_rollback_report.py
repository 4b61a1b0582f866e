"""The rollback report read back as an auditor reads and prints it, the console's conflict lines,
the default report folder, and the store paths ``runs`` shows."""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import openpyxl
import pytest
from openpyxl.utils import get_column_letter
from typer.testing import CliRunner

from core.db import recorded_url
from main import app
from migrate.engine import migrate
from migrate.runs import list_runs
from reports import xlsx
from reports.rollback_report import default_folder
from reports.text_runs import VALUE_CHARS, differing_values
from tests.test_rollback import opus_store, rollback, run_twice  # noqa: F401


@pytest.fixture
def legacy(tmp_path) -> str:
    return opus_store(f"sqlite:///{tmp_path / 'opus.db'}")


def _width(ws, column: int) -> float:
    return ws.column_dimensions[get_column_letter(column)].width


def _fits(ws, c, merged) -> bool:
    """A date cell is wide enough to show its value (no ###): its column, or its merged range."""
    text = f"{c.value:%d %b %Y %H:%M}" if isinstance(c.value, dt.datetime) else str(c.value)
    for rng in merged:
        if c.coordinate in rng:
            return sum(_width(ws, col) for col in range(rng.min_col, rng.max_col + 1)) >= len(text) + 1
    return _width(ws, c.column) >= len(text) + 1


def test_rollback_workbook_prints_and_shows_its_dates(make_store, legacy, tmp_path):
    target = make_store("sqlite", "target")
    run1, _, _, _ = run_twice(legacy, target)
    dry = rollback(target, run1, out_dir=tmp_path / "r")
    wb = openpyxl.load_workbook(dry.report_files[1])
    summary = wb["Summary"]
    dates = [c for row in summary.iter_rows() for c in row if isinstance(c.value, dt.datetime)]
    assert len(dates) >= 3  # run started, finished, report made: real values in UK local time
    for c in dates:
        assert c.number_format == xlsx.DATETIME_FORMAT and _fits(summary, c, summary.merged_cells.ranges), c.coordinate
    # The banner ("7 CONFLICTS", 20 pt) spans two columns wide enough for it.
    banner = next(c for row in summary.iter_rows() for c in row if c.value == "7 CONFLICTS")
    rng = next(r for r in summary.merged_cells.ranges if banner.coordinate in r)
    assert sum(_width(summary, col) for col in range(rng.min_col, rng.max_col + 1)) * 11 / 20 >= len(banner.value)
    for ws in wb.worksheets:
        assert ws.page_setup.orientation == "landscape" and ws.page_setup.fitToWidth == 1, ws.title
        assert ws.sheet_properties.pageSetUpPr.fitToPage, ws.title
        assert ws.oddHeader.center.text == "OFFICIAL-SENSITIVE" and ws.oddFooter.right.text == "Page &P of &N"
    conflicts = wb["Conflicts"]
    head = [c.value for c in conflicts[1]]
    assert head[:2] == ["kind", "record"]
    records = [r[1] for r in conflicts.iter_rows(min_row=2, values_only=True)]
    assert all(records), records  # every conflict named (readable name, else its OPUS key)


def test_console_shows_where_two_long_values_differ():
    base = "Flat 2, The Old Mill, 14 Long Lane, Little Lever, Bolton, Greater Manchester, "
    now, before = base + "BL3 1AA", base + "BL3 1AB"
    assert len(now) > VALUE_CHARS
    a, b, where = differing_values(now, before)
    assert a != b and "1AA" in a and "1AB" in b and where == f"; they differ from character {len(base) + 7}"
    assert differing_values("short", "other")[:2] == ("'short'", "'other'")
    assert differing_values(None, now)[0] == "NULL"


def test_default_report_folder_is_new_for_each_run_and_moment(make_store, legacy, tmp_path, monkeypatch):
    moment = dt.datetime(2026, 12, 4, 18, 30, 5, tzinfo=dt.timezone.utc)
    assert default_folder(3, moment) == Path("rollback-run3-20261204T183005Z")
    target = make_store("sqlite", "target")
    run = migrate(legacy, target, batch_size=3)
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["rollback", str(run.run_id), "--target", target])
    assert res.exit_code == 0, res.output
    folders = [p for p in tmp_path.iterdir() if p.name.startswith(f"rollback-run{run.run_id}-")]
    assert len(folders) == 1 and re.fullmatch(rf"rollback-run{run.run_id}-\d{{8}}T\d{{6}}Z", folders[0].name)
    assert sorted(p.name for p in folders[0].iterdir()) == ["rollback.json", "rollback.xlsx"]
    assert str(folders[0].name) in res.output
    assert not (tmp_path / "rollback-report").exists()


def test_runs_record_and_show_absolute_sqlite_paths(make_store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    opus_store("sqlite:///opus.db")  # relative to the folder the command runs in
    target = make_store("sqlite", "target")
    migrate("sqlite:///opus.db", target, batch_size=3)
    (run,) = list_runs(target)
    assert run.legacy_store == f"sqlite:///{tmp_path / 'opus.db'}" and os.path.isabs(run.legacy_store[10:])
    res = CliRunner().invoke(app, ["runs", "--target", target])
    assert str(tmp_path / "opus.db") in res.output


@pytest.mark.parametrize("url,expected", [
    ("sqlite:///opus.db", None),  # made absolute against the working folder
    ("sqlite:////srv/data/opus.db", "sqlite:////srv/data/opus.db"),
    ("postgresql+psycopg://alice:s3cret@db.example/opus", "postgresql+psycopg://alice:***@db.example/opus"),
    ("not a url", "not a url"),
])
def test_recorded_url(url, expected):
    got = recorded_url(url)
    if expected is None:
        expected = f"sqlite:///{Path.cwd() / 'opus.db'}"
    assert got == expected and "s3cret" not in got
