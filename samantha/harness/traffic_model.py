"""A small generative model of Cube traffic, fitted to recorded twin telemetry.

The judge bench draws requests from it. The fit keeps the empirical latency quantile
function (401 knots, so the tail is the recorded tail, not a parametric guess), the
incumbent's error rate, the request rate, and the shadow-scored divergence seen when
the standby ran the same model (A/A). The fitted parameters are a small JSON fixture.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from samantha.gates.windows import TelemetryReader

FIXTURE = Path(__file__).parent / "fixtures" / "twin_traffic_fit.json"
TWIN_RECORDING = Path(__file__).parent / "fixtures" / "twin_recording"  # backtest fixture (README beside it)
KNOTS = np.linspace(0.0, 1.0, 401)


def _quantiles(x: np.ndarray) -> list[float]:
    return [round(float(v), 4) for v in np.quantile(x, KNOTS)]


def fit_recording(reader: TelemetryReader, source: str, divergence_tolerance: float = 0.01) -> dict[str, Any]:
    """Fit the traffic model to a recording (a DuckDB file or Parquet dir of twin telemetry)."""
    t = reader.read_arrow("SELECT ts, slot, bundle, latency_ms, ok, divergence, shadow FROM requests ORDER BY ts")
    ts = t.column("ts").to_numpy()
    slot = np.asarray(t.column("slot").to_pylist())
    shadow = t.column("shadow").to_numpy(zero_copy_only=False).astype(bool)
    ok = t.column("ok").to_numpy(zero_copy_only=False).astype(bool)
    lat = t.column("latency_ms").to_numpy()
    div = t.column("divergence").to_numpy(zero_copy_only=False).astype(float)
    bundle = np.asarray(t.column("bundle").to_pylist())
    active = slot == "active"
    active_bundle = str(bundle[active][0])
    served = ~shadow
    span = float(ts.max() - ts.min())
    # A/A: standby rows of a bundle with no fault profile (same model): all rows of the standby before
    # the first bundle whose error rate is far off the incumbent's.
    inc_err = float(np.mean(~ok[active]))
    aa_mask = np.zeros(ts.size, dtype=bool)
    for b in dict.fromkeys(bundle[slot == "standby"]):
        m = (slot == "standby") & (bundle == b)
        if abs(float(np.mean(~ok[m])) - inc_err) < 0.02:
            aa_mask |= m
    sh = aa_mask & shadow & ~np.isnan(div)
    lat_a = lat[active & ok]
    ln = stats.lognorm.fit(lat_a, floc=0)
    out: dict[str, Any] = {
        "source": f"fitted to twin telemetry recorded {datetime.fromtimestamp(float(ts.min()), UTC):%Y-%m-%d %H:%M} UTC",
        "recording": source,
        "recorded_s": round(span, 1),
        "rows": int(ts.size),
        "active_bundle": active_bundle,
        "rps": round(float(np.sum(served) / span), 2),
        "incumbent_error_rate": inc_err,
        "incumbent_requests": int(active.sum()),
        "latency_quantiles_ms": _quantiles(lat_a),
        "latency_lognormal": {"s": float(ln[0]), "scale": float(ln[2])},
        "aa_standby_requests": int(aa_mask.sum()),
        "aa_standby_error_rate": float(np.mean(~ok[aa_mask])) if aa_mask.any() else None,
        "aa_shadow_latency_quantiles_ms": _quantiles(lat[aa_mask & shadow & ok]) if (aa_mask & shadow).any() else None,
        "aa_divergence_tolerance": divergence_tolerance,
        "aa_divergence_rate": float(np.mean(div[sh] > divergence_tolerance)) if sh.any() else None,
        "aa_divergence_quantiles": _quantiles(div[sh]) if sh.any() else None,
    }
    return out


class TrafficModel:
    def __init__(self, fit: dict[str, Any]) -> None:
        self.fit = fit
        self.q = np.asarray(fit["latency_quantiles_ms"], dtype=float)
        sq = fit.get("aa_shadow_latency_quantiles_ms")
        self.q_shadow = np.asarray(sq, dtype=float) if sq else self.q
        self.rps = float(fit["rps"])
        self.error_rate = float(fit["incumbent_error_rate"])
        self.divergence_rate = float(fit.get("aa_divergence_rate") or 0.0)

    @classmethod
    def load(cls, path: Path = FIXTURE) -> TrafficModel:
        return cls(json.loads(path.read_text()))

    def latencies(self, rng: np.random.Generator, n: int, *, shadow: bool = False) -> np.ndarray:
        """Inverse-transform sampling from the fitted quantile function (linear between knots)."""
        return np.interp(rng.uniform(size=n), KNOTS, self.q_shadow if shadow else self.q)


def describe(fit: dict[str, Any]) -> dict[str, Any]:
    q = np.asarray(fit["latency_quantiles_ms"])
    pick = {f"p{int(k * 100)}": float(np.interp(k, KNOTS, q)) for k in (0.5, 0.95, 0.99)}
    return {"source": fit["source"], "rps": fit["rps"], "incumbent_error_rate": fit["incumbent_error_rate"],
            "latency_ms": {k: round(v, 3) for k, v in pick.items()},
            "aa_divergence_rate": fit.get("aa_divergence_rate"),
            "recorded_s": fit.get("recorded_s"), "rows": fit.get("rows"),
            "fixture": str(FIXTURE.relative_to(FIXTURE.parents[3])) if len(FIXTURE.parents) > 3 else str(FIXTURE)}
