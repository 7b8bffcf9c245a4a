# One-command set-up: every target below creates .venv and installs what is missing.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed
PYTEST_ARGS ?=
# The tests run on every core (pytest-xdist), in about half the time of one process: builds
# and proofs take a lock per design, and each simulation run has a directory of its own, so
# identical runs on two workers do not collide. PARALLEL= runs them in one process.
PARALLEL ?= -n auto --dist loadgroup

.PHONY: setup demo test test-slow bench clean

setup: $(STAMP) iverilog lz4

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,impl]'
	touch $@

# Icarus Verilog comes from Debian: installed here when we are root, otherwise the
# exact command is printed and the target fails.
.PHONY: iverilog
iverilog:
	@command -v iverilog >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Icarus Verilog (apt-get install -y iverilog)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iverilog >/dev/null; \
	  else \
	    echo "Icarus Verilog is missing; run: sudo apt-get install -y iverilog"; exit 1; \
	  fi; }

# Verilator's FST writer (--trace-fst) compiles against lz4 and zlib headers.
.PHONY: lz4
lz4:
	@test -f /usr/include/lz4.h -a -f /usr/include/zlib.h || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing lz4 and zlib headers for Verilator FST traces"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq liblz4-dev zlib1g-dev >/dev/null; \
	  else \
	    echo "lz4/zlib headers are missing; run: sudo apt-get install -y liblz4-dev zlib1g-dev"; exit 1; \
	  fi; }

demo: setup
	$(VENV)/bin/supernode demo

test: setup
	$(PY) -m pytest $(PARALLEL) $(PYTEST_ARGS)

test-slow: setup
	$(PY) -m pytest $(PARALLEL) -m slow $(PYTEST_ARGS)

bench: setup
	$(PY) benchmarks/tile_speed.py
	$(PY) benchmarks/router_saturation.py --rtl 1
	$(PY) benchmarks/router_speed.py

clean:
	rm -rf build results
