"""The seeded sample of matched records (reconcile/sample.py): random, fixed by its seed, the same
whatever the order records are offered in and whatever the number of worker processes."""

from __future__ import annotations

import random

import openpyxl
import pytest

from reconcile.run import ReconcileOptions, reconcile
from reconcile.sample import MatchedSample
from reports.reconciliation import write_reconciliation_reports
from tests.test_reconcile import stores  # noqa: F401 (fixture)

KEYS = [f"CR/{n:06d}/19" for n in range(2000)]


def _sample(keys, seed=1, size=10) -> list[str]:
    s = MatchedSample(seed, size)
    for key in keys:
        s.offer("crime", key)
    return [key for key, _, _ in s.chosen().get("crime", [])]


def test_the_order_of_offers_does_not_matter():
    shuffled = KEYS[:]
    random.Random(5).shuffle(shuffled)
    assert _sample(KEYS) == _sample(shuffled) == _sample(reversed(KEYS))


def test_the_seed_decides_and_the_size_is_kept():
    one, other = _sample(KEYS, seed=1), _sample(KEYS, seed=2)
    assert len(one) == len(set(one)) == 10 and one != other
    assert _sample(KEYS[:4], size=10) and len(_sample(KEYS[:4], size=10)) == 4  # fewer records than the size
    assert _sample(KEYS, size=0) == []


def test_it_is_spread_over_the_records_not_the_first_ones():
    picks = _sample(KEYS, size=200)
    positions = sorted(KEYS.index(k) for k in picks)
    # a uniform sample of 200 out of 2000: about 100 in each half
    assert 60 < sum(p < 1000 for p in positions) < 140


def test_entities_are_sampled_apart():
    s = MatchedSample(3, 2)
    for key in KEYS[:50]:
        s.offer("crime", key)
    s.offer("person", "70001", None)
    s.offer("crime", "CR/999999/24", "CRI-2024-1", "AUTO")
    chosen = s.chosen()
    assert [k for k, _, _ in chosen["person"]] == ["70001"] and len(chosen["crime"]) == 2
    assert s.offered == {"crime": 51, "person": 1}


@pytest.mark.parametrize("workers", [2])
def test_a_reconciliation_samples_the_same_records_whatever_the_workers(stores, tmp_path, workers):  # noqa: F811
    legacy, target = stores
    one = reconcile(legacy, target, ReconcileOptions(workers=1, batch_size=2, sample_size=3, sample_seed=9))
    many = reconcile(legacy, target, ReconcileOptions(workers=workers, batch_size=2, parallel_min_rows=0,
                                                      sample_size=3, sample_seed=9))
    assert one.sample == many.sample and one.sample
    assert {r.entity for r in one.sample} == {"person", "crime", "intelligence"}
    crimes = [r for r in one.sample if r.entity == "crime"]
    assert all(r.new_ref and r.when is not None and r.what for r in crimes)  # found in iOPS, recognisable
    other = reconcile(legacy, target, ReconcileOptions(workers=1, batch_size=2, sample_size=3, sample_seed=10))
    assert [r.legacy_ref for r in other.sample] != [r.legacy_ref for r in one.sample]
    paths = write_reconciliation_reports(one, tmp_path / "out")
    ws = openpyxl.load_workbook(paths["workbook"])["Sample to check"]
    assert [r[2] for r in ws.iter_rows(min_row=2, max_col=3, values_only=True)] == [r.legacy_ref for r in one.sample]


def test_a_rank_is_the_keyed_hash_of_entity_and_key_and_ranked_offers_are_offers():
    """The sample is fixed by the seed and the keys (module doc): a key's rank is BLAKE2b of
    ``entity NUL key`` keyed by the seed's own hash, whoever computes it (a worker ranks the
    records it evaluates; the deciding process offers them ranked, a batch at a time)."""
    import hashlib

    from reconcile.sample import ranker

    salt = hashlib.blake2b(b"9", digest_size=16).digest()
    for key in ("CR/000001/18", "70001", "IN/000002/19", "ZOË"):
        digest = hashlib.blake2b(f"crime\x00{key}".encode(), digest_size=8, key=salt).digest()
        assert ranker(9, "crime")(key) == int.from_bytes(digest, "big")
    assert ranker(9, "crime")("CR/000001/18") != ranker(9, "person")("CR/000001/18")
    offered, ranked = MatchedSample(9, 5), MatchedSample(9, 5)
    for key in KEYS:
        offered.offer("crime", key)
    rank = ranked.rank_of("crime")
    for start in range(0, len(KEYS), 300):
        ranked.offer_ranked("crime", [(rank(k), k) for k in KEYS[start:start + 300]])
    assert ranked.chosen() == offered.chosen() and ranked.offered == offered.offered == {"crime": len(KEYS)}
