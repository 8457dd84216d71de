"""The upload pipeline: limits from the settings on every path, the caches, the checks."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from types import SimpleNamespace
from typing import Any

import openpyxl
import pytest

from phone_core import directory_upload, ingest
from phone_core.errors import FileFormatError, InputError
from phone_core.models import Preflight
from phone_core.settings import Settings

LEADS = b"First Name,Last Name,Company,Email\nAnn,Lee,Acme,\nBob,Ray,Globex,\n,,,dan@x.io\n"
DIRECTORY = b"First Name,Last Name,Company,Phone\nAnn,Lee,Acme,+14155550100\nBob,Ray,Globex,\n"


@pytest.fixture(autouse=True)
def fresh_caches() -> Iterator[None]:
    ingest.clear_caches()
    yield
    ingest.clear_caches()


def settings(**limits: int) -> Settings:
    return Settings(data_dir="unused", **limits)  # type: ignore[arg-type]


def fake_rt(**limits: int) -> Any:
    """Enough of a Runtime for the paths that stop before touching the state DB."""
    return SimpleNamespace(settings=settings(**limits))


# --- limits: the settings, the same on every path ----------------------------------------


def test_the_web_read_uses_the_upload_limits() -> None:
    assert ingest.read("l.csv", LEADS, settings(upload_max_rows=3)).table.row_count == 3
    with pytest.raises(FileFormatError, match="more than 2 data rows"):
        ingest.read("l.csv", LEADS, settings(upload_max_rows=2))
    with pytest.raises(FileFormatError, match="the limit is"):
        ingest.read("l.csv", LEADS, settings(upload_max_bytes=20))


def test_the_directory_read_uses_the_directory_limits() -> None:
    tight = settings(directory_max_rows=1, upload_max_rows=100)
    with pytest.raises(FileFormatError, match="more than 1 data rows"):
        ingest.read("d.csv", DIRECTORY, tight, ingest.DIRECTORY)
    roomy = settings(directory_max_rows=100, upload_max_rows=1, upload_max_bytes=20)
    assert ingest.read("d.csv", DIRECTORY, roomy, ingest.DIRECTORY).table.row_count == 2


def test_the_cli_submit_path_uses_the_upload_limits() -> None:
    assert len(ingest.load_upload(LEADS, "l.csv", settings=settings()).rows) == 3
    with pytest.raises(FileFormatError, match="more than 2 data rows"):
        ingest.load_upload(LEADS, "l.csv", settings=settings(upload_max_rows=2))


def test_the_cli_directory_path_uses_the_directory_limits() -> None:
    with pytest.raises(FileFormatError, match="more than 1 data rows"):
        directory_upload.load_bytes(
            fake_rt(directory_max_rows=1), DIRECTORY, "d.csv", loaded_by="t"
        )
    with pytest.raises(FileFormatError, match="the limit is"):
        directory_upload.load_bytes(
            fake_rt(directory_max_bytes=20), DIRECTORY, "d.csv", loaded_by="t"
        )


# --- the caches ---------------------------------------------------------------------------


def test_a_file_is_parsed_once_and_found_again_by_its_digest() -> None:
    first = ingest.read("l.csv", LEADS, settings())
    assert ingest.read("l.csv", LEADS, settings()) is first  # same bytes: no second parse

    def no_bytes() -> bytes:
        raise AssertionError("the cache should have answered")

    assert ingest.read("l.csv", no_bytes, settings(), digest=first.digest) is first
    # Other limits are another read (a file fine under one limit may be over another).
    with pytest.raises(FileFormatError):
        ingest.read("l.csv", lambda: LEADS, settings(upload_max_rows=1), digest=first.digest)


def test_a_bad_file_is_refused_again_without_parsing_again(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(FileFormatError, match="empty") as first:
        ingest.read("e.csv", b"", settings())

    def parse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("parsed twice")

    monkeypatch.setattr(ingest, "read_table", parse)
    with pytest.raises(FileFormatError) as again:
        ingest.read("e.csv", b"", settings())
    assert str(again.value) == str(first.value)


def test_the_file_cache_is_bounded() -> None:
    files = [LEADS + f"Eve{i},Kim,Initech,\n".encode() for i in range(6)]
    for data in files:
        ingest.read("l.csv", data, settings())
    assert ingest.read("l.csv", files[-1], settings()) is ingest.read(
        "l.csv", files[-1], settings()
    )
    assert len(ingest._FILES._items) == 4


def test_a_preflight_is_kept_per_user_upload_and_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, int]] = []

    def preflight(_rt: object, user: str, stream: Iterable[object]) -> Preflight:
        rows = list(stream)  # the mapped rows come as a stream
        calls.append((user, len(rows)))
        return Preflight(
            rows=len(rows), enrichable=len(calls), skipped={}, duplicates=0, cache_hits=0,
            to_look_up=0, worst_case_credits=0, per_record_worst_case=1,
            available_credits=0, runs_needed=1,
        )  # fmt: skip

    monkeypatch.setattr(ingest.service, "preflight", preflight)
    parsed = ingest.read("l.csv", LEADS, settings())
    mapping = ingest.suggest_mapping(parsed.table)
    rt = fake_rt()
    alice = ingest.preflight(rt, "alice", parsed, mapping, "upload-1")
    assert ingest.preflight(rt, "alice", parsed, dict(mapping), "upload-1") is alice
    assert ingest.preflight(rt, "bob", parsed, mapping, "upload-1") is not alice  # per user
    assert ingest.preflight(rt, "alice", parsed, mapping, "upload-2") is not alice  # re-upload
    other = {**mapping, "email": None}
    assert ingest.preflight(rt, "alice", parsed, other, "upload-1") is not alice
    assert calls == [("alice", 3), ("bob", 3), ("alice", 3), ("alice", 3)]


def test_a_preflight_is_kept_per_sheet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two sheets of one workbook with the same columns: the same digest and mapping."""

    def preflight(_rt: object, user: str, rows: Iterable[object]) -> Preflight:
        return Preflight(
            rows=len(list(rows)), enrichable=0, skipped={}, duplicates=0, cache_hits=0,
            to_look_up=0, worst_case_credits=0, per_record_worst_case=1,
            available_credits=0, runs_needed=1,
        )  # fmt: skip

    monkeypatch.setattr(ingest.service, "preflight", preflight)
    book = openpyxl.Workbook()
    book.active.title = "EU"
    for row in (["Email", "Name"], ["a@b.co", "Ann"]):
        book.active.append(row)
    us = book.create_sheet("US")
    for row in (["Email", "Name"], ["c@d.co", "Cy"], ["e@f.co", "Ed"]):
        us.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    eu_file = ingest.read("b.xlsx", buffer.getvalue(), settings())
    us_file = ingest.read("b.xlsx", buffer.getvalue(), settings(), sheet="US")
    assert eu_file.digest == us_file.digest and eu_file.table.sheet == "EU"
    mapping = ingest.suggest_mapping(eu_file.table)
    assert ingest.suggest_mapping(us_file.table) == mapping
    rt = fake_rt()
    assert ingest.preflight(rt, "ann", eu_file, mapping, "u1").rows == 1
    assert ingest.preflight(rt, "ann", us_file, mapping, "u1").rows == 2


