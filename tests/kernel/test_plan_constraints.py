"""Plans with Constraints (samantha/kernel/plans.py): hypothesis properties over injected times.

The maintenance window is restated here independently (an opening of each listed day, lasting end - start
modulo a day), and the window's next opening must be open and have nothing open between now and it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from samantha.kernel.plans import WEEKDAYS, Constraints, MaintenanceWindow, Plan, evaluate, seconds_of_day

T0 = datetime(2026, 1, 5, tzinfo=UTC).timestamp()  # a Monday, 00:00 UTC
FAST = settings(max_examples=800, deadline=None)

times = st.integers(0, 86399).map(lambda s: f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}")
windows = st.builds(MaintenanceWindow, days=st.lists(st.sampled_from(WEEKDAYS), min_size=1, unique=True),
                    start=times, end=times)
instants = st.floats(T0, T0 + 21 * 86400, allow_nan=False)


def reference_open(w: MaintenanceWindow, now: float) -> bool:
    s, e = seconds_of_day(w.start), seconds_of_day(w.end)
    length = (e - s) % 86400 or 86400
    t = datetime.fromtimestamp(now, UTC)
    midnight = datetime(t.year, t.month, t.day, tzinfo=UTC)
    for back in (0, 1):
        day = midnight - timedelta(days=back)
        opens = day.timestamp() + s
        if WEEKDAYS[day.weekday()] in w.days and opens <= now < opens + length:
            return True
    return False


@FAST
@given(windows, instants)
def test_the_window_is_open_exactly_when_the_reference_says(w, now):
    assert w.contains(now) == reference_open(w, now)


@FAST
@given(windows, instants)
def test_the_next_opening_is_open_and_nothing_before_it_is(w, now):
    at = w.next_open(now)
    assert now <= at <= now + 8 * 86400
    assert w.contains(at)
    if at > now:  # closed now, and at every point before it opens
        for t in (now, now + (at - now) / 2, now + (at - now) * 0.9, max(now, at - 1.0)):
            assert not w.contains(t)


@FAST
@given(st.none() | windows, st.sampled_from([None, "0.1.0", "0.2", "1.0.0rc1"]),
       st.sampled_from(["0.1.0", "0.2.0", "1.0.0"]), st.sampled_from([None, "ab" * 32, "cd" * 32]),
       st.sampled_from([None, "abababab", "cd" * 32]), instants)
def test_a_plan_is_ready_iff_every_constraint_holds(w, min_v, version, active, required, now):
    from packaging.version import Version

    plan = Plan(id="p", bundle="v3", constraints=Constraints(window=w, min_samantha_version=min_v,
                                                             requires_active=required))
    v = evaluate(plan, now, version, active)
    holds = {"window": w is None or reference_open(w, now),
             "min_samantha_version": min_v is None or Version(version) >= Version(min_v),
             "requires_active": required is None or (active or "").startswith(required)}
    assert v.ready == all(holds.values())
    assert sorted(r.split(":")[0] for r in v.waiting) == sorted(k for k, ok in holds.items() if not ok)
    assert (v.next_window_at is not None) == (not holds["window"])


def test_bad_constraints_name_the_field():
    with pytest.raises(ValidationError, match="start"):
        MaintenanceWindow(start="25:00", end="03:00")
    with pytest.raises(ValidationError, match="min_samantha_version"):
        Constraints(min_samantha_version="soon")
    with pytest.raises(ValidationError, match="requires_active"):
        Constraints(requires_active="v2")
    with pytest.raises(ValidationError, match="days"):
        MaintenanceWindow(days=["someday"], start="01:00", end="02:00")
