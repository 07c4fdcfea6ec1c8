"""Functions every subject of the benchmark calls (pyworkers, python-shell, pythonia, node-calls-python).

They do as little as possible, so that what is measured is the bridge, not the function.
"""
import base64

BLOB = bytes(range(256)) * 4096  # 1 MiB, made once

# numpy and what is made from it (once), loaded by the first function that needs them: importing numpy here
# (~0.1 s) would count in every subject's start-up row. The host runs these functions only when numpy imports.
_np = None
ARRAY = None  # 2**20 float64, 8 MiB
F64 = None


def _numpy():
    global _np, ARRAY, F64
    if _np is None:
        import numpy
        _np, ARRAY, F64 = numpy, numpy.arange(1 << 20, dtype='float64'), numpy.float64(2.5)
    return _np


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


def array_out():
    _numpy()
    return ARRAY


def array_in(x):
    return len(_numpy().asarray(x))


def array_out_bytes():
    """For bridges that turn numpy arrays into lists: the array's bytes (bytes are their only binary type)."""
    _numpy()
    return ARRAY.tobytes()


def array_in_bytes(b):
    """For bridges that turn typed arrays into bytes: the same array again, without a copy."""
    return len(_numpy().frombuffer(b, dtype='float64'))


def f64():
    _numpy()
    return F64


def pyfloat():
    return 2.5


def make_ints(n):
    return list(range(n))


def make_dict(n):
    return {'k%d' % i: 'v%d' % i for i in range(n)}


def spin():
    while True:
        pass


def spin_for(seconds):
    """A pure-Python loop: the main thread holds the GIL but for the interpreter's switch interval."""
    import time
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def nap(seconds):
    import time
    time.sleep(seconds)


def callbacks(n):
    """n callbacks into the host's `ping` (a TypeScript function that returns its argument)."""
    from pyworkers import host
    ping = host.ping
    for _ in range(n):
        ping(1)
    return n
