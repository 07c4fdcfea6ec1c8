"""Failure replies: the payload of every ERROR frame, on both channels, is built here.

An ERROR payload is the marshal of a tuple (kind, type, module, message, detail):

- 'python': a Python exception: its type's qualified name and module, str() of it, and its formatted traceback
  without the runtime's own frames;
- 'interrupted': the host cancelled the request: the KeyboardInterrupt that stopped it, as for 'python';
- 'conversion': a value with no counterpart on the other side: its type's name, '', the reason, and where it was;
- 'protocol': a request this worker cannot take: 'ProtocolError', 'pyworkers', what is wrong, ''.

The host turns them into its PythonError, ConversionError and ProtocolError (src/job.ts, errorFromReply).
"""
import marshal

from .paths import RUNTIME_DIR
from .protocol import MARSHAL_VERSION
from .values import Unconvertible


def error_payload(kind, type_name, module, message, detail):
    return marshal.dumps((kind, type_name, module, message, detail), MARSHAL_VERSION)


# Built in advance: when memory has run out, the reply must not need any. The data channel has always sent the
# traceback of a bare MemoryError; the control channel, none.
_MEMORY_ERROR = error_payload('python', 'MemoryError', 'builtins', '', 'MemoryError\n')
_MEMORY_ERROR_BARE = error_payload('python', 'MemoryError', 'builtins', '', '')


def memory_error(traceback=True):
    """The reply for a MemoryError. It allocates nothing, but the caller must drop the exception first: its
    frames hold what filled memory, so that (and only that) makes room for sending the reply."""
    return _MEMORY_ERROR if traceback else _MEMORY_ERROR_BARE


def _type_info(exc):
    cls = exc.__class__
    return cls.__qualname__, cls.__module__ or ''


def _message(exc):
    try:
        return str(exc)
    except BaseException:
        return '<unprintable %s>' % exc.__class__.__name__


def format_traceback(exc):
    """The formatted traceback of `exc`, from the first frame outside the runtime, without the runtime's frames
    after it either (a callback's wait, say) ('' when it cannot be)."""
    import traceback
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(RUNTIME_DIR):
        tb = tb.tb_next
    try:
        te = traceback.TracebackException(type(exc), exc, tb)
        te.stack[:] = [f for f in te.stack if not f.filename.startswith(RUNTIME_DIR)] or te.stack
        return ''.join(te.format())
    except BaseException:
        return ''


CHAIN_MAX = 10  # chained exceptions reported with an error, at most


def _chain(exc):
    """The exceptions `exc` was raised from (`raise ... from`) or during the handling of, outermost first, each as
    (type, module, message, its own traceback)."""
    import traceback
    out = []
    seen = {id(exc)}
    while len(out) < CHAIN_MAX:
        exc = exc.__cause__ if exc.__cause__ is not None else (None if exc.__suppress_context__ else exc.__context__)
        if exc is None or id(exc) in seen:
            break
        seen.add(id(exc))
        name, module = _type_info(exc)
        try:
            text = ''.join(traceback.format_exception(type(exc), exc, exc.__traceback__, chain=False))
        except BaseException:
            text = ''
        out.append((name, module, _message(exc), text))
    return out


def python_error(exc, kind='python'):
    name, module = _type_info(exc)
    chain = _chain(exc)
    if not chain:
        return error_payload(kind, name, module, _message(exc), format_traceback(exc))
    return marshal.dumps((kind, name, module, _message(exc), format_traceback(exc), chain), MARSHAL_VERSION)


def interrupted_error(exc=None):
    """A request interrupted by the host: by KeyboardInterrupt `exc`, or (None) in the runtime's own code after
    the request had finished running."""
    if exc is None:
        return error_payload('interrupted', 'KeyboardInterrupt', 'builtins', '', '')
    return python_error(exc, 'interrupted')


def conversion_error(exc, root):
    """Unconvertible `exc`; `root` names the value it was found in ('result', 'items')."""
    return error_payload('conversion', exc.type_name or '', '', exc.reason, exc.where(root))


def protocol_error(message):
    return error_payload('protocol', 'ProtocolError', 'pyworkers', message, '')


def exception_error(exc, root):
    """An exception that ends a request: a conversion error (in `root`) for Unconvertible, else a Python error."""
    if isinstance(exc, Unconvertible):
        return conversion_error(exc, root)
    return python_error(exc)
