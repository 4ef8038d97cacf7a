"""A clock for the code's injectable clocks (`Transport(clock=, sleep=)`,
`TokenProvider(clock=)`): time passes only when a test says so, or when the code sleeps."""

from __future__ import annotations


class FakeClock:
    """A clock (call it for the time) that `advance` and `sleep` move on; `slept` lists every
    sleep asked of it. `start`: where it starts; a token cache that reads a store is on the
    store's epoch time, so its clock starts near the stored token's times."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(seconds)
