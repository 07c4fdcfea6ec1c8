"""Functions every subject of the benchmark calls (pyworkers, python-shell, pythonia, node-calls-python).

They do as little as possible, so that what is measured is the bridge, not the function.
"""
import base64

BLOB = bytes(range(256)) * 4096  # 1 MiB, made once


def echo(x):
    return x


def blob():
    return BLOB


def take(value):
    return len(value)


def blob_b64():
    """For bridges that speak only JSON: bytes as base64 text, the usual way."""
    return base64.b64encode(BLOB).decode('ascii')


def take_b64(text):
    return len(base64.b64decode(text))


def make_ints(n):
    return list(range(n))


def make_dict(n):
    return {'k%d' % i: 'v%d' % i for i in range(n)}


def spin():
    while True:
        pass
