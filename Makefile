# The two commands of README: `make demo` and `make test`.  Both set up a
# virtual environment first, so they work on a fresh machine.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test setup generate bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,experiments]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/gridbus demo

test: $(STAMP)
	$(BIN)/python -m pytest

generate: $(STAMP)
	$(BIN)/gridbus idl generate

bench: $(STAMP)
	$(BIN)/gridbus bench latency --sizes 32,1024 --rates 1000 --count 10000
	$(BIN)/gridbus bench throughput --size 32 --seconds 5

clean:
	rm -rf $(VENV) build src/*.egg-info
