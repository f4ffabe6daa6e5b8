# Two set-up-and-go commands: `make run` (the whole pipeline on the embedded synthetic market) and
# `make test` (the test suite). Both create .venv and install the project on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export PYTHONWARNINGS ?= ignore::DeprecationWarning

.PHONY: run test ui lint bench benchmark clean-data

# `make benchmark`: Qlib's benchmark table on the CSI300 data (own warehouse under data/csi300). With CUDA: five
# seeds, Qlib's full epoch budget; on the CPU: the reduced configuration (seeds 0,1, one epoch). Add
# QLIB_PYTHON=/path/to/python-with-pyqlib for Qlib's own models side by side; BENCH_ARGS for more options.
QLIB_DATA ?= ../shared/data/qlib_cn
BENCH_ENV = PIPELINE_WAREHOUSE=data/csi300/warehouse.duckdb PIPELINE_SOURCE=qlib:$(QLIB_DATA) \
	PIPELINE_UNIVERSE=csi300 PIPELINE_BENCHMARK=SH000300

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch is pinned to the CPU build 2.13.0 in pyproject.toml (a bare "torch" pulls GBs of CUDA wheels)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

run: $(VENV)/.installed
	$(PY) -m pipeline materialize --select '* and not group:benchmark' --summary

test: $(VENV)/.installed
	$(PY) -m pytest -q

benchmark: $(VENV)/.installed
	$(BENCH_ENV) $(PY) -m pipeline benchmark --with-upstream $(if $(QLIB_PYTHON),--qlib-python $(QLIB_PYTHON)) $(BENCH_ARGS)

ui: $(VENV)/.installed
	$(VENV)/bin/dagster dev -w workspace.yaml

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean-data:
	rm -rf data .dagster_home
