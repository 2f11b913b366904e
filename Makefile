# Thin verbs over build.py, cargo and the C test programs. `make` builds everything.
PREFIX ?= /usr/local
CC ?= cc
CFLAGS_EXAMPLE = -O2 -Wall -Werror -pedantic -std=c11 -Irust-core/include
LIBS_STATIC = build/lib/libroost.a -lpthread -ldl -lm

.PHONY: all build examples test test-deps test-rust test-c test-examples check-header install clean

all: build examples

build:
	python3 build.py

examples: examples/c/echo_server

examples/c/echo_server: examples/c/echo_server.c build
	$(CC) $(CFLAGS_EXAMPLE) -o $@ $< $(LIBS_STATIC)

test: all check-header test-rust test-c test-examples

test-deps:
	python3 -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt

test-examples: examples test-deps
	python3 -m pytest -q tests/examples

test-rust:
	cd rust-core && cargo test --release --locked --features fault-injection

test-c: build
	$(MAKE) -C tests/c

check-header:
	python3 build.py check-header

install:
	python3 build.py install $(PREFIX)

clean:
	cd rust-core && cargo clean
	rm -rf build examples/c/echo_server tests/c/out
