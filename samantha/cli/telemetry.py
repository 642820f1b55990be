"""`samantha telemetry ...`: serve the push endpoint, inspect, export, bench."""

from __future__ import annotations

from pathlib import Path

import typer

from samantha.cli.common import ConfigOption, JsonOption, bad_input, console, failure, get_config, print_json

app = typer.Typer(no_args_is_help=True, help="The DuckDB telemetry store: serve, stats, export, bench.")


def _open_store(config_path: Path | None):
    import duckdb

    from samantha.telemetry.store import TelemetryStore

    cfg = get_config(config_path)
    try:
        return TelemetryStore.open(cfg)
    except duckdb.IOException as e:  # another process (the daemon, `telemetry serve`) owns the file
        failure(f"cannot open {cfg.store_path}: {e}")


@app.command()
def serve(port: int = typer.Option(..., "--port", "-p", help="TCP port on 127.0.0.1 (0 picks a free one)"),
          config: Path | None = ConfigOption) -> None:
    """Run the store with the HTTP push endpoints (POST /v1/ingest/{table} JSON lines, POST /v1/metrics OTLP) on 127.0.0.1."""
    from samantha.telemetry.serve import serve as run

    if not 0 <= port <= 65535:
        bad_input(f"--port: {port} is not a TCP port")
    run(get_config(config), port)


@app.command()
def stats(config: Path | None = ConfigOption, as_json: bool = JsonOption) -> None:
    """Row counts per table, series, disk use and the store's counters."""
    from samantha.telemetry.schema import ALL_TABLES

    with _open_store(config) as store:
        out = {"path": str(store.path),
               "rows": {t: int(store.query_scalar(f"SELECT count(*) FROM {t}") or 0) for t in ALL_TABLES},
               "used_bytes": store.retention.used_bytes(), "budget_bytes": store.retention.budget_bytes,
               "time_range": store.read_arrow("SELECT min(ts) AS first, max(ts) AS last FROM "
                                              "(SELECT ts FROM samples UNION ALL SELECT ts FROM requests)").to_pylist()[0],
               "counters": store.stats()}
    if as_json:
        print_json(out)
        return
    from rich.table import Table

    t = Table(title=f"telemetry store {out['path']}")
    t.add_column("table")
    t.add_column("rows", justify="right")
    for name, n in out["rows"].items():
        t.add_row(name, f"{n:,}")
    console.print(t)
    console.print(f"disk: {out['used_bytes'] / 2**20:.1f} MiB of {out['budget_bytes'] / 2**20:.0f} MiB budget")


@app.command()
def export(parquet: Path = typer.Option(..., "--parquet", help="directory for <table>.parquet files"),
           config: Path | None = ConfigOption, as_json: bool = JsonOption) -> None:
    """Export every table as Parquet."""
    from samantha.telemetry.export import export_parquet

    if parquet.exists() and not parquet.is_dir():
        bad_input(f"--parquet: {parquet} exists and is not a directory")
    with _open_store(config) as store:
        written = export_parquet(store, parquet)
    if as_json:
        print_json({"tables": written})
    else:
        for table, info in written.items():
            console.print(f"{table:12} {info['rows']:>12,} rows -> {info['path']}")


@app.command()
def bench(quick: bool = typer.Option(False, "--quick", help="shorter run (< 60 s); ingest sustained ~5 s"),
          as_json: bool = JsonOption) -> None:
    """Measure ingest, the DuckDB bulk ceiling, window queries and a cardinality attack."""
    from rich.console import Console

    from samantha.harness.bench.telemetry import run_bench

    err = Console(stderr=True)
    with err.status("benchmarking the telemetry store") as status:
        result = run_bench(quick=quick, progress=lambda msg: status.update(msg))
    if as_json:
        print_json(result)
        return
    for k in ("ingest_samples_per_s", "duckdb_bulk_samples_per_s", "ingest_ratio", "window_query_p95_ms", "rss_mb"):
        console.print(f"{k:28} {result[k]:,}")
    console.print(f"cardinality_attack           {result['cardinality_attack']}")
    for k, ok in result["targets"].items():
        console.print(f"  {'[green]met' if ok else '[red]missed'}[/] {k}")
