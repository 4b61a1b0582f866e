"""Publishing a set of reports: a reader finds the old set or the new set, never a mix.

The processes here are real and really killed (SIGKILL) — at every step of publishing, and at
random moments of the reconciler's own report writing; the disk really fills up (the file size
limit of a child process: no mock, no privilege). Afterwards the folder is checked by content:
every file of the set carries the same run marker.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import random
import re
import resource
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from core.errors import OutputError
from core.publish import SETS, ReportSet, check_output_folder, remove_leftovers
from reports.safe import neutralise
from tests.conftest import need_capability

ROOT = Path(__file__).resolve().parents[1]
NAMES = SETS["reconciliation"]
PYTHON = sys.executable


# ---- helpers ----------------------------------------------------------------------------------


def _child(code: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          **kwargs)


#: A child that publishes a set whose files say ``<name> <marker>``, and kills itself (SIGKILL)
#: at publishing step ``kill_at`` (0: after staging, before publishing; -1: never).
PUBLISH_AND_DIE = """
import os, signal, sys
from pathlib import Path
from core.publish import ReportSet
out, marker, kill_at = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
steps = []
def on_step(label):
    steps.append(label)
    print(label, flush=True)
    if len(steps) == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
rs = ReportSet(out, "reconciliation", on_step=on_step)
for name in rs.names:
    with rs.create(name) as f:
        f.write(f"{name} {marker}\\n")
if kill_at == 0:
    os.kill(os.getpid(), signal.SIGKILL)
rs.publish()
"""


def _publish(out: Path, marker: str) -> None:
    rs = ReportSet(out, "reconciliation")
    for name in rs.names:
        with rs.create(name) as f:
            f.write(f"{name} {marker}\n")
    rs.publish()


def _markers(out: Path) -> dict[str, str | None]:
    found = {}
    for name in NAMES:
        try:
            text = (out / name).read_text()
        except FileNotFoundError:
            found[name] = None
            continue
        assert text.startswith(name + " ") and text.endswith("\n"), (name, text)  # never half a file
        found[name] = text[len(name) + 1:-1]
    return found


def _user_files(out: Path) -> None:
    (out / "notes.txt").write_text("the auditor's own notes\n")
    (out / "rollback.json").write_text('{"another set": true}\n')  # another set's file: the user's to us
    os.symlink("notes.txt", out / "latest-notes")


def _assert_user_files(out: Path) -> None:
    assert (out / "notes.txt").read_text() == "the auditor's own notes\n"
    assert (out / "rollback.json").read_text() == '{"another set": true}\n'
    assert os.readlink(out / "latest-notes") == "notes.txt"


def _leftovers(out: Path) -> list[str]:
    return sorted(p.name for place in (out.parent, out) for p in place.iterdir() if "~opus2iops~" in p.name)


def _steps(out: Path) -> list[str]:
    """The publishing steps of a run that is not killed (then the folder is put back as it was)."""
    res = _child(PUBLISH_AND_DIE, str(out), "probe", "-1")
    assert res.returncode == 0, res.stderr
    _publish(out, "old")
    return res.stdout.splitlines()


# ---- kill -9 at every step --------------------------------------------------------------------


def test_kill_at_every_step_of_the_swap_leaves_the_old_set_or_the_new(tmp_path):
    out = tmp_path / "reports"
    out.mkdir(mode=0o750)
    _user_files(out)
    _publish(out, "old")
    steps = _steps(out)
    assert "exchanged" in steps  # the swap, not the fallback, is what is tested here
    outcomes = set()
    for kill_at in range(0, len(steps) + 1):
        res = _child(PUBLISH_AND_DIE, str(out), "new", str(kill_at))
        assert res.returncode == -signal.SIGKILL, (kill_at, res.stderr)
        markers = set(_markers(out).values())
        assert markers in ({"old"}, {"new"}), (kill_at, steps[kill_at - 1] if kill_at else "staged", markers)
        outcomes |= markers
        _assert_user_files(out)
        assert os.stat(out).st_mode & 0o777 == 0o750
        remove_leftovers(out)  # what the next run does first: the killed run is dead
        assert _leftovers(out) == [], kill_at
        assert set(_markers(out).values()) == markers  # and the set it found stays
        assert sorted(p.name for p in out.iterdir()) == sorted([*NAMES, "notes.txt", "rollback.json",
                                                                "latest-notes"])
        _publish(out, "old")
    assert outcomes == {"old", "new"}
    assert len(steps) + 1 >= 15


def test_kill_at_every_step_of_the_fallback_is_rolled_forward_by_the_next_run(tmp_path):
    """A sub-folder cannot be hard-linked: files are moved in one by one, index last."""
    out = tmp_path / "reports"
    (out / "attachments").mkdir(parents=True)
    (out / "attachments" / "letter.pdf").write_bytes(b"%PDF")
    _publish(out, "old")
    steps = _steps(out)
    assert "committed" in steps and "exchanged" not in steps
    for kill_at in range(0, len(steps) + 1):
        res = _child(PUBLISH_AND_DIE, str(out), "new", str(kill_at))
        assert res.returncode == -signal.SIGKILL, (kill_at, res.stderr)
        found = _markers(out)
        complete = set(found.values()) in ({"old"}, {"new"})
        # A mix is never vouched for by the index (summary.json): it is absent while files move.
        assert complete or found["summary.json"] is None, (kill_at, found)
        committed = kill_at > steps.index("committed")
        remove_leftovers(out)
        assert _leftovers(out) == []
        assert set(_markers(out).values()) == ({"new"} if committed else {"old"}), (kill_at, _markers(out))
        assert (out / "attachments" / "letter.pdf").read_bytes() == b"%PDF"
        _publish(out, "old")
    assert len(steps) + 1 >= 10


# ---- kill -9 at random moments of the reconciler's report writing -----------------------------


WRITE_REPORTS_FOREVER = """
import sys
sys.path.insert(0, "tests")
from pathlib import Path
from test_publication import marked_result
from reports.reconciliation import write_reconciliation_reports
out, first = Path(sys.argv[1]), int(sys.argv[2])
print("ready", flush=True)
n = first
while True:
    write_reconciliation_reports(marked_result(n), out)
    print(n, flush=True)
    n += 1
