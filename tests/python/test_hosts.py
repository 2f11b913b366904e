"""Two hosts on one backplane: each host is a Linux network namespace that the test
makes (it runs as root), joined to the root namespace by a veth pair on a /24 of its
own. redis-server runs in the root namespace, bound to the root side of both links; a
Roost server (worker_pids.py, one process) runs inside each namespace on the
namespace's address, with ROOST_BACKPLANE naming Redis through the root side. Clients
in the root namespace connect to each host's address; a broadcast sent on either host
reaches every /chat client of both hosts once and in order."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import anyio
import pytest
from redis_server import redis_server
from test_backplane import channel_has, hears_everything_once
from test_workers import PROGRAM

from conftest import OP_TEXT, RawClient, running_program

pytestmark = pytest.mark.anyio

CLIENTS_PER_HOST = 50
MESSAGES = 20


@dataclass
class Host:
    namespace: str
    address: str  # inside the namespace
    gateway: str  # the root side of its link: Redis listens there


def ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    if done.returncode != 0:
        raise AssertionError(f"`ip {' '.join(args)}` failed: {done.stderr.strip()}")


def require_namespaces() -> None:
    """Fails (does not skip): the test is part of the suite and needs its hosts."""
    if shutil.which("ip") is None:
        pytest.fail("`ip` (iproute2) is missing: run `make redis-server`, which installs it")
    if os.geteuid() != 0:
        pytest.fail("making network namespaces needs root: run the tests as root")


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


async def test_a_broadcast_on_either_host_reaches_the_clients_of_both_once(
    anyio_backend,
) -> None:
    with (
        two_hosts() as (host_a, host_b),
        redis_server(("127.0.0.1", host_a.gateway, host_b.gateway)) as redis,
    ):
        async with contextlib.AsyncExitStack() as stack:
            urls = []
            for host in (host_a, host_b):
                env = {
                    "ROOST_HOST": host.address,
                    "ROOST_PORT": "0",
                    "ROOST_BACKEND": anyio_backend,
                    "ROOST_BACKPLANE": redis.url_on(host.gateway),
                }
                program = await stack.enter_async_context(
                    running_program(
                        [PROGRAM, "1"], env=env, prefix=["ip", "netns", "exec", host.namespace]
                    )
                )
                urls.append(f"ws://{host.address}:{program.port}")
            await channel_has(redis, "roost:route:/chat", 2)

            clients: dict[str, list[RawClient]] = {url: [] for url in urls}

            async def open_one(url: str) -> None:
                clients[url].append(await RawClient.open(url, "/chat"))

            try:
                async with anyio.create_task_group() as tg:
                    for url in urls:
                        for _ in range(CLIENTS_PER_HOST):
                            tg.start_soon(open_one, url)
                everyone = [client for url in urls for client in clients[url]]
                for name, url in zip("AB", urls, strict=True):
                    messages = [f"from host {name}: {i}" for i in range(MESSAGES)]
                    speaker = clients[url][0]
                    for message in messages:
                        await speaker.send_frame(OP_TEXT, message.encode())

                    async with anyio.create_task_group() as tg:
                        for client in everyone:
                            tg.start_soon(hears_everything_once, client, messages)
            finally:
                for client in (client for url in urls for client in clients[url]):
                    await client.aclose()
