"""Values to and from the host.

The fast path is plain `marshal`. marshal writes any object with the buffer protocol (numpy scalars and arrays,
memoryview, array.array) as raw bytes without a word, so a result goes the fast path only when its type (and,
for containers, the type of everything inside) is one marshal writes faithfully: checked at C speed by
`_is_plain`. Anything else goes through a Python-level pass that converts what the type table allows (datetime,
subclasses of the built-in types, numpy scalars, arrays, pandas frames) and refuses the rest with the type's name
and where it was.

Arrays and large buffers travel as *tagged* values `(Ellipsis, name, ...)`: Ellipsis never crosses as data, so a
tuple that starts with it is unambiguous. Buffers of PART_MIN bytes or more are not copied into the message: the
tag holds the index of a *part*, a buffer sent after the message as it is (see protocol.py).
"""
import marshal
import sys
from gc import get_referents
from itertools import compress

from .protocol import FLAG_PARTS, FLAG_TAGGED, MARSHAL_VERSION
from .refs import TAG_REF, Ref, forget, lookup, register

MAX_DEPTH = 1000
PART_MIN = 1 << 16  # buffers at least this large travel as parts of their own, not inside the message
DATE_MAX = 8640000000000000  # ms: the range of a JavaScript Date is +-this around the epoch

TAG = Ellipsis
TAG_DATE = 'D'        # (TAG, 'D', ms since the epoch, an integer): a Date / an aware datetime in UTC
TAG_BYTES = 'B'       # (TAG, 'B', part index): bytes
TAG_ARRAY = 'A'       # (TAG, 'A', typestr, shape, part index or bytes): an n-dimensional array in C order
TAG_FRAME = 'DF'      # (TAG, 'DF', columns, column values, index or None): a pandas DataFrame
TAG_SERIES = 'SR'     # (TAG, 'SR', name, values, index or None): a pandas Series
# TAG_REF: (TAG, 'R', worker token, number, type name): a handle (see refs.py)

_dumps = marshal.dumps
_loads = marshal.loads
_ATOMS = frozenset((type(None), bool, int, float, str, bytes))
_CONTAINERS = frozenset((list, tuple, dict, set, frozenset))
PLAIN = _ATOMS | _CONTAINERS  # the built-in types marshal writes as they are (none of them is awaitable)
_is_container = _CONTAINERS.__contains__
_NATIVE = '<' if sys.byteorder == 'little' else '>'
# struct format characters of memoryview and array.array -> numpy kind ('i' signed, 'u' unsigned, 'f', 'b' bool)
_FORMAT_KIND = {'b': 'i', 'h': 'i', 'i': 'i', 'l': 'i', 'q': 'i', 'n': 'i',
                'B': 'u', 'H': 'u', 'I': 'u', 'L': 'u', 'Q': 'u', 'N': 'u', 'c': 'u',
                'f': 'f', 'd': 'f', '?': 'b'}
# (kind, itemsize) of the dtypes that have a JavaScript TypedArray -> memoryview format
_ARRAY_FORMAT = {('b', 1): '?', ('i', 1): 'b', ('u', 1): 'B', ('i', 2): 'h', ('u', 2): 'H', ('i', 4): 'i',
                 ('u', 4): 'I', ('i', 8): 'q', ('u', 8): 'Q', ('f', 4): 'f', ('f', 8): 'd'}
SUPPORTED_DTYPES = 'bool, int8, uint8, int16, uint16, int32, uint32, int64, uint64, float32, float64'

# How typed arrays from the host arrive: 'memoryview' (stdlib) or 'numpy' (numpy.ndarray). Set at start.
arrays = 'memoryview'

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


def _short_repr(obj, limit=80):
    try:
        text = repr(obj)
    except Exception as e:  # a broken __repr__ must not hide the conversion error
        text = '<%s object; its repr failed: %s>' % (_type_name(obj), type(e).__name__)
    return text if len(text) <= limit else text[:limit - 3] + '...'


def _is_plain(obj):
    """Whether everything in container `obj` is of a type marshal writes faithfully, and no bytes are large.

    Breadth first with C-speed steps: one get_referents call per level, not one Python step per object.
    Deeper than MAX_DEPTH (or cyclic) counts as not plain: the slow pass says which.
    """
    level = [obj]
    for _ in range(MAX_DEPTH + 1):
        children = level[0] if len(level) == 1 and type(level[0]) is list else get_referents(*level)
        types = set(map(type, children))
        if not types <= PLAIN:
            return False
        if bytes in types and any(len(b) >= PART_MIN for b in children if type(b) is bytes):
            return False
        if types.isdisjoint(_CONTAINERS):
            return True
        level = list(compress(children, map(_is_container, map(type, children))))
    return False


