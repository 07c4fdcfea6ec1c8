"""Frame layout shared with the host (src/protocol/frames.ts).

Every frame: u32 LE length of what follows, u8 kind, u8 flags, u32 LE id, payload.
The payload is one value in marshal format version 4.
"""
import struct

HEADER = struct.Struct('<IBBI')
HEADER_SIZE = HEADER.size  # 10
PROTOCOL_VERSION = 1

# flags
FLAG_TAGGED = 0x01  # the payload holds tagged values (complex(ms, 0.0) stands for a datetime)

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

# host -> worker, control channel
CANCEL = 32
CONTROL = 33

# worker -> host (both channels)
OK = 64
ERROR = 65
ITEMS = 66        # stream items; the step goes on
ITEMS_PAUSE = 67  # stream items; the step ended because the host's credit ran out
ITEMS_END = 68    # stream items; the iterator is exhausted

MARSHAL_VERSION = 4


def frame_header(kind, flags, rid, payload_len):
    return HEADER.pack(payload_len + 6, kind, flags, rid)


def parse_frames(buf, out):
    """Move every complete frame of bytearray `buf` into list `out` as (kind, flags, id, payload bytearray)."""
    pos = 0
    end = len(buf)
    unpack = HEADER.unpack_from
    while end - pos >= HEADER_SIZE:
        length, kind, flags, rid = unpack(buf, pos)
        stop = pos + 4 + length
        if stop > end:
            break
        out.append((kind, flags, rid, buf[pos + HEADER_SIZE:stop]))
        pos = stop
    if pos:
        del buf[:pos]


def read_big_frame(fd, inbuf, total, out):
    """Read the rest of a large frame (its start is in `inbuf`) into a buffer of its own: one copy, not three."""
    import os
    frame = bytearray(total)
    have = len(inbuf)
    frame[:have] = inbuf
    inbuf.clear()
    view = memoryview(frame)
    while have < total:
        n = os.readv(fd, (view[have:],))
        if not n:
            os._exit(0)  # the host is gone
        have += n
    _, kind, flags, rid = HEADER.unpack_from(frame)
    out.append((kind, flags, rid, view[HEADER_SIZE:]))
