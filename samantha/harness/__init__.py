"""The harness, the top layer beside the CLI: benchmarks, scenario measurement, process helpers and the demo.
Only the CLI (and tests) import it.

- `bench`: Benchmarks: each one a function that returns one JSON-able dict; `samantha bench ...` prints it.
- `child_process`: A server child in its own process group: wait until it answers, stop the group.
- `chaos_oracle`: An independent restatement of chaos policy, and adversarial proposal generation.
- `daemon_process`: `samantha run` as a child process: for scenario runs, benchmarks, the demo and tests.
- `demo`: `samantha demo`: the main job on the embedded twin, told as a sequence of acts.
- `echo_upstream`: A minimal keep-alive HTTP/1.1 responder for benches and demos: `python -m samantha.harness.echo_upstream`.
- `hub_process`: Run the hub as a real child process (tests, bench, demo); `.value` is its URL.
- `llama_server`: llama-cpp-python's OpenAI-compatible server as a child process (an `openai` slot).
- `openai_cube`: A real OpenAI-compatible Cube on loopback: `samantha cube serve` with llama.cpp command slots.
- `measure`: Scenario measurement: when Samantha detected each fault, when traffic left the bad slot, what it did.
- `proxy_process`: Spawn helpers: run the proxy (or the echo upstream) as a real child process and reap it.
- `scenario_run`: Scenario runs with Samantha measured: a fresh daemon beside a fresh twin, or an attached pair.
- `traffic_model`: A small generative model of Cube traffic, fitted to recorded twin telemetry.
"""

__all__ = ["bench", "child_process", "chaos_oracle", "daemon_process", "demo", "echo_upstream", "hub_process", "llama_server", "measure", "openai_cube", "proxy_process", "scenario_run", "traffic_model"]
