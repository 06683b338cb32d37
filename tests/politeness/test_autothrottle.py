"""AutoThrottle: halve a slot's rate on overload, raise it slowly while the host stays healthy."""

from __future__ import annotations

import pytest

from scrapekit.politeness.autothrottle import FASTER, SLOWER, AutoThrottle, ThrottleState
from scrapekit.settings import Settings


def throttle(**kwargs: float) -> AutoThrottle:
    return AutoThrottle(
        kwargs.pop("min_rate", 0.5),
        kwargs.pop("max_rate", 8.0),
        kwargs.pop("step", 0.5),
        start=kwargs.pop("start", 4.0),
    )


def observe(
    policy: AutoThrottle,
    state: ThrottleState,
    now: float,
    status: int | None = 200,
    latency: float | None = 0.1,
    timed_out: bool = False,
) -> int:
    return policy.observe(state, status=status, latency=latency, timed_out=timed_out, now=now)


@pytest.mark.parametrize(
    ("status", "timed_out"),
    [
        pytest.param(429, False, id="429"),
        pytest.param(503, False, id="503"),
        pytest.param(None, True, id="timeout"),
    ],
)
def test_overload_halves_the_rate(status: int | None, timed_out: bool) -> None:
    """A 429, a 503 or a timeout halves the rate and reports a slow-down."""
    policy = throttle()
    state = policy.new_state()
    assert observe(policy, state, 10.0, status, None, timed_out) == SLOWER
    assert state.rate == 2.0


def test_one_burst_of_failures_counts_once() -> None:
    """Failures within a second of a slow-down are the same burst; a later one halves again."""
    policy = throttle()
    state = policy.new_state()
    results = [observe(policy, state, 10.0 + i * 0.1, 429) for i in range(8)]
    assert results == [SLOWER] + [0] * 7
    assert state.rate == 2.0
    assert observe(policy, state, 11.0, 429) == SLOWER
    assert state.rate == 1.0


def test_slow_responses_stretch_the_burst_window() -> None:
    """With a 3 s latency, a failure 2 s after a slow-down still belongs to the same burst."""
    policy = throttle()
    state = policy.new_state()
    assert observe(policy, state, 10.0, 503, latency=3.0) == SLOWER
    assert observe(policy, state, 12.0, 503, latency=None) == 0
    assert observe(policy, state, 13.5, 503, latency=None) == SLOWER
    assert state.rate == 1.0


def test_rate_never_drops_below_the_minimum() -> None:
    """Repeated overloads stop at RATE_MIN, and each one is still reported."""
    policy = throttle(min_rate=0.5)
    state = policy.new_state()
    results = [observe(policy, state, float(t), 429) for t in range(10)]
    assert results == [SLOWER] * 10
    assert state.rate == 0.5


def test_healthy_traffic_adds_a_step_per_second() -> None:
    """Ten seconds of healthy responses every 0.1 s raise the rate by one step per second."""
    policy = throttle(step=0.5, start=1.0)
    state = policy.new_state()
    results = [observe(policy, state, 100.0 + i * 0.1) for i in range(101)]
    assert results.count(FASTER) == 10
    assert state.rate == pytest.approx(6.0)


def test_rate_never_rises_above_the_maximum() -> None:
    """A long healthy run stops at RATE_MAX."""
    policy = throttle(max_rate=8.0, step=2.0, start=4.0)
    state = policy.new_state()
    for t in range(60):
        observe(policy, state, float(t))
    assert state.rate == 8.0


@pytest.mark.parametrize(
    "status",
    [
        pytest.param(200, id="200"),
        pytest.param(301, id="301"),
        pytest.param(404, id="404"),
    ],
)
def test_healthy_statuses_count_towards_growth(status: int) -> None:
    """2xx, 3xx and 404 responses are healthy traffic."""
    policy = throttle(start=1.0)
    state = policy.new_state()
    observe(policy, state, 0.0, status)
    assert observe(policy, state, 1.0, status) == FASTER


@pytest.mark.parametrize(
    ("status", "latency"),
    [
        pytest.param(500, 0.1, id="server-error"),
        pytest.param(403, 0.1, id="forbidden"),
        pytest.param(None, None, id="network-error"),
        pytest.param(200, 0.5, id="latency-spike"),
    ],
)
def test_an_unhealthy_response_restarts_the_healthy_run(
    status: int | None, latency: float | None
) -> None:
    """An error or a latency spike (over twice the average) neither slows down nor speeds up."""
    policy = throttle(start=1.0)
    state = policy.new_state()
    observe(policy, state, 0.0, latency=0.1)
    assert observe(policy, state, 0.9, status, latency) == 0
    assert state.rate == 1.0
    assert observe(policy, state, 1.5) == 0  # the run starts again here
    assert observe(policy, state, 2.5) == FASTER


def test_growth_restarts_after_a_slow_down() -> None:
    """After a halving, a full second of healthy traffic is needed before the next step."""
    policy = throttle(start=4.0)
    state = policy.new_state()
    observe(policy, state, 0.0, 429)
    assert observe(policy, state, 0.5) == 0
    assert observe(policy, state, 1.0) == 0
    assert observe(policy, state, 1.5) == FASTER
    assert state.rate == 2.5


def test_explicit_rate_is_start_and_ceiling() -> None:
    """A slot given its own rate starts there, never grows past it, and may sink below RATE_MIN."""
    policy = throttle(min_rate=0.5, max_rate=8.0)
    state = policy.new_state(0.25)
    assert (state.rate, state.ceiling, state.floor) == (0.25, 0.25, 0.25)
    for t in range(5):
        observe(policy, state, float(t))
    assert state.rate == 0.25


@pytest.mark.parametrize(
    ("rate", "expected"),
    [
        pytest.param(0.0, 50.0, id="no-rate-starts-at-max"),
        pytest.param(5.0, 5.0, id="rate-is-the-start"),
        pytest.param(0.1, 0.5, id="clamped-to-min"),
    ],
)
def test_from_settings_starts_at_rate_or_rate_max(rate: float, expected: float) -> None:
    """from_settings reads RATE_MIN/RATE_MAX/AUTOTHROTTLE_STEP and starts at RATE, else RATE_MAX."""
    settings = Settings()
    settings.set("RATE", rate, priority="cmdline")
    policy = AutoThrottle.from_settings(settings)
    assert (policy.min_rate, policy.max_rate, policy.step) == (0.5, 50.0, 0.5)
    assert policy.new_state().rate == expected


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"min_rate": 0.0}, id="zero-min"),
        pytest.param({"min_rate": 10.0, "max_rate": 5.0}, id="min-above-max"),
        pytest.param({"step": 0.0}, id="zero-step"),
    ],
)
def test_bad_bounds_are_refused(kwargs: dict[str, float]) -> None:
    """Bounds that cannot work raise ValueError at construction."""
    with pytest.raises(ValueError, match="need"):
        throttle(**kwargs)
