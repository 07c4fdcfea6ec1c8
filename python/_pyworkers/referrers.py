"""Why memory stays alive: from objects allocated at a line up to what keeps them, written as the user would.

For a growing allocation site, a few objects allocated there are found (tracemalloc maps an object to where it
was allocated), and the references to them are followed back to a root: a module global, a class attribute, a
closure cell, a local of a suspended generator, `gc.garbage`. The chain is written as code:
`app.w_cache['req-123']`, `Handler.history[...]`, `app.callbacks[7].__closure__ -> buffer`.

It reads only: no object of the program is changed, none is kept once the search ends. It is bounded in time
and in the objects it looks at; past the bounds it says what it found so far, or nothing.
"""
import gc
import sys
import time
import tracemalloc
import types
import weakref
from collections import deque

MAX_OBJECTS = 3_000_000   # heaps larger than this are not indexed (too slow): no chain
MAX_DEPTH = 12            # references followed from an object towards a root
MAX_SAMPLES = 3           # objects of a site whose chains are tried

_SEQUENCES = (list, tuple, deque)


class _Index:
    """Who refers to whom, for the objects the collector tracks: built once per search."""

    def __init__(self, deadline):
        self.deadline = deadline
        objects = gc.get_objects()
        self.complete = len(objects) <= MAX_OBJECTS
        self.parents = {}
        self.keep = {}  # id -> object, so that ids stay valid while the index lives
        self.module_dicts = {}
        self.class_dicts = {}
        self.generator_frames = {}
        self.garbage_id = id(gc.garbage)
        for name, module in list(sys.modules.items()):
            d = getattr(module, '__dict__', None)
            if isinstance(d, dict):
                self.module_dicts[id(d)] = name
        if not self.complete:
            return
        own = {id(objects), id(self.parents), id(self.keep)}
        parents = self.parents
        for i, obj in enumerate(objects):
            if i % 4096 == 0 and time.perf_counter() > deadline:
                self.complete = False
                return
            if id(obj) in own or type(obj) is types.FrameType:
                continue
            if isinstance(obj, type):
                try:
                    for d in gc.get_referents(obj.__dict__):
                        if type(d) is dict:
                            self.class_dicts[id(d)] = obj
                except Exception:
                    pass
            elif type(obj) in (types.GeneratorType, types.CoroutineType, types.AsyncGeneratorType):
                frame = getattr(obj, 'gi_frame', None) or getattr(obj, 'cr_frame', None) or getattr(obj, 'ag_frame', None)
                if frame is not None:
                    self.generator_frames[id(frame)] = obj
                    self.keep[id(frame)] = frame
                    for child in gc.get_referents(frame):
                        parents.setdefault(id(child), []).append(frame)
            self.keep[id(obj)] = obj
            for child in gc.get_referents(obj):
                parents.setdefault(id(child), []).append(obj)

    def release(self):
        self.parents = self.keep = self.class_dicts = self.generator_frames = {}


def kept_alive_by(sites, budget=2.0, extra_roots=None, block_sizes=None):
    """For each site (filename, lineno): the chain of references that keeps objects allocated there alive, as a
    string, or None when none was found (within the budget in seconds).

    Needs tracemalloc to be tracing (to find objects of a site), and stops it: the search allocates much, which
    tracing would slow tenfold. `extra_roots`: {id(module dict): name} for modules not in sys.modules (a
    finished script's). `block_sizes`: {site: the size of its typical block}, to find objects whose header was not
    allocated there but whose buffer was (a list from the free list with its items array allocated at the line)."""
    if not tracemalloc.is_tracing() or not sites:
        return [None] * len(sites)
    deadline = time.perf_counter() + budget
    wanted = set(tuple(s) for s in sites)

    def sites_of(tb):  # the sites anywhere in the allocation's traceback
        return [(f.filename, f.lineno) for f in tb if (f.filename, f.lineno) in wanted]
    samples = objects_by_site(sites_of, deadline, stop_when=wanted)
    tracemalloc.stop()
    return chains(samples, sites, deadline, extra_roots, block_sizes)


