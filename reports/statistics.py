"""The crime statistics in the reports: ``crime_stats.csv``, the statistics sheets, the monthly
delta chart, the map picture and the Summary's statistics block (reconciliation.md, Exports).

Everything is rendered from ``reconcile.stats.CrimeStatistics`` (``result.statistics``; built
from ``result.stats`` when a result carries only rows). The sheets' counts are the CSV's: one
list of rows feeds both.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Iterable

from openpyxl.chart import BarChart, Reference
from openpyxl.chart.legend import LegendEntry
from openpyxl.chart.series import SeriesLabel
from openpyxl.styles import Alignment
from openpyxl.drawing.image import Image
from openpyxl.formatting.rule import CellIsRule
from openpyxl.utils import get_column_letter

from reconcile.model import STATS_COLUMNS
from reconcile.stats import UNKNOWN, CrimeStatistics, StatTotals
from reports import xlsx
from reports.safe import neutralise

STATS_SHEET = "Crime statistics"
DISTRICT_SHEET = "Statistics by district"
DIFFERENCES_SHEET = "Statistics differences"
MONTHLY_SHEET = "Monthly totals"
MAP_SHEET = "Map"
SHEETS = (STATS_SHEET, DISTRICT_SHEET, DIFFERENCES_SHEET, MONTHLY_SHEET, MAP_SHEET)
MAP_FILE = "crime_map.png"


def statistics_of(result) -> CrimeStatistics:
    """The result's statistics as data (a result built with rows alone gets them wrapped)."""
    statistics = getattr(result, "statistics", None)
    if isinstance(statistics, CrimeStatistics):
        return statistics
    return CrimeStatistics(go_live=None, rows=tuple(result.stats))


# ---- crime_stats.csv ------------------------------------------------------------------------
def write_stats_csv(rows: Iterable, out) -> None:
    """``crime_stats.csv``: UTF-8 with a byte-order mark (Excel), RFC 4180, the spec's columns."""
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(STATS_COLUMNS)
    for stat in rows:
        writer.writerow([neutralise(v) if isinstance(v, str) else v for v in stat.as_row()])


def month_start(month: str) -> dt.datetime | None:
    """'2019-04' -> 2019-04-01 00:00 (a real date for Excel); None when not a month."""
    try:
        year, mon = month.split("-")
        return dt.datetime(int(year), int(mon), 1)
    except (ValueError, AttributeError):
        return None


def _delta_rules(ws, column_letter: str, first_row: int, last_row: int) -> None:
    """Red for fewer crimes in iOPS, amber for more: both are differences."""
    if last_row < first_row:
        return
    cells = f"{column_letter}{first_row}:{column_letter}{last_row}"
    ws.conditional_formatting.add(cells, CellIsRule(operator="lessThan", formula=["0"],
                                                    fill=xlsx.NEGATIVE_FILL, font=xlsx.NEGATIVE_FONT))
    ws.conditional_formatting.add(cells, CellIsRule(operator="greaterThan", formula=["0"],
                                                    fill=xlsx.POSITIVE_FILL, font=xlsx.POSITIVE_FONT))


_MONTH_STYLE = {"number_format": xlsx.MONTH_FORMAT, "alignment": xlsx.LEFT}
_COUNT = "#,##0"  # counts with thousands separators
_HEADER_WRAP = Alignment(wrap_text=True, vertical="top", horizontal="center")
_MONTH_COL = STATS_COLUMNS.index("month")


def _row_values(stat) -> tuple:
    row = stat.as_row()
    month = month_start(stat.month)
    return (month if month else stat.month,) + tuple(row[1:])


def _stat_table(wb, title: str, rows, taken: set, max_sheet_rows: int) -> list[tuple[str, int]]:
    table = xlsx.TableWriter(wb, title, STATS_COLUMNS, taken, column_styles={_MONTH_COL: _MONTH_STYLE},
                             fixed_widths={_MONTH_COL: 10}, max_sheet_rows=max_sheet_rows)
    for stat in rows:
        table.append(_row_values(stat))
    sheets = table.close(always=True)
    for column in ("delta", "delta_expected"):
        letter = get_column_letter(STATS_COLUMNS.index(column) + 1)
        for sheet_title, count in sheets:
            _delta_rules(wb[sheet_title], letter, 2, count + 1)
    return sheets


