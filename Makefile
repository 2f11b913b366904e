# Thin verbs over build.py, cargo and the C test programs. `make` builds everything.
PREFIX ?= /usr/local
CC ?= cc
CFLAGS_EXAMPLE = -O2 -Wall -Werror -pedantic -std=c11 -Irust-core/include
LIBS_STATIC = build/lib/libroost.a -lpthread -ldl -lm

.PHONY: test-python-uvloop test-python-inline all build examples python test test-deps test-rust test-c test-examples test-browser test-packaging test-python typecheck demo check-header install clean lint system-packages

all: build examples

build:
	python3 build.py

examples: examples/c/echo_server

examples/c/echo_server: examples/c/echo_server.c build
	$(CC) $(CFLAGS_EXAMPLE) -o $@ $< $(LIBS_STATIC)

test: all check-header test-rust test-c test-examples test-packaging test-python test-python-uvloop test-python-inline test-browser typecheck

test-deps:
	python3 -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt

test-examples: examples test-deps system-packages
	python3 -m pytest -q tests/examples

# The chat of examples/python in a real browser: headless Chromium sessions (Debian's
# chromium, driven by Selenium through Debian's chromedriver) chat through its page.
# Each leaves a screenshot in build/test-output/, listed at the end of the run.
test-browser: python test-deps system-packages
	python3 -m pytest -q tests/browser

# Installs the Python package from this tree (its cffi extension links build's libroost.a).
python: build
	python3 -m pip install --quiet --disable-pip-version-check ./python

# The Python suite, on every minor version of Python that python/pyproject.toml declares
# (its classifiers): the machine's python3 in itself, each other one (pyenv's) in a
# virtualenv build/venv-X.Y, made by tests/pythons.py, which also (re)installs the
# package and the test dependencies. A declared version with no interpreter fails.
# One version: `make test-python PYTHONS=3.12` (or `make test-python-3.12`).
PYTHONS ?= $(shell python3 tests/pythons.py declared)

# The suite's asyncio half once more on uvloop's event loop (backend "uvloop"), on the
# machine's python3, without the leak soak (its figures are the core's and the
# package's, which the loop does not change).
test-python-uvloop: python test-deps system-packages
	ROOST_TEST_UVLOOP=1 python3 -m pytest -q tests/python -k "asyncio and not leak"

# The suite once more with the core on the event loop's thread (inline_io, through
# ROOST_INLINE_IO=1), on asyncio and trio, without the tests of what the core's own
# thread does while the loop is blocked (core_thread), the leak soak, and the
# backplane's tests (inline_io does not combine with a backplane).
test-python-inline: python test-deps system-packages
	ROOST_INLINE_IO=1 python3 -m pytest -q tests/python -m "not core_thread" \
	  -k "not leak and not backplane and not hosts"

test-python: $(addprefix test-python-,$(PYTHONS))
	@test -n "$(PYTHONS)" || { echo "test-python: no Python version to test" >&2; exit 1; }

