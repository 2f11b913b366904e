"""Robyn: /ws answers "Echo: <msg>", /chat broadcasts each message to every /chat
client, the sender included; /sub?topic=T subscribes to topic T, /pub?topic=T sends each
message to every subscriber of T. Robyn has no topics: a dict of topic -> set of
subscribers' websockets, each sent to with its own send_text. One process, one worker,
unless `--processes N` (Robyn's multi-process mode, for bench/scale_out.py)."""

import sys

from _args import parse

args = parse(__doc__, processes=True)
# Robyn reads its process and worker counts from the command line.
sys.argv = [sys.argv[0], "--processes", str(args.processes), "--workers", "1"]
sys.argv += ["--log-level", "WARNING"]

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


if __name__ == "__main__":
    app.start(host=args.host, port=args.port, _check_port=False)
