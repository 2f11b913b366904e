"""picows: /ws answers "Echo: <msg>", /chat sends each message to every /chat client,
the sender included (transport.send is synchronous)."""

import asyncio
import signal

from _args import parse
from picows import WSListener, WSMsgType, ws_create_server

chat_clients = set()


class Echo(WSListener):
    def on_ws_frame(self, transport, frame):
        if frame.msg_type == WSMsgType.TEXT:
            transport.send(WSMsgType.TEXT, b"Echo: " + frame.get_payload_as_bytes())
        elif frame.msg_type == WSMsgType.BINARY:
            transport.send(WSMsgType.BINARY, b"Echo: " + frame.get_payload_as_bytes())
        elif frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()


class Chat(WSListener):
    def on_ws_connected(self, transport):
        chat_clients.add(transport)

    def on_ws_disconnected(self, transport):
        chat_clients.discard(transport)

    def on_ws_frame(self, transport, frame):
        if frame.msg_type == WSMsgType.TEXT:
            payload = frame.get_payload_as_bytes()
            for client in list(chat_clients):
                client.send(WSMsgType.TEXT, payload)
        elif frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()


def route(request):
    if request.path == b"/ws":
        return Echo()
    if request.path == b"/chat":
        return Chat()
    return None


async def main(port):
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    server = await ws_create_server(route, "127.0.0.1", port, max_frame_size=1 << 20)
    async with server:
        await stop


if __name__ == "__main__":
    asyncio.run(main(parse(__doc__).port))
