#!/bin/sh
# Installs the Debian packages the tests run, those a fresh Debian image lacks:
# - redis-server: the backplane's tests (rust-core/tests/backplane.rs,
#   tests/python/test_backplane.py) start their own redis-server processes;
# - iproute2 (`ip`): tests/python/test_hosts.py makes network namespaces with it;
# - openssl: tests/c makes the certificate of its TLS test with it;
# - chromium and chromium-driver: tests/browser drives headless Chromium through
#   /usr/bin/chromedriver.
# The test targets of the Makefile run this first (`make system-packages`).
set -eu
packages=""
if ! command -v redis-server >/dev/null 2>&1; then
    packages="redis-server"
fi
if ! command -v ip >/dev/null 2>&1 && [ ! -x /usr/sbin/ip ] && [ ! -x /sbin/ip ]; then
    packages="$packages iproute2"
fi
if ! command -v openssl >/dev/null 2>&1; then
    packages="$packages openssl"
fi
if [ ! -x /usr/bin/chromium ]; then
    packages="$packages chromium"
fi
if [ ! -x /usr/bin/chromedriver ]; then
    packages="$packages chromium-driver"
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
