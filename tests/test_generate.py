"""The synthetic OPUS store: every quirk present, realistic content, same seed → same store.

One 10,000-crime SQLite store is generated per module and read by most tests; small stores
cover determinism, the servers and the command line.
"""

from __future__ import annotations

import csv
import hashlib
import re

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from core import db
from core.errors import UsageError
from core.schema import LEGACY_TABLES, legacy_tables
from mappings.reference import TABLE_DIR, load_reference
from synth import generate as gen
from synth.names import DIVISION_AREAS
from synth.profile import QUIRKS, classify_date, profile_store

#: Quirks a strict engine cannot hold: the OPUS DDL's VARCHAR(12) keys and VARCHAR(4) times
#: leave no room for a padding space or 'HH:MM' on PostgreSQL and MariaDB.
SQLITE_ONLY = {"crime.padded_key", "intel.padded_key", "crime_nom.padded_crime_no",
               "crime_nom.duplicate_after_normalisation", "times.hh_mm"}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("generate") / "opus.db"
    url = f"sqlite:///{path}"
    result = gen.generate(url, crimes=10_000, seed=2019)
    return url, result


def _rows(url: str, table: str, *columns: str):
    engine = db.open_legacy(url)
    try:
        t = legacy_tables(engine)[table]
        with engine.connect() as conn:
            return conn.execute(sa.select(*(t.c[c] for c in columns))).all()
    finally:
        engine.dispose()


def store_digest(url: str) -> dict[str, str]:
    """SHA-256 of every row of every OPUS table, in primary-key order."""
    engine = db.open_legacy(url)
    out = {}
    try:
        tables = legacy_tables(engine)
        with engine.connect() as conn:
            for name in LEGACY_TABLES:
                t = tables[name]
                h = hashlib.sha256()
                order = list(t.primary_key.columns) or list(t.columns)
                for row in conn.execute(sa.select(t).order_by(*order)):
                    h.update(repr(tuple(row)).encode("utf-8"))
                out[name] = h.hexdigest()
    finally:
        engine.dispose()
    return out


# ------------------------------------------------------------------------ the 10,000-crime store


def test_every_quirk_appears(store):
    _, result = store
    missing = [name for name in QUIRKS if result.profile.quirks[name] <= 0]
    assert not missing, f"quirks absent from a 10,000-crime store: {missing}"


def test_profile_counts_what_was_written(store):
    _, result = store
    assert result.profile.tables == result.counts
    assert result.counts["crime"] == 10_000
    assert result.counts["division"] == 12
    assert result.counts["offence_code"] == len(load_reference().crosswalk) + len(gen.RETIRED_CODES)


def test_ratios_are_plausible(store):
    _, result = store
    counts, profile = result.counts, result.profile
    assert 0.9 <= counts["nominal"] / counts["crime"] <= 1.15
    assert 0.29 <= counts["intel"] / counts["crime"] <= 0.38
    assert 1.35 <= counts["crime_nom"] / counts["crime"] <= 1.7
    for column in ("crime.rec_date", "crime.from_date", "nominal.dob", "intel.submit_date"):
        forms = profile.distributions[f"{column} form"]
        assert max(forms, key=forms.get) == "DD/MM/YYYY", column
        assert forms["DD/MM/YYYY"] / sum(forms.values()) > 0.75, column
    groups = profile.distributions["offence_group"]
    top_two = sorted(groups, key=groups.get, reverse=True)[:2]
    assert set(top_two) == {"Violence against the person", "Theft offences"}
    total = sum(groups.values())
    assert groups["Sexual offences"] / total < 0.05
    roles = profile.distributions["crime_nom.role"]
    assert roles["V"] > roles["O"] > roles["W"] > 0 and roles["S"] > 0
    statuses = profile.distributions["crime.status"]
    assert statuses["F"] > statuses["O"] > statuses["X"] > statuses["T"] > 0
    # every quirk stays a small minority of its table
    for name, count in profile.quirks.items():
        table = name.split(".")[0]
        if table in counts and name not in ("crime.mo_multiline", "intel.text_over_255", "intel.text_multiline"):
            assert count < 0.1 * counts[table], name


def test_all_ten_districts_and_the_whole_period(store):
    _, result = store
    districts = result.profile.distributions["district"]
    expected = {row["district"] for row in load_reference().districts if row["lad_code"].startswith("E08")}
    assert expected <= set(districts)
    assert len(expected) == 10
    assert result.profile.facts["first_recorded"].startswith("2008-01")
    assert result.profile.facts["last_recorded"].startswith("2019-06")
    years = result.profile.distributions["year recorded"]
    assert set(years) == set(range(2008, 2020))


