"""Connect and close callbacks: a welcome message first, a goodbye message last."""

from _cli import run

from roost import Robyn

app = Robyn(__file__)


@app.websocket("/chat")
async def chat(websocket):
    while True:
        msg = await websocket.receive_text()
        if msg == "bye":
            await websocket.close()
            return
        await websocket.broadcast(msg)


@chat.on_connect
def on_connect(websocket):
    return f"Welcome, {websocket.id}!"


@chat.on_close
def on_close(websocket):
    return "Goodbye!"


if __name__ == "__main__":
    run(app, __doc__)
