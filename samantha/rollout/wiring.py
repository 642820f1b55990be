"""Builds a RolloutController from config and the daemon's parts (store, Cube client, clock)."""

from __future__ import annotations

from collections.abc import Callable

from samantha.core.clock import REAL_CLOCK, Clock
from samantha.core.config import SamanthaConfig
from samantha.core.supply import SupplyPolicy
from samantha.cube.protocol import CubeRuntime
from samantha.cube.tuf_meta import tuf_cache
from samantha.gates.engine import GateEngine
from samantha.gates.registry import GateRegistry
from samantha.gates.rollout_policy import RolloutPolicy
from samantha.loop import tables
from samantha.loop.known_good import KnownGood
from samantha.loop.ledger import ActionLedger
from samantha.rollout.actions import ActionRecorder, RolloutActions
from samantha.rollout.bundle_check import BundleCatalog, IntakeEvent
from samantha.rollout.controller import AlertSink, AuditSink, RolloutController, gate_judge
from samantha.rollout.escalation import AskProvider
from samantha.telemetry.store import TelemetryStore


def build_controller(config: SamanthaConfig, store: TelemetryStore, cube: CubeRuntime, *,
                     policy: RolloutPolicy | None = None, clock: Clock = REAL_CLOCK,
                     registry: GateRegistry | None = None, actions: ActionRecorder | None = None,
                     alert: AlertSink | None = None, max_step_s: float = 1800.0,
                     known_good: KnownGood | None = None, ask: AskProvider = lambda: None,
                     catalog: BundleCatalog | None = None, audit: AuditSink | None = None) -> RolloutController:
    """`known_good`: the Cube's one known-good set (the daemon's, shared with the SRE loop); None: one on `store`.
    `ask`: the approval queue a grey zone asks (samantha/rollout/escalation.py). `catalog`: the bundle intake
    (`bundle_catalog`; None: one from config, signature only unless a TUF root is pinned, reporting to nobody).
    `audit`: the decision log."""
    from samantha.rollout.record import DuckRolloutStore

    policy = policy or RolloutPolicy()
    catalog = catalog or bundle_catalog(config, clock)
    return RolloutController(cube, gate_judge(GateEngine(store, clock), policy, registry), policy, clock,
                             verify=catalog.verify, store=DuckRolloutStore(store),
                             actions=actions or _ledger_actions(store, clock), kernel=config.policy, alert=alert,
                             max_step_s=max_step_s, ask=ask, audit=audit,
                             known_good=known_good if known_good is not None else KnownGood(store, clock))


def bundle_catalog(config: SamanthaConfig, clock: Clock = REAL_CLOCK, *, on_event: IntakeEvent | None = None,
                   supply: Callable[[], SupplyPolicy | None] = lambda: None) -> BundleCatalog:
    """The daemon's bundle intake from config: `twin.bundles_dir`, `twin.trusted_keys`, and the TUF cache when
    `twin.tuf_root` is pinned. `on_event`: refusals, hold changes, verified metadata (audited, alerted).
    `supply`: the policy module's supply section in force (SBOM/provenance a bundle must carry)."""
    return BundleCatalog(config.resolve(config.twin.bundles_dir).absolute(),
                         config.resolve(config.twin.trusted_keys).absolute(), clock,
                         tuf=tuf_cache(config, clock), on_event=on_event, supply=supply,
                         max_file_bytes=int(config.twin.max_bundle_file_mb * 1024 * 1024))


def _ledger_actions(store: TelemetryStore, clock: Clock) -> RolloutActions:
    """Without a recorder from the daemon: the shared `actions` ledger on the same store (no Cube snapshot)."""
    tables.create(store.write_sql)
    return RolloutActions(ActionLedger(store, clock), dict)