def objects_by_site(sites_of, deadline, stop_when=None):
    """{site: up to MAX_SAMPLES objects allocated there}, `sites_of(traceback)` naming an allocation's candidate
    sites (the object goes to the first that has room), for every site seen or, with `stop_when`, until each of
    those sites has its samples. Needs tracing. Definitions and weak references are not samples."""
    found = {}
    seen = set()  # untracked objects already looked at (gc.get_objects lists each tracked one once)
    get_traceback = tracemalloc.get_object_traceback

    def check(obj):
        if isinstance(obj, _DEFINITIONS):
            return
        tb = get_traceback(obj)
        if tb is not None:
            for site in sites_of(tb):
                objects = found.setdefault(site, [])
                if len(objects) < MAX_SAMPLES:
                    objects.append(obj)
                    return

    for i, obj in enumerate(gc.get_objects()):
        if i % 1024 == 0 and time.perf_counter() > deadline:
            break
        check(obj)
        for child in _some_referents(obj):
            if not gc.is_tracked(child) and id(child) not in seen:
                seen.add(id(child))
                check(child)
        if stop_when and i % 256 == 0 and all(len(found.get(site, ())) >= MAX_SAMPLES for site in stop_when):
            break
    return found


def chains(samples, sites, deadline, extra_roots=None, block_sizes=None):
    """Each site's chain from its objects in `samples` (or, for a site without any and big blocks, objects of
    about its block's size), or None. Tracing need not be on; it is best off."""
    sites = [tuple(s) for s in sites]
    missing = {site: size for site, size in (block_sizes or {}).items() if tuple(site) in sites and not samples.get(tuple(site))}
    if missing:
        samples = dict(samples)
        samples.update(_objects_by_size(missing, deadline))
    index = _Index(deadline)
    index.module_dicts.update(extra_roots or {})
    try:
        out = []
        for site in sites:
            chain = None
            # containers first: a str or int is often also bound to a variable, a shorter but less telling chain
            for obj in sorted(samples.get(site, ()), key=lambda o: not gc.is_tracked(o)):
                if time.perf_counter() > deadline:
                    break
                chain = _chain(index, obj, deadline)
                if chain:
                    break
            out.append(chain)
        return out
    finally:
        index.release()


# not sampled: definitions (made at a line once, not growing there) and weak references (they keep nothing alive)
_DEFINITIONS = (types.FunctionType, types.CodeType, type, types.ModuleType, weakref.ref, weakref.ProxyType, weakref.CallableProxyType)


_BUFFERED = frozenset((list, dict, set, frozenset, bytearray, bytes, str, tuple))


def _objects_by_size(block_sizes, deadline):
    """{site: objects of about its block's size}, for sites whose blocks are big: a big list's header may come from
    the free list, allocated elsewhere, while its items array was allocated at the line. (Only big blocks: a small
    size matches too many unrelated objects.)"""
    by_size = [(tuple(site), size) for site, size in block_sizes.items() if size >= 32 * 1024]
    found = {site: [] for site, _ in by_size}
    if not by_size:
        return found
    getsizeof = sys.getsizeof
    for i, obj in enumerate(gc.get_objects()):
        if i % 1024 == 0 and time.perf_counter() > deadline:
            break
        for candidate in [obj] + [c for c in _some_referents(obj) if not gc.is_tracked(c)]:
            if type(candidate) not in _BUFFERED:
                continue
            size = getsizeof(candidate)
            for site, block in by_size:
                if block <= size <= block + 512 and len(found[site]) < MAX_SAMPLES:
                    found[site].append(candidate)
                    break
    return found


def _some_referents(obj, edge=100):
    """The objects `obj` refers to; of a big container, its first and last ones (what was added last is there)."""
    children = gc.get_referents(obj)
    return children if len(children) <= 2 * edge else children[:edge] + children[-edge:]


def _chain(index, obj, deadline):
    """Breadth first from `obj` up its referrers to the nearest root; the path written as code."""
    start = id(obj)
    came_from = {start: None}
    queue = deque([(obj, 0)])
    while queue:
        if time.perf_counter() > deadline:
            return None
        node, depth = queue.popleft()
        root = _root(index, node)
        if root is not None and id(node) != start:
            return _render(index, root, node, came_from)
        if depth >= MAX_DEPTH:
            continue
        for parent in index.parents.get(id(node), ()):
            key = id(parent)
            if key in came_from:
                continue
            came_from[key] = node
            queue.append((parent, depth + 1))
    return None


def _root(index, node):
    key = id(node)
    if key in index.module_dicts:
        return index.module_dicts[key]
    if key in index.class_dicts:
        return _qualname(index.class_dicts[key])
    if key in index.generator_frames:
        gen = index.generator_frames[key]
        return 'generator %s() (suspended at line %d)' % (getattr(gen, '__qualname__', '?'), node.f_lineno)
    if key == index.garbage_id:
        return 'gc.garbage'
    return None


