"""reports.xlsx: what a table's rows hold once the workbook is read back with openpyxl's public
API — values and their types, number formats, fills, fonts, alignments, links, row heights —
and that a table continues on numbered sheets in order."""

from __future__ import annotations

import datetime as dt
import io

import openpyxl
import pytest

from reports import xlsx

FILL = {"fill": xlsx.EXPECTED_FILL}
NUMBER = {"number_format": "0.0"}
BOLD = {"font": xlsx.LABEL_FONT, "alignment": xlsx.CENTRE}
HEADER = ["a", "b", "c", "d", "e"]

#: Rows of (values, per-column styles) as TableWriter is given them.
ROWS = [
    (["crime", "ALTERED", "CR/000001/18", "CRI-2018-000001", None], None),
    (["  leading", "trailing  ", " both ", "\ttab", "x\ty"], None),
    (["a & b", "<tag>", "x > y", "\"quoted\" 'single'", "]]>"], None),
    (["Müller", "O'Brien, Seán", "◀ Summary", "emoji 😀 here", "漢字"], None),
    (["", "#N/A", "#DIV/0!", "=1+1", "@SUM(A1)"], None),
    (["+44 161", "-3", "1e5", "\x01control\x1f", "plain"], None),
    ([0, -7, 2**53, 93.5, 1e-7], None),
    ([12.25, None, "expected", None, "new"], {0: NUMBER, 1: FILL, 2: FILL, 3: NUMBER, 4: {"fill": xlsx.DIFFERS_FILL}}),
    (["bold", 3, None, "", "x" * 40000], {0: BOLD, 1: BOLD, 2: BOLD, 3: FILL}),
    ([None, None, None, None, "only the last"], {1: NUMBER, 2: BOLD}),
    (["when", dt.datetime(2019, 7, 1, 12, 30, tzinfo=dt.timezone.utc), True, float("nan"), "cr\rlf\r\nend"], None),
]


def _saved(wb) -> openpyxl.Workbook:
    out = io.BytesIO()
    wb.save(out)
    return openpyxl.load_workbook(io.BytesIO(out.getvalue()))


def _table(rows, **options):
    wb = xlsx.new_workbook()
    table = xlsx.TableWriter(wb, "t", HEADER, set(), **options)
    for values, styles in rows:
        table.append(values, styles)
    sheets = table.close()
    return _saved(wb), sheets


def _expected(value):
    if isinstance(value, str):
        return xlsx.text_value(value) or None  # an empty string reads back as an empty cell
    if isinstance(value, dt.datetime):
        return xlsx.uk_local(value)  # every time in the workbooks is UK local time
    if isinstance(value, float) and value != value:
        return None  # NaN has no spreadsheet number: it reads back as an empty cell
    return value


def test_values_read_back_as_written_text_stays_text():
    book, sheets = _table(ROWS)
    assert sheets == [("t", len(ROWS))]
    ws = book["t"]
    assert [c.value for c in ws[1]][:5] == HEADER
    for r, (values, _) in enumerate(ROWS, start=2):
        cells = ws[r][:5]
        assert [c.value for c in cells] == [_expected(v) for v in values], r
        for c, v in zip(cells, values):
            if isinstance(v, str) and v:
                assert c.data_type == "s", (c.coordinate, v)  # never a formula or an error value
    assert ws["B6"].value == "#N/A" and ws["D6"].value == "'=1+1"  # neutralised, still text
    assert len(ws["E10"].value) == xlsx.MAX_CELL_CHARS and "the CSV holds the whole value" in ws["E10"].value


