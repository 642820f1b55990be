"""`samantha cube ...`: the Cube runtime in front of real model servers (Triton over KServe V2, OpenAI-compatible
servers started per bundle)."""

from __future__ import annotations

import typer

from samantha.cli.common import JsonOption, bad_input, emit_result, failure

app = typer.Typer(no_args_is_help=True, help="The Cube runtime in front of real model servers.")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def serve(ctx: typer.Context) -> None:
    """Serve the router and control API over two slots, from the `cube:` section of samantha.yaml (`-c FILE`);
    options override its fields (`samantha cube serve -h`). Bad config exits 2 naming the field."""
    from samantha.twin.cube_runtime import main

    main(list(ctx.args))


@app.command()
def bench(as_json: bool = JsonOption,
          rps: float = typer.Option(200.0, min=1, max=2000, help="requests per second on each path"),
          seconds: float = typer.Option(10.0, min=1, max=300, help="length of the interleaved phase"),
          flips: int = typer.Option(6, min=0, max=50, help="flips under load in the second phase"),
          data_client: str = typer.Option("pool", help="the runtime's forwarding client: pool or httpx")) -> None:
    """Router overhead over direct Triton calls (p50/p99, interleaved) and failed requests during flips."""
    from samantha.harness.bench.cube import run_cube_bench
    from samantha.harness.triton_process import TritonUnavailable

    if data_client not in ("pool", "httpx"):
        bad_input(f"--data-client: {data_client!r} is not pool or httpx")
    try:
        result = run_cube_bench(rps=rps, seconds=seconds, flips=flips, data_client=data_client)
    except TritonUnavailable as e:
        failure(f"Triton cannot start here: {e}")
    except RuntimeError as e:
        failure(str(e))
    emit_result(result, as_json)
