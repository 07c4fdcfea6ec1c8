/**
 * Frames on the worker's channels. Each: u32 LE length of what follows, u8 kind, u8 flags, u32 LE id, and a
 * payload of one marshal value. Mirrors python/_pyworkers/protocol.py.
 *
 * With FLAG_PARTS the payload is: u32 LE count, count × (u32 LE size, u32 LE kind), the marshal value, then the
 * parts. A part is a large buffer (an array's data, big bytes) written from the memory it lies in and read into a
 * buffer of its own, so that neither side copies it into or out of the message.
 */
import { readSync } from 'node:fs';
import type { Socket } from 'node:net';
import { ProtocolError } from '../errors.js';

export const HEADER_SIZE = 11;
/** The header's last byte. With a known kind and known flags it tells a frame from stray bytes on the channel. */
export const MAGIC = 0xa7;
/** Checked at start-up on both sides (the INIT request and the worker's answer carry it). */
export const PROTOCOL_VERSION = 2;
export const FLAG_TAGGED = 0x01;
/** The payload has parts (see above); implies FLAG_TAGGED. */
export const FLAG_PARTS = 0x02;
/** Host → worker: a request made by a callback the worker waits for; it runs at once, inside the wait. */
export const FLAG_NESTED = 0x10;
/** Host → worker: answer with a handle to the result (a PyRef), not the result. */
export const FLAG_RETURN_REF = 0x20;
/** What Python reads a part into: `bytes`, or a writable buffer (an array's data). */
export const PART_BYTES = 0;
export const PART_BUFFER = 1;
/** Frames at least this large are read into buffers of their own as their chunks arrive (no concatenation). */
const BIG_FRAME = 64 * 1024;
/**
 * Frames at least this large are read straight into their buffers where the stream allows (see DirectRead):
 * Node's own reads allocate a 64 KiB chunk each, which the allocator keeps long after: +30% of the frame in RSS.
 * Smaller frames take Node's chunks, which was faster for them (measured with 1 and 8 MiB).
 */
const DIRECT_MIN = 32 * 1024 * 1024;
/** Payloads larger than this are refused (a frame length beyond it means a corrupt stream). */
export const MAX_FRAME = 2 ** 31;

export const Kind = {
  INIT: 1,
  CALL: 2,
  EVAL: 3,
  EXEC: 4,
  STREAM_CALL: 5,
  STREAM_EVAL: 6,
  STREAM_MORE: 7,
  STREAM_CLOSE: 8,
  CONTEXT_CLOSE: 9,
  CALLBACK_REPLY: 10,
  CANCEL: 32,
  CONTROL: 33,
  OK: 64,
  ERROR: 65,
  ITEMS: 66,
  ITEMS_PAUSE: 67,
  ITEMS_END: 68,
  CALLBACK: 69,
  OUTPUT: 70,
  LOG: 71,
} as const;

/** What a worker sends: on the data channel, and on the control channel. */
export const WORKER_DATA_KINDS: ReadonlySet<number> = new Set([Kind.OK, Kind.ERROR, Kind.ITEMS, Kind.ITEMS_PAUSE, Kind.ITEMS_END, Kind.CALLBACK, Kind.OUTPUT, Kind.LOG]);
export const WORKER_CONTROL_KINDS: ReadonlySet<number> = new Set([Kind.OK, Kind.ERROR]);

/** Fill in the header that `Encoder.begin(HEADER_SIZE)` left room for; `extra` bytes of parts follow the frame. */
export function writeHeader(frame: Buffer, kind: number, flags: number, id: number, extra = 0): Buffer {
  frame.writeUInt32LE(frame.length - 4 + extra, 0);
  frame[4] = kind;
  frame[5] = flags;
  frame.writeUInt32LE(id, 6);
  frame[10] = MAGIC;
  return frame;
}

export type FrameHandler = (kind: number, flags: number, id: number, buf: Buffer, start: number, end: number, parts?: Uint8Array[]) => void;

/**
 * Reads up to `length` bytes of the stream into `target` at `offset` without waiting: the count, or 0 when
 * nothing is ready. It lets a large frame be read straight into its buffers instead of through chunks.
 */
export type DirectRead = (target: Buffer, offset: number, length: number) => number;

/** A frame too big for one chunk, read into its buffers as chunks arrive: the head, then each part. */
class Assembly {
  readonly buffers: Buffer[];
  #index = 0;
  #offset = 0;

  readonly size: number;

  constructor(sizes: number[]) {
    this.buffers = sizes.map((size) => Buffer.allocUnsafeSlow(size));
    this.size = sizes.reduce((a, b) => a + b, 0);
  }

  get done(): boolean {
    return this.#index === this.buffers.length;
  }

