"""The leak finder: runs a workload repeatedly under tracemalloc and reports what grows with the iterations.

Snapshots are taken after warm-up and at CHECKPOINTS points of the measured iterations, each after a full
collection. Sites are the user's own lines (library frames folded beneath them). The shape of a site's growth
over the checkpoints decides what it is: steady growth to the end at a similar rate (a leak), growth that stopped
(a plateau: a bounded cache, a full deque: not a leak), or a step (one-off). For the top steady sites, the
references that keep their objects alive are followed to a root (referrers.py). The runtime's own allocations
are filtered out.
"""
import gc
import os
import tracemalloc

from .snapshots import without_runtime
from .paths import RUNTIME_DIR

_PAGE = os.sysconf('SC_PAGE_SIZE')
MIN_GROWTH = 1024  # bytes over the measured iterations below which a site is noise
CHECKPOINTS = 8    # snapshots over the measured iterations: the shape of each site's growth
KEPT_ALIVE_SITES = 3  # steady sites whose references are followed to a root


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


def _frames(frames):
    # tracemalloc (3.7+) lists the oldest frame first, as the host wants.
    return [{'file': f.filename, 'line': f.lineno} for f in frames if not f.filename.startswith(RUNTIME_DIR)]


def _checkpoints(iterations):
    """The measured iterations after which a snapshot is taken: CHECKPOINTS of them, evenly spread, the last one
    the last iteration."""
    marks = sorted({max(1, round(k * iterations / CHECKPOINTS)) for k in range(1, CHECKPOINTS + 1)})
    return marks


def _shape(series, marks):
    """How a site's memory went over the checkpoints: 'steady' (it grows on, at a similar rate, to the end),
    'plateau' (it grew, then stopped: a bounded cache, a deque that filled) or 'one-off' (it grew in a step)."""
    deltas = [b - a for a, b in zip(series, series[1:])]
    spans = [b - a for a, b in zip([0] + marks, marks)]
    half = len(deltas) // 2
    early = sum(deltas[:half]) / max(1, sum(spans[:half]))
    late = sum(deltas[half:]) / max(1, sum(spans[half:]))
    last_third = deltas[-max(1, len(deltas) // 3):]
    growing_windows = sum(1 for d in deltas if d > 0)
    if late > 0 and early > 0 and min(early, late) >= 0.25 * max(early, late) and growing_windows * 2 >= len(deltas) \
            and sum(last_third) > 0:
        return 'steady'
    if early > 0 and (late <= 0.1 * early or sum(last_third) <= 0):
        return 'plateau'
    return 'one-off'


def _slope(xs, ys):
    n = len(xs)
    if n < 2:
        return 0.0
    mx = sum(xs) / n
    my = sum(ys) / n
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0


def _group(snapshots, is_library):
    """Per user line: the series of its memory over the snapshots, its call paths and the library line that
    allocated most beside it. A traceback's user line is its innermost frame in the user's own files (else its
    innermost frame)."""
    groups = {}
    every = set()
    for snap in snapshots:
        every.update(snap)
    for traceback in every:
        frames = [f for f in traceback if not f.filename.startswith(RUNTIME_DIR)]
        if not frames:
            continue
        inner = frames[-1]
        user = next((f for f in reversed(frames) if not is_library(f.filename)), None)
        site = user or inner
        key = (site.filename, site.lineno)
        group = groups.get(key)
        if group is None:
            group = groups[key] = {'series': [0] * len(snapshots), 'counts': [0] * len(snapshots), 'paths': {}, 'libs': {}}
        sizes = [snap.get(traceback, (0, 0)) for snap in snapshots]
        for i, (size, count) in enumerate(sizes):
            group['series'][i] += size
            group['counts'][i] += count
        growth = sizes[-1][0] - sizes[0][0]
        path = tuple((f.filename, f.lineno) for f in frames if not is_library(f.filename)) or ((inner.filename, inner.lineno),)
        group['paths'][path] = group['paths'].get(path, 0) + growth
        if user is not None and (inner.filename, inner.lineno) != key:
            lib = (inner.filename, inner.lineno)
            group['libs'][lib] = group['libs'].get(lib, 0) + growth
    return groups


def find_leaks(workload, iterations, warmup, frames, limit):
    from .runner import _is_library
    from .referrers import kept_alive_by
    namespace = __import__('__main__').__dict__
    run = _runner(workload, namespace)
    if tracemalloc.is_tracing():
        tracemalloc.stop()
    tracemalloc.start(frames)
    marks = _checkpoints(iterations)
    try:
        _snapshot()  # fills the caches the snapshots themselves use (fnmatch's compiled patterns), not measured
        for _ in range(warmup):
            run()
        snapshots = [_by_traceback(_snapshot())]
        rss = []
        for i in range(iterations):
            run()
            # RSS without tracemalloc's own bookkeeping, which grows with what it traces
            rss.append(_rss() - tracemalloc.get_tracemalloc_memory())
            if i + 1 in marks:
                snapshots.append(_by_traceback(_snapshot()))
        groups = _group(snapshots, _is_library)
        sites = []
        for (filename, lineno), group in groups.items():
            series = group['series']
            growth = series[-1] - series[0]
            if growth < MIN_GROWTH:
                continue
            shape = _shape(series, marks)
            per_iteration = _slope([0] + marks, series) if shape == 'steady' else growth / iterations
            paths = sorted(group['paths'].items(), key=lambda kv: -kv[1])
            main_path = paths[0][0]
            libs = group['libs']
            library = max(libs, key=libs.get) if libs else None
            sites.append({
                'file': filename,
                'line': lineno,
                'frames': [{'file': f, 'line': n} for f, n in main_path],
                'paths': [{'frames': [{'file': f, 'line': n} for f, n in p], 'bytesPerIteration': g / iterations}
                          for p, g in paths if g >= MIN_GROWTH] if len(paths) > 1 else [],
                'library': {'file': library[0], 'line': library[1]} if library else None,
                'bytesPerIteration': per_iteration,
                'countPerIteration': (group['counts'][-1] - group['counts'][0]) / iterations,
                'totalGrowth': growth,
                'steady': shape == 'steady',
                'shape': shape,
                'keptAliveBy': None,
            })
        order = {'steady': 0, 'one-off': 1, 'plateau': 2}
        sites.sort(key=lambda s: (order[s['shape']], -s['totalGrowth']))
        sites = sites[:limit]
        steady = [s for s in sites if s['steady']][:KEPT_ALIVE_SITES]
        if steady:
            chains = kept_alive_by([(s['file'], s['line']) for s in steady])
            for s, chain in zip(steady, chains):
                s['keptAliveBy'] = chain
    finally:
        if tracemalloc.is_tracing():
            tracemalloc.stop()
    first, last = snapshots[0], snapshots[-1]
    return {
        'sites': sites,
        'rssPerIteration': rss,
        # from the snapshots, so that the finder's own bookkeeping (its snapshots) does not count
        'tracedGrowthPerIteration': (sum(s for s, _ in last.values()) - sum(s for s, _ in first.values())) / iterations,
    }