"""


def marked_result(marker: int):
    """A small reconciliation result whose four files each carry ``marker``."""
    import datetime as dt

    from reconcile.model import ENTITIES, Discrepancy, EntityTotals, ReconResult, StatRow

    rows = [Discrepancy("crime", "MISSING", f"CR/{marker:06d}/19", detail=f"RUN-{marker}")
            for _ in range(1 + marker % 3)]
    totals = {e: EntityTotals(e) for e in ENTITIES}
    totals["crime"].categories["MISSING"] = len(rows)
    moment = dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc)
    return ReconResult(legacy_url=f"sqlite:///run-{marker}.db", target_url="sqlite:///iops.db", started_at=moment,
                       finished_at=moment, tool_version="test", mapping_digest="sha256:0", thresholds={"fail": 0},
                       totals=totals, discrepancies=rows,
                       stats=[StatRow("2019-01", f"RUN-{marker}", "THEFT", 1, 1, 0, 0)])


def _report_markers(out: Path) -> set[int]:
    """The run marker of each of the four files, read the way their readers read them."""
    with open(out / "discrepancies.csv", newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    with open(out / "crime_stats.csv", newline="", encoding="utf-8") as f:
        stats = list(csv.DictReader(f))
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    with zipfile.ZipFile(out / "reconciliation.xlsx") as z:
        xml = b"".join(z.read(n) for n in z.namelist())
    in_workbook = {int(m) for m in re.findall(rb"sqlite:///run-(\d+)\.db", xml)}
    assert len(in_workbook) == 1, in_workbook
    csv_markers = {int(r["detail"].split("-")[1]) for r in rows}
    assert len(rows) == summary["discrepancies"]  # the summary's count is this CSV's
    return {*csv_markers, int(stats[0]["district_code"].split("-")[1]),
            int(summary["legacy_url"].split("-")[1].split(".")[0]), *in_workbook}


def test_kill_at_random_moments_of_writing_the_reconciliation_reports(tmp_path):
    out = tmp_path / "reports"
    from reports.reconciliation import write_reconciliation_reports

    write_reconciliation_reports(marked_result(0), out)
    rng = random.Random(16)
    seen = set()
    for round_ in range(1, 21):
        child = subprocess.Popen([PYTHON, "-c", WRITE_REPORTS_FOREVER, str(out), str(round_ * 1000)], cwd=ROOT,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "ready", child.stderr.read()
        time.sleep(rng.uniform(0.0, 0.4))
        child.send_signal(signal.SIGKILL)
        _, err = child.communicate()
        assert child.returncode == -signal.SIGKILL, err
        markers = _report_markers(out)
        assert len(markers) == 1, (round_, markers)  # one set: four files of one run
        seen |= markers
    remove_leftovers(out)
    assert _leftovers(out) == []
    assert len(seen) > 3  # the kills did land between publications of different runs


# ---- leftovers: dead runs' removed, live runs' kept -------------------------------------------


STAGE_AND_WAIT = """
import sys
from pathlib import Path
from core.publish import ReportSet
rs = ReportSet(Path(sys.argv[1]), "reconciliation")
with rs.create("discrepancies.csv") as f:
    f.write("half")
