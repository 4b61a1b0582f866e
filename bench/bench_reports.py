"""The reconciliation's reports alone (discrepancies.csv, crime_stats.csv, the map, the workbook,
summary.json): time and peak memory of ``write_reconciliation_reports`` for two trees side by
side, from one reconciliation, and whether the two trees write the same reports.

    P=/work/main/.venv/bin/python
    # 1. reconcile once (the code of the folder it is run from), keep the result as a pickle
    $P bench/bench_reports.py prepare sqlite:///opus.db sqlite:///vendor.db result.pickle
    # 2. each tree writes the reports from that result in its own process, alternately
    $P bench/bench_reports.py time result.pickle OLD_TREE NEW_TREE --rounds 3 [--out DIR] [--profile]
    # 3. do two report folders hold the same reports?
    $P bench/bench_reports.py compare DIR_A DIR_B

``time`` prints one JSON line per tree and round (wall and CPU seconds of the writing, peak RSS
of the child, the map's share) and the medians; with ``--out DIR`` each tree's last reports
stay in ``DIR/<n>`` for ``compare``. ``--profile`` writes a cProfile of each child beside them.

``compare`` checks the CSV files byte for byte, ``summary.json`` but for its times and checksums,
the map PNG byte for byte, and the workbook read back with openpyxl, sheet by sheet and cell by
cell: value, data type, number format, font, fill, border, alignment, link; merged cells, widths,
row heights, freeze panes, filters, data validations, conditional formats, print set-up, header
and footer, charts and images. The run's own times (Summary, Sign-off, Run information) differ
only if the two result objects do, which they do not here: both trees read the same pickle.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _prepare(legacy: str, target: str, out: Path) -> None:
    sys.path.insert(0, os.getcwd())
    from reconcile.run import ReconcileOptions, reconcile

    result = reconcile(legacy, target, ReconcileOptions(workers=1))
    result.discrepancies = list(result.discrepancies)  # the spool goes with the process
    with open(out, "wb") as f:
        pickle.dump(result, f, protocol=pickle.HIGHEST_PROTOCOL)
    print(f"{out}: {len(result.discrepancies):,} discrepancy rows, {len(result.stats):,} statistics rows")


def _child(pickle_path: Path, out: Path, profile: Path | None) -> None:
    """Runs in the tree to measure (its folder is the working directory and first on sys.path)."""
    sys.path.insert(0, os.getcwd())
    from reports import statistics as stats_report
    from reports.reconciliation import write_reconciliation_reports

    with open(pickle_path, "rb") as f:
        result = pickle.load(f)
    # The map alone, once, for its share (the reports draw it again).
    t = time.process_time()
    stats_report.map_picture(stats_report.statistics_of(result))
    map_cpu = time.process_time() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.mkdir(parents=True, exist_ok=True)
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    wall, cpu = time.perf_counter(), time.process_time()
    write_reconciliation_reports(result, out)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if profiler:
        profiler.disable()
        profiler.dump_stats(profile)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rows": len(result.discrepancies), "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                      "map_cpu_s": round(map_cpu, 2), "rss_before_mb": round(rss), "peak_rss_mb": round(peak),
                      "workbook_mb": round((out / "reconciliation.xlsx").stat().st_size / 1e6, 2)}))


def _time(pickle_path: Path, trees: list[Path], rounds: int, out: Path | None, profile: bool) -> None:
    import tempfile

    figures: dict[str, list[dict]] = {str(t): [] for t in trees}
    with tempfile.TemporaryDirectory() as tmp:
        base = out or Path(tmp)
        for n in range(rounds):
            for i, tree in enumerate(trees):
                folder = base / str(i)
                if folder.exists():
                    for f in folder.iterdir():
                        f.unlink()
                command = [sys.executable, str(Path(__file__).resolve()), "child", str(pickle_path.resolve()),
                           str(folder.resolve())]
                if profile:
                    command += ["--profile", str((base / f"profile-{i}.prof").resolve())]
                load = os.getloadavg()[0]
                res = subprocess.run(command, cwd=tree, capture_output=True, text=True,
                                     env=dict(os.environ, PYTHONPATH=str(tree)))
                if res.returncode:
                    sys.exit(f"{tree}: failed\n{res.stderr}")
                row = json.loads(res.stdout.strip().splitlines()[-1])
                row.update(tree=str(tree), round=n + 1, load_before=round(load, 2))
                figures[str(tree)].append(row)
                print(json.dumps(row), flush=True)
    for tree, rows in figures.items():
        print(f"{tree}: median of {len(rows)}: CPU {statistics.median(r['cpu_s'] for r in rows):.2f} s, "
              f"wall {statistics.median(r['wall_s'] for r in rows):.2f} s, "
              f"peak RSS {max(r['peak_rss_mb'] for r in rows)} MB, map {statistics.median(r['map_cpu_s'] for r in rows):.2f} s CPU")


# ---- compare ---------------------------------------------------------------------------------
def _style(c) -> tuple:
    f, fl, b, a = c.font, c.fill, c.border, c.alignment
    return (
        (f.name, f.sz, f.b, f.i, f.u, f.color.rgb if f.color is not None else None),
        (fl.fill_type, fl.fgColor.rgb if fl.fgColor is not None else None),
        tuple((s.style, s.color.rgb if s.color is not None else None) if s is not None else None
              for s in (b.left, b.right, b.top, b.bottom)),
        (a.horizontal, a.vertical, bool(a.wrap_text), a.indent),
    )


def _sheet_facts(ws) -> dict:
    ps = ws.page_setup
    facts = {
        "merged": sorted(str(r) for r in ws.merged_cells.ranges),
        "widths": {k: d.width for k, d in ws.column_dimensions.items() if d.width},
        "heights": {k: d.height for k, d in ws.row_dimensions.items() if d.height},
        "freeze": ws.freeze_panes, "filter": ws.auto_filter.ref, "print_area": ws.print_area,
        "print_titles": ws.print_title_rows,
        "page": (ps.orientation, ps.paperSize, ps.fitToWidth, ps.fitToHeight, ws.sheet_properties.pageSetUpPr.fitToPage
                 if ws.sheet_properties.pageSetUpPr else None),
        "margins": (ws.page_margins.left, ws.page_margins.right, ws.page_margins.top, ws.page_margins.bottom,
                    ws.page_margins.header, ws.page_margins.footer),
        "header": [(p.text, p.size, p.font) for p in (ws.oddHeader.left, ws.oddHeader.center, ws.oddHeader.right,
                                                       ws.oddFooter.left, ws.oddFooter.center, ws.oddFooter.right)],
        "validations": sorted((dv.type, dv.formula1, str(dv.sqref), dv.allow_blank, dv.showErrorMessage,
                               dv.showInputMessage, dv.error, dv.errorTitle, dv.prompt, dv.operator)
                              for dv in ws.data_validations.dataValidation),
        "conditional": sorted((str(rng.sqref), r.operator, tuple(r.formula or ()),
                               r.dxf.fill.fgColor.rgb if r.dxf and r.dxf.fill else None,
                               r.dxf.font.color.rgb if r.dxf and r.dxf.font and r.dxf.font.color else None)
                              for rng in ws.conditional_formatting for r in rng.rules),
        "tab_selected": ws.sheet_view.tabSelected,
    }
    return facts


def _compare_parts(a: Path, b: Path) -> list[str]:
    """Charts, drawings and pictures, from the archives' parts (openpyxl reads charts into no
    public attribute): the same parts with the same bytes."""
    import zipfile

    def parts(path):
        with zipfile.ZipFile(path) as z:
            return {n: z.read(n) for n in z.namelist()
                    if n.startswith(("xl/charts/", "xl/media/", "xl/drawings/")) and not n.endswith(".rels")}

    pa, pb = parts(a), parts(b)
    if sorted(pa) != sorted(pb):
        return [f"parts: {sorted(pa)} != {sorted(pb)}"]
    return [f"{n}: bytes differ" for n in pa if pa[n] != pb[n]]


def compare_workbooks(a: Path, b: Path, *, styles: bool = True) -> list[str]:
    """Differences between two workbooks read back with openpyxl (at most 20 per sheet)."""
    import openpyxl

    out = _compare_parts(a, b)
    wa, wb = openpyxl.load_workbook(a), openpyxl.load_workbook(b)
    if wa.sheetnames != wb.sheetnames:
        return [f"sheets: {wa.sheetnames} != {wb.sheetnames}"]
    for name in wa.sheetnames:
        sa, sb = wa[name], wb[name]
        fa, fb = _sheet_facts(sa), _sheet_facts(sb)
        for key in fa:
            if fa[key] != fb[key]:
                out.append(f"{name}: {key}: {str(fa[key])[:300]} != {str(fb[key])[:300]}")
        found = 0
        rows = max(sa.max_row, sb.max_row)
        cols = max(sa.max_column, sb.max_column)
        for ra, rb in zip(sa.iter_rows(min_row=1, max_row=rows, max_col=cols),
                          sb.iter_rows(min_row=1, max_row=rows, max_col=cols)):
            for ca, cb in zip(ra, rb):
                da = (ca.value, ca.data_type, ca.number_format,
                      ca.hyperlink.location if ca.hyperlink else None)
                db = (cb.value, cb.data_type, cb.number_format,
                      cb.hyperlink.location if cb.hyperlink else None)
                if styles:
                    da, db = da + _style(ca), db + _style(cb)
                if da != db:
                    found += 1
                    if found <= 20:
                        out.append(f"{name}!{ca.coordinate}: {da} != {db}")
        if found > 20:
            out.append(f"{name}: {found} cells differ in all")
    return out


def _compare(a: Path, b: Path, styles: bool) -> int:
    problems = []
    for name in ("discrepancies.csv", "crime_stats.csv", "crime_map.png"):
        if (a / name).read_bytes() != (b / name).read_bytes():
            problems.append(f"{name}: bytes differ")
    ja, jb = (json.loads((d / "summary.json").read_text(encoding="utf-8")) for d in (a, b))
    for doc in (ja, jb):
        doc["sha256"].pop("reconciliation.xlsx", None)  # the archive's bytes carry its save time
    if ja != jb:
        problems.append("summary.json differs (beyond the workbook's checksum)")
    problems += compare_workbooks(a / "reconciliation.xlsx", b / "reconciliation.xlsx", styles=styles)
    for p in problems:
        print(p)
    print(f"{len(problems)} difference(s)" if problems else "same reports")
    return 1 if problems else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("legacy")
    p.add_argument("target")
    p.add_argument("pickle", type=Path)
    p = sub.add_parser("time")
    p.add_argument("pickle", type=Path)
    p.add_argument("trees", type=Path, nargs="+")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", type=Path)
    p.add_argument("--profile", action="store_true")
    p = sub.add_parser("child")
    p.add_argument("pickle", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--profile", type=Path)
    p = sub.add_parser("compare")
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    p.add_argument("--no-styles", action="store_true", help="values, types, formats and links only")
    args = parser.parse_args()
    if args.command == "prepare":
        _prepare(args.legacy, args.target, args.pickle)
    elif args.command == "time":
        _time(args.pickle, [t.resolve() for t in args.trees], args.rounds, args.out, args.profile)
    elif args.command == "child":
        _child(args.pickle, args.out, args.profile)
    else:
        sys.exit(_compare(args.a, args.b, not args.no_styles))


if __name__ == "__main__":
    main()
