# Two commands for a fresh machine: `make demo` (main job) and `make test` (test suite).
# Each creates the virtual environment $(VENV) and installs what it needs (TensorFlow, JAX, PyTorch, LiteRT, ONNX Runtime).
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
SHARED ?= $(abspath ../shared)

.PHONY: demo test test-fast readme clean

$(VENV)/bin/kapps:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[dev,jax,torch,runtimes]"

## Classify photos with MobileNetV2(weights="imagenet"): scikit-image's samples, or IMAGES="a.jpg b.png".
demo: $(VENV)/bin/kapps
	$(VENV)/bin/kapps predict $(IMAGES)

# pytest-xdist, one module per worker (module fixtures built once) except the spread ones (tests/conftest.py).
# Three workers for two cores: with two, subprocess waits and I/O left the CPUs 30% idle (1.4 cores busy).
PYTEST := KAPPS_SHARED_DIR=$(SHARED) $(PY) -m pytest -q -p no:cacheprovider -n 3 --dist loadscope

## Run the test suite (needs ../shared, or SHARED=/path/to/shared).
test: $(VENV)/bin/kapps
	$(PYTEST) --durations=15

## The edit-test subset (tests marked `fast`: blocks, builders, validation, loader, CLI, one parity model per family).
test-fast: $(VENV)/bin/kapps
	$(PYTEST) --durations=15 -m fast

## Regenerate the README model table from the registry.
readme: $(VENV)/bin/kapps
	$(PY) -m kapps.tools.docs README.md

clean:
	rm -rf $(VENV) build *.egg-info
