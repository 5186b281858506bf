# The two commands of README: `make repro` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The stamp records that .venv holds exactly the pinned requirements and the package.
STAMP := $(VENV)/.installed

# DVC runs each stage's `python` from PATH: make it the venv's.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: venv repro test study format lock lock-check benchmark plots-template

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

# The venv alone: for a clone that pulls its results (docs/sharing.md) instead of making them.
venv: $(STAMP)

repro: $(STAMP)
	$(BIN)/dvc repro

# The tests in one process per core and one more (`auto`: tests/conftest.py), at most 4 (past
# that the seed study's files set the pace), each file's tests in one process, so that what a
# file's tests share (the tiny study) is made once; the longest files first (tests/conftest.py).
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest --numprocesses auto --maxprocesses 4 --dist loadfile --no-loadscope-reorder

# The seed study of docs/study.md: 20 DVC experiments on DVC's queue, then the tables and the
# figure under docs/study/. It resumes: experiments that exist for this commit are not rerun.
# On N machines, each runs its share and pushes it: `make study WORKER=K/N` (docs/study.md).
study: repro
	$(BIN)/python -m mnist_vae.study run$(if $(WORKER), --worker $(WORKER))

# Our training loop against the conventional DataLoader loop (needs MNIST: make repro first).
benchmark: $(STAMP)
	$(BIN)/python benchmarks/train_speed.py --epochs 5 --out benchmarks/results/latest.json

# Rebuild the offline plots page from the npm registry (maintainers only; the result is committed).
plots-template: $(STAMP)
	$(BIN)/python vendor/vega/build_template.py

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The universal lock (every platform and Python in tools/lock.py), regenerated from
# requirements.in with uv's resolver in a throwaway venv; `lock-check` proves it per target.
UV := .venv-lock/bin/uv
$(UV):
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet uv

lock: $(UV)
	PATH=$(abspath .venv-lock/bin):$$PATH $(PYTHON) tools/lock.py compile

lock-check: $(UV)
	PATH=$(abspath .venv-lock/bin):$$PATH $(PYTHON) tools/lock.py check
