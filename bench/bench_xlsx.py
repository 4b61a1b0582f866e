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


# ---- the reconciliation's own tables, captured and written again both ways ----------------------
def capture(result_pickle: Path, out: Path) -> None:
    """Write the reports of a pickled result (bench_reports.py prepare) and keep every table
    ``reports.xlsx.TableWriter`` was given — header, column styles, fixed widths, each row's
    values and styles — as a pickle for ``--tables``."""
    import pickle

    from reports import xlsx
    from reports.reconciliation import write_reconciliation_reports

    tables = []
    init, append = xlsx.TableWriter.__init__, xlsx.TableWriter.append

    def recording_init(self, wb, base, header, taken, **options):
        init(self, wb, base, header, taken, **options)
        self._bench_rows = []
        tables.append({"base": base, "header": list(header), "column_styles": options.get("column_styles") or {},
                       "fixed_widths": options.get("fixed_widths") or {}, "rows": self._bench_rows})

    def recording_append(self, values, styles=None):
        self._bench_rows.append((list(values), styles))
        append(self, values, styles)

    xlsx.TableWriter.__init__, xlsx.TableWriter.append = recording_init, recording_append
    with open(result_pickle, "rb") as f:
        result = pickle.load(f)
    with tempfile.TemporaryDirectory() as tmp:
        write_reconciliation_reports(result, Path(tmp))
    with open(out, "wb") as f:
        pickle.dump(tables, f, protocol=pickle.HIGHEST_PROTOCOL)
    print(f"{out}: {len(tables)} tables, {sum(len(t['rows']) for t in tables):,} rows")


def tables_openpyxl(tables: list[dict], out: Path) -> None:
    from reports import xlsx

    wb = xlsx.new_workbook()
    wb.create_sheet(xlsx.SUMMARY_TITLE)
    taken = {xlsx.SUMMARY_TITLE}
    for t in tables:
        table = xlsx.TableWriter(wb, t["base"], t["header"], taken, column_styles=t["column_styles"],
                                 fixed_widths=t["fixed_widths"])
        for values, styles in t["rows"]:
            table.append(values, styles)
        table.close(always=True)
    with open(out, "wb") as f:
        xlsx.save(wb, f)


def tables_xlsxwriter(tables: list[dict], out: Path) -> None:
    """The same tables through xlsxwriter's constant_memory mode, doing the same work per row:
    width fitting on the first rows, text made safe, UK times, the multi-line rows' heights and
    alignments, a format per combination of styles (made once)."""
    import datetime as dt

    import xlsxwriter

    from reports import xlsx

    wb = xlsxwriter.Workbook(str(out), {"constant_memory": True, "strings_to_formulas": False,
                                        "strings_to_numbers": False, "strings_to_urls": False})
    wb.add_worksheet(xlsx.SUMMARY_TITLE)
    formats: dict[tuple, object] = {}

    def fmt(style: dict | None, kind: int):
        style = style or {}
        font, fill, align, border = (style.get(k) for k in ("font", "fill", "alignment", "border"))
        number = style.get("number_format") or (xlsx.DATETIME_FORMAT if kind == 1 else
                                                xlsx.DATE_FORMAT if kind == 2 else None)
        key = (id(font), id(fill), id(align), id(border), number)
        f = formats.get(key)
        if f is None:
            props = {}
            if font is not None:
                props.update(font_name=font.name, font_size=font.sz, bold=bool(font.b), italic=bool(font.i))
                if font.color is not None and isinstance(font.color.rgb, str):
                    props["font_color"] = "#" + font.color.rgb[-6:]
                if font.u:
                    props["underline"] = 1
            if fill is not None:
                props.update(pattern=1, bg_color="#" + fill.fgColor.rgb[-6:])
            if align is not None:
                props.update({k: v for k, v in (("text_wrap", align.wrap_text), ("valign", align.vertical),
                                                ("align", align.horizontal), ("indent", align.indent)) if v})
            if border is not None:
                props["top"] = 1
            if number:
                props["num_format"] = number
            f = formats[key] = wb.add_format(props) if props else None
        return f

    header_format = wb.add_format({"bold": True, "font_color": "#FFFFFF", "bg_color": "#305496",
                                   "font_name": xlsx.FONT_NAME})
    for t in tables:
        ws = wb.add_worksheet(t["base"][:31])
        header, rows, column_styles = t["header"], t["rows"], t["column_styles"]
        widths = xlsx.column_widths(header, (v for v, _ in rows[:xlsx.WIDTH_SAMPLE_ROWS]), skip=t["fixed_widths"])
        for i, w in t["fixed_widths"].items():
            widths[i] = w
        for i, w in enumerate(widths):
            ws.set_column(i, i, w)
        wrap_widths = {i: widths[i] for i, st in column_styles.items()
                       if i < len(widths) and st and getattr(st.get("alignment"), "wrap_text", False)}
        ws.freeze_panes(1, 0)
        ws.set_landscape()
        ws.set_paper(9)
        ws.fit_to_pages(1, 0)
        ws.repeat_rows(0)
        ws.set_header('&C&"Calibri,Bold"&10OFFICIAL-SENSITIVE&R&8&A')
        ws.set_footer('&L&8&F&C&"Calibri,Bold"&10OFFICIAL-SENSITIVE&R&8Page &P of &N')
        ws.write_row(0, 0, header, header_format)
        ws.write_url(0, len(header) + 1, f"internal:'{xlsx.SUMMARY_TITLE}'!A1", string="◀ Summary")
        merged_cache: dict[tuple, list] = {}
        for r, (values, styles) in enumerate(rows, 1):
            lines = xlsx.line_count(values)
            for i, width in wrap_widths.items():
                if i < len(values) and type(values[i]) is str and len(values[i]) >= width - 1:
                    lines = max(lines, xlsx.wrapped_lines(values[i], width))
            pattern = None
            if lines > 1:
                pattern = tuple(type(v) is str and ("\n" in v or i in wrap_widths) for i, v in enumerate(values))
                ws.set_row(r, xlsx.LINE_HEIGHT * min(lines, xlsx.MAX_LINES))
            key = (len(values), id(styles), pattern)
            merged = merged_cache.get(key)
            if merged is None:
                merged = [column_styles.get(i) or None for i in range(len(values))]
                for i, st in (styles or {}).items():
                    if i < len(values):
                        merged[i] = {**(merged[i] or {}), **st}
                if pattern is not None:
                    for i, wraps in enumerate(pattern):
                        merged[i] = {**(merged[i] or {}), "alignment": xlsx.WRAP_TOP if wraps else xlsx.TOP}
                if len(merged_cache) < 64:
                    merged_cache[key] = merged
            for c, (v, st) in enumerate(zip(values, merged)):
                tv = type(v)
                if v is None:
                    if st and "fill" in st:
                        ws.write_blank(r, c, None, fmt(st, 0))
                elif tv is str:
                    ws.write_string(r, c, xlsx.text_value(v), fmt(st, 0) if st else None)
                elif tv is dt.datetime:
                    ws.write_datetime(r, c, xlsx.uk_local(v), fmt(st, 1))
                elif tv is dt.date:
                    ws.write_datetime(r, c, v, fmt(st, 2))
                elif v != v:  # NaN: no spreadsheet number
                    continue
                else:
                    ws.write_number(r, c, v, fmt(st, 0) if st else None)
        ws.autofilter(0, 0, len(rows), len(header) - 1)
    wb.close()


