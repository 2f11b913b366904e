"""Roost: a fast WebSocket server with Robyn's WebSocket API, on asyncio and trio.

from roost import App, WebSocketDisconnect

app = App(__file__)

@app.websocket("/ws")
async def echo(websocket):
    while True:
        msg = await websocket.receive_text()
        await websocket.send_text(f"Echo: {msg}")

@app.get("/hello")
async def hello(request):
    return "hi"

app.start(port=8080)
"""

from ._app import App
from ._errors import (
    CorePanic,
    InvalidArgument,
    InvalidState,
    RoostError,
    ServerIOError,
    TLSConfigError,
    WebSocketDisconnect,
)
from ._headers import Headers
from ._http import Request, Response, Url
from ._native import LimitOptions, Limits
from ._query import QueryParams
from ._roost_ffi import ffi as _ffi
from ._roost_ffi import lib as _lib
from ._stats import Stats
from ._websocket import Address, WebSocket

#: The same class as `App`, for code written for Robyn.
Robyn = App

__version__: str = _ffi.string(_lib.roost_version()).decode()

__all__ = [
    "Address",
    "App",
    "CorePanic",
    "Headers",
    "InvalidArgument",
    "InvalidState",
    "LimitOptions",
    "Limits",
    "QueryParams",
    "Request",
    "Response",
    "Robyn",
    "RoostError",
    "ServerIOError",
    "Stats",
    "TLSConfigError",
    "Url",
    "WebSocket",
    "WebSocketDisconnect",
    "__version__",
]
