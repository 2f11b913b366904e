#!/usr/bin/env python3
"""Soak test of the Python chat example: many clients chatting for a bounded time.

Starts `examples/python/chat.py --port 0` (asyncio unless --backend trio), connects
--clients chat clients (raw WebSocket clients written here, light enough that one
Python process can drive them), and lets them chat for --minutes: every client sends
a message now and then (--rate messages per second in all), and the server publishes
each one to everybody (all are in the chat's default room). A few clients leave and come back every interval (--churn),
so that connections keep being made and closed under load.

Every --interval seconds (10) it prints the server's RSS (VmRSS of its process), its
open descriptors, its CPU use, and the messages per second delivered to the clients.
At the end it sends SIGINT: the server must close every client with 1001 and exit 0.
It exits 1 when that fails, when the server dies, or when a client is disconnected
with anything but a close it asked for or the final 1001 (a slow-recipient 1008
included).

    python3 bench/soak.py [--minutes 3] [--clients 200] [--rate 100] [--backend asyncio]

Everything talks to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import re
import signal
import struct
import sys
import time
from dataclasses import dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHAT = os.path.join(ROOT, "examples", "python", "chat.py")
CLK_TCK = os.sysconf("SC_CLK_TCK")

OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x2, 0x8, 0x9, 0xA


def log(message: str) -> None:
    print(message, flush=True)


# ---------------------------------------------------------------------------------
# The server process


class ChatServer:
    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.proc: asyncio.subprocess.Process | None = None
        self.port = 0
        self.output: list[str] = []

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            CHAT,
            "--port",
            "0",
            "--backend",
            self.backend,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
            cwd=os.path.dirname(CHAT),
        )
        assert self.proc.stdout is not None
        line = (await asyncio.wait_for(self.proc.stdout.readline(), 30)).decode()
        match = re.search(r"ws://127\.0\.0\.1:(\d+)", line)
        if not match:
            rest = (await self.proc.stdout.read()).decode(errors="replace")
            raise SystemExit(f"the chat server did not start: {line!r} {rest}")
        self.port = int(match.group(1))
        self.output.append(line.rstrip())
        asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for line in self.proc.stdout:
            self.output.append(line.decode(errors="replace").rstrip())

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def rss_mib(self) -> float:
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK


# ---------------------------------------------------------------------------------
# A small WebSocket client


class Closed(Exception):
    def __init__(self, code: int | None) -> None:
        super().__init__(code)
        self.code = code


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (masked with whole-integer XOR)."""
    n = len(payload)
    head = bytearray([0x80 | opcode])
    if n < 126:
        head.append(0x80 | n)
    elif n < 1 << 16:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    key = os.urandom(4)
    stream = (key * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")
    return bytes(head) + key + masked


@dataclass
class Totals:
    delivered: int = 0
    sent: int = 0
    connects: int = 0
    reconnects: int = 0
    unexpected: list[str] = field(default_factory=list)
    final_codes: dict[str, int] = field(default_factory=dict)


class ChatClient:
    def __init__(self, index: int, port: int, totals: Totals) -> None:
        self.index = index
        self.port = port
        self.totals = totals
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.seq = 0

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        key = base64.b64encode(os.urandom(16)).decode()
        self.writer.write(
            f"GET /chat?name=c{self.index} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 30)
        if not head.startswith(b"HTTP/1.1 101 "):
            raise RuntimeError(f"client {self.index}: {head[:40]!r}")
        self.totals.connects += 1

    async def read_frames(self) -> int | None:
        """Counts the messages delivered until the server closes; answers pings and
        the close. Returns the close code (None: the connection just ended)."""
        assert self.reader is not None and self.writer is not None
        reader = self.reader
        try:
            while True:
                b0, b1 = await reader.readexactly(2)
                n = b1 & 0x7F
                if n == 126:
                    n = struct.unpack("!H", await reader.readexactly(2))[0]
                elif n == 127:
                    n = struct.unpack("!Q", await reader.readexactly(8))[0]
                payload = await reader.readexactly(n) if n else b""
                opcode = b0 & 0x0F
                if opcode in (OP_TEXT, OP_BINARY):
                    self.totals.delivered += 1
                elif opcode == OP_PING:
                    self.writer.write(client_frame(OP_PONG, payload))
                elif opcode == OP_CLOSE:
                    code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                    try:
                        self.writer.write(client_frame(OP_CLOSE, payload[:2]))
                        await self.writer.drain()
                    except ConnectionError:
                        pass
                    return code
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        finally:
            self.writer.close()

    def say(self, size: int) -> None:
        assert self.writer is not None
        self.seq += 1
        text = f"m {self.index} {self.seq} ".ljust(size, ".")
        self.writer.write(client_frame(OP_TEXT, json.dumps({"text": text}).encode()))
        self.totals.sent += 1

    def leave(self) -> None:
        assert self.writer is not None
        self.writer.write(client_frame(OP_CLOSE, struct.pack("!H", 1000)))


async def run_client(
    client: ChatClient, stop: asyncio.Event, leave: asyncio.Event, send_interval: float, size: int
) -> None:
    """Chats until `stop`; on `leave`, closes and comes back."""
    while not stop.is_set():
        try:
            await client.connect()
        except (TimeoutError, OSError, RuntimeError, asyncio.IncompleteReadError) as error:
            if not stop.is_set():  # refused while the server stops: expected
                client.totals.unexpected.append(f"client {client.index} connect: {error!r}")
            return
        reading = asyncio.ensure_future(client.read_frames())
        leaving = False
        try:
            await asyncio.sleep(random.uniform(0, send_interval))
            while not reading.done():
                if leave.is_set() and not stop.is_set():
                    leave.clear()
                    leaving = True
                    client.leave()
                    break
                client.say(size)
                assert client.writer is not None
                await asyncio.wait_for(client.writer.drain(), 30)
                done, _ = await asyncio.wait({reading}, timeout=send_interval)
        except (TimeoutError, ConnectionError) as error:
            client.totals.unexpected.append(f"client {client.index}: {error!r}")
        code = await reading
        if leaving:
            if code != 1000:
                client.totals.unexpected.append(f"client {client.index} left: close {code}")
            client.totals.reconnects += 1
            continue
        client.totals.final_codes[str(code)] = client.totals.final_codes.get(str(code), 0) + 1
        if not stop.is_set():
            client.totals.unexpected.append(f"client {client.index}: closed with {code} mid-run")
        return


# ---------------------------------------------------------------------------------


async def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--minutes", type=float, default=3.0, help="how long the clients chat [3]")
    ap.add_argument("--clients", type=int, default=200, help="chat clients [200]")
    ap.add_argument(
        "--rate",
        type=float,
        default=100.0,
        help="messages per second sent by all clients together [100]; each is "
        "delivered to every client",
    )
    ap.add_argument("--size", type=int, default=64, help="bytes per chat message [64]")
    ap.add_argument(
        "--churn",
        type=float,
        default=0.05,
        help="fraction of the clients that leave and come back each interval [0.05]",
    )
    ap.add_argument("--interval", type=float, default=10.0, help="seconds between reports [10]")
    ap.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = ap.parse_args()

    server = ChatServer(args.backend)
    await server.start()
    log(f"soak: {server.output[0]}")
    log(
        f"soak: {args.clients} clients, {args.rate:g} messages/s in all ({args.size} bytes), "
        f"churn {args.churn:.0%} per {args.interval:g} s, for {args.minutes:g} min"
    )
    totals = Totals()
    stop = asyncio.Event()
    send_interval = args.clients / args.rate
    leaves = [asyncio.Event() for _ in range(args.clients)]
    clients = [ChatClient(i, server.port, totals) for i in range(args.clients)]
    tasks = [
        asyncio.ensure_future(run_client(c, stop, leaves[i], send_interval, args.size))
        for i, c in enumerate(clients)
    ]

    started = time.monotonic()
    end = started + args.minutes * 60
    last_delivered, last_time, last_cpu = 0, started, server.cpu_seconds()
    rss: list[float] = []
    fds: list[int] = []
    ok = True
    log(
        f"{'t (s)':>6} {'RSS MiB':>8} {'fds':>5} {'CPU %':>6} {'deliv/s':>9} {'sent/s':>7} "
        f"{'connects':>8} {'errors':>6}"
    )
    last_sent = 0
    while time.monotonic() < end:
        await asyncio.sleep(min(args.interval, max(0.0, end - time.monotonic())))
        if not server.alive():
            log("soak: FAIL: the server died")
            ok = False
            break
        now, cpu = time.monotonic(), server.cpu_seconds()
        rss.append(server.rss_mib())
        fds.append(server.open_fds())
        rate = (totals.delivered - last_delivered) / (now - last_time)
        sent_rate = (totals.sent - last_sent) / (now - last_time)
        cpu_pct = 100 * (cpu - last_cpu) / (now - last_time)
        log(
            f"{now - started:6.0f} {rss[-1]:8.1f} {fds[-1]:5d} {cpu_pct:6.0f} {rate:9.0f} "
            f"{sent_rate:7.0f} {totals.connects:8d} {len(totals.unexpected):6d}"
        )
        last_delivered, last_time, last_cpu, last_sent = totals.delivered, now, cpu, totals.sent
        for i in random.sample(range(args.clients), int(args.clients * args.churn)):
            leaves[i].set()

    stop.set()
    assert server.proc is not None
    if server.alive():
        server.proc.send_signal(signal.SIGINT)
    try:
        code = await asyncio.wait_for(server.proc.wait(), 30)
    except TimeoutError:
        server.proc.kill()
        code = await server.proc.wait()
        log("soak: FAIL: the server did not exit within 30 s of SIGINT")
        ok = False
    try:
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
    except TimeoutError:
        log("soak: FAIL: clients were not closed within 30 s")
        ok = False
    elapsed = time.monotonic() - started
    log(f"soak: server exit status {code}")
    log(
        f"soak: {totals.delivered} messages delivered in {elapsed:.0f} s "
        f"({totals.delivered / elapsed:.0f}/s), {totals.sent} sent, {totals.connects} connects"
    )
    if rss:
        log(
            f"soak: RSS first {rss[0]:.1f} MiB, last {rss[-1]:.1f} MiB, peak {max(rss):.1f} MiB; "
            f"fds first {fds[0]}, last {fds[-1]}, most {max(fds)}"
        )
    log(f"soak: how the clients were closed at the end: {totals.final_codes}")
    if code != 0:
        log(f"soak: FAIL: the server exited with {code}")
        ok = False
    if set(totals.final_codes) - {"1001"}:
        log("soak: FAIL: not every client got close 1001 at the end")
        ok = False
    if totals.unexpected:
        log(
            f"soak: FAIL: {len(totals.unexpected)} unexpected events, first: {totals.unexpected[:5]}"
        )
        ok = False
    errors = [line for line in server.output if "Traceback" in line or "ERROR" in line]
    if errors:
        log(f"soak: FAIL: the server logged errors: {errors[:5]}")
        ok = False
    log("soak: OK" if ok else "soak: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