def _render(index, root_name, root, came_from):
    """The path from `root` (a module or class dict, a generator's frame, gc.garbage) down to the object."""
    text = root_name
    node = root
    closure_of = None
    steps = 0
    while came_from.get(id(node)) is not None and steps < MAX_DEPTH + 2:
        child = came_from[id(node)]
        steps += 1
        text, closure_of = _step(index, text, node, child, closure_of)
        node = child
    return text


def _step(index, text, parent, child, closure_of):
    """`text` (the code for `parent`) extended to `child`; closure_of: the function whose __closure__ is `parent`."""
    key = id(parent)
    if key in index.module_dicts or key in index.class_dicts:
        return '%s.%s' % (text, _key_of(parent, child, '?')), None
    if key in index.generator_frames:
        name = _local_of(parent, child)
        return '%s, local %s' % (text, repr(name) if name else 'variable'), None
    t = type(parent)
    if t in (types.GeneratorType, types.CoroutineType, types.AsyncGeneratorType):
        frame = getattr(parent, 'gi_frame', None) or getattr(parent, 'cr_frame', None) or getattr(parent, 'ag_frame', None)
        where = ' suspended at line %d' % frame.f_lineno if frame is not None else ''
        name = _local_of(frame, child) if frame is not None else None
        return '%s (generator %s()%s), local %s' % (text, getattr(parent, '__qualname__', '?'), where, repr(name) if name else '?'), None
    if t is types.FunctionType:
        if child is parent.__closure__:
            return text, parent
        return '%s.%s' % (text, _attr_of(parent, child) or '<ref>'), None
    if t is tuple and closure_of is not None:
        try:
            i = next(i for i, cell in enumerate(parent) if cell is child)
            name = closure_of.__code__.co_freevars[i]
        except (StopIteration, IndexError):
            name = '?'
        return '%s.__closure__ -> %s' % (text, name), None
    if t is types.CellType:
        return text, None
    if t is dict:
        owner = _instance_owning(index, parent)
        if owner is not None:  # an instance's __dict__: an attribute
            return '%s.%s' % (text, _key_of(parent, child, '?')), None
        return '%s[%s]' % (text, _short(_key_of(parent, child, None, as_repr=True))), None
    if isinstance(parent, _SEQUENCES):
        for i, item in enumerate(parent):
            if item is child:
                return '%s[%d]' % (text, i), None
        return '%s[...]' % text, None
    if isinstance(parent, (set, frozenset)):
        return '%s{...}' % text, None
    if t is types.MethodType:
        return '%s.__self__' % text, None
    if t is types.FrameType:
        return '%s (frame)' % text, None
    if type(child) is dict and t.__name__ == '_lru_cache_wrapper':
        return "%s's lru_cache" % text, None
    attr = _attr_of(parent, child)
    if attr is not None:
        return '%s.%s' % (text, attr), None
    if type(child) is dict and getattr(parent, '__dict__', None) is child:
        return text, None  # through the instance's __dict__, written at the next step
    return '%s -> %s' % (text, type(child).__name__), None


def _instance_owning(index, d):
    for parent in index.parents.get(id(d), ()):
        if getattr(parent, '__dict__', None) is d and not isinstance(parent, type) and type(parent) is not types.ModuleType:
            return parent
    return None


def _key_of(d, child, default, as_repr=False):
    try:
        for k, v in d.items():
            if v is child:
                return repr(k) if as_repr else k
            if k is child:
                return '%s (a key)' % (repr(k) if as_repr else k)
    except Exception:
        pass
    return default if default is not None else '...'


def _attr_of(obj, child):
    try:
        attrs = vars(obj)
    except TypeError:
        attrs = {}
    for k, v in attrs.items():
        if v is child:
            return k
    for cls in type(obj).__mro__:
        for slot in getattr(cls, '__slots__', ()) if not isinstance(getattr(cls, '__slots__', ()), str) else (cls.__slots__,):
            try:
                if getattr(obj, slot) is child:
                    return slot
            except Exception:
                pass
    return None


def _local_of(frame, child):
    try:
        for k, v in frame.f_locals.items():
            if v is child:
                return k
    except Exception:
        pass
    return None


def _qualname(cls):
    mod = getattr(cls, '__module__', '') or ''
    name = getattr(cls, '__qualname__', cls.__name__)
    return name if mod in ('__main__', 'builtins') else '%s.%s' % (mod, name)


def _short(text, limit=40):
    return text if len(text) <= limit else text[:limit - 3] + '...'
