"""What the reconciler remembers of each legacy entity: its keys, as compact key sets.

The decision step (``reconcile.decide``) fills an ``EntityKeys`` per entity as it takes the
keyed pass's outcomes in key order; later passes read it — the link pass and the intelligence
subjects map against the persons and crimes the mapping accepts, the target scan tells
UNEXPECTED records from the keys no live legacy record holds, and unkeyed matching takes the
accepted records left without a keyed counterpart. Keys are encoded by the catalogue's
``Entity.encode_key`` (``mappings.entities``), so the big set is a bitmap
(``core.keyset.KeySet``), cheap to hold and to send to worker processes.
"""

from __future__ import annotations

from typing import Any, Callable

from core.keyset import KeySet


class EntityKeys:
    """What the reconciler remembers of one legacy entity, as compact sets of encoded keys.

    ``accepted``: live records the mapping migrates (the big set). ``rejected``: live records
    the mapping rejects. ``excluded``: logically deleted. ``unmatched``: accepted records
    with no keyed counterpart (yet) — the candidates of unkeyed matching.
    """

    def __init__(self, encode: Callable[[Any], int | str]) -> None:
        self.encode = encode
        self.accepted = KeySet()  # the big one: a bitmap, cheap to hold and to send to workers
        self.rejected: set = set()
        self.excluded: set = set()
        self.unmatched: set = set()

    def is_live(self, key) -> bool:
        k = self.encode(key)
        return k in self.accepted or k in self.rejected

    def is_excluded(self, key) -> bool:
        return self.encode(key) in self.excluded

    def is_accepted(self, key) -> bool:
        return self.encode(key) in self.accepted

    def is_matched(self, key) -> bool:
        """Accepted by the mapping and present in the new store (keyed or AUTO)."""
        k = self.encode(key)
        return k in self.accepted and k not in self.unmatched

