"""Two hosts on one machine, for the tests and benchmarks of the backplane: each host
is a Linux network namespace joined to the root namespace by a veth pair on a /24 of
its own. A server runs in a host with `ip netns exec NAMESPACE ...`, bound to the
host's address; programs of the root namespace reach it there, and it reaches them
through its gateway (the root side of its link). Making namespaces needs root and
iproute2's `ip`."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass
class Host:
    namespace: str
    address: str  # inside the namespace
    gateway: str  # the root side of its link: Redis listens there


def ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    if done.returncode != 0:
        raise RuntimeError(f"`ip {' '.join(args)}` failed: {done.stderr.strip()}")


def require_namespaces() -> None:
    """Raises, saying why, where namespaces cannot be made: a test that needs its hosts
    fails rather than skips."""
    if shutil.which("ip") is None:
        raise RuntimeError(
            "`ip` (iproute2) is missing: run `make system-packages`, which installs it"
        )
    if os.geteuid() != 0:
        raise RuntimeError("making network namespaces needs root: run as root")


@contextlib.contextmanager
def two_hosts() -> Iterator[tuple[Host, Host]]:
    """Namespaces roost-a-<tag> and roost-b-<tag>, on 10.<n>.1.0/24 and 10.<n>.2.0/24;
    both removed at the end, with their links, whatever happened."""
    require_namespaces()
    tag = f"{random.getrandbits(24):06x}"
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    subnet = random.choice([n for n in range(100, 250) if f"10.{n}." not in routes])
    namespaces: list[str] = []
    links: list[str] = []
    try:
        hosts = []
        for index, name in enumerate("ab", start=1):
            namespace, outside, inside = f"roost-{name}-{tag}", f"rr{name}{tag}", f"rn{name}{tag}"
            host = Host(namespace, f"10.{subnet}.{index}.2", f"10.{subnet}.{index}.1")
            ip("netns", "add", namespace)
            namespaces.append(namespace)
            ip("link", "add", outside, "type", "veth", "peer", "name", inside)
            links.append(outside)
            ip("link", "set", inside, "netns", namespace)
            ip("addr", "add", f"{host.gateway}/24", "dev", outside)
            ip("link", "set", outside, "up")
            ip("-n", namespace, "addr", "add", f"{host.address}/24", "dev", inside)
            ip("-n", namespace, "link", "set", inside, "up")
            ip("-n", namespace, "link", "set", "lo", "up")
            hosts.append(host)
        yield hosts[0], hosts[1]
    finally:
        # Removing a namespace removes the end of the pair inside it, and with it the
        # other end; the links go first all the same, should a namespace be held.
        for link in links:
            subprocess.run(["ip", "link", "del", link], capture_output=True, check=False)
        for namespace in namespaces:
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True, check=False)