# The leak soak (tests/python/test_leaks.py) runs its 100,000 cycles on the machine's
# python3 and 20,000 on the other versions, with the same assertions: the memory it
# checks is the core's and the package's, not the interpreter's, and the full soak
# three times over would be a fifth of the CI run. ROOST_LEAK_CYCLES overrides both.
# Likewise the async tests run on asyncio and trio under python3, and on one loop each
# under the other versions (LOOP_3.X, through ROOST_TEST_LOOPS), which keeps the CI
# run under 30 minutes: what differs between versions is the interpreter under the
# package, the same on either loop. ROOST_TEST_LOOPS=asyncio,trio runs both everywhere.
PRIMARY_PYTHON := $(shell python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
LOOP_3.12 := asyncio
LOOP_3.13 := trio

test-python-%: build system-packages
	@echo "== tests/python on Python $*"
	py="$$(python3 tests/pythons.py env $*)" && \
	  $(if $(filter $(PRIMARY_PYTHON),$*),,ROOST_LEAK_CYCLES=$${ROOST_LEAK_CYCLES:-20000}) \
	  $(if $(filter $(PRIMARY_PYTHON),$*),,$(if $(LOOP_$*),ROOST_TEST_LOOPS=$${ROOST_TEST_LOOPS:-$(LOOP_$*)})) \
	  "$$py" -m pytest -q tests/python

# pip refuses the package on the Python just older than the declared ones (pyenv's 3.10),
# saying which Python it requires; the classifiers and requires-python agree.
test-packaging: build test-deps
	python3 -m pytest -q tests/packaging

typecheck: python test-deps
	python3 -m mypy --strict python/roost

# The chat of examples/python, built and installed from scratch: the server serves its
# page too, so a browser is the only client needed. PORT=8081 for another port.
demo: python
	@echo
	@echo "Open http://127.0.0.1:$${PORT:-8080}/ in a browser; a second window is a second person."
	@echo "Stop it with Ctrl+C."
	@echo
	cd examples/python && python3 chat.py --port $${PORT:-8080}

# The Debian packages the tests run, installed when missing: redis-server (the
# backplane's tests start real ones), iproute2 (tests/python/test_hosts.py makes network
# namespaces), openssl (the certificate of tests/c's TLS test), and chromium with
# chromium-driver (tests/browser).
system-packages:
	sh tests/install-system-packages.sh

test-rust: system-packages
	cd rust-core && cargo test --profile ci --locked --features fault-injection

# The lint gates: rustfmt and clippy (warnings denied, with the unsafe-code lints that
# rust-core/Cargo.toml turns on) on every crate, ruff's formatter and linter on every
# Python file (ruff.toml).
lint: test-deps
	cd rust-core && cargo fmt --check
	cd rust-core/fuzz && cargo fmt --check
	cd bench/loadgen && cargo fmt --check
	cd rust-core && cargo clippy --locked --all-targets --all-features -- -D warnings
	cd bench/loadgen && cargo clippy --locked --all-targets -- -D warnings
	python3 -m ruff format --check .
	python3 -m ruff check .

test-c: build system-packages
	$(MAKE) -C tests/c

check-header:
	python3 build.py check-header

install:
	python3 build.py install $(PREFIX)

clean:
	cd rust-core && cargo clean
	rm -rf build examples/c/echo_server tests/c/out

# Benchmarks (bench/): the load generator is a crate of its own in bench/loadgen.
.PHONY: bench bench-scale-out bench-c idle-memory bench-python-vs-c

# Roost against robyn, websockets, picows, aiohttp and socketify (bench/compare.py):
# table (results.md) and chart (chart.png) in bench/results/, and beside them the raw
# data (results.json), which git ignores. BENCH_ARGS="--quick --rounds 1" for a smoke run.
# Then the scale-out runs (bench/scale_out.py): one broadcast to 1,000 receivers over one
# process, two processes and two hosts (network namespaces; root) joined by Redis, and
# Robyn's multi-process mode; scale-out.md beside results.md. SCALE_OUT_ARGS as BENCH_ARGS.
bench: all
	cd bench/loadgen && cargo build --release --locked
	python3 bench/compare.py $(BENCH_ARGS)
	$(MAKE) bench-scale-out SCALE_OUT_ARGS="$(SCALE_OUT_ARGS) --no-setup"

bench-scale-out: all system-packages
	cd bench/loadgen && cargo build --release --locked
	python3 bench/scale_out.py $(SCALE_OUT_ARGS)

bench-c: examples
	cd bench/loadgen && cargo build --release --locked
	python3 bench/c_echo.py

idle-memory: examples
	cd bench/loadgen && cargo build --release --locked
	python3 bench/idle_memory.py

bench-python-vs-c: examples python
	cd bench/loadgen && cargo build --release --locked
	python3 bench/echo_python_vs_c.py

# Autobahn|Testsuite conformance of the C and Python echo servers (tests/autobahn/),
# compared with tests/autobahn/expected-results.json. Not part of `make test`: it needs a
# CPython 2.7 interpreter (the suite runs on nothing newer) and PyPI on first use.
# CONFORMANCE_ARGS=--update-baseline rewrites the baseline.
.PHONY: conformance

conformance: examples python
	python3 tests/autobahn/run.py $(CONFORMANCE_ARGS)

# Soak test of the Python chat example (outside `make test`): 200 clients chat for 3
# minutes with a report every 10 s, then SIGINT must end the server with status 0.
# Flags through SOAK_ARGS, e.g. make soak SOAK_ARGS="--minutes 10 --backend trio".
.PHONY: soak
soak: python
	python3 bench/soak.py $(SOAK_ARGS)

# Fuzzing with cargo-fuzz (libFuzzer) of the parsing the core owns: rust-core/fuzz, a
# crate and workspace of its own (own Cargo.lock), targets `handshake` (the upgrade
# request check), `frame_read` (a client's frames as the frame reader parses them) and
# `http_requests` (pipelined requests as the HTTP side reads heads and bodies);
# FUZZ_TARGET picks one, default handshake. cargo-fuzz is installed, pinned, when missing. It asks rustc for
# AddressSanitizer with -Zsanitizer, which stable rustc accepts under RUSTC_BOOTSTRAP=1.
# New inputs go to rust-core/fuzz/corpus-work/ (ignored); the committed seeds in
# rust-core/fuzz/corpus/ are only read. A crash fails the run and is saved under
# rust-core/fuzz/artifacts/. `make fuzz` runs FUZZ_SECONDS; `make fuzz-ci` runs each
# target for 30 s.
# Neither is part of `make test`.
FUZZ_SECONDS ?= 60
FUZZ_TARGET ?= handshake
CARGO_FUZZ_VERSION = 0.13.2

.PHONY: fuzz fuzz-ci fuzz-tool

fuzz-tool:
	@if [ "$$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $(CARGO_FUZZ_VERSION)" ]; then \
	  cargo install cargo-fuzz --version $(CARGO_FUZZ_VERSION) --locked; fi

fuzz: fuzz-tool
	mkdir -p rust-core/fuzz/corpus-work/$(FUZZ_TARGET)
	cd rust-core && RUSTC_BOOTSTRAP=1 cargo fuzz run --debug-assertions --codegen-units 16 $(FUZZ_TARGET) \
	  fuzz/corpus-work/$(FUZZ_TARGET) fuzz/corpus/$(FUZZ_TARGET) -- \
	  -max_total_time=$(FUZZ_SECONDS) -dict=fuzz/$(FUZZ_TARGET).dict -max_len=16384 -timeout=10 \
	  -rss_limit_mb=2048 -print_final_stats=1

fuzz-ci:
	$(MAKE) fuzz FUZZ_SECONDS=30 FUZZ_TARGET=handshake
	$(MAKE) fuzz FUZZ_SECONDS=30 FUZZ_TARGET=frame_read
	$(MAKE) fuzz FUZZ_SECONDS=30 FUZZ_TARGET=http_requests
