"""Streams: a request whose result is iterated, its items sent in ITEMS frames as the host grants credit.

STREAM_CALL / STREAM_EVAL open a stream and run its first step; STREAM_MORE grants more credit and runs the next
step; STREAM_CLOSE closes it. A step produces items until the credit runs out (ITEMS_PAUSE) or the iterator
ends (ITEMS_END); full batches go out on the way as ITEMS frames.

StreamRequests is a mixin of worker.Worker: its methods run as the worker's own, on its state: `streams` (the
open streams by id), the late-flush `batch` and `batch_sid` (the running step's items not yet sent, which the
SIGALRM handler Worker.on_alarm sends too), and the interrupt flags `armed` and `in_user`. The dispatch of
requests to the do_stream_* methods, execute() (which sends a step's last frame through end_step once the step
is no longer interruptible), the late flush and the interrupts stay in worker.py.
"""
from . import protocol as P
from .values import PLAIN, Unconvertible, dumps

STREAM_BATCH = 2048    # at most this many stream items per frame


class StepEnd:
    """What a stream step returns: its last frame, sent by execute() once the step is no longer interruptible."""

    __slots__ = ('stream', 'kind', 'items')

    def __init__(self, stream, kind, items):
        self.stream = stream
        self.kind = kind
        self.items = items


class Stream:
    __slots__ = ('iterator', 'is_async', 'credit', 'granted')

    def __init__(self, iterator, is_async, credit):
        self.iterator = iterator
        self.is_async = is_async
        self.credit = credit
        self.granted = credit  # items asked for so far: granted - credit were produced


class StreamRequests:
    """The stream requests of the Worker (see the module's docstring)."""

    def do_stream_call(self, rid, req):
        ctx, module, name, args, kwargs, credit = req
        fn = self.resolve(ctx, module, name)
        return self.open_stream(rid, fn(*args, **kwargs) if kwargs else fn(*args), credit)

    def do_stream_eval(self, rid, req):
        ctx, code, local, credit = req
        return self.open_stream(rid, self.evaluate(ctx, code, local), credit)

    def open_stream(self, sid, obj, credit):
        if type(obj) not in PLAIN and hasattr(obj, '__await__') and not hasattr(obj, '__aiter__'):
            obj = self.run_coroutine(obj)
        if hasattr(obj, '__aiter__'):
            stream = Stream(obj.__aiter__(), True, credit)
        elif hasattr(obj, '__anext__'):  # an async iterator without __aiter__
            stream = Stream(obj, True, credit)
        else:
            try:
                iterator = iter(obj)
            except TypeError:
                raise TypeError("a stream needs an iterable, but the result is of type '%s'"
                                % type(obj).__qualname__) from None
            stream = Stream(iterator, False, credit)
        self.streams[sid] = stream
        return self.stream_step(sid, stream)

    def do_stream_more(self, sid, credit):
        stream = self.streams.get(sid)
        if stream is None:  # ended or closed meanwhile
            return StepEnd(None, P.ITEMS_END, [])
        stream.credit += credit
        stream.granted += credit
        return self.stream_step(sid, stream)

    def do_stream_close(self, rid, sid):
        stream = self.streams.pop(sid, None)
        if stream is not None:
            self.close_iterator(stream, quiet=False)
        return None

    def close_iterator(self, stream, quiet=True):
        """Close a stream's iterator: generator.close() / aclose(), so that its finally blocks run."""
        iterator = stream.iterator
        try:
            if stream.is_async:
                aclose = getattr(iterator, 'aclose', None)
                if aclose is not None:
                    self.run_coroutine(aclose())
            else:
                close = getattr(iterator, 'close', None)
                if close is not None:
                    close()
        except BaseException:
            if not quiet:
                raise

    def refuse_item(self, sid, stream, items, exc):
        """An item the host cannot take: end the stream and point the error at the item's index in the stream.
        (send_items delivered the items before it; it is items[exc.path[-1]].)"""
        self.streams.pop(sid, None)
        self.close_iterator(stream)
        path = exc.path
        if path and type(path[-1]) is int:
            path[-1] += stream.granted - stream.credit - len(items)

    def stream_step(self, sid, stream):
        """Produce up to the stream's credit of items: ITEMS frames on the way, the last one returned as a StepEnd.

        Items go out in batches: when a batch is full, and (through the late-flush alarm) when the iterator takes
        longer than worker.LATE_FLUSH for its next item, so a slow generator's items arrive one by one.
        """
        items = self.batch = []
        self.batch_sid = sid
        iterator = stream.iterator
        self.arm_late_flush()
        try:
            if stream.is_async:
                anext = iterator.__anext__
                run = self.run_coroutine
                while stream.credit > 0:
                    items.append(run(anext()))
                    stream.credit -= 1
                    if len(items) >= STREAM_BATCH:
                        self.send_items(sid, P.ITEMS, items)
            else:
                step = iterator.__next__
                append = items.append
                while stream.credit > 0:
                    append(step())
                    stream.credit -= 1
                    if len(items) >= STREAM_BATCH:
                        self.send_items(sid, P.ITEMS, items)
            kind = P.ITEMS_PAUSE
        except (StopIteration, StopAsyncIteration):
            self.streams.pop(sid, None)
            kind = P.ITEMS_END
        except Unconvertible as exc:
            self.refuse_item(sid, stream, items, exc)
            raise
        except BaseException:
            # the iterator raised (it is finished), or an interrupt landed between two items (close it here)
            self.streams.pop(sid, None)
            self.close_iterator(stream)
            if items:
                try:
                    self.send_items(sid, P.ITEMS, items)
                except Unconvertible as exc:
                    self.refuse_item(sid, stream, items, exc)
                    raise
            raise
        return StepEnd(stream, kind, items)

    def end_step(self, sid, end):
        """Send a stream step's last frame. execute() calls this after the step left the interruptible region, so
        that an interrupt landing now cannot give the step a second ending."""
        try:
            self.send_items(sid, end.kind, end.items)
        except Unconvertible as exc:
            if end.stream is not None:
                self.refuse_item(sid, end.stream, end.items, exc)
            self.send_failure(sid, exc)

    def send_items(self, sid, kind, items):
        """Send the items and empty the batch (in place: the alarm handler shares the list).

        Not interruptible: an interrupt must not cut a frame in half. One that arrives meanwhile is raised after.
        """
        armed = self.armed
        self.in_user = self.armed = False
        try:
            payload, flags, parts = dumps(items, True)
        except Unconvertible as exc:
            # deliver the items before the one that cannot be converted; it becomes items[0]
            bad = exc.path[-1] if exc.path and type(exc.path[-1]) is int else 0
            if bad > 0:
                self.send_items(sid, P.ITEMS, items[:bad])
                del items[:bad]
                exc.path[-1] = 0
            raise
        del items[:]
        out = self.out
        out.add(kind, flags, sid, payload, parts)
        # Items go out at once, the step's last frame too: a request queued behind the step (the next grant of
        # credit) must not hold items that the host could already hand out, nor lose them if it crashes.
        out.flush()
        if kind == P.ITEMS:
            self.in_user = True
        if armed:
            self.rearm()
