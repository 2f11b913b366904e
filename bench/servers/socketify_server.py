"""socketify (uWebSockets): /ws answers "Echo: <msg>", /chat publishes each message to a
topic every /chat client subscribes to; app.publish reaches the sender too. /sub?topic=T
and /pub?topic=T use uWebSockets topics as they are: the upgrade hands the topic to the
connection, a subscriber subscribes to it on open, a publisher publishes to it."""

import signal
import sys

from _args import parse
from socketify import App, OpCode

app = App()


def echo(ws, message, opcode):
    if opcode == OpCode.TEXT:
        ws.send("Echo: " + message, OpCode.TEXT)
    else:
        ws.send(b"Echo: " + message, OpCode.BINARY)


def chat_open(ws):
    ws.subscribe("chat")


def chat(ws, message, opcode):
    app.publish("chat", message, opcode)


def topic_upgrade(res, req, socket_context):
    res.upgrade(
        req.get_header("sec-websocket-key"),
        req.get_header("sec-websocket-protocol"),
        req.get_header("sec-websocket-extensions"),
        socket_context,
        req.get_query("topic") or "",
    )


def sub_open(ws):
    ws.subscribe(ws.get_user_data())


def pub(ws, message, opcode):
    # socketify's ws.publish is app.publish, to every subscriber; a publisher is none.
    ws.publish(ws.get_user_data(), message, opcode)


# Backpressure limits large enough that a broadcast burst is queued, not dropped.
LIMITS = {
    "compression": 0,
    "max_payload_length": 1 << 20,
    "idle_timeout": 960,
    "max_backpressure": 16 << 20,
}
app.ws("/ws", {**LIMITS, "message": echo})
app.ws("/chat", {**LIMITS, "open": chat_open, "message": chat})
app.ws("/sub", {**LIMITS, "upgrade": topic_upgrade, "open": sub_open})
app.ws("/pub", {**LIMITS, "upgrade": topic_upgrade, "message": pub})

if __name__ == "__main__":
    args = parse(__doc__)
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app.listen({"port": args.port, "host": "127.0.0.1"}, lambda config: None)
    app.run()
