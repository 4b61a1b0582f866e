"""Console summary of a migration run."""

from __future__ import annotations

from pathlib import Path

from mappings.explanations import explain
from migrate.engine import MigrationResult
from migrate.findings import INVARIANT

COLUMNS = ("read", "written", "updated", "unchanged", "conflicted", "excluded", "rejected")
#: Counted beside the invariant (cutover.md), shown after it.
BESIDE = (("deleted_in_opus", "deleted in OPUS"), ("overwritten", "overwritten"))


def render_migration(result: MigrationResult, files: dict[str, Path] | None = None) -> str:
    """The run's counts per entity, the invariant, its findings per code with their meaning,
    and where ``files`` (``migrate --out``) are."""
    lines = []
    if result.dry_run:
        lines.append("DRY RUN: nothing was written to the target. Counts are what a real run would do.")
    else:
        verb = "resumed and " if result.resumed else ""
        lines.append(f"run {result.run_id} {verb}{result.state}")
    lines.append(f"legacy {result.legacy_url} -> target {result.target_url}")
    seconds = (result.finished_at - result.started_at).total_seconds()
    lines.append(f"elapsed {seconds:.0f} s")
    lines.append("")
    # Each column as wide as its title (and a million), so that ten columns fit a wide terminal.
    widths = {c: max(len(c), 9) + 1 for c in COLUMNS}
    header = (f"{'entity':<13}" + "".join(f"{c:>{widths[c]}}" for c in COLUMNS) + "  invariant"
              + "".join(f"{title:>{len(title) + 2}}" for _, title in BESIDE))
    lines.append(header)
    lines.append("-" * len(header))
    for entity, c in result.counts.items():
        ok = "ok" if c.balanced else "BROKEN"
        lines.append(f"{entity:<13}" + "".join(f"{getattr(c, col):>{widths[col]},}" for col in COLUMNS)
                     + f"  {ok:<9}" + "".join(f"{getattr(c, attr, 0):>{len(title) + 2},}" for attr, title in BESIDE))
    lines.append(f"invariant: {INVARIANT}; beside it: deleted in OPUS (iOPS keeps them), overwritten "
                 "(of conflicted, by --on-conflict take-opus)")
    for title, attr in (("rejected by reason", "rejected_by"), ("warnings by reason", "warnings_by")):
        items = [(e, code, n) for e, c in result.counts.items() for code, n in sorted(getattr(c, attr).items())]
        if items:
            lines.append("")
            lines.append(title + ":")
            lines += [f"  {entity:<14}{code:<24}{n:>9,}  {explain(code)}" for entity, code, n in items]
    conflicted = result.total_conflicted
    deleted = result.total_deleted_in_opus
    overwritten = sum(getattr(c, "overwritten", 0) for c in result.counts.values())
    if conflicted or deleted:
        lines.append("")
        if conflicted:
            kept = conflicted - overwritten
            lines.append(f"conflicts: {_records(conflicted)} changed in OPUS and edited in iOPS since the last run; "
                         f"iOPS edits kept {kept:,}, overwritten {overwritten:,}")
        if deleted:
            lines.append(f"deleted in OPUS: {_records(deleted)} the tool migrated, deleted in OPUS since; "
                         "iOPS still holds them (nothing is deleted in iOPS)")
    stopped = getattr(result, "stopped_at_conflict", 0)
    if stopped:
        lines.append("")
        lines.append(f"stopped (--on-conflict stop) at {_records(stopped)} changed in OPUS and edited in iOPS: "
                     "nothing of that batch was written (the conflicts are in mig_conflict, and conflicts.csv "
                     "with --out)")
        lines.append(f"decide, then continue with  migrate --resume {result.run_id} --on-conflict keep-iops  "
                     "(or take-opus)")
    elif not result.dry_run and result.state == "interrupted":
        lines.append("")
        lines.append(f"interrupted: continue with  migrate --resume {result.run_id}  (committed batches are kept)")
    if not result.balanced:
        lines.append("")
        lines.append("ERROR: the counts do not add up; some records are unaccounted for")
    if files:
        lines.append("")
        folder = Path(next(iter(files.values()))).parent
        lines.append(f"files in {folder}: " + ", ".join(Path(p).name for p in files.values())
                     + " (rejects, warnings and conflicts one per line, each explained; run.json the counts)")
    elif result.run_id is not None and (result.total_rejected or conflicted or deleted):
        lines.append("")
        lines.append(f"the records are in the target's mig_reject, mig_warning and mig_conflict tables "
                     f"(run_id = {result.run_id}); --out DIR writes them as rejects.csv, warnings.csv, conflicts.csv")
    return "\n".join(lines)


def _records(n: int) -> str:
    return f"{n:,} record" if n == 1 else f"{n:,} records"
