"""A compact set of legacy keys (the migration's accepted keys, the reconciler's key sets).

Legacy keys are held as integers where they can be (a crime reference ``CR/004512/19``
becomes 19004512, ``core.refs``; a NOM_ID is itself) in a Roaring bitmap (``pyroaring``),
which holds a million keys in a few hundred kilobytes instead of the ~60 MB of a Python set
of ints, sends them to a worker process as one short byte string, and subtracts one set
from another container by container. Keys a bitmap cannot hold (text, negative numbers,
numbers of 2^32 and more) are kept in a plain set beside it, so the set takes any key.
"""

from __future__ import annotations

import heapq
from typing import Iterable, Iterator

from pyroaring import BitMap

_LIMIT = 1 << 32  # BitMap holds 0 <= key < 2^32


class KeySet:
    """A set of keys: integers 0 <= key < 2^32 in a Roaring bitmap, anything else in a set."""

    __slots__ = ("_ints", "_other")

    def __init__(self, keys: Iterable = ()) -> None:
        keys = keys if isinstance(keys, (list, tuple)) else list(keys)
        # One bulk construction of the bitmap: ~10 times cheaper than adding key by key.
        ints = [k for k in keys if type(k) is int and 0 <= k < _LIMIT]
        self._ints = BitMap(ints)
        self._other: set = set() if len(ints) == len(keys) else {
            k for k in keys if not (type(k) is int and 0 <= k < _LIMIT)}

    def add(self, key) -> bool:
        """Add ``key``; True if it was not held yet."""
        if type(key) is int and 0 <= key < _LIMIT:
            ints = self._ints
            if key in ints:
                return False
            ints.add(key)
            return True
        if key in self._other:
            return False
        self._other.add(key)
        return True

    def __contains__(self, key) -> bool:
        if type(key) is int and 0 <= key < _LIMIT:
            return key in self._ints
        return key in self._other

    def __len__(self) -> int:
        return len(self._ints) + len(self._other)

    def update(self, other: "KeySet") -> None:
        """Add every key of ``other`` (bitmaps are united as bitmaps)."""
        self._ints |= other._ints
        self._other |= other._other

    def isdisjoint(self, other: "KeySet") -> bool:
        """Whether no key is in both sets (bitmaps intersected as bitmaps)."""
        return self._ints.isdisjoint(other._ints) and self._other.isdisjoint(other._other)

    def __getstate__(self):
        return self._ints, self._other

    def __setstate__(self, state) -> None:
        self._ints, self._other = state

    def sorted_ints(self) -> Iterator[int]:
        """The non-negative integer keys, ascending (the other keys: ``others``)."""
        spilled = sorted(k for k in self._other if type(k) is int and k >= 0)
        return heapq.merge(self._ints, spilled) if spilled else iter(self._ints)

    def others(self) -> list:
        """The keys that are not non-negative integers (text, negative numbers), sorted by
        their text so the order is the same on every run."""
        return sorted((k for k in self._other if not (type(k) is int and k >= 0)), key=lambda k: (str(type(k)), str(k)))

    def without(self, *others) -> Iterator:
        """The keys of this set that none of ``others`` (KeySets or plain sets) holds: the
        non-negative integers ascending, then the rest in ``others()`` order.

        The bitmaps are subtracted as bitmaps, so two sets of a million keys that nearly
        coincide cost a few container operations, not a million look-ups."""
        ints = self._ints
        plain = []
        for other in others:
            if isinstance(other, KeySet):
                ints = ints - other._ints
                plain.append(other._other)
            else:
                plain.append(other)
        for key in heapq.merge(ints, sorted(k for k in self._other if type(k) is int and k >= 0)):
            if not any(key in p for p in plain):
                yield key
        for key in self.others():
            if not any(key in other for other in others):
                yield key
