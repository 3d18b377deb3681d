# LoopLab: `make demo` sets up and runs the demo; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench clean browser

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip setuptools wheel
	# PyTorch first, pinned, so that nothing after it pulls another build.
	$(BIN)/pip install torch==2.13.0
	# box2d builds from source and needs swig on PATH.
	$(BIN)/pip install swig
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/pip install -e ".[search,dev]"
	# torcharc 2.x declares Python>=3.12 but runs on 3.11.
	$(BIN)/pip install --no-deps --ignore-requires-python "torcharc>=2.0"
	touch $(STAMP)

demo: install
	$(BIN)/looplab run

# Debian's chromium for the report's browser test (skipped, with its reason, where it cannot be had).
browser:
	@command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium) || echo "chromium unavailable: browser test will be skipped"

# the import contracts of pyproject.toml (layers, independence, no loops) first, then the suite
test: install browser
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -n 2 --dist loadfile tests

lint: install
	$(BIN)/ruff check looplab tests bench
	$(BIN)/lint-imports

# make bench [PAIRS=ppo,dqn,sac,trial,search,slm,checkpoint] [REPEATS=3] [SCALE=1.0]: LoopLab vs its peers, writes bench/RESULTS.md
PAIRS ?= ppo,dqn,sac,trial,search,slm,checkpoint
REPEATS ?= 3
SCALE ?= 1.0
bench: install
	$(BIN)/python bench/vs_sb3.py --pairs $(PAIRS) --repeats $(REPEATS) --scale $(SCALE)

clean:
	rm -rf $(VENV) build *.egg-info
