"""Testing Roost apps: `TestClient` serves an app inside the test's own event loop
(asyncio or trio) and talks to it over real sockets.

    from roost.testing import TestClient

    async def test_hello():
        async with TestClient(app) as client:
            response = await client.get("/hello")
            assert response.status_code == 200 and response.text == "hi"
            async with client.websocket_connect("/ws") as ws:
                await ws.send_text("x")
                assert await ws.receive_text() == "Echo: x"

The WebSocket half needs the `websockets` package: `pip install 'roost[testing]'`.
"""

from ._client import TestClient
from ._http_client import TestResponse
from ._websocket_client import TestWebSocket, UpgradeRefused

__all__ = ["TestClient", "TestResponse", "TestWebSocket", "UpgradeRefused"]
