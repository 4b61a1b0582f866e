"""What a migration run writes for people (``migrate --out DIR``, cutover.md).

``rejects.csv`` and ``warnings.csv`` (``entity, legacy_key, reason, field, value, explanation``),
``conflicts.csv`` (``entity, legacy_key, target_table, target_id, kind, opus_fields, iops_fields,
resolution``) and ``run.json`` (the run's id, state, counts per entity with the invariant's
terms, start and end), rendered from :func:`migrate.findings.run_findings`; it reads the
records as a stream, so a million rejects take the memory of one page.

The four are one result: staged and published together by ``core.publish.ReportSet`` (a
failure half-way leaves the folder's previous set as it was, and nothing half-written), each
file mode 0600 (they name people and offences). The CSV files are UTF-8 with a byte-order mark
(Excel otherwise reads ``ZOË`` as ``ZOÃ‹``) and RFC 4180 (CRLF, quoted where needed).

Every value that came from a record goes through ``reports.safe.neutralise`` (a cell that
could be a formula is shown as text), and intelligence text never appears: a value of the
INT_TEXT field, should one ever reach ``mig_reject``, is written as its fingerprint.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from pathlib import Path
from typing import Iterable

from core.digest import text_fingerprint
from core.publish import SETS, ReportSet
from mappings.explanations import explain
from migrate.findings import BESIDE_INVARIANT, INVARIANT, INVARIANT_TERMS, Conflict, Issue, RunFindings
from reports.safe import mask_credentials, neutralise

FILE_NAMES = {"rejects": "rejects.csv", "warnings": "warnings.csv", "conflicts": "conflicts.csv", "run": "run.json"}
assert tuple(FILE_NAMES.values()) == SETS["migration"]  # run.json, the index, last

ISSUE_COLUMNS = ("entity", "legacy_key", "reason", "field", "value", "explanation")
CONFLICT_COLUMNS = ("entity", "legacy_key", "target_table", "target_id", "kind", "opus_fields", "iops_fields",
                    "resolution")
BOM = "\ufeff"

#: Legacy and target names of intelligence text: a value of one of these is only ever a fingerprint.
SENSITIVE_FIELDS = frozenset({"int_text", "intel_text"})
_FINGERPRINT = re.compile(r"sha256:[0-9a-f]{12} len=\d+")

WHAT = "the migration's files"


def write_migration_files(findings: RunFindings, out_dir: Path) -> dict[str, Path]:
    """Write the run's four files together into ``out_dir``; return their paths by key
    (``rejects``, ``warnings``, ``conflicts``, ``run``). ``OutputError`` when the folder cannot
    hold them (nothing is published then)."""
    staging = ReportSet(Path(out_dir), "migration", what=WHAT)
    try:
        with staging.errors():
            rows = {
                "rejects": _write_csv(staging, FILE_NAMES["rejects"], ISSUE_COLUMNS,
                                      (_issue_row(i) for i in findings.rejects())),
                "warnings": _write_csv(staging, FILE_NAMES["warnings"], ISSUE_COLUMNS,
                                       (_issue_row(i) for i in findings.warnings())),
                "conflicts": _write_csv(staging, FILE_NAMES["conflicts"], CONFLICT_COLUMNS,
                                        (_conflict_row(c) for c in findings.conflicts())),
            }
            with staging.create(FILE_NAMES["run"]) as out:
                json.dump(run_document(findings, rows), out, indent=2, ensure_ascii=False)
                out.write("\n")
            published = staging.publish()
    except BaseException:
        staging.discard()
        raise
    return {key: published[name] for key, name in FILE_NAMES.items()}


def _write_csv(staging: ReportSet, name: str, columns: tuple[str, ...], rows: Iterable[list]) -> int:
    with staging.create(name) as out:
        out.write(BOM)
        writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180: CRLF, quotes where needed
        writer.writerow(columns)
        n = 0
        for row in rows:
            writer.writerow(row)
            n += 1
    return n


def shown_value(field: str | None, value: str | None) -> str:
    """A record's offending value as a report shows it: intelligence text as its fingerprint
    (defence in depth: the engine never stores it), anything else made spreadsheet-safe."""
    if value is None:
        return ""
    if (field or "").casefold() in SENSITIVE_FIELDS and not _FINGERPRINT.fullmatch(value):
        return text_fingerprint(value)
    return _cell(value)


def _cell(value) -> str:
    return "" if value is None else neutralise(str(value))


def _issue_row(issue: Issue) -> list[str]:
    return [_cell(issue.entity), _cell(issue.legacy_key), _cell(issue.reason), _cell(issue.field),
            shown_value(issue.field, issue.value), explain(issue.reason)]


def _conflict_row(c: Conflict) -> list[str]:
    return [_cell(c.entity), _cell(c.legacy_key), _cell(c.target_table), _cell(c.target_id), _cell(c.kind),
            _cell(";".join(c.opus_fields)), _cell(";".join(c.iops_fields)), _cell(c.resolution)]


def run_document(findings: RunFindings, rows: dict[str, int]) -> dict:
    """``run.json``: the run's facts, its counts with the invariant's terms, and how many rows
    each file holds."""
    entities = {}
    for name, tally in findings.entities.items():
        entities[name] = {
            "read": tally["read"],
            **{term: tally[term] for term in INVARIANT_TERMS},
            **{term: tally[term] for term in BESIDE_INVARIANT},
            "balanced": tally.balanced,
            "rejected_by": dict(sorted(tally.rejected_by.items())),
            "warnings_by": dict(sorted(tally.warnings_by.items())),
        }
    return {
        "id": findings.run_id,
        "state": findings.state,
        "started_at": _iso(findings.started_at),
        "finished_at": _iso(findings.finished_at),
        "target": mask_credentials(findings.target_url),
        "legacy": mask_credentials(findings.legacy_url),
        "invariant": INVARIANT,
        "beside_the_invariant": {
            "deleted_in_opus": "records the tool migrated that OPUS has since deleted (flagged or vanished); "
                               "nothing is deleted in iOPS",
            "overwritten": "of conflicted: iOPS edits overwritten by --on-conflict take-opus (before-images kept)",
        },
        "balanced": findings.balanced,
        "counts": entities,
        "files": {FILE_NAMES[key]: {"rows": n} for key, n in rows.items()},
    }


def _iso(moment) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
