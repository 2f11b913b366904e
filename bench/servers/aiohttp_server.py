"""aiohttp: /ws answers "Echo: <msg>", /chat sends each message to every /chat client,
the sender included."""

from _args import parse
from aiohttp import WSMsgType, web

chat_clients = set()


async def echo(request):
    ws = web.WebSocketResponse(compress=False, max_msg_size=1 << 20)
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == WSMsgType.TEXT:
            await ws.send_str("Echo: " + msg.data)
        elif msg.type == WSMsgType.BINARY:
            await ws.send_bytes(b"Echo: " + msg.data)
    return ws


async def chat(request):
    ws = web.WebSocketResponse(compress=False, max_msg_size=1 << 20)
    await ws.prepare(request)
    chat_clients.add(ws)
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                for client in list(chat_clients):
                    await client.send_str(msg.data)
    finally:
        chat_clients.discard(ws)
    return ws


if __name__ == "__main__":
    args = parse(__doc__)
    app = web.Application()
    app.add_routes([web.get("/ws", echo), web.get("/chat", chat)])
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)
