"""One pyworkers worker process.

The main thread reads requests from the data channel (fd 3) and runs them one after another; replies are
batched into as few writes as latency allows. A second thread serves the control channel (fd 4): cancels,
statistics, collections and tracing, so that they never wait behind user code.

Here: the main loop, the dispatch of requests, interrupts and late flushes, and the handshake. Streams are in
streams.py (mixed into Worker), failure replies in replies.py, the writer in channel.py, the control channel in
control.py.
"""
import builtins
import marshal
import os
import signal
import struct
import sys
import threading
import time
from collections import deque

from . import protocol as P
from . import refs, replies, values
from .callbacks import CallbackRequests, CallbackState
from .channel import Writer
from .control import serve_control
from .paths import RUNTIME_DIR
from .streams import StepEnd, StreamRequests
from .values import PLAIN, Unconvertible, dumps, loads

DATA_FD = P.DATA_FD
CONTROL_FD = P.CONTROL_FD
READ_SIZE = 1 << 18  # read into a buffer allocated once: a fresh 256 KiB bytes per read costs an mmap/munmap
FLUSH_AFTER = 0.0002   # a reply may wait this long for later replies to share its write
FLUSH_EVERY = 8        # ... and at most this many buffers (a small reply is one) share one
BIG_FRAME = 1 << 16    # frames at least this large are read straight into a buffer of their own
LATE_FLUSH = 0.002     # what is buffered when user code runs longer than this goes out anyway (SIGALRM)
SWITCH_INTERVAL = 0.0005  # s: how soon a thread waiting for the GIL gets it from one running Python code

_perf_counter = time.perf_counter
_marshal_loads = marshal.loads
_marshal_dumps = marshal.dumps
_SCALARS = frozenset((type(None), bool, int, float, str))  # marshal writes these faithfully, whatever they hold
_mark_started = struct.Struct('<I').pack_into
_stdout = None  # sys.stdout (output.py): what a request printed goes out before its reply
_NESTED = P.FLAG_NESTED
_RETURN_REF = P.FLAG_RETURN_REF


def _progress_file():
    """The file the host reads after this process dies, to tell the requests it started from those it did not:
    mapped shared, so a write is in the kernel's page cache at once and survives a SIGKILL. A dummy without one."""
    path = os.environ.pop('PYWORKERS_PROGRESS', None)
    if path:
        try:
            import mmap
            fd = os.open(path, os.O_RDWR)
            try:
                return mmap.mmap(fd, 8)
            finally:
                os.close(fd)
        except (OSError, ValueError):
            pass
    return bytearray(8)


