# LoyalNest: two commands on a fresh machine — `make run` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
LOCALES := en es de ja fr pt ru it nl pl tr fa zh_Hans vi id cs ar ko uk hu sv he

.PHONY: run test lint security format migrate bench messages clean

$(STAMP): requirements.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -r requirements.txt
	@touch $(STAMP)

## make run: set everything up and start web, Celery worker and beat (SQLite + embedded Redis by default)
run: $(STAMP)
	$(PY) scripts/devstack.py

## make test: the whole suite (PostgreSQL and Redis from TEST_DATABASE_URL / TEST_REDIS_URL or 127.0.0.1)
test: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	DJANGO_SETTINGS_MODULE=loyalnest.settings.test $(PY) manage.py makemigrations --check --dry-run
	$(MAKE) --no-print-directory security
	$(VENV)/bin/pytest -p no:cacheprovider --create-db $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

## make security: bandit over the app code (config in pyproject.toml [tool.bandit]); the eval/compare_digest
## check and the schemathesis fuzzing of the merchant API are pytest tests in tests/security/
security: $(STAMP)
	$(VENV)/bin/bandit -c pyproject.toml -q -r apps loyalnest scripts

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## make messages: extract strings into all 22 catalogues, then compile them (needs gettext's xgettext)
messages: $(STAMP)
	DJANGO_SETTINGS_MODULE=loyalnest.settings.dev $(PY) manage.py makemessages $(addprefix -l ,$(LOCALES)) --no-obsolete --no-location \
		--ignore "node_modules/*" --ignore "staticfiles/*" --ignore "var/*" --ignore "tests/*" --ignore "bench/*"
	$(PY) scripts/compile_messages.py

bench: $(STAMP)
	$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var staticfiles
