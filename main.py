"""opus2iops command line: a thin shell over the library.

Each command parses its options, calls one library function, renders the result and maps
errors to exit codes (0 clean, 1 findings, 2 usage/configuration/connection error). All
errors are caught in ``_run``: a user error is one line saying what to fix, never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import typer

from core import __version__
from core.errors import Opus2IopsError
from core.progress import set_quiet

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Move OPUS police records into iOPS in batches, and prove nothing was lost or changed.",
    context_settings={"help_option_names": ["-h", "--help"]},
)

LegacyOpt = typer.Option(..., "--legacy", help="SQLAlchemy URL of the OPUS store (only ever read), e.g. sqlite:///opus.db")
TargetOpt = typer.Option(..., "--target", help="SQLAlchemy URL of the iOPS store, e.g. postgresql+psycopg://postgres@127.0.0.1/iops")
QuietOpt = typer.Option(False, "--quiet", "-q", help="No progress bars (they are off in pipes anyway).")


def _run(work: Callable[[], int], on_interrupt: str = "interrupted") -> None:
    """Run one command; the only place errors become exit codes."""
    try:
        code = work()
    except Opus2IopsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo(on_interrupt, err=True)
        raise typer.Exit(2)
    raise typer.Exit(code or 0)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"opus2iops {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    pass


@app.command()
def generate(
    legacy: str = LegacyOpt,
    crimes: int = typer.Option(10_000, "--crimes", min=1, help="Number of crimes (about 1 nominal per crime, 1 intelligence entry per 3)."),
    seed: int = typer.Option(2019, "--seed", help="Same seed, same store."),
    quiet: bool = QuietOpt,
) -> None:
    """Create and fill a synthetic OPUS store with realistic Greater Manchester data and every quirk of opus-legacy.md."""
    set_quiet(quiet)

    def work() -> int:
        from reports.text_generate import render_profile
        from synth.generate import generate as gen

        result = gen(legacy, crimes=crimes, seed=seed)
        typer.echo(render_profile(result.profile))
        return 0

    _run(work)


@app.command()
def migrate(
    legacy: str = LegacyOpt,
    target: str = TargetOpt,
    batch_size: int = typer.Option(2000, "--batch-size", min=1, help="Legacy records per batch (one transaction each)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Map and validate everything; write nothing to the target."),
    resume: Optional[int] = typer.Option(None, "--resume", metavar="RUN_ID", help="Continue an interrupted run after its last committed batch."),
    max_rejects: Optional[int] = typer.Option(None, "--max-rejects", min=0, help="Exit 1 when more records than this are rejected (default: rejects are reported, exit 0)."),
    quiet: bool = QuietOpt,
) -> None:
    """Migrate OPUS into iOPS per mapping.md, in resumable batches; prints the run id and a summary per entity."""
    set_quiet(quiet)

    def work() -> int:
        from migrate.engine import migrate as run_migration
        from reports.text_migration import render_migration

        result = run_migration(legacy, target, batch_size=batch_size, dry_run=dry_run, resume=resume,
                               max_rejects=max_rejects)
        typer.echo(render_migration(result))
        return result.exit_code

    _run(work, "interrupted: committed batches are kept; continue with migrate --resume RUN_ID (see `runs`)")


@app.command()
def simulate(
    legacy: str = LegacyOpt,
    target: str = TargetOpt,
    seed: int = typer.Option(7, "--seed", help="Same seed, same defects."),
    truth: Optional[Path] = typer.Option(None, "--truth", metavar="FILE", help="Write the injected defects (ground truth) here as JSON."),
    quiet: bool = QuietOpt,
) -> None:
    """Fill --target the way a faulty vendor migration would (lost, altered, duplicated, unexpected, re-keyed records)."""
    set_quiet(quiet)

    def work() -> int:
        from reports.text_reconcile import render_simulation
        from synth.simulate import simulate as run_simulation

        result = run_simulation(legacy, target, seed=seed, truth_path=truth)
        typer.echo(render_simulation(result))
        return 0

    _run(work)


@app.command()
def reconcile(
    legacy: str = LegacyOpt,
    target: str = TargetOpt,
    out: Path = typer.Option(..., "--out", help="Folder for discrepancies.csv, crime_stats.csv, summary.json, reconciliation.xlsx."),
    auto_threshold: float = typer.Option(90.0, "--auto-threshold", help="Similarity score (0-100) at or above which an unkeyed pair counts as present (AUTO)."),
    review_threshold: float = typer.Option(70.0, "--review-threshold", help="Similarity score at or above which a pair is listed for a person to decide (REVIEW)."),
    fail_threshold: int = typer.Option(0, "--fail-threshold", help="Exit 1 when there are more discrepancies than this."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Processes that share the mapping and comparison (default: one per CPU core, at most 4; stores under 50,000 records use one). The result is the same whatever the number."),
    quiet: bool = QuietOpt,
) -> None:
    """Compare the OPUS store with an iOPS store (whoever filled it) and write the auditors' reports."""
    set_quiet(quiet)

    def work() -> int:
        from reconcile.run import ReconcileOptions, reconcile as run_reconcile
        from reports.reconciliation import check_out_dir, write_reconciliation_reports
        from reports.text_reconcile import render_reconciliation

        options = ReconcileOptions(auto_threshold=auto_threshold, review_threshold=review_threshold,
                                   fail_threshold=fail_threshold, workers=workers)
        options.validate()
        check_out_dir(out)  # before the work, not after it
        result = run_reconcile(legacy, target, options)
        write_reconciliation_reports(result, out)
        typer.echo(render_reconciliation(result))
        return result.exit_code

    _run(work)


@app.command()
def runs(
    target: str = TargetOpt,
    as_json: bool = typer.Option(False, "--json", help="Print a JSON array (id, state, started_at, finished_at, counts, ...)."),
) -> None:
    """List migration runs with their counts and state."""

    def work() -> int:
        from migrate.runs import list_runs
        from reports.text_runs import render_runs, runs_json

        items = list_runs(target)
        typer.echo(runs_json(items) if as_json else render_runs(items))
        return 0

    _run(work)


@app.command()
def rollback(
    run_id: int = typer.Argument(..., help="The run to undo (see `runs`)."),
    target: str = TargetOpt,
    execute: bool = typer.Option(False, "--execute", help="Really undo it, in one transaction; refused while conflicts exist."),
    out: Path = typer.Option(Path("rollback-report"), "--out", help="Folder for the dry-run report (JSON and Excel)."),
    quiet: bool = QuietOpt,
) -> None:
    """Dry run (default): what undoing RUN_ID would delete or restore, and every conflict with later work."""
    set_quiet(quiet)

    def work() -> int:
        from migrate.rollback import rollback as run_rollback
        from reports.text_runs import render_rollback

        result = run_rollback(target, run_id, execute=execute, out_dir=out)
        typer.echo(render_rollback(result))
        return result.exit_code

    _run(work)


@app.command()
def demo(
    out: Path = typer.Option(Path("demo"), "--out", help="Folder for the stores and reports."),
    crimes: int = typer.Option(20_000, "--crimes", min=100, help="Size of the generated OPUS store."),
    quiet: bool = QuietOpt,
) -> None:
    """The whole story on SQLite: generate, migrate, simulate a faulty migration, reconcile both, report."""
    set_quiet(quiet)

    def work() -> int:
        from reports.text_reconcile import render_demo
        from synth.demo import demo as run_demo

        result = run_demo(out, crimes=crimes)
        typer.echo(render_demo(result))
        return 0

    _run(work)


if __name__ == "__main__":
    app(prog_name="main.py")
