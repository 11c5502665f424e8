# edgeq: `make demo` runs the main job, `make test` the whole suite. Both install what they need.
PY ?= python3
export PY

.PHONY: install test test-fast demo bench bench-host-wino bench-accuracy bench-board bench-micro lint spec clean

install:
	@bash scripts/install.sh

test: install
	$(PY) -m pytest -q tests

test-fast: install
	$(PY) -m pytest -q -m "not slow" tests

demo: install
	$(PY) -m edgeq.demo

bench: install
	$(PY) -m benchmarks.kernels

bench-host-wino: install
	$(PY) -m benchmarks.host_wino

bench-accuracy: install
	$(PY) -m benchmarks.accuracy

bench-board: install
	$(PY) -m benchmarks.board

bench-micro: install
	$(PY) -m benchmarks.micro

lint:
	$(PY) -m ruff check edgeq tests benchmarks

spec:
	$(PY) -m edgeq.spec

clean:
	rm -rf build edgeq/_native*.so
