"""A chat with rooms: everyone starts in "lobby"; "/join NAME" moves you to room NAME,
"/who" tells how many are in your room, and anything else goes to everyone in it.

Connect with any WebSocket client, for instance:
    python -m websockets "ws://127.0.0.1:8080/rooms?name=alice"
"""

from _cli import run

from roost import App, WebSocketDisconnect

app = App(__file__)


@app.websocket("/rooms")
async def rooms(websocket, name: str | None = None):
    who = name or websocket.id[:8]
    # A room is a topic. The connection remembers its own, for on_close: by then the
    # server has taken it out of every topic.
    websocket.room = "lobby"
    websocket.subscribe("lobby")
    try:
        await websocket.publish("lobby", f"* {who} joined lobby", include_self=True)
        async for message in websocket:
            text = message if isinstance(message, str) else message.decode("utf-8", "replace")
            room = websocket.room
            if text.startswith("/join "):
                new_room = text.removeprefix("/join ").strip()
                if not new_room:
                    await websocket.send_text("usage: /join NAME")
                    continue
                websocket.unsubscribe(room)
                await websocket.publish(room, f"* {who} left for {new_room}")
                websocket.subscribe(new_room)
                websocket.room = new_room
                await websocket.publish(new_room, f"* {who} joined {new_room}", include_self=True)
            elif text == "/who":
                await websocket.send_text(f"{app.subscriber_count(room)} in {room}")
            else:
                await websocket.publish(room, f"[{room}] {who}: {text}", include_self=True)
    except WebSocketDisconnect:
        pass


@rooms.on_close
async def left(websocket, name: str | None = None):
    who = name or websocket.id[:8]
    try:
        await websocket.publish(websocket.room, f"* {who} left")
    except WebSocketDisconnect:
        pass  # the server is shutting down


if __name__ == "__main__":
    run(app, __doc__)
