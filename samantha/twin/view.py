"""Rich renderings of the twin's status: slots, roles, bundles, live traffic per role."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def status_table(st: dict[str, Any]) -> Table:
    cube = st.get("cube", {})
    router = st.get("router", {}).get("slots", {})
    w = cube.get("weights") or {}
    t = Table(title=f"twin: proxy {'on' if st.get('proxy') else 'off'}, standby weight {w.get('standby')}%, "
                    f"shadow {cube.get('shadow')}, safe mode {cube.get('safe_mode')}")
    for col in ("slot", "role", "bundle", "up", "faults", "rps", "p50ms", "p99ms", "errs", "err%"):
        t.add_column(col, no_wrap=True)
    for s in cube.get("slots", []):
        r = router.get(s["role"], {})
        t.add_row(s["name"], s["role"], f"v{s.get('bundle_version')} {(s.get('bundle_id') or '')[:8]}",
                  "[green]yes" if s["healthy"] else "[red]no", ",".join(s.get("fault_knobs", [])) or "-",
                  str(r.get("rps", "-")), str(r.get("p50_ms", "-")), str(r.get("p99_ms", "-")),
                  str(r.get("errors", "-")), _pct(r.get("error_rate")))
    sh = router.get("shadow")
    if sh and sh.get("requests"):
        t.add_row("", "shadow", "", "", "", str(sh["rps"]), str(sh["p50_ms"]), str(sh["p99_ms"]),
                  str(sh["errors"]), _pct(sh["error_rate"]))
    q = cube.get("quarantine", [])
    if q:
        t.caption = "quarantined: " + ", ".join(e["bundle_id"][:16] for e in q)
    return t


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"
