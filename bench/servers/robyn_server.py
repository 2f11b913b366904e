"""Robyn: /ws answers "Echo: <msg>", /chat broadcasts each message to every /chat
client, the sender included. One process, one worker."""

import sys

from _args import parse

args = parse(__doc__)
# Robyn reads its process and worker counts from the command line.
sys.argv = [sys.argv[0], "--processes", "1", "--workers", "1", "--log-level", "WARNING"]

from robyn import Robyn  # noqa: E402

app = Robyn(__file__)


@app.websocket("/ws")
async def echo(websocket):
    while True:
        msg = await websocket.receive_text()
        await websocket.send_text("Echo: " + msg)


@app.websocket("/chat")
async def chat(websocket):
    while True:
        await websocket.broadcast(await websocket.receive_text())


if __name__ == "__main__":
    app.start(host="127.0.0.1", port=args.port, _check_port=False)
