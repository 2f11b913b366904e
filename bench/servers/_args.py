"""The command line every benchmark server takes: `--port PORT`, and `--host` (127.0.0.1
unless a scale-out run puts the server on a network namespace's address)."""

import argparse


def parse(description, backends=None, worker_threads=False, processes=False, backplane=False):
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
    return parser.parse_args()
