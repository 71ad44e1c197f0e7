# The two commands a newcomer needs: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# Proxy headers (X-Forwarded-For/-Proto) are trusted only from the proxy named here: unset,
# every client's own address counts (per-address limits cannot be dodged by a header).
FORWARDED_ALLOW_IPS ?=
PROXY_FLAGS := $(if $(strip $(FORWARDED_ALLOW_IPS)),--proxy-headers --forwarded-allow-ips=$(FORWARDED_ALLOW_IPS),--no-proxy-headers)

.PHONY: run test lint worker bench install

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/python -m app.cli setup
	$(BIN)/uvicorn app.asgi:app --host $(HOST) --port $(PORT) $(PROXY_FLAGS)

worker: install
	$(BIN)/arq workers.main.WorkerSettings

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .

bench: install
	$(BIN)/python bench/booking.py
	$(BIN)/python bench/export.py
