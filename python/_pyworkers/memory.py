"""Memory operations of the control channel (control.OPERATIONS names them): statistics, the collector, tracing,
snapshots, references and allocator facts.

Everything here runs on the control thread, so it answers while user code runs on the main thread. Snapshots
are taken, kept and analysed here; only their top rows cross to the host.
"""
import gc
import os
import re
import sys
import threading
import time

from . import refs
from .paths import RUNTIME_DIR

MAX_SNAPSHOTS = 16          # snapshots kept per worker; the oldest goes first
REPR_LENGTH = 200           # default length of the reprs sent to the host

_trace_lock = threading.Lock()
_trace_explicit = False     # set once the host starts or stops tracing by request: the start-up value is stale
_snapshots = {}             # id -> tracemalloc.Snapshot (filtered), oldest first
_next_snapshot = 1

DEBUG_FLAGS = (
    ('DEBUG_STATS', gc.DEBUG_STATS),
    ('DEBUG_COLLECTABLE', gc.DEBUG_COLLECTABLE),
    ('DEBUG_UNCOLLECTABLE', gc.DEBUG_UNCOLLECTABLE),
    ('DEBUG_SAVEALL', gc.DEBUG_SAVEALL),
)


class NotTracingError(RuntimeError):
    """A snapshot was asked for while tracemalloc is not tracing."""


class SnapshotGoneError(LookupError):
    """A snapshot id the worker no longer holds (released, or evicted to keep at most MAX_SNAPSHOTS)."""


# ------------------------------------------------------------------------------------------------ statistics
def _tracemalloc():
    """The tracemalloc module if it was ever imported (importing it costs nothing but is not needed otherwise)."""
    return sys.modules.get('tracemalloc')


def _is_tracing():
    tm = _tracemalloc()
    return tm is not None and tm.is_tracing()


def _resident():
    """VmRSS and VmHWM of this process (Linux), for hosts that cannot read this machine's /proc (remote)."""
    try:
        with open('/proc/self/status', 'rb') as f:
            status = f.read()
    except OSError:
        return {}
    out = {}
    for line in status.splitlines():
        if line.startswith(b'VmRSS:'):
            out['rss'] = int(line.split()[1]) * 1024
        elif line.startswith(b'VmHWM:'):
            out['peakRss'] = int(line.split()[1]) * 1024
    return out


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
        'memoryLimit': getattr(worker, 'memory_limit', None) or worker.config.get('memoryLimit'),
        'handles': refs.stats(),
    }
    out.update(_resident())
    tm = _tracemalloc()
    if tm is not None and tm.is_tracing():
        current, peak = tm.get_traced_memory()
        out['tracedMemoryCurrent'] = current
        out['tracedMemoryPeak'] = peak
    return out


# ------------------------------------------------------------------------------------------------ collector
def collect(worker, generation=2):
    return gc.collect(generation)


def gc_enable(worker, enabled):
    if enabled:
        gc.enable()
    else:
        gc.disable()
    return gc.isenabled()


def gc_isenabled(worker):
    return gc.isenabled()


def gc_threshold(worker, thresholds=None):
    """Set the thresholds when given; answer the thresholds in force."""
    if thresholds:
        gc.set_threshold(*thresholds)
    return list(gc.get_threshold())


def gc_debug(worker, flags=None):
    """Set the debug flags (a mask, or a list of names such as 'DEBUG_SAVEALL') when given; answer the names of
    the flags in force."""
    if flags is not None:
        if not isinstance(flags, int):
            mask = 0
            for name in flags:
                mask |= getattr(gc, name)
            flags = mask
        gc.set_debug(flags)
    current = gc.get_debug()
    return [name for name, bit in DEBUG_FLAGS if current & bit]


def _type_name(obj):
    cls = type(obj)
    module = getattr(cls, '__module__', None)
    name = getattr(cls, '__qualname__', None) or cls.__name__
    if module in (None, 'builtins', '__main__'):
        return name
    return '%s.%s' % (module, name)


_reprs = None


def _short_repr(obj, length):
    """A repr that never builds a huge string first (reprlib), cut to `length` characters."""
    global _reprs
    if _reprs is None:
        import reprlib
        _reprs = reprlib.Repr()
        _reprs.maxlevel = 3
        _reprs.maxlist = _reprs.maxtuple = _reprs.maxset = _reprs.maxfrozenset = _reprs.maxdeque = 10
        _reprs.maxdict = 10
        _reprs.maxarray = 10
        _reprs.maxstring = 120
        _reprs.maxlong = 60
        _reprs.maxother = 1000
    try:
        text = _reprs.repr(obj)
    except BaseException as exc:  # a user __repr__ that fails must not fail the request
        text = '<%s object at %#x (repr failed: %s)>' % (_type_name(obj), id(obj), exc.__class__.__name__)
    if len(text) > length:
        text = text[:max(0, length - 3)] + '...'
    return text


