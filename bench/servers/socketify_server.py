"""socketify (uWebSockets): /ws answers "Echo: <msg>", /chat publishes each message to a
topic every /chat client subscribes to; app.publish reaches the sender too."""

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


# Backpressure limits large enough that a broadcast burst is queued, not dropped.
LIMITS = {
    "compression": 0,
    "max_payload_length": 1 << 20,
    "idle_timeout": 960,
    "max_backpressure": 16 << 20,
}
app.ws("/ws", {**LIMITS, "message": echo})
app.ws("/chat", {**LIMITS, "open": chat_open, "message": chat})

if __name__ == "__main__":
    args = parse(__doc__)
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app.listen({"port": args.port, "host": "127.0.0.1"}, lambda config: None)
    app.run()