# --- checks and budget --------------------------------------------------------------------


def test_problems_stop_a_mapping_that_cannot_be_used() -> None:
    assert ingest.problem({"first_name": None}) == ingest.NO_COLUMNS
    assert ingest.problem({"first_name": "First"}) is None  # a batch: warned, not refused
    directory = ingest.DIRECTORY
    assert ingest.problem({"first_name": "F", "last_name": "L"}, directory) == ingest.NO_PHONE
    only_names = {"first_name": "F", "last_name": "L", "phone": "P"}
    assert ingest.problem(only_names, directory) == ingest.NOTHING_TO_MATCH
    assert ingest.problem({**only_names, "company_name": "C"}, directory) is None
    with pytest.raises(InputError, match="phone numbers"):
        directory_upload.load_bytes(fake_rt(), LEADS, "not-a-directory.csv", loaded_by="t")


def pf(enrichable: int = 5, worst: int = 8, available: int = 6) -> Preflight:
    return Preflight(
        rows=10, enrichable=enrichable, skipped={}, duplicates=0, cache_hits=0,
        to_look_up=worst, worst_case_credits=worst, per_record_worst_case=1,
        available_credits=available, runs_needed=1,
    )  # fmt: skip


def test_the_budget_rules() -> None:
    assert ingest.budget_blocker(pf(enrichable=0)) == ingest.NOTHING_ENRICHABLE
    assert ingest.budget_blocker(pf(available=0)) == ingest.NO_CREDITS
    assert ingest.budget_blocker(pf()) == ""
    assert ingest.default_max_credits(pf()) == 6  # min(worst case, available)
    # A batch that cannot cost anything needs no credits (issue 10, defect 1).
    assert ingest.default_max_credits(pf(worst=0, available=0)) == 0
    assert ingest.over_budget(pf(), 7).startswith("You have 6 credits available")
    assert ingest.over_budget(pf(), 6) == ""
    assert "below the worst case (8 credits)" in ingest.below_worst_case(pf(), 6)
    assert ingest.below_worst_case(pf(), 8) == ""


def test_budget_texts_count_one_right() -> None:
    """Issue 10 defect 8: no "1 credits" nor "1 people"."""
    assert ingest.over_budget(pf(available=1), 2).startswith("You have 1 credit available")
    assert ingest.over_budget(pf(worst=1), 0) == (
        "Set a cap of at least 1 credit: 1 person needs looking up, at up to 1 credit each."
    )
    assert "below the worst case (1 credit)" in ingest.below_worst_case(pf(worst=1), 0)
