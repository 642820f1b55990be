"""One function per gate kind: gate + window data -> Verdict. Pure; the engine does the I/O."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from samantha.gates import sequential as seq
from samantha.gates import statistics as st
from samantha.gates.sketch import RELATIVE_ACCURACY, SKETCH_MIN_ROWS
from samantha.gates.spec import (
    SERVER_SIGNALS,
    SLOT_CPU_METRIC,
    SLOT_INFERENCES_METRIC,
    SLOT_MEMORY_METRIC,
    CompareGate,
    DriftGate,
    JudgeGate,
    ResourceGate,
    SequentialGate,
    ServerGate,
    StalenessGate,
    ThresholdGate,
    min_samples,
    quantile_of,
)
from samantha.gates.verdict import Verdict
from samantha.gates.windows import MetricFrame, RequestFrame, Rows


@dataclass(frozen=True)
class EvalContext:
    """When and on what a pass runs. `rollout_start` anchors sequential tests (one alpha per rollout)."""

    now: float
    rollout_start: float | None = None
    canary_bundle: str | None = None
    caches: dict[str, seq.LLRCache] | None = None  # per sequential gate, kept by the engine between passes
    memo: dict[tuple, object] | None = None  # results shared by gates of one pass that test the same data
    active_bundle: str | None = None  # the bundle on the active slot: its rows only, for active-role gates
    active_since: float | None = None  # when that bundle became active (a flip): active windows start no earlier

    def active_start(self, start: float) -> float:
        """An active-role window's start: never before the last flip (older rows judged the other bundle)."""
        return start if self.active_since is None else max(start, self.active_since)

    def cache_for(self, g: SequentialGate, start: float) -> seq.LLRCache | None:
        if self.caches is None:
            return None
        owner = (g.model_dump_json(), start, self.canary_bundle)
        c = self.caches.get(g.name)
        if c is None or c.owner != owner:  # another gate definition or another rollout: start over
            c = self.caches[g.name] = seq.LLRCache(owner=owner)
        return c


def group(standby: bool | None, *, include_shadow: bool = False, channel: str | None = None,
          bundle: str | None = None) -> tuple[bool | None, str, bool]:
    """The frame's request group (see `RequestFrame.rows`) a selection reads."""
    return standby, channel or ("all" if include_shadow else "live"), bool(bundle) and bool(standby)


def select(rf: RequestFrame | None, start: float, end: float, *, standby: bool | None,
           include_shadow: bool = False, channel: str | None = None, bundle: str | None = None) -> Rows:
    if rf is None:
        e = np.empty(0)
        return Rows(e, e.astype(bool), e, e)
    return rf.rows(*group(standby, include_shadow=include_shadow, channel=channel, bundle=bundle)).span(start, end)


def canary_group(ctx: EvalContext, include_shadow: bool = True,
                 channel: str | None = None) -> tuple[bool | None, str, bool]:
    return group(True, include_shadow=include_shadow, channel=channel, bundle=ctx.canary_bundle)


INCUMBENT = group(False)


def canary(rf: RequestFrame | None, start: float, end: float, ctx: EvalContext, include_shadow: bool = True,
           channel: str | None = None) -> Rows:
    return select(rf, start, end, standby=True, include_shadow=include_shadow, channel=channel,
                  bundle=ctx.canary_bundle)


def incumbent(rf: RequestFrame | None, start: float, end: float) -> Rows:
    return select(rf, start, end, standby=False, include_shadow=False)


def _request_aggregate(rf: RequestFrame | None, key: tuple[bool | None, str, bool], rows: Rows, metric: str,
                       how: str, window: tuple[float, float], window_s: float) -> tuple[float, bool]:
    """A request metric's aggregate over `rows` (group `key` in `window`), and whether it is approximate.

    Latency quantiles of SKETCH_MIN_ROWS rows or more come from the group's carried sketch
    (`sketch.LatencyBins`): within RELATIVE_ACCURACY of the exact (numpy, linear) quantile; smaller
    windows, where a sort is as cheap, get the exact quantile. Counts, rates and means are
    computed exactly from the rows; a window the sketch cannot hold falls back to the exact quantile."""
    q = quantile_of(how)
    if rf is not None and metric == "latency_ms" and q is not None and rows.n >= SKETCH_MIN_ROWS:
        lb = rf.latency_bins(*key)
        v = lb.quantile(*window, q) if lb is not None else None
        if v is not None:
            return v, True
    return st.aggregate(_request_values(rows, metric), how, window_s), False