def write_stats(statistics: CrimeStatistics, out, wb, max_sheet_rows: int = xlsx.MAX_SHEET_ROWS,
                map_png: bytes | None = None) -> list[tuple[str, int | None, str]]:
    """``crime_stats.csv`` into ``out`` and the statistics sheets into ``wb``; returns the sheets
    written as (title, data rows or None, what it holds), in workbook order."""
    rows = statistics.rows
    write_stats_csv(rows, out)
    taken: set[str] = set()
    listed: list[tuple[str, int | None, str]] = []
    for title, count in _stat_table(wb, STATS_SHEET, rows, taken, max_sheet_rows):
        listed.append((title, count, "crimes per month × district × offence group, OPUS vs iOPS (= crime_stats.csv)"))
    listed.append((_district_sheet(wb, statistics), None, "totals per district, up to go-live and after it"))
    for title, count in _stat_table(wb, DIFFERENCES_SHEET, statistics.differing(), taken, max_sheet_rows):
        listed.append((title, count, "only the cells that differ, largest difference first"))
    listed.append((_monthly_sheet(wb, statistics), None, "per month over all districts, with the delta chart"))
    if map_png is not None:
        listed.append((_map_sheet(wb, map_png), None, "map of the missing and mislocated crimes"))
    return listed


# ---- per district ---------------------------------------------------------------------------
DISTRICT_COLUMNS = ("district_code", "district", "OPUS (force figure)", "not migrated", "expected in iOPS",
                    "iOPS", "delta (iOPS − OPUS)", "delta (iOPS − expected)", "OPUS no location",
                    "iOPS no location", "iOPS outside area")


def _totals_values(t: StatTotals) -> list[int]:
    return [t.legacy, t.not_migrated, t.expected, t.new, t.delta, t.delta_expected, t.legacy_no_location,
            t.new_no_location, t.new_outside_area]


def _district_sheet(wb, statistics: CrimeStatistics) -> str:
    ws = wb.create_sheet(DISTRICT_SHEET)
    xlsx.set_widths(ws, [14, 20] + [21] * (len(DISTRICT_COLUMNS) - 2) + [4, 12])
    xlsx.print_layout(ws, title_rows=None)
    c = lambda v, **kw: xlsx.cell(ws, v, **kw)  # noqa: E731
    ws.append([c("Crime statistics by district", font=xlsx.TITLE_FONT)] + [None] * (len(DISTRICT_COLUMNS))
              + [xlsx.back_link(ws)])
    row = 1
    go_live = statistics.go_live
    for after in (False, True):
        blocks = statistics.by_district(after)
        if after and not blocks:
            continue
        ws.append([])
        heading = ("Up to go-live" if not after else "After go-live: new work in iOPS, reported apart")
        if go_live:
            heading += f" ({'before' if not after else 'from'} {go_live:%d %B %Y})"
        ws.append([c(heading, font=xlsx.SECTION_FONT)])
        ws.append(xlsx.header_row(ws, DISTRICT_COLUMNS, range(2, len(DISTRICT_COLUMNS))))
        row += 3
        first = row + 1
        for code, name, totals in blocks:
            ws.append([c(code), c(name)] + [c(v, number_format=_COUNT) for v in _totals_values(totals)])
            row += 1
        whole = statistics.after if after else statistics.before
        ws.append([c("All districts", font=xlsx.LABEL_FONT, border=xlsx.TOTAL_BORDER),
                   c(None, border=xlsx.TOTAL_BORDER)]
                  + [c(v, font=xlsx.LABEL_FONT, border=xlsx.TOTAL_BORDER, number_format=_COUNT)
                     for v in _totals_values(whole)])
        row += 1
        for column in (6, 7):
            _delta_rules(ws, get_column_letter(column + 1), first, row)
    return DISTRICT_SHEET


