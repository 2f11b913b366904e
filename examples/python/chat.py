"""A chat server: clients of /chat?name=NAME see each other's messages.

Connect with any WebSocket client, for instance:
    python -m websockets "ws://127.0.0.1:8080/chat?name=alice"
"""

from _cli import run

from roost import App, WebSocketDisconnect

app = App(__file__)


@app.websocket("/chat")
async def chat(websocket, name: str | None = None):
    who = name or websocket.id[:8]
    try:
        await websocket.broadcast(f"* {who} joined")
        async for message in websocket:
            text = message if isinstance(message, str) else message.decode("utf-8", "replace")
            await websocket.broadcast(f"{who}: {text}")
    except WebSocketDisconnect:
        pass


@chat.on_connect
def welcome(websocket, name: str | None = None):
    who = name or websocket.id[:8]
    return f"Welcome to the chat, {who}. Everything you type goes to everyone here."


@chat.on_close
async def left(websocket, name: str | None = None):
    who = name or websocket.id[:8]
    try:
        await websocket.broadcast(f"* {who} left")
    except WebSocketDisconnect:
        pass  # the server is shutting down


if __name__ == "__main__":
    run(app, __doc__)
