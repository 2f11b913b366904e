"""websockets (asyncio implementation): /ws answers "Echo: <msg>", /chat broadcasts each
message to every /chat client, the sender included (websockets.broadcast)."""

import asyncio
import signal

import websockets
from _args import parse
from websockets.asyncio.server import serve

chat_clients = set()


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


async def main(port):
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with serve(
        handler, "127.0.0.1", port, compression=None, ping_interval=None, max_size=1 << 20
    ):
        await stop


if __name__ == "__main__":
    asyncio.run(main(parse(__doc__).port))