_MS = None


def _datetime_tag(obj):
    """A datetime as a Date: the millisecond it falls in (floored, also before 1970), computed in integers."""
    global _MS
    if _datetime is None:
        _load_datetime()
    if _MS is None:
        _MS = _timedelta(milliseconds=1)
    if obj.tzinfo is None or obj.utcoffset() is None:
        obj = obj.astimezone()  # naive: local time of the worker, as datetime.timestamp() takes it
    return (TAG, TAG_DATE, (obj - _epoch) // _MS)


def _date_tag(ms):
    """Milliseconds since the epoch (a numpy datetime64) as a Date, if a JavaScript Date can hold them."""
    if not -DATE_MAX <= ms <= DATE_MAX:
        raise Unconvertible('a numpy datetime64 outside the range of a JavaScript Date (years -271821 to 275760)',
                            'numpy.datetime64')
    return (TAG, TAG_DATE, int(ms))


def _buffer(data, parts):
    """A C-contiguous buffer as a message value: inline bytes when small, else the index of a new part."""
    if data.nbytes < PART_MIN:
        return data.tobytes()
    parts.append(data.cast('B') if data.ndim != 1 or data.format != 'B' else data)
    return len(parts) - 1


def _array_tag(view, typestr, parts):
    """A typed memoryview (any shape and strides) as an array tag; its data in C order."""
    shape = view.shape
    if not view.c_contiguous:
        view = memoryview(view.tobytes())  # F order, strided: C order, the one layout the host knows
    return (TAG, TAG_ARRAY, typestr, shape, _buffer(view, parts))


def _memoryview_tag(view, parts, what='memoryview'):
    fmt = view.format
    order = _NATIVE
    if fmt[:1] in '<>!=@':
        order = {'<': '<', '>': '>', '!': '>'}.get(fmt[0], _NATIVE)
        fmt = fmt[1:]
    kind = _FORMAT_KIND.get(fmt)
    if kind is None or (kind, view.itemsize) not in _ARRAY_FORMAT:
        raise Unconvertible("the format %r of a %s has no JavaScript typed array (supported: %s)"
                            % (view.format, what, SUPPORTED_DTYPES), what)
    size = view.itemsize
    return _array_tag(view, '%s%s%d' % ('|' if size == 1 else order, kind, size), parts)


def _ndarray_tag(arr, np, parts, depth, active):
    dt = arr.dtype
    kind = dt.kind
    if (kind, dt.itemsize) in _ARRAY_FORMAT and dt.fields is None and dt.subdtype is None:
        if not arr.flags.c_contiguous:
            arr = np.ascontiguousarray(arr)
        return (TAG, TAG_ARRAY, dt.str, arr.shape, _buffer(memoryview(arr), parts))
    if kind == 'M':  # datetime64: nested lists of Dates (None for NaT)
        ms = arr.astype('datetime64[ms]').astype(np.int64)
        nat = np.iinfo(np.int64).min
        return _map_nested(ms.tolist(), lambda v: None if v == nat else _date_tag(v))
    if kind in 'OUS':  # objects, str, bytes: nested lists of converted values
        return _convert(arr.tolist(), depth, active, parts)
    raise Unconvertible("numpy dtype '%s' has no JavaScript typed array (supported: %s); convert it first, "
                        "e.g. with .astype('float64') or .tolist()" % (dt, SUPPORTED_DTYPES), 'numpy.ndarray')


def _map_nested(obj, fn):
    if type(obj) is list:
        return [_map_nested(item, fn) for item in obj]
    return fn(obj)


def _numpy_scalar(obj, np):
    kind = obj.dtype.kind
    if kind == 'b':
        return bool(obj)
    if kind in 'iu':
        return int(obj)
    if kind == 'f':
        return float(obj)
    if kind == 'U':
        return str(obj)
    if kind == 'S':
        return bytes(obj)
    if kind == 'M':
        if np.isnat(obj):
            return None
        return _date_tag(int(obj.astype('datetime64[ms]').astype(np.int64)))
    raise Unconvertible("numpy type '%s' has no JavaScript counterpart" % type(obj).__name__, _type_name(obj))


def _index_tag(index, pd, np, depth, active, parts):
    if type(index) is pd.RangeIndex and index.start == 0 and index.step == 1:
        return None  # the default: 0 .. n-1
    return _column(index.to_numpy(), np, depth, active, parts)


def _column(values, np, depth, active, parts):
    if values.dtype.kind == 'O':  # pandas' missing values (pd.NA, pd.NaT) are None
        return [_convert(v, depth, active, parts) for v in values.tolist()]
    return _ndarray_tag(values, np, parts, depth, active)


def _frame_tag(df, pd, np, depth, active, parts):
    columns = [_convert(c, depth, active, parts) for c in df.columns.tolist()]
    data = []
    for i in range(df.shape[1]):
        try:
            data.append(_column(df.iloc[:, i].to_numpy(), np, depth, active, parts))
        except Unconvertible as e:
            e.path.append(df.columns[i] if isinstance(df.columns[i], (str, int)) else i)
            raise
    return (TAG, TAG_FRAME, columns, data, _index_tag(df.index, pd, np, depth, active, parts))


def _series_tag(s, pd, np, depth, active, parts):
    return (TAG, TAG_SERIES, _convert(s.name, depth, active, parts), _column(s.to_numpy(), np, depth, active, parts),
            _index_tag(s.index, pd, np, depth, active, parts))


class _Parts(list):
    """The parts of one message, and the handles it made (forgotten again if the message fails)."""

    __slots__ = ('refs',)

    def __init__(self):
        list.__init__(self)
        self.refs = []


def _convert(obj, depth, active, parts):
    t = type(obj)
    if t in _ATOMS:
        if t is bytes and len(obj) >= PART_MIN:
            parts.append(obj)
            return (TAG, TAG_BYTES, len(parts) - 1)
        return obj
    if t is Ref:
        return register(obj, parts.refs)
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
                append(_convert(item, depth + 1, active, parts))
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
                out[_convert(k, depth + 1, active, parts)] = _convert(v, depth + 1, active, parts)
            except Unconvertible as e:
                e.path.append(k if isinstance(k, (str, int)) else repr(k))
                raise
        active.discard(key)
        return out
    if isinstance(obj, (set, frozenset)):
        return set(_convert(item, depth + 1, active, parts) for item in obj)
    if isinstance(obj, bool):
        return bool(obj)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj)
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, (bytes, bytearray)):
        return _convert(bytes(obj), depth, active, parts)
    np = sys.modules.get('numpy')
    if np is not None:
        if isinstance(obj, np.ndarray):
            return _ndarray_tag(obj, np, parts, depth, active)
        if isinstance(obj, np.generic):
            return _numpy_scalar(obj, np)
    pd = sys.modules.get('pandas')
    if pd is not None:
        if obj is pd.NaT or obj is pd.NA:
            return None
        if isinstance(obj, pd.DataFrame):
            return _frame_tag(obj, pd, np, depth, active, parts)
        if isinstance(obj, pd.Series):
            return _series_tag(obj, pd, np, depth, active, parts)
    if isinstance(obj, memoryview):
        return _memoryview_tag(obj, parts)
    if _datetime is None:
        _load_datetime()
    if isinstance(obj, _datetime):
        return _datetime_tag(obj)
    if isinstance(obj, complex):
        raise Unconvertible("Python type 'complex' has no JavaScript counterpart", 'complex')
    if t.__module__ == 'array' and t.__name__ == 'array':
        return _memoryview_tag(memoryview(obj), parts, 'array.array')
    try:
        view = memoryview(obj)
    except TypeError:
        name = _type_name(obj)
        raise Unconvertible("Python type '%s' has no JavaScript counterpart (value: %s)" % (name, _short_repr(obj)),
                            name) from None
    if view.format in ('B', 'b', 'c') and view.ndim <= 1:
        return _convert(view.tobytes(), depth, active, parts)  # another bytes-like object (mmap, ...)
    return _memoryview_tag(view, parts, _type_name(obj))  # a typed buffer (ctypes arrays, ...)


