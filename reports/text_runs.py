"""Console output of ``runs`` (the run history) and ``rollback`` (dry run and execution)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Sequence

from migrate.rollback import CONFLICT_KINDS, RollbackResult
from migrate.runs import RunInfo
from reports.safe import mask_credentials

RUN_COUNTS = ("read", "written", "updated", "unchanged", "excluded", "rejected")
#: Conflicts printed on the console; the report files list every one.
CONSOLE_CONFLICTS = 20


def render_runs(items: Sequence[RunInfo]) -> str:
    note = getattr(items, "note", None)
    if not items:
        return note or "no migration runs in this target"
    header = (f"{'run':>5}  {'state':<12} {'started (UTC)':<17} {'finished (UTC)':<17}"
              + "".join(f"{c:>11}" for c in RUN_COUNTS) + "  by / legacy store")
    lines = [header, "-" * len(header)]
    for run in items:
        lines.append(
            f"{run.id:>5}  {run.state:<12} {_when(run.started_at):<17} {_when(run.finished_at):<17}"
            + "".join(f"{run.total(c):>11,}" for c in RUN_COUNTS)
            + f"  {run.os_user or '?'}@{run.host or '?'}  {mask_credentials(run.legacy_store) or ''}"
        )
        if run.state == "rolled_back":
            lines.append(f"{'':>7}rolled back {_when(run.rolled_back_at)} UTC")
        elif run.state == "interrupted":
            lines.append(f"{'':>7}interrupted: continue with  migrate --resume {run.id}  or undo with  rollback {run.id}")
        elif run.state == "running" and run.heartbeat_at is not None:
            lines.append(f"{'':>7}running now (pid {run.pid} on {run.host}, last heartbeat {_when(run.heartbeat_at)} UTC)")
    lines.append("counts are legacy records, summed over entities; `runs --json` has them per entity")
    return "\n".join(lines)


def runs_json(items: Sequence[RunInfo]) -> str:
    return json.dumps([run.to_json() for run in items], indent=2, ensure_ascii=False)


def render_rollback(result: RollbackResult) -> str:
    run = result.run
    if result.mode == "already_rolled_back":
        return (f"run {run.id} was already rolled back ({_when(run.rolled_back_at)} UTC): nothing to do")
    lines = []
    if result.mode == "dry_run":
        lines.append(f"ROLLBACK DRY RUN of run {run.id}: nothing was changed in the target")
    elif result.mode == "executed":
        lines.append(f"run {run.id} ROLLED BACK in one transaction")
    else:
        lines.append(f"run {run.id} was NOT rolled back (refused): {result.conflict_count:,} conflict(s) with "
                     "work done since the run; nothing was changed in the target")
    lines.append(f"run {run.id}: {run.state}, started {_when(run.started_at)} UTC, "
                 f"legacy {mask_credentials(run.legacy_store) or '?'}, by {run.os_user or '?'}@{run.host or '?'}")
    lines.append(f"target {mask_credentials(result.target)}")
    lines.append("")
    header = f"{'table':<21}{'delete':>10}{'restore':>10}{'already deleted':>17}{'conflicts':>11}"
    lines += [header, "-" * len(header)]
    for name, plan in result.tables.items():
        lines.append(f"{name:<21}{plan.delete:>10,}{plan.restore:>10,}{plan.already_deleted:>17,}{plan.conflicts:>11,}")
    lines.append(f"{'all tables':<21}{result.delete_count:>10,}{result.restore_count:>10,}"
                 f"{sum(p.already_deleted for p in result.tables.values()):>17,}{result.conflict_count:>11,}")
    if result.xref is not None:
        lines.append(f"mig_xref: {result.xref.deleted:,} entries deleted, {result.xref.restored:,} restored, "
                     f"{result.xref.recheck:,} left for the next run to re-check")
    if result.conflict_count:
        lines.append("")
        lines.append("CONFLICTS: " + ", ".join(f"{result.conflict_counts[k]:,} {k}"
                                               for k in CONFLICT_KINDS if k in result.conflict_counts))
        for c in result.conflicts[:CONSOLE_CONFLICTS]:
            lines.append(f"  {c.kind:<14}{c.table} {c.row_key}" + (f" ({c.legacy_key})" if c.legacy_key else ""))
            lines.append(f"  {'':<14}{c.detail}")
            for f in c.fields[:6]:
                if c.kind == "DEPENDENT_ROW":
                    lines.append(f"  {'':<14}  {f.field} = {_value(f.current)}")
                    continue
                now, other, where = differing_values(f.current, f.other)
                lines.append(f"  {'':<14}  {f.field}: {now} (was written/restored as {other}){where}")
        if result.conflict_count > CONSOLE_CONFLICTS:
            lines.append(f"  ... and {result.conflict_count - CONSOLE_CONFLICTS:,} more in the report")
        if result.runs_to_undo_first:
            lines.append("runs to roll back first (newest first): "
                         + ", ".join(str(r) for r in result.runs_to_undo_first))
    if result.notice_count:
        lines.append("")
        lines.append(f"notice: {result.notice_count:,} row(s) the run inserted have been deleted since "
                     "(nothing to undo for them; listed in the report)")
    lines.append("")
    if result.mode == "dry_run":
        if result.conflict_count:
            lines.append(f"{result.conflict_count:,} CONFLICT(S): `rollback {run.id} --execute` will refuse "
                         "until they are resolved")
        else:
            lines.append(f"CLEAN: `rollback {run.id} --target ... --execute` would undo the run, destroying no later work")
    elif result.mode == "executed":
        lines.append(f"run {run.id} is now marked rolled_back")
    elif result.mode == "refused":
        lines.append(f"{result.conflict_count:,} CONFLICT(S): resolve them, then `rollback {run.id} --target ...` "
                     "(the dry run) again")
    if result.report_files:
        lines.append("report: " + ", ".join(str(p) for p in result.report_files))
    return "\n".join(lines)


#: Characters of a value printed on the console (the report files hold every value whole).
VALUE_CHARS = 60


def _value(text: str | None) -> str:
    if text is None:
        return "NULL"
    return repr(text if len(text) <= VALUE_CHARS else text[:VALUE_CHARS - 3] + "...")


def differing_values(now: str | None, other: str | None) -> tuple[str, str, str]:
    """Two values of one field, each cut to the same window around where they first differ —
    two long values that differ late would otherwise print the same — and where that is."""
    if now is None or other is None or (len(now) <= VALUE_CHARS and len(other) <= VALUE_CHARS):
        return _value(now), _value(other), ""
    same = 0
    for a, b in zip(now, other):
        if a != b:
            break
        same += 1
    start = max(0, same - 20)

    def window(text: str) -> str:
        piece = text[start:start + VALUE_CHARS]
        return ("..." if start else "") + piece + ("..." if start + VALUE_CHARS < len(text) else "")

    return repr(window(now)), repr(window(other)), f"; they differ from character {same + 1}"


def _when(moment: dt.datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M")
