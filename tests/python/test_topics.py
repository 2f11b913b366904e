"""Topics: websocket.subscribe / unsubscribe / subscriptions / publish, app.publish
from the loop and from other threads, subscriber counts, the end of a connection,
bad topics, and the two slow-consumer policies (with app.stats())."""

from __future__ import annotations

import threading

import anyio
import anyio.lowlevel
import pytest

from conftest import OP_BINARY, OP_TEXT, RawClient, eventually, serving
from roost import App, WebSocketDisconnect

pytestmark = pytest.mark.anyio


def topics_app(**options) -> tuple[App, dict]:
    """/t?name=N: registered under N; it subscribes to what a client sends as
    "+TOPIC", unsubscribes on "-TOPIC", publishes "TOPIC>TEXT" (">>" to include
    itself) and answers "?" with its sorted subscriptions."""
    app = App(__file__, **options)
    sockets: dict = {}

    @app.websocket("/t")
    async def handler(websocket, name: str):
        sockets[name] = websocket
        async for message in websocket:
            if message.startswith("+"):
                await websocket.send_text(f"subscribed {websocket.subscribe(message[1:])}")
            elif message.startswith("-"):
                await websocket.send_text(f"unsubscribed {websocket.unsubscribe(message[1:])}")
            elif message == "?":
                await websocket.send_text(",".join(sorted(websocket.subscriptions)))
            elif ">>" in message:
                topic, text = message.split(">>", 1)
                await websocket.publish(topic, text, include_self=True)
            else:
                topic, text = message.split(">", 1)
                await websocket.publish(topic, text)

    return app, sockets


async def test_publish_reaches_subscribers_but_the_sender_unless_included(connect) -> None:
    app, sockets = topics_app()
    async with serving(app) as url:
        async with (
            connect(url + "/t?name=a") as a,
            connect(url + "/t?name=b") as b,
            connect(url + "/t?name=c") as c,
        ):
            for ws in (a, b):
                await ws.send("+room")
                assert await ws.recv() == "subscribed True"
            await a.send("+room")
            assert await a.recv() == "subscribed False"
            await b.send("+news")
            assert await b.recv() == "subscribed True"
            await b.send("?")
            assert await b.recv() == "news,room"
            assert app.subscriber_count("room") == 2
            assert app.subscriber_count("news") == 1
            assert app.subscriber_count("nobody") == 0
            assert app.stats().topics == 2

            await a.send("room>from a")  # the sender is left out
            assert await b.recv() == "from a"
            await a.recv_nothing()
            await c.recv_nothing()
            await a.send("room>>to all")  # unless it asks to be included
            assert await a.recv() == "to all"
            assert await b.recv() == "to all"
            await c.send("room>from outside")  # publishing needs no subscription
            assert await a.recv() == "from outside"
            assert await b.recv() == "from outside"
            await c.recv_nothing()

            await a.send("-room")
            assert await a.recv() == "unsubscribed True"
            await a.send("-room")
            assert await a.recv() == "unsubscribed False"
            assert app.subscriber_count("room") == 1
            assert app.publish("room", b"\x00bytes") == 1
            assert await b.recv() == b"\x00bytes"
            await a.recv_nothing()


async def test_publishes_and_direct_sends_keep_their_order_per_recipient(connect) -> None:
    app = App(__file__)
    ready = anyio.Event()
    sockets: list = []

    @app.websocket("/feed")
    async def feed(websocket):
        websocket.subscribe("feed")
        sockets.append(websocket)
        if len(sockets) == 3:
            ready.set()
        await websocket.receive_text()

    async with serving(app) as url:
        async with (
            connect(url + "/feed") as a,
            connect(url + "/feed") as b,
            connect(url + "/feed") as c,
        ):
            await ready.wait()
            for i in range(300):
                if i % 3 == 0:
                    for ws in sockets:
                        await ws.send_text(str(i))
                elif i % 3 == 1:
                    assert app.publish("feed", str(i)) == 3
                else:
                    assert await sockets[0].publish("feed", str(i), include_self=True) == 3
            for ws in (a, b, c):
                assert [await ws.recv() for _ in range(300)] == [str(i) for i in range(300)]