# ---- per month, with the chart ----------------------------------------------------------------
MONTHLY_COLUMNS = ("month", "OPUS (force figure)", "not migrated", "expected in iOPS", "iOPS",
                   "delta up to go-live (iOPS − OPUS)", "iOPS after go-live", "OPUS after go-live",
                   "delta after go-live (iOPS − OPUS)", "OPUS no location", "iOPS no location",
                   "iOPS outside area", "go-live")
#: Two more columns draw go-live on the chart: a bar up and one down at the go-live month.
MARKER_COLUMNS = ("chart: go-live line (up)", "chart: go-live line (down)")


def monthly_rows(statistics: CrimeStatistics) -> list[tuple]:
    """One row per month (UNKNOWN last): up to go-live and after it side by side."""
    months: dict[str, dict[bool, StatTotals]] = {}
    for month, after, totals in statistics.monthly():
        months.setdefault(month, {})[after] = totals
    go_live_month = f"{statistics.go_live:%Y-%m}" if statistics.go_live else None
    empty = StatTotals()
    rows = []
    for month in sorted(months, key=lambda m: (m == UNKNOWN, m)):
        before, after = months[month].get(False, empty), months[month].get(True, empty)
        rows.append((month, before.legacy, before.not_migrated, before.expected, before.new, before.delta,
                     after.new, after.legacy, after.delta if True in months[month] else None,
                     before.legacy_no_location + after.legacy_no_location,
                     before.new_no_location + after.new_no_location,
                     before.new_outside_area + after.new_outside_area,
                     "go-live" if month == go_live_month else None))
    return rows


def _monthly_sheet(wb, statistics: CrimeStatistics) -> str:
    rows = monthly_rows(statistics)
    ws = wb.create_sheet(MONTHLY_SHEET)
    header = MONTHLY_COLUMNS + MARKER_COLUMNS
    xlsx.set_widths(ws, [10] + [13] * (len(header) - 1) + [4, 12])
    ws.freeze_panes = "A2"
    xlsx.print_layout(ws)
    ws.row_dimensions[1].height = 48  # the headers wrap onto three lines
    head = [xlsx.cell(ws, name, font=xlsx.HEADER_FONT, fill=xlsx.HEADER_FILL, alignment=_HEADER_WRAP)
            for name in header]
    ws.append(head + [None, xlsx.back_link(ws)])
    # The go-live line: bars as high and as deep as the largest delta, at the go-live month only.
    top = max([abs(v) for r in rows for v in (r[5], r[8]) if v] or [1])
    for values in rows:
        month = month_start(values[0])
        cells = [xlsx.cell(ws, month, **_MONTH_STYLE) if month else xlsx.cell(ws, values[0])]
        cells += [xlsx.cell(ws, v, number_format=_COUNT) if isinstance(v, int) else xlsx.cell(ws, v)
                  for v in values[1:]]
        cells += [top, -top] if values[-1] else [None, None]
        ws.append(cells)
    last = len(rows) + 1
    for column in (6, 9):
        _delta_rules(ws, get_column_letter(column), 2, last)
    ws.auto_filter.ref = f"A1:{get_column_letter(len(header))}{last}"
    if rows:
        ws.add_chart(_delta_chart(ws, statistics, len(rows), len(MONTHLY_COLUMNS) + 1), f"A{last + 3}")
    return MONTHLY_SHEET