class Worker(StreamRequests, CallbackRequests):
    def __init__(self, main_namespace):
        self.main = main_namespace
        self.out = Writer(DATA_FD, threading.Lock())
        self.inbuf = bytearray()
        self.read_lock = threading.Lock()
        self.read_buffer = bytearray(READ_SIZE)
        self.read_view = memoryview(self.read_buffer)
        self.pending = deque()
        # callbacks into the host (callbacks.py). (Few attributes: past 30, CPython's attribute access slows.)
        self.callbacks = CallbackState()
        self.namespaces = {}
        self.streams = {}  # open streams by id (streams.py)
        self.eval_cache = {}
        self.loop = None
        self.calls = 0
        self.started = time.time()
        # the id of the last request started, for the host to read after a crash (see _progress_file)
        self.progress = _progress_file()
        # interrupt state, shared with the control thread (see interrupt())
        self.current = 0
        self.armed = False
        self.cancelled = set()
        self.interrupted = 0
        self.main_ident = threading.main_thread().ident
        # late flushes: while user code runs (in_user), a SIGALRM sends what is buffered, and the items of the
        # running stream step (batch, for stream batch_sid: see streams.py)
        self.in_user = False
        self.batch = None
        self.batch_sid = 0
        self.alarm_armed = False
        self.alarm_handler = self.on_alarm
        self.worker_id = 0
        self.config = {}
        self.memory_limit = None
        # request kind -> action(rid, request), run by execute()
        self.actions = {
            P.CALL: self.do_call,
            P.EVAL: self.do_eval,
            P.EXEC: self.do_exec,
            P.STREAM_CALL: self.do_stream_call,
            P.STREAM_EVAL: self.do_stream_eval,
            P.STREAM_MORE: self.do_stream_more,
            P.STREAM_CLOSE: self.do_stream_close,
            P.CONTEXT_CLOSE: self.do_context_close,
        }

    # ---------------------------------------------------------------- interrupts
    def interrupt(self, rid):
        """Called on the control thread: interrupt request `rid` if it runs, or as soon as it starts.

        Race-free: the SIGINT handler only raises while the request it was meant for is the one running.
        """
        self.cancelled.add(rid)
        if self.current == rid:
            signal.pthread_kill(self.main_ident, signal.SIGINT)

    def on_sigint(self, signum, frame):
        if self.armed:
            self.raise_if_cancelled()

    def raise_if_cancelled(self):
        """Raise KeyboardInterrupt in the running request if the host cancelled it."""
        rid = self.current
        if rid in self.cancelled:
            self.cancelled.discard(rid)
            self.interrupted = rid
            raise KeyboardInterrupt

    def arm_late_flush(self):
        if not self.alarm_armed and signal.getsignal(signal.SIGALRM) is self.alarm_handler:
            self.alarm_armed = True
            signal.setitimer(signal.ITIMER_REAL, LATE_FLUSH)

    def on_alarm(self, signum, frame):
        """Runs on the main thread between bytecodes: while user code runs, send what waits in buffers."""
        self.alarm_armed = False
        if not self.in_user:
            if self.batch is not None:
                self.arm_late_flush()
            return
        batch = self.batch
        armed = self.armed
        self.armed = False  # an interrupt must not cut a frame in half: it is raised after the write
        try:
            if batch:
                items = batch[:]
                del batch[:]
                try:
                    payload, flags, parts = dumps(items, True)
                except BaseException:
                    batch[:0] = items
                else:
                    self.out.add(P.ITEMS, flags, self.batch_sid, payload, parts)
            self.out.flush()
            if batch is not None:
                self.arm_late_flush()
        finally:
            if armed:
                self.rearm()

    # ---------------------------------------------------------------- main loop
    def read_more(self):
        # The control thread may read requests too (drain_requests), under the same lock.
        with self.read_lock:
            if self.pending:  # the control thread read some meanwhile
                return
            self.read_once()

    def read_once(self):
        """Read once from the data channel (blocking) and parse what came; the caller holds read_lock."""
        inbuf = self.inbuf
        if len(inbuf) >= P.HEADER_SIZE:
            total = int.from_bytes(inbuf[:4], 'little') + 4
            if total >= BIG_FRAME:
                P.read_big_frame(DATA_FD, inbuf, total, self.pending)
                return
        n = os.readv(DATA_FD, (self.read_buffer,))
        if not n:
            P.host_gone()
        inbuf += self.read_view[:n]
        P.parse_frames(inbuf, self.pending)

    def drain_requests(self):
        """On the control thread, while the main thread runs user code: move the requests that arrived into the
        queue of pending requests, so that one can be revoked. Never blocks: does nothing if the main thread reads."""
        if not self.read_lock.acquire(blocking=False):
            return
        try:
            import select
            while select.select((DATA_FD,), (), (), 0)[0]:
                n = os.readv(DATA_FD, (self.read_buffer,))  # the main thread's buffer: free while we hold the lock
                if not n:
                    break  # end of input: the main thread sees it on its next read
                self.inbuf += self.read_view[:n]
                P.parse_frames(self.inbuf, self.pending)
                if n < READ_SIZE:
                    break
        finally:
            self.read_lock.release()

    def serve(self):
        pending = self.pending
        out = self.out
        actions = self.actions
        execute = self.execute
        callback_reply = P.CALLBACK_REPLY
        while True:
            if not pending:
                out.flush()
                self.read_more()
                continue
            try:
                kind, flags, rid, payload = pending.popleft()
            except IndexError:  # a thread waiting for a callback took it (callbacks.py)
                continue
            if kind == callback_reply:  # for a callback made on another thread
                self.deliver(rid, flags, payload)
                continue
            if out.parts:
                # Replies share a write, but not for long: the host works on the first ones while this worker
                # answers the rest (measured: 2.5x the calls/s of flushing only when the input is drained).
                if len(out.parts) >= FLUSH_EVERY or _perf_counter() - out.since > FLUSH_AFTER:
                    out.flush()
                else:
                    self.arm_late_flush()
            action = actions.get(kind)
            if action is None:
                self.send_error(rid, replies.protocol_error('unknown request kind %d' % kind))
            else:
                execute(rid, flags, payload, action)
            payload = None  # a big request's bytes must not outlive it while the worker waits for the next one

    def execute(self, rid, flags, payload, action):
        """Run action(rid, request) as request `rid`, interruptible, and send its one reply."""
        if not flags & _NESTED:  # (a nested request runs inside the one marked: the host counts that one started)
            _mark_started(self.progress, 0, rid)
        self.current = rid
        failure = None
        try:
            self.raise_if_cancelled()  # cancelled before it started
            self.armed = True
            request = _marshal_loads(payload) if not flags else loads(payload, flags)
            self.in_user = True
            result = action(rid, request)
            if type(result) not in PLAIN and hasattr(result, '__await__'):
                result = self.run_coroutine(result)
            self.in_user = False
            self.armed = False
            if flags & _RETURN_REF and type(result) is not StepEnd:
                result = refs.Ref(result)
        except BaseException as exc:
            self.in_user = False
            self.armed = False
            failure = exc
        if _stdout is not None and _stdout.pending:
            _flush_stdout()  # (a partial line: print(..., end=''))
        self.batch = None
        self.current = 0
        if failure is None:
            if type(result) is StepEnd:
                self.end_step(rid, result)
            else:
                self.send_result(rid, result)
        elif isinstance(failure, MemoryError):
            # Drop the exception (and the frames that hold what filled memory) before anything allocates. Its
            # subclasses (numpy's _ArrayMemoryError) are reported as MemoryError, the type callers test for.
            failure = None
            self.send_error(rid, replies.memory_error())
        else:
            self.send_failure(rid, failure)
        self.calls += 1

    def run_coroutine(self, awaitable):
        loop = self.loop
        if loop is not None and loop.is_running():
            return _run_in_thread(awaitable)  # a nested request while a coroutine waits for a callback
        if loop is None:
            import asyncio
            loop = self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
        task = loop.create_task(_await(awaitable))
        try:
            return loop.run_until_complete(task)
        except BaseException:
            if not task.done():
                task.cancel()
                try:
                    loop.run_until_complete(task)
                except BaseException:
                    pass
            raise

    # ---------------------------------------------------------------- replies
    def send_result(self, rid, result):
        try:
            if type(result) in _SCALARS:
                payload = _marshal_dumps(result, P.MARSHAL_VERSION)
                flags = 0
                parts = None
            else:
                payload, flags, parts = dumps(result)
        except Unconvertible as e:
            self.send_error(rid, replies.conversion_error(e, 'result'))
            return
        except MemoryError:
            self.send_error(rid, replies.memory_error())
            return
        self.out.add(P.OK, flags, rid, payload, parts)

    def send_error(self, rid, payload):
        """Send an ERROR frame; its payload is built by replies.py."""
        self.out.add(P.ERROR, 0, rid, payload)

    def send_failure(self, rid, exc):
        if isinstance(exc, KeyboardInterrupt) and self.interrupted == rid:
            self.interrupted = 0
            self.send_error(rid, replies.interrupted_error(exc))
        else:
            self.send_error(rid, replies.exception_error(exc, 'items'))

    # ---------------------------------------------------------------- requests
    def namespace(self, ctx):
        if not ctx:
            return self.main
        ns = self.namespaces.get(ctx)
        if ns is None:
            ns = self.namespaces[ctx] = {'__name__': '__main__', '__builtins__': builtins}
        return ns

    def resolve(self, ctx, module, name):
        head, dot, rest = name.partition('.')
        if type(module) is not str:  # a handle's object: a method call (refs.py)
            obj = getattr(module, head)
        elif module == '__main__':
            ns = self.namespaces.get(ctx) if ctx else None
            if ns is not None and head in ns:
                obj = ns[head]
            elif head in self.main:
                obj = self.main[head]
            else:
                raise AttributeError("module '__main__' has no attribute '%s'" % head)
        else:
            obj = sys.modules.get(module)
            if obj is None:
                import importlib
                obj = importlib.import_module(module)
            obj = getattr(obj, head)
        if dot:
            for part in rest.split('.'):
                obj = getattr(obj, part)
        return obj

    def compile_eval(self, code):
        cache = self.eval_cache
        compiled = cache.get(code)
        if compiled is None:
            compiled = compile(code, '<eval>', 'eval')
            if len(cache) >= 256:
                cache.clear()
            cache[code] = compiled
        return compiled

    def evaluate(self, ctx, code, local):
        ns = self.namespace(ctx)
        compiled = self.compile_eval(code)
        if local:
            scope = dict(ns)
            scope.update(local)
            return eval(compiled, scope)
        return eval(compiled, ns)

    def do_call(self, rid, req):
        ctx, module, name, args, kwargs = req
        fn = self.resolve(ctx, module, name)
        return fn(*args, **kwargs) if kwargs else fn(*args)

    def do_eval(self, rid, req):
        ctx, code, local = req
        return self.evaluate(ctx, code, local)

    def do_exec(self, rid, req):
        ctx, code = req
        exec(compile(code, '<exec>', 'exec'), self.namespace(ctx))
        return None

    def do_context_close(self, rid, ctx):
        self.namespaces.pop(ctx, None)
        return None

    def rearm(self):
        """Make the running request interruptible again, raising an interrupt that arrived meanwhile."""
        self.armed = True
        self.raise_if_cancelled()

    # ---------------------------------------------------------------- start
    def handshake(self):
        while not self.pending:
            self.read_more()
        kind, flags, rid, payload = self.pending.popleft()
        if kind != P.INIT:
            raise SystemExit('pyworkers: expected INIT, got frame kind %d' % kind)
        config = loads(payload, flags)
        if 'protocol' in config and config['protocol'] != P.PROTOCOL_VERSION:
            # A host that speaks another protocol: refuse to start (no path, setup or limits applied), and say so.
            self.send_error(rid, replies.protocol_error(
                'the host speaks protocol version %r, but the worker runtime (%s) speaks version %d'
                % (config['protocol'], RUNTIME_DIR, P.PROTOCOL_VERSION)))
            self.out.flush()
            return
        self.config = config
        self.worker_id = config.get('workerId', 0)
        refs.token = config.get('token', 0)
        refs.worker_id = self.worker_id
        global _stdout
        from . import output
        _stdout = output.install(self, config)
        if config.get('gcPauseBuckets'):  # the pool collects metrics: time the collections
            from .metrics import install
            install(config['gcPauseBuckets'])
        if config.get('tracemalloc'):  # the pool traces: so does this replacement worker, from its first line
            from .memory import start_tracing_at_start
            start_tracing_at_start(config['tracemalloc'])
        for entry in reversed(config.get('path') or ()):
            sys.path.insert(0, entry)
        try:
            limit = config.get('memoryLimit')
            forced = os.environ.get('PYWORKERS_MEMORY_LIMIT')  # an agent's cap (pyworkers serve), whatever its host asks
            if forced:
                limit = min(int(forced), limit) if limit else int(forced)
            if limit:
                import resource
                # RLIMIT_DATA counts heap and anonymous mmaps (pymalloc arenas, big buffers) but not the ~8 MiB
                # stacks in threads' address space, so threads stay cheap; allocations past it raise MemoryError.
                resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
                self.memory_limit = limit
            if config.get('arrays') == 'numpy':
                __import__('numpy')  # typed arrays from the host arrive as numpy arrays: numpy must import
                values.arrays = 'numpy'
            for code in config.get('setup') or ():
                exec(compile(code, '<setup>', 'exec'), self.main)
        except BaseException as exc:
            self.send_failure(rid, exc)
            self.out.flush()
            return
        import platform
        self.send_result(rid, {
            'pid': os.getpid(),
            'version': platform.python_version(),
            'implementation': platform.python_implementation(),
            'executable': sys.executable,
            'protocol': P.PROTOCOL_VERSION,
        })
        self.out.flush()


