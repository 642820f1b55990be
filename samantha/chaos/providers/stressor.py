"""A bounded resource stressor process: `python -m samantha.chaos.providers.stressor cpu|memory ...`.

Bounded three ways: it exits on its own after --duration (its own TTL), a memory hog
stops growing before psutil's available memory would drop under --reserve-mb, and a
CPU burner uses at most one core at the given duty cycle. `--tag` (the ledger entry)
lets a revert or a recovery find it by command line.
"""

from __future__ import annotations

import argparse
import time

import psutil

CHUNK_MB = 8


def burn(duty: float, until: float) -> None:
    period = 0.02
    while time.monotonic() < until:
        t0 = time.monotonic()
        while time.monotonic() - t0 < duty * period:
            pass
        time.sleep(max(0.0, period * (1 - duty)))


def hog(mb: float, reserve_mb: float, until: float) -> None:
    held: list[bytearray] = []
    while sum(len(b) for b in held) < mb * 2**20 and time.monotonic() < until:
        if psutil.virtual_memory().available / 2**20 - CHUNK_MB < reserve_mb:
            break  # the host's headroom wins over the experiment
        n = int(min(CHUNK_MB, mb - sum(len(b) for b in held) / 2**20) * 2**20)
        held.append(bytearray(b"\x01") * max(n, 1))  # touched pages: real RSS
    while time.monotonic() < until:
        time.sleep(0.1)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m samantha.chaos.providers.stressor")
    ap.add_argument("kind", choices=["cpu", "memory"])
    ap.add_argument("--amount", type=float, required=True, help="cpu: duty cycle of one core (0..1]; memory: MB")
    ap.add_argument("--duration", type=float, required=True)
    ap.add_argument("--tag", required=True)
    ap.add_argument("--ledger", default="", help="the chaos ledger that recorded this stressor (who owns it)")
    ap.add_argument("--reserve-mb", type=float, default=256)
    a = ap.parse_args(argv)
    until = time.monotonic() + min(a.duration, 600.0)
    if a.kind == "cpu":
        burn(min(max(a.amount, 0.0), 1.0), until)
    else:
        hog(a.amount, a.reserve_mb, until)


if __name__ == "__main__":
    main()