print(rs.staging, flush=True)
sys.stdin.read()
"""


def test_a_live_runs_staging_is_kept_a_dead_ones_removed(tmp_path):
    out = tmp_path / "reports"
    _publish(out, "old")
    child = subprocess.Popen([PYTHON, "-c", STAGE_AND_WAIT, str(out)], cwd=ROOT, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    staging = Path(child.stdout.readline().strip())
    try:
        assert staging.is_dir() and staging.parent == tmp_path
        _publish(out, "new")  # another run meanwhile: publishes, and leaves the live run alone
        assert staging.is_dir() and (staging / "discrepancies.csv").read_text() == "half"
        # Another machine's (a shared folder): never judged dead from here.
        parts = staging.name.split("~")  # …~host~pid~start~token: the owner, written into the name
        parts[-4] = "elsewhere"
        foreign = tmp_path / "~".join(parts)
        foreign.mkdir()
    finally:
        child.kill()
        child.wait()
    remove_leftovers(out)
    assert not staging.exists()
    assert foreign.exists()
    assert set(_markers(out).values()) == {"new"}


def test_discard_removes_the_staging_and_keeps_the_published_set(tmp_path):
    out = tmp_path / "reports"
    _publish(out, "old")
    rs = ReportSet(out, "reconciliation")
    with rs.create("discrepancies.csv") as f:
        f.write("discrepancies.csv new\n")
    rs.discard()
    rs.discard()
    assert _leftovers(out) == [] and set(_markers(out).values()) == {"old"}


# ---- a full disk ------------------------------------------------------------------------------


def _limit_file_size(limit: int):
    def pre() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writing past the limit is then EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return pre


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    from migrate.engine import migrate
    from synth.generate import generate

    folder = tmp_path_factory.mktemp("stores")
    legacy, target = f"sqlite:///{folder / 'opus.db'}", f"sqlite:///{folder / 'iops.db'}"
    generate(legacy, crimes=300, seed=16)
    migrate(legacy, target)
    return legacy, target


def _cli(*args: str, limit: int | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "main.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          preexec_fn=_limit_file_size(limit) if limit else None)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.mark.parametrize("limit", [36_000, 60_000])
def test_reconcile_onto_a_full_disk_is_one_line_and_keeps_the_old_set(stores, tmp_path, limit):
    legacy, target = stores
    out = tmp_path / "reports"
    res = _cli("reconcile", "--legacy", legacy, "--target", target, "--out", str(out), "--workers", "1")
    assert res.returncode == 0, res.stderr
    (out / "notes.txt").write_text("mine")
    before = _snapshot(out)
    res = _cli("reconcile", "--legacy", legacy, "--target", target, "--out", str(out), "--workers", "1",
               limit=limit)
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stderr == f"error: cannot write the reports into {out}: File too large\n"
    assert _snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reports"]  # no staging folder, no .part


def test_rollback_onto_a_full_disk_is_one_line_and_keeps_the_old_set(stores, tmp_path):
    _, target = stores
    out = tmp_path / "rollback"
    res = _cli("rollback", "1", "--target", target, "--out", str(out))
    assert res.returncode == 0, res.stderr
    before = _snapshot(out)
    res = _cli("rollback", "1", "--target", target, "--out", str(out), limit=40_000)
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stderr == f"error: cannot write the rollback report into {out}: File too large\n"
    assert _snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rollback"]


@contextlib.contextmanager
def _tmpfs(folder: Path, options: str):
    """``folder`` as a tmpfs of its own for the ``with`` block, unmounted afterwards."""
    folder.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True,
                         text=True)
    need_capability(None if res.returncode == 0 else f"cannot mount a tmpfs here (root only): {res.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.fixture
def small_disk(tmp_path):
    """A 512 KiB file system of its own (tmpfs), unmounted afterwards."""
    with _tmpfs(tmp_path / "disk", "size=512k,mode=0700") as folder:
        yield folder


def test_reconcile_onto_a_disk_that_is_really_full(stores, small_disk):
    legacy, target = stores
    out = small_disk / "reports"
    res = _cli("reconcile", "--legacy", legacy, "--target", target, "--out", str(out), "--workers", "1")
    assert res.returncode == 0, res.stderr
    before = _snapshot(out)
    with open(small_disk / "filler", "wb", buffering=0) as f:  # the rest of the disk, but for 8 KiB
        with contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * 4096)
    os.truncate(small_disk / "filler", max(0, os.path.getsize(small_disk / "filler") - 8192))
    res = _cli("reconcile", "--legacy", legacy, "--target", target, "--out", str(out), "--workers", "1")
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stderr == f"error: cannot write the reports into {out}: No space left on device\n"
    assert _snapshot(out) == before
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", "reports"]


# ---- the folder, and the truth file -----------------------------------------------------------


def test_a_file_in_the_way_is_named_as_such(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match=r"a-file is a file, not a folder \(a file is in the way\)"):
        check_output_folder(blocker / "deeper" / "reports")
    with pytest.raises(OutputError, match="it is a file, not a folder"):
        check_output_folder(blocker)
    assert blocker.read_text() == "x"


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder nobody may write, not even root: a read-only mount (tmpfs), removed afterwards."""
    with _tmpfs(tmp_path / "ro", "ro,size=64k") as folder:
        yield folder


