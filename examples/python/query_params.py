"""Query parameters: /ws?name=gordon&role=commissioner."""

from _cli import run

from roost import Robyn

app = Robyn(__file__)


@app.websocket("/ws")
async def handler(websocket):
    name = websocket.query_params.get("name")
    role = websocket.query_params.get("role")

    if name == "gordon" and role == "commissioner":
        await websocket.broadcast("Gordon authorized!")

    while True:
        msg = await websocket.receive_text()
        await websocket.send_text(f"Hello {name}: {msg}")


if __name__ == "__main__":
    run(app, __doc__)
