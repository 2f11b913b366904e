"""websockets (asyncio implementation): /ws answers "Echo: <msg>", /chat broadcasts each
message to every /chat client, the sender included (websockets.broadcast); /sub?topic=T
subscribes to topic T, /pub?topic=T broadcasts each message to the subscribers of T (a
dict of topic -> set of connections).

`--tls-cert/--tls-key` serve wss:// (serve(..., ssl=context)); `--compression` accepts
permessage-deflate with websockets' default settings (compression="deflate", its
default, which the other scenarios turn off)."""

import asyncio
import signal
from urllib.parse import parse_qs, urlsplit

import websockets
from _args import parse, run, ssl_context
from websockets.asyncio.server import serve

chat_clients = set()
subscribers = {}


async def handler(ws):
    path = ws.request.path
    if path == "/ws":
        async for msg in ws:
            await ws.send("Echo: " + msg if isinstance(msg, str) else b"Echo: " + msg)
    elif path == "/chat":
        chat_clients.add(ws)
        try:
            async for msg in ws:
                websockets.broadcast(chat_clients, msg)
        finally:
            chat_clients.discard(ws)
    else:
        url = urlsplit(path)
        topic = parse_qs(url.query).get("topic", [""])[0]
        if url.path == "/sub":
            topic_subscribers = subscribers.setdefault(topic, set())
            topic_subscribers.add(ws)
            try:
                async for _ in ws:
                    pass
            finally:
                topic_subscribers.discard(ws)
        elif url.path == "/pub":
            async for msg in ws:
                websockets.broadcast(subscribers.get(topic, ()), msg)


async def main(args):
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with serve(
        handler,
        "127.0.0.1",
        args.port,
        ssl=ssl_context(args),
        compression="deflate" if args.compression else None,
        ping_interval=None,
        max_size=1 << 20,
    ):
        await stop


if __name__ == "__main__":
    args = parse(__doc__, tls=True, compression=True, loop=True)
    run(main(args), args)
