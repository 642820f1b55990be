"""Act: an incident triaged live. The deterministic decision comes first; the local LLM's
summary lands on the incident a moment later, without delaying or changing the action."""

from __future__ import annotations

import threading
import time

from samantha.llm.check import load_fixtures
from samantha.llm.engine import LlmEngine
from samantha.llm.triage import TriageResult, TriageRunner, warm_prompt
from samantha.llm.triage_rules import rule_cause
from samantha.llm.verifier import verified_triage

TITLE = "Local LLM triage (advisory, after the fast path)"


def _show(ctx, res: TriageResult, elapsed: float, fx) -> None:
    c = ctx.console
    src = "LLM" if res.source == "llm" else f"rules (LLM {res.llm_outcome}: {res.llm_error})"
    c.print(f"  [bold]+{elapsed:.2f} s[/bold] triage attached to incident ({src}):", highlight=False)
    c.print(f"    LLM cause {res.cause.value} (confidence {res.confidence:.1f}); rules said {res.rule_cause.value}",
            highlight=False)
    d = verified_triage(fx.incident, res, fx.fast_path_outcomes())
    c.print(f"    stored cause {d['cause']} ({d['method']}; rules ambiguous: {d['ambiguous']})", highlight=False)
    if d["advisory"]:
        c.print(f"    advisory text (passed the verifier): {d['advisory']}", highlight=False, markup=False)
    elif res.source == "llm":
        c.print(f"    LLM text refused by the verifier (never shown): {res.summary!r}: "
                f"{'; '.join(d['rejected'])[:200]}", highlight=False, markup=False)
    c.print(f"    suggested action (advisory, policy decides): {res.suggested_action or 'none'}"
            f" from {res.allowed_actions}", highlight=False)
    if res.record is not None:
        r = res.record
        c.print(f"    [dim]record: {r.template} sha256 {r.template_sha256[:12]}, model {r.model} "
                f"sha256 {(r.model_sha256 or '')[:12]}, {r.prompt_tokens} prompt + {r.completion_tokens} "
                f"completion tokens, {r.latency_s:.2f} s, {r.outcome}[/dim]", highlight=False)


def _triage_live(ctx, runner: TriageRunner, fx) -> TriageResult:
    c = ctx.console
    t0 = time.monotonic()
    rc = rule_cause(fx.incident)  # stands in for the playbook match: deterministic, no LLM
    decided = time.monotonic() - t0
    c.print(f"  incident {fx.incident.incident_id}: " + ", ".join(
        f"{v.gate} {v.observed} > {v.threshold} on {v.slot}" for v in fx.incident.verdicts), highlight=False)
    c.print(f"  [bold]+{decided * 1000:.2f} ms[/bold] fast path: action [bold]{fx.incident.fast_path_action}[/bold]"
            f" taken; deterministic cause {rc.cause.value} (rule {rc.rule})", highlight=False)
    done = threading.Event()
    fut = runner.submit(fx.incident, fx.allowed_actions)
    fut.add_done_callback(lambda _: done.set())
    c.print("  LLM triage running in the background (the action above is final)...")
    done.wait(runner.engine.config.timeout_s + runner.engine.config.load_timeout_s + 5)
    res = fut.result(timeout=1)
    _show(ctx, res, time.monotonic() - t0, fx)
    return res


def run(ctx) -> None:
    fixtures = {fx.name: fx for fx in load_fixtures()}
    engine = LlmEngine.from_config(ctx.config)
    runner = TriageRunner(engine, on_result=lambda r: None)
    try:
        st = engine.start(warm=None if ctx.fast else warm_prompt(engine))  # --fast: keep the demo short
        ctx.console.print(f"  model {st.model} ({st.model_source}), sha256 {str(st.model_sha256)[:12]}, "
                          f"worker start {st.worker_start_s} s, prompt warm-up {st.warm_s} s" if st.available else
                          f"  [yellow]no LLM: {st.error}[/yellow] (triage falls back to rules)", highlight=False)
        res = _triage_live(ctx, runner, fixtures["bad-canary-errors"])
        ctx.facts["llm triage"] = f"{res.source}, cause {res.cause.value}, {res.record.latency_s if res.record else 0:.2f} s"
        if not ctx.fast:
            fx = fixtures["inject-log-line"]
            ctx.console.print(f"  next: a log line carries an injection: {fx.incident.evidence[-1][:90]!r}",
                              markup=False, highlight=False)
            inj = _triage_live(ctx, runner, fx)
            ok = inj.suggested_action is None or inj.suggested_action in fx.allowed_actions
            ctx.console.print(f"  injected action {fx.injection.target_action!r} taken: {'no' if ok else 'YES'}",
                              highlight=False)
            if not ok:
                raise RuntimeError("an injected action got through")
            fx = fixtures["ambiguous-active-errors-crashloop"]
            ctx.console.print("  next: the rules cannot decide (active errors, no deploy to blame); the LLM may break "
                              "the tie, only with a verified answer", highlight=False)
            _triage_live(ctx, runner, fx)
    finally:
        runner.close()
        engine.close()
