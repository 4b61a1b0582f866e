"""How a record is recognised by a reader: its time in UK local time, offence, district and
place, and the names behind codes (districts, outcomes, people).

Pure functions over the mapping's own values. A migrated record's context comes from its
mapped rows; a record the mapping rejects has none, so its context is worked out from the
raw row with the mapping's own parsers (``parse_local_datetime``, the crosswalk, the division
table, ``collapse`` and ``normalise_postcode``) — the same readings the mapping makes, so a
reject that is an unmapped offence shows the OPUS code, a bad date shows nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Mapping

from mappings.location import district_for
from mappings.outcome import Mapped
from mappings.parse import LONDON, code, collapse, normalise_postcode, parse_local_datetime, text
from mappings.reference import Reference
from mappings.storable import escaped


@dataclass(frozen=True)
class RecordContext:
    """What a reader needs to recognise a legacy record: its recorded/submitted time (UK
    local ``YYYY-MM-DD HH:MM``), offence description, district name, place, and UK local day."""

    recorded_local: str | None = None
    offence: str | None = None
    district: str | None = None
    place: str | None = None
    day: str | None = None  # YYYY-MM-DD (UK local), for "missing by day"
    person: str | None = None  # a person record: its name and NOM_ID

#: Columns of the recorded / submitted time of each entity's legacy row.
_TIME_COLUMNS = {"crime": ("rec_date", "rec_time"), "intelligence": ("submit_date", "submit_time")}
_MAIN = {"crime": "crime", "intelligence": "intelligence_report"}
_INSTANT = {"crime": "recorded_at", "intelligence": "submitted_at"}



def uk_local(instant: dt.datetime | None) -> str | None:
    """``YYYY-MM-DD HH:MM`` of an instant in UK civil time (a naive instant is taken as UTC)."""
    if instant is None or not isinstance(instant, dt.datetime):
        return None
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=dt.timezone.utc)
    return instant.astimezone(LONDON).strftime("%Y-%m-%d %H:%M")


#: Per entity: (mapped row, instant column) of its recorded / submitted time.
DAY_SOURCE = {"crime": ("crime", "recorded_at"), "intelligence": ("intelligence_report", "submitted_at")}


def day_of(entity: str, m: Mapped) -> str | None:
    """The UK local day of a migrated crime's or report's recorded / submitted time."""
    main = m.rows.get(_MAIN[entity]) if m.rows else None
    return uk_day(main[_INSTANT[entity]]) if main is not None else None


def uk_day(instant: dt.datetime | None) -> str | None:
    """``YYYY-MM-DD``, the UK civil date of an instant. Runs for every record, so it is cached
    by UTC date: UK time is UTC or an hour ahead, so only at 23:xx UTC can the UK date be the
    next one (in summer time) — those hours are cached apart."""
    if type(instant) is not dt.datetime:
        return None
    if instant.tzinfo is not _UTC:
        instant = instant.replace(tzinfo=_UTC) if instant.tzinfo is None else instant.astimezone(_UTC)
    key = instant.toordinal()
    if instant.hour == 23:
        key = -key
    day = _DAYS.get(key)
    if day is None:
        if len(_DAYS) > 100_000:
            _DAYS.clear()
        day = _DAYS[key] = instant.astimezone(LONDON).strftime("%Y-%m-%d")
    return day


_UTC = dt.timezone.utc
#: UTC date ordinal (negative: its 23:xx hour) -> UK local day (``uk_day``).
_DAYS: dict[int, str] = {}


def district_name(reference: Reference, district_code: str | None) -> str | None:
    """The district's name (``gm_districts.csv``), else its code."""
    if not district_code:
        return None
    for row in reference.districts:
        if row.get("lad_code") == district_code:
            return row.get("district") or district_code
    return district_code


def outcome_label(reference: Reference, outcome: Any) -> str | None:
    """``8 – Community resolution``: a Home Office outcome with its label (``disposals.csv``)."""
    if outcome is None or outcome == "":
        return None
    try:
        number = int(outcome)
    except (TypeError, ValueError):
        return str(outcome)
    label = reference.outcome_labels.get(number)
    return f"{number} – {label}" if label else str(number)


def offence_text(reference: Reference, ho_code: str | None) -> str | None:
    """``Burglary - residential (28E)``: a Home Office offence by its description and code."""
    if not ho_code:
        return None
    offence = reference.ho_offences.get(ho_code)
    return f"{offence.description} ({ho_code})" if offence else ho_code


def person_name(family: Any, given: Any, nom_id: Any = None) -> str | None:
    """``SMITH, John (NOM_ID 70031)`` — how a row names a person instead of a uuid."""
    family, given = escaped(collapse(family)), escaped(collapse(given))
    name = ", ".join(part for part in (family, given) if part)
    if nom_id is not None and nom_id != "":
        return f"{name} (NOM_ID {nom_id})" if name else f"NOM_ID {nom_id}"
    return name or None


def place_of(address: Any, postcode: Any) -> str | None:
    """Address, else postcode, else None (bytes that are not text shown escaped, ``\\xff``)."""
    return escaped(collapse(address) or collapse(postcode)) or None


def context(entity: str, raw: Mapping, m: Mapped | None, reference: Reference) -> RecordContext:
    """The context of one legacy crime, intelligence or person record."""
    rows = m.rows if m is not None else {}
    if entity == "person":
        person = rows.get("person")
        if person is not None:
            return RecordContext(person=person_name(person.get("family_name"), person.get("given_names"),
                                                    person.get("legacy_nominal_id")))
        key = m.legacy_key if m is not None else text(raw.get("nom_id"))
        return RecordContext(person=person_name(raw.get("surname"), raw.get("forenames"), key))
    if entity not in _MAIN:
        return RecordContext()
    main = rows.get(_MAIN[entity])
    if main is not None:  # migrated: its mapped values
        location = rows.get("location") or {}
        instant = main.get(_INSTANT[entity])
        return RecordContext(
            recorded_local=uk_local(instant),
            offence=main.get("offence_description") if entity == "crime" else None,
            district=district_name(reference, main.get("district_code")),
            place=place_of(location.get("address"), location.get("postcode")),
            day=uk_day(instant),
        )
    # Rejected: what the mapping's parsers make of the raw row.
    date_col, time_col = _TIME_COLUMNS[entity]
    instant, _, day = parse_local_datetime(raw.get(date_col), raw.get(time_col))
    instant = instant if isinstance(instant, dt.datetime) else None
    offence = None
    if entity == "crime":
        opus = code(raw.get("off_code"))
        ho = reference.ho_code_for(opus, day) if opus and day else None
        found = reference.ho_offences.get(ho) if ho else None
        offence = found.description if found else (f"OPUS code {escaped(text(raw.get('off_code')).strip())}"
                                                    if opus else None)
    postcode = normalise_postcode(raw.get("pcode")) if entity == "crime" else None
    return RecordContext(
        recorded_local=uk_local(instant),
        offence=offence,
        district=district_name(reference, district_for(raw, reference, [])),
        place=place_of(raw.get("addr_line") if entity == "crime" else None,
                       postcode if isinstance(postcode, str) else None),
        day=uk_day(instant),
    )