def _request_values(rows: Rows, metric: str) -> np.ndarray:
    if metric == "latency_ms":
        return rows.latency_ms
    if metric == "error_rate":
        return (~rows.ok).astype(np.float64)
    if metric == "divergence":
        return rows.divergence[~np.isnan(rows.divergence)]
    return rows.ts  # rps: counted


def threshold(g: ThresholdGate, rf: RequestFrame | None, mf: MetricFrame, ctx: EvalContext) -> Verdict:
    now, start = ctx.now, ctx.now - g.window
    if g.needs_requests():
        standby = None if g.slot is None else g.slot == "standby"
        if standby is False:
            start = ctx.active_start(start)
        key = group(standby, include_shadow=g.include_shadow)
        rows = select(rf, start, now, standby=standby, include_shadow=g.include_shadow)
        values = _request_values(rows, g.metric)
        how = "rate" if g.metric == "rps" else ("mean" if g.metric == "error_rate" else g.aggregate)
        n = values.size
    else:
        ids = mf.matching(g.metric, g.labels)
        if not ids:
            return Verdict.make(g, "inconclusive", f"metric {g.metric} has no series", now, (start, now), {"n": 0})
        _, values = mf.window(ids, start, now)
        how, n = g.aggregate, values.size
    need = min_samples(g)
    if n < need:
        return Verdict.make(g, "inconclusive", f"{n} samples < {need}", now, (start, now), {"n": n},
                            min_samples=need)
    approx = False
    if g.needs_requests():
        observed, approx = _request_aggregate(rf, key, rows, g.metric, how, (start, now), g.window)
    else:
        observed = st.aggregate(values, how, g.window)
    ok = st.compare(g.op, observed, g.value)
    reason = f"{g.metric} {how} = {observed:.6g} {'' if ok else 'not '}{g.op} {g.value:g}"
    return Verdict.make(g, "pass" if ok else "fail", reason, now, (start, now), {"n": n},
                        observed=observed, bound=g.value, aggregate=how, **_accuracy(approx))


def compare(g: CompareGate, rf: RequestFrame | None, ctx: EvalContext) -> Verdict:
    now, start = ctx.now, ctx.now - g.window
    if g.subject == "active":  # the serving slot against the standby's probe mirrors: would a flip serve better?
        ck, ik = INCUMBENT, group(True, channel="shadow")
        c, i = incumbent(rf, start, now), select(rf, start, now, standby=True, channel="shadow")
        samples = {"active": c.n, "standby_probes": i.n}
    else:
        ck, ik = canary_group(ctx, g.include_shadow), INCUMBENT
        c, i = canary(rf, start, now, ctx, g.include_shadow), incumbent(rf, start, now)
        samples = {"canary": c.n, "incumbent": i.n}
    need = min_samples(g)
    if min(c.n, i.n) < need:
        return Verdict.make(g, "inconclusive", f"samples {c.n}/{i.n} < {need}", now, (start, now), samples)
    how = "mean" if g.metric == "error_rate" else g.aggregate
    cv, c_approx = _request_aggregate(rf, ck, c, g.metric, how, (start, now), g.window)
    iv, i_approx = _request_aggregate(rf, ik, i, g.metric, how, (start, now), g.window)
    diff = cv - iv
    ratio = cv / iv if iv > 0 else (math.nan if cv == 0 else math.inf)
    bad = []
    if g.max_increase is not None and diff > g.max_increase:
        bad.append(f"increase {diff:.6g} > {g.max_increase:g}")
    if g.max_ratio is not None and iv > 0 and ratio > g.max_ratio:
        bad.append(f"ratio {ratio:.4g} > {g.max_ratio:g}")
    who = ("active", "standby probes") if g.subject == "active" else ("canary", "incumbent")
    reason = "; ".join(bad) or f"{g.metric} {how} {who[0]} {cv:.6g} vs {who[1]} {iv:.6g} within bounds"
    return Verdict.make(g, "fail" if bad else "pass", reason, now, (start, now), samples,
                        canary=cv, incumbent=iv, increase=diff, ratio=ratio, **_accuracy(c_approx or i_approx))


def _accuracy(approx: bool) -> dict[str, float]:
    """A verdict resting on a sketched quantile says how close that quantile is (see `sketch`)."""
    return {"quantile_relative_accuracy": RELATIVE_ACCURACY} if approx else {}


