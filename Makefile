# Set-up and checks. `make demo` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-done
# The notebooks' own venv: the SageMaker Python SDK pins packages (protobuf, packaging) older than vLLM needs.
NB_VENV := .venv-notebooks
NB_STAMP := $(NB_VENV)/.setup-done

.PHONY: setup test lint demo clean

setup: $(STAMP) $(NB_STAMP)

# The CPU build of vLLM pins torch 2.13.0+cpu; PyPI's torchvision/torchaudio/torchcodec that come along
# are CUDA builds that break `import vllm` (and transformers) on a CPU machine, so they are removed.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[cpu,dev]'
	$(BIN)/python -m pip uninstall -y -q torchvision torchaudio torchcodec triton 2>/dev/null || true
	touch $(STAMP)

$(NB_STAMP): pyproject.toml
	test -x $(NB_VENV)/bin/python || $(PYTHON) -m venv $(NB_VENV)
	$(NB_VENV)/bin/python -m pip install -q --upgrade pip
	$(NB_VENV)/bin/python -m pip install -q -e '.[notebooks]'
	touch $(NB_STAMP)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

demo: setup
	$(BIN)/python scripts/demo.py

clean:
	rm -rf $(VENV) $(NB_VENV) .mypy_cache .pytest_cache .ruff_cache