def test_keys_unique_after_trim_and_numbered_by_year_recorded(store):
    url, _ = store
    rows = _rows(url, "crime", "crime_no", "rec_date")
    trimmed = [k.strip() for k, _ in rows]
    assert len(set(trimmed)) == len(rows)
    assert any(k != k.strip() for k, _ in rows)
    checked = 0
    for key, rec_date in rows:
        m = re.fullmatch(r"CR/(\d{6})/(\d{2})", key.strip())
        form, day = classify_date(rec_date)
        if m and day is not None:
            assert int(m[2]) == day.year % 100, (key, rec_date)
            checked += 1
    assert checked > 9_900
    intel = [k.strip() for (k,) in _rows(url, "intel", "intel_no")]
    assert len(set(intel)) == len(intel)


def test_places_are_inside_their_district(store):
    url, _ = store
    ref = load_reference()
    extents = {row["lad_code"]: row for row in ref.districts}
    with open(TABLE_DIR / "divisions.csv", newline="", encoding="utf-8") as fh:
        area_prefixes = {r["opus_div"]: {p for _, ps in DIVISION_AREAS[r["opus_div"]] for p in ps}
                         for r in csv.DictReader(fh)}
    busy = {p[2] for p in gen.names.BUSY_PREMISES}
    inside = postcode_checked = 0
    for div, east, north, pcode in _rows(url, "crime", "div", "grid_e", "grid_n", "pcode"):
        code = ref.divisions.get((div or "").strip())
        if code is None or not east or not north or east > 700000 or north > 1300000 or east < 0:
            continue
        box = extents[code]
        assert int(box["easting_min"]) - 20 <= east <= int(box["easting_max"]) + 20, (div, east)
        assert int(box["northing_min"]) - 20 <= north <= int(box["northing_max"]) + 20, (div, north)
        inside += 1
        if pcode and re.fullmatch(r"[A-Z]{1,2}\d{1,2} \d[A-Z]{2}", pcode) and pcode not in busy:
            assert pcode.split()[0] in area_prefixes[div.strip()], (div, pcode)
            postcode_checked += 1
    assert inside > 9_000 and postcode_checked > 8_000


def test_status_and_disposal_agree(store):
    url, _ = store
    disposals = load_reference().disposals
    finalised_with_valid = 0
    for status, disposal in _rows(url, "crime", "status", "disposal"):
        if status == "O":
            assert not (disposal or "").strip()
        if status == "F" and disposal in disposals:
            finalised_with_valid += 1
    assert finalised_with_valid > 7_000


def test_names_and_texts_look_real(store):
    url, _ = store
    surnames = {s for (s,) in _rows(url, "nominal", "surname") if s}
    for expected in ("SMITH", "O'BRIEN", "MÜLLER", "NÍ BHRIAIN"):
        assert expected in surnames
    assert any("-" in s and "," not in s for s in surnames)
    forenames = {f for (f,) in _rows(url, "nominal", "forenames") if f}
    assert {"ZOË", "ŁUKASZ"} & {name for f in forenames for name in f.split()}
    texts = [t for (t,) in _rows(url, "intel", "int_text") if t and t.strip()]
    assert max(len(t) for t in texts) <= 4000
    assert any(len(t) > 3000 for t in texts)
    assert any('"' in t and ";" in t and "," in t and "\n" in t for t in texts)
    pnc = [p for (p,) in _rows(url, "nominal", "pnc_id") if p]
    assert sum(bool(re.fullmatch(r"\d{2}/\d{1,7}[A-Z]", p)) for p in pnc) > 0.95 * len(pnc)


def test_profile_in_two_processes_is_the_same(store):
    url, result = store
    again = profile_store(url, workers=2)
    assert again.quirks == result.profile.quirks
    assert again.distributions == result.profile.distributions
    assert again.tables == result.profile.tables


# ---------------------------------------------------------------------------- determinism


def test_same_seed_same_store_different_seed_different_store(tmp_path):
    a, b, c = (f"sqlite:///{tmp_path / name}.db" for name in ("a", "b", "c"))
    gen.generate(a, crimes=2_000, seed=7, pipeline=False)
    gen.generate(b, crimes=2_000, seed=7, pipeline=True, batch=700)  # other process, other batching
    gen.generate(c, crimes=2_000, seed=8)
    assert store_digest(a) == store_digest(b)
    differ = store_digest(c)
    same_tables = {"offence_code", "division"}  # code tables come from the CSVs
    for name, digest in store_digest(a).items():
        assert (digest == differ[name]) == (name in same_tables), name


def test_rates_are_named_probabilities():
    assert all(0 < rate < 1 for rate in gen.RATES.values())
    assert set(gen.T) == set(gen.RATES)


# ---------------------------------------------------------------------------- refusals


def test_refuses_a_store_that_already_holds_opus_tables(tmp_path):
    url = f"sqlite:///{tmp_path / 'opus.db'}"
    gen.generate(url, crimes=50, seed=1)
    before = store_digest(url), (tmp_path / "opus.db").read_bytes()
    with pytest.raises(UsageError, match="already holds OPUS tables"):
        gen.generate(url, crimes=50, seed=2)
    assert (store_digest(url), (tmp_path / "opus.db").read_bytes()) == before  # not a byte changed


