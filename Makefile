# Two commands on a fresh machine (Python 3.11 and make): `make demo`, `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
TSTAMP := $(VENV)/.installed-test

.PHONY: demo test install bench clean preview

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

# Every sheet of the demo's workbooks (both reconciliations, a rollback dry run) rendered through
# LibreOffice headless to PNG pages in preview/, as an auditor would print them; the pictures the
# README shows are copied into docs/pictures/. Installs LibreOffice Calc and poppler when missing.
PREVIEW_PACKAGES := libreoffice-calc poppler-utils fonts-crosextra-carlito
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
preview: $(STAMP)
	@if ! command -v soffice >/dev/null || ! command -v pdftoppm >/dev/null; then \
	  $(SUDO) apt-get install -y --no-install-recommends $(PREVIEW_PACKAGES) || \
	  { $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends $(PREVIEW_PACKAGES); }; fi
	test -f demo/reconcile-vendor/reconciliation.xlsx || $(PY) main.py demo --out demo
	$(PY) -m reports.preview --demo demo --out preview --readme docs/pictures

clean:
	rm -rf $(VENV) demo preview .pytest_cache
