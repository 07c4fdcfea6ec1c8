"""Handles: objects that stay in this worker while the host holds a reference to them.

An object crosses as a handle when it is wrapped in Ref (the host asked for one: callRef/evalRef, or user code
returned `pyworkers.ref(obj)`). It is then kept in TABLE under a number until the host releases it; on the wire a
handle is the tag (TAG, 'R', worker token, number, type name). A handle the host sends back arrives as the object.
"""
from collections import Counter

TAG_REF = 'R'

# number -> object, for every handle the host holds; written by the main thread (and threads that call back into
# the host), read by the control thread (statistics): single dict operations are atomic under the GIL.
TABLE = {}
_next = [1]
# Set at start (the INIT config's 'token'): tells this worker's handles from another worker's.
token = 0
worker_id = 0


class Ref:
    """Marks an object that crosses to the host as a handle, not as a value."""

    __slots__ = ('obj',)

    def __init__(self, obj):
        self.obj = obj


def type_name(obj):
    t = type(obj)
    mod = t.__module__
    return t.__qualname__ if mod in ('builtins', None) else '%s.%s' % (mod, t.__qualname__)


def register(obj, new_ids):
    """Keep `obj` for the host; the tag that names it. `new_ids` collects the numbers (to undo on failure)."""
    if type(obj) is Ref:
        obj = obj.obj
    number = _next[0]
    _next[0] = number + 1
    TABLE[number] = obj
    new_ids.append(number)
    return (Ellipsis, TAG_REF, token, number, type_name(obj))


def lookup(tag):
    """The object a handle from the host names."""
    from .values import Unconvertible
    if len(tag) < 4 or tag[2] != token:
        raise Unconvertible('a handle of another worker (handles work only on the worker that made them)', 'PyRef')
    try:
        return TABLE[tag[3]]
    except KeyError:
        raise Unconvertible('handle %r was disposed' % (tag[3],), 'PyRef') from None


def release(numbers):
    """The host dropped these handles: forget their objects (which Python frees once nothing else holds them)."""
    pop = TABLE.pop
    for number in numbers:
        pop(number, None)


def forget(new_ids):
    for number in new_ids:
        TABLE.pop(number, None)


def stats():
    """{count, types: {type name: count}} of the live handles, for memory statistics."""
    for _ in range(3):
        try:
            objects = list(TABLE.values())
            break
        except RuntimeError:  # changed size while being copied (another thread)
            continue
    else:
        objects = []
    return {'count': len(objects), 'types': dict(Counter(map(type_name, objects)).most_common())}


# What PyRef calls (src/pool/ref.ts), with the handle's object as `obj`.

def identity(obj):
    return obj


def get_attr(obj, path):
    for name in path.split('.'):
        obj = getattr(obj, name)
    return obj


def set_attr(obj, path, value):
    head, _, last = path.rpartition('.')
    setattr(get_attr(obj, head) if head else obj, last, value)
