"""The command line every benchmark server takes: `--port PORT` on 127.0.0.1."""

import argparse


def parse(description, backends=None, worker_threads=False):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, required=True)
    if backends:
        parser.add_argument("--backend", choices=backends, default=backends[0])
    if worker_threads:
        parser.add_argument(
            "--worker-threads", type=int, default=1, help="threads of Roost's I/O runtime"
        )
    return parser.parse_args()
