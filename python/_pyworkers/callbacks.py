"""Calls from Python into functions of the host (pyworkers.host), mixed into Worker.

A call sends a CALLBACK frame (id: the callback's number; payload: (request, name, args)) and waits for the
CALLBACK_REPLY with that id. While it waits, the host may run requests on this worker from the callback (a
TypeScript function calling back into Python): those carry FLAG_NESTED and run at once, inside the wait. Other
requests read meanwhile wait in `later` and run, in order, after the request that made the callback.

Who reads the data channel while a callback waits:
- the main thread, in a plain call: it blocks on the channel (`wait_main`);
- the main thread, in a coroutine on the running event loop: a reader of the loop (`wait_async`), so the loop
  keeps running other tasks;
- another thread: the main thread delivers its reply if it reads; when it runs user code instead, the waiting
  thread reads what arrived itself (`wait_thread`).

Interrupts: a wait on the main thread is not interruptible by signal (it reads the channel, whose bytes must not be
lost). When the host interrupts the request, it also answers the callbacks that request waits for; the wait then
raises the interrupt.
"""
import itertools
import marshal
import select
import sys
import threading
from collections import deque

from . import protocol as P
from . import replies
from .channel import send_frame
from .refs import Ref
from .values import Unconvertible, dumps, loads

_get_ident = threading.get_ident
_marshal_dumps = marshal.dumps
_modules = sys.modules
_SCALARS = frozenset((type(None), bool, int, float, str))  # marshal writes these faithfully
_POLL_MIN = 0.0002
_POLL_MAX = 0.005


class HostError(Exception):
    """A function of the host failed: `name` and `message` of the JavaScript error, its `stack`, and `function`,
    the host function called."""

    def __init__(self, name, message, stack='', function=''):
        Exception.__init__(self, '%s: %s' % (name, message) if name else message)
        self.name = name
        self.message = message
        self.stack = stack
        self.function = function
        if stack and hasattr(self, 'add_note'):
            self.add_note('JavaScript stack of host function %r:\n%s' % (function, stack))


HostError.__module__ = 'pyworkers'


class _Waiter:
    __slots__ = ('done', 'status', 'value', 'event', 'future', 'loop', 'name')

    def __init__(self, name):
        self.done = False
        self.status = None
        self.value = None
        self.event = None
        self.future = None
        self.loop = None
        self.name = name

    def outcome(self):
        status, value = self.status, self.value
        if status == 'ok':
            return value
        if status == 'error':
            name, message, stack = value
            raise HostError(name, message, stack, self.name)
        if status == 'unknown':
            known = ', '.join(sorted(value)) or 'none'
            raise HostError('LookupError', 'no host function %r is registered (registered: %s)'
                            % (self.name, known), '', self.name)
        raise HostError('ProtocolError', 'unexpected callback reply %r' % (status,), '', self.name)


def _set_future(future, _value):
    if not future.done():
        future.set_result(None)


class CallbackState:
    """A worker's callbacks in flight."""

    __slots__ = ('waiters', 'next_number', 'loop_waiters', 'later')

    def __init__(self):
        self.waiters = {}  # callback number -> _Waiter
        self.next_number = itertools.count(1).__next__
        self.loop_waiters = 0  # waits on the running event loop (its reader of the data channel is on while > 0)
        # requests read during a wait that are not for it: back to the front of `pending` when the wait ends
        self.later = deque()


