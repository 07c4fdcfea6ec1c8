"""Writing frames to a channel: whole writes whatever the kernel takes, and the batching of replies.

The data channel's replies go through a Writer (batched: see Worker.serve for when it flushes); the control
thread's replies are written one by one with send_frame.
"""
import os
import time

from .protocol import HEADER, MAGIC, frame_header, frame_with_parts

IOV_MAX = 512

_perf_counter = time.perf_counter
_header = HEADER.pack


def write_all(fd, parts):
    """Write every buffer of `parts` to fd, however the kernel splits it."""
    if len(parts) == 1:
        data = parts[0]
        written = os.write(fd, data)
        if written == len(data):
            return
        parts[0] = memoryview(data)[written:]
    i = 0
    n_parts = len(parts)
    while i < n_parts:
        batch = parts[i:i + IOV_MAX]
        written = os.writev(fd, batch)
        for part in batch:
            size = len(part)
            if written >= size:
                written -= size
                i += 1
            else:
                parts[i] = memoryview(part)[written:]
                break


def send_frame(fd, kind, flags, rid, payload, parts=None):
    """Write one frame at once (unbatched), its parts (see protocol.py) from their own memory."""
    if parts:
        write_all(fd, frame_with_parts(kind, flags, rid, payload, parts))
    elif len(payload) < 1024:  # one buffer: one plain write
        write_all(fd, [frame_header(kind, flags, rid, len(payload)) + payload])
    else:
        write_all(fd, [frame_header(kind, flags, rid, len(payload)), payload])


class Writer:
    """Collects frames and writes them together. `lock` is held for every write: threads that call back into the
    host write their frames to the same channel (see callbacks.py)."""

    __slots__ = ('fd', 'parts', 'since', 'lock')

    def __init__(self, fd, lock):
        self.fd = fd
        self.parts = []
        self.since = 0.0
        self.lock = lock

    def add(self, kind, flags, rid, payload, data_parts=None):
        parts = self.parts
        if not parts:
            self.since = _perf_counter()
        if data_parts:
            # Written from the objects' own memory, and at once: the next request could change them.
            parts.extend(frame_with_parts(kind, flags, rid, payload, data_parts))
            self.flush()
        elif len(payload) < 1024:  # one buffer: fewer iovecs for the kernel
            parts.append(_header(len(payload) + 7, kind, flags, rid, MAGIC) + payload)
        else:
            parts.append(_header(len(payload) + 7, kind, flags, rid, MAGIC))
            parts.append(payload)

    def flush(self):
        parts = self.parts
        if parts:
            self.parts = []
            with self.lock:
                write_all(self.fd, parts)

    def flush_locked(self):
        """flush(), the caller holding `lock`."""
        parts = self.parts
        if parts:
            self.parts = []
            write_all(self.fd, parts)
