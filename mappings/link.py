"""crime_person ← CRIME_NOM (``mapping.md``, "crime_person ← CRIME_NOM").

A link is rejected ``ORPHAN_LINK`` when its crime or its person is not migrated (absent,
deleted or rejected — the caller's ``ctx.crime_migrated`` / ``ctx.person_migrated`` say
which), then ``INVALID_ROLE`` for a role outside V/S/O/W.
"""

from __future__ import annotations

from typing import Iterable, Mapping

from mappings.outcome import Issue, Mapped, MappingContext
from mappings.parse import INVALID, code, parse_legacy_ref, parse_nom_id, text, trim

ENTITY = "crime_person"

ROLES = {"V": "VICTIM", "S": "SUSPECT", "O": "OFFENDER", "W": "WITNESS"}

#: Warning on a legacy link that normalises to a (crime, person, role) already mapped in the
#: same call. Not a mapping.md code: mapping.md says such links "are migrated once", and this
#: records which legacy row was folded into the first so the count of links read still adds up.
DUPLICATE_LINK = "DUPLICATE_LINK"


def map_links(rows: Iterable[Mapping], ctx: MappingContext) -> list[Mapped]:
    """Map a batch of legacy CRIME_NOM rows: one ``Mapped`` per row, same order.

    Links normalising to the same (crime, person, role) are migrated once: the first keeps
    its rows; each later one in this call has no rows and a ``DUPLICATE_LINK`` warning.
    Its ``legacy_key`` equals the first's, so across calls the engine can recognise it by key.
    """
    results: list[Mapped] = []
    seen: set[str] = set()
    for row in rows:
        mapped = map_link(row, ctx)
        if mapped.rows:
            if mapped.legacy_key in seen:
                mapped = Mapped(
                    ENTITY, mapped.legacy_key,
                    warnings=[Issue(DUPLICATE_LINK, "CRIME_NO", text(row.get("crime_no")))],
                )
            else:
                seen.add(mapped.legacy_key)
        results.append(mapped)
    return results


def link_key(crime_no: str, nom_id_text: str, role_text: str) -> str:
    """``CRIME_NO:NOM_ID:ROLE``, e.g. ``CR/004512/19:70031:VICTIM``."""
    return f"{crime_no}:{nom_id_text}:{role_text}"


def map_link(row: Mapping, ctx: MappingContext) -> Mapped:
    raw_crime = row.get("crime_no")
    crime_no = trim(raw_crime) or ""
    raw_nom = row.get("nom_id")
    nom_id = parse_nom_id(raw_nom)
    raw_role = row.get("role")
    role_code = code(raw_role)
    role = ROLES.get(role_code)
    legacy_key = link_key(
        crime_no,
        str(nom_id) if nom_id is not None else trim(raw_nom) or "",
        role or role_code or "",
    )

    # ORPHAN_LINK. Ambiguity: a malformed CRIME_NO or a non-numeric NOM_ID can never have been
    # migrated, so the link is ORPHAN_LINK without asking the predicates.
    if parse_legacy_ref(crime_no, "CR") is INVALID or not ctx.crime_migrated(crime_no):
        return Mapped(ENTITY, legacy_key, reject=Issue("ORPHAN_LINK", "CRIME_NO", text(raw_crime)))
    if nom_id is None or not ctx.person_migrated(nom_id):
        return Mapped(ENTITY, legacy_key, reject=Issue("ORPHAN_LINK", "NOM_ID", text(raw_nom)))
    if role is None:
        return Mapped(ENTITY, legacy_key, reject=Issue("INVALID_ROLE", "ROLE", text(raw_role)))

    link = {"crime_id": ctx.ids.linked_crime_id(crime_no), "person_id": ctx.ids.linked_person_id(nom_id), "role": role}
    return Mapped(ENTITY, legacy_key, rows={"crime_person": link})
