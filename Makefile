# Guishu — the two commands a new machine needs are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint format messages bench clean-var

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Run the whole system (embedded PostgreSQL + Redis unless DATABASE_URL / REDIS_URL are set).
run: $(STAMP)
	$(PY) -m devserver.run

## Run the whole test suite on real PostgreSQL and Redis (same fallback). Extra args: ARGS=...
test: $(STAMP)
	$(PY) -m devserver.test $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

## Re-extract messages and compile the zh_Hans catalogue from locale/zh_Hans/translations.tsv.
messages: $(STAMP)
	$(PY) manage.py makemessages -l zh_Hans --ignore=.venv --ignore=var --ignore=tests \
		--ignore=bench --ignore=scripts --no-obsolete
	$(PY) scripts/fill_translations.py

bench: $(STAMP)
	$(PY) -m devserver.bench

clean-var:
	rm -rf var