def judge(g: JudgeGate, rf: RequestFrame | None, ctx: EvalContext) -> Verdict:
    now, start = ctx.now, ctx.now - g.window
    c = canary(rf, start, now, ctx, g.include_shadow)
    need = min_samples(g)
    if g.test == "divergence":
        d = c.divergence[~np.isnan(c.divergence)]
        if d.size < need:
            return Verdict.make(g, "inconclusive", f"{d.size} compared outputs < {need}", now, (start, now),
                                {"compared": d.size})
        k = int(np.sum(d > g.tolerance))
        p, rate, upper = st.rate_above(k, d.size, g.max_rate)
        bad = p < g.alpha
        reason = (f"diverging share {rate:.4%} (95% upper {upper:.4%}) vs allowed {g.max_rate:.4%}, "
                  f"p={p:.3g} {'<' if bad else '>='} alpha {g.alpha:g}")
        return Verdict.make(g, "fail" if bad else "pass", reason, now, (start, now), {"compared": d.size},
                            diverged=k, rate=rate, upper95=upper, p_value=p, alpha=g.alpha,
                            mean_divergence=float(np.mean(d)))
    i = incumbent(rf, start, now)
    samples = {"canary": c.n, "incumbent": i.n}
    if min(c.n, i.n) < need:
        return Verdict.make(g, "inconclusive", f"samples {c.n}/{i.n} < {need}", now, (start, now), samples)
    if g.test == "latency":
        key = ("mwu", start, now, g.include_shadow, ctx.canary_bundle)
        r = ctx.memo.get(key) if ctx.memo is not None else None
        if r is None or (r.p_value < g.alpha and np.isnan(r.hl_shift_ms)):  # type: ignore[attr-defined]
            r = st.latency_mwu(c.latency_ms, i.latency_ms, shift_below=g.alpha)
            if ctx.memo is not None:
                ctx.memo[key] = r
        shift = r.hl_shift_ms
        # practically relevant: slower by more than min_shift_ms AND by more than min_shift_ratio (x-fold)
        relevant = bool(shift > g.min_shift_ms and r.hl_ratio > 1.0 + g.min_shift_ratio)
        bad = r.p_value < g.alpha and relevant
        reason = (f"Mann-Whitney p={r.p_value:.3g}, Hodges-Lehmann shift {shift:+.3g} ms, x{r.hl_ratio:.3g} "
                  f"(medians {r.canary_median:.4g}/{r.incumbent_median:.4g} ms)")  # shifts are nan when p >= alpha
        return Verdict.make(g, "fail" if bad else "pass", reason, now, (start, now), samples,
                            p_value=r.p_value, u=r.u_statistic, hl_shift_ms=shift, hl_ratio=r.hl_ratio,
                            canary_median=r.canary_median,
                            incumbent_median=r.incumbent_median, alpha=g.alpha)
    ce, ie = int(np.sum(~c.ok)), int(np.sum(~i.ok))
    r = st.errors_fisher(ce, c.n, ie, i.n)
    diff = r.canary_rate - r.incumbent_rate
    bad = r.p_value < g.alpha and diff > g.min_increase
    reason = (f"error rate {r.canary_rate:.3%} vs {r.incumbent_rate:.3%} (+{diff * 100:.2f} pp), "
              f"Fisher p={r.p_value:.3g}")
    return Verdict.make(g, "fail" if bad else "pass", reason, now, (start, now), samples,
                        canary_errors=ce, incumbent_errors=ie, canary_rate=r.canary_rate,
                        incumbent_rate=r.incumbent_rate, increase=diff, p_value=r.p_value, alpha=g.alpha)


# Bins older than this are final: later passes reuse their counts instead of re-binning every row.
STABLE_AFTER_S = 5.0


