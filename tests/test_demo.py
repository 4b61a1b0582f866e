"""``make demo``: the whole story, the cutover included, as the console tells it."""

from __future__ import annotations

import stat

import sqlalchemy as sa

from core import schema
from reports.text_reconcile import render_demo
from synth.demo import OFFICER_TEXT, demo


def _officer_rows(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(schema.crime)
                                .where(schema.crime.c.mo_summary == OFFICER_TEXT)).scalar_one()
    finally:
        engine.dispose()


def test_the_demo_tells_the_cutover_and_keeps_the_officers_work(tmp_path):
    result = demo(tmp_path / "demo", crimes=300)
    story = result.cutover
    text = render_demo(result)

    assert not result.own.failed and result.vendor.failed  # steps 1-4 as before
    assert len(story.edited) == 3 and set(story.both) < set(story.edited)
    assert story.kept == 3 and "officers' edits kept: 3 of 3" in text

    c = story.delta.counts["crime"]
    assert (c.written, c.updated, c.conflicted, c.deleted_in_opus, c.overwritten) == (
        len(story.added), len(story.corrected), len(story.both), len(story.deleted), 0)
    assert story.delta.balanced and story.delta.exit_code == 1
    crimes = [x for x in story.conflicts if x.entity == "crime"]
    assert sorted(x.legacy_key for x in crimes if x.kind == "CHANGED_BOTH") == sorted(story.both)
    assert sorted(x.legacy_key for x in crimes if x.kind == "DELETED_IN_OPUS") == sorted(story.deleted)
    assert {x.resolution for x in crimes} == {"KEPT_IOPS"}
    assert f"conflicted {len(story.both)}" in text and f"deleted in OPUS {len(story.deleted)}" in text

    for path in story.files.values():
        assert path.parent == tmp_path / "demo" / "cutover-run" and stat.S_IMODE(path.stat().st_mode) == 0o600
    # The edits are the copies': the stores of steps 1-4 are what the reconciliation reports describe.
    assert _officer_rows(result.stores["own"]) == 0
    assert _officer_rows(story.stores["target"]) == 3
