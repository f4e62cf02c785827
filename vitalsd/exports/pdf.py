"""The session report as a PDF (issue #8: "and PDF if a maintained library makes it
easy"): the same content as the HTML page (`report.report_content`), laid out by fpdf2,
a maintained pure-Python PDF library that also draws our SVG timeline as vector graphics.

Text is set in DejaVu Sans when the system has it (Debian: fonts-dejavu-core), so any
name prints; without it, in the PDF core font Helvetica, which holds Latin-1 only: other
characters print as "?" (the HTML report shows them all).
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Final

from fpdf import FPDF
from fpdf.fonts import FontFace

from vitalsd.exports.record import SessionRecord
from vitalsd.exports.report import Cell, ReportContent, Table, report_content

# Where Linux distributions install DejaVu Sans (Debian/Ubuntu, Fedora, Arch).
FONT_DIRS: Final = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu-sans-fonts"),
    Path("/usr/share/fonts/TTF"),
)
FONT_FILES: Final = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}
CORE_FONT: Final = "helvetica"
ALARM: Final = FontFace(emphasis="BOLD", color=(176, 0, 0))
HEADING: Final = FontFace(emphasis="BOLD", fill_color=(242, 242, 242))
BODY_SIZE: Final = 8
# fpdf2 skips SVG <title> (our hover texts) with a log line per element: drop them first.
_SVG_TITLE = re.compile(r"<title>.*?</title>", re.DOTALL)


class _Document(FPDF):
    def __init__(self, footer_text: str, family: str, unicode: bool) -> None:
        super().__init__(orientation="L", unit="mm", format="A4")
        self.footer_text = footer_text
        self.family = family
        self.unicode = unicode

    def text_of(self, text: str) -> str:
        if self.unicode:
            return text
        return text.encode("latin-1", "replace").decode("latin-1")

    def footer(self) -> None:
        self.set_y(-10)
        self.set_font(self.family, "", 7)
        self.cell(
            0, 5, self.text_of(f"{self.footer_text}  Page {self.page_no()}/{{nb}}"), align="R"
        )


def _font_dir(font_dirs: Sequence[Path]) -> Path | None:
    for directory in font_dirs:
        if all((directory / name).is_file() for name in FONT_FILES.values()):
            return directory
    return None


def _heading(pdf: _Document, text: str) -> None:
    pdf.ln(3)
    pdf.set_font(pdf.family, "B", 11)
    pdf.cell(0, 7, pdf.text_of(text), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(pdf.family, "", BODY_SIZE)


def _table(pdf: _Document, table: Table, widths: Sequence[float] | None = None) -> None:
    _heading(pdf, table.title)
    if not table.rows:
        pdf.cell(0, 5, pdf.text_of(table.empty), new_x="LMARGIN", new_y="NEXT")
        return
    with pdf.table(
        col_widths=tuple(widths) if widths else None,
        headings_style=HEADING,
        line_height=4.2,
        text_align="LEFT",
        first_row_as_headings=True,
    ) as rendered:
        heading = rendered.row()
        for title in table.headers:
            heading.cell(pdf.text_of(title))
        for row in table.rows:
            cells = rendered.row()
            for cell in row.cells:
                _cell(pdf, cells, cell)


def _cell(pdf: _Document, row: object, cell: Cell) -> None:
    add = row.cell  # type: ignore[attr-defined]
    add(pdf.text_of(cell.text), style=ALARM if cell.alarm else None)


# Relative column widths of the wide tables (the rest share the page evenly).
WIDTHS: Final[dict[str, tuple[float, ...]]] = {
    "readings": (4, 15, 8, 8, 8, 6, 7, 10, 13, 12, 12),
    "alerts": (14, 7, 30, 9, 16, 12, 16),
    "checks": (24, 15, 15, 12, 15, 19),
    "rems": (35, 65),
}


def render_pdf(
    content: ReportContent, *, now: datetime, font_dirs: Sequence[Path] = FONT_DIRS
) -> bytes:
    """The PDF of a report's content; `now` is its creation date (so the same content
    gives the same bytes)."""
    directory = _font_dir(font_dirs)
    family = "DejaVu" if directory is not None else CORE_FONT
    pdf = _Document(content.footer, family, unicode=directory is not None)
    if directory is not None:
        for style, name in FONT_FILES.items():
            pdf.add_font("DejaVu", style, str(directory / name))
    pdf.set_creation_date(now)
    pdf.set_title(pdf.text_of(content.title))
    pdf.set_creator("vitalsd")
    pdf.set_auto_page_break(True, margin=14)
    pdf.set_margins(10, 10, 10)
    pdf.add_page()

    pdf.set_font(family, "B", 14)
    pdf.cell(0, 8, pdf.text_of(content.title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, "", BODY_SIZE + 1)
    with pdf.table(col_widths=(12, 38, 12, 38), borders_layout="NONE", line_height=4.6,
                   text_align="LEFT", first_row_as_headings=False) as facts:  # fmt: skip
        pairs = list(content.facts)
        for index in range(0, len(pairs), 2):
            row = facts.row()
            for label, value in pairs[index : index + 2]:
                row.cell(pdf.text_of(label), style=FontFace(emphasis="BOLD"))
                row.cell(pdf.text_of(value))

    _heading(pdf, "Timeline")
    chart = _SVG_TITLE.sub("", content.chart_svg)
    pdf.image(io.BytesIO(chart.encode("utf-8")), w=pdf.epw)

    if content.rems is not None:
        _table(pdf, content.rems, WIDTHS["rems"])
        if content.rems_problems:
            pdf.ln(1)
            pdf.multi_cell(
                0,
                4.2,
                pdf.text_of(
                    "To review before submitting: " + "; ".join(content.rems_problems) + "."
                ),
                new_x="LMARGIN",
                new_y="NEXT",
            )
    for table in content.tables:
        _table(pdf, table, WIDTHS.get(table.section))
    return bytes(pdf.output())


def session_report_pdf(
    record: SessionRecord, *, now: datetime, tz: tzinfo, font_dirs: Sequence[Path] = FONT_DIRS
) -> bytes:
    """The session report as PDF bytes (see `report.report_content`)."""
    return render_pdf(report_content(record, now=now, tz=tz), now=now, font_dirs=font_dirs)
