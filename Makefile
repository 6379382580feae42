# Two commands for a fresh machine: `make demo` (main job) and `make test` (test suite).
# Each creates the virtual environment $(VENV) and installs what it needs.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
SHARED ?= $(abspath ../shared)

.PHONY: demo test readme clean

$(VENV)/bin/kapps:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"

## Classify photos with MobileNetV2(weights="imagenet"): scikit-image's samples, or IMAGES="a.jpg b.png".
demo: $(VENV)/bin/kapps
	$(VENV)/bin/kapps predict $(IMAGES)

## Run the test suite (needs ../shared, or SHARED=/path/to/shared).
test: $(VENV)/bin/kapps
	KAPPS_SHARED_DIR=$(SHARED) $(PY) -m pytest -q -p no:cacheprovider --durations=15

## Regenerate the README model table from the registry.
readme: $(VENV)/bin/kapps
	$(PY) -m kapps.tools.docs README.md

clean:
	rm -rf $(VENV) build *.egg-info
