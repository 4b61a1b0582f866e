"""Shared building blocks of the auditors' workbooks (reconciliation, rollback).

Workbooks are written in openpyxl's *write-only* mode: rows stream to disk as they are
appended, so a million discrepancy rows cost the same memory as ten. The price is that a
sheet's layout (column widths, frozen panes) must be fixed before its first row, and rows
can only be appended — :class:`TableWriter` handles that (it looks at the first rows of a
table before creating its sheet) and continues a table on a numbered sheet when Excel's row
limit is reached.

Every text value goes through :func:`text_value` (formula neutralising, characters XML
cannot hold, Excel's cell-length limit) and is written as a string cell, never a formula.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from typing import Any, Iterable, Sequence

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ERROR_CODES, ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.hyperlink import Hyperlink
from zoneinfo import ZoneInfo

from reports.safe import neutralise

#: Rows per sheet, header included (Excel's hard limit); the default of ``TableWriter(max_sheet_rows=)``.
MAX_SHEET_ROWS = 1_048_576
#: Characters a sheet name may have.
MAX_TITLE = 31
#: Characters a cell may hold.
MAX_CELL_CHARS = 32_767
#: Rows looked at before a sheet's column widths are fixed.
WIDTH_SAMPLE_ROWS = 500
MIN_WIDTH, MAX_WIDTH = 8, 60

SUMMARY_TITLE = "Summary"

# ---- styles -------------------------------------------------------------------------------
#: Every font names its face: a nameless font falls back to a serif face in some programs.
FONT_NAME = "Calibri"
TITLE_FONT = Font(name=FONT_NAME, size=16, bold=True)
SECTION_FONT = Font(name=FONT_NAME, size=12, bold=True)
LABEL_FONT = Font(name=FONT_NAME, bold=True)
HEADER_FONT = Font(name=FONT_NAME, bold=True, color="FFFFFF")
HEADER_FILL = PatternFill("solid", fgColor="305496")
LINK_FONT = Font(name=FONT_NAME, color="0563C1", underline="single")
RESULT_FONT = Font(name=FONT_NAME, size=20, bold=True, color="FFFFFF")
PASS_FILL = PatternFill("solid", fgColor="2E7D32")
FAIL_FILL = PatternFill("solid", fgColor="C62828")
#: What the mapping says a field should hold (ALTERED rows).
EXPECTED_FILL = PatternFill("solid", fgColor="E2EFDA")
#: What the new store holds instead (ALTERED rows).
DIFFERS_FILL = PatternFill("solid", fgColor="F8CBAD")
NEGATIVE_FILL = PatternFill("solid", fgColor="FFC7CE")
NEGATIVE_FONT = Font(name=FONT_NAME, color="9C0006")
POSITIVE_FILL = PatternFill("solid", fgColor="FFEB9C")
POSITIVE_FONT = Font(name=FONT_NAME, color="9C5700")
TOTAL_BORDER = Border(top=Side(style="thin"))
#: A box to write in (sign-off fields): visible on paper.
BOX = Border(left=Side(style="thin"), right=Side(style="thin"), top=Side(style="thin"), bottom=Side(style="thin"))
VERDICT_FONT = Font(name=FONT_NAME, bold=True, color="FFFFFF")
WRAP = Alignment(wrap_text=True, vertical="top")
WRAP_MIDDLE = Alignment(wrap_text=True, vertical="center")
WRAP_INDENT = Alignment(wrap_text=True, vertical="top", indent=1)
NOTE_FONT = Font(name=FONT_NAME, italic=True, color="595959")
CENTRE = Alignment(horizontal="center", vertical="center")
LEFT = Alignment(horizontal="left")
MIDDLE = Alignment(vertical="center")
INDENT = Alignment(indent=1)

#: Every time in the workbooks is UK civil time (GMT or BST, as a UK reader's clock showed it):
#: the day-month-year order a UK reader expects, the month by name so 03/04 cannot be misread.
DATETIME_FORMAT = "dd mmm yyyy hh:mm"
DATE_FORMAT = "dd mmm yyyy"
MONTH_FORMAT = "yyyy-mm"
LONDON = ZoneInfo("Europe/London")
#: The protective marking of every page printed (Government Security Classifications).
MARKING = "OFFICIAL-SENSITIVE"
EMPTY = "(empty)"

_TITLE_FORBIDDEN = re.compile(r"[\\/?*\[\]:]")
_ESCAPE = {chr(i): f"\\x{i:02x}" for i in range(32)}


def new_workbook() -> Workbook:
    """A streaming (write-only) workbook."""
    return Workbook(write_only=True)


# ---- values -------------------------------------------------------------------------------
def text_value(value: str) -> str:
    """Text as it may go into a cell: neutralised, XML-safe, within Excel's length limit.

    Control characters XML 1.0 cannot carry are shown as ``\\xNN`` (visible, not lost
    silently); a carriage return becomes a line feed (XML readers do that anyway, so the cell
    is written as it will be read); over-long text is cut with a note that the CSV holds all.
    """
    value = neutralise(value)
    if "\r" in value:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    # Characters XML cannot hold are none of them printable: most text skips the search.
    if not value.isprintable() and ILLEGAL_CHARACTERS_RE.search(value):
        value = ILLEGAL_CHARACTERS_RE.sub(lambda m: _ESCAPE[m.group()], value)
    if len(value) > MAX_CELL_CHARS:
        note = f" … [cut: {len(value)} characters in all; the CSV holds the whole value]"
        value = value[: MAX_CELL_CHARS - len(note)] + note
    return value


def uk_local(moment: dt.datetime | None) -> dt.datetime | None:
    """Excel has no time zones: an aware datetime as the naive UK civil time it was
    (``Europe/London``: GMT in winter, BST in summer). A naive one is taken as already local."""
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(LONDON).replace(tzinfo=None)


#: An instant written as text with its zone (``2019-03-31T00:30:00Z``, ``…+01:00``), a UK local
#: time (``2019-03-31 01:30``) or a date (``1985-03-02``): the forms the reconciler's values take.
_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})")
_LOCAL = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(?::\d{2})?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def as_excel_time(value: Any) -> Any:
    """A time or date written as text, as the real Excel value a UK reader reads: an instant
    with a zone in UK local time, a local time as it is, a date as a date. Other values as
    they are (a value the reconciler wrote in another form stays text: nothing is guessed)."""
    if not isinstance(value, str) or not 10 <= len(value) <= 32 or not value[:4].isdigit():
        return value
    try:
        if _INSTANT.fullmatch(value):
            return uk_local(dt.datetime.fromisoformat(value.replace("Z", "+00:00")))
        if _LOCAL.fullmatch(value):
            return dt.datetime.fromisoformat(value)
        if _DATE.fullmatch(value):
            return dt.date.fromisoformat(value)
    except ValueError:  # 2019-02-30: not a real date, shown as the text it is
        pass
    return value


def cell(ws, value: Any, *, font: Font | None = None, fill: PatternFill | None = None,
         number_format: str | None = None, alignment: Alignment | None = None,
         border: Border | None = None, link: str | None = None) -> Any:
    """A value ready to append: plain when unstyled (fast), else a styled write-only cell.

    Text is always stored as a string — never a formula, never an error value — whatever
    it starts with. ``link`` is the title of a sheet in this workbook to jump to.
    """
    if isinstance(value, str):
        value = text_value(value)
    elif isinstance(value, dt.datetime):
        value = uk_local(value)
        number_format = number_format or DATETIME_FORMAT
    elif isinstance(value, dt.date):
        number_format = number_format or DATE_FORMAT
    if link and font is None:
        font = LINK_FONT
    styled = bool(font or fill or number_format or alignment or border)
    if not styled and not link and not (isinstance(value, str) and value in ERROR_CODES):
        return value  # openpyxl binds ordinary text as 's'; neutralised text never starts with '='
    c = WriteOnlyCell(ws)
    if font:
        c.font = font
    if fill:
        c.fill = fill
    if number_format:
        c.number_format = number_format
    if alignment:
        c.alignment = alignment
    if border:
        c.border = border
    # The value after the style: a datetime bound first would register openpyxl's default
    # date format in the workbook, unused once the cell's own format replaces it.
    c.value = value
    if isinstance(value, str):
        c.data_type = "s"  # '#N/A' and the like: text, not an error value
    if link:
        c.hyperlink = Hyperlink(ref=c.coordinate, location=sheet_location(link), display=str(value))
    return c


def sheet_location(title: str) -> str:
    """The in-workbook address of a sheet's top-left cell: ``'crime MISSING'!A1``."""
    return "'" + title.replace("'", "''") + "'!A1"


