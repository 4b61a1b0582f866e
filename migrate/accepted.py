"""Which legacy records this run accepts — what link and subject rules must know.

``mapping.md`` rejects a link whose crime or nominal is "absent, deleted or rejected", and
drops an intelligence subject likewise. That depends on the *current* legacy data as mapped
by this run, not on what an earlier run left in the target, so the run keeps the accepted
keys in memory. Keys are held as integers (a crime reference ``CR/004512/19`` becomes
19004512) in a Roaring bitmap (``core.keyset.KeySet``): Python sets of ints for every crime,
nominal and intelligence entry would hold ~60 bytes a key, enough to push a migration of a
million crimes past its memory target (bench/README.md).
"""

from __future__ import annotations

from core.keyset import KeySet
from core.refs import encode_crime_ref, encode_intel_ref

#: The key set's encoder of each referenced entity (core.refs: the reconciler reads them alike).
_ENCODE_REF = {"crime": encode_crime_ref, "intelligence": encode_intel_ref}


class AcceptedKeys:
    def __init__(self) -> None:
        self._keys: dict[str, KeySet] = {"person": KeySet(), "crime": KeySet(), "intelligence": KeySet()}

    def add(self, entity: str, legacy_key: str) -> None:
        keys = self._keys.get(entity)
        if keys is not None:
            keys.add(self._encode(entity, legacy_key))

    def has(self, entity: str, legacy_key: str) -> bool:
        keys = self._keys.get(entity)
        return keys is not None and self._encode(entity, legacy_key) in keys

    def has_person(self, nom_id) -> bool:
        try:
            return int(nom_id) in self._keys["person"]
        except (TypeError, ValueError):
            return False

    def has_crime(self, crime_no: str) -> bool:
        return encode_crime_ref(crime_no) in self._keys["crime"]

    def count(self, entity: str) -> int:
        return len(self._keys[entity])

    @staticmethod
    def _encode(entity: str, legacy_key: str):
        if entity == "person":
            try:
                return int(legacy_key)
            except ValueError:
                return legacy_key
        return _ENCODE_REF[entity](legacy_key)
