"""The code tables of ``mapping.md``, loaded at run time from the CSV files in this folder.

A migration team corrects a code table by editing its CSV — no release needed. Loading
validates each table and fails with one line naming the file and row, because a silently
wrong code table is how crimes end up mis-classified in the Home Office return.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from core.errors import ConfigError
from core.schema import text_length

TABLE_DIR = Path(__file__).resolve().parent

FILES = (
    "offence_crosswalk.csv",
    "ho_offences.csv",
    "disposals.csv",
    "divisions.csv",
    "grading_5x5x5_to_3x5x2.csv",
    "gm_districts.csv",
    "gm_places.csv",
)


@dataclass(frozen=True)
class CrosswalkRow:
    opus_code: str
    ho_code: str
    valid_from: dt.date | None  # inclusive; None = open
    valid_to: dt.date | None  # inclusive; None = open

    def covers(self, day: dt.date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_to is None or day <= self.valid_to
        )


@dataclass(frozen=True)
class HoOffence:
    ho_code: str
    description: str
    offence_group: str
    offence_subgroup: str
    police_uk_category: str


@dataclass(frozen=True)
class Grade:
    dimension: str  # source | intelligence | handling
    legacy_code: str
    legacy_meaning: str
    target_code: str
    needs_review: bool


@dataclass(frozen=True)
class Reference:
    crosswalk: dict[str, tuple[CrosswalkRow, ...]]  # OPUS code -> dated rows
    ho_offences: dict[str, HoOffence]
    disposals: dict[str, int]  # OPUS disposal -> HO outcome type
    divisions: dict[str, str]  # OPUS division -> ONS district code
    grading: dict[tuple[str, str], Grade]  # (dimension, legacy code) -> grade
    districts: tuple[dict, ...]  # gm_districts.csv rows (for the generator)
    places: tuple[dict, ...]  # gm_places.csv rows (for the generator)
    #: HO outcome type -> its label (disposals.csv ho_outcome_label), for readers of reports.
    outcome_labels: dict[int, str] = field(default_factory=dict)
    digest: str = field(default="")  # SHA-256 over the CSV bytes, in FILES order

    def ho_code_for(self, opus_code: str, day: dt.date) -> str | None:
        """The Home Office code for a (normalised) OPUS code on ``day``, or None."""
        for row in self.crosswalk.get(opus_code, ()):
            if row.covers(day):
                return row.ho_code
        return None


def _read(directory: Path, name: str) -> list[dict]:
    path = directory / name
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    except FileNotFoundError:
        raise ConfigError(f"code table missing: {path}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"code table {path} cannot be read: {exc}") from None


def _date(value: str, where: str) -> dt.date | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{where}: bad date {value!r} (expected YYYY-MM-DD or blank)") from None


def _need(row: dict, column: str, where: str) -> str:
    value = (row.get(column) or "").strip()
    if not value:
        raise ConfigError(f"{where}: column {column!r} is blank or missing")
    return value


def _fits(value: str, table: str, column: str, where: str) -> str:
    """A code-table value that goes into an iOPS column as it is: it must fit there (length,
    no NUL), checked once here so that the per-record check (``mappings/storable.py``) need not
    look at code-table columns — a table that does not fit is a configuration error to fix,
    not thousands of rejected records."""
    if "\x00" in value:
        raise ConfigError(f"{where}: a NUL character (no target store can hold it)")
    limit = text_length(table, column)
    if limit is not None and len(value) > limit:
        raise ConfigError(f"{where}: {value!r} is longer than iOPS {table}.{column} ({limit} characters)")
    return value


def load_reference(directory: Path | str | None = None) -> Reference:
    directory = Path(directory) if directory else TABLE_DIR
    return _load(directory.resolve())


@lru_cache(maxsize=4)
def _load(directory: Path) -> Reference:
    digest = hashlib.sha256()
    for name in FILES:
        try:
            digest.update(name.encode() + b"\0" + (directory / name).read_bytes())
        except FileNotFoundError:
            raise ConfigError(f"code table missing: {directory / name}") from None

    ho_offences: dict[str, HoOffence] = {}
    for i, row in enumerate(_read(directory, "ho_offences.csv"), start=2):
        where = f"ho_offences.csv line {i}"
        code = _need(row, "ho_code", where)
        ho_offences[code] = HoOffence(
            ho_code=_fits(code, "crime", "ho_offence_code", where),
            description=_fits(_need(row, "description", where), "crime", "offence_description", where),
            offence_group=_fits(_need(row, "offence_group", where), "crime", "offence_group", where),
            offence_subgroup=(row.get("offence_subgroup") or "").strip(),
            police_uk_category=_fits(_need(row, "police_uk_category", where), "crime", "police_uk_category", where),
        )

    crosswalk: dict[str, list[CrosswalkRow]] = {}
    for i, row in enumerate(_read(directory, "offence_crosswalk.csv"), start=2):
        where = f"offence_crosswalk.csv line {i}"
        code = _need(row, "opus_code", where).upper()
        ho = _need(row, "ho_code", where)
        if ho not in ho_offences:
            raise ConfigError(f"{where}: Home Office code {ho!r} is not in ho_offences.csv")
        entry = CrosswalkRow(code, ho, _date(row.get("valid_from"), where), _date(row.get("valid_to"), where))
        for other in crosswalk.get(code, []):
            lo = max(entry.valid_from or dt.date.min, other.valid_from or dt.date.min)
            hi = min(entry.valid_to or dt.date.max, other.valid_to or dt.date.max)
            if lo <= hi:
                raise ConfigError(f"{where}: {code} overlaps another row of the same code on {lo}")
        crosswalk.setdefault(code, []).append(entry)

    disposals: dict[str, int] = {}
    outcome_labels: dict[int, str] = {}
    for i, row in enumerate(_read(directory, "disposals.csv"), start=2):
        where = f"disposals.csv line {i}"
        try:
            outcome = int(_need(row, "ho_outcome", where))
        except ValueError:
            raise ConfigError(f"{where}: ho_outcome must be a whole number") from None
        if not 1 <= outcome <= 22:
            raise ConfigError(f"{where}: ho_outcome {outcome} is outside 1-22")
        disposals[_need(row, "opus_disposal", where).upper()] = outcome
        label = (row.get("ho_outcome_label") or "").strip()
        if label:
            outcome_labels.setdefault(outcome, label)

    divisions = {
        _need(row, "opus_div", f"divisions.csv line {i}").upper():
            _fits(_need(row, "district_code", f"divisions.csv line {i}"), "crime", "district_code",
                  f"divisions.csv line {i}")
        for i, row in enumerate(_read(directory, "divisions.csv"), start=2)
    }

    grading: dict[tuple[str, str], Grade] = {}
    for i, row in enumerate(_read(directory, "grading_5x5x5_to_3x5x2.csv"), start=2):
        where = f"grading_5x5x5_to_3x5x2.csv line {i}"
        dim = _need(row, "dimension", where).lower()
        if dim not in ("source", "intelligence", "handling"):
            raise ConfigError(f"{where}: unknown dimension {dim!r}")
        code = _need(row, "legacy_code", where).upper()
        grading[(dim, code)] = Grade(
            dimension=dim,
            legacy_code=_fits(code, "intelligence_report", "handling_conditions", where),
            legacy_meaning=_fits(_need(row, "legacy_meaning", where), "intelligence_report", "handling_conditions",
                                 where),
            target_code=_fits(_need(row, "target_code", where), "intelligence_report", "source_evaluation", where),
            needs_review=(row.get("needs_review") or "").strip().upper() == "Y",
        )

    return Reference(
        crosswalk={k: tuple(v) for k, v in crosswalk.items()},
        ho_offences=ho_offences,
        disposals=disposals,
        divisions=divisions,
        grading=grading,
        districts=tuple(_read(directory, "gm_districts.csv")),
        places=tuple(_read(directory, "gm_places.csv")),
        outcome_labels=outcome_labels,
        digest=digest.hexdigest(),
    )