HEADER_RIGHT = Alignment(horizontal="right")


def header_row(ws, names: Sequence[str], numeric: Iterable[int] = ()) -> list:
    """Header cells; those over numeric columns (indexes in ``numeric``) sit right, above their numbers."""
    numeric = set(numeric)
    return [cell(ws, name, font=HEADER_FONT, fill=HEADER_FILL, alignment=HEADER_RIGHT if i in numeric else None)
            for i, name in enumerate(names)]


def back_link(ws) -> Any:
    return cell(ws, "◀ Summary", link=SUMMARY_TITLE)


def print_layout(ws, *, title_rows: str | None = "1:1") -> None:
    """Printable as an auditor files it: landscape A4, one page wide, the header row on every
    page, marked OFFICIAL-SENSITIVE at the top and bottom of each page, the sheet's name, the
    file's name and "Page X of Y"."""
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = "9"  # A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_margins.left = ws.page_margins.right = 0.5
    ws.page_margins.top = ws.page_margins.bottom = 0.75
    ws.page_margins.header = ws.page_margins.footer = 0.3
    ws.print_options.horizontalCentered = False
    header, footer = ws.oddHeader, ws.oddFooter
    header.center.text = MARKING
    header.center.size = 10
    header.center.font = "Calibri,Bold"
    header.right.text = "&A"  # the sheet's name
    header.right.size = 8
    footer.center.text = MARKING
    footer.center.size = 10
    footer.center.font = "Calibri,Bold"
    footer.right.text = "Page &P of &N"
    footer.right.size = 8
    footer.left.text = "&F"  # the file's name
    footer.left.size = 8
    if title_rows:
        ws.print_title_rows = title_rows


