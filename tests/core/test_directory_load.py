"""The reference directory at scale: streamed loads, atomic, append by identity, COPY.

Fast tier on SQLite files; the PostgreSQL test needs PHONE_TEST_POSTGRES_URL.
"""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from phone_core import db, directory_upload, ingest, inline, tablestream
from phone_core.cli import _LoadMeter
from phone_core.errors import FileFormatError
from phone_core.runtime import Runtime
from phone_core.sources import directory
from tests.api.backends import PG_URL, pg_database
from tests.conftest import make_settings


def _engine(path: Path) -> Engine:
    engine = db.make_engine(f"sqlite:///{path / 'state.sqlite'}")
    db.migrate(engine)
    return engine


def _rows(n: int, start: int = 0, area: str = "212") -> Iterator[dict[str, str]]:
    for i in range(start, start + n):
        yield {"linkedin": f"person-{i}", "phone": f"({area}) 555-{i % 10000:04d}"}


def _contents(engine: Engine) -> list[tuple[str, str]]:
    t = db.directory
    with engine.connect() as conn:
        return sorted((r.linkedin, r.phone) for r in conn.execute(sa.select(t)))


def _indexes(engine: Engine) -> set[str]:
    return {ix["name"] for ix in sa.inspect(engine).get_indexes("directory") if ix["name"]}


def _loads(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(db.directory_loads)).scalar_one()
        )


def _csv(n: int, start: int = 0) -> bytes:
    lines = [
        "LinkedIn,Phone",
        *(f"person-{i},(212) 555-{i % 10000:04d}" for i in range(start, start + n)),
    ]
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = _engine(tmp_path)
    yield engine
    engine.dispose()


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = inline.memory_runtime(make_settings(tmp_path / "rt", waterfall=["directory"]))
    yield runtime
    runtime.close()


# --- streamed, a chunk at a time ------------------------------------------------------------


def test_rows_are_pulled_a_chunk_at_a_time(engine: Engine) -> None:
    pulled = 0

    def rows() -> Iterator[dict[str, str]]:
        nonlocal pulled
        for row in _rows(25):
            pulled += 1
            yield row

    seen: list[tuple[int, int]] = []
    read, loaded = directory.load_rows(
        engine,
        rows(),
        file_name="f.csv",
        loaded_by="t",
        chunk=10,
        progress=lambda n: seen.append((n, pulled)),
    )
    assert (read, loaded) == (25, 25)
    # told after each chunk, when at most one more chunk has been read from the source
    assert [n for n, _ in seen] == [10, 20, 25]
    assert all(pulled_then <= n + 10 for n, pulled_then in seen), seen


def test_a_directory_file_is_read_as_a_sample_then_streamed(rt: Runtime) -> None:
    data = _csv(ingest.DIRECTORY_SAMPLE_ROWS + 500)
    parsed = ingest.read("d.csv", io.BytesIO(data), rt.settings, ingest.DIRECTORY)
    assert parsed.table.partial and parsed.table.row_count == ingest.DIRECTORY_SAMPLE_ROWS
    mapping = {"linkedin": "LinkedIn", "phone": "Phone"}
    with pytest.raises(Exception, match="upload it again"):
        directory_upload.load(rt, parsed, mapping, loaded_by="admin")  # the sample alone
    shares: list[float] = []
    read, loaded = directory_upload.load(
        rt,
        parsed,
        mapping,
        io.BytesIO(data),
        loaded_by="admin",
        progress=lambda _rows, share: shares.append(share),
    )
    assert (read, loaded) == (1500, 1500)
    assert shares[-1] == 1.0 and shares == sorted(shares)


def test_a_small_file_read_whole_loads_from_its_table(rt: Runtime) -> None:
    parsed = ingest.read("d.csv", _csv(3), rt.settings, ingest.DIRECTORY)
    assert not parsed.table.partial
    mapping = {"linkedin": "LinkedIn", "phone": "Phone"}
    assert directory_upload.load(rt, parsed, mapping, loaded_by="admin") == (3, 3)


def test_the_stream_keeps_the_header_and_limits_of_read_table() -> None:
    data = b"Title of the export\n\nFirst Name,Last Name,Email,Phone\n" + b"a,b,a@b.co,1\n" * 5
    with tablestream.open_rows(
        io.BytesIO(data),
        "x.csv",
        max_rows=4,
        max_bytes=10_000,
        max_columns=10,
        max_uncompressed_bytes=10_000,
    ) as stream:
        assert stream.headers == ["First Name", "Last Name", "Email", "Phone"]
        assert stream.header_row == 3
        with pytest.raises(FileFormatError, match="more than 4 data rows"):
            list(stream.rows)


