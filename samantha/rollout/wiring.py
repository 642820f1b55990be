"""Builds a RolloutController from config and the daemon's parts (store, Cube client, clock)."""

from __future__ import annotations

from samantha.core.clock import REAL_CLOCK, Clock
from samantha.core.config import SamanthaConfig
from samantha.cube.protocol import CubeRuntime
from samantha.cube.tuf_meta import TufCache
from samantha.gates.engine import GateEngine
from samantha.gates.registry import GateRegistry
from samantha.gates.rollout_policy import RolloutPolicy
from samantha.loop import tables
from samantha.loop.known_good import KnownGood
from samantha.loop.ledger import ActionLedger
from samantha.rollout.actions import ActionRecorder, RolloutActions
from samantha.rollout.bundle_check import BundleCatalog, IntakeEvent
from samantha.rollout.controller import AlertSink, RolloutController, gate_judge
from samantha.rollout.escalation import AskProvider
from samantha.telemetry.store import TelemetryStore


def build_controller(config: SamanthaConfig, store: TelemetryStore, cube: CubeRuntime, *,
                     policy: RolloutPolicy | None = None, clock: Clock = REAL_CLOCK,
                     registry: GateRegistry | None = None, actions: ActionRecorder | None = None,
                     alert: AlertSink | None = None, max_step_s: float = 1800.0,
                     known_good: KnownGood | None = None, ask: AskProvider = lambda: None,
                     tuf: TufCache | None = None, on_intake: IntakeEvent | None = None) -> RolloutController:
    """`known_good`: the Cube's one known-good set (the daemon's, shared with the SRE loop); None: one on `store`.
    `ask`: the approval queue a grey zone asks (samantha/rollout/escalation.py). `tuf`: the Cube's TUF cache
    (`cube.tuf_meta.tuf_cache`; None: signature only); `on_intake`: refusals and supply-hold changes."""
    from samantha.rollout.record import DuckRolloutStore

    policy = policy or RolloutPolicy()
    catalog = BundleCatalog(config.resolve(config.twin.bundles_dir).absolute(),
                            config.resolve(config.twin.trusted_keys).absolute(), clock, tuf=tuf, on_event=on_intake)
    return RolloutController(cube, gate_judge(GateEngine(store, clock), policy, registry), policy, clock,
                             verify=catalog.verify, store=DuckRolloutStore(store),
                             actions=actions or _ledger_actions(store, clock), kernel=config.policy, alert=alert,
                             max_step_s=max_step_s, ask=ask,
                             known_good=known_good if known_good is not None else KnownGood(store, clock))


def _ledger_actions(store: TelemetryStore, clock: Clock) -> RolloutActions:
    """Without a recorder from the daemon: the shared `actions` ledger on the same store (no Cube snapshot)."""
    tables.create(store.write_sql)
    return RolloutActions(ActionLedger(store, clock), dict)
