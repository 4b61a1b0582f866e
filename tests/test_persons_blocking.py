"""Blocking caps of the person matcher (``PersonOptions.block_cap`` / ``weak_cap``): a key shared
by more nominals than its cap is dropped, one at the cap is kept — counted over the whole
stream, whichever chunk of the stream the nominals come in."""

from __future__ import annotations

import datetime as dt
import random
import string

import pytest

from reconcile.persons import PersonMatcher, PersonOptions

D = dt.date(1977, 6, 3)
NAMESAKES = 5


def _candidates(cap: int) -> set[int]:
    """The nominals paired with one iOPS person: ``NAMESAKES`` identical unkeyed nominals of
    its name and date of birth, spread among 24,000 others (several chunks of the stream)."""
    matcher = PersonMatcher(PersonOptions(block_cap=cap, weak_cap=cap))
    matcher.add_new("P-1", "ZYXWVU", "QUENTIN", D, "MALE", None, True, ())
    rng = random.Random(5)
    letters = string.ascii_uppercase.replace("Z", "").replace("Q", "")
    namesakes = {500, 6_000, 11_000, 16_500, 23_000}  # chunks of the stream are 10,000 nominals
    for i in range(24_000):
        if i in namesakes:
            matcher.add_legacy(1_000_000 + i, "ZYXWVU", "QUENTIN", D, "MALE", None, keyed=False)
        family = "".join(rng.choice(letters) for _ in range(8))
        given = "".join(rng.choice(letters) for _ in range(6))
        matcher.add_legacy(i, family, given, D + dt.timedelta(days=rng.randrange(-9000, 9000)), "MALE", None,
                           keyed=True)
    legacy, new = matcher.candidate_pairs()
    assert set(new.tolist()) <= {0}
    return {matcher.legacy.ref[i] for i in legacy.tolist()}


@pytest.mark.parametrize("cap, found", [(NAMESAKES, NAMESAKES), (NAMESAKES - 1, 0)])
def test_a_block_over_its_cap_is_dropped_over_the_whole_stream(cap, found):
    paired = _candidates(cap)
    assert len(paired) == found
    assert all(ref >= 1_000_000 for ref in paired)
