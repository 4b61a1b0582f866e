"""AcceptedKeys / IntSet: the compact key sets the migration keeps in memory for a whole run."""

from __future__ import annotations

import random
import sys

from hypothesis import given, strategies as st

from core.intset import IntSet
from migrate.accepted import AcceptedKeys

# (no booleans: a Python set holds False and 0 as one key; legacy keys are never booleans)
keys = st.one_of(st.integers(min_value=-10**15, max_value=10**15), st.text(max_size=12))


@given(st.lists(keys, max_size=300), st.lists(keys, max_size=100))
def test_intset_behaves_like_a_set(added, probes):
    s, ref = IntSet(), set()
    for k in added:
        s.add(k)
        ref.add(k)
    assert len(s) == len(ref)
    for k in added + probes:
        assert (k in s) == (k in ref), k


@given(st.lists(keys, max_size=300))
def test_intset_add_says_whether_the_key_is_new_and_lists_every_key_once(added):
    s, ref = IntSet(), set()
    for k in added:
        assert s.add(k) == (k not in ref), k
        ref.add(k)
    ints = list(s.sorted_ints())
    assert ints == sorted(k for k in ref if type(k) is int and k >= 0)
    assert sorted(ints + s.others(), key=repr) == sorted(ref, key=repr)


dense = st.integers(min_value=0, max_value=300_000)  # a few blocks, so bits of one block meet


@given(st.lists(st.one_of(keys, dense), max_size=300), st.lists(st.one_of(keys, dense), max_size=300),
       st.sets(st.one_of(keys, dense), max_size=50))
def test_intset_without_gives_the_keys_no_other_set_holds_once_in_order(mine, theirs, plain):
    s, other = IntSet(), IntSet()
    for k in mine:
        s.add(k)
    for k in theirs:
        other.add(k)
    got = list(s.without(other, plain))
    assert set(got) == set(mine) - set(theirs) - plain and len(got) == len(set(got))
    ints = [k for k in got if type(k) is int and k >= 0]
    assert got[:len(ints)] == sorted(ints)  # numbers first, ascending (then the others)


def test_intset_lists_keys_spilled_to_the_plain_set_in_order_with_the_others():
    s = IntSet()
    sparse = list(range(0, 10**12, 10**9))  # mostly spilled: a block each would cost too much
    for k in sparse + [3, 70_000, 65_535, 65_536]:
        s.add(k)
    assert list(s.sorted_ints()) == sorted(set(sparse + [3, 70_000, 65_535, 65_536]))


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


def test_keys_added_before_and_after_their_block_exists_are_all_found():
    s = IntSet()
    many = list(range(0, 10**12, 10**7))  # sparse: most go to the fallback set
    for k in many:
        s.add(k)
    dense = list(range(5_000, 6_000))  # a dense run next to an already-held key
    for k in dense:
        s.add(k)
    assert all(k in s for k in many + dense)
    assert 4_999 not in s and 10**7 + 1 not in s
    assert len(s) == len(set(many + dense))


def test_a_million_dense_keys_take_a_few_hundred_kilobytes():
    s = IntSet()
    for k in range(19_000_001, 20_000_001):  # a million crime numbers of one year
        s.add(k)
    size = sum(sys.getsizeof(b) for b in s._blocks.values()) + sys.getsizeof(s._other)
    assert size < 300_000, size
    assert 19_500_000 in s and 19_000_000 not in s


def test_sparse_huge_numbers_do_not_allocate_a_block_each():
    s = IntSet()
    rng = random.Random(7)
    for _ in range(50_000):
        s.add(rng.randrange(10**15))
    assert len(s._blocks) * 8192 <= (1 << 20) + 16 * len(s)


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
