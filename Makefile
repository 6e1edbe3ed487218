# lambda-defer: every target sets up what it needs on first use and reuses it after.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.installed
RIE := .cache/rie/aws-lambda-rie-x86_64
LAYER_STAMP := dist/layer/.built

.PHONY: test typecheck demo layer package bench docs venv rie runtime-packages clean chaos

venv: $(VENV_STAMP)

$(VENV_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

rie: $(RIE)

$(RIE): scripts/fetch_rie.sh | $(VENV_STAMP)
	PY=$(PY) scripts/fetch_rie.sh $(dir $@)

# What Lambda's Python runtime brings (awslambdaric, boto3; pinned in lambda_sandbox/runtime_packages.py),
# from PyPI into .cache/lambda-runtime/ once: the sandbox's functions import only these, their
# task folder and their layers' python/ (--allow-host-packages: the host's virtualenv too).
runtime-packages: $(VENV_STAMP)
	@$(PY) -c 'from lambda_sandbox.runtime_packages import ensure_runtime_packages; ensure_runtime_packages()'

layer: $(VENV_STAMP)
	$(PY) scripts/build_layer.py --out dist/layer

# osls pin (the community-maintained Serverless Framework v3 line; package.json/package-lock.json); npm ci only when they change.
NPM_STAMP := node_modules/.lambda-defer-npm-ci
SLS_STAGE ?= local

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

package: $(VENV_STAMP) $(NPM_STAMP) layer
	PY=$(PY) scripts/package.sh $(SLS_STAGE)

# PostgreSQL for the change-capture tests: installed from Debian's packages when missing
# (needs root and apt); without it those tests are skipped and say why.
POSTGRES_STAMP := .cache/postgres.checked
$(POSTGRES_STAMP):
	@mkdir -p .cache
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; } \
	  || echo "PostgreSQL could not be installed: its tests will be skipped"
	@touch $@

# mypy --strict over every package at the root (tests, examples and bench aside); test runs it first.
typecheck: $(VENV_STAMP)
	$(PY) -m mypy --strict handler_lib extension lambda_sandbox

test: typecheck $(VENV_STAMP) $(RIE) $(POSTGRES_STAMP) runtime-packages layer
	$(PY) -m pytest $(PYTEST_ARGS)

demo: $(VENV_STAMP) runtime-packages layer
	$(PY) -m examples.api_gateway.demo
	$(PY) -m examples.fastapi.demo

bench: $(VENV_STAMP) layer
	$(PY) -c 'import matplotlib' 2>/dev/null || $(PY) -m pip install -q matplotlib
	$(PY) -m bench $(BENCH_ARGS)

# The documentation site (mkdocs.yml): strict, so a broken link or anchor, a page left out
# of the navigation or a public name docs/api.md does not name stops it. tests/docs checks it too.
# The attack machine with random seeds (tests/chaos/run.py): CHAOS_MINUTES (default 30),
# DEFER_TEST_LAYER for another layer; dist/chaos/report.json and timeline.png.
chaos: $(VENV_STAMP) $(POSTGRES_STAMP) layer
	$(PY) -m tests.chaos.run

docs: $(VENV_STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict 2>&1 | grep -v "^INFO" ; test $${PIPESTATUS[0]} -eq 0
	@echo "site: dist/site/index.html"

clean:
	rm -rf dist .cache .pytest_cache
