"""Running: app.start() as a user runs it (signals, occupied port, environment), and
`await app.serve()` inside plain asyncio and trio programs."""

from __future__ import annotations

import signal
import textwrap
from pathlib import Path

import anyio
import pytest

from conftest import (
    EXAMPLES,
    HOST,
    SERVING_PREFIX,
    eventually,
    occupied_port,
    run_to_end,
    running_program,
    serving,
)
from roost import App

pytestmark = pytest.mark.anyio

ECHO = str(EXAMPLES / "echo.py")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_a_signal_closes_every_client_with_1001_and_exits_0(
    connect, roost_backend, signum
) -> None:
    async with running_program([ECHO, "--port", "0", "--backend", roost_backend]) as program:
        assert program.first_line == (
            f"{SERVING_PREFIX}{HOST}:{program.port} ({roost_backend}); Ctrl+C stops"
        )
        async with (
            connect(program.url + "/web_socket") as first,
            connect(program.url + "/web_socket") as second,
        ):
            await first.send("hi")
            assert await first.recv() == "Echo: hi"
            program.send_signal(signum)
            for ws in (first, second):
                messages, end = await ws.recv_closed()
                assert messages == []
                assert end.code == 1001
    # running_program checked the exit status: 0.
    assert b"Traceback" not in program.errors


async def test_an_occupied_port_is_a_clear_error_and_a_non_zero_exit(roost_backend) -> None:
    with occupied_port() as port:
        result = await run_to_end([ECHO, "--port", str(port), "--backend", roost_backend])
    assert result.returncode != 0
    errors = result.stderr.decode()
    assert str(port) in errors
    assert "in use" in errors.lower() or "address" in errors.lower(), errors
    assert "Traceback" not in errors, errors
    assert SERVING_PREFIX not in result.stdout.decode()


async def test_environment_variables_set_the_defaults_of_start(
    tmp_path: Path, connect, roost_backend
) -> None:
    program_file = tmp_path / "env_defaults.py"
    program_file.write_text(
        textwrap.dedent("""
        from roost import App

        app = App(__file__)

        @app.websocket("/ws")
        async def handler(websocket):
            await websocket.send_text("env ok")

        app.start()
    """)
    )
    env = {"ROOST_PORT": "0", "ROOST_HOST": "127.0.0.1", "ROOST_BACKEND": roost_backend}
    async with running_program([str(program_file)], env=env) as program:
        assert program.first_line.endswith(f"({roost_backend}); Ctrl+C stops")
        assert program.first_line.startswith(f"{SERVING_PREFIX}127.0.0.1:")
        assert program.port != 0
        async with connect(program.url + "/ws") as ws:
            assert await ws.recv() == "env ok"


async def test_an_explicit_backend_argument_wins_over_the_environment(
    connect, roost_backend
) -> None:
    other = "trio" if roost_backend == "asyncio" else "asyncio"
    async with running_program(
        [ECHO, "--port", "0", "--backend", roost_backend], env={"ROOST_BACKEND": other}
    ) as program:
        assert f"({roost_backend})" in program.first_line
        async with connect(program.url + "/web_socket") as ws:
            await ws.send("x")
            assert await ws.recv() == "Echo: x"


SERVE_IN_ASYNCIO = """
import asyncio
from roost import App

app = App(__file__)

@app.websocket("/ws")
async def handler(websocket):
    msg = await websocket.receive_text()
    await websocket.send_text(f"{type(asyncio.get_running_loop()).__name__}: {msg}")
    if msg == "stop":
        app.stop()

async def main():
    server = asyncio.create_task(app.serve("127.0.0.1", 0))
    while app.port is None:
        await asyncio.sleep(0.01)
    print(f"Roost serving on ws://127.0.0.1:{app.port} (own asyncio program)", flush=True)
    await server
    print("serve() returned", flush=True)

asyncio.run(main())
"""

SERVE_IN_TRIO = """
import trio
from roost import App

app = App(__file__)

@app.websocket("/ws")
async def handler(websocket):
    msg = await websocket.receive_text()
    trio.lowlevel.current_task()  # raises unless this runs under trio
    await websocket.send_text(f"trio: {msg}")
    if msg == "stop":
        app.stop()

async def main():
    async with trio.open_nursery() as nursery:
        port = await nursery.start(app.serve, "127.0.0.1", 0)
        print(f"Roost serving on ws://127.0.0.1:{port} (own trio program)", flush=True)
    print("serve() returned", flush=True)

trio.run(main)
"""