def gc_garbage(worker, limit=100, length=REPR_LENGTH):
    garbage = list(gc.garbage)
    objects = [{'type': _type_name(obj), 'repr': _short_repr(obj, length)} for obj in garbage[:limit]]
    return {'count': len(garbage), 'objects': objects}


def gc_clear_garbage(worker):
    count = len(gc.garbage)
    del gc.garbage[:]
    return count


# ------------------------------------------------------------------------------------------------ tracing
def _start(frames):
    import tracemalloc
    _prepare()
    if tracemalloc.is_tracing():
        if tracemalloc.get_traceback_limit() == frames:
            return  # keep the traces gathered so far
        tracemalloc.stop()
    tracemalloc.start(frames)


_filter_cache = None


def _filters():
    """What snapshots leave out: the worker runtime's allocations and tracemalloc's own."""
    global _filter_cache
    if _filter_cache is None:
        import tracemalloc
        _filter_cache = (tracemalloc.Filter(False, tracemalloc.__file__),
                         tracemalloc.Filter(False, os.path.join(RUNTIME_DIR, '*')))
    return _filter_cache


def _prepare():
    """Before tracing starts: do the one-time work of taking snapshots (imports, the filters' compiled patterns,
    which fnmatch caches), so that it does not show up in the user's snapshots."""
    import fnmatch
    for f in _filters():
        fnmatch.fnmatch('', f.filename_pattern)


def start_tracing_at_start(frames):
    """Called by the handshake when the pool traces: replacement workers trace like the others did."""
    import platform
    platform.python_version()  # the handshake's own work, done (and cached) before tracing starts
    platform.python_implementation()
    with _trace_lock:
        if not _trace_explicit:
            _start(frames)


def tracemalloc_start(worker, frames=1):
    global _trace_explicit
    with _trace_lock:
        _trace_explicit = True
        _start(frames)
    return None


def tracemalloc_stop(worker):
    global _trace_explicit
    with _trace_lock:
        _trace_explicit = True
        tm = _tracemalloc()
        if tm is not None:
            tm.stop()
    return None


# ------------------------------------------------------------------------------------------------ snapshots
def _runtime_frame(frame):
    filename = frame.filename
    return filename.startswith(RUNTIME_DIR) or filename == _tracemalloc().__file__


def _site(stat, group_by):
    frames = stat.traceback  # oldest first, most recent call last
    if group_by == 'traceback':
        user = [f for f in frames if not _runtime_frame(f)] or list(frames)
        last = user[-1]
        return {'file': last.filename, 'line': last.lineno, 'size': stat.size, 'count': stat.count,
                'frames': [{'file': f.filename, 'line': f.lineno} for f in user]}
    last = frames[-1]
    return {'file': last.filename, 'line': None if group_by == 'filename' else last.lineno,
            'size': stat.size, 'count': stat.count}


def _rows(stats, group_by, limit, diff=False):
    """The top `limit` sites. For 'traceback', the runtime's own (outer) frames are left out, and tracebacks that
    become equal are merged, so every row is a distinct path through user code."""
    if group_by != 'traceback':
        rows = []
        for stat in stats[:limit]:
            row = _site(stat, group_by)
            if diff:
                row['sizeDiff'] = stat.size_diff
                row['countDiff'] = stat.count_diff
            rows.append(row)
        return rows
    merged = {}
    for stat in stats:
        row = _site(stat, group_by)
        if diff:
            row['sizeDiff'] = stat.size_diff
            row['countDiff'] = stat.count_diff
        key = tuple((f['file'], f['line']) for f in row['frames'])
        seen = merged.get(key)
        if seen is None:
            merged[key] = row
        else:
            for field in ('size', 'count', 'sizeDiff', 'countDiff'):
                if field in row:
                    seen[field] += row[field]
    rows = list(merged.values())
    if diff:
        rows.sort(key=lambda r: (abs(r['sizeDiff']), r['size'], abs(r['countDiff']), r['count']), reverse=True)
    else:
        rows.sort(key=lambda r: (r['size'], r['count']), reverse=True)
    return rows[:limit]


def snapshot_take(worker, group_by='lineno', limit=10):
    global _next_snapshot
    tm = _tracemalloc()
    if tm is None or not tm.is_tracing():
        raise NotTracingError('tracemalloc is not tracing on this worker: call tracemallocStart() first')
    from .snapshots import without_runtime
    snapshot = without_runtime(tm.take_snapshot())
    stats = snapshot.statistics(group_by)
    total_size = 0
    total_count = 0
    for stat in stats:
        total_size += stat.size
        total_count += stat.count
    sid = _next_snapshot
    _next_snapshot += 1
    _snapshots[sid] = snapshot
    while len(_snapshots) > MAX_SNAPSHOTS:
        del _snapshots[next(iter(_snapshots))]
    return {
        'id': sid,
        'sites': _rows(stats, group_by, limit),
        'totalSize': total_size,
        'totalCount': total_count,
    }


