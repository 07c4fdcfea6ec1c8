"""Memory operations of the control channel: statistics, collections, tracing."""
import gc
import os
import time

from .control import operation


@operation('stats')
def stats(worker):
    """The guide's memory_stats, plus what the worker knows about itself."""
    out = {
        'gcStats': gc.get_stats(),
        'gcCount': list(gc.get_count()),
        'gcThreshold': list(gc.get_threshold()),
        'gcEnabled': gc.isenabled(),
        'calls': worker.calls,
        'uptime': time.time() - worker.started,
        'pid': os.getpid(),
    }
    import sys
    tracemalloc = sys.modules.get('tracemalloc')
    if tracemalloc is not None and tracemalloc.is_tracing():
        current, peak = tracemalloc.get_traced_memory()
        out['tracedMemoryCurrent'] = current
        out['tracedMemoryPeak'] = peak
    return out


@operation('gc')
def collect(worker, generation=2):
    return gc.collect(generation)


@operation('tracemalloc_start')
def tracemalloc_start(worker, frames=1):
    import tracemalloc
    if tracemalloc.is_tracing():
        tracemalloc.stop()
    tracemalloc.start(frames)
    return None


@operation('tracemalloc_stop')
def tracemalloc_stop(worker):
    import tracemalloc
    tracemalloc.stop()
    return None
