"""The control channel: served on its own thread so that it answers while user code runs.

A control request names an operation of OPERATIONS (below: the one list of them); each takes the Worker and the
request's arguments and returns a value the host can decode. Cancels are not operations: they go straight to
Worker.interrupt.
"""
import os

from . import memory, metrics
from . import protocol as P
from .channel import send_frame
from .replies import exception_error, memory_error
from .values import dumps, loads


def _die_with_parent():
    """Ask Linux for SIGTERM when the host dies: its handler ends the worker's process group (protocol.host_gone),
    so that processes user code started go too. The control channel's EOF covers the rest."""
    host = os.environ.get('PYWORKERS_HOST_PID')
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, 15)  # PR_SET_PDEATHSIG, SIGTERM
    except Exception:
        pass
    if host and str(os.getppid()) != host:
        P.host_gone()


def _answer(worker, fd, rid, flags, payload):
    failure = None
    try:
        name, args = loads(payload, flags)
        op = OPERATIONS.get(name)
        if op is None:
            raise ValueError('unknown control operation %r' % (name,))
        body, out_flags, parts = dumps(op(worker, *args))
    except BaseException as exc:
        failure = exc
    if failure is None:
        send_frame(fd, P.OK, out_flags, rid, body, parts)
        return
    if failure.__class__ is MemoryError:
        failure = None  # drop the frames that hold what filled memory before the reply is sent
        payload = memory_error(traceback=False)
    else:
        payload = exception_error(failure, 'result')
    send_frame(fd, P.ERROR, 0, rid, payload)


def serve_control(worker, fd):
    # Signals for the main thread (interrupts, late flushes) must not land here.
    import signal
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGALRM})
    _die_with_parent()
    buf = bytearray()
    frames = []
    while True:
        data = os.read(fd, 65536)
        if not data:
            P.host_gone()
        buf += data
        P.parse_frames(buf, frames)
        for kind, flags, rid, payload in frames:
            if kind == P.CANCEL:
                worker.interrupt(rid)
            elif kind == P.CONTROL:
                _answer(worker, fd, rid, flags, payload)
        frames.clear()


def sample(worker):
    """What the host's memory monitor samples on every interval: cheap on purpose."""
    import gc
    return [list(gc.get_count()), list(gc.get_threshold()), worker.calls]


_REVOCABLE = (P.CALL, P.EVAL, P.EXEC)


def revoke(worker, rid):
    """Take back request `rid` if this worker has not started it: it is in the queue of requests read and not yet
    run. Then it never runs here (the host sends it to an idle worker). Deque operations are atomic under the GIL."""
    worker.drain_requests()
    for item in list(worker.pending):
        if item[2] == rid and item[0] in _REVOCABLE:
            try:
                worker.pending.remove(item)
            except ValueError:  # the main thread took it meanwhile
                return False
            return True
    return False


# Every operation, by the name the host calls it (src/: worker.control(name, args)).
OPERATIONS = {
    'sample': sample,
    'metrics': metrics.read,
    'revoke': revoke,
    # memory.py: statistics, the collector, tracing, snapshots, references, the allocator
    'stats': memory.stats,
    'gc': memory.collect,
    'gc_enable': memory.gc_enable,
    'gc_isenabled': memory.gc_isenabled,
    'gc_threshold': memory.gc_threshold,
    'gc_debug': memory.gc_debug,
    'gc_garbage': memory.gc_garbage,
    'gc_clear_garbage': memory.gc_clear_garbage,
    'tracemalloc_start': memory.tracemalloc_start,
    'tracemalloc_stop': memory.tracemalloc_stop,
    'snapshot_take': memory.snapshot_take,
    'snapshot_compare': memory.snapshot_compare,
    'snapshot_release': memory.snapshot_release,
    'references': memory.references,
    'allocator': memory.allocator,
}
