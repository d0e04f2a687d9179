# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
DEMO_STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck bench clean vendor-uplot

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The demo needs only Stanch itself; the tests also need the dev tools (linters, browsers'
# drivers, fuzzers), so each target has its own install stamp.
$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $(DEMO_STAMP)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP) $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/stanch demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# ensure-peers.sh installs Prometheus and Alertmanager for the integration tests when they
# are missing (Debian, as root); once they are there it is two `command -v` checks.
# ensure-browser.sh installs Debian's chromium for the dashboard's browser tests when it is
# missing; once it is there it is one `test -x`.
test: lint typecheck
	@sh scripts/ensure-peers.sh
	@bash scripts/ensure-browser.sh
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# The dashboard's chart library, committed under static/vendor (nothing is fetched at run time).
UPLOT_VERSION ?= 1.6.32
UPLOT_DIR     := src/stanch/server/dashboard/static/vendor/uplot
vendor-uplot:
	rm -rf .vendor-uplot && mkdir .vendor-uplot
	cd .vendor-uplot && npm pack --silent uplot@$(UPLOT_VERSION) >/dev/null && tar xzf uplot-$(UPLOT_VERSION).tgz
	cp .vendor-uplot/package/dist/uPlot.iife.min.js .vendor-uplot/package/dist/uPlot.min.css \
	   .vendor-uplot/package/LICENSE $(UPLOT_DIR)/
	sed -i 's/^uPlot [0-9.]*/uPlot $(UPLOT_VERSION)/' $(UPLOT_DIR)/VERSION
	rm -rf .vendor-uplot

bench: $(STAMP)
	$(BIN)/python bench/middleware.py

clean:
	rm -rf $(VENV) stanch-out .pytest_cache .mypy_cache .ruff_cache
