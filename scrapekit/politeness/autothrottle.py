"""AutoThrottle: AIMD adjustment of each slot's rate from how its responses go.

Politeness stage. The rate limiter keeps one `ThrottleState` per slot (host or domain) and
reports every finished request to `AutoThrottle.observe()`, which halves the slot's rate on a
429, a 503 or a timeout (multiplicative decrease) and adds AUTOTHROTTLE_STEP per second of
healthy, steady traffic (additive increase), always within [RATE_MIN, RATE_MAX]. Pure: no
clock, no I/O; time comes in through the `now` arguments. Reads AUTOTHROTTLE_STEP, RATE,
RATE_MIN and RATE_MAX (through `from_settings`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["AutoThrottle", "ThrottleState"]

#: Statuses that say "slow down": the server is overloaded or rate-limiting us.
THROTTLE_STATUSES = frozenset({429, 503})

SLOWER = -1
"""`observe()` result: the slot was told to slow down (counted as throttled)."""
FASTER = 1
"""`observe()` result: the slot's rate went up."""


def _healthy(status: int) -> bool:
    # A 404 is the site answering normally about a missing page, not a sign of strain.
    return 200 <= status < 400 or status == 404


@dataclass(slots=True)
class ThrottleState:
    """One slot's AIMD state: its current rate and what the next decision depends on."""

    rate: float
    ceiling: float
    floor: float
    average: float | None = None
    """Moving average of the slot's response latency (None before the first sample)."""
    latency: float = 0.0
    """The slot's latest latency: a burst of failures closer together than this counts once."""
    slowed_at: float = float("-inf")
    healthy_since: float | None = None
    """Start of the current run of healthy responses (or of the last increase), if any."""


class AutoThrottle:
    """AIMD rate policy: halve on 429/503/timeouts, add `step` per second while healthy.

    One instance serves every slot; each slot's state is a `ThrottleState` from `new_state()`.
    A decrease happens at most once per `window` seconds or per the slot's latest latency,
    whichever is longer, so the in-flight requests of one overload burst count once. An
    increase needs `window` seconds of healthy responses (2xx, 3xx, 404) whose latency stays
    below twice its moving average; any other response starts that run again.
    """

    __slots__ = ("factor", "max_rate", "min_rate", "start", "step", "window")

    def __init__(
        self,
        min_rate: float = 0.5,
        max_rate: float = 50.0,
        step: float = 0.5,
        *,
        start: float | None = None,
        factor: float = 0.5,
        window: float = 1.0,
    ) -> None:
        if not 0 < min_rate <= max_rate:
            raise ValueError(f"need 0 < min_rate <= max_rate, got {min_rate} and {max_rate}")
        if step <= 0 or not 0 < factor < 1 or window < 0:
            raise ValueError("need step > 0, 0 < factor < 1 and window >= 0")
        self.min_rate = float(min_rate)
        self.max_rate = float(max_rate)
        self.step = float(step)
        self.start = min(max(float(start or max_rate), min_rate), max_rate)
        self.factor = factor
        self.window = window

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> AutoThrottle:
        """The policy for RATE_MIN, RATE_MAX and AUTOTHROTTLE_STEP, starting at RATE or RATE_MAX."""
        return cls(
            float(settings["RATE_MIN"]),
            float(settings["RATE_MAX"]),
            float(settings["AUTOTHROTTLE_STEP"]),
            start=float(settings["RATE"]) or None,
        )

    def new_state(self, rate: float | None = None) -> ThrottleState:
        """A fresh slot's state, at `start`; a given `rate` is both its start and its ceiling.

        The floor is RATE_MIN, or the ceiling if that is lower (an explicit slow rate wins).
        """
        if rate is None:
            return ThrottleState(self.start, self.max_rate, self.min_rate)
        return ThrottleState(rate, rate, min(self.min_rate, rate))

    def observe(
        self,
        state: ThrottleState,
        *,
        status: int | None,
        latency: float | None,
        timed_out: bool,
        now: float,
    ) -> int:
        """Update `state` for one finished request; return SLOWER, FASTER or 0.

        `status` is None when no response came (a timeout if `timed_out`, else a network
        error, which is neutral). SLOWER is returned for every throttle event, even one that
        finds the rate already at its floor, so the caller can count them.
        """
        steady = True
        if latency is not None:
            average = state.average
            steady = average is None or latency < 2.0 * average
            state.average = latency if average is None else 0.8 * average + 0.2 * latency
            state.latency = latency
        if timed_out or status in THROTTLE_STATUSES:
            state.healthy_since = None
            if now - state.slowed_at < max(self.window, state.latency):
                return 0  # the same burst of failures: already slowed down for it
            state.slowed_at = now
            state.rate = max(state.rate * self.factor, state.floor)
            return SLOWER
        if status is None or not steady or not _healthy(status):
            state.healthy_since = None
            return 0
        if state.healthy_since is None:
            state.healthy_since = now
            return 0
        if now - state.healthy_since < self.window:
            return 0
        state.healthy_since = now
        if state.rate >= state.ceiling:
            return 0
        state.rate = min(state.rate + self.step, state.ceiling)
        return FASTER
