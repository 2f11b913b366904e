"""Roost (Python handlers): /ws answers "Echo: <msg>", /chat broadcasts each message to
every /chat client, the sender included; /sub?topic=T subscribes to topic T, /pub?topic=T
publishes each message to the subscribers of T (Roost's topics).

Scale-out (bench/scale_out.py): `--processes N` serves the port from N worker processes,
`--backplane URL` joins them (and other hosts) through Redis.

TLS and compression scenarios (bench/compare.py): `--tls-cert/--tls-key` serve wss://
(app.start's ssl_certfile/ssl_keyfile), `--compression` turns permessage-deflate on
(see COMPRESSION_KEYWORD below)."""

import inspect
import sys
import typing

from _args import parse

from roost import Robyn

# ---- compression: the one place where `--compression` maps to Roost's App keyword ----
# The keyword of App(...) that turns permessage-deflate on, and the value it is given.
COMPRESSION_KEYWORD = "compression"
COMPRESSION_VALUE = True


def app_accepts(keyword):
    """Whether App(...) takes `keyword`: as a parameter of its own, or as a key of the
    TypedDict that types its **options (`**limits: Unpack[LimitOptions]`)."""
    parameters = inspect.signature(Robyn).parameters
    if keyword in parameters:
        return True
    for parameter in parameters.values():
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            try:
                hint = typing.get_type_hints(Robyn.__init__).get(parameter.name)
            except Exception:  # unresolvable annotations: say no rather than guess
                return False
            for options in (*typing.get_args(hint), hint):
                if keyword in getattr(options, "__annotations__", {}):
                    return True
    return False


def compression_options(wanted):
    """The App keyword arguments for `--compression` (none without it); exits with a
    clear message, and status 69, when the installed roost has no such keyword."""
    if not wanted:
        return {}
    if not app_accepts(COMPRESSION_KEYWORD):
        # Exit status 69 (EX_UNAVAILABLE): bench/compare.py reports the run as not
        # supported rather than failed.
        print(
            f"this roost has no compression (App takes no {COMPRESSION_KEYWORD!r} keyword)",
            file=sys.stderr,
        )
        sys.exit(69)
    return {COMPRESSION_KEYWORD: COMPRESSION_VALUE}


# ---------------------------------------------------------------------------------------

args = parse(
    __doc__,
    ["asyncio", "trio"],
    worker_threads=True,
    processes=True,
    backplane=True,
    tls=True,
    compression=True,
)
app = Robyn(
    __file__,
    ping_interval=None,
    worker_threads=args.worker_threads,
    backplane=args.backplane,
    **compression_options(args.compression),
)


@app.websocket("/ws")
async def echo(websocket):
    while True:
        msg = await websocket.receive_text()
        await websocket.send_text("Echo: " + msg)


@app.websocket("/chat")
async def chat(websocket):
    while True:
        await websocket.broadcast(await websocket.receive_text())


@app.websocket("/sub")
async def sub(websocket, topic: str):
    websocket.subscribe(topic)
    while True:
        await websocket.receive_bytes()


@app.websocket("/pub")
async def pub(websocket, topic: str):
    while True:
        await websocket.publish(topic, await websocket.receive_text())


if __name__ == "__main__":
    tls = {"ssl_certfile": args.tls_cert, "ssl_keyfile": args.tls_key} if args.tls_cert else {}
    app.start(host=args.host, port=args.port, backend=args.backend, workers=args.processes, **tls)
