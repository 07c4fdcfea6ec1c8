"""What the host's pool.metrics() reads from a worker: the collector's work and pauses, traced memory, handles.

Pause times come from gc.callbacks (a callback before and after each collection), in a histogram per generation
whose bucket bounds the host gives at start (INIT 'gcPauseBuckets', seconds). Installed only when the pool
collects metrics; its cost is two short Python calls per collection.
"""
import gc
import time
from bisect import bisect_left

_perf_counter = time.perf_counter


class GcPauses:
    """Per generation: counts per bucket (the last one: above every bound), the sum of pauses, their count."""

    def __init__(self, bounds):
        self.bounds = tuple(bounds)
        self.counts = [[0] * (len(self.bounds) + 1) for _ in range(3)]
        self.sums = [0.0, 0.0, 0.0]
        self.started = 0.0

    def callback(self, phase, info):
        if phase == 'start':
            self.started = _perf_counter()
            return
        pause = _perf_counter() - self.started
        generation = info.get('generation', 2)
        self.counts[generation][bisect_left(self.bounds, pause)] += 1
        self.sums[generation] += pause

    def snapshot(self):
        return [[list(counts), total] for counts, total in zip(self.counts, self.sums)]


pauses = None


def install(bounds):
    """Start timing collections (at start, from the INIT config)."""
    global pauses
    if pauses is None:
        pauses = GcPauses(bounds)
        gc.callbacks.append(pauses.callback)


def read(worker):
    """The control operation 'metrics'."""
    from . import refs
    tracemalloc = __import__('sys').modules.get('tracemalloc')
    traced = tracemalloc.get_traced_memory()[0] if tracemalloc is not None and tracemalloc.is_tracing() else None
    return {
        'gc': [[g['collections'], g['collected'], g['uncollectable']] for g in gc.get_stats()],
        'pauses': pauses.snapshot() if pauses is not None else None,
        'traced': traced,
        'handles': len(refs.TABLE),
        'calls': worker.calls,
    }