def test_styles_read_back_on_the_cells_they_were_given():
    book, _ = _table(ROWS)
    ws = book["t"]
    assert ws["A9"].number_format == "0.0" and ws["D9"].number_format == "General"  # None: no number format
    for coordinate in ("B9", "C9"):  # a fill marks its cell even when the value is empty
        assert ws[coordinate].fill.fgColor.rgb.endswith("E2EFDA"), coordinate
    assert ws["E9"].fill.fgColor.rgb.endswith("F8CBAD")
    assert ws["A10"].font.b and ws["A10"].alignment.horizontal == "center" and ws["B10"].font.b
    assert not ws["C10"].font.b  # empty: no style but a fill
    assert ws["D10"].fill.fgColor.rgb.endswith("E2EFDA")
    assert ws["A2"].fill.fill_type is None and not ws["A2"].font.b
    moment = ws["B12"]
    assert moment.is_date and moment.number_format == xlsx.DATETIME_FORMAT
    # Multi-line text wraps and its row is taller; the header links back to the Summary.
    assert ws["E12"].alignment.wrap_text and ws.row_dimensions[12].height == 2 * xlsx.LINE_HEIGHT
    assert ws["G1"].hyperlink.location == "'Summary'!A1" and ws["G1"].font.u == "single"
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref == f"A1:E{len(ROWS) + 1}"


def test_column_styles_apply_to_every_row_and_a_row_style_adds_to_them():
    rows = [([n, f"v{n}", None, None, None], {1: FILL} if n % 2 else None) for n in range(xlsx.WIDTH_SAMPLE_ROWS + 20)]
    book, _ = _table(rows, column_styles={0: {"number_format": "0"}, 1: {"font": xlsx.LABEL_FONT}})
    ws = book["t"]
    for r in (2, 3, xlsx.WIDTH_SAMPLE_ROWS + 21):
        n = ws.cell(row=r, column=1).value
        assert ws.cell(row=r, column=1).number_format == "0" and ws.cell(row=r, column=2).font.b
        assert ws.cell(row=r, column=2).fill.fgColor.rgb.endswith("E2EFDA") == bool(n % 2)


@pytest.mark.parametrize("rows", [1, 3])
def test_a_table_continued_on_numbered_sheets_keeps_its_rows_in_order(rows):
    wb = xlsx.new_workbook()
    table = xlsx.TableWriter(wb, "big", ["n", "text"], set(), max_sheet_rows=3)  # a header and two rows a sheet
    for n in range(rows * 2 + 1):
        table.append([n, f"row {n}" + ("\nsecond line" if n == 2 else "")])
    sheets = table.close()
    assert [title for title, _ in sheets] == ["big"] + [f"big ({k})" for k in range(2, len(sheets) + 1)]
    assert [n for _, n in sheets] == [2] * rows + [1]  # full sheets, then the rest
    book = _saved(wb)
    read = [row for title, _ in sheets for row in book[title].iter_rows(min_row=2, max_col=2, values_only=True)]
    assert read == [(n, f"row {n}" + ("\nsecond line" if n == 2 else "")) for n in range(rows * 2 + 1)]
    assert all(book[title].freeze_panes == "A2" for title, _ in sheets)


def test_styles_built_afresh_for_every_row_are_not_kept_by_the_writer():
    """Memory stays flat whatever the caller does: the style dicts of written rows are let go."""
    import gc
    import weakref

    class Style(dict):  # a dict that can be watched by a weak reference
        pass

    count = xlsx.WIDTH_SAMPLE_ROWS + 1000
    wb = xlsx.new_workbook()
    table = xlsx.TableWriter(wb, "fresh", ["n", "value"], set(), column_styles={0: {"number_format": "0"}})
    watched = []
    for n in range(count):
        styles = Style({1: {"fill": xlsx.DIFFERS_FILL}})  # a new dict every row
        watched.append(weakref.ref(styles))
        table.append([n, f"v{n}"], styles)
    del styles
    gc.collect()
    assert sum(ref() is not None for ref in watched) <= 100  # a small cache, not one per row
    (title, rows), = table.close()
    sheet = _saved(wb)[title]
    assert rows == count
    assert sheet.cell(row=rows + 1, column=2).fill.fgColor.rgb.endswith("F8CBAD")