def _counts(cache: seq.LLRCache | None, events: tuple, start: float, bin_s: float, nbins: int, stable_t: float,
            groups: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """(2 * len(groups), nbins) requests and events per bin; bins a previous pass saw as stable are reused."""
    reuse = 0
    old = None
    if cache is not None and cache.events == events and cache.counts is not None:
        reuse = min(cache.stable_bins, nbins, cache.counts.shape[1])
        old = cache.counts
    from_t = start + reuse * bin_s
    rows = []
    for ts, ev in groups:
        a = int(np.searchsorted(ts, from_t - 1e-6, "left")) if reuse else 0
        n, x = seq.bin_counts(ts[a:], start, bin_s, nbins, ev[a:])
        rows += [n, x]
    counts = np.vstack(rows)
    if reuse and old is not None:
        # a row exactly on the boundary belongs to bin `reuse`, which is recounted in full
        counts[:, :reuse] = old[:, :reuse]
    if cache is not None:
        cache.events = events
        cache.stable_bins = max(0, int((stable_t - start) // bin_s))
    return counts


def sequential_start(g: SequentialGate, ctx: EvalContext) -> float:
    if ctx.rollout_start is not None and ctx.rollout_start <= ctx.now:
        return ctx.rollout_start
    return ctx.now - g.window


# Thresholds a gate keeps for the whole rollout once taken (rows that precede it or open it never change).
FIXED_THRESHOLDS = ("baseline", "shadow-load")


def _latency_threshold(g: SequentialGate, base: Rows, concurrent: Rows) -> tuple[float, str] | None:
    """The incumbent's latency quantile that both samples are counted against.

    The margin (`null_odds`) is calibrated for a threshold at the incumbent's own quantile. Mirroring
    every request to the standby adds load, which moves the pre-rollout quantile deep into today's
    lower tail, where a small measurement asymmetry between the paths becomes large odds. Shadow
    gates therefore take the threshold from the incumbent's first requests under shadow load.
    """
    need = max(50, math.ceil(5 / (1 - g.quantile)))
    sources = ((concurrent.head(need), "shadow-load"),) if g.channel == "shadow" else \
        ((base, "baseline"), (concurrent, "concurrent"))
    for rows, label in sources:
        if rows.n >= need:
            return float(np.quantile(rows.latency_ms, g.quantile)), label
    return None


def sequential(g: SequentialGate, rf: RequestFrame | None, ctx: EvalContext) -> Verdict:
    now = ctx.now
    start = sequential_start(g, ctx)
    nbins = max(1, math.ceil((now - start) / g.bin))
    need = min_samples(g)
    extra: dict[str, float | str] = {}
    if g.method == "cusum":
        return _cusum(g, rf, ctx, start, nbins)
    c = canary(rf, start, now, ctx, channel=g.channel)
    cache = ctx.cache_for(g, start)
    stable_t = now - STABLE_AFTER_S
    if g.signal == "divergence":
        has = ~np.isnan(c.divergence)
        samples = {"compared": int(has.sum())}
        ncan = int(has.sum())
        counts = _counts(cache, ("div", g.tolerance), start, g.bin, nbins, stable_t,
                         [(c.ts[has], c.divergence[has] > g.tolerance)])
        res = seq.one_sample_msprt(counts[0], counts[1], g.max_rate, g.alpha, cache=cache)
        extra = {"max_rate": g.max_rate, "tolerance": g.tolerance}
    else:
        i = incumbent(rf, start, now)
        if g.signal == "errors":
            ce, ie, ev_key = ~c.ok, ~i.ok, ("errors",)
        else:
            thr = cache.threshold if cache is not None and cache.threshold is not None else None
            if thr is None:
                thr = _latency_threshold(g, incumbent(rf, start - g.baseline, start), i)
                if cache is not None and thr is not None and thr[1] in FIXED_THRESHOLDS:
                    cache.threshold = thr
            if thr is None:
                return Verdict.make(g, "inconclusive", "too few incumbent latencies for a threshold", now,
                                    (start, now), {"canary": c.n, "incumbent": i.n})
            ce, ie, ev_key = c.latency_ms > thr[0], i.latency_ms > thr[0], ("latency", thr[0])
            extra = {"latency_threshold_ms": thr[0], "threshold_from": thr[1], "quantile": g.quantile,
                     "null_odds": g.null_odds, "channel": g.channel}
        counts = _counts(cache, ev_key, start, g.bin, nbins, stable_t, [(c.ts, ce), (i.ts, ie)])
        res = seq.two_sample_msprt(counts[0], counts[1], counts[2], counts[3], g.alpha, null_odds=g.null_odds,
                                   cache=cache)
        samples = {"canary": c.n, "incumbent": i.n}
        ncan = c.n
    values = {**res.as_values(), **extra, "alpha": g.alpha, "since": start}
    if res.crossed:
        at = start + (res.cross_bin + 1) * g.bin  # type: ignore[operator]
        return Verdict.make(g, "fail", f"{g.signal}: mixture LR crossed 1/alpha (log {res.log_m_max:.2f} >= "
                            f"{res.threshold:.2f}) at +{at - start:.1f}s", now, (start, now), samples,
                            crossed_at=min(at, now), **values)
    if ncan < need:
        return Verdict.make(g, "inconclusive", f"{ncan} canary samples < {need}, no alarm", now, (start, now),
                            samples, **values)
    return Verdict.make(g, "pass", f"{g.signal}: no evidence of regression (log LR {res.log_m:.2f} < "
                        f"{res.threshold:.2f})", now, (start, now), samples, **values)


def _cusum(g: SequentialGate, rf: RequestFrame | None, ctx: EvalContext, start: float, nbins: int) -> Verdict:
    now, standby = ctx.now, g.slot == "standby"
    rows = select(rf, start, now, standby=standby, channel=g.channel)
    if g.baseline_slot is not None and g.baseline_slot != g.slot:  # another slot's past: what it served live
        base = select(rf, start - g.baseline, start, standby=g.baseline_slot == "standby", channel="live")
    else:
        base = select(rf, start - g.baseline, start, standby=standby, channel=g.channel)
    samples = {g.slot: rows.n, "baseline": base.n}
    if g.signal == "errors":
        ev, p0 = ~rows.ok, (np.sum(~base.ok) + 0.5) / (base.n + 1)
        extra = {"baseline_rate": float(p0)}
    elif g.signal == "latency":
        if base.n < max(50, math.ceil(5 / (1 - g.quantile))):
            return Verdict.make(g, "inconclusive", f"baseline has {base.n} rows, too few for a threshold", now,
                                (start, now), samples)
        thr = float(np.quantile(base.latency_ms, g.quantile)) + g.margin_ms
        ev, p0 = rows.latency_ms > thr, 1 - g.quantile
        extra = {"latency_threshold_ms": thr}
    else:
        has = ~np.isnan(rows.divergence)
        rows = rows.where(has)
        ev, p0 = rows.divergence > g.tolerance, g.max_rate
        extra = {"max_rate": g.max_rate}
    if base.n < min_samples(g) and g.signal == "errors":
        return Verdict.make(g, "inconclusive", f"baseline has {base.n} rows < {min_samples(g)}", now,
                            (start, now), samples)
    n, x = seq.bin_counts(rows.ts, start, g.bin, nbins, ev)
    res = seq.cusum(n, x, float(p0), g.ratio, g.alpha)
    values = {**res.as_values(), **extra, "ratio": g.ratio}
    if res.crossed:
        return Verdict.make(g, "fail", f"CUSUM {res.log_m_max:.2f} >= {res.threshold:.2f}", now, (start, now),
                            samples, **values)
    if rows.n < min_samples(g):
        return Verdict.make(g, "inconclusive", f"{rows.n} samples < {min_samples(g)}", now, (start, now),
                            samples, **values)
    return Verdict.make(g, "pass", f"CUSUM {res.log_m:.2f} < {res.threshold:.2f}", now, (start, now), samples,
                        **values)


def drift(g: DriftGate, rf: RequestFrame | None, mf: MetricFrame, ctx: EvalContext) -> Verdict:
    now = ctx.now
    cur_w = (now - g.window, now)
    base_w = (now - g.offset - g.baseline_len, now - g.offset)
    if g.needs_requests():
        standby = None if g.slot is None else g.slot == "standby"
        cur = _request_values(select(rf, *cur_w, standby=standby, include_shadow=False), g.metric)
        base = _request_values(select(rf, *base_w, standby=standby, include_shadow=False), g.metric)
    else:
        ids = mf.matching(g.metric, g.labels)
        if not ids:
            return Verdict.make(g, "inconclusive", f"metric {g.metric} has no series", now, cur_w, {"current": 0})
        cur, base = mf.window(ids, *cur_w)[1], mf.window(ids, *base_w)[1]
    samples = {"current": cur.size, "baseline": base.size}
    need = min_samples(g)
    if min(cur.size, base.size) < need:
        return Verdict.make(g, "inconclusive", f"samples {cur.size}/{base.size} < {need}", now, cur_w, samples,
                            baseline_window=list(base_w))
    r = st.drift(cur, base, g.method, g.threshold, g.large_sample, g.bins)
    cmp = "p-value" if r.method == "ks" else "score"
    shown = r.p_value if r.method == "ks" else r.statistic
    reason = f"{r.method} {cmp} {shown:.4g} ({'drift' if r.drifted else 'no drift'} at {r.threshold:g})"
    return Verdict.make(g, "fail" if r.drifted else "pass", reason, now, cur_w, samples, method=r.method,
                        statistic=r.statistic, p_value=r.p_value, threshold=r.threshold,
                        baseline_window=list(base_w))


def staleness(g: StalenessGate, mf: MetricFrame, ctx: EvalContext) -> Verdict:
    now, w = ctx.now, (ctx.now - g.window, ctx.now)
    last = mf.last(mf.matching(g.metric_name, g.labels))
    if last is None:
        return Verdict.make(g, "inconclusive", f"no value of {g.metric_name} known", now, w, {"n": 0},
                            metric=g.metric_name)
    seen_at, v = last
    if g.signal in ("last_sync", "policy_age"):
        age = now - v
        bad = age > g.max_age  # type: ignore[operator]
        reason = f"{g.signal}: age {age:.0f}s {'>' if bad else '<='} {g.max_age:.0f}s"
        vals = {"age_s": age, "max_age_s": g.max_age}
    elif g.signal == "bundle_expiry":
        left = v - now
        bad = left < g.min_remaining  # type: ignore[operator]
        reason = f"bundle expires in {left:.0f}s ({'<' if bad else '>='} {g.min_remaining:.0f}s)"
        vals = {"remaining_s": left, "min_remaining_s": g.min_remaining}
    else:
        bad = v > g.max_divergence  # type: ignore[operator]
        reason = f"fleet divergence {v:.4g} {'>' if bad else '<='} {g.max_divergence:g}"
        vals = {"divergence": v, "max_divergence": g.max_divergence}
    return Verdict.make(g, "fail" if bad else "pass", reason, now, w, {"n": 1}, metric=g.metric_name,
                        value=v, seen_at=seen_at, **vals)


def _slot_parts(mf: MetricFrame, metric: str, role: str, bundle: str | None, start: float,
                end: float, extra: dict[str, str] | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per series, one slot's samples of `metric` in the window (the canary's narrowed to its bundle when known)."""
    labels = {**(extra or {}), "role": role, **({"bundle": bundle} if bundle and role == "standby" else {})}
    return [mf.window([sid], start, end) for sid in mf.matching(metric, labels)]


def _slot_series(mf: MetricFrame, metric: str, role: str, bundle: str | None, start: float,
                 end: float) -> tuple[np.ndarray, np.ndarray]:
    parts = _slot_parts(mf, metric, role, bundle, start, end)
    if not parts:
        return np.empty(0), np.empty(0)
    ts, val = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    o = np.argsort(ts, kind="stable")
    return ts[o], val[o]


def resource(g: ResourceGate, mf: MetricFrame, ctx: EvalContext) -> Verdict:
    now, start = ctx.now, ctx.now - g.window
    if g.signal == "memory_growth":
        ct, cv = _slot_series(mf, SLOT_MEMORY_METRIC, "standby", ctx.canary_bundle, start, now)
        it, iv = _slot_series(mf, SLOT_MEMORY_METRIC, "active", None, start, now)
        samples = {"canary": int(ct.size), "incumbent": int(it.size)}
        need = min_samples(g)
        if ct.size < need or ct[-1] - ct[0] < g.min_span:
            return Verdict.make(g, "inconclusive", f"canary memory: {ct.size} samples over "
                                f"{(ct[-1] - ct[0]) if ct.size else 0:.1f}s (need {need} over {g.min_span:g}s)",
                                now, (start, now), samples)
        slope = float(np.polyfit(ct - ct[0], cv / 2**20, 1)[0])
        base = float(np.polyfit(it - it[0], iv / 2**20, 1)[0]) if it.size >= need and it[-1] > it[0] else 0.0
        bad = slope > g.max_slope_mb_per_s and slope - base > g.max_slope_mb_per_s
        reason = (f"canary memory grows {slope:+.3g} MB/s vs incumbent {base:+.3g} MB/s "
                  f"({'>' if bad else '<='} {g.max_slope_mb_per_s:g} MB/s)")
        return Verdict.make(g, "fail" if bad else "pass", reason, now, (start, now), samples,
                            canary_slope_mb_per_s=slope, incumbent_slope_mb_per_s=base,
                            canary_rss_mb=float(cv[-1] / 2**20), max_slope_mb_per_s=g.max_slope_mb_per_s)
    per: dict[str, tuple[float, float]] = {}
    for who, role in (("canary", "standby"), ("incumbent", "active")):
        cpu, n = (sum(st.counter_increase(p[1]) for p in _slot_parts(mf, m, role, ctx.canary_bundle, start, now))
                  for m in (SLOT_CPU_METRIC, SLOT_INFERENCES_METRIC))
        per[who] = (cpu, n)
    samples = {k: int(v[1]) for k, v in per.items()}
    if min(samples.values()) < g.min_inferences:
        return Verdict.make(g, "inconclusive", f"inferences {samples['canary']}/{samples['incumbent']} < "
                            f"{g.min_inferences}", now, (start, now), samples)
    c_ms, i_ms = (per[k][0] / per[k][1] * 1000 for k in ("canary", "incumbent"))
    bad = c_ms - i_ms > g.max_increase_ms and c_ms > i_ms * g.max_ratio
    reason = (f"CPU per inference canary {c_ms:.3g} ms vs incumbent {i_ms:.3g} ms "
              f"({'beyond' if bad else 'within'} +{g.max_increase_ms:g} ms and x{g.max_ratio:g})")
    return Verdict.make(g, "fail" if bad else "pass", reason, now, (start, now), samples,
                        canary_cpu_ms=c_ms, incumbent_cpu_ms=i_ms)


def _server_counts(g: ServerGate, mf: MetricFrame, ctx: EvalContext, role: str) -> tuple[float, float, int, float]:
    """(numerator, denominator, denominator series, window start) of one slot role's counter increases."""
    start = ctx.now - g.window
    if role == "active":
        start = ctx.active_start(start)
    num_m, den_m = SERVER_SIGNALS[g.signal]

    def increase(metrics: tuple[str, ...]) -> tuple[float, int]:
        parts = [p for m in metrics for p in _slot_parts(mf, m, role, ctx.canary_bundle, start, ctx.now, g.labels)]
        return sum(st.counter_increase(v) for _, v in parts), len(parts)

    (num, _), (den, nseries) = increase(num_m), increase(den_m)
    return num, den, nseries, start


def server(g: ServerGate, mf: MetricFrame, ctx: EvalContext) -> Verdict:
    now = ctx.now
    num, den, nseries, start = _server_counts(g, mf, ctx, g.slot)
    what = "requests" if g.signal == "failure_ratio" else "successes"
    samples = {what: int(den), "series": nseries}
    if nseries == 0:
        return Verdict.make(g, "inconclusive", f"no {SERVER_SIGNALS[g.signal][1][0]} series for the {g.slot} slot "
                            "(scrape.targets[].slot names the slot a target serves)", now, (start, now), samples)
    need = min_samples(g)
    if den < need:
        return Verdict.make(g, "inconclusive", f"{den:.0f} {what} in the window < {need}", now, (start, now), samples,
                            min_samples=need)
    value = num / den
    unit = "" if g.signal == "failure_ratio" else " us per successful request"
    extra: dict[str, float] = {}
    bad = value > g.limit
    reason = f"{g.slot} {g.signal} {value:.6g}{unit} {'>' if bad else '<='} {g.limit:g} ({num:.0f}/{den:.0f})"
    if g.max_ratio is not None:  # a regression against the incumbent's own server, beyond the floor `limit`
        inum, iden, _, _ = _server_counts(g, mf, ctx, "active")
        samples["incumbent_" + what] = int(iden)
        if iden < need:
            return Verdict.make(g, "inconclusive", f"incumbent: {iden:.0f} {what} in the window < {need}", now,
                                (start, now), samples, min_samples=need, observed=value)
        base = inum / iden
        ratio = value / base if base > 0 else (math.inf if value > 0 else 1.0)
        extra = {"incumbent": base, "ratio": ratio, "max_ratio": g.max_ratio}
        bad = bad and ratio > g.max_ratio
        reason += (f"; x{ratio:.3g} the incumbent's {base:.6g} ({'>' if ratio > g.max_ratio else '<='} "
                   f"x{g.max_ratio:g})")
    return Verdict.make(g, "fail" if bad else "pass", reason, now, (start, now), samples, observed=value,
                        bound=g.limit, numerator=num, denominator=den, signal=g.signal, **extra)
