"""The mapping of ``mapping.md``: pure functions from legacy OPUS rows to iOPS rows.

Batch functions (one ``Mapped`` per input row, in input order)::

    map_persons(rows, ctx)   NOMINAL   -> person
    map_crimes(rows, ctx)    CRIME     -> location + crime
    map_links(rows, ctx)     CRIME_NOM -> crime_person
    map_intel(rows, ctx)     INTEL     -> intelligence_report (+ location when gridded)

Legacy rows are mappings keyed by lower-case legacy column names. No database, no I/O.

Contract (what the engine, the reconciler and the simulator rely on):

* the result list is 1:1 with the input rows and in the same order (zip them);
* ``excluded`` (DEL_FLAG 'Y') and rejected results have ``rows == {}``; accepted results
  carry every target row with exactly the columns of ``core/schema.py``;
* a link that normalises to a (crime, person, role) already mapped *in the same call* is
  accepted with ``rows == {}`` and a ``DUPLICATE_LINK`` warning (same ``legacy_key`` as the
  first); across calls it carries identical rows and key, so writers dedupe by key;
* timestamps are aware UTC with microsecond 0; ids are deterministic (``mappings.ids``);
* ``Issue.value`` is the named legacy column's value as text (untrimmed), never INT_TEXT.

Where each rule of mapping.md lives: ``crime.py`` (crime), ``location.py`` (location and
division), ``person.py``, ``link.py``, ``intel.py``; shared parsing in ``parse.py``, ids in
``ids.py``, grid conversion in ``geo.py``; values no engine can store in ``storable.py``.
"""

from mappings import crime as _crime, intel as _intel, link as _link, person as _person
from mappings.crime import map_crime
from mappings.intel import map_intel_row
from mappings.link import map_link
from mappings.outcome import Issue, Mapped, MappingContext
from mappings.person import map_person
from mappings.storable import map_storable


# The batch functions everyone uses (engine, reconciler, simulator): the rules of each
# entity module between the readability and storability rules of ``storable.py``.
def map_persons(rows, ctx: MappingContext) -> list[Mapped]:
    return map_storable(rows, ctx, _person.map_persons)


def map_crimes(rows, ctx: MappingContext) -> list[Mapped]:
    return map_storable(rows, ctx, _crime.map_crimes)


def map_links(rows, ctx: MappingContext) -> list[Mapped]:
    return map_storable(rows, ctx, _link.map_links)


def map_intel(rows, ctx: MappingContext) -> list[Mapped]:
    return map_storable(rows, ctx, _intel.map_intel)


__all__ = [
    "Issue", "Mapped", "MappingContext",
    "map_persons", "map_crimes", "map_links", "map_intel",
    "map_person", "map_crime", "map_link", "map_intel_row",
]
