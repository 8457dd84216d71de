"""Reading an uploaded CSV: its encoding, its delimiter, and its records, as a stream.

The bytes are never decoded whole: the encoding is checked a chunk at a time, then csv reads
lines from a decoding stream. Each batch of lines is checked for control characters (dropped;
NUL means binary) and for delimiters: no record reaches csv with more than about twice
``_MAX_RAW_DELIMITERS`` delimiters, so one hostile line cannot become a list of millions of
cells.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections import Counter
from collections.abc import Iterator
from typing import BinaryIO

from charset_normalizer import from_bytes

from phone_core.cells import CLEAN, DIRTY, EXCEL_MAX_COLUMNS, SAVE_AS, columns_error
from phone_core.errors import FileFormatError

DELIMITERS = (",", ";", "\t", "|")
# A record may have this many delimiters (quoted ones included) before csv even splits it.
_MAX_RAW_DELIMITERS = 4 * EXCEL_MAX_COLUMNS
_DECODE_CHUNK = 1024 * 1024
_LINES_BATCH = 32 * 1024  # characters of CSV lines checked at once
_SNIFF_RECORDS = 20
_SNIFF_CHARS = 64 * 1024
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_KNOWN_BINARY = {
    b"%PDF": "a PDF document",
    b"\x89PNG": "an image",
    b"\xff\xd8\xff": "an image",
    b"GIF8": "an image",
    b"\x1f\x8b": "a compressed archive",
    b"Rar!": "a compressed archive",
    b"7z\xbc\xaf": "a compressed archive",
    b"{\\rtf": "a Rich Text document",
}
# charset-normalizer guesses these reliably; for anything else we assume Western (cp1252),
# because it often mistakes short French or German text for Central European code pages.
_NON_LATIN_CODECS = frozenset(
    {
        *("cp1251", "koi8_r", "koi8_u", "iso8859_5", "mac_cyrillic", "cp866"),  # Cyrillic
        *("cp1253", "iso8859_7", "cp1255", "iso8859_8", "cp1256", "iso8859_6"),  # el he ar
        *("cp874", "tis_620", "shift_jis", "cp932", "euc_jp", "gb2312", "gbk", "gb18030"),
        *("big5", "big5hkscs", "cp949", "euc_kr"),
    }
)
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_HTML_START = ("<!doctype", "<html", "<table", "<?xml", "<head", "<body")


def csv_rows(data: bytes, extension: str) -> tuple[Iterator[list[str]], str, str]:
    """The records of a CSV upload as a stream, with the encoding and delimiter found."""
    return csv_rows_file(io.BytesIO(data), extension)


def csv_rows_file(fh: BinaryIO, extension: str) -> tuple[Iterator[list[str]], str, str]:
    """``csv_rows`` of a seekable binary file, read a chunk at a time (never whole).

    The file is read once or twice to check its encoding, then once more as records. It is
    not closed: the caller owns it.
    """
    fh.seek(0)
    head = fh.read(_SNIFF_CHARS * 4 + 8)  # a character is at most 4 bytes
    whole = not fh.read(1)
    _reject_binary(head, extension)
    encoding = _detect_encoding(fh, head)
    sample, complete = _head(head, whole, encoding)
    _reject_non_csv_text(sample)
    delimiter = _detect_delimiter(sample, complete=complete)
    return _file_records(fh, encoding, delimiter), encoding, delimiter


def _file_records(fh: BinaryIO, encoding: str, delimiter: str) -> Iterator[list[str]]:
    fh.seek(0)
    stream = io.TextIOWrapper(fh, encoding=encoding, newline="")
    try:
        yield from _records(stream, delimiter)
    finally:
        stream.detach()  # the caller's file stays open


def detect_delimiter(text: str) -> str:
    """The most consistent of ``, ; TAB |`` over the first records (quotes respected)."""
    return _detect_delimiter(text[:_SNIFF_CHARS], complete=len(text) <= _SNIFF_CHARS)


def _detect_delimiter(sample: str, *, complete: bool) -> str:
    records = _count_delimiters(sample, complete=complete)
    best, best_key = ",", (0.0, 0)
    for delimiter in DELIMITERS:
        counts = Counter(record[delimiter] for record in records)
        if not counts:
            continue
        mode, hits = max(counts.items(), key=lambda item: (item[1], item[0]))
        key = (hits / len(records), mode)
        if mode > 0 and key > best_key:
            best, best_key = delimiter, key
    return best


def _count_delimiters(sample: str, *, complete: bool) -> list[dict[str, int]]:
    """Per record (up to ``_SNIFF_RECORDS``), how often each delimiter occurs outside quotes."""
    records: list[dict[str, int]] = []
    counts = dict.fromkeys(DELIMITERS, 0)
    in_quotes, field_start, blank = False, True, True
    i, size = 0, len(sample)
    while i < size and len(records) < _SNIFF_RECORDS:
        char = sample[i]
        i += 1
        if in_quotes:
            if char == '"':
                if i < size and sample[i] == '"':
                    i += 1
                else:
                    in_quotes = False
        elif char in counts:
            counts[char] += 1
            field_start, blank = True, False
        elif char in "\r\n":
            if not blank:
                records.append(counts)
            counts = dict.fromkeys(DELIMITERS, 0)
            field_start, blank = True, True
        elif char != " ":
            in_quotes = char == '"' and field_start
            field_start, blank = False, False
    if not blank and complete and len(records) < _SNIFF_RECORDS:
        records.append(counts)
    return records


def _reject_binary(data: bytes, extension: str) -> None:
    """Legacy Excel, images, PDFs and archives get a message naming what they are."""
    if data.startswith(_OLE_MAGIC):
        if extension in (".xlsx", ".xlsm"):
            raise FileFormatError(
                "This Excel file is password-protected or in the old .xls format. "
                "Remove the password, or save it as .xlsx or .csv."
            )
        raise FileFormatError(
            f"This is a legacy Excel (.xls) file, which cannot be read. {SAVE_AS}"
        )
    for magic, what in _KNOWN_BINARY.items():
        if data.startswith(magic):
            raise FileFormatError(
                f"This file is {what}, not a spreadsheet. Upload the list as .csv or .xlsx."
            )


def _binary_error() -> FileFormatError:
    return FileFormatError(
        "The file does not look like a text or Excel file (it contains binary data). "
        "Upload the list as .csv or .xlsx."
    )


def _chunks(fh: BinaryIO, start: int = 0) -> Iterator[bytes]:
    fh.seek(start)
    while chunk := fh.read(_DECODE_CHUNK):
        yield chunk


def _detect_encoding(fh: BinaryIO, head: bytes) -> str:
    """BOM, then UTF-8, then the legacy code page; checked to decode, but nothing is kept."""
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        codec = "utf-32"
    elif head.startswith(codecs.BOM_UTF8):
        codec = "utf-8-sig"
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        codec = "utf-16"
    else:
        codec = _bomless_utf16(head) or ""
        if not codec and any(b"\x00" in chunk for chunk in _chunks(fh)):
            raise _binary_error()
    if codec:
        if _decode_error(fh, codec) is not None:
            raise FileFormatError(
                "The file's text is damaged: it looks like Unicode text but cannot be "
                "read as such. " + SAVE_AS
            )
        return codecs.lookup(codec).name
    ascii_only = all(chunk.isascii() for chunk in _chunks(fh))
    error_at = None if ascii_only else _decode_error(fh, "utf-8")
    if error_at is None:
        return "utf-8"
    return codecs.lookup(_legacy_codec(fh, error_at)).name


def _decode_error(fh: BinaryIO, codec: str) -> int | None:
    """Where the file stops decoding as ``codec`` (about), decoded a chunk at a time."""
    decoder = codecs.getincrementaldecoder(codec)()
    start = 0
    for chunk in _chunks(fh):
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            return max(0, start + exc.start - len(decoder.getstate()[0]))
        start += len(chunk)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        return max(0, start + exc.start - len(decoder.getstate()[0]))
    return None


def _head(head: bytes, whole: bool, codec: str) -> tuple[str, bool]:
    """The first ``_SNIFF_CHARS`` characters, and whether they are the whole file."""
    text = codecs.getincrementaldecoder(codec)().decode(head, final=whole)
    sample = text[:_SNIFF_CHARS]
    control = len(_CONTROL_CHARS.findall(sample))
    if "\x00" in sample or (control > 3 and control > len(sample) // 100):
        raise _binary_error()
    return sample, whole and len(text) <= _SNIFF_CHARS


def _bomless_utf16(data: bytes) -> str | None:
    """UTF-16 without a BOM shows as NUL in every other byte of ASCII-heavy text."""
    sample = data[:4096]
    half = len(sample) // 2
    if half < 4:
        return None
    even = sample[0::2].count(0) / half
    odd = sample[1::2].count(0) / half
    if odd > 0.7 and even < 0.05:
        return "utf-16-le"
    if even > 0.7 and odd < 0.05:
        return "utf-16-be"
    return None


def _legacy_codec(fh: BinaryIO, error_at: int) -> str:
    """Not UTF-8: a non-Latin code page if charset-normalizer is sure, else cp1252/Latin-1."""
    fh.seek(max(0, error_at - 16_384))
    window = fh.read(min(error_at, 16_384) + 262_144)
    best = from_bytes(window).best()
    candidates = ["cp1252"]
    if best is not None and best.encoding in _NON_LATIN_CODECS:
        candidates.insert(0, best.encoding)
    for codec in candidates:
        if _decode_error(fh, codec) is None:
            return codec
    return "latin-1"  # decodes any bytes


def _reject_non_csv_text(text: str) -> None:
    head = text[:200].lstrip().lower()
    if head.startswith(_HTML_START):
        raise FileFormatError(
            "This file is a web page or XML export, not a spreadsheet (some CRMs export "
            f"'Excel' reports this way). {SAVE_AS}"
        )


def _records(stream: io.TextIOWrapper, delimiter: str) -> Iterator[list[str]]:
    """Records of a decoding stream, cleaned, each bounded in width before csv splits it.

    Lines come in batches; a clean batch with few delimiters goes to csv as is, any other
    is checked line by line. ``pending`` counts the delimiters of the record csv is still
    reading (it can miss at most one batch's worth), so no record reaches csv with more than
    twice ``_MAX_RAW_DELIMITERS`` delimiters.
    """
    pending = 0

    def lines() -> Iterator[str]:
        nonlocal pending
        while batch := stream.readlines(_LINES_BATCH):
            joined = "".join(batch)
            count = joined.count(delimiter)
            if pending + count <= _MAX_RAW_DELIMITERS and DIRTY.search(joined) is None:
                pending += count
                yield from batch
                continue
            for line in batch:
                pending += line.count(delimiter)
                if pending > _MAX_RAW_DELIMITERS:
                    raise columns_error(EXCEL_MAX_COLUMNS)
                if DIRTY.search(line) is not None:
                    if "\x00" in line:
                        raise _binary_error()
                    line = line.translate(CLEAN)
                yield line

    for record in csv.reader(
        lines(),
        delimiter=delimiter,
        quotechar='"',
        doublequote=True,
        skipinitialspace=True,
        strict=False,
    ):
        pending = 0
        yield record
