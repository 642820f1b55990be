"""The engine carries one request frame between passes and splices new rows into its buffers in place.
A frame that was already extended must never be extended again (its views may have been overwritten)."""

import duckdb
import numpy as np

from samantha.gates.windows import RequestFrame


class Reader:
    def __init__(self) -> None:
        self.con = duckdb.connect()
        self.con.execute("CREATE TABLE requests (ts DOUBLE, slot VARCHAR, bundle VARCHAR, latency_ms DOUBLE, "
                         "ok BOOLEAN, divergence DOUBLE, shadow BOOLEAN, writer VARCHAR DEFAULT 'local')")

    def add(self, t0: float, t1: float, n: int) -> None:
        ts = np.linspace(t0, t1, n, endpoint=False)
        self.con.executemany("INSERT INTO requests VALUES (?, 'active', 'b', 1.0, true, NULL, false, 'local')",
                             [[float(t)] for t in ts])

    def read_arrow(self, sql, params=None):
        return self.con.sql(sql, params=params or []).to_arrow_table()


def test_an_extended_frame_is_no_longer_current_and_the_new_one_is():
    r = Reader()
    r.add(0, 10, 50)
    first = RequestFrame.fetch(r, -1, 10)
    r.add(10, 20, 50)
    second = first.extended(RequestFrame.fetch(r, 8, 20), 2, 8)
    assert second.is_current()
    assert np.all(np.diff(second.ts) > 0) and second.ts[0] > 2 and second.ts[-1] < 20
    r.add(20, 30, 50)
    third = second.extended(RequestFrame.fetch(r, 18, 30), 4, 18)
    assert third.is_current()
    assert not second.is_current()  # its buffers now hold `third`: extending it again would corrupt rows
    assert np.all(np.diff(third.ts) > 0) and third.ts.size == np.count_nonzero(
        r.read_arrow("SELECT ts FROM requests").column("ts").to_numpy() > 4)


def test_engine_handles_windows_shorter_than_its_refetch_margin():
    """A 1 s window starts after the engine's refetch cut; it must be fetched afresh, not spliced."""
    from samantha.core.clock import SimClock
    from samantha.gates.engine import GateEngine

    r = Reader()
    r.add(0, 30, 600)
    eng = GateEngine(r, SimClock(30.0))
    long = eng._requests(0.0, 30.0, None)
    assert long.ts.size == 599  # rows in (0, 30]: the one at ts=0 is outside
    r.add(30, 31, 20)
    short = eng._requests(30.0, 31.0, None)  # start 30 > cut 25
    assert short.ts.size == 19 and short.ts.min() > 30.0  # rows in (30, 31]


def test_a_metric_first_written_after_a_pass_is_seen_within_a_second():
    """A live engine caches series metadata; a gauge that appears later (e.g. the policy module's expiry,
    written once a module arrives) must not stay invisible until the periodic refresh."""
    from samantha.gates.windows import MetricCarry, MetricFrame

    con = duckdb.connect()
    con.execute("CREATE TABLE series (id BIGINT, metric VARCHAR, labels_key VARCHAR, labels JSON)")
    con.execute("CREATE TABLE samples (ts DOUBLE, series_id BIGINT, value DOUBLE)")

    class R:
        def read_arrow(self, sql, params=None):
            return con.sql(sql, params=params or []).to_arrow_table()

    carry = MetricCarry()
    assert MetricFrame.fetch(R(), {}, {"gauge": 60.0}, 100.0, carry).latest == {}
    con.execute("INSERT INTO series VALUES (1, 'gauge', '', '{}')")
    con.execute("INSERT INTO samples VALUES (100.5, 1, 42.0)")
    assert MetricFrame.fetch(R(), {}, {"gauge": 60.0}, 101.5, carry).latest == {1: (100.5, 42.0)}
