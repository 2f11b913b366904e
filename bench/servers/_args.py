"""The command line every benchmark server takes: `--port PORT` on 127.0.0.1."""

import argparse


def parse(description, backends=None):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, required=True)
    if backends:
        parser.add_argument("--backend", choices=backends, default=backends[0])
    return parser.parse_args()
