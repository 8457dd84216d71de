"""Streaming the XML parts of a zip (an XLSX workbook) through expat, with no tree.

``XmlPart`` feeds a part to expat a chunk at a time and calls ``start_<name>(attrs)`` and
``end_<name>()`` on its subclass for the elements it cares about: memory holds what the
subclass keeps, never the document. A DTD is refused: OOXML never has one, and entity
declarations are how XML parsers are attacked (expat also limits entity expansion).
"""

from __future__ import annotations

import pyexpat
import zipfile
from collections.abc import Callable, Iterator
from functools import partial

from phone_core.cells import SAVE_AS
from phone_core.errors import FileFormatError

_CHUNK = 64 * 1024


class XmlPart:
    """One XML part: element ``x`` (any prefix) calls ``start_x(attrs)`` and ``end_x()`` when
    defined; text is kept only between ``collect()`` and ``collected()``."""

    def __init__(self) -> None:
        self.buffer: list[str] | None = None
        self.done = False

    def run(self, archive: zipfile.ZipFile, name: str) -> Iterator[None]:
        """Parse ``name``, pausing after each chunk (and stopping once ``done``)."""
        starts: dict[str, Callable[[dict[str, str]], None] | None] = {}
        ends: dict[str, Callable[[], None] | None] = {}

        def on_start(name: str, attrs: dict[str, str]) -> None:
            try:
                handler = starts[name]
            except KeyError:
                handler = starts[name] = self.start_handler(name.rpartition(":")[2])
            if handler is not None:
                handler(attrs)

        def on_end(name: str) -> None:
            try:
                handler = ends[name]
            except KeyError:
                handler = ends[name] = self.end_handler(name.rpartition(":")[2])
            if handler is not None:
                handler()

        def on_text(data: str) -> None:
            if self.buffer is not None:
                self.buffer.append(data)

        parser = pyexpat.ParserCreate()
        parser.buffer_text = True
        parser.StartElementHandler = on_start
        parser.EndElementHandler = on_end
        parser.CharacterDataHandler = on_text
        parser.StartDoctypeDeclHandler = _refuse_dtd
        parser.EntityDeclHandler = _refuse_dtd
        with archive.open(name) as stream:
            while not self.done:
                chunk = stream.read(_CHUNK)
                parser.Parse(chunk, not chunk)
                yield
                if not chunk:
                    return

    def start_handler(self, local: str) -> Callable[[dict[str, str]], None] | None:
        return getattr(self, "start_" + local, None)

    def end_handler(self, local: str) -> Callable[[], None] | None:
        return getattr(self, "end_" + local, None)

    def collect(self) -> None:
        self.buffer = []

    def collected(self) -> str:
        text = "".join(self.buffer or ())
        self.buffer = None
        return text


def _refuse_dtd(*_: object) -> None:
    raise FileFormatError(f"The Excel file is malformed. {SAVE_AS}")


class _Elements(XmlPart):
    """(name, parent's name, attributes) of each element with a ``wanted`` local name."""

    def __init__(self, wanted: frozenset[str]) -> None:
        super().__init__()
        self.wanted = wanted
        self.found: list[tuple[str, str, dict[str, str]]] = []
        self.path: list[str] = [""]

    def start_handler(self, local: str) -> Callable[[dict[str, str]], None]:
        return partial(self.opened, local)

    def end_handler(self, local: str) -> Callable[[], None]:
        return self.closed

    def opened(self, name: str, attrs: dict[str, str]) -> None:
        if name in self.wanted:
            local = {key.rpartition(":")[2]: value for key, value in attrs.items()}
            self.found.append((name, self.path[-1], local))
        self.path.append(name)

    def closed(self) -> None:
        self.path.pop()


def elements(
    archive: zipfile.ZipFile, part: str, wanted: frozenset[str]
) -> list[tuple[str, str, dict[str, str]]]:
    reader = _Elements(wanted)
    for _ in reader.run(archive, part):
        pass
    return reader.found
