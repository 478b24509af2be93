# slt-workbench. Two commands matter (see README): `make demo` and `make test`.
# Each sets up its own virtual environment in .venv from pyproject.toml, with a Python >= 3.12
# found by tools/find-python (PATH first, then pyenv); override with `make PYTHON=/path/to/python3.12`.

VENV := .venv
VENV_PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_FLAGS ?=

.PHONY: setup demo lint test test-slow test-all docs mutants figures accuracy bench bench-batch clean

setup: $(STAMP)

$(STAMP): pyproject.toml tools/find-python
	@python_for_venv="$(PYTHON)"; \
	if [ -z "$$python_for_venv" ]; then python_for_venv=$$(tools/find-python) || exit 1; fi; \
	echo "Using $$python_for_venv ($$($$python_for_venv --version 2>&1))"; \
	if [ ! -x $(VENV_PYTHON) ] || ! $(VENV_PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)'; then \
		rm -rf $(VENV) && $$python_for_venv -m venv $(VENV) || exit 1; \
	fi
	$(VENV_PYTHON) -m pip install --quiet --upgrade pip
	$(VENV_PYTHON) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV_PYTHON) -m slt demo

lint: $(STAMP)
	$(VENV_PYTHON) -m ruff check .

test: lint docs
	$(VENV_PYTHON) -m pytest $(PYTEST_FLAGS)

test-slow: $(STAMP)
	@$(VENV_PYTHON) -m pytest -m slow $(PYTEST_FLAGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "no slow tests collected"; exit 0; fi; exit $$status

test-all: $(STAMP)
	$(VENV_PYTHON) -m pytest -m '' $(PYTEST_FLAGS)

# The documentation site (mkdocs.yml, docs/) in strict mode: a broken link, a missing page or a
# docstring griffe cannot parse fails the build. `make test` runs it first.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV_PYTHON) -m mkdocs build --strict --site-dir build/site

# Planted-bug suite (tests/mutants.toml): every scientific mutant must make its tests fail.
# Subset: make mutants MUTANTS_FLAGS='--only llc-scale-1.02,brownian-temperature-hot' (or --fast, --check, --list).
MUTANTS_FLAGS ?=
mutants: $(STAMP)
	$(VENV_PYTHON) tools/mutants.py $(MUTANTS_FLAGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

figures: $(STAMP)
	$(VENV_PYTHON) figures/make_figures.py

accuracy: $(STAMP)
	$(VENV_PYTHON) benchmarks/accuracy.py

bench-batch: $(STAMP)
	$(VENV_PYTHON) benchmarks/batch_speed.py

BENCH_FLAGS ?=
bench: $(STAMP)
	benchmarks/setup_devinterp.sh
	$(VENV_PYTHON) benchmarks/devinterp_compare.py $(BENCH_FLAGS)
