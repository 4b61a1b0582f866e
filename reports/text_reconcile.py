"""Console text for ``reconcile`` (and the small ``simulate``/``demo`` summaries).

Short by design: where the stores were, the totals, PASS/FAIL and where the four reports
are. The detail is in the reports. Passwords are masked again here (defence in depth).
"""

from __future__ import annotations

import datetime as dt

from reconcile.model import CATEGORIES, ENTITIES, ReconResult
from reports.safe import mask_credentials


def _when(moment: dt.datetime | None) -> str:
    if moment is None:
        return "?"
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


def _entities(result: ReconResult) -> list[str]:
    return sorted(result.totals, key=lambda e: (ENTITIES.index(e) if e in ENTITIES else len(ENTITIES), e))


def _categories(result: ReconResult) -> list[str]:
    extra = {c for t in result.totals.values() for c in t.categories} - set(CATEGORIES)
    return list(CATEGORIES) + sorted(extra)


def _explained(t) -> int:
    return getattr(t, "missing_explained", 0)


def _counted(t) -> int:
    return sum(n for c, n in t.categories.items() if c != "PROBABLE_MATCH") - _explained(t)


def render_reconciliation(result: ReconResult) -> str:
    verdict = "FAIL" if result.failed else "PASS"
    fail_at = result.thresholds.get("fail", 0)
    lines = [
        f"Reconciliation {verdict}: {result.counted_failures:,} discrepancies counted against a "
        f"failure threshold of {fail_at:g}",
        "  (not counted: PROBABLE_MATCH pairs, and MISSING records the mapping itself rejects)",
        f"  legacy (OPUS)  {mask_credentials(result.legacy_url)}",
        f"  new (iOPS)     {mask_credentials(result.target_url)}",
        f"  ran            {_when(result.started_at)} to {_when(result.finished_at)}, "
        f"opus2iops {result.tool_version}",
        "",
    ]
    categories = _categories(result)
    head = ["entity", "legacy", "new"] + categories + ["explained", "counted"]
    rows = [head]
    every = list(result.totals.values())
    for entity in _entities(result):
        t = result.totals[entity]
        rows.append([entity, f"{t.legacy_total:,}", f"{t.new_total:,}"]
                    + [f"{t.categories.get(c, 0):,}" for c in categories]
                    + [f"{_explained(t):,}", f"{_counted(t):,}"])
    rows.append(["all", f"{sum(t.legacy_total for t in every):,}", f"{sum(t.new_total for t in every):,}"]
                + [f"{sum(t.categories.get(c, 0) for t in every):,}" for c in categories]
                + [f"{sum(_explained(t) for t in every):,}", f"{sum(_counted(t) for t in every):,}"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    for r in rows:
        lines.append("  " + "  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths))))

    if result.stats:
        from reports.statistics import statistics_of

        statistics = statistics_of(result)
        before, after = statistics.before, statistics.after
        when = f" up to go-live ({statistics.go_live:%Y-%m-%d})" if statistics.go_live else ""
        lines += ["", f"Crime statistics{when}: OPUS {before.legacy:,}, not migrated {before.not_migrated:,}, "
                      f"expected {before.expected:,}, iOPS {before.new:,} (delta {before.delta:+,}, "
                      f"{before.delta_expected:+,} against expected); {before.cells_differing:,} of "
                      f"{before.cells:,} month × district × group cells differ"]
        if after.cells:
            lines.append(f"  after go-live, apart: {after.new:,} crimes new in iOPS")
        lines.append(f"  a public crime map cannot place: OPUS {statistics.all.legacy_no_location:,}, "
                     f"iOPS {statistics.all.new_unplaceable:,} ({statistics.all.new_outside_area:,} outside "
                     f"Greater Manchester)")

    lines.append("")
    if result.report_paths:
        lines.append("Reports:")
        for key, path in result.report_paths.items():
            lines.append(f"  {key:<14} {path}")
    else:
        lines.append("Reports: not written")
    return "\n".join(lines)


def _lines_of(result) -> str:
    lines = getattr(result, "summary_lines", None)
    text = "\n".join(lines()) if callable(lines) else str(result)
    return mask_credentials(text)


def render_simulation(result) -> str:
    """What the simulator did, as its result describes itself (``summary_lines()``)."""
    return _lines_of(result)


def render_demo(result) -> str:
    """What the demo did and where its files are, as its result describes itself (``summary_lines()``)."""
    return _lines_of(result)
