"""The file limits in settings reach the reader on every path (web and CLI alike)."""

from __future__ import annotations

from pathlib import Path

import pytest

from phone_core import ingest
from phone_core.errors import FileFormatError
from tests.conftest import make_settings

WIDE = ("a,b,c,d,e,f\n" + "1,2,3,4,5,6\n").encode()
LONG = ("first_name,last_name,company_url\n" + "Ann,Lee,a.com\n" * 12).encode()


@pytest.mark.parametrize("purpose", [ingest.BATCH, ingest.DIRECTORY])
def test_column_and_row_limits_come_from_settings(tmp_path: Path, purpose: ingest.Purpose) -> None:
    narrow = make_settings(
        tmp_path, upload_max_columns=5, upload_max_rows=10, directory_max_rows=10
    )
    for read in (
        lambda data, name: ingest.read(name, data, narrow, purpose),
        lambda data, name: ingest.load_upload(data, name, settings=narrow, purpose=purpose),
    ):
        with pytest.raises(FileFormatError, match="columns"):
            read(WIDE, "wide.csv")
        with pytest.raises(FileFormatError, match="rows"):
            read(LONG, "long.csv")
    roomy = make_settings(tmp_path)
    assert ingest.read("wide.csv", WIDE, roomy, purpose).table.row_count == 1
