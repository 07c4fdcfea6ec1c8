"""The leak finder: runs a workload repeatedly under tracemalloc and reports what grows with the iterations.

Snapshots are taken after warm-up (A), half-way (M) and at the end (B), each after a full collection. A site
whose memory grows in both halves at a similar rate is steady growth (a leak); one that grows in one half only
is a one-off allocation. The runtime's own allocations are filtered out.
"""
import gc
import os
import tracemalloc

from .snapshots import without_runtime
from .paths import RUNTIME_DIR

_PAGE = os.sysconf('SC_PAGE_SIZE')
MIN_GROWTH = 1024  # bytes over the measured iterations below which a site is noise


def _rss():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * _PAGE


def _runner(workload, namespace):
    kind = workload[0]
    if kind == 'code':
        code = compile(workload[1], '<workload>', 'exec')
        return lambda: exec(code, namespace)
    _, module, name, args, kwargs = workload
    if module == '__main__':
        fn = namespace[name]
    else:
        import importlib
        fn = importlib.import_module(module)
        for part in name.split('.'):
            fn = getattr(fn, part)
    kwargs = kwargs or {}
    return lambda: fn(*args, **kwargs)


def check_target(module, name):
    """Why `module:name` cannot be the workload (the `pyworkers leaks` command asks first), or None."""
    import importlib
    try:
        obj = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name != module and not module.startswith((e.name or '') + '.'):
            raise  # the module exists: something it imports is missing (a real error of the module)
        return 'no module named %r' % module
    for part in name.split('.'):
        if not hasattr(obj, part):
            return 'module %r has no attribute %r' % (module, name)
        obj = getattr(obj, part)
    if not callable(obj):
        return '%s:%s is not a function (it is a %s)' % (module, name, type(obj).__name__)
    return None


def _snapshot():
    gc.collect()
    return without_runtime(tracemalloc.take_snapshot())


def _by_traceback(snap):
    return {stat.traceback: (stat.size, stat.count) for stat in snap.statistics('traceback')}


def _frames(traceback):
    # tracemalloc (3.7+) lists the oldest frame first, as the host wants.
    return [{'file': f.filename, 'line': f.lineno} for f in traceback if not f.filename.startswith(RUNTIME_DIR)]


def find_leaks(workload, iterations, warmup, frames, limit):
    namespace = __import__('__main__').__dict__
    run = _runner(workload, namespace)
    if tracemalloc.is_tracing():
        tracemalloc.stop()
    tracemalloc.start(frames)
    try:
        _snapshot()  # fills the caches the snapshots themselves use (fnmatch's compiled patterns), not measured
        for _ in range(warmup):
            run()
        first = _by_traceback(_snapshot())
        rss = []
        half = max(1, iterations // 2)
        middle = None
        for i in range(iterations):
            run()
            rss.append(_rss())
            if i + 1 == half:
                middle = _by_traceback(_snapshot())
        last = _by_traceback(_snapshot())
    finally:
        tracemalloc.stop()
    if middle is None:
        middle = last
    rest = max(1, iterations - half)
    sites = []
    for traceback, (size, count) in last.items():
        size0, count0 = first.get(traceback, (0, 0))
        growth = size - size0
        if growth < MIN_GROWTH:
            continue
        size_mid = middle.get(traceback, (0, 0))[0]
        rate1 = (size_mid - size0) / half
        rate2 = (size - size_mid) / rest
        steady = rate1 > 0 and rate2 > 0 and min(rate1, rate2) >= 0.25 * max(rate1, rate2)
        innermost = traceback[-1]
        sites.append({
            'file': innermost.filename,
            'line': innermost.lineno,
            'frames': _frames(traceback),
            'bytesPerIteration': growth / iterations,
            'countPerIteration': (count - count0) / iterations,
            'totalGrowth': growth,
            'steady': steady,
        })
    sites.sort(key=lambda s: (not s['steady'], -s['totalGrowth']))
    return {
        'sites': sites[:limit],
        'rssPerIteration': rss,
        # from the snapshots, so that the finder's own bookkeeping (its snapshots) does not count
        'tracedGrowthPerIteration': (sum(s for s, _ in last.values()) - sum(s for s, _ in first.values())) / iterations,
    }
