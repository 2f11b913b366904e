"""A Roost echo server for the Autobahn|Testsuite: ws://HOST:PORT/echo sends every
message back unchanged, text as text and binary as binary.

    python3 tests/autobahn/echo_server.py --port PORT [--host HOST] [--backend trio]

The message limit is raised, to 16 MiB + 1 KiB (the suite's performance cases, 9.*,
send messages of up to 16 MiB); the frame limit follows it, as it does for any
application that sets only `max_message_size`. permessage-deflate is on (12.* and
13.*).
"""

from __future__ import annotations

import argparse

from roost import App, WebSocket, WebSocketDisconnect

MAX_MESSAGE_SIZE = 16 * 1024 * 1024 + 1024

app = App(max_message_size=MAX_MESSAGE_SIZE, compression="deflate")


@app.websocket("/echo")
async def echo(websocket: WebSocket) -> None:
    try:
        while True:
            await websocket.send(await websocket.receive())
    except WebSocketDisconnect:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9001, help="port (0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--backend", choices=("asyncio", "uvloop", "trio"), default=None)
    args = parser.parse_args()
    app.start(host=args.host, port=args.port, backend=args.backend)


if __name__ == "__main__":
    main()
