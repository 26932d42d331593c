# ffterm: `make run` launches the app, `make test` runs the tests, `make lint` checks style, format and
# types. All of them set everything up first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The torch build to install; override for another platform, e.g. `make TORCH="torch torchvision" run`.
TORCH ?= torch==2.14.1 torchvision==0.29.1
FASHION_DEB_DIR := /usr/share/datasets/fashion-mnist

.PHONY: run test lint setup data screenshots bench gpu-carry clean

run: setup data
	$(VENV)/bin/ffterm

test: setup data
	$(PY) -m pytest -q

# ruff: style and format; import-linter: the engine's rooms and its independence from the app; mypy: types.
lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports
	$(PY) -m mypy -p ffterm_core -p ffterm

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml core/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e ./core -e ".[dev]"
	touch $@

# The embedded default dataset: real FashionMNIST, from Debian's package when apt and root are
# available; otherwise ffterm looks in torchvision's folder and downloads it when online.
data:
	@if [ -d $(FASHION_DEB_DIR) ]; then \
		echo "FashionMNIST: $(FASHION_DEB_DIR)"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null) \
		|| echo "note: could not install dataset-fashion-mnist; ffterm will look in torchvision's folder or download FashionMNIST"; \
	else \
		echo "note: FashionMNIST is not installed system-wide; ffterm will look in \$$FFTERM_DATA or download it (Debian: sudo apt-get install dataset-fashion-mnist)"; \
	fi

# Regenerate screenshots/ from the real app on a real FashionMNIST run.
screenshots: setup data
	$(VENV)/bin/ffterm run quick-ff-fashionmnist --headless --out runs/screenshots --force
	$(PY) -m ffterm.app.screenshots runs/screenshots screenshots

bench: setup data
	$(VENV)/bin/ffterm bench

# What scripts/gpu-check needs on a bare GPU machine without internet (copy the project folder with it):
# FashionMNIST's IDX files and the pure-Python wheels of pytest, which runs the GPU tests (the engine
# itself needs neither textual nor platformdirs).
GPU_CARRY_WHEELS := "pytest>=8,<9" pluggy iniconfig packaging pygments
gpu-carry:
	mkdir -p gpu-carry/fashion-mnist gpu-carry/wheels
	cp $(FASHION_DEB_DIR)/*-ubyte.gz gpu-carry/fashion-mnist/
	$(PYTHON) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --dest gpu-carry/wheels $(GPU_CARRY_WHEELS)

clean:
	rm -rf $(VENV) build *.egg-info
