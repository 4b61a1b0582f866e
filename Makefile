# Two commands on a fresh machine (Python 3.11 and make): `make demo`, `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
TSTAMP := $(VENV)/.installed-test

.PHONY: demo test install bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $(STAMP)

$(TSTAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(TSTAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) main.py demo --out demo

test: $(TSTAMP)
	$(PY) -m pytest -n 2 --dist loadfile -q -ra

# Every bench at a size of a few minutes (bench/run_all.py --help); e.g. BENCH_ARGS="--crimes 2000".
bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) bench/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) demo .pytest_cache
