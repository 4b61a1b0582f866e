"""The mapping of ``mapping.md``: pure functions from legacy OPUS rows to iOPS rows.

Batch functions (one ``Mapped`` per input row, in input order)::

    map_persons(rows, ctx)   NOMINAL   -> person
    map_crimes(rows, ctx)    CRIME     -> location + crime
    map_links(rows, ctx)     CRIME_NOM -> crime_person
    map_intel(rows, ctx)     INTEL     -> intelligence_report (+ location when gridded)

Legacy rows are mappings keyed by lower-case legacy column names. No database, no I/O.
"""

from mappings.crime import map_crime, map_crimes
from mappings.intel import map_intel, map_intel_row
from mappings.link import map_link, map_links
from mappings.outcome import Issue, Mapped, MappingContext
from mappings.person import map_person, map_persons

__all__ = [
    "Issue", "Mapped", "MappingContext",
    "map_persons", "map_crimes", "map_links", "map_intel",
    "map_person", "map_crime", "map_link", "map_intel_row",
]
