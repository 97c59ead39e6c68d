# The two commands of the README: `make run` and `make test`. Each sets itself up on a fresh
# machine: a virtual environment in .venv with torch (CPU build) and skate installed.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.skate-installed

.PHONY: run test install clean

run: $(STAMP)
	$(BIN)/skate run jobs/digits_rnn.yaml

test: $(STAMP)
	$(BIN)/python -m pytest -q

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

clean:
	rm -rf $(VENV) runs .pytest_cache
