"""Receiving: replies "Got: <message>" and notes when the client leaves."""

from _cli import run

from roost import Robyn, WebSocketDisconnect

app = Robyn(__file__)


@app.websocket("/ws")
async def handler(websocket):
    try:
        while True:
            msg = await websocket.receive_text()
            await websocket.send_text(f"Got: {msg}")
    except WebSocketDisconnect:
        print(f"Client {websocket.id} disconnected", flush=True)


if __name__ == "__main__":
    run(app, __doc__)
