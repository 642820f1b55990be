"""The twin's control API: the CubeRuntime protocol over HTTP, served by the router process.

Mutations are serialised by one lock, recorded by request id (a repeated id gets
the recorded answer, refusals included, and is not applied again) and persisted
to a state file so quarantine and weights survive a router restart.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from pydantic import BaseModel, ValidationError

from samantha.core.signing import canonical_json
from samantha.cube.bundle import BundleError, load_trusted_keys
from samantha.cube.protocol import (
    CubeState,
    FlipRequest,
    LoadRequest,
    QuarantineEntry,
    QuarantineRequest,
    ReleaseRequest,
    SafeModeRequest,
    ShadowRequest,
    SlotName,
    SlotState,
    Weights,
    WeightsRequest,
)
from samantha.cube.slot_adapter import SlotLoadError, restore_slot
from samantha.twin.http import Request, Response, Upstream, error_response, json_response
from samantha.twin.router import Link, Router, RouteTable
from samantha.twin.toy_bundle import verify_toy_bundle

MAX_REMEMBERED = 10_000
PERSISTED_REQUESTS = 1_000


class Refused(Exception):
    def __init__(self, status: int, code: str, reason: str, field: str | None = None):
        self.status, self.code, self.reason, self.field = status, code, reason, field
        super().__init__(reason)


@dataclass
class SlotRecord:
    name: SlotName
    data: Upstream  # the data path (through the proxy when there is one)
    control_url: str  # direct, for loads: a fault on the data path must not block a rollback
    bundle_id: str | None = None
    bundle_name: str | None = None
    bundle_version: str | None = None
    expires_at: float | None = None
    healthy: bool = False
    health_detail: str | None = "not checked yet"
    fault_knobs: list[str] = field(default_factory=list)
    epoch: int = 0  # bumped by each load: a health answer from before it is stale
    adapter: Any = None  # a cube.slot_adapter.SlotAdapter (a real server); None: the twin's toy slot
    contract: Any = None  # the loaded model's declared outputs, for the router's answer check
    bundle_path: str | None = None  # what an adapter slot last loaded, reloaded after a runtime restart


class CubeControl:
    def __init__(self, router: Router, slots: dict[SlotName, SlotRecord], *, trusted_path: Path,
                 state_file: Path | None, bundles_dir: Path | None = None, health_interval_s: float = 0.5):
        self.router = router
        self.slots = slots
        self.trusted_path = trusted_path
        self.state_file = state_file
        self.bundles_dir = bundles_dir
        self.health_interval_s = health_interval_s
        self.active: SlotName = "A"
        self.standby_weight = 0.0
        self.shadow = False
        self.safe_mode = False
        self.quarantine: dict[str, QuarantineEntry] = {}
        self.generation = 0
        self.requests: OrderedDict[str, tuple[str, int, bytes]] = OrderedDict()
        self.lock = asyncio.Lock()
        self.http = httpx.AsyncClient(timeout=30.0)
        self._restore()

    # -- state -------------------------------------------------------------
    @property
    def standby(self) -> SlotName:
        return "B" if self.active == "A" else "A"

    def state(self) -> CubeState:
        now = time.time()
        slots = []
        for name in ("A", "B"):
            s = self.slots[name]
            loaded = s.bundle_id is not None
            slots.append(SlotState(name=name, role="active" if name == self.active else "standby",
                                   bundle_id=s.bundle_id, bundle_name=s.bundle_name, bundle_version=s.bundle_version,
                                   bundle_expires_at=s.expires_at if loaded else None, loaded=loaded, verified=loaded and (s.expires_at is None or now < s.expires_at),
                                   healthy=s.healthy, health_detail=s.health_detail, fault_knobs=s.fault_knobs))
        w = self.effective_weight()
        return CubeState(slots=slots, active=self.active, weights=Weights(active=100 - w, standby=w),
                         shadow=self.shadow and self._standby_routable(), quarantine=list(self.quarantine.values()),
                         safe_mode=self.safe_mode, generation=self.generation, ts=now)

    def _standby_routable(self) -> bool:
        s = self.slots[self.standby]
        return s.bundle_id is not None and s.bundle_id not in self.quarantine and not self.safe_mode

    def effective_weight(self) -> float:
        return self.standby_weight if self._standby_routable() else 0.0

    def publish(self) -> None:
        """Build the route table from the state and swap it in with one assignment."""
        a, s = self.slots[self.active], self.slots[self.standby]
        standby = Link(s.name, s.data, s.bundle_id, s.contract) if self._standby_routable() else None
        self.router.route = RouteTable(active=Link(a.name, a.data, a.bundle_id, a.contract), standby=standby,
                                       standby_weight=self.effective_weight(), shadow=self.shadow and standby is not None)

    def _persist(self) -> None:
        if self.state_file is None:
            return
        doc = {"active": self.active, "standby_weight": self.standby_weight, "shadow": self.shadow,
               "safe_mode": self.safe_mode, "generation": self.generation,
               "quarantine": [q.model_dump() for q in self.quarantine.values()],
               "bundle_paths": {n: s.bundle_path for n, s in self.slots.items() if s.adapter is not None},
               "requests": [[rid, fp, st, body.decode()] for rid, (fp, st, body)
                            in list(self.requests.items())[-PERSISTED_REQUESTS:]]}
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, self.state_file)

    def _restore(self) -> None:
        if self.state_file is None or not self.state_file.exists():
            return
        doc = json.loads(self.state_file.read_text())
        self.active = doc["active"]
        self.standby_weight = doc["standby_weight"]
        self.shadow, self.safe_mode, self.generation = doc["shadow"], doc["safe_mode"], doc["generation"]
        self.quarantine = {q["bundle_id"]: QuarantineEntry.model_validate(q) for q in doc["quarantine"]}
        for rid, fp, st, body in doc["requests"]:
            self.requests[rid] = (fp, st, body.encode())

    # -- health ------------------------------------------------------------
    async def health_loop(self) -> None:
        while True:
            await asyncio.gather(*(self._check(s) for s in self.slots.values()))
            self.publish()
            await asyncio.sleep(self.health_interval_s)

    async def restore_slots(self) -> None:
        """Adapter slots reload what they last served (the twin's toy slots restore themselves)."""
        if self.state_file is None or not self.state_file.exists():
            return
        paths = json.loads(self.state_file.read_text()).get("bundle_paths") or {}
        for name, s in self.slots.items():
            got = await restore_slot(s.adapter, Path(paths[name])) if s.adapter and paths.get(name) else None
            if got is not None:
                vb, loaded = got
                self._set_bundle(s, {"bundle_id": vb.bundle_id, "label": vb.manifest.label,
                                     "expires_at": vb.manifest.expires_at.timestamp()})
                s.contract, s.bundle_path, s.fault_knobs = loaded.contract, str(vb.path), vb.profile.active_knobs()
        self.publish()

    async def _check(self, s: SlotRecord) -> None:
        epoch = s.epoch
        if s.adapter is not None:
            healthy, detail = await s.adapter.health()
            if epoch == s.epoch:
                s.healthy, s.health_detail = healthy, detail
            return
        try:
            status, body = await s.data.request("GET", "/health", timeout=2.0)
            doc = orjson.loads(body)
        except Exception as e:  # any failure to answer is unhealthy, with the reason
            s.healthy, s.health_detail = False, f"{type(e).__name__}: {e}"
            return
        if epoch != s.epoch:
            return
        s.healthy = status == 200 and bool(doc.get("ok"))
        s.health_detail = None if s.healthy else doc.get("reason", f"health answered {status}")
        if doc.get("bundle_id"):
            self._set_bundle(s, doc)
            self._report_process(s, doc)
        s.fault_knobs = doc.get("fault_knobs", [])

    def _report_process(self, s: SlotRecord, doc: dict[str, Any]) -> None:
        """The slot process's own resource figures as telemetry samples: memory, CPU time, inferences served
        (the resource gates judge a canary's leak slope and CPU per inference against the incumbent's)."""
        labels = {"slot": s.name, "role": "active" if s.name == self.active else "standby",
                  "bundle": str(doc["bundle_id"])}
        pusher, ts = self.router.pusher, time.time()
        for metric, key in (("slot_memory_rss_bytes", "rss_bytes"), ("slot_cpu_seconds_total", "cpu_s"),
                            ("slot_inferences_total", "served")):
            if isinstance(doc.get(key), int | float):
                pusher.add_sample(metric, labels, float(doc[key]), ts)

    @staticmethod
    def _set_bundle(s: SlotRecord, doc: dict[str, Any]) -> None:
        s.bundle_id = doc["bundle_id"]
        name, _, version = doc.get("label", "").partition("@")
        s.bundle_name, s.bundle_version = name or None, version or None
        s.expires_at = doc.get("expires_at")

    # -- mutations -----------------------------------------------------------
    async def mutate(self, op: str, model: type[BaseModel], body: bytes) -> Response:
        try:
            raw = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            return error_response(400, "bad_json", f"body is not JSON: {e}")
        if not isinstance(raw, dict):
            return error_response(400, "bad_json", "body must be a JSON object")
        try:
            req = model.model_validate(raw)
        except ValidationError as e:
            err = e.errors()[0]
            return error_response(422, "invalid", err["msg"], ".".join(map(str, err["loc"])) or None)
        rid = req.request_id  # type: ignore[attr-defined]
        fp = f"{op}:{canonical_json({k: v for k, v in raw.items() if k != 'request_id'}).decode()}"
        async with self.lock:
            seen = self.requests.get(rid)
            if seen is not None:
                if seen[0] != fp:
                    return error_response(409, "request_id_reused",
                                          f"request id {rid} was used for a different call ({seen[0].split(':')[0]})",
                                          "request_id")
                doc = orjson.loads(seen[2])
                if "state" in doc:
                    doc["applied"] = False
                return json_response(doc, seen[1])
            try:
                await getattr(self, "_op_" + op.replace("-", "_"))(req)
                self.generation += 1
                self.publish()
                resp = json_response({"request_id": rid, "applied": True, "state": self.state().model_dump(mode="json")})
            except Refused as r:
                resp = error_response(r.status, r.code, r.reason, r.field)
            if resp.status != 503:  # "could not reach the slot" may succeed on retry with the same id
                self.requests[rid] = (fp, resp.status, resp.body)
                while len(self.requests) > MAX_REMEMBERED:
                    self.requests.popitem(last=False)
                self._persist()
            return resp

    def _resolve(self, bundle: str) -> Path:
        p = Path(bundle)
        if not p.is_absolute() and self.bundles_dir is not None:
            p = self.bundles_dir / p
        return p

    async def _op_load(self, req: LoadRequest) -> None:
        if self.safe_mode:
            raise Refused(409, "safe_mode", "the Cube is in safe mode: no loads until it is turned off")
        s = self.slots[self.standby]
        try:
            vb = s.adapter.verify(self._resolve(req.bundle)) if s.adapter is not None else \
                verify_toy_bundle(self._resolve(req.bundle), load_trusted_keys(self.trusted_path))
        except BundleError as e:
            raise Refused(422, e.kind, str(e), "bundle") from None
        if vb.bundle_id in self.quarantine:
            q = self.quarantine[vb.bundle_id]
            raise Refused(409, "quarantined", f"bundle {vb.manifest.label} ({vb.bundle_id[:16]}) is quarantined: "
                          f"{q.reason or 'no reason given'}", "bundle")
        self.standby_weight = 0.0  # a new standby starts with no traffic; rollouts begin again
        self.publish()
        if s.adapter is not None:
            await self._adapter_load(s, vb)
            return
        try:
            r = await self.http.post(f"{s.control_url}/load", json={"path": str(vb.path)})
        except httpx.HTTPError as e:
            raise Refused(503, "slot_unavailable", f"slot {s.name} did not answer the load: {e}") from None
        if r.status_code != 200:
            err = r.json().get("error", {}) if r.headers.get("content-type", "").startswith("application/json") else {}
            raise Refused(422 if r.status_code == 422 else 503, err.get("code", "slot_refused"),
                          f"slot {s.name} refused the load: {err.get('reason', r.text[:200])}", "bundle")
        s.epoch += 1
        self._set_bundle(s, {"bundle_id": vb.bundle_id, "label": vb.manifest.label,
                             "expires_at": vb.manifest.expires_at.timestamp()})
        s.fault_knobs = vb.profile.active_knobs()

    async def _adapter_load(self, s: SlotRecord, vb: Any) -> None:
        """The standby goes empty first (no traffic, no flip), then takes the bundle only once it is ready."""
        s.epoch += 1
        s.bundle_id = s.bundle_name = s.bundle_version = s.expires_at = s.contract = s.bundle_path = None
        s.healthy, s.health_detail, s.fault_knobs = False, "loading", []
        self.publish()
        try:
            loaded = await s.adapter.load(vb)
        except SlotLoadError as e:
            s.health_detail = f"load failed: {e.reason}"
            raise Refused(e.status, e.code, f"slot {s.name}: {e.reason}", e.field) from None
        s.epoch += 1
        self._set_bundle(s, {"bundle_id": vb.bundle_id, "label": vb.manifest.label,
                             "expires_at": vb.manifest.expires_at.timestamp()})
        s.contract, s.bundle_path, s.fault_knobs = loaded.contract, str(vb.path), vb.profile.active_knobs()
        s.healthy, s.health_detail = True, None

    async def _op_weights(self, req: WeightsRequest) -> None:
        if req.standby > 0:
            if self.safe_mode:
                raise Refused(409, "safe_mode", "the Cube is in safe mode: standby weight must stay 0", "standby")
            s = self.slots[self.standby]
            if s.bundle_id is None:
                raise Refused(409, "standby_empty", "the standby slot has no bundle", "standby")
            if s.bundle_id in self.quarantine:
                raise Refused(409, "quarantined", f"the standby bundle {s.bundle_id[:16]} is quarantined", "standby")
        self.standby_weight = req.standby

    async def _op_flip(self, req: FlipRequest) -> None:
        s = self.slots[self.standby]
        if s.bundle_id is None:
            raise Refused(409, "standby_empty", "the standby slot has no bundle to promote")
        if s.bundle_id in self.quarantine:
            raise Refused(409, "quarantined", f"the standby bundle {s.bundle_id[:16]} is quarantined")
        if not s.healthy:
            raise Refused(409, "standby_unhealthy", f"the standby slot is unhealthy: {s.health_detail}")
        self.active = self.standby
        self.standby_weight = 0.0  # all traffic to the new active; the old one stays as the rollback

    async def _op_shadow(self, req: ShadowRequest) -> None:
        if req.enabled and self.safe_mode:
            raise Refused(409, "safe_mode", "the Cube is in safe mode: no shadow traffic", "enabled")
        self.shadow = req.enabled

    async def _op_quarantine(self, req: QuarantineRequest) -> None:
        if self.slots[self.active].bundle_id == req.bundle_id:
            raise Refused(409, "serving_active", "that bundle is serving as active: flip to the standby first",
                          "bundle_id")
        self.quarantine.setdefault(req.bundle_id, QuarantineEntry(bundle_id=req.bundle_id, reason=req.reason,
                                                                  at=time.time()))

    async def _op_release(self, req: ReleaseRequest) -> None:
        self.quarantine.pop(req.bundle_id, None)

    async def _op_safe_mode(self, req: SafeModeRequest) -> None:
        self.safe_mode = req.enabled
        if req.enabled:
            self.standby_weight = 0.0
            self.shadow = False

    # -- HTTP ----------------------------------------------------------------
    OPS: dict[str, type[BaseModel]] = {"load": LoadRequest, "weights": WeightsRequest, "flip": FlipRequest,
                                       "shadow": ShadowRequest, "quarantine": QuarantineRequest,
                                       "release": ReleaseRequest, "safe-mode": SafeModeRequest}

    async def handle(self, req: Request) -> Response:
        path = req.path.rstrip("/")
        if path == "/v1/state":
            if req.method != "GET":
                return error_response(405, "method_not_allowed", "GET /v1/state")
            return Response(200, self.state().model_dump_json().encode())
        if path.startswith("/v1/") and path[4:] in self.OPS:
            if req.method != "POST":
                return error_response(405, "method_not_allowed", f"POST {path}")
            return await self.mutate(path[4:], self.OPS[path[4:]], req.body)
        if path == "/v1/twin/stats":
            return json_response({"slots": {k: v.snapshot() for k, v in self.router.stats.items()},
                                  "telemetry": self.router.pusher.stats(), "active": self.active,
                                  "noise": {"fraction": self.router.noise_fraction, "sigma": self.router.noise_sigma},
                                  "weights": self.state().weights.model_dump()})
        if path == "/v1/twin/noise" and req.method == "POST":
            return self._noise(req.body)
        if path == "/healthz":
            return json_response({"ok": True})
        return error_response(404, "not_found", f"no route {req.method} {req.path}")

    def _noise(self, body: bytes) -> Response:
        try:
            doc = orjson.loads(body)
            fraction, sigma = float(doc.get("fraction", 0)), float(doc.get("sigma", 0))
        except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError):
            return error_response(400, "bad_request", 'body must be {"fraction": 0..1, "sigma": >= 0}')
        if not (0 <= fraction <= 1) or not (0 <= sigma <= 100):
            return error_response(422, "invalid", "fraction must be in [0, 1] and sigma in [0, 100]")
        self.router.noise_fraction, self.router.noise_sigma = fraction, sigma
        return json_response({"fraction": fraction, "sigma": sigma})
