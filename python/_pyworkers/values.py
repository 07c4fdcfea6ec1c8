"""Values to and from the host.

The fast path is plain `marshal`. Only when `marshal.dumps` refuses a value (or the host says its message holds
tagged values) does a Python-level pass run: it converts what the type table allows (datetime, subclasses of the
built-in types, objects with the buffer protocol) and refuses the rest with the type's name and where it was.
"""
import marshal

from .protocol import FLAG_TAGGED, MARSHAL_VERSION

MAX_DEPTH = 1000

_dumps = marshal.dumps
_loads = marshal.loads
_ATOMS = frozenset((type(None), bool, int, float, str, bytes))
_datetime = None
_timezone = None
_timedelta = None
_epoch = None


def _load_datetime():
    global _datetime, _timezone, _timedelta, _epoch
    import datetime
    _datetime = datetime.datetime
    _timezone = datetime.timezone
    _timedelta = datetime.timedelta
    _epoch = _datetime(1970, 1, 1, tzinfo=_timezone.utc)


class Unconvertible(Exception):
    """A value the type table does not cover; `path` lists where it was, outermost first."""

    def __init__(self, reason, type_name=None):
        Exception.__init__(self, reason)
        self.reason = reason
        self.type_name = type_name
        self.path = []

    def where(self, root):
        out = root
        for part in reversed(self.path):
            out += '[%r]' % (part,) if isinstance(part, str) else '[%d]' % part
        return out


def _type_name(obj):
    t = type(obj)
    mod = t.__module__
    return t.__qualname__ if mod in ('builtins', None) else '%s.%s' % (mod, t.__qualname__)


def _datetime_tag(obj):
    if _datetime is None:
        _load_datetime()
    if obj.tzinfo is None or obj.utcoffset() is None:
        # naive: local time, as datetime.timestamp() takes it
        return complex(obj.timestamp() * 1000.0, 0.0)
    delta = obj - _epoch
    return complex((delta.days * 86400 + delta.seconds) * 1000.0 + delta.microseconds / 1000.0, 0.0)


def _convert(obj, depth, active):
    t = type(obj)
    if t in _ATOMS:
        return obj
    if depth >= MAX_DEPTH:
        raise Unconvertible('nesting deeper than %d levels' % MAX_DEPTH)
    if t is list or t is tuple or isinstance(obj, (list, tuple)):
        key = id(obj)
        if key in active:
            raise Unconvertible('cyclic structure')
        active.add(key)
        out = []
        append = out.append
        for i, item in enumerate(obj):
            try:
                append(_convert(item, depth + 1, active))
            except Unconvertible as e:
                e.path.append(i)
                raise
        active.discard(key)
        return tuple(out) if t is tuple else out
    if isinstance(obj, dict):
        key = id(obj)
        if key in active:
            raise Unconvertible('cyclic structure')
        active.add(key)
        out = {}
        for k, v in obj.items():
            try:
                out[_convert(k, depth + 1, active)] = _convert(v, depth + 1, active)
            except Unconvertible as e:
                e.path.append(k if isinstance(k, (str, int)) else repr(k))
                raise
        active.discard(key)
        return out
    if isinstance(obj, (set, frozenset)):
        return set(_convert(item, depth + 1, active) for item in obj)
    if isinstance(obj, bool):
        return bool(obj)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj)
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj)
    if _datetime is None:
        _load_datetime()
    if isinstance(obj, _datetime):
        return _datetime_tag(obj)
    if isinstance(obj, complex):
        raise Unconvertible("Python type 'complex' has no JavaScript counterpart", 'complex')
    try:
        view = memoryview(obj)
    except TypeError:
        name = _type_name(obj)
        raise Unconvertible("Python type '%s' has no JavaScript counterpart" % name, name) from None
    return view.tobytes()


def dumps(obj, wrapper=False):
    """Encode a result for the host: (payload, flags). Raises Unconvertible.

    With `wrapper`, obj is a container of user values (a batch of stream items) whose level does not count.
    """
    try:
        return _dumps(obj, MARSHAL_VERSION), 0
    except ValueError as e:
        if 'nested' in str(e):
            raise Unconvertible('nesting deeper than %d levels' % MAX_DEPTH) from None
    try:
        converted = _convert(obj, -1 if wrapper else 0, set())
    except RecursionError:
        raise Unconvertible('nesting deeper than %d levels' % MAX_DEPTH) from None
    try:
        return _dumps(converted, MARSHAL_VERSION), FLAG_TAGGED
    except ValueError as e:  # e.g. nested deeper than marshal allows
        raise Unconvertible(str(e)) from None


def _untag(obj, depth):
    t = type(obj)
    if t is complex:
        if _datetime is None:
            _load_datetime()
        try:
            return _epoch + _timedelta(milliseconds=obj.real)
        except OverflowError:
            raise Unconvertible("a Date outside Python's datetime range (years 1 to 9999)", 'Date') from None
    if t is list:
        for i, item in enumerate(obj):
            if type(item) not in _ATOMS:
                obj[i] = _untag(item, depth + 1)
        return obj
    if t is tuple:
        return tuple([_untag(item, depth + 1) for item in obj])
    if t is dict:
        fixed = {}
        for k, v in obj.items():
            fixed[_untag(k, depth + 1)] = _untag(v, depth + 1)
        return fixed
    if t is set:
        return {_untag(item, depth + 1) for item in obj}
    return obj


def loads(payload, flags):
    """Decode a message from the host."""
    value = _loads(payload)
    if flags & FLAG_TAGGED:
        value = _untag(value, 0)
    return value
