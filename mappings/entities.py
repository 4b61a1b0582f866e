"""The catalogue of entities: what every reader of OPUS needs to know about each one, in one place.

The migration engine, the reconciler, the simulator and the profile all walk the legacy
store entity by entity. What they must agree on lives here and nowhere else:

* the legacy table and the key columns it is streamed (and resumed) in, in key order;
* the mapping function of ``mapping.md`` (``mappings/__init__.py``);
* how a trimmed legacy key is encoded in the compact key sets (``core/refs.py``);
* the first-key-wins rule for two legacy keys that are equal once trimmed.

``ENTITIES`` is in dependency order: a link's and an intelligence subject's mapping depends on
which persons and crimes the mapping accepts, so persons come first, then crimes, links and
intelligence. Pure data and functions: no database.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from core.refs import encode_crime_ref, encode_intel_ref
from mappings import map_crimes, map_intel, map_links, map_persons
from mappings.outcome import Issue, Mapped, MappingContext


def encode_nominal(key: Any) -> int | str:
    """A NOM_ID as a key set holds it: its number, else (not a number) its text."""
    try:
        return int(key)
    except (TypeError, ValueError):
        return str(key)


@dataclass(frozen=True)
class Entity:
    name: str  # person | crime | crime_person | intelligence: counts, xref, rejects, reports
    legacy_table: str  # lower-case legacy table name (core.schema.legacy_metadata)
    key_columns: tuple[str, ...]  # legacy columns the table is streamed and resumed in
    map_batch: Callable[[Sequence, MappingContext], list[Mapped]]
    #: A trimmed legacy key as the key sets hold it (None: links are not kept in a key set).
    encode_key: Callable[[Any], int | str] | None
    #: Whether two records whose keys are equal once trimmed are one key (the first accepted wins,
    #: the other is rejected DUPLICATE_KEY). Links are not: a link's key is what it maps to
    #: (crime, person, role), and equal links are migrated once (``mapping.md``).
    unique_key: bool = True

    @property
    def key_column(self) -> str:
        """The single key column of an entity keyed by one (all but links)."""
        (column,) = self.key_columns
        return column


PERSON = Entity("person", "nominal", ("nom_id",), map_persons, encode_nominal)
CRIME = Entity("crime", "crime", ("crime_no",), map_crimes, encode_crime_ref)
LINK = Entity("crime_person", "crime_nom", ("crime_no", "nom_id", "role"), map_links, None, unique_key=False)
INTELLIGENCE = Entity("intelligence", "intel", ("intel_no",), map_intel, encode_intel_ref)

#: Every entity, in the order they are migrated and reconciled.
ENTITIES: tuple[Entity, ...] = (PERSON, CRIME, LINK, INTELLIGENCE)
BY_NAME: dict[str, Entity] = {e.name: e for e in ENTITIES}
#: The entities with a key of their own (kept in key sets): all but links.
KEYED: tuple[Entity, ...] = tuple(e for e in ENTITIES if e.unique_key)


def first_key_wins(entity: Entity, m: Mapped, key_taken: bool) -> Mapped:
    """The rule for two legacy records whose keys are equal once trimmed (``CR/1/19`` and
    ``CR/1/19 ``): the first record the mapping *accepts*, in key order, owns the key; a later
    accepted record with that key is rejected ``DUPLICATE_KEY`` rather than silently merged
    into it. A rejected record owns nothing (the second may then migrate): what the migration
    writes does not depend on a record it did not write.

    ``key_taken``: whether an earlier record of this key was accepted. Returns ``m``, its
    ``reject`` set when the rule rejects it.
    """
    if key_taken and entity.unique_key and m.accepted:
        m.reject = Issue("DUPLICATE_KEY", entity.key_columns[0].upper(), m.legacy_key)
    return m
