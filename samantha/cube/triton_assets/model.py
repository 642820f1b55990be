"""A Triton python-backend model with the defective-bundle knobs (run by Triton's stub, not imported by Samantha).

A small seeded linear-softmax classifier: input `x` (FP32, [8]) to one probability output whose name,
dims and datatype come from the bundle's config.pbtxt, so a bundle can change its output contract.
The knobs come from `faults.json` beside this file (the bundle's fault profile): latency, jitter,
error rate, NaN rate, output bias, CPU burn, crash after load, memory leak.
"""

import json
import os
import random
import sys
import time

# The stub ignores PYTHONPATH: the harness names Triton's site-packages (numpy) in this variable.
_SITE = os.environ.get("SAMANTHA_TRITON_SITE")
if _SITE and _SITE not in sys.path:
    sys.path.insert(0, _SITE)

import numpy as np  # noqa: E402
import triton_python_backend_utils as pb_utils  # noqa: E402

N_FEATURES = 8


class TritonPythonModel:
    def initialize(self, args):
        cfg = json.loads(args["model_config"])
        here = os.path.dirname(os.path.abspath(__file__))
        with open(os.path.join(here, "faults.json")) as f:
            doc = json.load(f)
        self.knobs = doc.get("faults") or {}
        out = cfg["output"][0]
        self.out_name = out["name"]
        self.out_dims = [int(d) for d in out["dims"]]
        self.out_dtype = pb_utils.triton_string_to_numpy(out["data_type"])
        n = int(np.prod(self.out_dims))
        rng = np.random.default_rng(int(doc.get("seed", 0)))
        self.w = rng.normal(0.0, 1.0, (N_FEATURES, n)).astype(np.float64)
        self.leak = []
        self.loaded = time.monotonic()

    def _one(self, x):
        k = self.knobs
        logits = x.astype(np.float64) @ self.w
        logits[0] += float(k.get("output_bias", 0.0))
        e = np.exp(logits - logits.max())
        p = e / e.sum()
        if random.random() < float(k.get("nan_rate", 0.0)):
            p = np.full_like(p, np.nan)
        return p.reshape(self.out_dims).astype(self.out_dtype)

    def execute(self, requests):
        k = self.knobs
        crash = k.get("crash_after_s")
        if crash and time.monotonic() - self.loaded > float(crash):
            os._exit(70)  # the stub dies: Triton reports the model unready
        burn = float(k.get("cpu_burn", 0.0)) / 1000
        if burn:
            end = time.perf_counter() + burn
            while time.perf_counter() < end:
                pass
        delay = float(k.get("latency_ms", 0.0)) + random.random() * float(k.get("jitter_ms", 0.0))
        if delay:
            time.sleep(delay / 1000)
        if k.get("leak_mb_per_s") and len(self.leak) < 256:
            self.leak.append(bytearray(b"\x01") * (1 << 20))
        answers = []
        for req in requests:
            if random.random() < float(k.get("error_rate", 0.0)):
                if len(requests) == 1:  # raised, as a failing backend does: Triton counts it (reason BACKEND);
                    raise pb_utils.TritonModelException("injected inference failure")  # an error answer is a success
                answers.append(pb_utils.InferenceResponse(error=pb_utils.TritonError("injected inference failure")))
                continue
            x = pb_utils.get_input_tensor_by_name(req, "x").as_numpy().reshape(-1)[:N_FEATURES]
            answers.append(pb_utils.InferenceResponse([pb_utils.Tensor(self.out_name, self._one(x))]))
        return answers
