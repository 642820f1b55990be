"""`samantha proxy serve|list|bench`: the embedded Toxiproxy-compatible fault proxy."""

from __future__ import annotations

from pathlib import Path

import httpx
import typer
from rich.table import Table

from samantha.cli.common import ConfigOption, JsonOption, console, failure, get_config, print_json

app = typer.Typer(no_args_is_help=True, help="The fault proxy (Toxiproxy v2 API): serve, list, bench.")

UrlOption = typer.Option(None, "--url", help="control API URL (default: proxy.upstream_url or proxy.host:port)")


@app.command()
def serve(config: Path | None = ConfigOption,
          host: str | None = typer.Option(None, help="default: proxy.host"),
          port: int | None = typer.Option(None, help="default: proxy.port (8474)"),
          ready_file: Path | None = typer.Option(None, help="write the control URL here once listening")) -> None:
    """Run the proxy in the foreground until SIGTERM or Ctrl-C."""
    from samantha.proxy.__main__ import main as proxy_main

    argv = []
    if config is not None:
        argv += ["--config", str(config)]
    if host is not None:
        argv += ["--host", host]
    if port is not None:
        argv += ["--port", str(port)]
    if ready_file is not None:
        argv += ["--ready-file", str(ready_file)]
    raise typer.Exit(proxy_main(argv))


@app.command("list")
def list_proxies(config: Path | None = ConfigOption, url: str | None = UrlOption, json: bool = JsonOption) -> None:
    """List proxies and their toxics."""
    from samantha.cube.proxy_client import ProxyApiError, ProxyClient

    base = url or get_config(config).proxy.url
    try:
        with ProxyClient(base) as client:
            proxies = client.proxies()
    except (httpx.HTTPError, ProxyApiError) as e:
        failure(f"cannot reach the proxy at {base}: {e}")
    if json:
        print_json({name: p.model_dump(mode="json") for name, p in proxies.items()})
        return
    table = Table(title=f"proxies at {base}")
    for col in ("name", "listen", "upstream", "enabled", "toxics"):
        table.add_column(col)
    for p in proxies.values():
        toxics = ", ".join(f"{t.name}({t.type} {t.stream} {t.toxicity:g})" for t in p.toxics) or "-"
        table.add_row(p.name, p.listen, p.upstream, "yes" if p.enabled else "no", toxics)
    console.print(table)


@app.command()
def bench(json: bool = JsonOption,
          rps: float = typer.Option(200.0, help="requests per second per target"),
          seconds: float = typer.Option(10.0, help="length of the interleaved direct/proxied phase"),
          toxic_seconds: float = typer.Option(5.0, help="length of the latency-toxic phase")) -> None:
    """Measure proxy overhead (p50, vs direct in the same run) and latency-toxic accuracy."""
    from samantha.harness.bench.proxy import run_bench

    if json:
        print_json(run_bench(rps=rps, seconds=seconds, toxic_seconds=toxic_seconds))
        return
    with console.status("benchmarking the proxy (echo upstream + proxy process + open-loop load)"):
        result = run_bench(rps=rps, seconds=seconds, toxic_seconds=toxic_seconds)
    for k, v in result.items():
        console.print(f"{k}: {v}")