# ---- drop-down lists ------------------------------------------------------------------------
def list_validation(ws, choices: Sequence[str] | str, cells: str, *, strict: bool = True,
                    prompt: str | None = None) -> DataValidation:
    """A drop-down list over ``cells`` (``"K2:K1048576"``): ``choices`` are the values offered, or a
    reference to cells holding them (``"'Sign-off'!$B$30:$B$39"``). ``strict``: other values are
    refused; else they are allowed (a name not on the list)."""
    formula = choices if isinstance(choices, str) else '"' + ",".join(choices) + '"'
    dv = DataValidation(type="list", formula1=formula, allow_blank=True, showDropDown=False,
                        showErrorMessage=strict, showInputMessage=bool(prompt))
    if strict:
        dv.errorTitle = "Not on the list"
        dv.error = "Pick a value from the drop-down list."
    if prompt:
        dv.prompt = prompt
    dv.add(cells)
    ws.data_validations.append(dv)
    return dv


# ---- sheet names --------------------------------------------------------------------------
def sheet_title(base: str, taken: set[str], suffix: str = "") -> str:
    """A valid, unused sheet name: no ``\\ / ? * [ ] :``, at most 31 characters, unique ignoring case."""
    clean = _TITLE_FORBIDDEN.sub("_", base).strip("'") or "Sheet"
    candidate = clean[: MAX_TITLE - len(suffix)].rstrip() + suffix
    n = 2
    while candidate.casefold() in {t.casefold() for t in taken}:
        extra = f"{suffix} ~{n}"
        candidate = clean[: MAX_TITLE - len(extra)].rstrip() + extra
        n += 1
    taken.add(candidate)
    return candidate


def order_sheets(wb: Workbook, titles: Iterable[str]) -> None:
    """Put the named sheets first, in this order (sheets may be created in any order)."""
    for index, title in enumerate(titles):
        wb.move_sheet(title, offset=index - wb.index(wb[title]))
    wb.active = 0


# ---- widths -------------------------------------------------------------------------------
def display_width(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, dt.datetime):
        return 17  # DATETIME_FORMAT
    if isinstance(value, dt.date):
        return 11  # DATE_FORMAT
    if isinstance(value, float):
        return len(f"{value:.1f}")
    return max((len(line) for line in str(value).splitlines()), default=0)


