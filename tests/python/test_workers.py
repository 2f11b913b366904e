"""`app.start(workers=N)`: N processes serve one port, run as a user runs them
(worker_pids.py answers each connection with the pid of the worker serving it)."""

from __future__ import annotations

import collections
import contextlib
import os
import re
import signal
import socket
import textwrap
from pathlib import Path
from typing import Any

import anyio
import pytest

from conftest import HOST, SERVING_PREFIX, WAIT, occupied_port, run_to_end, running_program
from roost import App

pytestmark = pytest.mark.anyio

PROGRAM = str(Path(__file__).with_name("worker_pids.py"))


def workers_program(backend: str, workers: int | None = 4, **kwargs: Any):
    env = {"ROOST_PORT": "0", "ROOST_HOST": HOST, "ROOST_BACKEND": backend}
    env.update(kwargs.pop("env", {}))
    args = [PROGRAM] if workers is None else [PROGRAM, str(workers)]
    return running_program(args, env=env, **kwargs)


def parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def gone(pid: int) -> bool:
    """Whether no process (not even an unreaped one) has this pid."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def ended(pid: int) -> bool:
    """Whether the process has ended: gone, or a zombie its new parent has not reaped
    (which holds no descriptor any more)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


async def answers(connect, url: str, clients: int, at_once: int = 50) -> collections.Counter[int]:
    """Opens `clients` connections, `at_once` at a time; counts the pids answering."""
    pids: collections.Counter[int] = collections.Counter()
    limiter = anyio.CapacityLimiter(at_once)

    async def one() -> None:
        async with limiter, connect(url + "/pid") as ws:
            pids[int(await ws.recv())] += 1

    async with anyio.create_task_group() as tg:
        for _ in range(clients):
            tg.start_soon(one)
    return pids


async def one_client_per_worker(
    connect, url: str, clients: contextlib.AsyncExitStack, workers: int
) -> dict[int, Any]:
    """Opens clients (kept open in `clients`) until each of `workers` workers has one;
    returns the first client of each worker by its pid. No cancel scope may surround
    open clients: on trio each is a nursery."""
    by_pid: dict[int, Any] = {}
    for _ in range(100):
        ws = await clients.enter_async_context(connect(url + "/pid"))
        by_pid.setdefault(int(await ws.recv()), ws)
        if len(by_pid) == workers:
            return by_pid
    raise AssertionError(f"100 clients reached only the workers {sorted(by_pid)}")


async def wait_until(predicate, what: str, timeout: float = WAIT) -> None:
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.02)


async def test_connections_are_spread_over_every_worker(connect, roost_backend) -> None:
    async with workers_program(roost_backend) as program:
        assert program.first_line == (
            f"{SERVING_PREFIX}{HOST}:{program.port} ({roost_backend}, 4 workers); Ctrl+C stops"
        )
        pids = await answers(connect, program.url, 400)
        assert sum(pids.values()) == 400, "every client is answered"
        assert len(pids) == 4, f"each of the 4 workers serves some: {pids}"
        assert program.process.pid not in pids
        assert all(parent_of(pid) == program.process.pid for pid in pids)
    assert all(gone(pid) for pid in pids)
    assert program.errors == b"", program.errors


async def test_a_killed_worker_is_replaced_while_the_others_serve(connect, roost_backend) -> None:
    async with workers_program(roost_backend) as program:
        first = set(await answers(connect, program.url, 100))
        assert len(first) == 4
        killed = min(first)
        os.kill(killed, signal.SIGKILL)
        await wait_until(lambda: gone(killed), "the parent to reap the killed worker")

        # The other three serve every new connection at once ...
        after = await answers(connect, program.url, 60)
        assert sum(after.values()) == 60
        assert killed not in after
        # ... and a new worker joins them.
        replacements: set[int] = set()
        with anyio.fail_after(WAIT):
            while not replacements:
                replacements = set(await answers(connect, program.url, 20)) - first
        (replacement,) = replacements
        assert parent_of(replacement) == program.process.pid
        assert f"worker {killed} was killed by SIGKILL".encode() in program.errors
        assert f"started worker {replacement}".encode() in program.errors
    assert gone(replacement) and all(gone(pid) for pid in first)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_a_signal_stops_every_worker_and_their_clients_get_1001(
    connect, roost_backend, signum
) -> None:
    async with workers_program(roost_backend) as program:
        async with contextlib.AsyncExitStack() as clients:
            by_pid = await one_client_per_worker(connect, program.url, clients, 4)
            program.send_signal(signum)
            for ws in by_pid.values():
                messages, end = await ws.recv_closed()
                assert messages == []
                assert end.code == 1001
    # running_program checked the exit status: 0.
    assert all(gone(pid) for pid in by_pid), "no worker outlives the parent"
    assert b"Traceback" not in program.errors, program.errors