def dumps(obj, wrapper=False):
    """Encode a value for the host: (payload, flags, parts), parts a list of buffers or None. Raises Unconvertible.

    With `wrapper`, obj is a container of user values (a batch of stream items) whose level does not count.
    """
    t = type(obj)
    if t in _ATOMS:
        if t is not bytes or len(obj) < PART_MIN:
            return _dumps(obj, MARSHAL_VERSION), 0, None
    elif t in _CONTAINERS and _is_plain(obj):
        try:
            return _dumps(obj, MARSHAL_VERSION), 0, None
        except ValueError:  # nested deeper than marshal allows
            raise Unconvertible('nesting deeper than %d levels' % MAX_DEPTH) from None
    parts = _Parts()
    try:
        try:
            converted = _convert(obj, -1 if wrapper else 0, set(), parts)
        except RecursionError:
            raise Unconvertible('nesting deeper than %d levels' % MAX_DEPTH) from None
        try:
            payload = _dumps(converted, MARSHAL_VERSION)
        except ValueError as e:  # e.g. nested deeper than marshal allows
            raise Unconvertible(str(e)) from None
    except BaseException:
        forget(parts.refs)  # the handles this message made never reach the host
        raise
    return payload, FLAG_TAGGED | (FLAG_PARTS if parts else 0), list(parts) or None


