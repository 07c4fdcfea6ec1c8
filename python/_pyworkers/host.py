"""The module user code imports as `pyworkers`: the host's functions, and handles.

    from pyworkers import host, HostError, ref

    user = host.fetchUser(42)                # blocks until the TypeScript function settles
    user = host.call('fetchUser', 42)        # the same, by name
    user = await host.fetchUser(42)          # in a coroutine: awaits without blocking the event loop
    return {'model': ref(model)}             # the model stays here; the host gets a handle (PyRef)

Installed in sys.modules as 'pyworkers' by the worker at start (worker.py).
"""
import sys
import types

from .callbacks import HostError
from .refs import Ref

_worker = None


def ref(obj):
    """Send `obj` to the host as a handle (a PyRef) rather than as a value: it stays in this worker."""
    return Ref(obj)


class HostFunction:
    """A function of the host, by name: call it like a Python function."""

    __slots__ = ('name',)

    def __init__(self, name):
        self.name = name

    def __call__(self, *args, **kwargs):
        return _call(self.name, args, kwargs)

    def __repr__(self):
        return '<host function %r>' % self.name


class Host:
    """The functions the host registered (`createPool({ functions })`, `pool.expose()`), as attributes."""

    __slots__ = ()

    def __getattr__(self, name):
        if name.startswith('__'):
            raise AttributeError(name)
        return HostFunction(name)

    def call(self, name, *args, **kwargs):
        """Call the host function `name` (keyword arguments arrive as one object after the others)."""
        return _call(name, args, kwargs)

    def __repr__(self):
        return '<pyworkers host>'


host = Host()


def _call(name, args, kwargs):
    worker = _worker
    if worker is None:
        raise RuntimeError('pyworkers.host works only in a pyworkers worker')
    return worker.call_host(name, args, kwargs)


def install(worker):
    """Make `import pyworkers` give this module's API, bound to `worker`."""
    global _worker
    _worker = worker
    module = types.ModuleType('pyworkers', __doc__)
    module.host = host
    module.HostError = HostError
    module.HostFunction = HostFunction
    module.ref = ref
    module.__all__ = ['host', 'HostError', 'ref']
    sys.modules['pyworkers'] = module
