"""What user code prints and logs, sent to the host on the data channel, in order with the replies.

- sys.stdout is replaced by a text stream whose lines go out as OUTPUT frames (payload: the text). A call's
  printed lines therefore reach the host before its reply: the host emits them before the call resolves. Writes
  to file descriptor 1 itself (C code, subprocesses) still go to the stdout pipe, in no particular order.
- With the pool option `logging`, a handler on the root logger sends each record as a LOG frame (payload: a dict
  of its fields); the host hands it to the app's handler.

Frames are written at once, under the channel's lock; on the main thread with late flushes and interrupts held
off (neither may land in the middle of a frame).
"""
import io
import logging
import threading

from . import protocol as P
from .channel import send_frame
from .values import dumps

_get_ident = threading.get_ident


def send(worker, kind, payload, flags=0, parts=None):
    """Write one frame that answers nothing (OUTPUT, LOG) from any thread."""
    if _get_ident() != worker.main_ident:
        with worker.out.lock:
            send_frame(P.DATA_FD, kind, flags, 0, payload, parts)
        return
    # On the main thread: no late flush (SIGALRM) and no interrupt (SIGINT) in the middle of the frame.
    in_user, armed = worker.in_user, worker.armed
    worker.in_user = worker.armed = False
    try:
        with worker.out.lock:
            worker.out.flush_locked()  # replies buffered before it go first
            send_frame(P.DATA_FD, kind, flags, 0, payload, parts)
    finally:
        worker.in_user = in_user
        if armed:
            worker.rearm()  # raises an interrupt that arrived meanwhile


class ChannelStdout(io.TextIOBase):
    """sys.stdout: whole lines go to the host as OUTPUT frames; a partial line waits for its end, a flush(), or the
    end of the request (Worker.execute flushes)."""

    def __init__(self, worker, original):
        super().__init__()
        self._worker = worker
        self.original = original
        self.pending = []
        self._lock = threading.Lock()

    @property
    def encoding(self):
        return 'utf-8'

    @property
    def errors(self):
        return 'strict'

    @property
    def buffer(self):
        return _ChannelBytes(self)

    def writable(self):
        return True

    def isatty(self):
        return False

    def fileno(self):
        return self.original.fileno()

    def reconfigure(self, **_):
        pass

    def write(self, text):
        if self.closed:
            raise ValueError('I/O operation on closed file.')
        if type(text) is not str:
            if not isinstance(text, str):
                raise TypeError('write() argument must be str, not %s' % type(text).__name__)
            text = str(text)
        if text:
            with self._lock:
                self.pending.append(text)
                if '\n' not in text:
                    return len(text)
                data = ''.join(self.pending)
                self.pending = []
            send(self._worker, P.OUTPUT, data.encode('utf-8', 'surrogateescape'))
        return len(text)

    def flush(self):
        if self.closed:
            raise ValueError('I/O operation on closed file.')
        if self.pending:
            with self._lock:
                data = ''.join(self.pending)
                self.pending = []
            if data:
                send(self._worker, P.OUTPUT, data.encode('utf-8', 'surrogateescape'))


class _ChannelBytes:
    """sys.stdout.buffer: bytes, decoded (invalid UTF-8 kept as escapes) and sent as text."""

    def __init__(self, text):
        self._text = text

    def write(self, data):
        self._text.write(bytes(data).decode('utf-8', 'surrogateescape'))
        return len(data)

    def flush(self):
        self._text.flush()

    def fileno(self):
        return self._text.fileno()

    def writable(self):
        return True


class ChannelLogHandler(logging.Handler):
    """Sends each record to the host as a LOG frame."""

    def __init__(self, worker, level):
        super().__init__(level)
        self._worker = worker

    def emit(self, record):
        try:
            message = record.getMessage()
            exception = None
            if record.exc_info:
                exception = logging.Formatter().formatException(record.exc_info)
            elif record.exc_text:
                exception = record.exc_text
            fields = {
                'level': record.levelname,
                'levelno': record.levelno,
                'logger': record.name,
                'name': record.name,
                'message': message,
                'module': record.module,
                'function': record.funcName,
                'file': record.pathname,
                'line': record.lineno,
                'time': record.created * 1000.0,
                'thread': record.threadName,
                'exception': exception,
                'stack': record.stack_info,
                'workerId': self._worker.worker_id,
            }
            payload, flags, parts = dumps(fields)
            send(self._worker, P.LOG, payload, flags, parts)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)


def install(worker, config):
    """At start: stdout to the host; with config['logging'] (a level), logging records too."""
    import sys
    stdout = ChannelStdout(worker, sys.stdout)
    sys.stdout = stdout
    level = config.get('logging')
    if level is not None:
        root = logging.getLogger()
        root.addHandler(ChannelLogHandler(worker, level))
        root.setLevel(level)
    return stdout
