"""AcceptedKeys / KeySet: the compact key sets the migration and the reconciler keep in memory
for a whole run (and send to worker processes)."""

from __future__ import annotations

import pickle
import random

from hypothesis import given, strategies as st

from core.keyset import KeySet
from migrate.accepted import AcceptedKeys

# (no booleans: a Python set holds False and 0 as one key; legacy keys are never booleans)
# Integers beyond 2^64 and below 0 too: a bitmap cannot hold them, the key set must.
keys = st.one_of(st.integers(min_value=-2**70, max_value=2**70), st.integers(min_value=-10**15, max_value=10**15),
                 st.text(max_size=12))


@given(st.lists(keys, max_size=300), st.lists(keys, max_size=100))
def test_keyset_behaves_like_a_set(added, probes):
    s, ref = KeySet(), set()
    for k in added:
        s.add(k)
        ref.add(k)
    assert len(s) == len(ref)
    for k in added + probes:
        assert (k in s) == (k in ref), k


@given(st.lists(keys, max_size=200), st.lists(keys, max_size=200))
def test_keyset_update_and_isdisjoint_behave_like_a_sets(mine, theirs):
    a, b = KeySet(mine), KeySet(theirs)
    assert a.isdisjoint(b) == set(mine).isdisjoint(theirs)
    a.update(b)
    assert len(a) == len(set(mine) | set(theirs))
    assert all(k in a for k in mine + theirs)


@given(st.lists(keys, max_size=300))
def test_keyset_add_says_whether_the_key_is_new_and_lists_every_key_once(added):
    s, ref = KeySet(), set()
    for k in added:
        assert s.add(k) == (k not in ref), k
        ref.add(k)
    ints = list(s.sorted_ints())
    assert ints == sorted(k for k in ref if type(k) is int and k >= 0)
    assert sorted(ints + s.others(), key=repr) == sorted(ref, key=repr)


dense = st.integers(min_value=0, max_value=300_000)  # a few bitmap containers, so keys of one meet


@given(st.lists(st.one_of(keys, dense), max_size=300), st.lists(st.one_of(keys, dense), max_size=300),
       st.sets(st.one_of(keys, dense), max_size=50))
def test_keyset_without_gives_the_keys_no_other_set_holds_once_in_order(mine, theirs, plain):
    s, other = KeySet(), KeySet()
    for k in mine:
        s.add(k)
    for k in theirs:
        other.add(k)
    got = list(s.without(other, plain))
    assert set(got) == set(mine) - set(theirs) - plain and len(got) == len(set(got))
    ints = [k for k in got if type(k) is int and k >= 0]
    assert got[:len(ints)] == sorted(ints)  # numbers first, ascending (then the others)
    assert got[len(ints):] == [k for k in s.others() if k not in set(theirs) | plain]


@given(st.lists(st.one_of(keys, dense), max_size=300))
def test_a_keyset_sent_to_a_worker_holds_the_same_keys(added):
    s = KeySet(added)
    back = pickle.loads(pickle.dumps(s))
    assert len(back) == len(s) and all(k in back for k in added)
    assert list(back.sorted_ints()) == list(s.sorted_ints()) and back.others() == s.others()
    assert back.add(object()) and len(back) == len(s) + 1  # a set of its own, not a view of the sender's


def test_sparse_and_dense_keys_of_one_set_are_all_found_in_order():
    s = KeySet()
    sparse = list(range(0, 10**12, 10**9)) + [2**64 - 1, 2**64, 2**66]
    for k in sparse:
        s.add(k)
    dense_run = list(range(5_000, 6_000)) + [65_535, 65_536, 70_000]  # next to an already-held key
    for k in dense_run:
        s.add(k)
    assert all(k in s for k in sparse + dense_run)
    assert 4_999 not in s and 10**9 + 1 not in s and 2**65 not in s
    assert list(s.sorted_ints()) == sorted(set(sparse + dense_run))
    assert len(s) == len(set(sparse + dense_run))


def test_a_million_dense_keys_go_to_a_worker_in_a_few_hundred_kilobytes():
    s = KeySet(range(19_000_001, 20_000_001))  # a million crime numbers of one year
    assert len(pickle.dumps(s)) < 300_000
    assert 19_500_000 in s and 19_000_000 not in s and len(s) == 1_000_000


def test_sparse_huge_numbers_cost_a_few_bytes_each():
    rng = random.Random(7)
    numbers = [rng.randrange(10**15) for _ in range(50_000)]  # NOM_IDs scattered over 10^15
    s = KeySet(numbers)
    assert len(pickle.dumps(s)) < 32 * len(numbers)  # a Python set of ints holds ~60 bytes a key
    assert all(k in s for k in numbers) and len(s) == len(set(numbers))


@given(st.integers(min_value=0, max_value=999_999), st.integers(min_value=0, max_value=99))
def test_an_encoded_crime_reference_decodes_to_itself(number, year):
    from core.refs import decode_ref, encode_ref

    for prefix in ("CR", "IN"):
        ref = f"{prefix}/{number:06d}/{year:02d}"
        assert decode_ref(encode_ref(ref, prefix), prefix) == ref


def test_only_the_exact_reference_of_the_entity_becomes_a_number():
    from core.refs import encode_crime_ref, encode_intel_ref

    assert encode_crime_ref("CR/004512/19") == 19004512 == encode_intel_ref("IN/004512/19")
    for other in ("IN/004512/19", "CR/004512/19\n", " CR/004512/19", "CR/00451２/19", "CR/004512/1９", "cr/004512/19",
                  "CR-004512-19", "", None, 19004512):
        assert encode_crime_ref(other) == other
    assert encode_intel_ref("CR/004512/19") == "CR/004512/19"


def test_accepted_keys_encode_references_and_nom_ids():
    a = AcceptedKeys()
    a.add("crime", "CR/004512/19")
    a.add("person", "70031")
    a.add("intelligence", "IN/000001/08")
    a.add("crime", "NOT A REF")
    assert a.has_crime("CR/004512/19") and not a.has_crime("CR/004512/18")
    assert a.has("crime", "NOT A REF") and not a.has("crime", "CR/004513/19")
    assert a.has_person(70031) and a.has_person("70031") and not a.has_person(70032)
    assert not a.has_person(None) and not a.has_person("x")
    assert a.has("intelligence", "IN/000001/08") and not a.has("intelligence", "IN/000002/08")
    assert a.count("crime") == 2
