"""Answers each connection with the pid of the worker process serving it, for
tests/python/test_workers.py. Then echoes; "crash" ends the worker at once (as a crash
would), "exit N" asks the program to end with status N (sys.exit in a handler). /chat
first sends "joined" (the handler runs once the client is a broadcast recipient, so a
client that has read it hears every later broadcast), then broadcasts each message to
every /chat client of every worker, through the backplane that ROOST_BACKPLANE names
(tests/python/test_backplane.py).

    python worker_pids.py [WORKERS]    host, port and backend from ROOST_HOST,
                                        ROOST_PORT and ROOST_BACKEND; workers from
                                        the argument, else ROOST_WORKERS; wss://
                                        with ROOST_TLS_CERT and ROOST_TLS_KEY (paths)
"""

import os
import sys

from roost import App

app = App(__file__, shutdown_grace=2.0)

JOINED = "joined"


@app.websocket("/pid")
async def pid(websocket):
    await websocket.send_text(str(os.getpid()))
    async for message in websocket:
        if message == "crash":
            os._exit(3)
        if message.startswith("exit "):
            sys.exit(int(message.split()[1]))
        await websocket.send_text(message)


@app.websocket("/chat")
async def chat(websocket):
    await websocket.send_text(JOINED)
    async for message in websocket:
        await websocket.broadcast(message)


if __name__ == "__main__":
    app.start(
        workers=int(sys.argv[1]) if len(sys.argv) > 1 else None,
        ssl_certfile=os.environ.get("ROOST_TLS_CERT"),
        ssl_keyfile=os.environ.get("ROOST_TLS_KEY"),
    )
