#!/bin/sh
# Installs redis-server, Debian's package, when the machine lacks it: the backplane's
# tests (rust-core/tests/backplane.rs, tests/python/test_backplane.py) start their own
# redis-server processes. Installs iproute2 too when `ip` is missing (a fresh Debian
# image has none): tests/python/test_hosts.py makes network namespaces with it. `make
# test-rust` and `make test-python` run this first (`make redis-server`).
set -eu
packages=""
if ! command -v redis-server >/dev/null 2>&1; then
    packages="redis-server"
fi
if ! command -v ip >/dev/null 2>&1 && [ ! -x /usr/sbin/ip ] && [ ! -x /sbin/ip ]; then
    packages="$packages iproute2"
fi
if [ -z "$packages" ]; then
    exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
$sudo apt-get update
# shellcheck disable=SC2086 # the list splits into package names
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y $packages
command -v redis-server
