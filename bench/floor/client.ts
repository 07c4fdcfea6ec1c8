/**
 * The floor's host side: a minimal client of floor/floor.py. Each request is one `write` of one buffer (no
 * coalescing); replies are cut out of the byte stream and matched in order. Bytes travel raw, integers as a
 * packed int32 array, float64 arrays as their raw bytes. Nothing here is shared with pyworkers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'floor.py');
const enum Op {
  PING = 0,
  BLOB_OUT = 1,
  BYTES_IN = 2,
  INTS_OUT = 3,
  INTS_IN = 4,
  ARRAY_OUT = 5,
}

export class FloorClient {
  readonly child: ChildProcess;
  readonly #out: Socket;
  readonly #waiting: Array<(body: Buffer) => void> = [];
  #chunks: Buffer[] = [];
  #have = 0;
  #nextId = 1;

  constructor(python: string) {
    this.child = spawn(python, [SCRIPT], { stdio: ['ignore', 'inherit', 'inherit', 'pipe', 'pipe'] });
    this.#out = this.child.stdio[3] as Socket;
    (this.child.stdio[4] as Socket).on('data', (chunk: Buffer) => this.#onData(chunk));
  }

  get pid(): number {
    return this.child.pid!;
  }

  #request(op: Op, bodySize: number, fill?: (frame: Buffer) => void): Promise<Buffer> {
    const frame = Buffer.allocUnsafe(12 + bodySize);
    frame.writeUInt32LE(8 + bodySize, 0);
    frame.writeUInt32LE(this.#nextId++, 4);
    frame.writeUInt32LE(op, 8);
    fill?.(frame);
    return new Promise((resolve) => {
      this.#waiting.push(resolve);
      this.#out.write(frame);
    });
  }

  #onData(chunk: Buffer): void {
    let buf = chunk;
    if (this.#have > 0) {
      this.#chunks.push(chunk);
      this.#have += chunk.length;
      const head = this.#chunks[0]!.length >= 4 ? this.#chunks[0]! : Buffer.concat(this.#chunks);
      if (this.#have < 4 || this.#have < head.readUInt32LE(0) + 4) return;
      buf = Buffer.concat(this.#chunks, this.#have);
      this.#chunks = [];
      this.#have = 0;
    }
    let pos = 0;
    while (buf.length - pos >= 8) {
      const size = buf.readUInt32LE(pos) + 4;
      if (buf.length - pos < size) break;
      this.#waiting.shift()!(buf.subarray(pos + 8, pos + size));
      pos += size;
    }
    if (pos < buf.length) {
      this.#chunks = [buf.subarray(pos)];
      this.#have = buf.length - pos;
    }
  }

  /** Trivial round trip: a 4-byte body echoed back. */
  async ping(value: number): Promise<number> {
    const body = await this.#request(Op.PING, 4, (f) => f.writeInt32LE(value, 12));
    return body.readInt32LE(0);
  }

  blobOut(): Promise<Uint8Array> {
    return this.#request(Op.BLOB_OUT, 0);
  }

  async bytesIn(data: Uint8Array): Promise<number> {
    const body = await this.#request(Op.BYTES_IN, data.length, (f) => f.set(data, 12));
    return body.readUInt32LE(0);
  }

  /** The 8 MiB of a float64 array made once in Python; the body as it arrived (a Buffer, maybe unaligned). */
  arrayOut(): Promise<Uint8Array> {
    return this.#request(Op.ARRAY_OUT, 0);
  }

  /** A Float64Array's bytes, copied into the request frame like `bytesIn`'s; Python counts the elements. */
  async arrayIn(data: Float64Array): Promise<number> {
    return (await this.bytesIn(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))) / 8;
  }

  /** `list(range(n))` in Python, packed as int32; arrives as an Int32Array. */
  async intsOut(n: number): Promise<Int32Array> {
    const body = await this.#request(Op.INTS_OUT, 4, (f) => f.writeUInt32LE(n, 12));
    if (body.byteOffset % 4 === 0) return new Int32Array(body.buffer, body.byteOffset, body.length / 4);
    return new Int32Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.length));
  }

  /** A JS number[] packed as int32; Python unpacks it to a list. */
  async intsIn(values: readonly number[]): Promise<number> {
    const body = await this.#request(Op.INTS_IN, values.length * 4, (f) => {
      if ((f.byteOffset + 12) % 4 === 0) new Int32Array(f.buffer, f.byteOffset + 12, values.length).set(values);
      else for (let i = 0; i < values.length; i++) f.writeInt32LE(values[i]!, 12 + 4 * i);
    });
    return body.readUInt32LE(0);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) return resolve();
      this.child.once('exit', () => resolve());
      this.#out.end();
    });
  }
}

/** Spawn a floor process and resolve once it has answered one request. */
export async function startFloor(python: string): Promise<FloorClient> {
  const client = new FloorClient(python);
  await client.ping(1);
  return client;
}
