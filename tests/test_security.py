"""What an information-security officer asks about a full run.

* intelligence text never appears in any output (console, CSV, JSON, workbook, truth file,
  rollback report) of generate → migrate → simulate → reconcile → runs → rollback;
* a password in a store URL never appears in any output;
* the legacy store is left byte-identical by every command;
* a legacy store with 2% garbage rows migrates with every garbage row rejected and the
  read = written + updated + unchanged + excluded + rejected invariant exact.
"""

from __future__ import annotations

import hashlib
import random
import sqlite3
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from main import app
from migrate.engine import migrate

PASSWORD = "s3cret-Pw"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _intel_texts(legacy_db: Path) -> list[str]:
    with sqlite3.connect(f"file:{legacy_db}?mode=ro", uri=True) as conn:
        texts = [r[0] for r in conn.execute("SELECT INT_TEXT FROM INTEL WHERE INT_TEXT IS NOT NULL")]
    # The first 60 characters of every substantial text: enough to be unique to that
    # intelligence entry, short enough to catch a truncated copy.
    return sorted({t.strip()[:60] for t in texts if len(t.strip()) >= 60})


def all_output_text(folders: list[Path], console: list[str]) -> str:
    parts = list(console)
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.suffix in (".csv", ".json"):
                parts.append(path.read_text(encoding="utf-8"))
            elif path.suffix == ".xlsx":
                with zipfile.ZipFile(path) as zf:  # every XML part: cells, sheet names, charts
                    for name in zf.namelist():
                        if name.endswith(".xml"):
                            xml = zf.read(name).decode("utf-8")
                            parts.append(xml.replace("&amp;", "&").replace("&quot;", '"')
                                         .replace("&apos;", "'").replace("&lt;", "<").replace("&gt;", ">"))
    return "\n".join(parts)


def run_every_command(run, legacy: str, target: str, vendor: str, tmp_path: Path, batch_size: int) -> None:
    """migrate (and a dry run) into ``target``, simulate into ``vendor``, reconcile both (reports
    in tmp_path/own and /vendor), runs, runs --json, rollback 1 (report in tmp_path/rollback)."""
    run("migrate", "--legacy", legacy, "--target", target, "--batch-size", str(batch_size), ok=(0,))
    run("migrate", "--legacy", legacy, "--target", target, "--dry-run", ok=(0,))
    run("simulate", "--legacy", legacy, "--target", vendor, "--truth", str(tmp_path / "truth.json"), ok=(0,))
    run("reconcile", "--legacy", legacy, "--target", target, "--out", str(tmp_path / "own"))
    run("reconcile", "--legacy", legacy, "--target", vendor, "--out", str(tmp_path / "vendor"))
    run("runs", "--target", target, ok=(0,))
    run("runs", "--target", target, "--json", ok=(0,))
    run("rollback", "1", "--target", target, "--out", str(tmp_path / "rollback"))


@pytest.mark.slow
def test_full_run_leaks_no_intelligence_text_or_password_and_never_writes_legacy(tmp_path, make_store):
    runner = CliRunner()
    legacy_db = tmp_path / "opus.db"
    legacy = f"sqlite:///{legacy_db}"
    console: list[str] = []

    def run(*args: str, ok=(0, 1)) -> str:
        res = runner.invoke(app, list(args))
        assert res.exit_code in ok, res.output
        console.append(res.output)
        return res.output

    run("generate", "--legacy", legacy, "--crimes", "800", "--seed", "5", ok=(0,))
    before = _sha(legacy_db)

    # The realistic pairing's target side, with a password in its URL (trust auth ignores it).
    plain = make_store("postgresql", "target")
    target = plain.replace("postgres@", f"postgres:{PASSWORD}@", 1)
    assert PASSWORD in target
    vendor = f"sqlite:///{tmp_path / 'vendor.db'}"
    run_every_command(run, legacy, target, vendor, tmp_path, batch_size=300)
    assert _sha(legacy_db) == before, "a command wrote to the legacy store"

    outputs = all_output_text([tmp_path / "own", tmp_path / "vendor", tmp_path / "rollback"], console)
    truth = (tmp_path / "truth.json").read_text(encoding="utf-8")
    assert (tmp_path / "vendor" / "reconciliation.xlsx").exists() and (tmp_path / "rollback").exists()
    texts = _intel_texts(legacy_db)
    assert len(texts) > 100  # the check below is not vacuous
    leaked = [t for t in texts if t in outputs or t in truth]
    assert leaked == []
    assert PASSWORD not in outputs
    # Report files are for their owner only.
    for path in [*(tmp_path / "own").iterdir(), *(tmp_path / "vendor").iterdir()]:
        assert path.stat().st_mode & 0o077 == 0, path


