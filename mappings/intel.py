"""intelligence_report ← INTEL (``mapping.md``, "intelligence_report ← INTEL").

Intelligence text is sensitive: it is never put in an ``Issue`` (the EMPTY_INTELLIGENCE
reject carries value None), and nothing here logs or prints it.
"""

from __future__ import annotations

from typing import Iterable, Mapping

from mappings.geo import fill_lat_lon
from mappings.location import district_for, intel_location
from mappings.outcome import Issue, Mapped, MappingContext, optional_value, updated_at
from mappings.parse import (
    INVALID, UNKNOWN, clean_multiline, code, is_blank, is_deleted, parse_date,
    parse_legacy_ref, parse_local_datetime, parse_nom_id, text, trim,
)

ENTITY = "intelligence"

#: (legacy column, grading dimension) in the order they are checked and reported.
GRADING_COLUMNS = (("src_eval", "source"), ("int_eval", "intelligence"), ("handling", "handling"))


def map_intel(rows: Iterable[Mapping], ctx: MappingContext) -> list[Mapped]:
    """Map a batch of legacy INTEL rows: one ``Mapped`` per row, same order."""
    results = [map_intel_row(row, ctx, fill_geo=False) for row in rows]
    fill_lat_lon([m.rows["location"] for m in results if "location" in m.rows])
    return results


def map_intel_row(row: Mapping, ctx: MappingContext, *, fill_geo: bool = True) -> Mapped:
    raw_no = row.get("intel_no")
    legacy_ref = trim(raw_no) or ""
    if is_deleted(row.get("del_flag")):
        return Mapped(ENTITY, legacy_ref, excluded=True)

    def reject(reason: str, field: str, value) -> Mapped:
        return Mapped(ENTITY, legacy_ref, reject=Issue(reason, field, text(value)))

    parsed_ref = parse_legacy_ref(legacy_ref, "IN")
    if parsed_ref is INVALID:
        return reject("BAD_REFERENCE", "INTEL_NO", raw_no)
    year, digits = parsed_ref

    submitted_at, fault, _ = parse_local_datetime(row.get("submit_date"), row.get("submit_time"))
    if submitted_at is UNKNOWN:
        return reject("MISSING_DATE", "SUBMIT_DATE", row.get("submit_date"))
    if submitted_at is INVALID:
        if fault == "time":
            return reject("INVALID_DATE", "SUBMIT_TIME", row.get("submit_time"))
        return reject("INVALID_DATE", "SUBMIT_DATE", row.get("submit_date"))

    # INVALID_GRADING: each 5x5x5 dimension through grading_5x5x5_to_3x5x2.csv.
    grading = ctx.reference.grading
    grades = []
    for column, dimension in GRADING_COLUMNS:
        grade = grading.get((dimension, code(row.get(column))))
        if grade is None:
            return reject("INVALID_GRADING", column.upper(), row.get(column))
        grades.append(grade)
    source, assessment, handling = grades

    intel_text = clean_multiline(row.get("int_text"))
    if intel_text is None:
        return Mapped(ENTITY, legacy_ref, reject=Issue("EMPTY_INTELLIGENCE", "INT_TEXT", None))

    warnings: list[Issue] = []
    subject_person_id = _subject(row, ctx, warnings)
    district_code = district_for(row, ctx.reference, warnings)
    location = intel_location(legacy_ref, row, district_code, warnings, ctx.ids)
    if location is not None and fill_geo:
        fill_lat_lon([location])

    raw_review = row.get("review_date")
    review_date = optional_value(parse_date(raw_review), raw_review, warnings, "INVALID_REVIEW_DATE", "REVIEW_DATE")
    updated = updated_at(row.get("last_upd"), submitted_at, ctx)

    report = {
        "intel_id": ctx.ids.intel_id(legacy_ref),
        "intel_ref": f"INT-{year:04d}-{digits}",
        "legacy_ref": legacy_ref,
        "submitted_at": submitted_at,
        "source_evaluation": source.target_code,
        "intelligence_assessment": assessment.target_code,
        "handling_code": handling.target_code,
        "handling_conditions": (
            f"Legacy 5x5x5 handling code {handling.legacy_code}: {handling.legacy_meaning}"
            if handling.target_code == "C" else None
        ),
        "grading_review_required": source.needs_review or assessment.needs_review or handling.needs_review,
        "subject_person_id": subject_person_id,
        "intel_text": intel_text,
        "location_id": location["location_id"] if location is not None else None,
        "district_code": district_code,
        "review_date": review_date,
        # Ambiguity: mapping.md gives no blank rule for OFFICER; blank → NULL like OIC.
        "officer_collar": code(row.get("officer")),
        "source_system": "OPUS",
        "created_at": submitted_at,
        "updated_at": updated,
    }
    rows = {"intelligence_report": report}
    if location is not None:
        rows["location"] = location
    return Mapped(ENTITY, legacy_ref, rows=rows, warnings=warnings)


def _subject(row: Mapping, ctx: MappingContext, warnings: list[Issue]) -> str | None:
    """SUBJ_NOM_ID → the migrated person's id; blank → None; a nominal that is absent,
    deleted, rejected → None + ORPHAN_SUBJECT. Ambiguity: a value that is not a whole number
    cannot name a migrated nominal, so it is ORPHAN_SUBJECT too (0 is a number: asked as is)."""
    raw = row.get("subj_nom_id")
    if is_blank(raw):
        return None
    nom_id = parse_nom_id(raw)
    if nom_id is None or not ctx.person_migrated(nom_id):
        warnings.append(Issue("ORPHAN_SUBJECT", "SUBJ_NOM_ID", text(raw)))
        return None
    return ctx.ids.linked_person_id(nom_id)
