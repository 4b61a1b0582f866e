"""The person thresholds on the command line (``reconcile --person-auto /
--person-review``): they reach the matcher, their defaults are the library's, and a
review threshold above the auto threshold is a usage error (exit 2)."""

from __future__ import annotations

import csv
import json

from typer.testing import CliRunner

from main import app
from migrate.engine import migrate
from reconcile.persons import PersonOptions
from synth.generate import generate
from tests.test_persons import _edit_target


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def test_review_above_auto_is_a_usage_error(tmp_path):
    result = _invoke("reconcile", "--legacy", f"sqlite:///{tmp_path / 'a.db'}", "--target",
                     f"sqlite:///{tmp_path / 'b.db'}", "--out", str(tmp_path / "out"),
                     "--person-auto", "80", "--person-review", "90", "-q")
    assert result.exit_code == 2
    assert "person thresholds" in result.output


def _person_pairs(out) -> dict[str, tuple[str, str]]:
    with open(out / "discrepancies.csv", newline="", encoding="utf-8-sig") as fh:
        return {row["new_ref"]: (row["legacy_ref"], row["detail"]) for row in csv.DictReader(fh)
                if row["entity"] == "person" and row["category"] == "PROBABLE_MATCH"}


def _thresholds(out) -> tuple[float, float]:
    summary = json.loads((out / "summary.json").read_text())
    return summary["thresholds"]["person_auto"], summary["thresholds"]["person_review"]


def test_the_person_thresholds_reach_the_reconciliation(tmp_path):
    legacy, target = f"sqlite:///{tmp_path / 'opus.db'}", f"sqlite:///{tmp_path / 'iops.db'}"
    generate(legacy, crimes=2500, seed=31)
    assert migrate(legacy, target).state == "complete"
    rekeyed = _edit_target(target)["rekeyed"]

    default = _invoke("reconcile", "--legacy", legacy, "--target", target, "--out", str(tmp_path / "d"), "-q")
    assert default.exit_code == 1, default.output
    assert _thresholds(tmp_path / "d") == (PersonOptions().auto_threshold, PersonOptions().review_threshold)
    assert _person_pairs(tmp_path / "d")[rekeyed.person_id] == (str(rekeyed.legacy_nominal_id), "AUTO")

    strict = _invoke("reconcile", "--legacy", legacy, "--target", target, "--out", str(tmp_path / "s"), "-q",
                     "--person-auto", "99.5", "--person-review", "50")
    assert strict.exit_code == 1, strict.output
    assert _thresholds(tmp_path / "s") == (99.5, 50)