def test_a_failed_workbook_leaves_no_sheet_file_behind(tmp_path, monkeypatch):
    """discard_spools removes openpyxl's temporary sheet files (personal data) after a failure."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where openpyxl's sheet files go
    wb = xlsx.new_workbook()
    table = xlsx.TableWriter(wb, "t", ["n"], set())
    for n in range(xlsx.WIDTH_SAMPLE_ROWS + 5):
        table.append([n])
    assert list(tmp_path.iterdir())  # the sheet streams into a file there
    xlsx.discard_spools(wb)
    assert list(tmp_path.iterdir()) == []


def test_a_form_sheet_counts_rows_other_code_appends_so_merges_stay_on_their_rows():
    wb = xlsx.new_workbook()
    ws = wb.create_sheet("Form")
    form = xlsx.FormSheet(ws, [20, 20, 20])
    form.text("first paragraph, long enough " * 4)
    ws.append(["a block written straight into the sheet"])  # e.g. another module's block
    ws.append(["and its second row"])
    row = form.text("after the block " * 6)
    assert row == 4
    book = _saved(wb)["Form"]
    assert {str(r) for r in book.merged_cells.ranges} == {"A1:C1", "A4:C4"}
    assert book["A4"].value.startswith("after the block") and book["A4"].alignment.wrap_text
    assert book.row_dimensions[4].height == 2 * xlsx.LINE_HEIGHT
    assert book.oddHeader.center.text == xlsx.MARKING and book.page_setup.orientation == "landscape"


def test_styled_cells_keep_each_rows_own_value_and_style():
    """Rows that share a column's style (the cell styled once and filled row by row) read back
    with their own values, types and formats: text, numbers, times, empty fills, links."""
    moments = [dt.datetime(2019, 3, 31, 0, 30, tzinfo=dt.timezone.utc), dt.date(1985, 3, 2)]
    rows = []
    for n in range(xlsx.WIDTH_SAMPLE_ROWS + 30):
        styles = {1: FILL, 3: {"link": xlsx.SUMMARY_TITLE}} if n % 3 == 0 else ({2: BOLD} if n % 3 == 1 else None)
        rows.append(([f"#N/A {n}" if n % 7 == 0 else f"text {n}", None if n % 5 == 0 else n,
                      moments[n % 2] if n % 4 else f"line {n}\nsecond", f"link {n}", n + 0.5], styles))
    wrap = {"alignment": xlsx.WRAP_TOP}
    book, _ = _table(rows, column_styles={0: wrap, 2: wrap, 4: NUMBER})
    ws = book["t"]
    for r, (values, styles) in enumerate(rows, start=2):
        cells = ws[r][:5]
        read_back = [dt.datetime.combine(v, dt.time()) if type(v) is dt.date else _expected(v) for v in values]
        assert [c.value for c in cells] == read_back, r  # a date reads back as its midnight
        assert cells[0].data_type == "s" and cells[0].alignment.wrap_text
        assert cells[4].number_format == "0.0"
        moment = cells[2]
        if isinstance(values[2], dt.datetime):
            assert moment.number_format == xlsx.DATETIME_FORMAT and moment.is_date
        elif isinstance(values[2], dt.date):
            assert moment.number_format == xlsx.DATE_FORMAT and moment.is_date
        else:
            assert moment.number_format == "General" and ws.row_dimensions[r].height == 2 * xlsx.LINE_HEIGHT
        assert cells[1].fill.fgColor.rgb.endswith("E2EFDA") == bool(styles and 1 in styles), r
        assert bool(cells[2].font.b) == bool(styles and 2 in styles and values[2] is not None), r
        assert (cells[3].hyperlink is not None) == bool(styles and 3 in styles), r
        if cells[3].hyperlink is not None:
            assert cells[3].hyperlink.location == "'Summary'!A1" and cells[3].hyperlink.display == values[3]