class CallbackRequests:
    """Worker methods for callbacks; Worker.__init__ sets `callbacks` (a CallbackState)."""

    # ------------------------------------------------------------------ making a call
    def call_host(self, name, args, kwargs):
        """Call the host function `name`; blocks (or, inside a coroutine on this thread's running loop, returns an
        awaitable) until the host answers."""
        if type(name) is not str or not name:
            raise TypeError('a host function name must be a non-empty string')
        if kwargs:
            args = args + (kwargs,)
        state = self.callbacks
        number = state.next_number()
        message = (self.current, name, list(args))
        for arg in args:
            if type(arg) not in _SCALARS:
                try:
                    payload, flags, parts = dumps(message)
                except Unconvertible as e:
                    raise TypeError('host.%s(): cannot send %s to the host: %s; pass pyworkers.ref(obj) to send '
                                    'a handle' % (name, e.where('args'), e.reason)) from None
                break
        else:  # (the common case) scalars only: marshal as it is
            payload, flags, parts = _marshal_dumps(message, P.MARSHAL_VERSION), 0, None
        waiter = _Waiter(name)
        waiters = state.waiters
        waiters[number] = waiter
        if _get_ident() != self.main_ident:
            waiter.event = threading.Event()
            with self.out.lock:
                send_frame(P.DATA_FD, P.CALLBACK, flags, number, payload, parts)
            try:
                self.wait_thread(waiter)
            finally:
                waiters.pop(number, None)
            return waiter.outcome()
        loop = _running_loop()
        # no late flush (SIGALRM) and no interrupt (SIGINT) in the middle of the frame
        in_user, armed = self.in_user, self.armed
        self.in_user = self.armed = False
        try:
            with self.out.lock:
                self.out.flush_locked()  # what the main thread buffered goes first
                send_frame(P.DATA_FD, P.CALLBACK, flags, number, payload, parts)
        finally:
            self.in_user, self.armed = in_user, armed
        if loop is not None:
            return self.wait_async(number, waiter, loop)
        try:
            self.wait_main(waiter)
        finally:
            waiters.pop(number, None)
        return waiter.outcome()

    # ------------------------------------------------------------------ waiting
    def wait_main(self, waiter):
        armed, in_user = self.armed, self.in_user
        self.armed = self.in_user = False
        pending = self.pending
        try:
            while not waiter.done:
                if pending:
                    try:
                        item = pending.popleft()
                    except IndexError:
                        continue
                    self.route_waiting(item)
                    continue
                self.out.flush()
                self.read_more()
        finally:
            self.armed, self.in_user = armed, in_user
            self.restore_later()
        if armed:
            self.raise_if_cancelled()  # the host interrupted the request that waited

    async def wait_async(self, number, waiter, loop):
        waiter.future = future = loop.create_future()
        waiter.loop = loop
        if waiter.done:
            future.set_result(None)
        state = self.callbacks
        state.loop_waiters += 1
        if state.loop_waiters == 1:
            loop.add_reader(P.DATA_FD, self.on_readable)
        loop.call_soon(self.pump_async)  # a reply may be read already
        try:
            await future
        finally:
            state.waiters.pop(number, None)
            state.loop_waiters -= 1
            if not state.loop_waiters:
                loop.remove_reader(P.DATA_FD)
            self.restore_later()
        return waiter.outcome()

    def on_readable(self):
        if self.read_lock.acquire(blocking=False):  # else the control thread reads: called again
            try:
                self.read_available()
            finally:
                self.read_lock.release()
        self.pump_async()

    def pump_async(self):
        pending = self.pending
        while pending:
            try:
                item = pending.popleft()
            except IndexError:
                break
            self.route_waiting(item)

    def wait_thread(self, waiter):
        delay = _POLL_MIN
        while not waiter.event.wait(delay):
            delay = min(delay * 2, _POLL_MAX)
            # The main thread delivers replies when it reads the channel; when it runs user code, no one does.
            if self.read_lock.acquire(blocking=False):
                try:
                    self.read_available()
                finally:
                    self.read_lock.release()
                for item in list(self.pending):
                    kind, flags = item[0], item[1]
                    if kind == P.CALLBACK_REPLY or flags & P.FLAG_NESTED:
                        try:
                            self.pending.remove(item)
                        except ValueError:
                            continue  # the main thread took it
                        if kind == P.CALLBACK_REPLY:
                            self.deliver(item[2], flags, item[3])
                        else:
                            self.run_off_main(item)

    # ------------------------------------------------------------------ what arrives meanwhile
    def route_waiting(self, item):
        """A frame read while the main thread waits for a callback."""
        kind, flags = item[0], item[1]
        if kind == P.CALLBACK_REPLY:
            self.deliver(item[2], flags, item[3])
        elif flags & P.FLAG_NESTED:
            self.run_nested(item)
        else:
            self.callbacks.later.append(item)

    def restore_later(self):
        """Put the requests a wait set aside back at the front of `pending`, in order."""
        later = self.callbacks.later
        if later:
            self.pending.extendleft(reversed(later))
            later.clear()

    def deliver(self, number, flags, payload):
        """A CALLBACK_REPLY: settle its waiter (one whose request was interrupted is gone: the reply is dropped)."""
        waiter = self.callbacks.waiters.get(number)
        if waiter is None:
            return
        try:
            reply = loads(payload, flags)
            waiter.status, waiter.value = reply[0], reply[1]
        except BaseException as e:  # noqa: B036 - whatever fails, the waiter must wake
            waiter.status, waiter.value = 'error', ('ConversionError', 'cannot read the reply: %s' % e, '')
        waiter.done = True
        if waiter.event is not None:
            waiter.event.set()
        elif waiter.future is not None:
            waiter.loop.call_soon_threadsafe(_set_future, waiter.future, None)

    def run_nested(self, item):
        """Run a nested request on the main thread, inside a wait, and restore the state of the waiting one."""
        kind, flags, rid, payload = item
        saved = self.current, self.armed, self.in_user, self.batch, self.batch_sid
        action = self.actions.get(kind)
        try:
            if action is None:
                self.send_error(rid, replies.protocol_error('unknown request kind %d' % kind))
            else:
                self.execute(rid, flags, payload, action)
        finally:
            self.current, self.armed, self.in_user, self.batch, self.batch_sid = saved
        self.out.flush()

    def run_off_main(self, item):
        """Run a nested request on this (non-main) thread: a callback made on it waits; the main thread is busy.
        Not interruptible: signals reach the main thread only."""
        kind, flags, rid, payload = item
        action = self.actions.get(kind)
        result_kind, out_flags, parts = P.ERROR, 0, None
        try:
            if kind not in (P.CALL, P.EVAL, P.EXEC) or action is None:
                raise Unconvertible('only calls, evals and execs can be made from a callback on a Python thread')
            result = action(rid, loads(payload, flags))
            if hasattr(result, '__await__') and type(result) is not Ref:
                import asyncio
                result = asyncio.run(_await(result))
            if flags & P.FLAG_RETURN_REF:
                result = Ref(result)
            body, out_flags, parts = dumps(result)
            result_kind = P.OK
        except Unconvertible as e:
            body = replies.conversion_error(e, 'result')
        except BaseException as e:  # noqa: B036 - reported to the host like any request's failure
            body = replies.exception_error(e, 'result')
        with self.out.lock:
            send_frame(P.DATA_FD, result_kind, out_flags, rid, body, parts)

    def read_available(self):
        """Read what the data channel holds now, without blocking (the caller holds read_lock)."""
        fd = P.DATA_FD
        if select.select((fd,), (), (), 0)[0]:
            self.read_once()


async def _await(awaitable):
    return await awaitable


def _running_loop():
    asyncio = _modules.get('asyncio')
    return asyncio._get_running_loop() if asyncio is not None else None

