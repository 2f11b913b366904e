"""Command line shared by the examples: --host, --port and --backend."""

from __future__ import annotations

import argparse

from roost import App


def run(app: App, description: str) -> None:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument(
        "--backend",
        choices=["asyncio", "uvloop", "trio"],
        default=None,
        help="event loop (default: $ROOST_BACKEND or asyncio)",
    )
    args = parser.parse_args()
    app.start(host=args.host, port=args.port, backend=args.backend)
