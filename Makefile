# Development commands. Everything runs from the project's own virtual environment in .venv/,
# (re)installed whenever requirements*.txt change.

VENV := .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install run test lint format clean messages

$(STAMP): requirements.txt requirements-dev.txt
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(STAMP)

# Web on http://127.0.0.1:8000, Celery worker and beat, and localstripe, until Ctrl-C.
run: $(STAMP)
	mkdir -p var
	$(PYTHON) manage.py migrate --noinput
	exec $(VENV)/bin/honcho -f Procfile.dev start

# The whole suite; pass options with PYTEST_ARGS="-k cancel -x".
test: $(STAMP)
	mkdir -p var
	$(PYTHON) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --select I --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf var test-output

messages: $(STAMP)
	$(PYTHON) manage.py makemessages -l nl -l fr -l it
	$(PYTHON) manage.py compilemessages --ignore .venv --ignore node_modules
