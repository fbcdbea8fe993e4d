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

# axe-core for the accessibility tests, pinned in tools/axe/package-lock.json (node_modules/ is
# not committed); reinstalled whenever the lock file changes. Needs node and npm.
AXE_STAMP := tools/axe/node_modules/.installed

$(AXE_STAMP): tools/axe/package.json tools/axe/package-lock.json
	npm ci --prefix tools/axe --no-audit --no-fund
	touch $@

# The whole suite, in TEST_PROCESSES parallel processes (pytest-xdist; each has its own test
# database and Redis database). Tests wait on browsers, workers and sockets part of the time, so
# one process more than this machine's 2 cores keeps both busy: 5 minutes against 10 in one
# process. Pass options with PYTEST_ARGS="-k cancel -x"; TEST_PROCESSES=0 runs in this process
# (for pdb and -s).
TEST_PROCESSES ?= 3
test: $(STAMP) $(AXE_STAMP)
	mkdir -p var
	$(PYTHON) -m pytest -n $(TEST_PROCESSES) $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --select I --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf var test-output

# Translation catalogues: English is the source; locale/<nl|fr|it>/LC_MESSAGES/django.po are
# updated from every template and Python file, then compiled to .mo (both are committed).
# After `make messages`, fill in every empty msgstr and remove every "fuzzy" flag (see
# docs/rules.md, "Languages"); billing_portal/tests/test_translations.py runs makemessages with
# these same options and fails while anything is missing, fuzzy or not compiled.
MESSAGES_ARGS := -l nl -l fr -l it --ignore .venv --ignore var --ignore test-output --ignore node_modules --ignore tools --add-location file --no-obsolete
COMPILEMESSAGES_ARGS := --ignore .venv --ignore var --ignore node_modules --ignore tools

messages: $(STAMP)
	$(PYTHON) manage.py makemessages $(MESSAGES_ARGS)
	$(PYTHON) manage.py compilemessages $(COMPILEMESSAGES_ARGS)
