"""`samantha demo`: the main job on the embedded twin, told as a sequence of acts.

Each act is a module under samantha/harness/demo/ with TITLE and run(ctx). Acts run in
order in a fresh state directory, so the demo is repeatable; an act that fails
stops the demo with exit code 1.
"""

from __future__ import annotations

import importlib
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.rule import Rule

from samantha.core.config import SamanthaConfig

# The story, in order. Each entry is a module with TITLE and run(ctx).
ACTS: list[str] = [
    "samantha.harness.demo.telemetry_act",
    "samantha.harness.demo.proxy_act",
    "samantha.harness.demo.twin_act",
    "samantha.harness.demo.triton_act",
    "samantha.harness.demo.openai_act",
    "samantha.harness.demo.gates_act",
    "samantha.harness.demo.kernel_act",
    "samantha.harness.demo.supply_act",
    "samantha.harness.demo.llm_act",
    "samantha.harness.demo.story_act",
    "samantha.harness.demo.judgement_act",
    "samantha.harness.demo.chaos_act",
    "samantha.harness.demo.uplink_act",
    "samantha.harness.demo.report_act",  # keep last: it reports on what the acts above recorded
]


@dataclass
class DemoContext:
    config: SamanthaConfig
    console: Console
    workdir: Path
    fast: bool = False
    facts: dict[str, Any] = field(default_factory=dict)  # what acts measured, for the closing summary


def run_demo(config: SamanthaConfig, *, fast: bool = False, console: Console | None = None) -> int:
    console = console or Console()
    # absolute: acts hand paths to child daemons, which resolve relative paths under their own data_dir
    workdir = (Path(config.data_dir) / "demo").resolve()
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    ctx = DemoContext(config=config.model_copy(update={"data_dir": str(workdir)}), console=console,
                      workdir=workdir, fast=fast)
    for name in ACTS:
        act = importlib.import_module(name)
        console.print(Rule(f"[bold]{act.TITLE}"))
        t0 = time.monotonic()
        try:
            act.run(ctx)
        except Exception as e:  # an act's failure ends the demo with a clear message, not a traceback wall
            console.print(f"[red]act failed:[/red] {type(e).__name__}: {e}")
            return 1
        console.print(f"[dim]({time.monotonic() - t0:.1f} s)[/dim]")
    console.print(Rule("[bold green]demo complete"))
    for k, v in ctx.facts.items():
        console.print(f"  {k}: {v}")
    return 0
