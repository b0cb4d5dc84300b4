# The two commands of README: `make demo` and `make test`.  Both set up a
# virtual environment first, so they work on a fresh machine.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint format setup data generate bench clean

$(STAMP): pyproject.toml
	@# the historian's tests need a PostgreSQL server (they start a throwaway cluster themselves);
	@# the interop test builds a node with Cyclone DDS's C library (an independent implementation);
	@# the C37.118 tests check our frames with Wireshark's dissector (tshark)
	@missing=""; \
	if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then missing="postgresql"; fi; \
	if ! command -v idlc >/dev/null 2>&1 || [ ! -e /usr/include/dds/dds.h ]; then missing="$$missing cyclonedds-dev cyclonedds-tools"; fi; \
	if ! command -v tshark >/dev/null 2>&1; then missing="$$missing tshark"; fi; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "note: missing $$missing; their tests will be skipped (apt-get install $$missing)"; fi; \
	fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,experiments,serial,postgres,andes,zenoh,zmq]'
	@# pypmu, for the C37.118 interop tests: an sdist of 2017; if it does not build here, its tests skip
	$(BIN)/pip install --quiet -e '.[interop]' || echo "note: extra 'interop' (pypmu) not installed; its tests will be skipped"
	touch $(STAMP)

setup: $(STAMP)

# The main job: the paper's three experiments on the virtual testbed, 10x faster than real
# time (about two minutes), plots and summaries in results/.
demo: $(STAMP)
	$(BIN)/gridbus experiment all --speed 10 --out results
	@echo "plots, CSV files and summary.json of each case are in $(CURDIR)/results/{sync,load-sharing,reconfig,synchrophasor}/"
	@echo "synchrophasors: results/synchrophasor/synchrophasor.png (PMU frequency, VA, ROCOF of the load step);"
	@echo "  the ROCOF compliance run (seed's sequence): results/synchrophasor/compliance/{report.json,rocof.png}"
	$(BIN)/gridbus closed-loop --speed 4 --out results/closed-loop
	@echo "closed loop on ANDES (IEEE 14 generator trip, with and without AGC): $(CURDIR)/results/closed-loop/{frequency.png,summary.json}"

test: $(STAMP)
	$(BIN)/python -m pytest

# Lint (ruff), format check (ruff format) and strict type check (mypy, generated types excluded).
lint: $(STAMP)
	$(BIN)/ruff check src tests examples
	$(BIN)/ruff format --check src tests examples
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix src tests examples
	$(BIN)/ruff format src tests examples

# The user-facing idl/, qos/ and translators/profiles/ are the ones you edit; the package's copies
# under src/gridbus/data/ are what an installed gridbus reads (tests/test_resources.py keeps them equal).
data:
	cp idl/*.idl src/gridbus/data/idl/
	cp qos/*.xml src/gridbus/data/qos/
	cp translators/profiles/*.toml src/gridbus/data/profiles/

generate: data $(STAMP)
	$(BIN)/gridbus idl generate

# Every benchmark, each bounded (about ten minutes in all); figures and goals as tables,
# each preceded by the load average.  docs/benchmarks.md says what each measures and how.
bench: $(STAMP)
	$(BIN)/gridbus bench codec
	$(BIN)/gridbus bench latency --sizes 32,1024 --rates 1000 --count 5000
	$(BIN)/gridbus bench throughput --sweep --seconds 5 --max-steps 6
	$(BIN)/gridbus bench waveform --sizes 16384,65536
	$(BIN)/gridbus bench programs --seconds 10 --repeat 2
	$(BIN)/gridbus bench serial --bauds 9600,115200 --count 40
	$(BIN)/gridbus bench historian --batches 1000 --objects 100 --rate 300 --seconds 10

clean:
	rm -rf $(VENV) build src/*.egg-info results
