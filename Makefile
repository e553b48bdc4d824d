# Everything installs from the repo's own files into .venv; nothing by hand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export LITELLM_LOCAL_MODEL_COST_MAP := True
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install demo lab test lint typecheck unit notebooks browser bench bench-peers lock clean agents

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c requirements.lock -e ".[lab,serve,dev,ray]"
	touch $(STAMP)

install: $(STAMP)

## Run a prompt through a policy, fully offline, against the bundled local provider.
demo: install
	$(BIN)/luthien-lab demo

## JupyterLab on the notebooks (token printed in the log).
lab: install
	$(BIN)/jupyter lab --ip 127.0.0.1 notebooks

## The one test command: lint, types, unit/e2e/browser tests, notebooks.
test: install browser agents
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q
	$(BIN)/python -m pytest -q -p no:randomly --nbval --nbval-sanitize-with notebooks/sanitize.cfg notebooks

unit: install
	$(BIN)/python -m pytest -q

notebooks: install
	$(BIN)/python -m pytest -q --nbval --nbval-sanitize-with notebooks/sanitize.cfg notebooks

## Debian's chromium for the browser test (Playwright's own download does not work offline).
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

bench: install
	$(BIN)/python benchmarks/bench_pipeline.py

## Optional: LiteLLM's proxy for bench_gateway.py's peer row, in a venv of its own
## (.cache/peers): its extras pull in dozens of packages and pin some (websockets<16)
## that the workbench's venv must not change. The version is the newest whose proxy
## extras install from the package registries here (1.108 and later need
## litellm-proxy / litellm-proxy-extras releases the registries do not carry).
PEER_LITELLM = 1.106.12
PEERS := .cache/peers
$(PEERS)/.installed-$(PEER_LITELLM):
	test -x $(PEERS)/bin/python || $(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/python -m pip install -q "litellm[proxy]==$(PEER_LITELLM)"
	touch $@
bench-peers: install $(PEERS)/.installed-$(PEER_LITELLM)
	$(BIN)/python benchmarks/bench_gateway.py --litellm $(PEERS)/bin/litellm

## Coding-agent CLIs (tools/agents: exact pins + lock) into the ignored .cache/agents;
## reinstalls only when the pins or the lock change. Binary: .cache/agents/node_modules/.bin/claude
AGENTS := .cache/agents
AGENTS_STAMP := $(AGENTS)/.installed-stamp

$(AGENTS_STAMP): tools/agents/package.json tools/agents/package-lock.json
	mkdir -p $(AGENTS)
	cp tools/agents/package.json tools/agents/package-lock.json $(AGENTS)/
	cd $(AGENTS) && npm ci --no-audit --no-fund
	$(AGENTS)/node_modules/.bin/claude --version
	$(AGENTS)/node_modules/.bin/codex --version
	touch $(AGENTS_STAMP)

agents: $(AGENTS_STAMP)

## Refresh the lock file from the current virtualenv.
lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e' > requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