async def _await(awaitable):
    return await awaitable


def _flush_stdout():
    try:
        _stdout.flush()
    except Exception:
        pass


def _run_in_thread(awaitable):
    """Run a coroutine to its end on an event loop of its own in a thread of its own (this thread's loop runs)."""
    import asyncio
    box = []

    def run():
        try:
            box.append((True, asyncio.run(_await(awaitable))))
        except BaseException as e:  # noqa: B036 - handed to the caller
            box.append((False, e))
    thread = threading.Thread(target=run, name='pyworkers-nested-coroutine')
    thread.start()
    thread.join()
    ok, value = box[0]
    if ok:
        return value
    raise value


def main():
    try:
        os.setpgid(0, 0)  # a process group of its own: what user code starts ends with it (protocol.host_gone)
    except OSError:
        pass
    main_ns = sys.modules['__main__'].__dict__
    for name in ('sys', '_pyworkers'):
        main_ns.pop(name, None)
    parent = os.path.dirname(RUNTIME_DIR)
    if parent in sys.path:
        sys.path.remove(parent)
    for fd in (DATA_FD, CONTROL_FD):
        os.set_inheritable(fd, False)
        os.set_blocking(fd, True)
    try:
        sys.stdout.reconfigure(line_buffering=True)
    except Exception:
        pass
    # The control thread must win the GIL from a main thread that spins in Python to take back a call it has not
    # started (work stealing) or to answer at all: it waits up to a switch interval for it (5 ms by default).
    sys.setswitchinterval(SWITCH_INTERVAL)
    worker = Worker(main_ns)
    from . import host
    host.install(worker)
    signal.signal(signal.SIGINT, worker.on_sigint)
    signal.signal(signal.SIGALRM, worker.alarm_handler)
    signal.signal(signal.SIGTERM, P.host_gone)  # the parent-death signal (see control.py), or a kill: the group ends
    threading.Thread(target=serve_control, args=(worker, CONTROL_FD), name='pyworkers-control', daemon=True).start()
    worker.handshake()
    while True:
        try:
            worker.serve()
        except KeyboardInterrupt:
            # An interrupt that landed in the runtime's own code after its request finished: the request has
            # either answered already (current is 0) or is answered here.
            rid = worker.current
            worker.current = 0
            worker.armed = False
            if rid:
                worker.send_error(rid, replies.interrupted_error())
