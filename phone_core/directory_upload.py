"""Loading a reference directory file, streamed: the web app, the CLI and the demo seed.

The file is read a chunk of rows at a time (``tablestream``), mapped (``mapping.map_rows``)
and handed to ``sources.directory.load_rows`` (normalised, written in one transaction), so
a file of a million rows costs the memory of a chunk, not of the file. ``ingest.read`` has
already read its first rows for the preview and the mapping.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from sqlalchemy.engine import Engine

from phone_core import ingest, preferences
from phone_core.errors import InputError
from phone_core.ingest import DIRECTORY, Mapped, ParsedFile
from phone_core.mapping import map_rows, suggest_mapping
from phone_core.settings import Settings
from phone_core.sources import directory
from phone_core.tablestream import file_size


class Install(Protocol):
    """What a load needs of a ``Runtime``: the state DB and the settings (the CLI loads
    with these alone, without the S3 server or DBOS)."""

    @property
    def db(self) -> Engine: ...

    @property
    def settings(self) -> Settings: ...


@dataclass(frozen=True)
class StateDb:
    db: Engine
    settings: Settings


# Told the rows read so far and the share of the file read (0.0 to 1.0), after each chunk.
Progress = Callable[[int, float], None]


def load(
    rt: Install,
    parsed: ParsedFile,
    mapping: Mapped,
    source: BinaryIO | None = None,
    *,
    loaded_by: str,
    replace: bool = True,
    remember: bool = True,
    progress: Progress | None = None,
    workers: int = 1,
) -> tuple[int, int]:
    """Load the mapped file as the reference directory (or append it); (rows read, rows
    loaded). ``source``: the file ``parsed`` was read from (a seekable binary file, not
    closed here); without it, only a file read whole (not ``partial``) can be loaded."""
    refused = ingest.problem(mapping, DIRECTORY)
    if refused:
        raise InputError(refused)

    def write(
        headers: Sequence[str], rows: Iterable[Sequence[str]], tell: Callable[[], float]
    ) -> tuple[int, int]:
        return directory.load_rows(
            rt.db,
            map_rows(headers, rows, mapping),
            file_name=parsed.name,
            loaded_by=loaded_by,
            replace=replace,
            default_region=rt.settings.default_region,
            progress=None if progress is None else lambda n: progress(n, tell()),
            workers=workers,
        )

    if source is None:
        if parsed.table.partial:
            raise InputError("Only the start of this file was read: upload it again to load it.")
        table = parsed.table
        counts = write(table.headers, table.rows, lambda: 1.0)
    else:
        size = max(file_size(source), 1)
        sheet = parsed.table.sheet or None
        with DIRECTORY.limits(rt.settings).open_rows(source, parsed.name, sheet) as stream:
            if stream.headers != parsed.table.headers:
                raise InputError("The file changed since it was read: upload it again.")
            counts = write(stream.headers, stream.rows, lambda: min(source.tell() / size, 1.0))
    if progress is not None:
        progress(counts[0], 1.0)
    if remember:
        with rt.db.begin() as conn:
            preferences.save_mapping(
                conn, loaded_by, parsed.table.headers, mapping, DIRECTORY.scope
            )
    return counts


def load_file(
    rt: Install,
    source: BinaryIO,
    filename: str,
    *,
    loaded_by: str,
    replace: bool = True,
    progress: Progress | None = None,
    workers: int = 1,
) -> tuple[int, int]:
    """Load a directory file by the suggested mapping (CLI, demo seed), same limits as the app."""
    parsed = ingest.read(filename, source, rt.settings, DIRECTORY)
    mapping = suggest_mapping(parsed.table, DIRECTORY.targets)
    return load(
        rt,
        parsed,
        mapping,
        source,
        loaded_by=loaded_by,
        replace=replace,
        remember=False,
        progress=progress,
        workers=workers,
    )


def load_bytes(
    rt: Install, data: bytes, filename: str, *, loaded_by: str, replace: bool = True
) -> tuple[int, int]:
    return load_file(rt, io.BytesIO(data), filename, loaded_by=loaded_by, replace=replace)


def load_path(
    rt: Install,
    path: Path,
    *,
    loaded_by: str,
    replace: bool = True,
    progress: Progress | None = None,
    workers: int = 1,
) -> tuple[int, int]:
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    with path.open("rb") as source:
        return load_file(
            rt,
            source,
            path.name,
            loaded_by=loaded_by,
            replace=replace,
            progress=progress,
            workers=workers,
        )