TABLE_WAYS = {"openpyxl": tables_openpyxl, "old": tables_openpyxl, "xlsxwriter": tables_xlsxwriter}


def child(way: str, csv_path: Path | None, count: int, out: Path, tables_path: Path | None = None) -> dict:
    if tables_path:
        import pickle

        with open(tables_path, "rb") as f:
            rows = pickle.load(f)
        count = sum(len(t["rows"]) for t in rows)
        writer = TABLE_WAYS[way]
    else:
        rows = load_rows(csv_path, count)
        writer = WAYS[way]
    rss_rows = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cpu0, t0 = time.process_time(), time.perf_counter()
    writer(rows, out)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {"way": way, "rows": count, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "us_per_row": round(wall / count * 1e6, 1), "peak_rss_mb": round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "rss_after_loading_rows_mb": round(rss_rows, 1), "file_mb": round(out.stat().st_size / 1e6, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", type=Path, help="discrepancies.csv of a reconciliation")
    parser.add_argument("--capture", type=Path, metavar="RESULT_PICKLE",
                        help="write the reports of a pickled result (bench_reports.py prepare) and keep its tables "
                             "in --tables")
    parser.add_argument("--tables", type=Path, help="tables captured by --capture: written instead of --csv's rows")
    parser.add_argument("--rows", type=int, default=130_000)
    parser.add_argument("--ways", default="openpyxl,xlsxwriter", help="comma-separated: openpyxl, old, xlsxwriter")
    parser.add_argument("--old-code", type=Path, help="a tree whose reports/ the 'old' way imports")
    parser.add_argument("--rounds", type=int, default=1, help="each way this many times, interleaved")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.capture:
        capture(args.capture, args.tables)
        return
    if args.child:
        print(json.dumps(child(args.child, args.csv, args.rows, args.out, args.tables)))
        return
    ways = args.ways.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(args.rounds):
            for way in ways:
                code = args.old_code if way == "old" else ROOT
                env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(code), os.environ.get("PYTHONPATH")])))
                load = os.getloadavg()[0]
                source = ["--tables", str(args.tables.resolve())] if args.tables else ["--csv", str(args.csv)]
                res = subprocess.run([sys.executable, __file__, "--child", way, *source,
                                      "--rows", str(args.rows), "--out", str(Path(tmp) / f"{way}.xlsx")],
                                     env=env, cwd=code, capture_output=True, text=True, check=True)
                figures = json.loads(res.stdout.strip().splitlines()[-1])
                figures["load_before"] = round(load, 2)
                print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
