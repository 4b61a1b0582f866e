"""``make preview``: every sheet of the demo's workbooks as the pages an auditor would print.

The reconciliation workbooks of the demo (the tool's clean run and the vendor's run) and a
rollback report (a dry run of the demo's migration run) are converted to PDF by LibreOffice
headless — which applies each sheet's own print set-up: landscape, one page wide, titles
repeated, OFFICIAL-SENSITIVE, "Page X of Y" — and the first pages of every sheet are rendered to
PNG (``pdftoppm``), named after their workbook, sheet and page:
``preview/vendor/03-crime-MISSING-p1.png``. ``--readme`` also copies the pictures the README
shows into ``docs/pictures/`` (small: one page each).

A tool for people, not part of the library: it reads the demo folder and writes pictures.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

#: Which pages the README shows: (workbook, sheet (a name or a regular expression), page, file).
README_PICTURES = (
    ("vendor", "Summary", 1, "summary-vendor.png"),
    ("own", "Summary", 1, "summary-own.png"),
    ("vendor", r"Crime statistics", 1, "statistics-vendor.png"),
)
#: A map picture written beside the reports (by the statistics), copied as it is.
MAP_PATTERN = "*map*.png"


def _tools() -> dict[str, str]:
    found = {name: shutil.which(name) for name in ("soffice", "pdftoppm", "pdftotext")}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        sys.exit(f"error: {', '.join(missing)} not found: install LibreOffice Calc and poppler "
                 "(apt-get install -y libreoffice-calc poppler-utils), or run `make preview`, which does")
    return found  # type: ignore[return-value]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-") or "sheet"


def rollback_workbook(demo: Path, into: Path) -> Path | None:
    """A dry-run rollback report of the demo's latest migration run (None when it has none)."""
    from migrate.rollback import rollback
    from migrate.runs import list_runs
    from reports.rollback_report import write_rollback_report

    target = f"sqlite:///{(demo / 'iops.db').resolve()}"
    runs = [r for r in list_runs(target) if r.state == "complete"]
    if not runs:
        return None
    with rollback(target, runs[-1].id, execute=False) as result:
        paths = write_rollback_report(result, into)
    return next(p for p in paths if p.suffix == ".xlsx")


def sheet_names(path: Path) -> list[str]:
    import openpyxl

    wb = openpyxl.load_workbook(path, read_only=True)
    try:
        return list(wb.sheetnames)
    finally:
        wb.close()


def render(workbook: Path, out: Path, tools: dict[str, str], *, pages: int,
           resolution: int) -> list[tuple[str, int, Path]]:
    """The first ``pages`` pages of every sheet of ``workbook`` as PNG files in ``out``:
    [(sheet, page, file)]."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.png"):
        old.unlink()
    names = sheet_names(workbook)
    with tempfile.TemporaryDirectory(prefix="opus2iops-preview-") as tmp:
        profile = Path(tmp) / "profile"  # a private LibreOffice profile: no clash with a running one
        subprocess.run([tools["soffice"], f"-env:UserInstallation=file://{profile}", "--headless",
                        "--convert-to", "pdf", "--outdir", tmp, str(workbook)],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=1800)
        pdf = Path(tmp) / (workbook.stem + ".pdf")
        text = subprocess.run([tools["pdftotext"], "-layout", str(pdf), "-"], check=True,
                              capture_output=True, text=True).stdout
        made = []
        seen: dict[str, int] = {}
        for number, page in enumerate(text.split("\f")[:-1] or [text], 1):
            sheet = _sheet_of(page, names)
            seen[sheet] = seen.get(sheet, 0) + 1
            if seen[sheet] > pages:
                continue
            order = names.index(sheet) + 1 if sheet in names else 0
            name = f"{order:02d}-{_slug(sheet)}-p{seen[sheet]}"
            subprocess.run([tools["pdftoppm"], "-png", "-r", str(resolution), "-f", str(number), "-l", str(number),
                            "-singlefile", str(pdf), str(out / name)], check=True)
            made.append((sheet, seen[sheet], out / f"{name}.png"))
    return made


def _sheet_of(page: str, names: list[str]) -> str:
    """The sheet a page belongs to: the name its header shows (the longest that fits)."""
    head = "\n".join(page.strip("\n").splitlines()[:3])
    matches = [n for n in names if n in head]
    return max(matches, key=len) if matches else "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demo", type=Path, default=Path("demo"), help="the demo folder (main.py demo --out)")
    parser.add_argument("--out", type=Path, default=Path("preview"), help="folder for the PNG pages")
    parser.add_argument("--pages", type=int, default=2, help="pages rendered per sheet (default 2)")
    parser.add_argument("--resolution", type=int, default=60, help="dots per inch of the pictures")
    parser.add_argument("--readme", type=Path, default=None, help="copy the README's pictures into this folder")
    args = parser.parse_args(argv)
    tools = _tools()
    workbooks = {
        "own": args.demo / "reconcile-own" / "reconciliation.xlsx",
        "vendor": args.demo / "reconcile-vendor" / "reconciliation.xlsx",
    }
    missing = [str(p) for p in workbooks.values() if not p.exists()]
    if missing:
        sys.exit(f"error: {', '.join(missing)} missing: run `make demo` (or main.py demo --out {args.demo}) first")
    work = args.out / "reports"
    rollback = rollback_workbook(args.demo, work / "rollback")
    if rollback is not None:
        workbooks["rollback"] = rollback
    rendered: dict[str, list[tuple[str, int, Path]]] = {}
    for key, path in workbooks.items():
        rendered[key] = render(path, args.out / key, tools, pages=args.pages, resolution=args.resolution)
        print(f"{key}: {len(rendered[key])} pages in {args.out / key}")
    if args.readme is not None:
        args.readme.mkdir(parents=True, exist_ok=True)
        for key, sheet, page, name in README_PICTURES:
            pick = [p for s, n, p in rendered.get(key, []) if n == page and re.fullmatch(sheet, s)]
            if pick:
                shutil.copyfile(pick[0], args.readme / name)
                print(f"README picture {args.readme / name} <- {pick[0]}")
        for found in sorted((args.demo / "reconcile-vendor").glob(MAP_PATTERN))[:1]:
            shutil.copyfile(found, args.readme / "map-vendor.png")
            print(f"README picture {args.readme / 'map-vendor.png'} <- {found}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OPUS2IOPS_QUIET", "1")
    raise SystemExit(main())