def test_simulate_into_an_unwritable_folder_fails_before_touching_the_target(stores, tmp_path, read_only_folder):
    legacy, _ = stores
    target = tmp_path / "vendor.db"
    res = _cli("simulate", "--legacy", legacy, "--target", f"sqlite:///{target}",
               "--truth", str(read_only_folder / "truth.json"))
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stderr.startswith("error: cannot write the truth file") and res.stderr.count("\n") == 1
    assert not target.exists()


def test_truth_file_is_owner_only_and_published_whole(stores, tmp_path):
    legacy, _ = stores
    truth = tmp_path / "truth.json"
    os.umask(0o022)
    res = _cli("simulate", "--legacy", legacy, "--target", f"sqlite:///{tmp_path / 'vendor.db'}",
               "--truth", str(truth))
    assert res.returncode == 0, res.stderr
    assert os.stat(truth).st_mode & 0o777 == 0o600
    assert json.loads(truth.read_text())["format"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["truth.json", "vendor.db"]


# ---- invisible characters ---------------------------------------------------------------------


INVISIBLE = ["\x00", "\x01", "\x08", "\x0b", "\x0c", "\x1b", "\x1f", "\x7f", "\x85", "\x9f", "\u061c", "\u200b",
             "\u200e", "\u200f", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068",
             "\u2069", "\u2028", "\u2029", "\u2060", "\ufeff", "\ufffe", "\ud800", "\U000e0041"]


@pytest.mark.parametrize("char", INVISIBLE, ids=lambda c: f"U+{ord(c):04X}")
def test_every_invisible_or_reordering_character_is_shown_by_its_code_in_csv_and_workbook(tmp_path, char):
    from reconcile.model import Discrepancy
    from reports.reconciliation import write_reconciliation_reports

    import openpyxl

    value = f"Flat{char}2"
    code = f"\\x{ord(char):02x}" if ord(char) < 0x100 else (f"\\u{ord(char):04x}" if ord(char) < 0x10000
                                                           else f"\\U{ord(char):08x}")
    result = marked_result(1)
    result.discrepancies = [Discrepancy("crime", "MISSING", "CR/000001/19", detail=value),
                            Discrepancy("crime", "MISSING", "CR/000002/19", detail=char + "=HYPERLINK(1)")]
    result.totals["crime"].categories["MISSING"] = 2
    paths = write_reconciliation_reports(result, tmp_path / "r")
    with open(paths["discrepancies"], newline="", encoding="utf-8") as f:
        details = [r["detail"] for r in csv.DictReader(f)]
    assert details == [f"Flat{code}2", f"{code}=HYPERLINK(1)"]
    wb = openpyxl.load_workbook(paths["workbook"])
    cells = [c for ws in wb for row in ws.iter_rows(values_only=True) for c in row if isinstance(c, str)]
    assert f"Flat{code}2" in cells and f"{code}=HYPERLINK(1)" in cells
    assert not any(char in c for c in cells)


def test_kept_characters_and_formulas():
    assert neutralise("line\nbreak") == "line\nbreak"  # carried by CSV quoting
    assert neutralise("tab\there") == "tab\there"
    assert neutralise("zwj\u200dkept") == "zwj\u200dkept"  # a joiner names need
    assert neutralise("=1+1") == "'=1+1" and neutralise("\tTAB=1") == "'\tTAB=1"
    assert neutralise("-2.5") == "-2.5" and neutralise(-2) == -2
