"""opus2iops command line: a thin shell over the library.

Each command parses its options, calls one library function, renders the result and maps
errors to exit codes (0 clean, 1 findings, 2 usage/configuration/connection error). All
errors are caught in ``_run``: a user error is one line saying what to fix, never a traceback.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Callable, Optional

import typer

from core import __version__
from core.errors import Opus2IopsError
from core.progress import set_quiet

def _flags_without_type(params) -> None:
    """Help that shows a flag as a flag: Typer (0.29) prints a type column for every option,
    ``<bool>`` for ``--dry-run`` or ``--help`` too, as if they took a value. A flag whose
    metavar is empty shows none. Options that take a value name it by their ``metavar``."""
    for param in params:
        if param is not None and getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""


class _Group(typer.core.TyperGroup):
    def get_params(self, ctx):
        params = super().get_params(ctx)
        _flags_without_type(params)
        return params

    def get_command(self, ctx, name):
        command = super().get_command(ctx, name)
        if command is not None:
            _flags_without_type([*command.params, command.get_help_option(ctx)])
        return command


app = typer.Typer(
    cls=_Group,
    add_completion=False,
    no_args_is_help=True,
    help="Move OPUS police records into iOPS in batches, and prove nothing was lost or changed.",
    context_settings={"help_option_names": ["-h", "--help"]},
)

#: Server URLs in short words: a narrow help column cuts a long word (a whole URL) short with "…".
_SERVER_URLS = "on a server postgresql+psycopg:// or mysql+pymysql:// then USER@HOST/DATABASE"
LegacyOpt = typer.Option(..., "--legacy", metavar="URL",
                         help=f"SQLAlchemy URL of the OPUS store, only ever read: sqlite:///opus.db, or {_SERVER_URLS}.")
TargetOpt = typer.Option(..., "--target", metavar="URL",
                         help=f"SQLAlchemy URL of the iOPS store: sqlite:///iops.db, or {_SERVER_URLS}.")
QuietOpt = typer.Option(False, "--quiet", "-q", help="No progress bars (they are off in pipes anyway).")

#: At most this many reconciliation workers. The work is CPU-bound, so processes beyond the
#: cores only compete for them; and each worker holds its own connections to both stores and
#: its own batches in memory. 32 workers (two connections each, plus this process's) stay
#: inside PostgreSQL's default max_connections (100) and MariaDB's (151) even with another
#: tool connected; a number above it is a typo, not a wish.
MAX_WORKERS = 32


def _run(work: Callable[[], int], on_interrupt: str | Callable[[KeyboardInterrupt], str] = "interrupted") -> None:
    """Run one command; the only place errors become exit codes.

    ``on_interrupt``: the line printed on Ctrl-C, or a function of the ``KeyboardInterrupt``
    making it (the library's interrupt may carry what it was doing, e.g. the run id).
    """
    try:
        code = work()
    except Opus2IopsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.exit_code)
    except KeyboardInterrupt as exc:
        typer.echo(on_interrupt(exc) if callable(on_interrupt) else on_interrupt, err=True)
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
    legacy: str = typer.Option(..., "--legacy", metavar="URL",
                               help="SQLAlchemy URL of the OPUS store to create and fill (a new file, or "
                                    f"an empty database): sqlite:///opus.db, or {_SERVER_URLS}."),
    crimes: int = typer.Option(10_000, "--crimes", min=1, metavar="N", help="Number of crimes (about 1 nominal per crime, 1 intelligence entry per 3)."),
    seed: int = typer.Option(2019, "--seed", metavar="S", help="Same seed, same store."),
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


class OnConflict(StrEnum):
    """What a delta run does with a record changed in OPUS *and* edited in iOPS (cutover.md)."""

    keep_iops = "keep-iops"
    take_opus = "take-opus"
    stop = "stop"


@app.command()
def migrate(
    legacy: str = LegacyOpt,
    target: str = TargetOpt,
    batch_size: int = typer.Option(2000, "--batch-size", metavar="N", help="Legacy records per batch (one transaction each), 1 to 100,000."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Map and validate everything; write nothing to the target (and no --out files: a dry run keeps no records)."),
    resume: Optional[int] = typer.Option(None, "--resume", metavar="RUN_ID", help="Continue an interrupted run after its last committed batch."),
    max_rejects: Optional[int] = typer.Option(None, "--max-rejects", min=0, metavar="N", help="Exit 1 when more than N records are rejected (default: rejects are reported, exit 0)."),
    out: Optional[Path] = typer.Option(None, "--out", metavar="DIR", help="Folder for the run's rejects.csv, warnings.csv, conflicts.csv (one record a line, each explained) and run.json (the counts); published together, readable by you only."),
    on_conflict: OnConflict = typer.Option(OnConflict.keep_iops, "--on-conflict", metavar="MODE",
                                           help="A record changed in OPUS and edited in iOPS since the last run: keep-iops (the default) leaves the iOPS edit and reports the conflict; take-opus overwrites it with the OPUS change (before-image kept for rollback, reported OVERWRITTEN); stop ends the run at the first conflicting batch, nothing of it written. Every conflict exits 1."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, max=MAX_WORKERS, metavar="N", help=f"Processes that map and digest records beside the one that writes, at most {MAX_WORKERS} (default: two on a machine of two cores or more when the store holds at least 50,000 records, else one). The result is the same whatever the number."),
    quiet: bool = QuietOpt,
) -> None:
    """Migrate OPUS into iOPS per mapping.md, in resumable batches; a re-run is a delta (cutover.md) that never overwrites iOPS edits unless told to. Prints the run id and a summary per entity; exit 1 on findings (conflicts, deletions in OPUS, rejects above --max-rejects)."""
    set_quiet(quiet)

    def work() -> int:
        from core.errors import UsageError
        from core.publish import check_output_folder
        from migrate.engine import migrate as run_migration
        from reports.text_migration import render_migration

        if out is not None:
            if dry_run:
                raise UsageError("--out cannot be combined with --dry-run: a dry run keeps no record of its rejects "
                                 "and warnings (its counts are printed); drop --dry-run to get the files")
            check_output_folder(out, "the migration's files")  # before the work, not after it
        result = run_migration(legacy, target, batch_size=batch_size, dry_run=dry_run, resume=resume,
                               max_rejects=max_rejects, on_conflict=on_conflict.value, workers=workers)
        # Written for every run that recorded something: one --on-conflict stop stopped, too.
        files = (_write_migration_files(target, result.run_id, out)
                 if out is not None and result.run_id is not None else None)
        typer.echo(render_migration(result, files))
        if result.too_many_rejects:
            where = ("this dry run's summary above (a dry run writes no mig_reject)" if result.dry_run else
                     str(files["rejects"]) if files else f"the target's mig_reject table, run_id = {result.run_id}")
            typer.echo(f"error: {result.total_rejected:,} records rejected, more than --max-rejects "
                       f"{result.max_rejects:,}: see {where}", err=True)
        return result.exit_code

    def interrupted(exc: KeyboardInterrupt) -> str:
        # migrate.engine.RunInterrupted carries the id once the run is recorded; a resumed run has it anyway.
        run_id = getattr(exc, "run_id", None) or resume
        if dry_run:
            return "interrupted: a dry run writes nothing"
        if run_id is None:
            return "interrupted before any batch was committed (see `runs`); start again with the same command"
        return f"interrupted: committed batches are kept; continue with `migrate --resume {run_id}` (see `runs`)"

    _run(work, interrupted)


def _write_migration_files(target: str, run_id: int, out: Path) -> dict[str, Path]:
    """The run's --out files, read back from the target's bookkeeping; their paths by key."""
    from migrate.findings import run_findings
    from reports.migration_files import write_migration_files

    with run_findings(target, run_id) as findings:
        return write_migration_files(findings, out)


@app.command()
def simulate(
    legacy: str = LegacyOpt,
    target: str = typer.Option(..., "--target", metavar="URL",
                               help="SQLAlchemy URL of the empty iOPS store to fill: sqlite:///vendor.db, or "
                                    f"{_SERVER_URLS}."),
    seed: int = typer.Option(7, "--seed", metavar="S", help="Same seed, same defects."),
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
    out: Path = typer.Option(..., "--out", metavar="DIR", help="Folder for discrepancies.csv, crime_stats.csv, summary.json, reconciliation.xlsx."),
    auto_threshold: float = typer.Option(90.0, "--auto-threshold", min=0, max=100, metavar="SCORE", help="Similarity score at or above which an unkeyed pair counts as present (AUTO)."),
    review_threshold: float = typer.Option(70.0, "--review-threshold", min=0, max=100, metavar="SCORE", help="Similarity score (at most --auto-threshold) at or above which a pair is listed for a person to decide (REVIEW)."),
    person_auto_threshold: float = typer.Option(98.0, "--person-auto", min=0, max=100, metavar="SCORE", help="Person match score (100 x the match probability) at or above which an unkeyed iOPS person counts as the legacy nominal (PROBABLE_MATCH / PROBABLE_DUPLICATE AUTO), when no other candidate comes close."),
    person_review_threshold: float = typer.Option(5.0, "--person-review", min=0, max=100, metavar="SCORE", help="Person match score (at most --person-auto) at or above which a pair is listed for a person to decide (REVIEW)."),
    fail_threshold: int = typer.Option(0, "--fail-threshold", min=0, metavar="N", help="Exit 1 when there are more than N discrepancies."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, max=MAX_WORKERS, metavar="N", help=f"Processes that share the mapping and comparison, at most {MAX_WORKERS} (default: one per CPU core, at most 4; stores under 50,000 records use one). The result is the same whatever the number."),
    go_live: Optional[str] = typer.Option(None, "--go-live", metavar="YYYY-MM-DD", help="Go-live day (UK local date): crimes recorded from then on are new work in iOPS, counted apart in the crime statistics. Default: the day after the latest REC_DATE in OPUS."),
    quiet: bool = QuietOpt,
) -> None:
    """Compare the OPUS store with an iOPS store (whoever filled it) and write the auditors' reports."""
    set_quiet(quiet)

    def work() -> int:
        from reconcile.run import ReconcileOptions, reconcile as run_reconcile
        from core.publish import check_output_folder
        from reports.reconciliation import write_reconciliation_reports
        from reports.text_reconcile import render_reconciliation

        from reconcile.stats import parse_go_live

        from reconcile.persons import PersonOptions

        options = ReconcileOptions(auto_threshold=auto_threshold, review_threshold=review_threshold,
                                   fail_threshold=fail_threshold, workers=workers,
                                   persons=PersonOptions(auto_threshold=person_auto_threshold,
                                                         review_threshold=person_review_threshold),
                                   go_live=parse_go_live(go_live) if go_live is not None else None)
        options.validate()
        check_output_folder(out)  # before the work, not after it
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
    run_id: int = typer.Argument(..., metavar="RUN_ID", help="The run to undo (see `runs`)."),
    target: str = TargetOpt,
    execute: bool = typer.Option(False, "--execute", help="Really undo it, in one transaction; refused while conflicts exist."),
    out: Optional[Path] = typer.Option(None, "--out", metavar="DIR", help="Folder for the report (rollback.json and rollback.xlsx); default: a new folder per run and time, rollback-run<RUN_ID>-<UTC time>."),
    quiet: bool = QuietOpt,
) -> None:
    """Dry run (default): what undoing RUN_ID would delete or restore, and every conflict with later work."""
    set_quiet(quiet)

    def work() -> int:
        from migrate.rollback import rollback as run_rollback
        from reports.rollback_report import default_folder, write_rollback_report
        from reports.text_runs import render_rollback

        with run_rollback(target, run_id, execute=execute) as result:
            if result.mode != "already_rolled_back":  # nothing analysed: no report
                write_rollback_report(result, out if out is not None else default_folder(run_id))
        typer.echo(render_rollback(result))
        return result.exit_code

    _run(work)


@app.command()
def demo(
    out: Path = typer.Option(Path("demo"), "--out", metavar="DIR", help="Folder for the stores and reports."),
    crimes: int = typer.Option(20_000, "--crimes", min=100, metavar="N", help="Size of the generated OPUS store."),
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


def main() -> None:
    """The ``opus2iops`` command that ``pip install`` makes (``[project.scripts]``)."""
    app(prog_name="opus2iops")


if __name__ == "__main__":
    app(prog_name="main.py")
