# Every target sets up from nothing: a fresh clone on a fresh machine needs only python3.11 and a C compiler.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
WHEELS ?= $(HOME)/.cache/samantha/wheels
LLAMA_VERSION := 0.3.36
LLAMA_WHEEL_GLOB := $(WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl
# Portable CPU build: a native build died with SIGILL on these CPUs at the first token.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF
STAMP := $(VENV)/.installed

.PHONY: all setup demo test bench lint clean llama-wheel system-deps triton

all: test

setup: $(STAMP) triton

# NVIDIA Triton (tritonserver 2.51 + python backend, CPU) from the nvidia-pytriton wheel, in its own venv so it
# cannot disturb the pinned stack. Start the binary directly (PyTriton's wrapper fails on 3.11.7); the backend
# dir is the wheel's python backend plus its 3.11 stub. Where the wheel cannot install, the Triton tests skip.
TRITON_VENV := .venv-triton
TRITON_SP := $(TRITON_VENV)/lib/python3.11/site-packages
TRITON_STAMP := $(TRITON_VENV)/.installed
triton: $(TRITON_STAMP)

$(TRITON_STAMP):
	@test -x $(TRITON_VENV)/bin/python || $(PYTHON) -m venv $(TRITON_VENV)
	@if $(TRITON_VENV)/bin/pip install -q nvidia-pytriton==0.7.0 numpy==1.26.4; then \
	  rm -rf $(TRITON_VENV)/backends && mkdir -p $(TRITON_VENV)/backends/python && \
	  cp -r $(TRITON_SP)/pytriton/tritonserver/backends/python/. $(TRITON_VENV)/backends/python/ && \
	  cp $(TRITON_SP)/pytriton/tritonserver/python_backend_stubs/3.11/triton_python_backend_stub $(TRITON_VENV)/backends/python/ && \
	  touch $@ && echo "triton: $(TRITON_VENV) ready"; \
	else echo "triton: nvidia-pytriton did not install here (needs manylinux_2_35 x86_64): Triton tests will skip"; fi

# The llama.cpp wheel is built once (~8 min on 2 cores) and cached outside the tree.
llama-wheel:
	@if ls $(LLAMA_WHEEL_GLOB) >/dev/null 2>&1; then echo "llama-cpp-python $(LLAMA_VERSION): cached wheel"; else \
	  mkdir -p $(WHEELS) && echo "building llama-cpp-python $(LLAMA_VERSION) (portable CPU flags, ~8 min)" && \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PYTHON) -m pip wheel --no-deps -w $(WHEELS) llama-cpp-python==$(LLAMA_VERSION); fi

# Debian's chromium (browser tests, driven by Playwright: never `playwright install`) and prometheus (promtool).
system-deps:
	@if command -v chromium >/dev/null && command -v promtool >/dev/null; then echo "system deps: chromium, prometheus present"; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium prometheus; \
	else echo "system deps missing: run 'sudo apt-get install -y chromium prometheus' (the browser and Prometheus tests need them)"; fi

$(STAMP): pyproject.toml requirements.lock | system-deps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(MAKE) --no-print-directory llama-wheel
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps --find-links $(WHEELS) llama-cpp-python==$(LLAMA_VERSION)
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $@

demo: $(STAMP) triton
	$(BIN)/samantha demo

test: $(STAMP) triton
	$(BIN)/ruff check samantha tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/pytest -q --durations=25

bench: $(STAMP)
	$(BIN)/samantha telemetry bench --json

lint: $(STAMP)
	$(BIN)/ruff check samantha tests benchmarks
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) $(TRITON_VENV) .samantha .pytest_cache
