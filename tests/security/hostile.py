"""Hostile upload files, generated (never stored): wide, bombed, lying or dirty spreadsheets.

Each builder streams its XML so that a file standing for gigabytes costs the test only what
it writes. The workbook skeleton comes from openpyxl; the worksheet is written by hand, because
the point is to write what openpyxl never would.
"""

from __future__ import annotations

import io
import struct
import tracemalloc
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from xml.sax.saxutils import escape

import openpyxl

SHEET = "xl/worksheets/sheet1.xml"
_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
)


@cache
def _skeleton() -> bytes:
    workbook = openpyxl.Workbook()
    workbook.active["A1"] = "x"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def xlsx(
    sheet_xml: Iterable[bytes],
    *,
    compresslevel: int = 6,
    shared_strings: Iterable[str] | None = None,
) -> bytes:
    """A workbook whose first sheet is exactly ``sheet_xml`` (optionally with shared strings:
    plain texts, or raw ``<si>`` items)."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(_skeleton())) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=compresslevel) as target,
    ):
        for info in source.infolist():
            if info.filename == SHEET:
                with target.open(SHEET, "w", force_zip64=True) as handle:
                    for chunk in sheet_xml:
                        handle.write(chunk)
            elif info.filename == "[Content_Types].xml" and shared_strings is not None:
                types = source.read(info).replace(
                    b"</Types>",
                    b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
                    b'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
                    b"</Types>",
                )
                target.writestr(info, types)
            elif info.filename == "xl/_rels/workbook.xml.rels" and shared_strings is not None:
                rels = source.read(info).replace(
                    b"</Relationships>",
                    b'<Relationship Id="rIdS" Type="http://schemas.openxmlformats.org/'
                    b'officeDocument/2006/relationships/sharedStrings" '
                    b'Target="sharedStrings.xml"/></Relationships>',
                )
                target.writestr(info, rels)
            else:
                target.writestr(info, source.read(info))
        if shared_strings is not None:
            items = "".join(
                text if text.startswith("<si>") else f"<si><t>{escape(text)}</t></si>"
                for text in shared_strings
            )
            target.writestr(
                "xl/sharedStrings.xml",
                '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<sst xmlns="'
                f'http://schemas.openxmlformats.org/spreadsheetml/2006/main">{items}</sst>',
            )
    return out.getvalue()


def sheet(rows: Iterable[bytes], *, dimension: str | None = None) -> Iterator[bytes]:
    """A worksheet part around ``rows`` (each a ``<row>`` element), in chunks."""
    yield _HEAD
    if dimension is not None:
        yield f'<dimension ref="{dimension}"/>'.encode()
    yield b"<sheetData>"
    batch: list[bytes] = []
    for row in rows:
        batch.append(row)
        if len(batch) == 4096:
            yield b"".join(batch)
            batch.clear()
    yield b"".join(batch)
    yield b"</sheetData></worksheet>"


def text_cell(ref: str, text: str) -> bytes:
    return f'<c r="{ref}" t="inlineStr"><is><t>{escape(text)}</t></is></c>'.encode()


def row(number: int, *cells: bytes) -> bytes:
    return f'<row r="{number}">'.encode() + b"".join(cells) + b"</row>"


def wide_xlsx(rows: int) -> bytes:
    """An email per row, plus one number in the last column Excel has (XFD, the 16,384th)."""
    return xlsx(
        sheet(
            row(n, text_cell(f"A{n}", "Email" if n == 1 else f"u{n}@x.co"), NUMBER_AT_XFD % n)
            for n in range(1, rows + 1)
        )
    )


NUMBER_AT_XFD = b'<c r="XFD%d"><v>1</v></c>'


def bomb_xlsx(uncompressed: int) -> bytes:
    """A valid workbook whose sheet is ``uncompressed`` bytes of blank rows (deflates ~1000x)."""
    header = row(1, text_cell("A1", "Email")) + row(2, text_cell("A2", "a@b.co"))
    blank = b"<row/>" * 100_000
    count = max(1, uncompressed // len(blank))
    return xlsx(sheet([header, *(blank for _ in range(count))]), compresslevel=9)


def small_xlsx(*, dimension: str | None = None) -> bytes:
    """Three rows of two columns, optionally declaring a (lying) dimension."""
    cells = [("Email", "Name"), ("a@b.co", "Ann"), ("c@d.co", "Cy")]
    return xlsx(
        sheet(
            (
                row(n, text_cell(f"A{n}", first), text_cell(f"B{n}", second))
                for n, (first, second) in enumerate(cells, start=1)
            ),
            dimension=dimension,
        )
    )


def claim_size(data: bytes, member: str, size: int) -> bytes:
    """The same archive, but its central directory claims ``member`` expands to ``size`` bytes.

    Only the declared size changes (the directory is what readers go by); the compressed data
    and its CRC stay, so only a reader that checks the declaration refuses it.
    """
    if size >= 0xFFFFFFFF:
        raise ValueError("claim_size handles 32-bit sizes only")
    out = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        offset, count = archive.start_dir, len(archive.infolist())
    for _ in range(count):
        assert out[offset : offset + 4] == b"PK\x01\x02"
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", out, offset + 28)
        if bytes(out[offset + 46 : offset + 46 + name_len]) == member.encode():
            struct.pack_into("<I", out, offset + 24, size)
            return bytes(out)
        offset += 46 + name_len + extra_len + comment_len
    raise ValueError(f"{member} is not in the archive")


def long_csv(path: Path, rows: int) -> Path:
    """A CSV of ``rows`` data rows written line by line (never held whole in memory)."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("First Name,Last Name,Company\n")
        for n in range(rows):
            handle.write(f"J{n},Doe,Acme\n")
    return path


@contextmanager
def traced() -> Iterator[Callable[[], float]]:
    """Measure the peak Python memory (MB) allocated inside the block, over what was there."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    peak: list[float] = [0.0]
    try:
        yield lambda: peak[0]
    finally:
        peak[0] = (tracemalloc.get_traced_memory()[1] - base) / 2**20
        if started:
            tracemalloc.stop()
