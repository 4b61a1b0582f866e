"""crime ← CRIME (``mapping.md``, "crime ← CRIME" and its "location").

``map_crime`` maps one legacy row; ``map_crimes`` maps a batch (one ``Mapped`` per input
row, in input order) and converts all the batch's grid references in one pyproj call.
"""

from __future__ import annotations

from typing import Iterable, Mapping

from mappings.geo import fill_lat_lon
from mappings.location import crime_location, district_for
from mappings.outcome import Issue, Mapped, MappingContext, updated_at
from mappings.parse import (
    INVALID, UNKNOWN, clean_multiline, code, is_deleted,
    parse_legacy_ref, parse_local_datetime, text, trim,
)

ENTITY = "crime"

STATUSES = {"O": "OPEN", "F": "FINALISED", "X": "CANCELLED", "T": "TRANSFERRED"}


def map_crimes(rows: Iterable[Mapping], ctx: MappingContext) -> list[Mapped]:
    """Map a batch of legacy CRIME rows: one ``Mapped`` per row, same order."""
    results = [map_crime(row, ctx, fill_geo=False) for row in rows]
    fill_lat_lon([m.rows["location"] for m in results if m.rows])
    return results


def map_crime(row: Mapping, ctx: MappingContext, *, fill_geo: bool = True) -> Mapped:
    """Map one legacy CRIME row (lower-case column names) to crime + location rows,
    a reject, or an exclusion. Rejects follow mapping.md's first-fault order."""
    get = row.get
    raw_no = get("crime_no")
    legacy_ref = trim(raw_no) or ""
    if is_deleted(get("del_flag")):
        return Mapped(ENTITY, legacy_ref, excluded=True)

    # BAD_REFERENCE
    parsed_ref = parse_legacy_ref(legacy_ref, "CR")
    if parsed_ref is INVALID:
        return _reject(legacy_ref, "BAD_REFERENCE", "CRIME_NO", raw_no)
    year, digits = parsed_ref

    # MISSING_DATE / INVALID_DATE
    recorded_at, fault, recorded_day = parse_local_datetime(get("rec_date"), get("rec_time"))
    if recorded_at is UNKNOWN:
        return _reject(legacy_ref, "MISSING_DATE", "REC_DATE", get("rec_date"))
    if recorded_at is INVALID:
        if fault == "time":
            return _reject(legacy_ref, "INVALID_DATE", "REC_TIME", get("rec_time"))
        return _reject(legacy_ref, "INVALID_DATE", "REC_DATE", get("rec_date"))

    # UNMAPPED_OFFENCE: the crosswalk row valid on the UK *local* date of recorded_at
    # (so '31/03/2017 2400' is 1 April 2017 and takes the post-2017 code).
    reference = ctx.reference
    off_code = code(get("off_code"))
    ho_code = reference.ho_code_for(off_code, recorded_day) if off_code else None
    offence = reference.ho_offences.get(ho_code) if ho_code else None
    if offence is None:
        return _reject(legacy_ref, "UNMAPPED_OFFENCE", "OFF_CODE", get("off_code"))

    # INVALID_STATUS
    status = STATUSES.get(code(get("status")))
    if status is None:
        return _reject(legacy_ref, "INVALID_STATUS", "STATUS", get("status"))

    warnings: list[Issue] = []
    committed_from = _committed(row, "from_date", "from_time", warnings)
    committed_to = _committed(row, "to_date", "to_time", warnings)
    if committed_from is not None and committed_to is not None and committed_to < committed_from:
        # Both kept. Ambiguity: the issue names TO_DATE, and its value shows both ends as typed
        # ("FROM_DATE FROM_TIME > TO_DATE TO_TIME") so a reviewer sees the inversion at once.
        warnings.append(Issue("COMMITTED_RANGE", "TO_DATE", _range_text(row)))

    district_code = district_for(row, reference, warnings)
    outcome_code = _outcome(row, reference, status, warnings)
    location = crime_location(legacy_ref, row, district_code, warnings, ctx.ids)
    if fill_geo:
        fill_lat_lon([location])

    updated = updated_at(get("last_upd"), recorded_at, ctx)

    crime = {
        "crime_id": ctx.ids.crime_id(legacy_ref),
        "crime_ref": f"CRI-{year:04d}-{digits}",
        "legacy_ref": legacy_ref,
        "ho_offence_code": offence.ho_code,
        "offence_description": offence.description,
        "offence_group": offence.offence_group,
        "police_uk_category": offence.police_uk_category,
        "recorded_at": recorded_at,
        "committed_from": committed_from,
        "committed_to": committed_to,
        "location_id": location["location_id"],
        "district_code": district_code,
        "status": status,
        "outcome_code": outcome_code,
        # Ambiguity: mapping.md gives no blank rule for MO_TEXT; blank → NULL as elsewhere.
        "mo_summary": clean_multiline(get("mo_text")),
        "oic_collar": code(get("oic")),
        "source_system": "OPUS",
        "created_at": recorded_at,
        "updated_at": updated,
    }
    return Mapped(ENTITY, legacy_ref, rows={"location": location, "crime": crime}, warnings=warnings)


def _reject(legacy_ref: str, reason: str, field: str, value) -> Mapped:
    return Mapped(ENTITY, legacy_ref, reject=Issue(reason, field, text(value)))


def _committed(row: Mapping, date_col: str, time_col: str, warnings: list[Issue]):
    """committed_from / committed_to: unknown date → None; invalid → None + warning.

    Ambiguity: an unknown date with an invalid time is just unknown (a time without a date
    says nothing), so no warning; a valid date with an invalid time warns on the time column.
    """
    instant, fault, _ = parse_local_datetime(row.get(date_col), row.get(time_col))
    if instant is UNKNOWN:
        return None
    if instant is INVALID:
        column = time_col if fault == "time" else date_col
        warnings.append(Issue("INVALID_COMMITTED_DATE", column.upper(), text(row.get(column))))
        return None
    return instant


def _range_text(row: Mapping) -> str:
    def part(col: str) -> str:
        return trim(row.get(col)) or ""

    return f"{part('from_date')} {part('from_time')} > {part('to_date')} {part('to_time')}".strip()


def _outcome(row: Mapping, reference, status: str, warnings: list[Issue]) -> int | None:
    """``DISPOSAL`` → Home Office outcome; blank → None; unknown → None + UNKNOWN_DISPOSAL.

    Ambiguity: a FINALISED crime whose disposal is unknown gets both UNKNOWN_DISPOSAL and
    FINALISED_NO_OUTCOME — they are separate facts an auditor counts separately.
    """
    raw = row.get("disposal")
    disposal = code(raw)
    outcome = None
    if disposal is not None:
        outcome = reference.disposals.get(disposal)
        if outcome is None:
            warnings.append(Issue("UNKNOWN_DISPOSAL", "DISPOSAL", text(raw)))
    if outcome is None and status == "FINALISED":
        warnings.append(Issue("FINALISED_NO_OUTCOME", "DISPOSAL", text(raw)))
    return outcome
