# dcama_mm: the two commands of the README's Quick start.
#   make demo   set up .venv (once), then train + evaluate a small DCAMA on a
#               generated COCO-20i-format dataset on the CPU
#   make test   set up .venv (once), then run the test suite
# The first set-up builds mmcv 2.1.0 with its ops (~10-12 min on 2 cores) and
# caches the wheel in ~/.cache/dcama_mm; later set-ups take seconds.

VENV ?= .venv
PYTHON := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup test demo clean-venv

setup:
	@bash tools/setup_env.sh

test: setup
	$(PYTHON) -m pytest tests $(PYTEST_ARGS)

demo: setup
	$(PYTHON) tools/run_demo.py

clean-venv:
	rm -rf $(VENV)
