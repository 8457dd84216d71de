"""From an uploaded file to mapped rows: read, suggest a mapping, apply overrides, check.

One place for the CLI, the web app and the directory loader, so the three agree on what
a file means.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from phone_core.errors import InputError
from phone_core.mapping import (
    DIRECTORY_TARGETS,
    FIELDS,
    PERSON_TARGETS,
    apply_mapping,
    mapping_warnings,
    suggest_mapping,
)
from phone_core.tables import Table, read_table

if TYPE_CHECKING:
    from phone_core.runtime import Runtime


@dataclass
class Upload:
    table: Table
    mapping: dict[str, str | None]
    rows: list[dict[str, str]] = field(default_factory=list)
    source_rows: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def merge_mapping(
    table: Table, suggested: Mapping[str, str | None], overrides: Mapping[str, str]
) -> dict[str, str | None]:
    """Suggested mapping with ``field=Column`` overrides (column '' or '-' unmaps)."""
    mapping = dict(suggested)
    for name, column in overrides.items():
        if name not in FIELDS:
            raise InputError(f"unknown field {name!r}; fields are: {', '.join(FIELDS)}")
        if column in ("", "-"):
            mapping[name] = None
            continue
        if column not in table.headers:
            raise InputError(
                f"the file has no column {column!r} (columns: {', '.join(table.headers)})"
            )
        for other, col in list(mapping.items()):
            if col == column and other != name:
                mapping[other] = None
        mapping[name] = column
    return mapping


def source_rows(table: Table) -> list[dict[str, str]]:
    return [dict(zip(table.headers, row, strict=True)) for row in table.rows]


def load_upload(
    data: bytes,
    filename: str,
    *,
    overrides: Mapping[str, str] | None = None,
    targets: Sequence[str] = PERSON_TARGETS,
    max_bytes: int = 50 * 1024 * 1024,
) -> Upload:
    """Read and map a lead list; raises InputError when nothing enrichable can be mapped."""
    table = read_table(data, filename, max_bytes=max_bytes)
    mapping = merge_mapping(table, suggest_mapping(table, targets), overrides or {})
    return build_upload(table, mapping)


def build_upload(table: Table, mapping: dict[str, str | None]) -> Upload:
    if not any(mapping.values()):
        raise InputError(
            "no column could be matched to a person field: name the columns e.g. "
            "'First Name', 'Last Name', 'Company', 'Website', 'LinkedIn', 'Email'"
        )
    return Upload(
        table=table,
        mapping=mapping,
        rows=apply_mapping(table, mapping),
        source_rows=source_rows(table),
        warnings=mapping_warnings(table, mapping),
    )


def load_directory_bytes(
    rt: Runtime,
    data: bytes,
    filename: str,
    *,
    loaded_by: str,
    replace: bool = True,
    overrides: Mapping[str, str] | None = None,
) -> tuple[int, int]:
    """Load a reference directory file (needs a phone column); (rows read, rows loaded)."""
    from phone_core.sources.directory import load_rows

    upload = load_upload(
        data,
        filename,
        overrides=overrides,
        targets=DIRECTORY_TARGETS,
        max_bytes=max(rt.settings.upload_max_bytes, 1024 * 1024 * 1024),
    )
    if not upload.mapping.get("phone"):
        raise InputError("the directory file needs a phone column (e.g. 'Phone', 'Mobile')")
    return load_rows(
        rt.db,
        upload.rows,
        file_name=filename,
        loaded_by=loaded_by,
        replace=replace,
        default_region=rt.settings.default_region,
    )


def load_directory_file(
    rt: Runtime, path: Path, *, loaded_by: str, replace: bool = True
) -> tuple[int, int]:
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    return load_directory_bytes(
        rt, path.read_bytes(), path.name, loaded_by=loaded_by, replace=replace
    )
