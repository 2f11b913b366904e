"""Roost (Python handlers): /ws answers "Echo: <msg>", /chat broadcasts each message to
every /chat client, the sender included; /sub?topic=T subscribes to topic T, /pub?topic=T
publishes each message to the subscribers of T (Roost's topics).

Scale-out (bench/scale_out.py): `--processes N` serves the port from N worker processes,
`--backplane URL` joins them (and other hosts) through Redis.

TLS and compression scenarios (bench/compare.py): `--tls-cert/--tls-key` serve wss://
(app.start's ssl_certfile/ssl_keyfile), `--compression` turns permessage-deflate on
(compression="deflate": the load generator offers no context takeover, so each message
is compressed on its own in either of Roost's modes).

HTTP scenarios (bench/compare.py): GET /hello answers "Hello, world!" from an async
handler (`@app.get`), and `--static-dir DIR` serves DIR's files under /static/
(`app.static`: the core serves them, Python never sees those requests)."""

from _args import parse

from roost import Robyn

args = parse(
    __doc__,
    ["asyncio", "uvloop", "trio"],
    worker_threads=True,
    processes=True,
    backplane=True,
    tls=True,
    compression=True,
    http=True,
)
app = Robyn(
    __file__,
    ping_interval=None,
    worker_threads=args.worker_threads,
    backplane=args.backplane,
    compression="deflate" if args.compression else None,
)


@app.websocket("/ws")
async def echo(websocket):
    while True:
        msg = await websocket.receive_text()
        await websocket.send_text("Echo: " + msg)


@app.websocket("/chat")
async def chat(websocket):
    while True:
        await websocket.broadcast(await websocket.receive_text())


@app.websocket("/sub")
async def sub(websocket, topic: str):
    websocket.subscribe(topic)
    while True:
        await websocket.receive_bytes()


@app.websocket("/pub")
async def pub(websocket, topic: str):
    while True:
        await websocket.publish(topic, await websocket.receive_text())


@app.get("/hello")
async def hello(request):
    return "Hello, world!"


if args.static_dir:
    app.static("/static", args.static_dir)

if __name__ == "__main__":
    tls = {"ssl_certfile": args.tls_cert, "ssl_keyfile": args.tls_key} if args.tls_cert else {}
    app.start(host=args.host, port=args.port, backend=args.backend, workers=args.processes, **tls)
