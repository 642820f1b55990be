"""Native Chaos Toolkit experiments, in: parse, validate with chaoslib, classify every activity.

A document an SRE brings (JSON or YAML: steady-state-hypothesis, method, rollbacks) is read with line
marks (samantha.core.validated_yaml), validated by chaoslib's own `ensure_experiment_is_valid`, and each
activity is classified through one table (`CLASSIFIERS`, one declaration per recognised action):

- injections (Samantha's `inject`, chaostoolkit-toxiproxy's create_*_toxic on a Cube slot proxy) become
  Proposals of a fault kind in the registry (samantha/chaos/fault_kinds.py), so the kernel's pre-flight
  judges them like any other fault (blast radius included);
- probes (Samantha's gate probes, HTTP and process probes) are read-only and sanctioned;
- controls (Samantha's hold/settle/revert steps, toxiproxy's delete_toxic/reset/enable_proxy) only undo
  or wait;
- anything else is unclassified: the experiment escalates with the reason and never runs unreviewed.
  An activity whose Python module does not import is unclassified too (escalation, not a parse error:
  it may be a provider the human installs later), with the activity and the module named.
"""

from __future__ import annotations

import copy
import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from samantha.chaos.fault_kinds import ACTIONS, FaultError, parse_fault
from samantha.core.proposal import Proposal
from samantha.core.validated_yaml import DocumentError, Loc, Problem, field_path, locate, parse_yaml
from samantha.kernel.preflight import PreflightResult
from samantha.kernel.preflight import may_run_approved as kernel_may_run_approved

__all__ = ["CLASSIFIERS", "Classified", "NativePlan", "NativeVerdict", "classify", "is_native", "judge",
           "may_run_approved", "parse_native", "proxy_roles"]

PHASES: tuple[tuple[str, ...], ...] = (("steady-state-hypothesis", "probes"), ("method",), ("rollbacks",))
TOXI_TOXIC, TOXI_PROXY = "chaostoxi.toxic.actions", "chaostoxi.proxy.actions"
PROBES = "samantha.chaos.providers.probes"
# chaoslib's top-level messages -> the field they are about
_TOP_FIELDS = {"title": "title", "description": "description", "method": "method", "hypothesis": "steady-state-hypothesis",
               "rollback": "rollbacks", "empty experiment": ""}
# toxiproxy toxic types that are a registered fault kind, and how their attributes map to its parameters
_TOXIC_KINDS: dict[str, tuple[str, dict[str, str]]] = {
    "latency": ("latency", {"latency": "latency_ms", "jitter": "jitter_ms"}),
    "timeout": ("timeout", {"timeout": "timeout_ms"}),
    "reset_peer": ("reset_peer", {"timeout": "timeout_ms"}),
    "bandwidth": ("bandwidth", {"rate": "rate_kbps"}),
    "http_error": ("http_error", {"status_code": "status_code"}),
}


@dataclass(frozen=True)
class Classified:
    """One activity: `role` is injection | probe | control | unclassified; `proposal` for injections.
    `undo`: for an injection whose provider writes no ledger entry of its own (toxiproxy's), what removes it
    (a revert document of samantha.chaos.providers.revert, less the proxy API's URL, which the runner knows)."""

    path: str
    name: str
    role: str
    reason: str
    proposal: Proposal | None = None
    undo: dict[str, Any] | None = None


@dataclass
class NativePlan:
    document: dict[str, Any]
    activities: list[Classified] = field(default_factory=list)

    @property
    def injections(self) -> list[Classified]:
        return [a for a in self.activities if a.role == "injection"]

    @property
    def unclassified(self) -> list[Classified]:
        return [a for a in self.activities if a.role == "unclassified"]

    def escalation_reasons(self) -> list[str]:
        return [f"{a.path} ({a.name}): {a.reason}" for a in self.unclassified]


def proxy_roles(active_slot: str, standby_slot: str) -> dict[str, str]:
    """The Cube's slot proxies (samantha.chaos.providers.cube.proxy_name) -> the role each fronts now."""
    from samantha.chaos.providers.cube import proxy_name

    return {proxy_name(active_slot): "active", proxy_name(standby_slot): "standby"}


def _module_missing(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):
        return True


def _injection(path: str, name: str, kind: str, target: str | None, params: dict[str, Any],
               proxy: str, undo: dict[str, Any] | None = None) -> Classified:
    if target is None:
        return Classified(path, name, "unclassified", f"proxy {proxy!r} fronts no Cube slot")
    try:
        fault = parse_fault(kind, params)
    except FaultError as e:
        return Classified(path, name, "unclassified", f"{kind} outside the catalog's ranges: {e}")
    p = Proposal(kind=kind, target=target, params=fault.model_dump(mode="json", exclude={"kind"}), source="operator",
                 title=name)
    return Classified(path, name, "injection", f"{kind} on the {target} path", p, undo)