def test_refuses_nonsense_size(tmp_path):
    for crimes in (0, gen.MAX_CRIMES + 1):
        with pytest.raises(UsageError, match="--crimes"):
            gen.generate(f"sqlite:///{tmp_path / 'x.db'}", crimes=crimes, seed=1)
    assert not (tmp_path / "x.db").exists()


def test_a_failed_run_leaves_no_half_store(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'opus.db'}"

    def broken(self, size):
        yield from ()
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(gen.StoreMaker, "batches", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        gen.generate(url, crimes=100, seed=1, pipeline=False)
    engine = sa.create_engine(url)
    assert not set(sa.inspect(engine).get_table_names()) & set(LEGACY_TABLES)
    engine.dispose()
    monkeypatch.undo()
    assert gen.generate(url, crimes=100, seed=1).counts["crime"] == 100


def test_a_failing_row_maker_process_is_reported_not_hung(tmp_path, monkeypatch):
    good = gen.maker_inputs()
    broken = gen.MakerInputs(districts=(), places=good.places, div_district=good.div_district,
                             opus_codes=good.opus_codes)
    monkeypatch.setattr(gen, "maker_inputs", lambda: broken)  # the row maker process fails on them
    url = f"sqlite:///{tmp_path / 'opus.db'}"
    with pytest.raises(RuntimeError, match="row maker process failed: KeyError"):
        gen.generate(url, crimes=100, seed=1, pipeline=True)
    engine = sa.create_engine(url)
    assert not set(sa.inspect(engine).get_table_names()) & set(LEGACY_TABLES)  # and no half store
    engine.dispose()


# ---------------------------------------------------------------------------- servers


@pytest.mark.server
@pytest.mark.parametrize("backend_name", ["postgresql", "mysql"])
def test_generate_on_a_server(make_store, backend_name):
    url = make_store(backend_name, "legacy")
    result = gen.generate(url, crimes=1_500, seed=11)
    assert result.profile.tables == result.counts
    assert result.counts["crime"] == 1_500 and result.counts["nominal"] > 1_200
    assert result.url == db.mask_url(url)
    quirks = result.profile.quirks
    expected_rare = {"crime.bad_reference", "intel.bad_reference", "intel.subject_deleted", "intel.grid_out_of_range",
                     "crime_nom.orphan_absent_crime", "crime_nom.orphan_absent_nominal", "intel.text_blank",
                     "intel.grade_lower_case", "intel.unknown_div", "intel.padded_key", "dates.malformed",
                     "crime.blank_div", "intel.submit_date_missing", "intel.submit_date_invalid",
                     "intel.review_date_invalid", "crime.unknown_div", "crime.status_lower_case",
                     "crime.invalid_status", "crime.offence_padded", "crime.last_upd_invalid",
                     "nominal.dob_future", "nominal.pnc_lower_case", "intel.last_upd_invalid", "intel.deleted",
                     "crime.unknown_disposal", "crime.div_lower_case", "crime_nom.role_invalid",
                     "intel.grade_invalid", "intel.grade_blank", "intel.subject_missing", "times.t2400",
                     "times.invalid", "crime.rec_date_missing", "crime.rec_date_invalid", "crime.busy_addresses"}
    for name in SQLITE_ONLY:
        assert quirks[name] == 0, name  # they cannot fit; the generator must not even try
    present = [name for name in QUIRKS if name not in SQLITE_ONLY | expected_rare]
    assert [name for name in present if quirks[name] == 0] == []
    # text survives the server byte for byte in meaning
    names = {s for (s,) in _rows(url, "nominal", "surname") if s}
    assert any(not s.isascii() for s in names) and any("'" in s for s in names)
    with pytest.raises(UsageError, match="already holds OPUS tables"):
        gen.generate(url, crimes=10, seed=1)


# ---------------------------------------------------------------------------- command line


def test_cli_generate_prints_the_profile(tmp_path):
    from main import app

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    run = CliRunner().invoke(app, ["generate", "--legacy", url, "--crimes", "200", "--quiet"])
    assert run.exit_code == 0, run.output
    assert "CRIME" in run.output and "NOMINAL" in run.output and "INTEL" in run.output
    assert "date as DD/MM/YY" in run.output
    m = re.search(r"^\s+CRIME\s+([\d,]+)$", run.output, re.M)
    assert m and m[1] == "200"


def test_cli_generate_into_an_existing_store_exits_2(tmp_path):
    from main import app

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    runner = CliRunner()
    assert runner.invoke(app, ["generate", "--legacy", url, "--crimes", "100", "--quiet"]).exit_code == 0
    run = runner.invoke(app, ["generate", "--legacy", url, "--crimes", "100", "--quiet"])
    assert run.exit_code == 2
    message = (run.stderr if run.stderr_bytes is not None else run.output).strip()
    assert len(message.splitlines()) == 1
    assert "already holds OPUS tables" in message and "Traceback" not in run.output