def _garbage(rng: random.Random, length: int) -> str:
    alphabet = "\x00\x01\t\r\n '\";--%_\\/*=+-@ÆØÅ𝔘\u202e\ufeffSELECT DROP TABLE 0123456789"
    return "".join(rng.choice(alphabet) for _ in range(length))


def test_two_percent_garbage_rows_are_all_rejected_and_the_invariant_is_exact(tmp_path):
    from synth.generate import generate

    legacy_db = tmp_path / "opus.db"
    legacy = f"sqlite:///{legacy_db}"
    generate(legacy, crimes=1000, seed=9)
    rng = random.Random(4)
    garbage_keys: dict[str, set[str]] = {"crime": set(), "intelligence": set(), "person": set(), "crime_person": set()}
    with sqlite3.connect(legacy_db) as conn:
        counts = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]  # constant names
                  for t in ("CRIME", "NOMINAL", "CRIME_NOM", "INTEL")}
        for i in range(counts["CRIME"] // 50):
            key = f"ZZ{i}{_garbage(rng, 6)}"
            conn.execute("INSERT INTO CRIME VALUES (" + ",".join("?" * 20) + ")",
                         [key] + [_garbage(rng, rng.randint(0, 300)) for _ in range(19)])
            garbage_keys["crime"].add(key.strip())
        for i in range(counts["INTEL"] // 50):
            key = f"ZZ{i}{_garbage(rng, 6)}"
            conn.execute("INSERT INTO INTEL VALUES (" + ",".join("?" * 15) + ")",
                         [key] + [_garbage(rng, rng.randint(0, 500)) for _ in range(14)])
            garbage_keys["intelligence"].add(key.strip())
        for i in range(counts["NOMINAL"] // 50):
            nom_id = 900_000_000 + i
            # Garbage everywhere, and a surname of nothing but white space: unusable.
            conn.execute("INSERT INTO NOMINAL VALUES (?,?,?,?,?,?,?,?,?)",
                         [nom_id, " \t ", _garbage(rng, 50), _garbage(rng, 10), _garbage(rng, 1),
                          _garbage(rng, 13), _garbage(rng, 3), _garbage(rng, 1), _garbage(rng, 14)])
            garbage_keys["person"].add(str(nom_id))
        for i in range(counts["CRIME_NOM"] // 50):
            crime_no = f"ZZ{i}{_garbage(rng, 5)}"
            conn.execute("INSERT INTO CRIME_NOM VALUES (?,?,?)", [crime_no, rng.randint(1, 10**6), _garbage(rng, 1)])
            garbage_keys["crime_person"].add(crime_no.strip())

    target_db = tmp_path / "iops.db"
    result = migrate(legacy, f"sqlite:///{target_db}", batch_size=250)
    assert result.state == "complete"
    for entity, c in result.counts.items():
        assert c.read == c.written + c.updated + c.unchanged + c.excluded + c.rejected, entity
    with sqlite3.connect(legacy_db) as conn:
        for table, entity in (("CRIME", "crime"), ("NOMINAL", "person"), ("CRIME_NOM", "crime_person"),
                              ("INTEL", "intelligence")):
            assert result.counts[entity].read == conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    with sqlite3.connect(target_db) as conn:
        rejected = {(e, k) for e, k in conn.execute("SELECT entity, legacy_key FROM mig_reject")}
    for entity, keys in garbage_keys.items():
        if entity == "crime_person":
            got = {k.split(":")[0] for e, k in rejected if e == entity}
            assert keys <= got, entity
        else:
            assert {(entity, k[:40]) for k in keys} <= rejected, entity
