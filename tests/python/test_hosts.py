"""Two hosts on one backplane: each host is a Linux network namespace that the test
makes (it runs as root), joined to the root namespace by a veth pair on a /24 of its
own. redis-server runs in the root namespace, bound to the root side of both links; a
Roost server (worker_pids.py, one process) runs inside each namespace on the
namespace's address, with ROOST_BACKPLANE naming Redis through the root side. Clients
in the root namespace connect to each host's address; a broadcast sent on either host
reaches every /chat client of both hosts once and in order."""

from __future__ import annotations

import contextlib

import anyio
import pytest
from network_hosts import two_hosts
from redis_server import redis_server
from test_backplane import channel_has, hears_everything_once, open_chat_client
from test_workers import PROGRAM

from conftest import OP_TEXT, RawClient, running_program

pytestmark = pytest.mark.anyio

CLIENTS_PER_HOST = 50
MESSAGES = 20


async def test_a_broadcast_on_either_host_reaches_the_clients_of_both_once(
    roost_backend,
) -> None:
    with (
        two_hosts() as (host_a, host_b),
        redis_server(("127.0.0.1", host_a.gateway, host_b.gateway)) as redis,
    ):
        async with contextlib.AsyncExitStack() as stack:
            urls, programs = [], []
            for host in (host_a, host_b):
                env = {
                    "ROOST_HOST": host.address,
                    "ROOST_PORT": "0",
                    "ROOST_BACKEND": roost_backend,
                    "ROOST_BACKPLANE": redis.url_on(host.gateway),
                }
                program = await stack.enter_async_context(
                    running_program(
                        [PROGRAM, "1"], env=env, prefix=["ip", "netns", "exec", host.namespace]
                    )
                )
                programs.append(program)
                urls.append(f"ws://{host.address}:{program.port}")
            await channel_has(redis, "roost:route:/chat", 2)

            clients: dict[str, list[RawClient]] = {url: [] for url in urls}

            async def open_one(url: str) -> None:
                clients[url].append(await open_chat_client(url))

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

                    try:
                        async with anyio.create_task_group() as tg:
                            for client in everyone:
                                tg.start_soon(hears_everything_once, client, messages)
                    except BaseException as missed:
                        # What the servers said (a lost backplane session is logged)
                        # tells a delivery bug from a slow machine.
                        said = [p.errors.decode(errors="replace") for p in programs]
                        raise AssertionError(
                            f"the messages from host {name} did not reach every client; "
                            f"host A said {said[0]!r}, host B said {said[1]!r}"
                        ) from missed
            finally:
                for client in (client for url in urls for client in clients[url]):
                    await client.aclose()