def _held(sid):
    snapshot = _snapshots.get(sid)
    if snapshot is None:
        raise SnapshotGoneError('snapshot %d is no longer held by this worker (released, or evicted: a worker '
                                'keeps its %d newest snapshots)' % (sid, MAX_SNAPSHOTS))
    return snapshot


def snapshot_compare(worker, new_id, old_id, group_by='lineno', limit=10):
    diffs = _held(new_id).compare_to(_held(old_id), group_by)  # sorted by |size_diff| first
    return _rows(diffs, group_by, limit, diff=True)


def snapshot_release(worker, ids):
    for sid in ids:
        _snapshots.pop(sid, None)
    return len(_snapshots)


# ------------------------------------------------------------------------------------------------ references
def _probe(scope, code):
    obj = eval(code, scope)
    return sys.getrefcount(obj)


_probe_overhead = None


def _overhead():
    """References that _probe itself adds (its local, getrefcount's argument): measured once, not assumed."""
    global _probe_overhead
    if _probe_overhead is None:
        import builtins
        scope = {'__builtins__': builtins, 'pyworkers_probe': object()}  # one reference: the dict's
        _probe_overhead = _probe(scope, compile('pyworkers_probe', '<probe>', 'eval')) - 1
    return _probe_overhead


def _namespace_name(worker, d):
    if d is worker.main:
        return "namespace '__main__'"
    for ctx, ns in list(worker.namespaces.items()):
        if d is ns:
            return 'namespace of context %d' % ctx
    for name, module in list(sys.modules.items()):
        if getattr(module, '__dict__', None) is d:
            return "globals of module '%s'" % name
    return None


def _keys_of(d, obj, most=5):
    keys = []
    for k, v in list(d.items()):
        if v is obj:
            keys.append(k if isinstance(k, str) else repr(k))
            if len(keys) >= most:
                break
    return keys


def _describe_cell(cell):
    for holder in gc.get_referrers(cell):
        if type(holder) is not tuple:
            continue
        for fn in gc.get_referrers(holder):
            code = getattr(fn, '__code__', None)
            if getattr(fn, '__closure__', None) is holder and code is not None:
                index = next(i for i, c in enumerate(holder) if c is cell)
                name = code.co_freevars[index] if index < len(code.co_freevars) else '?'
                return "closure variable '%s' of function %s (%s:%d)" % (
                    name, fn.__qualname__, code.co_filename, code.co_firstlineno)
    return 'closure cell'


def _describe(worker, ref, obj):
    kind = type(ref)
    if kind is dict:
        keys = _keys_of(ref, obj)
        where = _namespace_name(worker, ref)
        what = ', '.join(repr(k) for k in keys)
        if where:
            return '%s, name %s' % (where, what) if keys else where
        return 'dict, key %s' % what if keys else 'dict (as a key)'
    if kind in (list, tuple):
        indexes = [i for i, v in enumerate(ref) if v is obj][:5]
        return '%s of %d items, index %s' % (kind.__name__, len(ref), ', '.join(map(str, indexes)))
    if kind in (set, frozenset):
        return '%s of %d items' % (kind.__name__, len(ref))
    if kind.__name__ == 'cell':
        return _describe_cell(ref)
    if kind.__name__ == 'frame':
        code = ref.f_code
        return 'local of %s (%s:%d)' % (code.co_name, code.co_filename, ref.f_lineno)
    attrs = []
    try:
        attrs = _keys_of(vars(ref), obj)
    except TypeError:
        pass
    if attrs:
        return '%s instance, attribute %s' % (_type_name(ref), ', '.join(repr(a) for a in attrs))
    return _short_repr(ref, 80)


def references(worker, ctx, expression, limit=10, length=REPR_LENGTH):
    """sys.getrefcount of what `expression` names (in the context's namespace), net of this probe's own
    references, and a summary of the referrers the collector knows (containers it tracks)."""
    scope = worker.namespace(ctx)
    code = compile(expression, '<references>', 'eval')
    overhead = _overhead()
    count = _probe(scope, code) - overhead
    obj = eval(code, scope)
    here = sys._getframe()
    referrers = []
    for ref in gc.get_referrers(obj):
        if ref is here or (type(ref).__name__ == 'frame' and ref.f_code.co_filename == __file__):
            continue  # the probe's own frame
        referrers.append(ref)
    described = []
    ref = None
    for ref in referrers[:limit]:  # a loop, not a comprehension: that would hold `obj` in a closure cell
        described.append({'type': _type_name(ref), 'description': _describe(worker, ref, obj)})
    out = {
        'expression': expression,
        'type': _type_name(obj),
        'repr': _short_repr(obj, length),
        'refcount': count,
        'referrerCount': len(referrers),
        'referrers': described,
    }
    del obj, ref, referrers, here
    return out


