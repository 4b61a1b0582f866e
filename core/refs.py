"""Legacy references as the key sets hold them: ``CR/004512/19`` → 19004512.

An int goes into the key set's bitmap (``core.keyset``), a string costs a set entry. Used by the
migration's accepted keys and by the reconciler's key sets alike, so both read a reference
the same way.
"""

from __future__ import annotations

from typing import Any


def encode_ref(key: Any, prefix: str) -> int | str:
    """``CR/004512/19`` → 19004512 (year then number). Only the exact form with the entity's own
    ``prefix`` becomes a number — an intelligence reference among crimes, or a reference with a
    line break or other digits in it, stays text, so it can never pass for the record whose
    number it repeats."""
    if type(key) is str and len(key) == 12 and key[2] == "/" and key[9] == "/" and key[:2] == prefix:
        digits = key[10:] + key[3:9]  # year then number: int(digits) == year * 1_000_000 + number
        if digits.isascii() and digits.isdigit():
            return int(digits)
    return key


# One per entity, at module level: key sets go to worker processes, their encoder with them.
def encode_crime_ref(key: Any) -> int | str:
    return encode_ref(key, "CR")


def encode_intel_ref(key: Any) -> int | str:
    return encode_ref(key, "IN")


def decode_ref(encoded: int, prefix: str) -> str:
    """The reference ``encode_ref(…, prefix)`` made ``encoded`` from: 19004512 → ``CR/004512/19``.

    Only well-formed references (``CR/`` + 6 digits + ``/`` + 2 digits) are encoded as numbers,
    so the number is below 10^8 and the text is exactly the reference the mapping accepted.
    """
    if not 0 <= encoded < 100_000_000:
        raise ValueError(f"{encoded} is not an encoded legacy reference")
    year, number = divmod(encoded, 1_000_000)
    return f"{prefix}/{number:06d}/{year:02d}"
