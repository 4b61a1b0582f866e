"""Deterministic target ids (``uuid5`` under one fixed project namespace).

The same legacy record always gets the same target id, so a re-run, a crash-resume or the
reconciler recomputing expectations reproduces identical rows and digests. Ids are derived
from the *trimmed* legacy key; the names are prefixed with the entity so a crime and an
intelligence entry with the same digits can never collide.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

#: Fixed for the life of the project: changing it changes every migrated id.
NAMESPACE = uuid.UUID("6f2b0c9e-4d1a-5b7e-9c3f-0a8e5d2c1b47")

LOCATION_OWNERS = ("crime", "intelligence")


_NS_HASH = hashlib.sha1(NAMESPACE.bytes)  # copied per id: cheaper than hashing the prefix again
# RFC 4122 variant: the top two bits of byte 8 become 10, so its first hex digit is 8-b.
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def _id(name: str) -> str:
    """``str(uuid.uuid5(NAMESPACE, name))`` computed without building UUID objects (3x
    faster; a million crimes need two each). Equality with ``uuid.uuid5`` is tested."""
    sha = _NS_HASH.copy()
    sha.update(name.encode("utf-8", "surrogatepass"))
    h = sha.hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


def crime_id(legacy_ref: str) -> str:
    """Target ``crime_id`` for a trimmed ``CRIME_NO``."""
    return _id("crime:" + legacy_ref)


def intel_id(legacy_ref: str) -> str:
    """Target ``intel_id`` for a trimmed ``INTEL_NO``."""
    return _id("intelligence:" + legacy_ref)


def person_id(nom_id: int) -> str:
    """Target ``person_id`` for a ``NOM_ID``."""
    return _id(f"person:{int(nom_id)}")


# Links and subjects name the same crimes and persons again and again (in legacy key order,
# so mostly close together): a small cache turns most of those ids into a dict hit. A crime or
# person mapped itself uses the plain function: it is mapped once, so its look-up would miss.
linked_crime_id = lru_cache(maxsize=8192)(crime_id)
linked_person_id = lru_cache(maxsize=1 << 16)(person_id)


def location_id(owner_entity: str, legacy_ref: str) -> str:
    """Target ``location_id`` of the one location a crime or intelligence entry owns."""
    if owner_entity not in LOCATION_OWNERS:
        raise ValueError(f"location owner must be one of {LOCATION_OWNERS}, not {owner_entity!r}")
    return _id(f"location:{owner_entity}:{legacy_ref}")


@dataclass(frozen=True)
class IdFunctions:
    """The id functions a mapping uses (``MappingContext.ids``): ``REAL`` everywhere a row
    may be written; ``SKIPPED`` for the reconciler alone (below)."""

    crime_id: Callable[[str], str]
    intel_id: Callable[[str], str]
    person_id: Callable[[int], str]
    location_id: Callable[[str, str], str]
    linked_crime_id: Callable[[str], str]
    linked_person_id: Callable[[int], str]


REAL = IdFunctions(crime_id, intel_id, person_id, location_id, linked_crime_id, linked_person_id)

#: What every id is when the mapping runs with ``SKIPPED``: not None (a mapped subject or
#: location is still *there*), and no uuid, so it can never pass for a real id.
SKIPPED_ID = "(id not computed)"


def _skipped(*_args) -> str:
    return SKIPPED_ID


#: The reconciler matches records by their legacy keys and compares no ids (mapping.md's ids
#: are derived from those keys), so it maps without computing them: ~1.3 us an id, and a
#: million crimes bring some six million ids (crime, location, person, link, intelligence).
SKIPPED = IdFunctions(_skipped, _skipped, _skipped, _skipped, _skipped, _skipped)
