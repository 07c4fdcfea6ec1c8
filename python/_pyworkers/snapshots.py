"""Snapshots without pyworkers' own allocations, fast.

`Snapshot.filter_traces` matches every trace's file name with fnmatch: ~12 us a trace, seconds for a few hundred
thousand live blocks. Traces share their traceback objects, so here the verdict is taken once per traceback.
"""
import os
import tracemalloc

from .paths import RUNTIME_DIR

# Allocations whose most recent frame is in one of these files are left out.
_EXCLUDED = (RUNTIME_DIR + os.sep, tracemalloc.__file__, '<frozen importlib._bootstrap')


def without_runtime(snapshot):
    """`snapshot` without the allocations made by the worker runtime and by tracemalloc itself."""
    try:
        traces = snapshot.traces._traces  # raw (domain, size, traceback, total_nframe), traceback most recent first
    except AttributeError:  # not CPython's layout: the slow, public way
        return snapshot.filter_traces(tuple(tracemalloc.Filter(False, name + '*') for name in _EXCLUDED))
    verdicts = {}
    kept = []
    append = kept.append
    for trace in traces:
        traceback = trace[2]
        key = id(traceback)  # identical tracebacks are one object in a snapshot
        keep = verdicts.get(key)
        if keep is None:
            keep = verdicts[key] = not traceback or not traceback[0][0].startswith(_EXCLUDED)
        if keep:
            append(trace)
    return tracemalloc.Snapshot(kept, snapshot.traceback_limit)
