"""Every code the mapping can give a record has a plain-English explanation in the one table."""

import re
from pathlib import Path

import pytest

from core import schema

from mappings.explanations import codes, explain

MAPPINGS = Path(__file__).resolve().parent.parent / "mappings"


def _codes_in_source() -> set[str]:
    """Reject and warning codes as the mapping modules spell them: every upper-case string
    literal with an underscore that is not a legacy column name, read from the source so that a
    new code cannot be added without its explanation."""
    columns = {c.name.upper() for t in schema.legacy_metadata.tables.values() for c in t.columns}
    found = set()
    for path in MAPPINGS.glob("*.py"):
        found |= set(re.findall(r'"([A-Z]+_[A-Z_]+)"', path.read_text(encoding="utf-8")))
    return found - columns


def test_every_mapping_code_is_explained():
    source = _codes_in_source()
    assert {"BAD_REFERENCE", "UNMAPPED_OFFENCE", "INVALID_ENCODING", "DUPLICATE_LINK"} <= source
    explained = set(codes("reject")) | set(codes("warning"))
    assert source - explained == set()


@pytest.mark.parametrize("code, words", [
    ("UNMAPPED_OFFENCE", "crosswalk"),
    ("OFFSET_1H", "1 hour(s) late"),
    ("OFFSET_-2H", "2 hour(s) early"),
    ("LATLON_SWAPPED", "swapped"),
])
def test_explanations_read_as_english(code, words):
    assert words in explain(code)


def test_unknown_code_is_shown_as_itself_and_no_code_as_nothing():
    assert explain("SOMETHING_NEW") == "SOMETHING_NEW"
    assert explain(None) == "" and explain("") == ""
