"""Typed query parameters: /ws?room=chat&page=5 (page must be an int)."""

from _cli import run

from roost import Robyn, WebSocketDisconnect

app = Robyn(__file__)


@app.websocket("/ws")
async def handler(websocket, room: str = "default", page: int = 1):
    try:
        while True:
            msg = await websocket.receive_text()
            await websocket.send_text(f"room={room} page={page} msg={msg}")
    except WebSocketDisconnect:
        pass


@app.websocket("/rooms")
async def required(websocket, room: str, limit: int):
    """Both parameters are required: a client without them gets an error and 1008."""
    await websocket.send_text(f"joined {room} (limit {limit})")
    async for message in websocket:
        await websocket.send_text(f"{room}: {message}")


if __name__ == "__main__":
    run(app, __doc__)