@pytest.mark.parametrize(
    "source, greeting",
    [(SERVE_IN_ASYNCIO, "_UnixSelectorEventLoop: stop"), (SERVE_IN_TRIO, "trio: stop")],
    ids=["asyncio-program", "trio-program"],
)
async def test_await_serve_inside_plain_asyncio_and_trio_programs(
    tmp_path: Path, connect, source, greeting
) -> None:
    program_file = tmp_path / "program.py"
    program_file.write_text(source)
    async with running_program([str(program_file)], expect_exit=0) as program:
        async with connect(program.url + "/ws") as ws:
            await ws.send("stop")
            assert await ws.recv() == greeting
            messages, end = await ws.recv_closed()
            assert end.code in (1000, 1001)
        with anyio.fail_after(10):
            await program.process.wait()
        program.signalled = True  # it stopped by itself: no signal needed
    assert b"serve() returned" in program.output


async def test_a_stuck_handler_does_not_keep_the_process_alive(
    tmp_path: Path, connect, roost_backend
) -> None:
    program_file = tmp_path / "stuck.py"
    program_file.write_text(
        textwrap.dedent("""
        import anyio
        from roost import App

        app = App(__file__, shutdown_grace=0.5)

        @app.websocket("/ws")
        async def handler(websocket):
            await websocket.send_text("stuck")
            await anyio.sleep(3600)  # ignores the connection and the shutdown

        @handler.on_close
        def on_close(websocket):
            print("on_close ran", flush=True)

        app.start(port=0)
    """)
    )
    async with running_program(
        [str(program_file)], env={"ROOST_BACKEND": roost_backend}
    ) as program:
        async with connect(program.url + "/ws") as ws:
            assert await ws.recv() == "stuck"
            started = anyio.current_time()
            program.send_signal(signal.SIGTERM)
            _, end = await ws.recv_closed()
            assert end.code == 1001
        with anyio.fail_after(5):
            await program.process.wait()
        assert anyio.current_time() - started < 4
    assert b"on_close ran" in program.output


async def test_cancelling_serve_still_closes_clients_with_1001_and_runs_on_close(connect) -> None:
    app = App(__file__)
    log: list[str] = []

    @app.websocket("/ws")
    async def handler(websocket):
        await websocket.receive_text()

    @handler.on_close
    def on_close(websocket):
        log.append("on_close")

    server_scope = anyio.CancelScope()

    async def run_server(*, task_status) -> None:
        with server_scope:  # the client's tasks stay outside the cancelled scope
            await app.serve(HOST, 0, task_status=task_status)

    async with anyio.create_task_group() as tg:
        port = await tg.start(run_server)
        async with connect(f"ws://{HOST}:{port}/ws") as ws:
            await eventually(lambda: app.connection_count() == 1, what="the connection")
            server_scope.cancel()
            _, end = await ws.recv_closed()
    assert end.code == 1001
    assert log == ["on_close"]
    assert app.port is None


async def test_stop_closes_clients_with_1001_and_lets_handlers_finish(connect) -> None:
    app = App(__file__)
    log: list[str] = []

    @app.websocket("/ws")
    async def handler(websocket):
        try:
            await websocket.receive_text()
        except Exception as error:
            log.append(f"handler: {type(error).__name__} {getattr(error, 'code', '')}")
            raise

    @handler.on_close
    def on_close(websocket):
        log.append("on_close")

    async with serving(app) as url:
        async with connect(url + "/ws") as a, connect(url + "/ws") as b:
            await eventually(lambda: app.connection_count() == 2, what="two connections")
            app.stop()
            for ws in (a, b):
                _, end = await ws.recv_closed()
                assert end.code == 1001
    assert sorted(log) == ["handler: WebSocketDisconnect 1001"] * 2 + ["on_close"] * 2


async def test_serve_on_an_occupied_port_raises_os_error_and_the_app_stays_usable(connect) -> None:
    app = App(__file__)

    @app.websocket("/ws")
    async def handler(websocket):
        await websocket.send_text("served")

    with occupied_port() as port:
        with pytest.raises(OSError, match=str(port)):
            await app.serve(HOST, port)
    async with serving(app) as url:
        async with connect(url + "/ws") as ws:
            assert await ws.recv() == "served"
