"""Broadcasting: every message goes to all clients of /chat, plus a receipt to the sender."""

from _cli import run

from roost import Robyn

app = Robyn(__file__)


@app.websocket("/chat")
async def handler(websocket):
    while True:
        msg = await websocket.receive_text()
        # Send to all connected clients
        await websocket.broadcast(f"User {websocket.id}: {msg}")
        # Also send a confirmation to this client only
        await websocket.send_text("Your message was sent")


if __name__ == "__main__":
    run(app, __doc__)
