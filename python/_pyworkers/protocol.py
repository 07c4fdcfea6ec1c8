"""Frame layout shared with the host (src/protocol/frames.ts).

Every frame: u32 LE length of what follows, u8 kind, u8 flags, u32 LE id, u8 MAGIC, payload. The payload is one
value in marshal format version 4. A header with another magic byte or unknown flags is a corrupt stream (stray
bytes written to the channel): it is refused, never waited for. (The host also refuses kinds a worker never sends.)

With FLAG_PARTS the payload is: u32 LE count, count x (u32 LE size, u32 LE kind), the marshal value, then the parts
one after another. A part is a large buffer (an array's data, big bytes) sent as it is, so that neither side copies
it into or out of the message: the sender writes it from where it lies, the receiver reads it straight into the
object that becomes the value. The value refers to parts by index (see values.py).
"""
import os
import struct

HEADER = struct.Struct('<IBBIB')
HEADER_SIZE = HEADER.size  # 11
MAGIC = 0xA7
PROTOCOL_VERSION = 2  # sent in the handshake's reply; an INIT config's 'protocol', when given, must equal it

DATA_FD = 3     # the data channel: requests and their replies
CONTROL_FD = 4  # the control channel (control.py)

# flags
FLAG_TAGGED = 0x01  # the payload holds tagged values (Ellipsis, name, ...): dates, arrays, ... (see values.py)
FLAG_PARTS = 0x02   # the payload has parts (implies FLAG_TAGGED)
FLAG_NESTED = 0x10  # a request made by a callback this worker waits for: it runs at once, inside the wait
FLAG_RETURN_REF = 0x20  # answer with a handle to the result, not the result (see refs.py)
_FLAGS = FLAG_TAGGED | FLAG_PARTS | FLAG_NESTED | FLAG_RETURN_REF

# part kinds: what the receiver reads a part into
PART_BYTES = 0      # bytes
PART_BUFFER = 1     # a writable buffer (bytearray): the data of an array
PART_ENTRY = struct.Struct('<II')

# host -> worker, data channel
INIT = 1
CALL = 2
EVAL = 3
EXEC = 4
STREAM_CALL = 5
STREAM_EVAL = 6
STREAM_MORE = 7
STREAM_CLOSE = 8
CONTEXT_CLOSE = 9
CALLBACK_REPLY = 10  # the outcome of a CALLBACK, with its id

# host -> worker, control channel
CANCEL = 32
CONTROL = 33

# worker -> host (both channels)
OK = 64
ERROR = 65
ITEMS = 66        # stream items; the step goes on
ITEMS_PAUSE = 67  # stream items; the step ended because the host's credit ran out
ITEMS_END = 68    # stream items; the iterator is exhausted
CALLBACK = 69     # data channel: user code calls a function of the host; answered by CALLBACK_REPLY
OUTPUT = 70       # data channel: text user code wrote to sys.stdout (output.py)
LOG = 71          # data channel: a logging record (output.py)

MARSHAL_VERSION = 4


def host_gone(*_):
    """The host is gone (a channel ended, or the parent-death signal came): end this worker and what user code
    started. The host starts each worker in a process group of its own; without one, end just this process."""
    if os.getpgrp() == os.getpid():
        os.killpg(0, 9)  # SIGKILL: the worker and its process group
    os._exit(0)


def frame_header(kind, flags, rid, payload_len):
    return HEADER.pack(payload_len + 7, kind, flags, rid, MAGIC)


def frame_with_parts(kind, flags, rid, payload, parts):
    """The buffers of a FLAG_PARTS frame, for one vectored write: the parts are not copied."""
    table = bytearray(4 + 8 * len(parts))
    table[:4] = len(parts).to_bytes(4, 'little')
    total = 0
    for i, part in enumerate(parts):
        size = part.nbytes if type(part) is memoryview else len(part)
        PART_ENTRY.pack_into(table, 4 + 8 * i, size, PART_BYTES)
        total += size
    head = HEADER.pack(7 + len(table) + len(payload) + total, kind, flags | FLAG_PARTS, rid, MAGIC)
    return [head + table, payload, *parts]


def _parts_table(buf, start):
    """(count, [(size, kind)], bytes the table takes) of the parts table at buf[start:]."""
    count = int.from_bytes(buf[start:start + 4], 'little')
    entries = [PART_ENTRY.unpack_from(buf, start + 4 + 8 * i) for i in range(count)]
    return entries, 4 + 8 * count