def _delta_chart(ws, statistics: CrimeStatistics, count: int, marker_col: int):
    """Bars of the monthly delta (iOPS − OPUS): red up to go-live (losses below zero), grey after
    it (new work in iOPS, above zero); a thin dark bar up and down at the go-live month marks it."""
    bars = BarChart()
    bars.type = "col"
    bars.grouping = "clustered"
    bars.overlap = 100  # one bar per month: the series never share a month, but go-live's marker
    bars.gapWidth = 40
    go_live = f" — go-live {statistics.go_live:%d %B %Y}" if statistics.go_live else ""
    bars.title = f"Monthly delta, iOPS − OPUS{go_live}"
    bars.y_axis.title = "iOPS − OPUS (crimes)"
    bars.x_axis.title = "month recorded (UK local)"
    bars.x_axis.number_format = xlsx.MONTH_FORMAT
    bars.x_axis.delete = False  # openpyxl 3.1 marks axes deleted by default: no labels in Excel
    bars.y_axis.delete = False
    bars.x_axis.tickLblPos = "low"  # month labels below the bars, also below negative ones
    bars.y_axis.majorGridlines = None
    bars.height, bars.width = 10, 26
    columns = [(6, "C62828"), (9, "90A4AE")]
    if statistics.go_live:
        columns += [(marker_col, "1A237E"), (marker_col + 1, "1A237E")]
    for column, colour in columns:
        bars.add_data(Reference(ws, min_col=column, min_row=1, max_row=count + 1), titles_from_data=True)
        series = bars.series[-1]
        series.graphicalProperties.solidFill = colour
        series.graphicalProperties.line.solidFill = colour
    if statistics.go_live:
        bars.series[2].tx = SeriesLabel(v=f"go-live {statistics.go_live:%d %B %Y}")
        # One legend entry for the go-live line, not two.
        bars.legend.legendEntry = [LegendEntry(idx=3, delete=True)]
    bars.set_categories(Reference(ws, min_col=1, min_row=2, max_row=count + 1))
    bars.legend.position = "b"
    return bars


# ---- the map ---------------------------------------------------------------------------------
def _map_sheet(wb, png: bytes) -> str:
    ws = wb.create_sheet(MAP_SHEET)
    xlsx.set_widths(ws, [60, 10, 12])
    xlsx.print_layout(ws, title_rows=None)
    ws.append([xlsx.cell(ws, "Missing and mislocated crimes", font=xlsx.TITLE_FONT), None, xlsx.back_link(ws)])
    ws.append([xlsx.cell(ws, f"The same picture is {MAP_FILE} beside this workbook.")])
    image = Image(io.BytesIO(png))
    # Scaled to one landscape A4 page with the two lines above it.
    image.width, image.height = image.width * 0.52, image.height * 0.52
    ws.add_image(image, "A4")
    return MAP_SHEET


def map_picture(statistics: CrimeStatistics, reference=None) -> bytes:
    """The PNG of the map (``reports.crime_map``)."""
    from mappings.reference import load_reference
    from reconcile.stats import district_names
    from reports.crime_map import draw_crime_map

    reference = reference or load_reference()
    return draw_crime_map(statistics, district_names(reference), reference.districts)


# ---- summary.json ----------------------------------------------------------------------------
def summary_figures(statistics: CrimeStatistics) -> dict:
    """The statistics' headline figures for summary.json: up to go-live and after it, apart."""
    def figures(t: StatTotals) -> dict:
        return {"legacy_count": t.legacy, "legacy_not_migrated": t.not_migrated, "expected_count": t.expected,
                "new_count": t.new, "delta": t.delta, "delta_expected": t.delta_expected,
                "legacy_no_location": t.legacy_no_location, "new_no_location": t.new_no_location,
                "new_outside_area": t.new_outside_area, "rows": t.cells, "rows_differing": t.cells_differing}

    return {"go_live": statistics.go_live.isoformat() if statistics.go_live else None,
            "up_to_go_live": figures(statistics.before), "after_go_live": figures(statistics.after)}


# ---- the Summary's block ---------------------------------------------------------------------
SUMMARY_COLUMNS = ("", "OPUS (force figure)", "not migrated", "expected in iOPS", "iOPS",
                   "delta (iOPS − OPUS)", "delta (iOPS − expected)")


