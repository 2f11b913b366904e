"""aiohttp: /ws answers "Echo: <msg>", /chat sends each message to every /chat client,
the sender included; /sub?topic=T subscribes to topic T, /pub?topic=T sends each
message to every subscriber of T (a dict of topic -> set of connections).

`--tls-cert/--tls-key` serve wss:// (an ssl.SSLContext handed to run_app);
`--compression` accepts permessage-deflate, aiohttp's own default (compress=True),
which the other scenarios turn off."""

from _args import new_loop, parse, ssl_context
from aiohttp import WSMsgType, web

# Set from the command line before the app runs.
COMPRESS = False

chat_clients = set()
subscribers = {}


async def echo(request):
    ws = web.WebSocketResponse(compress=COMPRESS, max_msg_size=1 << 20)
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == WSMsgType.TEXT:
            await ws.send_str("Echo: " + msg.data)
        elif msg.type == WSMsgType.BINARY:
            await ws.send_bytes(b"Echo: " + msg.data)
    return ws


async def relay(request, audience, joins=None):
    """Sends each text message to every connection in `audience`; the connection
    belongs to the set `joins` (if any) while it is open."""
    ws = web.WebSocketResponse(compress=COMPRESS, max_msg_size=1 << 20)
    await ws.prepare(request)
    if joins is not None:
        joins.add(ws)
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                for client in list(audience):
                    await client.send_str(msg.data)
    finally:
        if joins is not None:
            joins.discard(ws)
    return ws


async def chat(request):
    return await relay(request, chat_clients, joins=chat_clients)


async def sub(request):
    return await relay(
        request, (), joins=subscribers.setdefault(request.query.get("topic", ""), set())
    )


async def pub(request):
    return await relay(request, subscribers.setdefault(request.query.get("topic", ""), set()))


if __name__ == "__main__":
    args = parse(__doc__, tls=True, compression=True, loop=True)
    COMPRESS = args.compression
    app = web.Application()
    app.add_routes(
        [web.get("/ws", echo), web.get("/chat", chat), web.get("/sub", sub), web.get("/pub", pub)]
    )
    web.run_app(
        app,
        host="127.0.0.1",
        port=args.port,
        ssl_context=ssl_context(args),
        print=None,
        access_log=None,
        loop=new_loop(args),
    )
