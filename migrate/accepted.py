"""Which legacy records this run accepts — what link and subject rules must know.

``mapping.md`` rejects a link whose crime or nominal is "absent, deleted or rejected", and
drops an intelligence subject likewise. That depends on the *current* legacy data as mapped
by this run, not on what an earlier run left in the target, so the run keeps the accepted
keys in memory. Keys are held as each entity encodes them (``mappings.entities``: a crime
reference ``CR/004512/19`` becomes 19004512, a NOM_ID is its number) in a Roaring bitmap
(``core.keyset.KeySet``): Python sets of ints for every crime, nominal and intelligence entry
would hold ~60 bytes a key, enough to push a migration of a million crimes past its memory
target (bench/README.md).
"""

from __future__ import annotations

from core.keyset import KeySet
from mappings.entities import CRIME, KEYED, PERSON


class AcceptedKeys:
    """The accepted keys of every entity with a key of its own (``mappings.entities.KEYED``);
    links are not kept (``add`` ignores them, ``has`` is False)."""

    def __init__(self) -> None:
        self._keys: dict[str, KeySet] = {e.name: KeySet() for e in KEYED}
        self._encode = {e.name: e.encode_key for e in KEYED}
        self._persons = self._keys[PERSON.name]
        self._crimes = self._keys[CRIME.name]

    def add(self, entity: str, legacy_key: str) -> None:
        keys = self._keys.get(entity)
        if keys is not None:
            keys.add(self._encode[entity](legacy_key))

    def has(self, entity: str, legacy_key: str) -> bool:
        keys = self._keys.get(entity)
        return keys is not None and self._encode[entity](legacy_key) in keys

    def has_person(self, nom_id) -> bool:
        """Whether the nominal ``nom_id`` (a number as the link and subject rules parse it) is accepted."""
        try:
            return int(nom_id) in self._persons
        except (TypeError, ValueError):
            return False

    def has_crime(self, crime_no: str) -> bool:
        return CRIME.encode_key(crime_no) in self._crimes

    def key_set(self, entity: str) -> KeySet:
        """The accepted keys of ``entity`` (to send to a worker process, or to ``install`` there)."""
        return self._keys[entity]

    def install(self, entity: str, keys: KeySet) -> None:
        """``keys`` as the accepted keys of ``entity``: a worker is told what the run accepted so far."""
        self._keys[entity] = keys
        self._persons = self._keys[PERSON.name]
        self._crimes = self._keys[CRIME.name]

    def encoded(self, entity: str, legacy_keys) -> KeySet:
        """A KeySet of ``legacy_keys`` of ``entity`` as this set holds them (a batch's keys, to add
        with ``add_all`` or to test with ``any_of`` at C speed, in this process or another)."""
        encode = self._encode[entity]
        return KeySet(encode(k) for k in legacy_keys)

    def add_all(self, entity: str, keys: KeySet) -> None:
        self._keys[entity].update(keys)

    def any_of(self, entity: str, keys: KeySet) -> bool:
        """Whether any of ``keys`` (from ``encoded``) is accepted."""
        return not self._keys[entity].isdisjoint(keys)

    def count(self, entity: str) -> int:
        return len(self._keys[entity])