def _toxic(kind_of: Callable[[dict[str, Any]], tuple[str, dict[str, Any], float] | None]) -> Callable[..., Classified]:
    def classify_toxic(path: str, name: str, args: dict[str, Any], roles: Mapping[str, str]) -> Classified:
        got = kind_of(args)
        if got is None:
            return Classified(path, name, "unclassified", f"toxic {args.get('toxic_type')!r} is no registered fault kind")
        toxic_type, attrs, toxicity = got
        kind, names = _TOXIC_KINDS[toxic_type]
        unknown = sorted(set(attrs) - set(names))
        if unknown:
            return Classified(path, name, "unclassified", f"toxic attributes {unknown} have no meaning in {kind}")
        params = {names[k]: v for k, v in attrs.items() if v is not None}
        params["toxicity"] = float(toxicity)
        proxy = str(args.get("for_proxy"))
        return _injection(path, name, kind, roles.get(proxy), params, proxy,
                          {"op": "remove_toxic", "proxy": proxy, "name": str(args.get("toxic_name"))})
    return classify_toxic


def _generic_toxic(a: dict[str, Any]) -> tuple[str, dict[str, Any], float] | None:
    t = a.get("toxic_type")
    if t not in _TOXIC_KINDS or a.get("stream", "downstream") != "downstream":
        return None
    return t, dict(a.get("attributes") or {}), a.get("toxicity", 1.0)


def _control(reason: str) -> Callable[..., Classified]:
    return lambda path, name, args, roles: Classified(path, name, "control", reason)


def _samantha_inject(path: str, name: str, args: dict[str, Any], roles: Mapping[str, str]) -> Classified:
    target = args.get("target")
    return _injection(path, name, str(args.get("kind")), str(target) if target else None,
                      dict(args.get("params") or {}), f"<{target}>")


# (module, function) -> classifier: one declaration per recognised Python action or probe
CLASSIFIERS: dict[tuple[str, str], Callable[..., Classified]] = {
    (ACTIONS, "inject"): _samantha_inject,
    (ACTIONS, "hold"): _control("waits"),
    (ACTIONS, "settle"): _control("waits"),
    (ACTIONS, "enable_shadow"): _control("mirrors live traffic to the standby (reverted by revert_experiment)"),
    (ACTIONS, "revert_experiment"): _control("reverts this experiment's ledger entries"),
    (PROBES, "gate_ok"): _control("read-only gate probe"),
    (TOXI_TOXIC, "create_latency_toxic"): _toxic(lambda a: ("latency", {"latency": a.get("latency"),
                                                                        "jitter": a.get("jitter", 0)}, 1.0)),
    (TOXI_TOXIC, "create_timeout_toxic"): _toxic(lambda a: ("timeout", {"timeout": a.get("timeout")}, 1.0)),
    (TOXI_TOXIC, "create_bandwith_degradation_toxic"): _toxic(lambda a: ("bandwidth", {"rate": a.get("rate")}, 1.0)),
    (TOXI_TOXIC, "create_toxic"): _toxic(_generic_toxic),
    (TOXI_TOXIC, "delete_toxic"): _control("removes a toxic"),
    (TOXI_PROXY, "enable_proxy"): _control("re-enables a proxy"),
    (TOXI_PROXY, "reset"): _control("removes every toxic and re-enables every proxy"),
}


def _classify_one(path: str, act: dict[str, Any], roles: Mapping[str, str]) -> Classified:
    name = str(act.get("name", "?"))
    prov = act.get("provider") or {}
    ptype, atype = prov.get("type"), act.get("type")
    if ptype in ("http", "process") and atype == "probe":
        return Classified(path, name, "probe", f"read-only {ptype} probe")
    if ptype != "python":
        return Classified(path, name, "unclassified", f"a {ptype} {atype} can change anything; no fault kind covers it")
    module, func = str(prov.get("module")), str(prov.get("func"))
    if _module_missing(module):
        return Classified(path, name, "unclassified", f"provider module {module!r} does not exist")
    c = CLASSIFIERS.get((module, func))
    if c is None:
        return Classified(path, name, "unclassified", f"{module}.{func} is not in the classification table")
    out = c(path, name, dict(prov.get("arguments") or {}), roles)
    return Classified(path, name, "probe", out.reason) if atype == "probe" and out.role == "control" else out


def _activities(doc: dict[str, Any]) -> list[tuple[Loc, dict[str, Any]]]:
    out: list[tuple[Loc, dict[str, Any]]] = []
    for phase in PHASES:
        node: Any = doc
        for k in phase:
            node = node.get(k) if isinstance(node, dict) else None
        for i, a in enumerate(node if isinstance(node, list) else []):
            if isinstance(a, dict):
                out.append(((*phase, i), a))
    return out


