"""Echo: answers each text message with "Echo: <message>"."""

from _cli import run

from roost import Robyn

app = Robyn(__file__)


@app.websocket("/web_socket")
async def handler(websocket):
    while True:
        msg = await websocket.receive_text()
        await websocket.send_text(f"Echo: {msg}")


if __name__ == "__main__":
    run(app, __doc__)