async def test_workers_end_when_the_parent_is_killed(connect, roost_backend) -> None:
    async with workers_program(roost_backend, workers=3, expect_exit=None) as program:
        async with contextlib.AsyncExitStack() as clients:
            by_pid = await one_client_per_worker(connect, program.url, clients, 3)
            program.send_signal(signal.SIGKILL)
            # The kernel tells each worker (PR_SET_PDEATHSIG): it stops gracefully.
            for ws in by_pid.values():
                _, end = await ws.recv_closed()
                assert end.code == 1001
    await wait_until(lambda: all(ended(pid) for pid in by_pid), "the orphaned workers to end")
    with socket.socket() as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind((HOST, program.port))  # no process holds the port any more
        again.listen()


async def test_an_occupied_port_stops_the_parent_with_a_message(roost_backend) -> None:
    with occupied_port() as port:
        result = await run_to_end(
            [PROGRAM, "4"], env={"ROOST_PORT": str(port), "ROOST_BACKEND": roost_backend}
        )
    assert result.returncode == 1
    errors = result.stderr.decode()
    assert f"cannot serve on {HOST}:{port}" in errors, errors
    assert "in use" in errors.lower(), errors
    assert "Traceback" not in errors, errors
    assert SERVING_PREFIX not in result.stdout.decode()


async def test_a_worker_that_cannot_serve_stops_the_others(tmp_path: Path, roost_backend) -> None:
    # Every worker's bind fails (the parent holds the port, so only a fault does this).
    program_file = tmp_path / "failing_workers.py"
    program_file.write_text(
        textwrap.dedent(f"""
        import os
        from roost import App

        def failing_bind(self, host, port, **kwargs):
            # One write: the parent may stop this worker at any moment (another
            # failed), and a print may be several writes.
            os.write(1, f"child {{os.getpid()}}\\n".encode())
            raise OSError(f"cannot serve on {{host}}:{{port}}: no room in worker {{os.getpid()}}")

        App._bind = failing_bind
        app = App(__file__)

        @app.websocket("/ws")
        async def handler(websocket):
            pass

        app.start(port=0, backend={roost_backend!r}, workers=3)
        print("start returned", flush=True)
    """)
    )
    result = await run_to_end([str(program_file)])
    assert result.returncode == 1
    errors = result.stderr.decode()
    assert "no room in worker" in errors, errors
    assert "Traceback" not in errors, errors
    output = result.stdout.decode()
    assert SERVING_PREFIX not in output and "start returned" not in output
    children = [int(pid) for pid in re.findall(r"^child (\d+)$", output, re.MULTILINE)]
    assert children and all(gone(pid) for pid in children), output


async def test_workers_that_keep_dying_stop_the_program(connect, roost_backend) -> None:
    async with workers_program(roost_backend, expect_exit=1) as program:
        crashed: set[int] = set()
        with anyio.fail_after(WAIT):
            while b"stopping" not in program.errors:
                try:
                    async with connect(program.url + "/pid") as ws:
                        crashed.add(int(await ws.recv()))
                        await ws.send("crash")
                        await ws.recv_closed()
                except OSError:
                    pass  # the program is stopping: the port is closed
                await anyio.sleep(0.05)
        program.signalled = True  # it stops by itself
    errors = program.errors.decode()
    assert "exited with status 3" in errors, errors
    assert "5 workers died within 10 s; stopping" in errors, errors
    assert len(crashed) >= 5
    assert all(gone(pid) for pid in crashed)


async def test_sys_exit_in_a_handler_ends_the_program_with_its_status(
    connect, roost_backend
) -> None:
    async with workers_program(roost_backend, workers=2, expect_exit=7) as program:
        async with connect(program.url + "/pid") as ws:
            await ws.recv()
            await ws.send("exit 7")
            _, end = await ws.recv_closed()
            assert end.code == 1001
        program.signalled = True
    assert b"Traceback" not in program.errors, program.errors


async def test_roost_workers_sets_the_number_of_workers(connect, roost_backend) -> None:
    async with workers_program(roost_backend, None, env={"ROOST_WORKERS": "2"}) as program:
        assert program.first_line.endswith(f"({roost_backend}, 2 workers); Ctrl+C stops")
        pids = await answers(connect, program.url, 60)
        assert len(pids) == 2 and sum(pids.values()) == 60


async def test_one_worker_serves_in_the_process_itself(connect, roost_backend) -> None:
    async with workers_program(roost_backend, 1) as program:
        assert program.first_line.endswith(f"({roost_backend}); Ctrl+C stops")
        assert await answers(connect, program.url, 5) == {program.process.pid: 5}


@pytest.mark.parametrize(
    "workers, error",
    [(0, ValueError), (-2, ValueError), ("2", TypeError), (2.0, TypeError), (True, TypeError)],
)
def test_workers_must_be_an_int_of_at_least_1(workers: Any, error: type[Exception]) -> None:
    app = App(__file__)

    @app.websocket("/ws")
    async def handler(websocket):
        pass

    with pytest.raises(error, match="workers"):
        app.start(port=0, workers=workers)


@pytest.mark.parametrize("value", ["0", "two", "-1", "1.5"])
def test_roost_workers_must_be_an_integer_of_at_least_1(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("ROOST_WORKERS", value)
    app = App(__file__)

    @app.websocket("/ws")
    async def handler(websocket):
        pass

    with pytest.raises(ValueError, match="ROOST_WORKERS"):
        app.start(port=0)