def column_widths(header: Sequence[str], rows: Iterable[Sequence[Any]], skip: Iterable[int] = ()) -> list[float]:
    """Widths that fit the header (plus the filter button) and the rows seen, within bounds.
    ``skip``: columns whose width is fixed elsewhere (their values are not measured)."""
    widths = [len(h) * 1.1 + 3 for h in header]  # bold header plus the filter button
    measured = [i for i in range(len(widths)) if i not in set(skip)]
    for row in rows:
        for i in measured:
            if i < len(row) and row[i] is not None:
                widths[i] = max(widths[i], display_width(row[i]) * 1.1 + 2)
    return [round(min(max(w, MIN_WIDTH), MAX_WIDTH), 1) for w in widths]


def numeric_columns(count: int, rows: Iterable[Sequence[Any]]) -> set[int]:
    """Columns whose values seen are all numbers (and at least one is): their headers sit right."""
    seen: set[int] = set()
    other: set[int] = set()
    for row in rows:
        for i, value in enumerate(row[:count]):
            if value is None:
                continue
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                seen.add(i)
            else:
                other.add(i)
    return seen - other


def set_widths(ws, widths: Sequence[float], start: int = 1) -> None:
    for i, width in enumerate(widths, start):
        ws.column_dimensions[get_column_letter(i)].width = width


#: Values a write-only sheet takes as they are (no style, no conversion): see :func:`cell`.
_PLAIN_TYPES = (int, float, bool)

LINE_HEIGHT = 15  # points per line of 11-point text
MAX_LINES = 8  # a taller value is cut on screen; the cell holds it all
TOP = Alignment(vertical="top")
WRAP_TOP = Alignment(wrap_text=True, vertical="top")


def line_count(values: Sequence[Any]) -> int:
    texts = [v for v in values if isinstance(v, str)]
    if not any("\n" in v for v in texts):
        return 1  # nearly every row: one test per value
    return 1 + max(v.count("\n") for v in texts)


