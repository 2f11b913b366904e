"""Sending: text, bytes and JSON to the current client."""

from _cli import run

from roost import Robyn

app = Robyn(__file__)


@app.websocket("/ws")
async def handler(websocket):
    while True:
        msg = await websocket.receive_text()
        await websocket.send_text(f"Echo: {msg}")
        await websocket.send_bytes(msg.encode())
        await websocket.send_json({"echo": msg, "length": len(msg)})


if __name__ == "__main__":
    run(app, __doc__)