async def test_app_publish_from_a_background_task_and_from_threads(connect) -> None:
    app = App(__file__)
    subscribed = anyio.Event()

    @app.websocket("/ticker")
    async def ticker(websocket):
        websocket.subscribe("ticks")
        subscribed.set()
        await websocket.receive_text()

    threads, each = 3, 300
    results: list[int] = []

    def publish_from_thread(n: int) -> None:
        for i in range(each):
            results.append(app.publish("ticks", f"thread {n}:{i}"))
            # Publishing to a topic no one joined is a lookup and nothing else.
            results.append(app.publish("silence", "x") + 1)

    async def publish_from_task() -> None:
        for i in range(each):
            assert app.publish("ticks", f"task:{i}") == 1
            await anyio.lowlevel.checkpoint()

    async with serving(app) as url:
        async with connect(url + "/ticker") as client:
            await subscribed.wait()
            workers = [
                threading.Thread(target=publish_from_thread, args=(n,)) for n in range(threads)
            ]
            async with anyio.create_task_group() as tg:
                tg.start_soon(publish_from_task)
                for worker in workers:
                    worker.start()
                received = [await client.recv() for _ in range((threads + 1) * each)]
            for worker in workers:
                worker.join()
            assert results == [1] * (2 * threads * each)
            for sender in [f"thread {n}" for n in range(threads)] + ["task"]:
                mine = [m.split(":")[1] for m in received if m.split(":")[0] == sender]
                assert mine == [str(i) for i in range(each)], sender
            await client.recv_nothing()


async def test_a_connection_that_ends_leaves_its_topics(connect) -> None:
    app = App(__file__)
    gone: list = []

    @app.websocket("/t")
    async def handler(websocket):
        websocket.subscribe("shared")
        websocket.subscribe(f"own {websocket.id}")
        try:
            await websocket.receive_text()
        except WebSocketDisconnect:
            gone.append(websocket)

    async with serving(app) as url:
        async with connect(url + "/t") as stays:
            for _ in range(20):
                async with connect(url + "/t"):
                    await eventually(lambda: app.subscriber_count("shared") >= 2)
            await eventually(lambda: len(gone) == 20, what="20 disconnects")
            assert app.subscriber_count("shared") == 1
            assert app.stats().topics == 2  # "shared" and the open connection's own
            ws = gone[0]
            assert ws.subscriptions == frozenset()
            assert ws.unsubscribe("shared") is False
            with pytest.raises(WebSocketDisconnect):
                ws.subscribe("shared")
            assert app.publish("shared", "still here") == 1
            assert await stays.recv() == "still here"
    stats = app.stats()
    assert (stats.connections, stats.topics) == (0, 0)
    assert app.publish("shared", "no one") == 0  # not serving: no one to reach


@pytest.mark.parametrize(
    ("topic", "error", "words"),
    [
        (b"room", TypeError, "topic must be a str, not bytes"),
        (None, TypeError, "topic must be a str, not NoneType"),
        (7, TypeError, "not int"),
        ("", ValueError, "must not be empty"),
        ("x" * 1025, ValueError, "1025 bytes"),
        ("é" * 513, ValueError, "1026 bytes"),  # the limit counts UTF-8 bytes
        ("\ud800", ValueError, "not valid text"),
    ],
)
async def test_bad_topics_raise_a_typed_error_with_a_message(connect, topic, error, words) -> None:
    app = App(__file__)
    outcomes: list = []

    @app.websocket("/t")
    async def handler(websocket):
        for call in (
            lambda: websocket.subscribe(topic),
            lambda: websocket.unsubscribe(topic),
        ):
            with pytest.raises(error) as raised:
                call()
            outcomes.append(str(raised.value))
        with pytest.raises(error) as raised:
            await websocket.publish(topic, "x")
        outcomes.append(str(raised.value))
        assert websocket.subscribe("x" * 1024) is True  # the longest name is fine
        await websocket.send_text("checked")

    for call in (lambda: app.publish(topic, "x"), lambda: app.subscriber_count(topic)):
        with pytest.raises(error) as raised:  # before serving too
            call()
        outcomes.append(str(raised.value))
    async with serving(app) as url:
        async with connect(url + "/t") as client:
            assert await client.recv() == "checked"
    assert len(outcomes) == 5 and all(words in text for text in outcomes), outcomes