# ------------------------------------------------------------------------------------------------ allocator
def _debugmallocstats_text():
    """sys._debugmallocstats() writes to the C stderr (fd 2): point fd 2 at a temporary file meanwhile."""
    import tempfile
    try:
        sys.stderr.flush()
    except Exception:
        pass
    with tempfile.TemporaryFile() as tmp:
        saved = os.dup(2)
        try:
            os.dup2(tmp.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        return tmp.read().decode('utf-8', 'replace')


def _camel(words):
    parts = [w for w in ''.join(c if c.isalnum() else ' ' for c in words).split() if w]
    return parts[0].lower() + ''.join(p[:1].upper() + p[1:] for p in parts[1:]) if parts else ''


def _number(text):
    return int(text.replace(',', ''))


def _parse_pymalloc(text):
    """The pymalloc part of sys._debugmallocstats(), or None when it is missing."""
    head = re.search(r'Small block threshold = (\d+), in (\d+) size classes', text)
    if not head:
        return None
    out = {'smallBlockThreshold': int(head.group(1)), 'sizeClasses': []}
    lines = text[head.end():].splitlines()
    section = 'arenas'
    for line in lines:
        row = re.match(r'^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$', line)
        if row:
            _, size, pools, used, avail = map(int, row.groups())
            out['sizeClasses'].append({'size': size, 'pools': pools, 'blocksInUse': used, 'availableBlocks': avail})
            continue
        if line.startswith('arena map counts'):
            section = 'arenaMap'
            continue
        m = re.match(r'^(\d+) arenas \* (\d+) bytes/arena\s*=\s*([\d,]+)', line)
        if m:
            out['arenaSize'] = int(m.group(2))
            out['arenaBytes'] = _number(m.group(3))
            continue
        m = re.match(r'^(\d+) unused pools \* (\d+) bytes\s*=\s*([\d,]+)', line)
        if m:
            out['unusedPools'] = int(m.group(1))
            out['poolSize'] = int(m.group(2))
            out['unusedPoolBytes'] = _number(m.group(3))
            continue
        m = re.match(r'^# (.+?)\s*=\s*([\d,]+)\s*$', line)
        if m:
            out[_camel(m.group(1))] = _number(m.group(2))
            continue
        m = re.match(r'^Total\s*=\s*([\d,]+)', line)
        if m:
            out['arenaMapTotal' if section == 'arenaMap' else 'total'] = _number(m.group(1))
            if section == 'arenaMap':
                break
    return out


def allocator(worker, include_text=False):
    import sysconfig
    env = os.environ.get('PYTHONMALLOC') or None
    with_pymalloc = bool(sysconfig.get_config_var('WITH_PYMALLOC'))
    free_threaded = bool(sysconfig.get_config_var('Py_GIL_DISABLED'))
    default = 'mimalloc' if free_threaded else 'pymalloc' if with_pymalloc else 'malloc'
    debug = hasattr(sys, 'gettotalrefcount') or sys.flags.dev_mode
    base = default
    if env in ('malloc', 'pymalloc', 'mimalloc'):
        base, debug = env, False
    elif env in ('malloc_debug', 'pymalloc_debug', 'mimalloc_debug'):
        base, debug = env[:-len('_debug')], True
    elif env == 'debug':
        debug = True
    tracing = _is_tracing()
    text = _debugmallocstats_text()
    pymalloc = _parse_pymalloc(text)
    note = None
    if pymalloc is None:
        if tracing:
            note = ("pymalloc's arena/pool summary is unavailable while tracemalloc traces (its hooks sit in front "
                    "of the allocator); call tracemallocStop() and ask again")
        elif base != 'pymalloc':
            note = "this worker does not use pymalloc (allocator: %s)" % base
        else:
            note = "the interpreter did not report pymalloc statistics"
    elif base != 'pymalloc':
        base = 'pymalloc'  # what the interpreter reports wins over the guess
    out = {
        'pythonMalloc': env,
        'allocator': base + ('_debug' if debug else ''),
        'debugHooks': bool(debug),
        'withPymalloc': with_pymalloc,
        'allocatedBlocks': sys.getallocatedblocks(),
        'tracing': tracing,
        'pymalloc': pymalloc,
        'note': note,
    }
    if include_text:
        out['text'] = text
    return out