def wrapped_lines(text: str, width: float) -> int:
    """Lines ``text`` takes in a wrapped cell ``width`` wide (an estimate: Calibri 11, average letters)."""
    per_line = max(1, int(width * CHARS_PER_UNIT) - 1)
    return sum(max(1, -(-len(part) // per_line)) for part in text.split("\n"))


def is_styled(value: Any, style: dict | None) -> bool:
    """Whether a table cell takes its style: an empty cell only for a fill (an ALTERED value
    that became NULL is still marked), any other value for any style."""
    return bool(style) and (value is not None or "fill" in style)


#: Merged style lists (per row style and multi-line pattern) remembered per table: a caller
#: building new dicts for every row must not make the cache grow with the rows.
_CACHED = 64
#: Styled cells kept per table to be filled again (one per column and style seen).
_TEMPLATES = 512


def _value_kind(value: Any) -> int:
    """What number format :func:`cell` gives a value by default: 1 datetime, 2 date, 0 none."""
    if isinstance(value, dt.datetime):
        return 1
    if isinstance(value, dt.date):
        return 2
    return 0


# ---- tables that stream over as many sheets as they need ----------------------------------
class TableWriter:
    """One table (header + rows) streamed into ``base``, ``base (2)``, … as Excel's limit needs.

    Each sheet gets the header, frozen below it, an auto-filter over the data, column widths
    fitted to the first rows, and a link back to the Summary beside the header. Rows are raw
    values; ``column_styles`` (per column index) and the ``styles`` of one row (per column
    index) are keyword arguments of :func:`cell`. ``max_sheet_rows``: rows per sheet, header
    included (Excel's limit unless a smaller one is given). ``validations``: drop-down lists
    put on every sheet of the table, as (column index, choices, strict) of
    :func:`list_validation`.
    """

    def __init__(self, wb: Workbook, base: str, header: Sequence[str], taken: set[str], *,
                 column_styles: dict[int, dict] | None = None,
                 fixed_widths: dict[int, float] | None = None, link_back: bool = True,
                 max_sheet_rows: int = MAX_SHEET_ROWS,
                 validations: Sequence[tuple[int, Sequence[str] | str, bool]] = ()):
        self.validations = tuple(validations)
        self.wb = wb
        self.base = base
        self.header = list(header)
        self.taken = taken
        self.column_styles = column_styles or {}
        self.fixed_widths = fixed_widths or {}
        self.link_back = link_back
        self.limit = max_sheet_rows
        if not 2 <= self.limit <= MAX_SHEET_ROWS:
            raise ValueError(f"a sheet holds a header and 1 to {MAX_SHEET_ROWS - 1} rows")
        self.sheets: list[list] = []  # [title, data rows], in order
        self.rows = 0
        self._widths: list[float] | None = None
        self._numeric: set[int] = set()
        self._pending: list[tuple] = []  # rows seen before the widths are fixed
        self._wrap_widths: dict[int, float] = {}
        self._ws = None
        self._merged_styles: dict[tuple, tuple] = {}
        #: (column, value kind, ids of the style's objects) -> (the objects, a styled cell):
        #: a styled cell is filled again for each row instead of styled afresh (see _styled).
        self._templates: dict[tuple, tuple] = {}
        self._rows_here = 0

    def append(self, values: Sequence[Any], styles: dict[int, dict] | None = None) -> None:
        self.rows += 1
        if self._widths is None:
            self._pending.append((values, styles))
            if len(self._pending) >= WIDTH_SAMPLE_ROWS:
                self._fix_widths()
            return
        self._write(values, styles)

    def _fix_widths(self) -> None:
        widths = column_widths(self.header, (values for values, _ in self._pending), skip=self.fixed_widths)
        self._numeric = numeric_columns(len(self.header), (values for values, _ in self._pending))
        for index, width in self.fixed_widths.items():
            widths[index] = width
        self._widths = widths
        # Columns whose text wraps: a row's height must be known before it is streamed, and
        # neither Excel nor LibreOffice reliably grows a row for wrapped text on opening.
        self._wrap_widths = {i: widths[i] for i, style in self.column_styles.items()
                             if i < len(widths) and style and getattr(style.get("alignment"), "wrap_text", False)}
        pending, self._pending = self._pending, []
        for values, styles in pending:
            self._write(values, styles)

    def _write(self, values: Sequence[Any], styles: dict[int, dict] | None) -> None:
        if self._ws is None or self._rows_here + 1 >= self.limit:
            self._new_sheet()
        ws = self._ws
        lines = line_count(values)
        for i, width in self._wrap_widths.items():
            if i < len(values) and type(values[i]) is str and len(values[i]) >= width - 1:
                lines = max(lines, wrapped_lines(values[i], width))
        pattern = None
        if lines > 1:
            # A row with multi-line text: that text wraps, and the whole row reads from the top.
            wrapped = self._wrap_widths
            pattern = tuple(type(v) is str and ("\n" in v or i in wrapped) for i, v in enumerate(values))
        cell_styles = self._cell_styles(len(values), styles, pattern)
        row = []
        for i, (v, style) in enumerate(zip(values, cell_styles)):
            if is_styled(v, style):
                row.append(self._styled(i, v, style))
            elif v is None or type(v) in _PLAIN_TYPES:
                row.append(v)
            elif isinstance(v, dt.date):  # a date or time: a number format of its own
                row.append(self._styled(i, v, {}))
            else:
                row.append(cell(ws, v))
        row_index = self._rows_here + 2
        if lines > 1:
            # A row's height must be known before the row is streamed; dropped afterwards so a
            # million rows do not leave a million dimension objects behind.
            ws.row_dimensions[row_index].height = LINE_HEIGHT * min(lines, MAX_LINES)
        ws.append(row)
        if lines > 1:
            del ws.row_dimensions[row_index]
        self._rows_here += 1
        self.sheets[-1][1] = self._rows_here

    def _styled(self, column: int, value: Any, style: dict) -> Any:
        """A styled cell holding ``value``, as :func:`cell` makes it.

        Styling a cell costs more than writing it (openpyxl hashes each style object into the
        workbook's lists), and a table has a few styles per column: so each column keeps one
        styled cell per style and value kind, and it is given the next row's value. ``ws.append``
        writes a write-only row before it returns (openpyxl reuses its own cells that way), so
        the cell is free again for the next row; within a row each column has its own."""
        if "link" in style:
            return cell(self._ws, value, **style)
        font, fill, alignment, border = (style.get("font"), style.get("fill"), style.get("alignment"),
                                         style.get("border"))
        number_format = style.get("number_format")
        kind = _value_kind(value)
        key = (column, kind, id(font), id(fill), id(alignment), id(border), number_format)
        entry = self._templates.get(key)
        if entry is None or entry[0][0] is not font or entry[0][1] is not fill or entry[0][2] is not alignment \
                or entry[0][3] is not border:
            if len(self._templates) >= _TEMPLATES:
                return cell(self._ws, value, **style)
            template = cell(self._ws, None, font=font, fill=fill, alignment=alignment, border=border,
                            number_format=number_format or (DATETIME_FORMAT if kind == 1 else
                                                            DATE_FORMAT if kind == 2 else None))
            entry = self._templates[key] = ((font, fill, alignment, border), template)
        template = entry[1]
        if type(value) is str:
            template.value = text_value(value)
            template.data_type = "s"  # '#N/A' and the like: text, not an error value
        else:
            template.value = uk_local(value) if kind == 1 else value
        return template

    def _cell_styles(self, count: int, styles: dict[int, dict] | None,
                     pattern: tuple[bool, ...] | None = None) -> list[dict | None]:
        """Per column, the :func:`cell` keywords of this row: the column's, then the row's own,
        then (a multi-line row, ``pattern``: which values wrap) the alignment from the top.
        Rows pass the same few ``styles`` dicts again and again: merged once each (the dict is
        kept with its merge, so its id cannot be reused by another while cached)."""
        key = (count, id(styles), pattern)
        cached = self._merged_styles.get(key)
        if cached is None or cached[0] is not styles:
            merged = [self.column_styles.get(i) or None for i in range(count)]
            for i, style in (styles or {}).items():
                if i < count:
                    merged[i] = {**(merged[i] or {}), **style}
            if pattern is not None:
                for i, wraps in enumerate(pattern):
                    merged[i] = {**(merged[i] or {}), "alignment": WRAP_TOP if wraps else TOP}
            cached = (styles, merged)
            if len(self._merged_styles) < _CACHED:
                self._merged_styles[key] = cached
        return cached[1]

    def _new_sheet(self) -> None:
        self._finish_sheet()
        suffix = "" if not self.sheets else f" ({len(self.sheets) + 1})"
        title = sheet_title(self.base, self.taken, suffix)
        ws = self.wb.create_sheet(title)
        set_widths(ws, self._widths or column_widths(self.header, []))
        head = header_row(ws, self.header, self._numeric)
        if self.link_back:
            ws.column_dimensions[get_column_letter(len(self.header) + 2)].width = 12
            head += [None, back_link(ws)]
        ws.freeze_panes = "A2"
        print_layout(ws)
        for index, choices, strict in self.validations:
            letter = get_column_letter(index + 1)
            list_validation(ws, choices, f"{letter}2:{letter}{self.limit}", strict=strict)
        ws.append(head)
        self._ws = ws
        self._rows_here = 0
        self.sheets.append([title, 0])

    def _finish_sheet(self) -> None:
        if self._ws is not None:
            last = get_column_letter(len(self.header))
            self._ws.auto_filter.ref = f"A1:{last}{self._rows_here + 1}"
            self._ws.print_area = f"A1:{last}{self._rows_here + 1}"  # the table, not the link beside it

    def close(self, *, always: bool = False) -> list[tuple[str, int]]:
        """Finish the table: [(sheet title, data rows)]. ``always``: a header-only sheet when empty."""
        if self._widths is None:
            self._fix_widths()
        if self._ws is None and always:
            self._new_sheet()
        self._finish_sheet()
        return [tuple(s) for s in self.sheets]


def save(wb: Workbook, out) -> None:
    """Save ``wb`` into the open binary file ``out``.

    The zip archive is built in memory (compressed, a few MB for the largest reports) and then
    written out in one go: a write that fails (a full disk) is then a plain ``OSError`` from
    ``out``, after openpyxl has finished with every sheet's temporary file, instead of an archive
    left half-written whose clean-up fails again when it is collected."""
    buffer = io.BytesIO()
    wb.save(buffer)
    out.write(buffer.getbuffer())


class _NullSink(io.RawIOBase):
    """A seekable binary sink that keeps nothing (a zip archive written into it is discarded)."""

    def __init__(self) -> None:
        super().__init__()
        self._position = self._size = 0

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, data) -> int:
        n = len(memoryview(data))
        self._position += n
        self._size = max(self._size, self._position)
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = base + offset
        return self._position

    def tell(self) -> int:
        return self._position


def discard_spools(wb: Workbook) -> None:
    """Delete the temporary files write-only sheets stream to, after a failed write.

    openpyxl keeps each unsaved sheet in a file under the temp folder until the workbook is
    saved, or until the interpreter exits. They hold the same personal data as the reports,
    so a failure must not leave them behind for the rest of a long-running process. Saving is
    openpyxl's one public way to remove them, so an unsaved workbook is saved into the null
    device: each sheet's stream is ended and its file deleted as it is copied. A workbook
    whose save was begun is left alone: a save that succeeded removed every file, and one that
    failed half-way removed those it copied (the rest go when the process ends).
    """
    if any(ws.closed for ws in wb.worksheets):  # save() closes each sheet as it copies it
        return
    try:
        # Not a file that is closed after a failure: openpyxl's zip archive, abandoned half-way,
        # still closes itself on that sink when it is collected (it would print a warning).
        wb.save(_NullSink())
    except Exception:  # e.g. a sheet left half-written by the failure: nothing more to remove
        for ws in wb.worksheets:
            try:
                if not ws.closed:
                    ws.close()  # ends the sheet's XML stream, which would complain when collected
            except Exception:
                pass


# ---- small sheets laid out as forms -------------------------------------------------------
#: Characters of 11-point text per unit of column width (Excel's unit is one '0' of the font).
CHARS_PER_UNIT = 1.0


class FormSheet:
    """A small sheet written row by row as a form (Summary, Sign-off, Run information): it knows
    its row number, so a row can span columns (merged, wrapped) and be given the height its text
    needs — Excel and LibreOffice fit the height of a wrapped cell, never of a merged one."""

    def __init__(self, ws, widths: Sequence[float], *, title_rows: str | None = None) -> None:
        self.ws = ws
        self.widths = list(widths)
        self.row = 0
        set_widths(ws, self.widths)
        print_layout(ws, title_rows=title_rows)
        # A block written by other code straight into the sheet (``ws.append``) is counted too:
        # a write-only sheet does not say how many rows it has, and every height and merge
        # after that block depends on the count.
        self._ws_append = ws.append
        ws.append = self._counted_append

    def _counted_append(self, row) -> None:
        self.row += 1
        self._ws_append(row)

    def c(self, value: Any, **style) -> Any:
        return cell(self.ws, value, **style)

    def lines(self, text: str, first: int, last: int) -> int:
        """Lines ``text`` takes wrapped over columns ``first``..``last`` (1-based)."""
        width = sum(self.widths[first - 1:last]) * CHARS_PER_UNIT
        count = 0
        for part in str(text).split("\n"):
            count += max(1, -(-int(len(part) * 1.05) // max(1, int(width - 2))))
        return count

    def append(self, cells: Sequence[Any] = (), *, height: float | None = None,
               span: tuple[int, int] | None = None, lines: int | None = None) -> int:
        """Append one row; ``span``: (first, last) columns merged from the first (1-based);
        ``lines``: the row's height in lines of text. Returns the row's number."""
        number = self.row + 1
        if lines and lines > 1:
            height = max(height or 0, LINE_HEIGHT * lines)
        if height:
            self.ws.row_dimensions[number].height = height
        self.ws.append(list(cells))  # counted by _counted_append
        if span is not None and span[1] > span[0]:
            self.ws.merged_cells.add(f"{get_column_letter(span[0])}{number}:{get_column_letter(span[1])}{number}")
        return number

    def text(self, text: str, *, column: int = 1, last: int | None = None, lead: Sequence[Any] = (),
             **style) -> int:
        """A paragraph over columns ``column``..``last`` (default: to the last column), wrapped,
        with ``lead`` cells before it."""
        last = last or len(self.widths)
        style.setdefault("alignment", WRAP_TOP)
        cells = list(lead) + [None] * (column - 1 - len(lead)) + [self.c(text, **style)]
        return self.append(cells, span=(column, last), lines=self.lines(text, column, last))

    def blank(self) -> int:
        return self.append([])