# ---------------------------------------------------------------------------------------------- from the host

def _typed(buf, typestr, shape):
    """A writable array over `buf` (bytearray) of numpy typestr `typestr` ('<f8', '|u1') and `shape`."""
    if arrays == 'numpy':
        import numpy
        return numpy.frombuffer(buf, dtype=typestr).reshape(shape)
    order, kind, size = typestr[0], typestr[1], int(typestr[2:])
    fmt = _ARRAY_FORMAT.get((kind, size))
    if fmt is None:
        raise Unconvertible('an array of dtype %r has no Python counterpart' % typestr, 'NDArray')
    if order not in ('|', '=', _NATIVE) and size > 1:
        import array
        swapped = array.array(fmt)
        swapped.frombytes(buf)
        swapped.byteswap()
        buf = bytearray(swapped.tobytes())
    view = memoryview(buf).cast(fmt)
    if len(shape) == 1:
        return view
    if 0 in shape:
        return view  # a memoryview cannot have a zero in its shape: an empty one-dimensional view
    return view.cast('B').cast(fmt, shape)


def _from_tag(tag, parts):
    name = tag[1] if len(tag) > 1 else None
    if name == TAG_DATE:
        if _datetime is None:
            _load_datetime()
        try:
            return _epoch + _timedelta(milliseconds=tag[2])
        except OverflowError:
            raise Unconvertible("a Date outside Python's datetime range (years 1 to 9999)", 'Date') from None
    if name == TAG_BYTES:
        return parts[tag[2]]
    if name == TAG_REF:
        return lookup(tag)
    if name == TAG_ARRAY:
        data = tag[4]
        buf = parts[data] if type(data) is int else bytearray(data)
        return _typed(buf, tag[2], tag[3])
    if name == TAG_FRAME:
        columns, data, index = tag[2], [_untag(c, parts) for c in tag[3]], _untag(tag[4], parts)
        try:
            import pandas
        except ImportError:
            return dict(zip(columns, data))
        import numpy
        frame = pandas.DataFrame({i: _column_values(c, numpy) for i, c in enumerate(data)},
                                 index=None if index is None else _column_values(index, numpy))
        frame.columns = columns
        return frame
    if name == TAG_SERIES:
        values, index = _untag(tag[3], parts), _untag(tag[4], parts)
        try:
            import pandas
        except ImportError:
            return values
        import numpy
        return pandas.Series(_column_values(values, numpy), name=_untag(tag[2], parts),
                             index=None if index is None else _column_values(index, numpy))
    raise Unconvertible('unknown tagged value %r from the host' % (name,))


def _column_values(values, numpy):
    return numpy.asarray(values) if isinstance(values, memoryview) else values


def _untag(obj, parts, depth=0):
    t = type(obj)
    if t is list:
        for i, item in enumerate(obj):
            if type(item) not in _ATOMS:
                obj[i] = _untag(item, parts, depth + 1)
        return obj
    if t is tuple:
        if obj and obj[0] is TAG:
            return _from_tag(obj, parts)
        return tuple([_untag(item, parts, depth + 1) for item in obj])
    if t is dict:
        fixed = {}
        for k, v in obj.items():
            fixed[_untag(k, parts, depth + 1)] = _untag(v, parts, depth + 1)
        return fixed
    if t is set:
        return {_untag(item, parts, depth + 1) for item in obj}
    return obj


def loads(payload, flags):
    """Decode a message from the host. With FLAG_PARTS, `payload` is (message, parts)."""
    parts = None
    if flags & FLAG_PARTS:
        payload, parts = payload
    value = _loads(payload)
    if flags & FLAG_TAGGED:
        value = _untag(value, parts)
    return value
