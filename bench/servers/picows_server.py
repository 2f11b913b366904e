"""picows: /ws answers "Echo: <msg>", /chat sends each message to every /chat client,
the sender included (transport.send is synchronous); /sub?topic=T subscribes to topic T,
/pub?topic=T sends each message to every subscriber of T (a dict of topic -> set of
transports)."""

import asyncio
import signal
from urllib.parse import parse_qs, urlsplit

from _args import parse, run
from picows import WSListener, WSMsgType, ws_create_server

chat_clients = set()
subscribers = {}


class Echo(WSListener):
    def on_ws_frame(self, transport, frame):
        if frame.msg_type == WSMsgType.TEXT:
            transport.send(WSMsgType.TEXT, b"Echo: " + frame.get_payload_as_bytes())
        elif frame.msg_type == WSMsgType.BINARY:
            transport.send(WSMsgType.BINARY, b"Echo: " + frame.get_payload_as_bytes())
        elif frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()


class Relay(WSListener):
    """Sends each text message to every transport in `audience`; the connection belongs
    to the set `joins` (if any) while it is open."""

    def __init__(self, audience, joins=None):
        self.audience = audience
        self.joins = joins

    def on_ws_connected(self, transport):
        if self.joins is not None:
            self.joins.add(transport)

    def on_ws_disconnected(self, transport):
        if self.joins is not None:
            self.joins.discard(transport)

    def on_ws_frame(self, transport, frame):
        if frame.msg_type == WSMsgType.TEXT:
            payload = frame.get_payload_as_bytes()
            for client in list(self.audience):
                client.send(WSMsgType.TEXT, payload)
        elif frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()


def route(request):
    if request.path == b"/ws":
        return Echo()
    if request.path == b"/chat":
        return Relay(chat_clients, joins=chat_clients)
    url = urlsplit(request.path.decode())
    if url.path not in ("/sub", "/pub"):
        return None
    topic = subscribers.setdefault(parse_qs(url.query).get("topic", [""])[0], set())
    return Relay((), joins=topic) if url.path == "/sub" else Relay(topic)


async def main(port):
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    server = await ws_create_server(route, "127.0.0.1", port, max_frame_size=1 << 20)
    async with server:
        await stop


if __name__ == "__main__":
    args = parse(__doc__, loop=True)
    run(main(args.port), args)
