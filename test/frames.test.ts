/**
 * Framing without Python: a byte stream cut at every kind of boundary gives back the same frames, frames with
 * parts included, whether the rest of a large frame comes in chunks or is read directly.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FLAG_PARTS, FrameReader, HEADER_SIZE, partsHead, PART_BUFFER, PART_BYTES, WORKER_DATA_KINDS as KINDS, writeHeader, type DirectRead } from '../src/protocol/frames.js';

interface Seen {
  kind: number;
  flags: number;
  id: number;
  message: Buffer;
  parts: Buffer[] | undefined;
}

function plainFrame(kind: number, id: number, message: Buffer): Buffer {
  const frame = Buffer.alloc(HEADER_SIZE + message.length);
  message.copy(frame, HEADER_SIZE);
  return writeHeader(frame, kind, 0, id);
}

function partedFrame(kind: number, id: number, message: Buffer, parts: Buffer[]): Buffer {
  const withRoom = Buffer.concat([Buffer.alloc(HEADER_SIZE), message]);
  const head = partsHead(withRoom, HEADER_SIZE, parts, parts.map((_, i) => (i % 2 ? PART_BUFFER : PART_BYTES)));
  const extra = parts.reduce((n, p) => n + p.length, 0);
  return Buffer.concat([writeHeader(head, kind, FLAG_PARTS, id, extra), ...parts]);
}

function filled(size: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

/** Feed `stream` in chunks of `sizes` (cycled); with `direct`, large frames may read ahead from the same stream. */
function replay(stream: Buffer, sizes: number[], direct: boolean): Seen[] {
  const seen: Seen[] = [];
  let pos = 0;
  const read: DirectRead = (target, offset, length) => {
    const n = Math.min(length, stream.length - pos, 100_000);
    stream.copy(target, offset, pos, pos + n);
    pos += n;
    return n;
  };
  const reader = new FrameReader((kind, flags, id, buf, start, end, parts) => {
    seen.push({ kind, flags, id, message: Buffer.from(buf.subarray(start, end)), parts: parts?.map((p) => Buffer.from(p)) });
  }, KINDS, direct ? read : undefined);
  for (let i = 0; pos < stream.length; i++) {
    const n = Math.min(sizes[i % sizes.length]!, stream.length - pos);
    const chunk = Buffer.from(stream.subarray(pos, pos + n));
    pos += n;
    reader.push(chunk);
  }
  return seen;
}

describe('FrameReader', () => {
  const big = filled(40 * 1024 * 1024, 3);
  const frames: Array<[Buffer, Seen]> = [
    [plainFrame(64, 1, Buffer.from('small')), { kind: 64, flags: 0, id: 1, message: Buffer.from('small'), parts: undefined }],
    [partedFrame(64, 2, Buffer.from('msg'), [filled(70_000, 1), filled(3, 2)]), { kind: 64, flags: FLAG_PARTS, id: 2, message: Buffer.from('msg'), parts: [filled(70_000, 1), filled(3, 2)] }],
    [plainFrame(66, 3, filled(200_000, 5)), { kind: 66, flags: 0, id: 3, message: filled(200_000, 5), parts: undefined }],
    [partedFrame(64, 4, filled(10, 9), [filled(0, 0), filled(65_536, 7)]), { kind: 64, flags: FLAG_PARTS, id: 4, message: filled(10, 9), parts: [Buffer.alloc(0), filled(65_536, 7)] }],
    [plainFrame(65, 5, Buffer.alloc(0)), { kind: 65, flags: 0, id: 5, message: Buffer.alloc(0), parts: undefined }],
  ];
  const stream = Buffer.concat(frames.map(([f]) => f));
  const want = frames.map(([, s]) => s);

  for (const sizes of [[1], [7], [13, 1, 4096], [65_536], [stream.length], [3, 65_536, 10, 100_000]]) {
    test(`chunks of ${sizes.join(', ')} bytes give the same frames`, () => {
      assert.deepStrictEqual(replay(stream, sizes, false), want);
    });
  }

  test('a very large frame is read directly once it has started, and the frames after it are not disturbed', () => {
    const huge = Buffer.concat([partedFrame(64, 9, Buffer.from('m'), [big]), stream]);
    const seen = replay(huge, [65_536], true);
    assert.equal(seen.length, 1 + want.length);
    assert.ok(seen[0]!.parts![0]!.equals(big));
    assert.deepStrictEqual(seen.slice(1), want);
  });

  test('every part is a buffer of its own, also when the whole frame came in one chunk', () => {
    const parts: Uint8Array[] = [];
    const reader = new FrameReader((_k, _f, _i, _b, _s, _e, p) => parts.push(...p!), KINDS);
    reader.push(partedFrame(64, 1, Buffer.from('m'), [filled(100, 1), filled(200, 2)]));
    assert.deepStrictEqual(parts.map((p) => [p.byteOffset, p.buffer.byteLength]), [[0, 100], [0, 200]]);
  });

  test('stray bytes are refused at once, however long a frame they would announce', () => {
    const reader = new FrameReader(() => {}, KINDS);
    const stray = Buffer.from('\x00\x00\x00\x60garbage written by a library to fd 3');
    assert.throws(() => reader.push(stray), /corrupt frame header .*stray bytes/);
    const badKind = writeHeader(Buffer.alloc(HEADER_SIZE + 1), 9, 0, 1);
    assert.throws(() => new FrameReader(() => {}, KINDS).push(badKind), /corrupt frame header/);
    const badFlags = writeHeader(Buffer.alloc(HEADER_SIZE + 1), 64, 0x40, 1);
    assert.throws(() => new FrameReader(() => {}, KINDS).push(badFlags), /corrupt frame header/);
  });

  test('corrupt lengths are protocol errors', () => {
    const reader = new FrameReader(() => {}, KINDS);
    assert.throws(() => reader.push(writeHeader(Buffer.alloc(HEADER_SIZE), 64, 0, 1).fill(0, 0, 4).fill(1, 0, 1)), /corrupt frame length 1/);
    const lying = partedFrame(64, 1, Buffer.from('m'), [filled(10, 1)]);
    lying.writeUInt32LE(1000, HEADER_SIZE + 4); // a part larger than the frame
    assert.throws(() => new FrameReader(() => {}, KINDS).push(lying), /parts are larger than the frame/);
  });
});
