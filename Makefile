# isosweep: `make demo` runs the main job, `make test` the fast tests (a few minutes), `make test-all`
# every test a CPU machine can run (what CI runs). All install first if needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_STORE ?= demo-results

.PHONY: install demo test test-all test-kernels test-slow test-gpu lint docs gpu-check clean

install: $(STAMP)

# constraints.txt pins the torch build for the install step only; pyproject.toml keeps a range.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

# The toy study at lambda 100 (3 data sets x 3 losses) at the `quick` budget, then its summary.
demo: install
	$(BIN)/isosweep run toy --budget quick --where lam=100 --store $(DEMO_STORE)

# The fast tier: every module at smoke size, the heavier variants left to `test-slow`
# (pyproject.toml's addopts: -m 'not slow and not gpu').
test: install
	$(BIN)/python -m pytest -q

# Everything but the gpu tests, the slow tier included, then the legacy results under other kernels.
test-all: install
	$(BIN)/python -m pytest -q -m "not gpu"
	$(MAKE) test-kernels

# The legacy results retrained under CPU kernels other than this machine's own choice, so that a
# tolerance too tight for another machine fails here (tests/legacy_retrain.py, RTOL).
test-kernels: install
	ATEN_CPU_CAPABILITY=default $(BIN)/python -m pytest -q tests/test_legacy_results.py
	ATEN_CPU_CAPABILITY=avx2 $(BIN)/python -m pytest -q tests/test_legacy_results.py

# ruff (lint and format) over the checkout; mypy over the package as installed (staged as plain
# files: mypy cannot follow the editable install's package-dir mapping).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	bash .ci/stage_package.sh build/typecheck
	cd build/typecheck && ../../$(BIN)/mypy -p isosweep

# The documentation site, built as it is published; a broken link or a missing page fails it.
docs: install
	$(BIN)/mkdocs build --strict --site-dir build/site

test-slow: install
	$(BIN)/python -m pytest -q -m slow

test-gpu: install
	$(BIN)/python -m pytest -q -m gpu

# The device check on a GPU machine, with that machine's own python3 (no install, no Ray):
# the gpu tests and benchmarks/gpu.py --json. GPU_DATA: a folder holding thyroid/, arrhythmia/, kddcup99/.
GPU_DATA ?= gpu-data
gpu-check:
	bash benchmarks/gpu_check.sh $(GPU_DATA) gpu-check

clean:
	rm -rf $(VENV) $(DEMO_STORE) .pytest_cache build
