"""Closing: the server closes the connection when the client says "quit"."""

from _cli import run

from roost import Robyn

app = Robyn(__file__)


@app.websocket("/ws")
async def handler(websocket):
    while True:
        msg = await websocket.receive_text()
        if msg == "quit":
            await websocket.close()
            break
        await websocket.send_text(f"Got: {msg}")


if __name__ == "__main__":
    run(app, __doc__)
