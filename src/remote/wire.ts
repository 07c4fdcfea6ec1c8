/**
 * The messages between a host and an agent, on one TLS connection that carries every worker the host leases
 * there. Each: u32 LE length of what follows, u8 type, u32 LE channel (a leased worker; 0: the connection), and
 * a payload: JSON for the connection's messages, raw bytes of a worker's pipes for DATA and CONTROL.
 *
 * Before the agent has checked the host's HELLO (its protocol version and its token), it reads nothing but one
 * small HELLO; a longer message, another type, or a wrong token ends the connection. Lengths are bounded
 * on both sides.
 */
import type { Socket } from 'node:net';

/** The first bytes of a HELLO: what a stray client (an HTTP request, a port scanner) does not send. */
export const MAGIC = 'pyworkers-remote';
/** Checked in the HELLO: an agent and a host of other versions refuse each other before anything else. */
export const REMOTE_PROTOCOL = 1;
export const HEADER = 9;
/** The largest message after authentication; DATA larger than CHUNK is split. */
export const MAX_MESSAGE = 16 * 1024 * 1024;
/** The largest message before it (a HELLO). */
export const MAX_HELLO = 8 * 1024;
/** DATA and CONTROL are cut into messages of at most this size, so one big array does not hold the others long. */
export const CHUNK = 1024 * 1024;
/** Pipe bytes up to this size are copied into their message: one write costs more than the copy. */
const SMALL = 64 * 1024;

export const Msg = {
  /** host → agent: {magic, protocol, token?, workers?, client, heartbeatInterval, host, pid} */
  HELLO: 1,
  /** agent → host: {protocol, hostname, grant, python, maxMemory, recycle, setup, pythonPath, previous} */
  WELCOME: 2,
  /** agent → host: {code, message}; the agent then closes. */
  REFUSED: 3,
  /** host → agent (channel): start a worker process. */
  OPEN: 4,
  /** agent → host (channel): {pid}, or {error, room} (room: the agent has no room yet; a GRANT follows when it has). */
  OPENED: 5,
  /** both (channel): bytes of the worker's data pipe. */
  DATA: 6,
  /** both (channel): bytes of the worker's control pipe. */
  CONTROL: 7,
  /** agent → host (channel): text the worker wrote to stdout / stderr. */
  STDOUT: 8,
  STDERR: 9,
  /** agent → host (channel): {code, signal, lastStarted, reason} — the process exited. */
  EXIT: 10,
  /** host → agent (channel): SIGKILL the worker's process group. */
  KILL: 11,
  /** host → agent (channel): close the worker's pipes (it ends once it has answered). */
  END: 12,
  /** host → agent: heartbeat. */
  PING: 13,
  /** agent → host: heartbeat answer, {workers: {channel: [rss, peakRss, own, stopped]}}. */
  PONG: 14,
  /** agent → host: {timeout}: the agent drains (SIGTERM): lease nothing new, finish the calls, give the workers back. */
  DRAIN: 15,
  /** agent → host (channel): the worker's data or control pipe ended (it closed it: a deaf worker). */
  EOF: 16,
  /**
   * agent → host: {grant}: how many workers this host may now hold (hosts came or went: the workers are shared
   * out again), or that room it waited for is free.
   */
  GRANT: 17,
} as const;

/** A message of `size` payload bytes: its header filled in, with room for `room` bytes of payload after it. */
function headed(type: number, channel: number, size: number, room: number): Buffer {
  const out = Buffer.allocUnsafe(HEADER + room);
  out.writeUInt32LE(5 + size, 0);
  out[4] = type;
  out.writeUInt32LE(channel, 5);
  return out;
}

/** Encode a message. */
export function message(type: number, channel: number, payload?: Uint8Array | string | object): Buffer {
  const body = payload === undefined ? EMPTY : payload instanceof Uint8Array ? payload : Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload));
  const out = headed(type, channel, body.byteLength, body.byteLength);
  out.set(body, HEADER);
  return out;
}

const EMPTY = Buffer.alloc(0);

export class WireError extends Error {}

/** Cuts a byte stream into messages; `limit()` says how large one may be now. */
export class MessageReader {
  #pending: Buffer[] = [];
  #size = 0;

  constructor(
    private readonly onMessage: (type: number, channel: number, payload: Buffer) => void,
    private readonly limit: () => number,
  ) {}

  push(chunk: Buffer): void {
    this.#pending.push(chunk);
    this.#size += chunk.length;
    while (this.#size >= 4) {
      if (this.#pending[0]!.length < 4) this.#pending = [Buffer.concat(this.#pending, this.#size)];
      const length = this.#pending[0]!.readUInt32LE(0);
      if (length < 5 || length > this.limit()) throw new WireError(`a message of ${length} bytes (at most ${this.limit()})`);
      if (this.#size < 4 + length) return; // concatenated once, when complete
      const buf = this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending, this.#size);
      const type = buf[4]!;
      const channel = buf.readUInt32LE(5);
      const payload = buf.subarray(HEADER, 4 + length);
      const rest = buf.subarray(4 + length);
      this.#size = rest.length;
      this.#pending = this.#size > 0 ? [rest] : [];
      this.onMessage(type, channel, payload);
    }
  }
}

/** JSON of a connection message; a WireError when it is not an object. */
export function parseJson(payload: Buffer): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch {
    throw new WireError('a message that is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new WireError('a message that is not a JSON object');
  return value as Record<string, unknown>;
}

/**
 * Writes messages to a socket, coalescing those of one turn of the event loop into one write (TLS records
 * cost per write).
 */
export class MessageWriter {
  #corked = false;

  constructor(private readonly socket: Socket) {}

  write(chunk: Uint8Array): void {
    if (this.socket.destroyed) return;
    if (!this.#corked) {
      this.#corked = true;
      this.socket.cork();
      process.nextTick(this.#uncork);
    }
    this.socket.write(chunk);
  }

  /** Bytes of a worker's pipe, in messages of at most CHUNK bytes (a small one copied whole: one TLS write). */
  writeBytes(type: number, channel: number, bytes: Uint8Array): void {
    if (bytes.byteLength <= SMALL) {
      this.write(message(type, channel, bytes));
      return;
    }
    for (let at = 0; at < bytes.byteLength; at += CHUNK) {
      const piece = bytes.subarray(at, Math.min(at + CHUNK, bytes.byteLength));
      this.write(headed(type, channel, piece.byteLength, 0)); // the piece follows from its own memory
      this.write(piece);
    }
  }

  /** Several chunks of one pipe (written in one turn) as one message where they are small. */
  writeAll(type: number, channel: number, chunks: readonly Uint8Array[]): void {
    let size = 0;
    for (const chunk of chunks) size += chunk.byteLength;
    if (size > SMALL || chunks.length === 1) {
      for (const chunk of chunks) this.writeBytes(type, channel, chunk);
      return;
    }
    const out = headed(type, channel, size, size);
    let at = HEADER;
    for (const chunk of chunks) {
      out.set(chunk, at);
      at += chunk.byteLength;
    }
    this.write(out);
  }

  send(type: number, channel: number, payload?: object | string): void {
    this.write(message(type, channel, payload));
  }

  readonly #uncork = (): void => {
    this.#corked = false;
    this.socket.uncork();
  };
}
