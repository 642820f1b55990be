"""Shadow-latency margins from A/A recordings: `python benchmarks/calibrate_shadow_margins.py RUN.json...`.

Each RUN.json is the one JSON object `benchmarks/record_twin.py OUT --aa S --bad 0 --rps R --stress N` prints
(the A/A phase's shadow-vs-live comparison on the real twin). For p50 and p99 it turns the share of shadow-scored
requests above the live quantile into an odds ratio against the live side, then sets the margin (the gates'
`null_odds`) at the stated quantile of those ratios across recordings (default: the largest), rounded up to 0.05 and never below 1.
Prints one JSON object. The per-recording ratios are noisy (a 20 s A/A at 50 rps holds ~8 requests above
p99), so the quantile overstates the true spread: the margins err on the side of no false aborts.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np


def odds_ratio(share_above: float, q: float) -> float:
    share = min(max(share_above, 1e-6), 1 - 1e-6)
    return (share / (1 - share)) / ((1 - q) / q)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--quantile", type=float, default=1.0, help="1.0: the largest ratio recorded")
    a = ap.parse_args()
    rows = [json.loads(p.read_text()) for p in a.runs]
    rows = [r for r in rows if "shadow_over_live_p50" in r]
    out: dict[str, object] = {"recordings": len(rows), "quantile": a.quantile,
                              "load": {"rps": sorted({int(round(r["live_n"] / 18 / 50) * 50) for r in rows}),
                                       "stress_procs": sorted({r["stress_procs"] for r in rows}),
                                       "loadavg_1m": [min(r["loadavg_1m"] for r in rows),
                                                      max(r["loadavg_1m"] for r in rows)]}}
    for key, q in (("p50", 0.5), ("p99", 0.99)):
        ors = np.array([odds_ratio(r[f"shadow_over_live_{key}"], q) for r in rows])
        at = float(np.quantile(ors, a.quantile))
        out[key] = {"odds_ratios": [round(float(x), 3) for x in ors], "median": round(float(np.median(ors)), 3),
                    "max": round(float(ors.max()), 3), f"q{a.quantile:g}": round(at, 3),
                    "margin": max(1.0, math.ceil(at * 20 - 1e-9) / 20)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
