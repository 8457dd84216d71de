"""In-process sources for the fast tier: answers decided by the record's identity."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from phone_core.credits import Price
from phone_core.models import Detail, RecordStatus, SourceResult
from phone_core.sources.base import Lookup


class ScriptedSource:
    """Finds a phone for a record when a hash of (name, seed, identity) falls under
    ``hit_rate``; ``failed_rate`` of the misses are charged as failed lookups. With
    ``fatal`` every answer is that fatal detail (e.g. upstream_auth)."""

    def __init__(
        self,
        name: str,
        price: Price,
        hit_rate: float = 1.0,
        *,
        failed_rate: float = 0.0,
        seed: int = 0,
        fatal: str = "",
    ) -> None:
        self.name = name
        self.price = price
        self.hit_rate = hit_rate
        self.failed_rate = failed_rate
        self.seed = seed
        self.fatal = fatal
        self.seen: list[str] = []

    def _draw(self, identity: str, salt: str) -> float:
        digest = hashlib.sha256(f"{self.name}|{self.seed}|{salt}|{identity}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def _phone(self, identity: str) -> str:
        n = int(self._draw(identity, "phone") * 100)
        return f"+1212555{n:04d}"

    async def lookup_many(self, lookups: Sequence[Lookup]) -> list[SourceResult]:
        out = []
        for lk in lookups:
            self.seen.append(lk.identity)
            if self.fatal:
                out.append(
                    SourceResult(source=self.name, status=RecordStatus.ERROR, detail=self.fatal)
                )
            elif self._draw(lk.identity, "hit") < self.hit_rate:
                out.append(
                    SourceResult(
                        source=self.name,
                        phone=self._phone(lk.identity),
                        status=RecordStatus.FOUND,
                        credits=self.price.cost(found=True),
                    )
                )
            else:
                failed = self._draw(lk.identity, "failed") < self.failed_rate
                out.append(
                    SourceResult(
                        source=self.name,
                        status=RecordStatus.NOT_FOUND,
                        detail=Detail.NO_MATCH.value,
                        credits=self.price.cost(found=False, failed=failed),
                    )
                )
        return out

    def close(self) -> None:
        return None
