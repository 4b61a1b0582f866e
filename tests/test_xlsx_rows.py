"""reports.xlsx.RowStream: plain rows written as XML text must be byte for byte what openpyxl
writes for the same cells, and anything else must take openpyxl's own path in the same stream."""

from __future__ import annotations

import datetime as dt
import io
import zipfile

import openpyxl
import pytest

from reports import xlsx

FILL = {"fill": xlsx.EXPECTED_FILL}
NUMBER = {"number_format": "0.0"}
BOLD = {"font": xlsx.LABEL_FONT, "alignment": xlsx.CENTRE}

#: Rows of (values, per-column styles) that the text path must write as openpyxl does.
PLAIN_ROWS = [
    (["crime", "ALTERED", "CR/000001/18", "CRI-2018-000001", None], [None, None, None, None, None]),
    (["  leading", "trailing  ", " both ", "\ttab", "x\ty"], [None] * 5),
    (["a & b", "<tag>", "x > y", "\"quoted\" 'single'", "]]>"], [None] * 5),
    (["Müller", "O'Brien, Seán", "◀ Summary", "emoji 😀 here", "漢字"], [None] * 5),
    (["", "#N/A", "#DIV/0!", "=1+1", "@SUM(A1)"], [None] * 5),
    (["+44 161", "-3", "1e5", "\x01control\x1f", "cr\rlf\r\nend"], [None] * 5),
    ([0, -7, 2**53 + 1, 93.5, 1e-7], [None] * 5),
    ([12.25, None, "expected", None, "new"], [NUMBER, FILL, FILL, NUMBER, {"fill": xlsx.DIFFERS_FILL}]),
    (["bold", 3, None, "", "x" * 40000], [BOLD, BOLD, BOLD, FILL, None]),
    ([None, None, None, None, "only the last"], [None, NUMBER, BOLD, None, None]),
]


def _openpyxl_cells(ws, values, styles):
    """The row as TableWriter hands it to openpyxl: styled cells only where a style applies."""
    return [xlsx.cell(ws, v, **style) if style and (v is not None or "fill" in style) else xlsx.cell(ws, v)
            for v, style in zip(values, styles)]


def _saved(wb) -> dict[str, bytes]:
    out = io.BytesIO()
    wb.save(out)
    with zipfile.ZipFile(out) as z:
        return {name: z.read(name) for name in z.namelist() if name != "docProps/core.xml"}  # a timestamp


def _workbook(rows, *, text_path: bool) -> dict[str, bytes]:
    wb = xlsx.new_workbook()
    ws = wb.create_sheet("t")
    ws.freeze_panes = "A2"
    stream = xlsx.RowStream(ws) if text_path else None
    ws.append(xlsx.header_row(ws, ["a", "b", "c", "d", "e"]))
    for values, styles in rows:
        if text_path:
            assert stream.append_plain(values, styles), values
        else:
            ws.append(_openpyxl_cells(ws, values, styles))
    return _saved(wb)


def test_plain_rows_are_written_byte_for_byte_as_openpyxl_writes_them():
    ours = _workbook(PLAIN_ROWS, text_path=True)
    theirs = _workbook(PLAIN_ROWS, text_path=False)
    assert ours.keys() == theirs.keys()
    for name in theirs:
        assert ours[name] == theirs[name], name


def test_a_row_that_is_not_plain_takes_openpyxls_path_in_the_same_stream():
    wb = xlsx.new_workbook()
    ws = wb.create_sheet("t")
    stream = xlsx.RowStream(ws)
    assert stream.append_plain(["first", 1], [None, None])
    moment = dt.datetime(2019, 7, 1, 12, 30)
    # (A lone surrogate no longer reaches a sheet: reports.safe shows it as \ud800, as text.)
    for values in (["when", moment], ["flag", True], ["nan", float("nan")]):
        assert not stream.append_plain(values, [None, None])
    assert not stream.append_plain(["link", 3], [{"link": "t"}, None])
    ws.append(_openpyxl_cells(ws, ["when", moment], [None, None]))  # openpyxl's own path
    assert stream.append_plain(["third", 3.5], [None, NUMBER])
    data = _saved(wb)

    sheet = openpyxl.load_workbook(io.BytesIO(_rezip(data)))["t"]
    assert [[c.value for c in row] for row in sheet.iter_rows()] == [["first", 1], ["when", moment], ["third", 3.5]]
    assert sheet["B2"].is_date and sheet["B3"].number_format == "0.0"


def _rezip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, content in files.items():
            z.writestr(name, content)
    return out.getvalue()


@pytest.mark.parametrize("rows", [1, 3])
def test_a_table_continued_on_numbered_sheets_keeps_its_rows_in_order(monkeypatch, rows):
    monkeypatch.setattr(xlsx, "MAX_SHEET_ROWS", 3)  # a header and two rows a sheet
    wb = xlsx.new_workbook()
    table = xlsx.TableWriter(wb, "big", ["n", "text"], set())
    for n in range(rows * 2 + 1):
        table.append([n, f"row {n}" + ("\nsecond line" if n == 2 else "")])
    sheets = table.close()
    data = _saved(wb)
    book = openpyxl.load_workbook(io.BytesIO(_rezip(data)))
    read = [row for title, _ in sheets for row in book[title].iter_rows(min_row=2, max_col=2, values_only=True)]
    assert read == [(n, f"row {n}" + ("\nsecond line" if n == 2 else "")) for n in range(rows * 2 + 1)]


def test_styles_built_afresh_for_every_row_do_not_grow_the_caches():
    wb = xlsx.new_workbook()
    table = xlsx.TableWriter(wb, "fresh", ["n", "value"], set(), column_styles={0: {"number_format": "0"}})
    for n in range(xlsx.WIDTH_SAMPLE_ROWS + 300):
        table.append([n, f"v{n}"], {1: {"fill": xlsx.DIFFERS_FILL}})  # a new dict every row
    assert len(table._merged_styles) <= xlsx._CACHED
    assert len(table._stream._style_ids) <= xlsx._CACHED
    (title, rows), = table.close()
    sheet = openpyxl.load_workbook(io.BytesIO(_rezip(_saved(wb))))[title]
    assert rows == xlsx.WIDTH_SAMPLE_ROWS + 300
    assert sheet.cell(row=rows + 1, column=2).fill.fgColor.rgb.endswith("F8CBAD")