def write_statistics_summary(ws, row: int | None, result) -> int | None:
    """The Summary's crime statistics block, appended to ``ws`` whose next row is ``row``;
    returns the next free row. Up to go-live (the OPUS figure, not migrated, expected, iOPS,
    delta), apart from it the crimes recorded after go-live, then the crimes a public crime map
    cannot place (old vs new), and links to the statistics sheets."""
    statistics = statistics_of(result)
    c = lambda v, **kw: xlsx.cell(ws, v, **({"number_format": _COUNT} if type(v) is int else {}) | kw)  # noqa: E731
    label = lambda text: c(text, font=xlsx.LABEL_FONT)  # noqa: E731
    signed = lambda n: c(n, font=xlsx.NEGATIVE_FONT if n < 0 else (xlsx.POSITIVE_FONT if n > 0 else None))  # noqa: E731
    before, after = statistics.before, statistics.after
    go_live = statistics.go_live
    lines = []
    lines.append([c("Crime statistics (Home Office return)", font=xlsx.SECTION_FONT)])
    lines += [[c(sentence)] for sentence in _sentences(before, after, go_live)]
    lines.append(xlsx.header_row(ws, SUMMARY_COLUMNS, range(1, len(SUMMARY_COLUMNS))))
    when = f" (before {go_live:%d %b %Y})" if go_live else ""
    lines.append([label(f"Up to go-live{when}"), c(before.legacy), c(before.not_migrated), c(before.expected),
                  c(before.new), signed(before.delta), signed(before.delta_expected)])
    when = f" (from {go_live:%d %b %Y})" if go_live else ""
    lines.append([label(f"After go-live{when}"), c(after.legacy), c(after.not_migrated),
                  c(after.expected), c(after.new), c(after.delta), c(after.delta_expected)])
    lines.append([])
    lines.append(xlsx.header_row(ws, ["Crimes a public map cannot place", "OPUS", "iOPS", "iOPS: no location",
                                      "iOPS: outside the area"], range(1, 5)))
    whole = statistics.all
    lines.append([label("All months"), c(whole.legacy_no_location), c(whole.new_unplaceable),
                  c(whole.new_no_location), c(whole.new_outside_area)])
    lines.append([c(STATS_SHEET, link=STATS_SHEET), c(DISTRICT_SHEET, link=DISTRICT_SHEET),
                  c(DIFFERENCES_SHEET, link=DIFFERENCES_SHEET), c(MONTHLY_SHEET, link=MONTHLY_SHEET)]
                 + ([c(MAP_SHEET, link=MAP_SHEET)] if MAP_SHEET in _titles(ws) else []))
    for line in lines:
        ws.append(line)
    return None if row is None else row + len(lines)


def _titles(ws) -> set[str]:
    parent = getattr(ws, "parent", None)
    return set(parent.sheetnames) if parent is not None else set()


def _sentences(before: StatTotals, after: StatTotals, go_live) -> list[str]:
    """Plain sentences an auditor reads first (one per row: they fit the Summary's width)."""
    when = f"Up to go-live ({go_live:%d %B %Y})" if go_live else "In the migrated period"
    if before.delta == 0:
        sentences = [f"{when} iOPS holds as many crimes as OPUS counts ({before.legacy:,})."]
    else:
        sentences = [f"{when} iOPS holds {abs(before.delta):,} {'fewer' if before.delta < 0 else 'more'} crimes "
                     f"than OPUS counts ({before.new:,} against {before.legacy:,})."]
    if before.not_migrated or before.delta_expected:
        beyond = before.delta_expected
        rest = ("no other is missing" if beyond == 0 else
                f"{-beyond:,} more are missing beyond those" if beyond < 0 else
                f"iOPS holds {beyond:,} more than expected")
        sentences.append(f"The mapping rejects {before.not_migrated:,} of the crimes OPUS counts (not migrated); "
                         f"{rest}.")
    if after.new or after.legacy:
        sentences.append(f"After go-live iOPS recorded {after.new:,} new crimes: reported apart, never netted "
                         f"against the shortfall.")
    return sentences