  /** Read what is available straight into the buffers. */
  drain(read: DirectRead): void {
    while (this.#index < this.buffers.length) {
      const target = this.buffers[this.#index]!;
      const n = read(target, this.#offset, target.length - this.#offset);
      if (n <= 0) return;
      this.#offset += n;
      if (this.#offset === target.length) {
        this.#index++;
        this.#offset = 0;
      }
    }
  }

  /** Copy from `chunk[pos..]` what belongs to the frame; returns the position after it. */
  fill(chunk: Buffer, pos: number): number {
    while (pos < chunk.length && this.#index < this.buffers.length) {
      const target = this.buffers[this.#index]!;
      const n = Math.min(target.length - this.#offset, chunk.length - pos);
      chunk.copy(target, this.#offset, pos, pos + n);
      pos += n;
      this.#offset += n;
      if (this.#offset === target.length) {
        this.#index++;
        this.#offset = 0;
      }
    }
    return pos;
  }
}

/**
 * Cuts a byte stream into frames. A frame inside one chunk is handed on as a view of it; a small frame that
 * spans chunks is concatenated once; a large one is copied into its own buffers as its chunks arrive.
 */
export class FrameReader {
  #pending: Buffer[] = [];
  #pendingSize = 0;
  /** Bytes the pending data must reach before it is looked at again. */
  #need = 0;
  #assembly: Assembly | undefined;

  /**
   * @param onFrame called with each frame.
   * @param kinds the frame kinds this stream may carry: any other (or another magic byte, or unknown flags) is a
   *   corrupt stream, refused with a ProtocolError at once, never waited for.
   * @param directRead when given, a large frame's rest is read with it straight into the frame's buffers (no
   *   chunk allocated per 64 KiB, no copy out of it); it must read from the stream `push` gets its chunks from.
   */
  constructor(
    private readonly onFrame: FrameHandler,
    private readonly kinds: ReadonlySet<number>,
    private readonly directRead?: DirectRead,
  ) {}

  push(chunk: Buffer): void {
    let pos = 0;
    if (this.#assembly) {
      pos = this.#assembly.fill(chunk, 0);
      if (!this.#assembled()) return;
    } else if (this.#pendingSize > 0) {
      this.#pending.push(chunk);
      this.#pendingSize += chunk.length;
      if (this.#pendingSize < this.#need) return;
      chunk = Buffer.concat(this.#pending, this.#pendingSize);
      this.#pending = [];
      this.#pendingSize = 0;
    }
    this.#frames(chunk, pos);
  }

  #frames(buf: Buffer, pos: number): void {
    const end = buf.length;
    while (pos < end) {
      const avail = end - pos;
      if (avail < HEADER_SIZE) return this.#wait(buf, pos, HEADER_SIZE);
      const size = this.#frameSize(buf, pos);
      const parted = (buf[pos + 5]! & FLAG_PARTS) !== 0;
      if (avail >= size) {
        if (parted) this.#emitParted(buf, pos, size);
        else this.onFrame(buf[pos + 4]!, buf[pos + 5]!, buf.readUInt32LE(pos + 6), buf, pos + HEADER_SIZE, pos + size);
        pos += size;
        continue;
      }
      let sizes: number[];
      if (parted) {
        if (avail < HEADER_SIZE + 4) return this.#wait(buf, pos, HEADER_SIZE + 4);
        const tableEnd = HEADER_SIZE + 4 + 8 * buf.readUInt32LE(pos + HEADER_SIZE);
        if (avail < tableEnd) return this.#wait(buf, pos, Math.min(tableEnd, size));
        sizes = partSizes(buf, pos, size);
      } else if (size >= BIG_FRAME) {
        sizes = [size];
      } else {
        return this.#wait(buf, pos, size);
      }
      this.#assembly = new Assembly(sizes);
      this.#assembly.fill(buf, pos); // all the rest of buf: the frame did not fit in it
      this.#assembled();
      return;
    }
  }

  /** Read more of a very large frame directly, if possible; emit the frame when complete. */
  #assembled(): boolean {
    const assembly = this.#assembly!;
    if (!assembly.done && assembly.size >= DIRECT_MIN && this.directRead) assembly.drain(this.directRead);
    if (!assembly.done) return false;
    this.#assembly = undefined;
    this.#emitAssembled(assembly);
    return true;
  }

  #wait(buf: Buffer, pos: number, need: number): void {
    const rest = buf.subarray(pos);
    this.#pending = [rest];
    this.#pendingSize = rest.length;
    this.#need = need;
  }

  /** A frame with parts, all in `buf`: each part is copied into a buffer of its own (results own their memory). */
  #emitParted(buf: Buffer, pos: number, size: number): void {
    const sizes = partSizes(buf, pos, size);
    const headEnd = pos + sizes[0]!;
    const parts: Uint8Array[] = [];
    let at = headEnd;
    for (let i = 1; i < sizes.length; i++) {
      parts.push(Uint8Array.prototype.slice.call(buf, at, at + sizes[i]!));
      at += sizes[i]!;
    }
    this.onFrame(buf[pos + 4]!, buf[pos + 5]!, buf.readUInt32LE(pos + 6), buf, messageStart(buf, pos), headEnd, parts);
  }

  #emitAssembled(assembly: Assembly): void {
    const [head, ...parts] = assembly.buffers as [Buffer, ...Buffer[]];
    if (head[5]! & FLAG_PARTS) this.onFrame(head[4]!, head[5]!, head.readUInt32LE(6), head, messageStart(head, 0), head.length, parts);
    else this.onFrame(head[4]!, head[5]!, head.readUInt32LE(6), head, HEADER_SIZE, head.length);
  }

  /** The size of the frame whose (whole) header is at buf[pos], checked. */
  #frameSize(buf: Buffer, pos: number): number {
    const length = buf.readUInt32LE(pos);
    if (buf[pos + 10] !== MAGIC || !this.kinds.has(buf[pos + 4]!) || (buf[pos + 5]! & ~(FLAG_TAGGED | FLAG_PARTS)) !== 0) {
      throw new ProtocolError(`corrupt frame header ${buf.toString('hex', pos, pos + HEADER_SIZE)}: stray bytes on the channel`);
    }
    if (length < HEADER_SIZE - 4 || length > MAX_FRAME) throw new ProtocolError(`corrupt frame length ${length}`);
    return length + 4;
  }
}

/**
 * [head size, part sizes...] of the FLAG_PARTS frame of `size` bytes at buf[pos]; the head is the header, the
 * parts table and the message.
 */
function partSizes(buf: Buffer, pos: number, size: number): number[] {
  const count = buf.readUInt32LE(pos + HEADER_SIZE);
  const sizes = [0];
  let total = 0;
  for (let i = 0; i < count; i++) {
    const n = buf.readUInt32LE(pos + HEADER_SIZE + 4 + 8 * i);
    sizes.push(n);
    total += n;
  }
  sizes[0] = size - total;
  if (sizes[0] <= HEADER_SIZE + 4 + 8 * count) throw new ProtocolError('corrupt frame: its parts are larger than the frame');
  return sizes;
}

/** Where the message of the FLAG_PARTS frame at buf[pos] starts: past the header and the parts table. */
function messageStart(buf: Buffer, pos: number): number {
  return pos + HEADER_SIZE + 4 + 8 * buf.readUInt32LE(pos + HEADER_SIZE);
}

/** The head of a frame with parts: room for the header, the parts table, then `message`. */
export function partsHead(message: Buffer, messageStart: number, parts: readonly Uint8Array[], kinds: readonly number[]): Buffer {
  const tableSize = 4 + 8 * parts.length;
  const head = Buffer.allocUnsafe(HEADER_SIZE + tableSize + message.length - messageStart);
  head.fill(0, 0, HEADER_SIZE);
  head.writeUInt32LE(parts.length, HEADER_SIZE);
  parts.forEach((part, i) => {
    head.writeUInt32LE(part.byteLength, HEADER_SIZE + 4 + 8 * i);
    head.writeUInt32LE(kinds[i]!, HEADER_SIZE + 8 + 8 * i);
  });
  message.copy(head, HEADER_SIZE + tableSize, messageStart);
  return head;
}

/**
 * A DirectRead from a socket's file descriptor, or undefined where it has none (not a Unix pipe or socket). It
 * reads only while the socket has no chunk waiting to be handed out, so bytes are never taken out of order, and
 * only while the socket is open (its descriptor cannot have been reused).
 */
export function socketDirectRead(socket: Socket): DirectRead | undefined {
  const handle = () => (socket as unknown as { _handle?: { fd?: unknown } | null })._handle;
  if (process.platform === 'win32' || typeof handle()?.fd !== 'number') return undefined;
  return (target, offset, length) => {
    const fd = handle()?.fd;
    if (socket.destroyed || socket.readableLength > 0 || typeof fd !== 'number' || fd < 0) return 0;
    try {
      return readSync(fd, target, offset, length, null);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EAGAIN' || (error as NodeJS.ErrnoException).code === 'EWOULDBLOCK') return 0;
      throw error;
    }
  };
}

/** Coalesces the frames written during one turn of the event loop into one write. */
export class FrameWriter {
  #queue: Uint8Array[] = [];
  #scheduled = false;

  constructor(private readonly socket: { write(chunk: Uint8Array): unknown; cork(): void; uncork(): void; readonly destroyed: boolean }) {}

  /**
   * Queue a frame (and the parts that follow it, written from their own memory); with `now` (nothing else in
   * flight, so nothing to share a write with) send it at once.
   */
  write(frame: Buffer, now = false, parts?: readonly Uint8Array[]): void {
    if (now && !this.#scheduled) {
      if (this.socket.destroyed) return;
      if (!parts) {
        this.socket.write(frame);
        return;
      }
      this.socket.cork();
      this.socket.write(frame);
      for (const part of parts) this.socket.write(part);
      this.socket.uncork();
      return;
    }
    this.#queue.push(frame);
    if (parts) this.#queue.push(...parts);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.flush);
    }
  }

  readonly flush = (): void => {
    this.#scheduled = false;
    const queue = this.#queue;
    if (queue.length === 0) return;
    this.#queue = [];
    if (this.socket.destroyed) return;
    if (queue.length === 1) {
      this.socket.write(queue[0]!);
      return;
    }
    this.socket.cork();
    for (const frame of queue) this.socket.write(frame);
    this.socket.uncork();
  };
}
