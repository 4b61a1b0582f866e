"""person ← NOMINAL (``mapping.md``, "person ← NOMINAL").

Every live nominal migrates, linked or not.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Any, Iterable, Mapping

from mappings.outcome import Issue, Mapped, MappingContext, optional_value, updated_at
from mappings.parse import (
    INVALID, UNKNOWN, code, collapse, is_blank, is_deleted, local_date, normalise_pnc,
    parse_date, parse_nom_id, text, to_utc_second, trim,
)

ENTITY = "person"

SEXES = {"M": "MALE", "F": "FEMALE"}  # anything else (U, blank, junk) → UNKNOWN


def map_persons(rows: Iterable[Mapping], ctx: MappingContext) -> list[Mapped]:
    """Map a batch of legacy NOMINAL rows: one ``Mapped`` per row, same order."""
    return [map_person(row, ctx) for row in rows]


def person_key(raw_nom_id: Any) -> tuple[int | None, str]:
    """(NOM_ID as int or None, the legacy key text): ``str(NOM_ID)``, or the trimmed raw text
    when it is not a whole number."""
    nom_id = parse_nom_id(raw_nom_id)
    return nom_id, (str(nom_id) if nom_id is not None else trim(raw_nom_id) or "")


def split_name(surname: Any, forenames: Any) -> tuple[str | None, str | None]:
    """(family name, given names): 'SURNAME, FORENAMES' in SURNAME with FORENAMES blank is
    split at the first comma; then each trimmed and collapsed, case kept; blank → None."""
    family = text(surname)
    given = text(forenames)
    if family is not None and "," in family and is_blank(given):
        family, _, given = family.partition(",")
    return collapse(family), collapse(given)


def map_person(row: Mapping, ctx: MappingContext) -> Mapped:
    raw_id = row.get("nom_id")
    nom_id, legacy_key = person_key(raw_id)
    if is_deleted(row.get("del_flag")):
        return Mapped(ENTITY, legacy_key, excluded=True)
    if nom_id is None:
        # Ambiguity: mapping.md has no NOM_ID failure. NOM_ID is the primary key; one that is
        # not a whole number fitting the target INTEGER cannot be a person: BAD_REFERENCE.
        return Mapped(ENTITY, legacy_key, reject=Issue("BAD_REFERENCE", "NOM_ID", text(raw_id)))

    family_name, given_names = split_name(row.get("surname"), row.get("forenames"))
    if family_name is None:
        return Mapped(ENTITY, legacy_key, reject=Issue("MISSING_NAME", "SURNAME", text(row.get("surname"))))

    warnings: list[Issue] = []
    run_started = _run_start(ctx.run_started)

    raw_dob = row.get("dob")
    dob = parse_date(raw_dob)
    if dob is UNKNOWN:
        dob = None
    elif dob is INVALID or dob > _run_date(run_started):
        # "after the run date": the run's UK local date; a DOB equal to it is accepted.
        warnings.append(Issue("INVALID_DOB", "DOB", text(raw_dob)))
        dob = None

    raw_pnc = row.get("pnc_id")
    pnc = optional_value(normalise_pnc(raw_pnc), raw_pnc, warnings, "INVALID_PNC", "PNC_ID")
    stamp = updated_at(row.get("last_upd"), run_started, ctx)

    person = {
        "person_id": ctx.ids.person_id(nom_id),
        "legacy_nominal_id": nom_id,
        "family_name": family_name,
        "given_names": given_names,
        "date_of_birth": dob,
        "sex": SEXES.get(code(row.get("sex")), "UNKNOWN"),
        "pnc_id": pnc,
        "ethnicity_code": code(row.get("eth_code")),
        "source_system": "OPUS",
        "created_at": stamp,
        "updated_at": stamp,
    }
    return Mapped(ENTITY, legacy_key, rows={"person": person}, warnings=warnings)


@lru_cache(maxsize=8)
def _run_start(run_started: dt.datetime) -> dt.datetime:
    return to_utc_second(run_started)


@lru_cache(maxsize=8)
def _run_date(run_started: dt.datetime) -> dt.date:
    return local_date(run_started)