def split_parts(payload):
    """A complete FLAG_PARTS payload (a bytearray) -> (message, parts)."""
    entries, table_size = _parts_table(payload, 0)
    end = len(payload) - sum(size for size, _ in entries)
    if end <= table_size:
        raise ValueError('pyworkers: corrupt frame: its parts are larger than the frame')
    parts = []
    pos = end
    for size, kind in entries:
        chunk = payload[pos:pos + size]  # a bytearray of its own
        parts.append(chunk if kind == PART_BUFFER else bytes(chunk))
        pos += size
    return payload[table_size:end], parts


def parse_frames(buf, out):
    """Move every complete frame of bytearray `buf` into list `out` as (kind, flags, id, payload bytearray)."""
    pos = 0
    end = len(buf)
    unpack = HEADER.unpack_from
    while end - pos >= HEADER_SIZE:
        length, kind, flags, rid, magic = unpack(buf, pos)
        if magic != MAGIC or flags & ~_FLAGS:
            _corrupt(buf, pos)
        stop = pos + 4 + length
        if stop > end:
            break
        payload = buf[pos + HEADER_SIZE:stop]
        out.append((kind, flags, rid, split_parts(payload) if flags & FLAG_PARTS else payload))
        pos = stop
    if pos:
        del buf[:pos]


def read_into(fd, view):
    """Fill memoryview `view` from fd."""
    have = 0
    total = len(view)
    while have < total:
        n = os.readv(fd, (view[have:],))
        if not n:
            host_gone()
        have += n


def _fill(fd, inbuf, size):
    """Make bytearray `inbuf` hold at least `size` bytes, reading no more than that."""
    missing = size - len(inbuf)
    if missing > 0:
        more = bytearray(missing)
        read_into(fd, memoryview(more))
        inbuf += more


def _corrupt(buf, pos):
    raise ValueError('pyworkers: corrupt frame header %r' % bytes(buf[pos:pos + HEADER_SIZE]))


def read_big_frame(fd, inbuf, total, out):
    """Read the rest of a large frame (its start is in `inbuf`) into a buffer of its own: one copy, not three."""
    _, _, flags, _, magic = HEADER.unpack_from(inbuf)
    if magic != MAGIC or flags & ~_FLAGS:
        _corrupt(inbuf, 0)
    if flags & FLAG_PARTS:
        _read_parts_frame(fd, inbuf, total, out)
        return
    frame = bytearray(total)
    have = len(inbuf)
    frame[:have] = inbuf
    inbuf.clear()
    view = memoryview(frame)
    read_into(fd, view[have:])
    _, kind, flags, rid, _ = HEADER.unpack_from(frame)
    out.append((kind, flags, rid, view[HEADER_SIZE:]))


def _read_parts_frame(fd, inbuf, total, out):
    """Read a FLAG_PARTS frame whose start is in `inbuf`: each part straight into the object it becomes."""
    _fill(fd, inbuf, HEADER_SIZE + 4)
    count = int.from_bytes(inbuf[HEADER_SIZE:HEADER_SIZE + 4], 'little')
    _fill(fd, inbuf, HEADER_SIZE + 4 + 8 * count)
    entries, table_size = _parts_table(inbuf, HEADER_SIZE)
    head_size = total - sum(size for size, _ in entries)
    if head_size <= HEADER_SIZE + table_size:
        raise ValueError('pyworkers: corrupt frame: its parts are larger than the frame')
    _fill(fd, inbuf, head_size)
    _, kind, flags, rid, _ = HEADER.unpack_from(inbuf)
    message = inbuf[HEADER_SIZE + table_size:head_size]
    ahead = memoryview(inbuf)[head_size:]  # the start of the parts, read with the message
    parts = []
    for size, part_kind in entries:
        take = min(size, len(ahead))
        parts.append(_read_part(fd, size, part_kind, ahead[:take]))
        ahead = ahead[take:]
    del ahead
    inbuf.clear()
    out.append((kind, flags, rid, (message, parts)))


def _read_part(fd, size, kind, start):
    """A part of `size` bytes whose first bytes are `start` and the rest still to be read from fd."""
    if kind == PART_BUFFER:
        buf = bytearray(size)
        view = memoryview(buf)
        view[:len(start)] = start
        read_into(fd, view[len(start):])
        view.release()
        return buf
    # bytes, filled in place: a BytesIO's own buffer is handed over by getvalue() without a copy
    import io
    bio = io.BytesIO()
    if size:
        bio.seek(size - 1)
        bio.write(b'\0')
    with bio.getbuffer() as view:
        view[:len(start)] = start
        rest = view[len(start):]
        read_into(fd, rest)
        rest.release()
    return bio.getvalue()
