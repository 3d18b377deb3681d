"""Value schedules against hand-computed values."""

import math

import pytest

from looplab.agent.schedule import linear_decay, no_decay, periodic_decay, rate_decay


def test_no_decay():
    assert no_decay(0.3, 0.1, 0, 100, 50) == 0.3


@pytest.mark.parametrize("step,expected", [(0, 1.0), (10, 1.0), (60, 0.55), (110, 0.1), (1000, 0.1)])
def test_linear_decay(step, expected):
    assert linear_decay(1.0, 0.1, 10, 110, step) == pytest.approx(expected)


def test_linear_growth_is_allowed():
    assert linear_decay(0.0, 1.0, 0, 100, 25) == pytest.approx(0.25)


def test_rate_decay():
    # 20 chunks over 100 steps: 5 steps per chunk; at step 10 -> 2 chunks -> 0.9^2
    assert rate_decay(1.0, 0.01, 0, 100, 10) == pytest.approx(0.81)
    assert rate_decay(1.0, 0.5, 0, 100, 100) == pytest.approx(0.5)  # floored at end_val


def test_periodic_decay_formula_and_bounds():
    start, end, s0, s1 = 1.0, 0.2, 0, 600
    assert periodic_decay(start, end, s0, s1, 0) == start
    assert periodic_decay(start, end, s0, s1, 600) == end
    step = 150  # x = 15 periods in
    x = 15.0
    expected = end + 0.5 * (start - end) * (1 + math.cos(x) * (1 - x / 60))
    assert periodic_decay(start, end, s0, s1, step) == pytest.approx(max(expected, end))
    values = [periodic_decay(start, end, s0, s1, k) for k in range(0, 601, 7)]
    assert min(values) >= end and max(values) <= start + 1e-9


def test_written_end_val_zero_decays_to_zero():
    """SLM Lab replaces a falsy end_val (0, 0.0) with start_val; here end_val 0.0 means 0.0."""
    from looplab.agent.schedule import Schedule, ScheduleSpec

    spec = ScheduleSpec(name="linear_decay", start_val=0.01, end_val=0.0, start_step=0, end_step=1000)
    sched = Schedule(spec)
    assert sched.value(500) == pytest.approx(0.005)
    assert sched.value(1000) == 0.0 and sched.end_value() == 0.0
    left_out = ScheduleSpec(name="linear_decay", start_val=0.01, start_step=0, end_step=1000)
    assert Schedule(left_out).value(1000) == 0.01  # an absent end_val is start_val, as in SLM Lab
