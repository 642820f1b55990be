"""Rich renderings of the twin's status: slots, roles, bundles, live traffic per role."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def status_table(st: dict[str, Any]) -> Table:
    cube = st.get("cube", {})
    router = st.get("router", {}).get("slots", {})
    t = Table(title=f"twin (proxy {'on' if st.get('proxy') else 'off'}; weights {cube.get('weights')}; "
                    f"shadow {cube.get('shadow')}; safe_mode {cube.get('safe_mode')})")
    for col in ("slot", "role", "bundle", "healthy", "faults", "rps", "p50 ms", "p99 ms", "errors", "err rate"):
        t.add_column(col)
    for s in cube.get("slots", []):
        r = router.get(s["role"], {})
        t.add_row(s["name"], s["role"], f"{s.get('bundle_name')}@{s.get('bundle_version')}",
                  "[green]yes" if s["healthy"] else f"[red]no ({s.get('health_detail')})",
                  ",".join(s.get("fault_knobs", [])) or "-", str(r.get("rps", "-")), str(r.get("p50_ms", "-")),
                  str(r.get("p99_ms", "-")), str(r.get("errors", "-")), str(r.get("error_rate", "-")))
    sh = router.get("shadow")
    if sh and sh.get("requests"):
        t.add_row("", "shadow", "", "", "", str(sh["rps"]), str(sh["p50_ms"]), str(sh["p99_ms"]),
                  str(sh["errors"]), str(sh["error_rate"]))
    q = cube.get("quarantine", [])
    if q:
        t.caption = "quarantined: " + ", ".join(e["bundle_id"][:16] for e in q)
    return t
