# Two commands on a fresh machine: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONFIG ?= config/demo.toml
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: run test lint typecheck check bench bench-replay clean chromium peers-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	@echo "Switchboard on http://$(HOST):$(PORT)"
	@echo "  API        http://$(HOST):$(PORT)/v1/"
	@echo "  OpenAPI    http://$(HOST):$(PORT)/openapi.json"
	@echo "  dashboard  http://$(HOST):$(PORT)/dashboard/"
	@echo "  health     http://$(HOST):$(PORT)/healthz"
	@echo "Demo tokens (config/demo.toml): demo-admin demo-ingest demo-agent demo-supervisor"
	$(BIN)/python -m router serve --config $(CONFIG) --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check router adapters loadtests tests
	$(BIN)/ruff format --check router adapters loadtests tests

typecheck: $(STAMP)
	$(BIN)/mypy

# The dashboard tests drive a real headless Chromium: Debian's package, installed
# when missing (as root, or through sudo). Playwright's own browser download is not used.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian's chromium for the dashboard tests"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

test: $(STAMP) lint typecheck chromium
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m loadtests.bench scale
	$(BIN)/python -m loadtests.bench cycle --contacts 20000 --json
	$(BIN)/python -m loadtests.bench peers --json  # cycle beside arq and saq (.venv-peers)
	$(BIN)/python -m loadtests.adapters
	$(BIN)/python -m loadtests.metrics all
	$(BIN)/python -m loadtests.ingest  # HTTP ingest; needs Debian's wrk (installs it as root)
	$(BIN)/python -m loadtests.latency --agents 10000 --queues 1000 --rate 1000 --seconds 30 --json
	$(MAKE) bench-replay

# The replays (docs/benchmarks.md section 15): the bank month in virtual time, and a
# synthetic trace over HTTP at saturation. Outputs (reports, HTML) in var/bench/.
BANK ?= ../shared/data/anonymous-bank-1999-08.csv.gz
bench-replay: $(STAMP)
	mkdir -p var/bench
	$(BIN)/python -m loadtests.convert anonymous-bank --input $(BANK) \
		--trace var/bench/bank.jsonl --roster var/bench/bank-roster.json
	$(BIN)/python -m loadtests.replay --trace var/bench/bank.jsonl --roster var/bench/bank-roster.json \
		--report var/bench/bank-report.json --html var/bench/bank-report.html
	$(BIN)/python -m loadtests.generate --out var/bench/np.jsonl --roster var/bench/np.json \
		--agents 80 --hours 2.5 --rate 1200 --handle exp:180 --patience none \
		--mix voice=0.7,chat=0.3 --queues sales=0.3,support=0.7 --seed 2
	$(BIN)/python -m loadtests.replay --mode realtime --trace var/bench/np.jsonl \
		--roster var/bench/np.json --speed 1000 --no-progress \
		--report var/bench/realtime.json --html var/bench/realtime.html

# arq and saq, pinned, for `loadtests.bench peers` (which also makes it when missing)
peers-venv: $(STAMP)
	$(BIN)/python -c "from loadtests.peers import ensure_venv; ensure_venv()"

clean:
	rm -rf $(VENV) .venv-peers .pytest_cache .mypy_cache .ruff_cache var
