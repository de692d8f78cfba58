# Set-up is part of every target: a fresh Debian machine needs nothing beyond `make demo` / `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo bench bench-everyday bench-big lint system clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

system:
	bash scripts/system-deps.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

test: $(STAMP) system lint
	$(BIN)/pytest -q -p no:cacheprovider

demo: $(STAMP) system
	$(BIN)/python demo/run.py

bench: $(STAMP) system
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/bench_vulndb.py
	$(BIN)/python benchmarks/bench_incremental.py
	$(BIN)/python benchmarks/bench_secrets.py
	$(BIN)/python benchmarks/bench_passwords.py
	$(BIN)/python benchmarks/bench_startup.py
	$(BIN)/python benchmarks/bench_layercache.py
	$(BIN)/python benchmarks/bench_everyday.py
	$(if $(BIG),$(BIN)/python benchmarks/bench_big.py)
	$(BIN)/python benchmarks/bench_gate.py
	$(BIN)/python benchmarks/bench_fleet_control.py
	$(BIN)/python benchmarks/bench_fleet_scans.py

# issue 8: an everyday registry image side by side with Trivy and Syft; `make bench BIG=1` adds the 5 GB image.
bench-everyday: $(STAMP) system
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python benchmarks/bench_everyday.py

bench-big: $(STAMP) system
	$(BIN)/python benchmarks/bench_big.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
