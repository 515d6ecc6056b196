# lth on a fresh Debian machine:
#   make report      set up, then run the default experiment to reports/<exp>/report.{html,pdf}
#   make test        set up, then the test suite; the SLURM test needs a running cluster
#                    (sudo .ci/slurm-cluster.sh start) and skips without one, outside CI
#   make test-presets  set up, then run a slice of every preset in workflow/presets through
#                    the real DAG to its HTML report on generated data (tests/test_presets.py;
#                    a few minutes a preset on 2 CPU cores), printing each one's time and jobs
#   make test-slurm  set up with SLURM, start a one-node cluster (root), run the SLURM
#                    test, stop the cluster
#   make lint        ruff, snakefmt --check, and snakemake --lint on the default config and on
#                    every preset in workflow/presets; fails on any finding
#   make clean       remove results/, reports/ and .snakemake/; keeps data/ and .venv/
# Setup is idempotent and quick once done: Debian packages are installed only when missing
# (as root; otherwise one line says what to install), and the virtual environment is
# (re)installed only when pyproject.toml changes. The packages are installed by uv (pinned,
# installed into the venv by pip first): it downloads and unpacks in parallel, 41 s against
# pip's 2 min 40 s for the same pins here. CUDA or CPU builds of torch: PIP_INDEX_URL /
# PIP_EXTRA_INDEX_URL from the environment are passed on to uv (or set UV_INDEX_URL /
# UV_EXTRA_INDEX_URL yourself).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
INSTALLED := $(VENV)/.installed
UV_VERSION := 0.13.9
# an index given to pip in the environment is given to uv too
UV_INDEXES := $(if $(PIP_INDEX_URL),UV_INDEX_URL="$(PIP_INDEX_URL)") \
	$(if $(PIP_EXTRA_INDEX_URL),UV_EXTRA_INDEX_URL="$(PIP_EXTRA_INDEX_URL)")
# The workflow's rules call `python -m lth`: the venv leads PATH, as if activated.
IN_VENV := env PATH="$(CURDIR)/$(VENV)/bin:$$PATH" VIRTUAL_ENV="$(CURDIR)/$(VENV)"

.PHONY: help setup system-packages report test test-presets test-slurm lint clean

help:
	@awk '/^$$/ {exit} {sub(/^# ?/, ""); print}' $(firstword $(MAKEFILE_LIST))

setup: system-packages $(INSTALLED)

system-packages:
	@.ci/system-packages.sh

$(INSTALLED): pyproject.toml | system-packages
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "lth needs Python >= 3.11; $(PYTHON) is $$($(PYTHON) -V 2>&1)" >&2; exit 1; }
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --disable-pip-version-check --quiet uv==$(UV_VERSION)
	$(UV_INDEXES) $(VENV)/bin/uv pip install --python $(VENV)/bin/python --no-cache \
		--compile-bytecode -e '.[dev]'
	touch $@

# lth.launch starts Snakemake after clearing the lock of a run that died (never of a live
# one) and refuses, in one line, to start a second run in the same directory.
report: setup
	$(IN_VENV) $(VENV)/bin/python -m lth.launch report --cores all --workflow-profile profiles/local

test: setup
	$(IN_VENV) $(VENV)/bin/pytest

test-presets: setup
	$(IN_VENV) $(VENV)/bin/pytest tests/test_presets.py -m presets

test-slurm: setup
	.ci/system-packages.sh --slurm
	.ci/slurm-cluster.sh start
	status=0; $(IN_VENV) $(VENV)/bin/pytest tests/test_slurm.py -m slurm || status=$$?; \
		.ci/slurm-cluster.sh stop; exit $$status

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/snakefmt --check --compact-diff Snakefile workflow/
	$(VENV)/bin/snakemake --lint
	for preset in workflow/presets/*.yaml; do \
		echo "snakemake --lint --configfile $$preset"; \
		$(VENV)/bin/snakemake --lint --configfile "$$preset" || exit 1; \
	done

clean:
	rm -rf results reports .snakemake
