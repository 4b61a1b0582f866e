"""The workbook's discrepancy tables written three ways, side by side: time and peak memory.

    .venv/bin/python bench/bench_xlsx.py --csv REF/discrepancies.csv            # 130,000 rows
    .venv/bin/python bench/bench_xlsx.py --csv REF/discrepancies.csv --old-code /tmp/xlsx-old

The rows are a real reconciliation's (``discrepancies.csv`` of ``main.py reconcile``), repeated
in order until there are ``--rows`` of them (the 1M run has ~130,000). Each way runs in its own
child process (peak RSS is the child's own) and writes what the reconciliation workbook writes
for them: one table per entity and category (header, frozen pane, filter, fitted widths, link
back to the Summary), the score column as ``0.0``, the ALTERED value columns filled.

* ``openpyxl``: ``reports.xlsx.TableWriter`` as it is (openpyxl's write-only mode, public API:
  ``WriteOnlyCell`` and ``ws.append``);
* ``old``: ``reports.xlsx`` from ``--old-code`` (a copy of an earlier tree, e.g. the RowStream
  that wrote rows as XML text through openpyxl's private writer);
* ``xlsxwriter``: the same tables through xlsxwriter's ``constant_memory`` mode (a sketch of
  the data path only: sheets stay in the order they are first seen — xlsxwriter cannot move
  a sheet — and no chart or Summary).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ("entity", "category", "legacy_ref", "new_ref", "field",
           "legacy_value", "expected_value", "new_value", "score", "detail")


def load_rows(path: Path, count: int) -> list[tuple]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        next(reader)
        base = [tuple(None if v == "" else (float(v) if i == 8 else v) for i, v in enumerate(r)) for r in reader]
    return [base[i % len(base)] for i in range(count)]


def write_openpyxl(rows: list[tuple], out: Path) -> None:
    from reports import xlsx

    wb = xlsx.new_workbook()
    wb.create_sheet(xlsx.SUMMARY_TITLE)
    taken = {xlsx.SUMMARY_TITLE}
    altered = {6: {"fill": xlsx.EXPECTED_FILL}, 7: {"fill": xlsx.DIFFERS_FILL}}
    tables = {}
    for values in rows:
        group = (values[0], values[1])
        table = tables.get(group)
        if table is None:
            table = tables[group] = xlsx.TableWriter(wb, f"{values[0]} {values[1]}", COLUMNS, taken,
                                                     column_styles={8: {"number_format": "0.0"}})
        table.append(values, altered if values[1] == "ALTERED" else None)
    titles = [t for g in sorted(tables) for t, _ in tables[g].close()]
    xlsx.order_sheets(wb, [xlsx.SUMMARY_TITLE] + titles)
    with open(out, "wb") as f:
        wb.save(f)


def write_xlsxwriter(rows: list[tuple], out: Path) -> None:
    import xlsxwriter

    from reports import xlsx

    wb = xlsxwriter.Workbook(str(out), {"constant_memory": True, "strings_to_formulas": False,
                                        "strings_to_numbers": False, "strings_to_urls": False})
    wb.add_worksheet(xlsx.SUMMARY_TITLE)
    header = wb.add_format({"bold": True, "font_color": "#FFFFFF", "bg_color": "#305496", "font_name": "Calibri"})
    link = wb.add_format({"font_color": "#0563C1", "underline": 1, "font_name": "Calibri"})
    score = wb.add_format({"num_format": "0.0"})
    expected = wb.add_format({"bg_color": "#E2EFDA", "pattern": 1})
    differs = wb.add_format({"bg_color": "#F8CBAD", "pattern": 1})
    sheets: dict[tuple, list] = {}  # group -> [worksheet or None, pending rows, next row]
    def start(group, state):
        ws = wb.add_worksheet(f"{group[0]} {group[1]}"[:31])
        widths = xlsx.column_widths(COLUMNS, state[1])
        for i, w in enumerate(widths):
            ws.set_column(i, i, w)
        ws.freeze_panes(1, 0)
        ws.set_landscape()
        ws.set_paper(9)
        ws.fit_to_pages(1, 0)
        ws.repeat_rows(0)
        ws.write_row(0, 0, COLUMNS, header)
        ws.write_url(0, len(COLUMNS) + 1, "internal:'Summary'!A1", link, "◀ Summary")
        state[0] = ws
        pending, state[1] = state[1], []
        for values in pending:
            put(state, values)

    def put(state, values):
        ws, r = state[0], state[2]
        is_altered = values[1] == "ALTERED"
        for c, v in enumerate(values):
            fmt = (expected if c == 6 else differs if c == 7 else None) if is_altered else None
            if c == 8 and v is not None:
                ws.write_number(r, c, v, score)
            elif v is None:
                if fmt is not None:
                    ws.write_blank(r, c, None, fmt)
            else:
                ws.write_string(r, c, xlsx.text_value(v), fmt)
        state[2] = r + 1

    for values in rows:
        group = (values[0], values[1])
        state = sheets.get(group)
        if state is None:
            state = sheets[group] = [None, [], 1]
        if state[0] is None:
            state[1].append(values)
            if len(state[1]) >= xlsx.WIDTH_SAMPLE_ROWS:
                start(group, state)
        else:
            put(state, values)
    for group, state in sheets.items():
        if state[0] is None:
            start(group, state)
        state[0].autofilter(0, 0, state[2] - 1, len(COLUMNS) - 1)
    wb.close()


WAYS = {"openpyxl": write_openpyxl, "old": write_openpyxl, "xlsxwriter": write_xlsxwriter}


def child(way: str, csv_path: Path, count: int, out: Path) -> dict:
    rows = load_rows(csv_path, count)
    rss_rows = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cpu0, t0 = time.process_time(), time.perf_counter()
    WAYS[way](rows, out)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {"way": way, "rows": count, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "us_per_row": round(wall / count * 1e6, 1), "peak_rss_mb": round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "rss_after_loading_rows_mb": round(rss_rows, 1), "file_mb": round(out.stat().st_size / 1e6, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", type=Path, required=True, help="discrepancies.csv of a reconciliation")
    parser.add_argument("--rows", type=int, default=130_000)
    parser.add_argument("--ways", default="openpyxl,xlsxwriter", help="comma-separated: openpyxl, old, xlsxwriter")
    parser.add_argument("--old-code", type=Path, help="a tree whose reports/ the 'old' way imports")
    parser.add_argument("--rounds", type=int, default=1, help="each way this many times, interleaved")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.csv, args.rows, args.out)))
        return
    ways = args.ways.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(args.rounds):
            for way in ways:
                code = args.old_code if way == "old" else ROOT
                env = dict(os.environ, PYTHONPATH=str(code))
                load = os.getloadavg()[0]
                res = subprocess.run([sys.executable, __file__, "--child", way, "--csv", str(args.csv),
                                      "--rows", str(args.rows), "--out", str(Path(tmp) / f"{way}.xlsx")],
                                     env=env, cwd=code, capture_output=True, text=True, check=True)
                figures = json.loads(res.stdout.strip().splitlines()[-1])
                figures["load_before"] = round(load, 2)
                print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
