# Perdure — the two commands (`make run`, `make test`) do all of their own setup.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

# Packages checked with `mypy --strict` (the sans-I/O cores and what they stand on).
STRICT := src/perdure/protocol src/perdure/server/partition src/perdure/sdk/vm

.PHONY: run test lint typecheck unit proto bench clean install

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m perdure.cli.main dev examples/greeter.py

lint: $(STAMP)
	$(PY) -m ruff check src tests bench examples

typecheck: $(STAMP)
	$(PY) -m mypy --strict $(STRICT)
	$(PY) -m mypy src/perdure

test: lint typecheck
	$(PY) -m pytest $(PYTEST_ARGS)

unit: $(STAMP)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

# Regenerates src/perdure/protocol/pb/ from proto/ (needs grpcio-tools, installed here).
proto: $(STAMP)
	$(PY) -m pip install --quiet -e '.[proto]'
	$(PY) scripts/gen_proto.py

bench: $(STAMP)
	$(PY) -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache perdure-data