@pytest.mark.slow
def test_a_200k_row_file_loads_in_bounded_python_memory(rt: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("w") as fh:
        fh.write("First Name,Last Name,Company,Email,Phone\n")
        for i in range(200_000):
            company = i % 999
            fh.write(f"First{i},Last{i},Co {company},p{i}@c{company}.example,")
            fh.write(f"+1 212 555 {i % 10000:04d}\n")
    size = path.stat().st_size
    tracemalloc.start()
    try:
        read, loaded = directory_upload.load_path(rt, path, loaded_by="admin")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (read, loaded) == (200_000, 200_000)
    # a few chunks' worth: the file's rows as dicts would be over 150 MB
    assert peak < 64 * 1024 * 1024, (peak, size)


# --- atomic -----------------------------------------------------------------------------------


def test_a_load_that_fails_midway_leaves_the_directory_as_it_was(engine: Engine) -> None:
    directory.load_rows(engine, _rows(30), file_name="old.csv", loaded_by="t", chunk=10)
    before, indexes = _contents(engine), _indexes(engine)
    assert "ix_directory_identity" in indexes

    def broken() -> Iterator[dict[str, str]]:
        yield from _rows(25, start=1000)
        raise FileFormatError("The file could not be read to the end.")

    for replace in (True, False):
        with pytest.raises(FileFormatError):
            directory.load_rows(
                engine, broken(), file_name="new.csv", loaded_by="t", chunk=10, replace=replace
            )
        assert _contents(engine) == before
        assert _indexes(engine) == indexes
        assert _loads(engine) == 1


def test_a_bad_file_midway_leaves_the_directory_as_it_was(rt: Runtime) -> None:
    directory_upload.load_bytes(rt, _csv(20), "old.csv", loaded_by="admin")
    before = _contents(rt.db)
    # an unclosed quote far down the file: found only once earlier rows are written
    bad = (
        _csv(ingest.DIRECTORY_SAMPLE_ROWS + 20_000, start=500)
        + b'p-x,"(212) 555-0100\n'
        + b"x" * 200_000
    )
    with pytest.raises(FileFormatError, match="could not be read as CSV"):
        directory_upload.load_bytes(rt, bad, "new.csv", loaded_by="admin")
    assert _contents(rt.db) == before
    assert directory.stats(rt.db)["last_load"]["file_name"] == "old.csv"  # type: ignore[index]


# --- append: upsert by identity -----------------------------------------------------------


def test_append_replaces_rows_of_the_same_identity_and_keeps_the_rest(engine: Engine) -> None:
    directory.load_rows(
        engine,
        [
            {"linkedin": "ann", "phone": "(212) 555-0001"},
            {"email": "bob@x.example", "phone": "(212) 555-0002"},
            {
                "first_name": "Cy",
                "last_name": "Doe",
                "company_name": "Acme Inc",
                "phone": "(212) 555-0003",
            },
            {"linkedin": "dee", "phone": "(212) 555-0004"},
        ],
        file_name="first.csv",
        loaded_by="t",
    )
    read, loaded = directory.load_rows(
        engine,
        [
            {"linkedin": "https://www.linkedin.com/in/ann/", "phone": "(312) 555-0011"},
            {"email": "BOB@x.example", "phone": "(312) 555-0012"},
            {
                "first_name": "cy",
                "last_name": "DOE",
                "company_name": "Acme",
                "phone": "(312) 555-0013",
            },
            {"linkedin": "eve", "phone": "(312) 555-0015"},
            {"linkedin": "eve", "phone": "(312) 555-0016"},  # a file's own repeats all stay
        ],
        file_name="second.csv",
        loaded_by="t",
        replace=False,
    )
    assert (read, loaded) == (5, 5)
    t = db.directory
    with engine.connect() as conn:
        got = sorted(conn.execute(sa.select(t.c.identity, t.c.phone)).all())
    assert got == [
        ("em:bob@x.example", "+13125550012"),
        ("li:ann", "+13125550011"),
        ("li:dee", "+12125550004"),
        ("li:eve", "+13125550015"),
        ("li:eve", "+13125550016"),
        ("nc:cy|doe|acme", "+13125550013"),
    ]
    last = directory.stats(engine)["last_load"]
    assert isinstance(last, dict)
    assert last["rows_replaced"] == 3 and last["replaced"] is False and last["seconds"] >= 0


def test_replace_drops_every_earlier_row(engine: Engine) -> None:
    directory.load_rows(engine, _rows(5), file_name="a.csv", loaded_by="t")
    directory.load_rows(engine, _rows(2, start=100), file_name="b.csv", loaded_by="t")
    assert [li for li, _ in _contents(engine)] == ["person-100", "person-101"]
    assert "ix_directory_name_domain" in _indexes(engine)


# --- the CLI's progress ------------------------------------------------------------------------


def test_the_cli_meter_writes_lines_then_the_totals() -> None:
    out = io.StringIO()
    meter = _LoadMeter(out)
    meter.EVERY = 0.0
    meter(10_000, 0.25)
    meter(20_000, 0.5)
    meter.done(40_000, 39_000)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("directory: 10,000 rows read (25% of the file")
    assert lines[1].startswith("directory: 20,000 rows read (50% of the file")
    assert lines[2].startswith("directory: 40,000 rows read, 39,000 loaded in ")


# --- PostgreSQL: COPY ----------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL, reason="PHONE_TEST_POSTGRES_URL is not set")
def test_postgres_loads_by_copy_atomically_and_appends() -> None:
    with pg_database() as url:
        engine = db.make_engine(url)
        try:
            db.migrate(engine)
            assert directory.load_rows(
                engine, _rows(2500), file_name="a", loaded_by="t", chunk=1000
            ) == (2500, 2500)
            before = _contents(engine)

            def broken() -> Iterator[dict[str, str]]:
                yield from _rows(1500, start=5000)
                raise FileFormatError("bad")

            with pytest.raises(FileFormatError):
                directory.load_rows(engine, broken(), file_name="b", loaded_by="t", chunk=1000)
            assert _contents(engine) == before
            directory.load_rows(
                engine,
                _rows(10, start=2495, area="312"),
                file_name="c",
                loaded_by="t",
                replace=False,
            )
            got = dict(_contents(engine))
            assert len(got) == 2505 and got["person-2499"].startswith("+1312")
            assert got["person-0"].startswith("+1212")
        finally:
            engine.dispose()


@pytest.mark.slow
def test_worker_processes_load_the_same_rows(tmp_path: Path) -> None:
    rows = [*_rows(25), {"linkedin": "no-phone", "phone": "12"}, *_rows(10, start=500)]
    results = []
    for workers in (1, 2):
        engine = _engine(tmp_path / f"w{workers}")
        counts = directory.load_rows(
            engine, iter(rows), file_name="f", loaded_by="t", chunk=10, workers=workers
        )
        results.append((counts, _contents(engine)))
        engine.dispose()
    assert results[0] == results[1]
    assert results[0][0] == (36, 35)


def test_the_migration_gives_existing_rows_their_identity(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    engine = db.make_engine(f"sqlite:///{tmp_path / 'old.sqlite'}")
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(db.__file__).parent / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
        conn.execute(
            sa.text(
                "INSERT INTO directory (linkedin, email, name_key, domain, company_key, phone) "
                "VALUES ('ann', 'a@x.example', 'ann|lee', 'x.example', 'x', '+1'), "
                "('', 'b@x.example', '', '', '', '+2'), "
                "('', '', 'cy|doe', 'y.example', 'y', '+3'), "
                "('', '', 'dee|ray', '', 'acme', '+4')"
            )
        )
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    with engine.connect() as conn:
        got = conn.execute(sa.text("SELECT identity FROM directory ORDER BY phone")).scalars()
        assert list(got) == ["li:ann", "em:b@x.example", "nd:cy|doe|y.example", "nc:dee|ray|acme"]
    # the same keys a load computes
    assert directory.contact_of({"linkedin": "ann", "phone": "(212) 555-0100"})[-1] == "li:ann"  # type: ignore[index]
    nd = {
        "first_name": "Cy",
        "last_name": "Doe",
        "company_url": "y.example",
        "phone": "(212) 555-0100",
    }
    assert directory.contact_of(nd)[-1] == "nd:cy|doe|y.example"  # type: ignore[index]
    engine.dispose()
