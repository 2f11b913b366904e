"""The command line every benchmark server takes: `--port PORT`, and `--host` (127.0.0.1
unless a scale-out run puts the server on a network namespace's address); for servers
that take part in the TLS and compression scenarios, `--tls-cert PEM --tls-key PEM`
(serve wss://) and `--compression` (accept permessage-deflate); for those that take part
in the HTTP scenarios, `--static-dir DIR` (serve DIR's files under /static/); for
asyncio servers, `--loop uvloop` (run on uvloop's event loop, as their users run them
for speed)."""

import argparse
import asyncio
import ssl


def parse(
    description,
    backends=None,
    worker_threads=False,
    processes=False,
    backplane=False,
    tls=False,
    compression=False,
    http=False,
    fast=False,
    loop=False,
):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    if backends:
        parser.add_argument("--backend", choices=backends, default=backends[0])
    if worker_threads:
        parser.add_argument(
            "--worker-threads", type=int, default=1, help="threads of Roost's I/O runtime"
        )
    if processes:
        parser.add_argument(
            "--processes", type=int, default=1, help="processes serving the port (scale-out)"
        )
    if backplane:
        parser.add_argument("--backplane", help="Redis URL of the backplane")
    if tls:
        parser.add_argument("--tls-cert", help="PEM file of the certificate chain: serve wss://")
        parser.add_argument("--tls-key", help="PEM file of the certificate's private key")
    if compression:
        parser.add_argument(
            "--compression", action="store_true", help="accept permessage-deflate (RFC 7692)"
        )
    if http:
        parser.add_argument(
            "--static-dir", help="directory whose files are served under /static/ (HTTP scenarios)"
        )
    if fast:
        parser.add_argument(
            "--fast", action="store_true", help="the framework's own fast mode, as its docs advise"
        )
    if loop:
        parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    args = parser.parse_args()
    if tls and bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    return args


def ssl_context(args):
    """The server-side SSL context of `--tls-cert`/`--tls-key` (None without them):
    Python's defaults for a server, as an application would make it."""
    if not args.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.tls_cert, args.tls_key)
    return context


def run(main, args):
    """Runs the coroutine `main` on the event loop `--loop` chose."""
    if args.loop == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)


def new_loop(args):
    """A new event loop of the kind `--loop` chose (for servers that take a loop)."""
    if args.loop == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()
