"""Console summary of a migration run."""

from __future__ import annotations

from migrate.engine import MigrationResult

COLUMNS = ("read", "written", "updated", "unchanged", "excluded", "rejected")


def render_migration(result: MigrationResult) -> str:
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
    header = f"{'entity':<14}" + "".join(f"{c:>11}" for c in COLUMNS) + "  invariant"
    lines.append(header)
    lines.append("-" * len(header))
    for entity, c in result.counts.items():
        ok = "ok" if c.balanced else "BROKEN"
        lines.append(f"{entity:<14}" + "".join(f"{getattr(c, col):>11,}" for col in COLUMNS) + f"  {ok}")
    lines.append("invariant: read = written + updated + unchanged + excluded + rejected")
    for title, attr in (("rejected by reason", "rejected_by"), ("warnings by reason", "warnings_by")):
        items = [(e, code, n) for e, c in result.counts.items() for code, n in sorted(getattr(c, attr).items())]
        if items:
            lines.append("")
            lines.append(title + ":")
            lines += [f"  {entity:<14}{code:<26}{n:>9,}" for entity, code, n in items]
    if not result.dry_run and result.state == "interrupted":
        lines.append("")
        lines.append(f"interrupted: continue with  migrate --resume {result.run_id}  (committed batches are kept)")
    if not result.balanced:
        lines.append("")
        lines.append("ERROR: the counts do not add up; some records are unaccounted for")
    if result.run_id is not None and result.total_rejected:
        lines.append("")
        lines.append(f"rejected records are in the target's mig_reject table (run_id = {result.run_id}) "
                     "with their reason and raw legacy row")
    return "\n".join(lines)
