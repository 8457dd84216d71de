"""The per-key sliding window, on a fake clock."""

from __future__ import annotations

from phone_core.api.security import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_sliding_window() -> None:
    clock = Clock()
    limiter = RateLimiter(3, window=60.0, clock=clock)
    for t in (0, 10, 20):
        clock.now = 1000.0 + t
        assert limiter.hit("k") is None
    clock.now = 1030.0
    assert limiter.hit("k") == 30  # the hit at t=0 leaves the window at t=60
    assert limiter.hit("other") is None  # per key
    clock.now = 1059.5
    assert limiter.hit("k") == 1  # never 0: the client must wait
    clock.now = 1060.0
    assert limiter.hit("k") is None  # rejected requests did not count
    assert limiter.hit("k") == 10


def test_idle_keys_are_forgotten() -> None:
    clock = Clock()
    limiter = RateLimiter(2, window=60.0, clock=clock)
    for i in range(100):
        limiter.hit(f"key{i}")
    clock.now += 121
    limiter.hit("fresh")
    assert set(limiter._hits) == {"fresh"}
