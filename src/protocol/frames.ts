/**
 * Frames on the worker's channels. Each: u32 LE length of what follows, u8 kind, u8 flags, u32 LE id, and a
 * payload of one marshal value. Mirrors python/_pyworkers/protocol.py.
 */
import type { Socket } from 'node:net';
import { ProtocolError } from '../errors.js';

export const HEADER_SIZE = 10;
export const FLAG_TAGGED = 0x01;
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
  CANCEL: 32,
  CONTROL: 33,
  OK: 64,
  ERROR: 65,
  ITEMS: 66,
  ITEMS_PAUSE: 67,
  ITEMS_END: 68,
} as const;

/** Fill in the header that `Encoder.begin(HEADER_SIZE)` left room for. */
export function writeHeader(frame: Buffer, kind: number, flags: number, id: number): Buffer {
  frame.writeUInt32LE(frame.length - 4, 0);
  frame[4] = kind;
  frame[5] = flags;
  frame.writeUInt32LE(id, 6);
  return frame;
}

export type FrameHandler = (kind: number, flags: number, id: number, buf: Buffer, start: number, end: number) => void;

/** Cuts a byte stream into frames, copying only when a frame spans chunks. */
export class FrameReader {
  #pending: Buffer[] = [];
  #pendingSize = 0;
  #need = 0;

  constructor(private readonly onFrame: FrameHandler) {}

  push(chunk: Buffer): void {
    if (this.#pendingSize > 0) {
      this.#pending.push(chunk);
      this.#pendingSize += chunk.length;
      if (this.#need === 0 && this.#pendingSize >= 4) this.#need = this.#frameSize(Buffer.concat(this.#pending, 4), 0);
      if (this.#need === 0 || this.#pendingSize < this.#need) return;
      chunk = Buffer.concat(this.#pending, this.#pendingSize);
      this.#pending = [];
      this.#pendingSize = 0;
      this.#need = 0;
    }
    let pos = 0;
    const end = chunk.length;
    while (end - pos >= HEADER_SIZE) {
      const size = this.#frameSize(chunk, pos);
      if (end - pos < size) break;
      this.onFrame(chunk[pos + 4]!, chunk[pos + 5]!, chunk.readUInt32LE(pos + 6), chunk, pos + HEADER_SIZE, pos + size);
      pos += size;
    }
    if (pos < end) {
      const rest = chunk.subarray(pos);
      this.#pending.push(rest);
      this.#pendingSize = rest.length;
      this.#need = rest.length >= 4 ? this.#frameSize(rest, 0) : 0;
    }
  }

  #frameSize(buf: Buffer, pos: number): number {
    const length = buf.readUInt32LE(pos);
    if (length < HEADER_SIZE - 4 || length > MAX_FRAME) throw new ProtocolError(`corrupt frame length ${length}`);
    return length + 4;
  }
}

/** Coalesces the frames written during one turn of the event loop into one write. */
export class FrameWriter {
  #queue: Buffer[] = [];
  #scheduled = false;

  constructor(private readonly socket: Socket) {}

  /** Queue a frame; with `now` (nothing else in flight, so nothing to share a write with) send it at once. */
  write(frame: Buffer, now = false): void {
    if (now && !this.#scheduled) {
      if (!this.socket.destroyed) this.socket.write(frame);
      return;
    }
    this.#queue.push(frame);
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
