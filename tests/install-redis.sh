#!/bin/sh
# Installs redis-server, Debian's package, when the machine lacks it: the backplane's
# tests (rust-core/tests/backplane.rs) start their own redis-server processes. `make
# test-rust` runs this first (`make redis-server`).
set -eu
if command -v redis-server >/dev/null 2>&1; then
    exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
$sudo apt-get update
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server
command -v redis-server
