"""The inference worker process: loads one GGUF model, then answers requests on stdin.

Run as `python -m samantha.llm.worker '<json settings>'`. Protocol: one JSON object
per line. The worker writes `{"type": "ready", ...}` or `{"type": "load_error", ...}`,
then one `{"type": "result" | "error", "id": ...}` per request. It exits when stdin
closes (its parent is gone) or when killed (a call overran its hard timeout).

Protocol lines go to a private duplicate of stdout; fd 1 is pointed at stderr so
anything llama.cpp prints cannot corrupt the protocol. Kept free of other samantha
imports so it starts fast.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

# Gemma GGUFs may ship without a chat template; llama-cpp-python then guesses llama-2, which
# garbles Gemma's output. Gemma's own format has no system role, so the system text is folded in.
_NO_SYSTEM_ROLE = {"gemma"}


def _pick_chat_format(settings: dict[str, Any], llm: Any) -> str | None:
    if settings.get("chat_format"):
        return settings["chat_format"]
    meta = llm.metadata or {}
    if "tokenizer.chat_template" not in meta and meta.get("general.architecture", "").startswith("gemma"):
        return "gemma"
    return None


def _messages(req: dict[str, Any], chat_format: str | None) -> list[dict[str, str]]:
    if chat_format in _NO_SYSTEM_ROLE:
        return [{"role": "user", "content": req["system"] + "\n\n" + req["user"]}]
    return [{"role": "system", "content": req["system"]}, {"role": "user", "content": req["user"]}]


def _lower_priority(settings: dict[str, Any]) -> None:
    if settings.get("nice"):
        os.nice(settings["nice"])
    if settings.get("sched_idle") and hasattr(os, "sched_setscheduler"):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


def main(argv: list[str]) -> int:
    settings = json.loads(argv[1])
    out = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)

    def send(obj: dict[str, Any]) -> None:
        out.write(json.dumps(obj) + "\n")
        out.flush()

    _lower_priority(settings)
    t0 = time.monotonic()
    try:
        from llama_cpp import Llama
        from llama_cpp.llama_grammar import json_schema_to_gbnf

        import_s = time.monotonic() - t0
        t1 = time.monotonic()
        llm = Llama(model_path=settings["model_path"], n_ctx=settings["n_ctx"], n_threads=settings["n_threads"],
                    n_gpu_layers=settings["n_gpu_layers"], seed=settings["seed"], verbose=False)
        chat_format = _pick_chat_format(settings, llm)
        if chat_format:
            llm.chat_format = chat_format
    except Exception as e:  # the parent turns this into a typed "unavailable" outcome
        send({"type": "load_error", "error": f"{type(e).__name__}: {e}"})
        return 3
    send({"type": "ready", "import_s": import_s, "load_s": time.monotonic() - t1,
          "chat_format": llm.chat_format, "pid": os.getpid()})

    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        if req.get("warm"):  # evaluate a prompt so later calls sharing its prefix skip that work
            t = time.monotonic()
            try:
                llm.create_chat_completion(messages=_messages(req, llm.chat_format), max_tokens=1, temperature=0)
                send({"type": "result", "id": req["id"], "text": "", "infer_s": time.monotonic() - t})
            except Exception as e:
                send({"type": "error", "id": req["id"], "error": f"{type(e).__name__}: {e}"})
            continue
        try:
            # Convert the schema ourselves first: response_format silently falls back to
            # unconstrained JSON when conversion fails, and we want that to fail loudly.
            json_schema_to_gbnf(json.dumps(req["schema"]))
            t = time.monotonic()
            r = llm.create_chat_completion(
                messages=_messages(req, llm.chat_format),
                response_format={"type": "json_object", "schema": req["schema"]},
                max_tokens=req["max_tokens"], temperature=req["temperature"], seed=settings["seed"],
                repeat_penalty=req.get("repeat_penalty", 1.0))
            usage = r.get("usage") or {}
            send({"type": "result", "id": req["id"], "text": r["choices"][0]["message"]["content"] or "",
                  "finish_reason": r["choices"][0].get("finish_reason"),
                  "prompt_tokens": usage.get("prompt_tokens"), "completion_tokens": usage.get("completion_tokens"),
                  "infer_s": time.monotonic() - t})
        except Exception as e:
            send({"type": "error", "id": req["id"], "error": f"{type(e).__name__}: {e}"})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
