"""A chat with rooms, in the browser: open http://127.0.0.1:8080/, pick a name and a
room, and talk with everyone in that room.

The page (chat_page/: HTML, CSS and JavaScript, no build step) is served by the core
at "/". It speaks JSON over the WebSocket /chat?name=NAME&room=ROOM (room "lobby" when
left out):
    to the page:  {"type": "joined" or "left", "name": ..., "people": [names in the room]}
                  {"type": "message", "name": ..., "text": ...}
                  {"type": "error", "text": ...}
    from it:      {"text": ...}
Any WebSocket client can join too, for instance:
    python -m websockets "ws://127.0.0.1:8080/chat?name=alice&room=lobby"
and then type {"text": "hello"}.

CHAT_COMPRESSION=deflate turns on permessage-deflate, which every browser offers.
"""

import json
import os
from collections import Counter, defaultdict
from pathlib import Path

from _cli import run

from roost import App, WebSocketDisconnect

PAGE = Path(__file__).resolve().parent / "chat_page"
MAX_NAME = 32  # characters of a name or a room; the page's inputs say the same
MAX_TEXT = 2000  # characters of a message; the page's input says the same

# A message of MAX_TEXT characters takes at most 4 bytes each in UTF-8 (6 for a
# control character, which JSON escapes): anything larger is not from the page, and
# the core closes its connection (1009).
app = App(
    __file__,
    max_message_size=16 * 1024,
    compression=os.environ.get("CHAT_COMPRESSION") or None,
)
app.static("/", PAGE)

# Who is in each room: a name may be there more than once (two tabs), so each name has
# a count. Each joined or left event carries the room's whole list, so a page never
# has to reconcile a list of its own with the events it missed.
people: defaultdict[str, Counter[str]] = defaultdict(Counter)


def names(room: str) -> list[str]:
    return sorted(people[room], key=str.casefold)


def one_line(value: str | None) -> str:
    """`value` with its runs of white space (newlines too) made single spaces, cut to
    MAX_NAME characters."""
    return " ".join((value or "").split())[:MAX_NAME]


def event(kind: str, **fields: object) -> str:
    return json.dumps({"type": kind, **fields}, ensure_ascii=False, separators=(",", ":"))


def text_of(message: str | bytes) -> str | None:
    """The text of a {"text": ...} message, or None when it is not one."""
    try:
        data = json.loads(message)
    except (ValueError, RecursionError):  # not JSON, or nested past Python's stack
        return None
    text = data.get("text") if isinstance(data, dict) else None
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
        return None
    return text


@app.websocket("/chat")
async def chat(websocket, name: str | None = None, room: str | None = None):
    who = one_line(name) or f"guest-{websocket.id[:4]}"
    room = one_line(room) or "lobby"
    # A room is a topic. The change to `people` and its announcement happen with no
    # await between them (app.publish queues at once), so every page receives the
    # lists in the order they changed. The subscription comes first: on a connection
    # already gone it raises, and nobody is counted who will not be taken out.
    websocket.subscribe(room)
    people[room][who] += 1
    websocket.room, websocket.who = room, who  # on_close needs them: see left()
    app.publish(room, event("joined", name=who, people=names(room)))
    try:
        async for message in websocket:
            text = text_of(message)
            if text is None:
                hint = f'send {{"text": "..."}}, 1 to {MAX_TEXT} characters'
                await websocket.send_text(event("error", text=hint))
                continue
            await websocket.publish(room, event("message", name=who, text=text), include_self=True)
    except WebSocketDisconnect:
        pass


@chat.on_close
def left(websocket):
    # The room is the one the handler kept. A connection that ended before its handler
    # began has none.
    room = getattr(websocket, "room", None)
    if room is None:
        return
    # When the client left, the core has already taken it out of its topic; when the
    # server closes it (stopping), not yet, and it would hear of its own leaving.
    websocket.unsubscribe(room)
    who = websocket.who
    people[room][who] -= 1
    if people[room][who] <= 0:
        del people[room][who]
    remaining = names(room)
    if not remaining:
        del people[room]
    app.publish(room, event("left", name=who, people=remaining))


if __name__ == "__main__":
    run(app, __doc__)