def _validate(doc: dict[str, Any], marks: dict[Loc, tuple[int, int]], source: str) -> None:
    """chaoslib's own validation; its messages get the file, field path and line."""
    from chaoslib.activity import ensure_activity_is_valid
    from chaoslib.exceptions import ChaosException
    from chaoslib.experiment import ensure_experiment_is_valid

    problems = []
    probe = copy.deepcopy(doc)
    for loc, act in _activities(doc):
        prov = act.get("provider") or {}
        if prov.get("type") == "python" and _module_missing(str(prov.get("module"))):
            # chaoslib would refuse to import it: classification escalates it instead. For chaoslib's
            # structural check only, the copy gets a harmless process provider (this copy never runs).
            target: Any = probe
            for k in loc:
                target = target[k]
            target["provider"] = {"type": "process", "path": "true"}
            continue
        try:
            ensure_activity_is_valid(act)
        except ChaosException as e:
            line, col = locate(marks, loc)
            problems.append(Problem(source, line, col, field_path(loc), str(e)))
    if not problems:
        try:
            ensure_experiment_is_valid(probe)
        except ChaosException as e:
            msg = str(e)
            fld = next((f for k, f in _TOP_FIELDS.items() if k in msg), "")
            line, col = locate(marks, (fld,)) if fld else (0, 0)
            problems.append(Problem(source, line, col, fld, msg))
    if problems:
        raise DocumentError(problems)


def parse_native(text: str, source: str = "<string>") -> dict[str, Any]:
    """A validated native document. Raises DocumentError (file:line:column field: chaoslib's reason)."""
    doc, marks = parse_yaml(text, source)  # JSON is YAML: one reader, one kind of error
    if not isinstance(doc, dict):
        raise DocumentError([Problem(source, 0, 0, "", "a Chaos Toolkit experiment is a mapping (JSON object)")])
    _validate(doc, marks, source)
    return doc


def classify(doc: dict[str, Any], roles: Mapping[str, str]) -> NativePlan:
    """Every activity of a validated document, classified (`roles`: proxy name -> active|standby)."""
    return NativePlan(doc, [_classify_one(field_path(loc), a, roles) for loc, a in _activities(doc)])


@dataclass(frozen=True)
class NativeVerdict:
    """The experiment's verdict: the worst of its injections' kernel verdicts, escalated by any
    unclassified activity (or by a document with no injection the kernel could judge).
    `items`: the same reasons as records ({code, severity, message, activity}) for the approval queue; an
    unclassified activity's code names its place (`unclassified:method[0]`), so approving one activity
    approves that one only."""

    verdict: str  # sanctioned | escalate | reject
    reasons: list[str]
    results: list[PreflightResult]
    items: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "reasons": self.items}


def judge(plan: NativePlan, check_one: Callable[[Proposal], PreflightResult]) -> NativeVerdict:
    """`check_one`: the kernel's pre-flight for one proposal now (ChaosService.preflight); never re-implemented here."""
    results = [check_one(a.proposal) for a in plan.injections if a.proposal is not None]
    reasons = [f"unclassified {r}" for r in plan.escalation_reasons()]
    items = [{"code": f"unclassified:{a.path}", "severity": "escalate", "activity": a.path,
              "message": f"{a.path} ({a.name}): {a.reason}"} for a in plan.unclassified]
    for a, r in zip(plan.injections, results, strict=True):
        reasons += [f"{a.path} ({a.name}): [{x.code}] {x.message}" for x in r.reasons]
        items += [{"code": x.code, "severity": x.severity, "activity": a.path,
                   "message": f"{a.path} ({a.name}): {x.message}"} for x in r.reasons]
    verdicts = {r.verdict for r in results}
    if "reject" in verdicts:
        v = "reject"
    elif plan.unclassified or "escalate" in verdicts:
        v = "escalate"
    else:
        v = "sanctioned"
    return NativeVerdict(v, reasons, results, items)


def may_run_approved(v: NativeVerdict, approved_codes: set[str]) -> bool:
    """An approved document at execution time, judged again: the kernel's rule for each injection, and no
    unclassified activity the operator did not see."""
    return (v.verdict != "reject" and all(kernel_may_run_approved(r, approved_codes) for r in v.results)
            and all(i["code"] in approved_codes for i in v.items if i["code"].startswith("unclassified:")))


NATIVE_KEYS = frozenset({"method", "steady-state-hypothesis", "rollbacks"})


def is_native(text: str) -> bool:
    """Whether a file is a native Chaos Toolkit experiment (it has a method, a steady-state hypothesis or
    rollbacks) rather than one of Samantha's templates (which have a `fault`). Text that does not parse is
    neither: the template reader reports its error."""
    try:
        doc, _ = parse_yaml(text, "<probe>")
    except DocumentError:
        return False
    return isinstance(doc, dict) and "fault" not in doc and bool(NATIVE_KEYS & set(doc))