async def test_publish_takes_only_str_or_bytes(connect) -> None:
    app = App(__file__)
    with pytest.raises(TypeError, match="publish\\(\\) takes str or bytes, not dict"):
        app.publish("t", {"a": 1})


def test_the_slow_consumer_policy_is_checked() -> None:
    assert App(__file__).limits.slow_consumer == "close"
    with pytest.raises(ValueError, match="'close', 'skip'"):
        App(__file__, slow_consumer="drop")
    with pytest.raises(TypeError, match="slow_consumer must be a str"):
        App(__file__, slow_consumer=1)


async def publish_past_a_slow_reader(policy: str, connect) -> None:
    """Publishes numbered 8 KiB messages in rounds that a fast reader acknowledges (so
    it never falls behind) while a raw client never reads. Checks the fast one got
    everything in order and what the policy did to the slow one, counts included."""
    limit, size = 65536, 8192
    app = App(__file__, outbound_queue_bytes=limit, slow_consumer=policy)
    sockets: dict = {}
    acked = 0
    changed = anyio.Event()

    @app.websocket("/t")
    async def handler(websocket, name: str):
        nonlocal acked
        websocket.subscribe("feed")
        sockets[name] = websocket
        async for message in websocket:
            acked = int(message)
            changed.set()

    def body(i: int) -> bytes:
        return i.to_bytes(4, "big") * (size // 4)

    async def fast_reader(ws) -> list[int]:
        got: list[int] = []
        while (message := await ws.recv()) != "end":
            assert message == body(len(got)), f"message {len(got)} out of order"
            got.append(len(got))
            await ws.send(str(len(got)))
        return got

    async with serving(app) as url:
        slow = await RawClient.open(url, "/t?name=slow", rcvbuf=4096)
        async with slow, connect(url + "/t?name=fast") as fast:
            await eventually(lambda: len(sockets) == 2, what="two subscribers")
            reached: list[int] = []
            got: list[int] = []

            async def read() -> None:
                got.extend(await fast_reader(fast))

            async with anyio.create_task_group() as tg:
                tg.start_soon(read)
                # Until the slow one has been over its limit for 50 publishes.
                while len(reached) < 3000 and reached.count(1) < 50:
                    reached.append(app.publish("feed", body(len(reached))))
                    while acked < len(reached):
                        await changed.wait()
                        changed = anyio.Event()
                app.publish("feed", "end")
            stats = app.stats()
            assert got == list(range(len(reached)))
            if policy == "close":
                # The 1008 close waits for a client that never reads: up to close_timeout
                # (5 s) before the connection is dropped and the handler told.
                await eventually(
                    lambda: sockets["slow"]._closed is not None, timeout=10, what="1008"
                )
                assert sockets["slow"]._closed.code == 1008
                assert (stats.slow_consumers_closed, stats.deliveries_skipped) == (1, 0)
                assert app.subscriber_count("feed") == 1
            else:
                missed = reached.count(1)
                assert missed >= 50 and set(reached) == {1, 2}
                assert (stats.slow_consumers_closed, stats.deliveries_skipped) == (0, missed)
                assert app.connection_count() == 2 and app.subscriber_count("feed") == 2
                # What the slow one got is in order: every publish it was not over its
                # limit for, and nothing else.
                frames = []
                while len(frames) < reached.count(2) + 1:
                    frame = await slow.recv_frame()
                    assert frame is not None
                    frames.append(frame)
                expected = [body(i) for i, n in enumerate(reached) if n == 2]
                assert [f.payload for f in frames[:-1]] == expected
                assert all(f.opcode == OP_BINARY for f in frames[:-1])
                assert (frames[-1].opcode, frames[-1].payload) == (OP_TEXT, b"end")


async def test_the_close_policy_closes_a_slow_subscriber_with_1008(connect) -> None:
    await publish_past_a_slow_reader("close", connect)


async def test_the_skip_policy_keeps_a_slow_subscriber_and_counts_what_it_missed(
    connect,
) -> None:
    await publish_past_a_slow_reader("skip", connect)
