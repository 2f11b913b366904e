"""Robyn: /ws answers "Echo: <msg>", /chat broadcasts each message to every /chat
client, the sender included; /sub?topic=T subscribes to topic T, /pub?topic=T sends each
message to every subscriber of T. Robyn has no topics: a dict of topic -> set of
subscribers' websockets, each sent to with its own send_text. One process, one worker,
unless `--processes N` (Robyn's multi-process mode, for bench/scale_out.py).

HTTP scenarios (bench/compare.py): GET /hello answers "Hello, world!" from an async
handler (`@app.get`), and `--static-dir DIR` serves DIR's files under /static/
(`app.serve_directory`). `--fast` runs Robyn's fast mode, the setting its command line
offers for speed (its workers and log level; the processes stay `--processes`'s)."""

import sys

from _args import parse

args = parse(__doc__, processes=True, http=True, fast=True)
# Robyn reads its process and worker counts from the command line. Its fast mode picks
# its own worker count (2) and log level (WARNING).
sys.argv = [sys.argv[0], "--processes", str(args.processes)]
sys.argv += ["--fast"] if args.fast else ["--workers", "1", "--log-level", "WARNING"]

from robyn import Robyn  # noqa: E402

app = Robyn(__file__)
subscribers = {}


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
    topic_subscribers = subscribers.setdefault(topic, set())
    topic_subscribers.add(websocket)
    try:
        while True:
            await websocket.receive_text()
    finally:
        topic_subscribers.discard(websocket)


@app.websocket("/pub")
async def pub(websocket, topic: str):
    while True:
        msg = await websocket.receive_text()
        for subscriber in list(subscribers.get(topic, ())):
            await subscriber.send_text(msg)


@app.get("/hello")
async def hello(request):
    return "Hello, world!"


if args.static_dir:
    app.serve_directory("/static", args.static_dir)

if __name__ == "__main__":
    app.start(host=args.host, port=args.port, _check_port=False)
