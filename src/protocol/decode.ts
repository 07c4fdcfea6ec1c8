/**
 * CPython `marshal` data (as written by `marshal.dumps(x, 4)` on CPython 3.9–3.13) → JavaScript value.
 *
 * The decoder is synchronous and never calls user code, so its state lives in module variables (reset per call).
 */
import { ConversionError } from '../errors.js';
import { DataFrame, Series, type Column } from './dataframe.js';
import { MAX_DEPTH } from './encode.js';
import type { HandleFactory } from './handles.js';
import { NDArray } from './ndarray.js';

export { MAX_DEPTH };

const FLAG_REF = 0x80;
const EMPTY = Buffer.alloc(0);
/** Marks the ref slot of a container that is still being decoded. */
const PENDING: unique symbol = Symbol('pending');
const HEX = '0123456789abcdef';

let B: Buffer = EMPTY;
let P = 0;
let E = 0;
let ext = false;
let refs: unknown[] = [];
let parts: Uint8Array[] | undefined;
let handles: HandleFactory | undefined;

/**
 * Decode one marshal value from `buf[start, end)`. With `extended`, the value may hold tagged values: tuples
 * `(Ellipsis, name, ...)` for a Date, an array, big bytes, a DataFrame or a Series, whose
 * large buffers are in `frameParts` (each owned by the value it becomes). With `wrapper`, the root is a container
 * of user values (a batch of stream items) whose level does not count.
 * @throws ConversionError for Python types without a JavaScript counterpart, cycles, nesting deeper than MAX_DEPTH
 *   and malformed or truncated data.
 */
export function decode(buf: Buffer, start: number, end: number, extended: boolean, wrapper = false, frameParts?: Uint8Array[], handleFactory?: HandleFactory): unknown {
  if (!(start >= 0 && start <= end && end <= buf.length)) {
    throw new ConversionError(`invalid range [${start}, ${end}) of a ${buf.length}-byte buffer`);
  }
  B = buf;
  P = start;
  E = end;
  ext = extended;
  parts = frameParts;
  handles = handleFactory;
  try {
    const v = read(wrapper ? -1 : 0);
    if (P !== E) throw new ConversionError(`bad marshal data: ${E - P} unexpected bytes after the value`);
    return v;
  } catch (e) {
    if (e instanceof RangeError && /call stack/i.test(e.message)) {
      throw new ConversionError('value from Python nested too deeply (the call stack overflowed)');
    }
    throw e;
  } finally {
    B = EMPTY;
    parts = undefined;
    handles = undefined;
    if (refs.length !== 0) refs = [];
  }
}

function truncated(): never {
  throw new ConversionError('bad marshal data: truncated');
}

function refuse(type: string): never {
  throw new ConversionError(`Python type '${type}' has no JavaScript counterpart`);
}

function need(n: number): void {
  if (n > E - P) truncated();
}

function int32(): number {
  if (P + 4 > E) truncated();
  const b = B;
  const p = P;
  P = p + 4;
  return b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24);
}

/** A non-negative int32 size; the data must hold at least `n * min` more bytes. */
function size(min: number): number {
  const n = int32();
  if (n < 0) throw new ConversionError('bad marshal data: negative size');
  if (n * min > E - P) truncated();
  return n;
}

function double(): number {
  if (P + 8 > E) truncated();
  const v = B.readDoubleLE(P);
  P += 8;
  return v;
}

/** Old text float ('f', 'x'): uint8 length + repr. */
function textFloat(): number {
  if (P >= E) truncated();
  const n = B[P++];
  need(n);
  const s = B.toString('latin1', P, P + n);
  P += n;
  const v = s === 'inf' ? Infinity : s === '-inf' ? -Infinity : s === 'nan' || s === '-nan' ? NaN : Number(s);
  if (v !== v && !s.endsWith('nan')) throw new ConversionError(`bad marshal data: float ${JSON.stringify(s)}`);
  return v;
}

function tooDeep(): never {
  throw new ConversionError(`nesting from Python exceeds the limit of ${MAX_DEPTH} levels`);
}

function cyclic(): never {
  throw new ConversionError('cyclic structure from Python: a container contains itself');
}

function read(d: number): unknown {
  if (P >= E) truncated();
  const code = B[P++];
  const flag = code & FLAG_REF;
  let v: unknown;
  switch (code & 0x7f) {
    case 0x4e: // 'N'
      v = null;
      break;
    case 0x54: // 'T'
      v = true;
      break;
    case 0x46: // 'F'
      v = false;
      break;
    case 0x69: // 'i'
      v = int32();
      break;
    case 0x67: // 'g'
      v = double();
      break;
    case 0x7a: // 'z'
    case 0x5a: {
      // 'Z'
      if (P >= E) truncated();
      const n = B[P++];
      need(n);
      v = B.toString('latin1', P, P + n);
      P += n;
      break;
    }
    case 0x61: // 'a'
    case 0x41: {
      // 'A'
      const n = size(1);
      v = B.toString('latin1', P, P + n);
      P += n;
      break;
    }
    case 0x75: // 'u'
    case 0x74: {
      // 't'
      const n = size(1);
      v = utf8(P, P + n);
      P += n;
      break;
    }
    case 0x73: {
      // 's'
      const n = size(1);
      v = bytes(n);
      P += n;
      break;
    }
    case 0x72: {
      // 'r'
      const i = int32();
      if (i < 0 || i >= refs.length) throw new ConversionError('bad marshal data: invalid reference');
      v = refs[i];
      if (v === PENDING) cyclic();
      return v;
    }
    case 0x5b: // '['
    case 0x28: // '('
    case 0x29: {
      // ')'
      let n: number;
      if ((code & 0x7f) === 0x29) {
        if (P >= E) truncated();
        n = B[P++];
        if (n > E - P) truncated();
      } else {
        n = size(1);
      }
      if (d >= MAX_DEPTH) tooDeep();
      const slot = flag ? refs.push(PENDING) - 1 : -1;
      if (ext && n > 1 && (code & 0x7f) !== 0x5b && B[P] === 0x2e) {
        P++;
        const tagged = tag(n - 1, d + 1);
        if (flag) refs[slot] = tagged;
        return tagged;
      }
      const a: unknown[] = new Array(n);
      for (let i = 0; i < n; i++) a[i] = read(d + 1);
      if (flag) refs[slot] = a;
      return a;
    }
    case 0x7b: {
      // '{'
      if (d >= MAX_DEPTH) tooDeep();
      const slot = flag ? refs.push(PENDING) - 1 : -1;
      const o = dict(d);
      if (flag) refs[slot] = o;
      return o;
    }
    case 0x3c: // '<'
    case 0x3e: {
      // '>'
      const n = size(1);
      if (d >= MAX_DEPTH) tooDeep();
      const slot = flag ? refs.push(PENDING) - 1 : -1;
      const s = new Set<unknown>();
      for (let i = 0; i < n; i++) s.add(read(d + 1));
      if (flag) refs[slot] = s;
      return s;
    }
    case 0x6c: // 'l'
      v = long();
      break;
    case 0x79: // 'y'
    case 0x78: // 'x'
      return refuse('complex');
    case 0x66: // 'f'
      v = textFloat();
      break;
    case 0x49: {
      // 'I' (int64, not written by Python 3)
      if (P + 8 > E) truncated();
      const big = B.readBigInt64LE(P);
      P += 8;
      v = big >= -0x1fffffffffffffn && big <= 0x1fffffffffffffn ? Number(big) : big;
      break;
    }
    case 0x30: // '0'
      throw new ConversionError('bad marshal data: NULL object');
    case 0x2e: // '.'
      return refuse('ellipsis');
    case 0x53: // 'S'
      return refuse('StopIteration');
    case 0x63: // 'c'
      return refuse('code');
    case 0x3a: // ':' (3.14+)
      return refuse('slice');
    case 0x3f: // '?'
      throw new ConversionError('bad marshal data: unknown object');
    default: {
      const c = code & 0x7f;
      const ch = c >= 0x20 && c < 0x7f ? ` ('${String.fromCharCode(c)}')` : '';
      throw new ConversionError(`bad marshal data: unknown type byte 0x${code.toString(16).padStart(2, '0')}${ch}`);
    }
  }
  if (flag) refs.push(v);
  return v;
}

/** A tagged value `(Ellipsis, name, ...fields)` (see python/_pyworkers/values.py); its Ellipsis is read. */
function tag(n: number, d: number): unknown {
  const f: unknown[] = new Array(n);
  for (let i = 0; i < n; i++) f[i] = read(d);
  switch (f[0]) {
    case 'D':
      if (typeof f[1] !== 'number') throw new ConversionError('bad marshal data: malformed date');
      return new Date(f[1]);
    case 'B':
      return part(f[1]);
    case 'A': {
      const data = f[3];
      const bytes = typeof data === 'number' ? part(data) : data;
      if (typeof f[1] !== 'string' || !Array.isArray(f[2]) || !(bytes instanceof Uint8Array)) throw new ConversionError('bad marshal data: malformed array');
      return NDArray.fromWire(f[1], f[2] as number[], bytes);
    }
    case 'DF':
      return DataFrame.fromWire(f[1] as unknown[], f[2] as Column[], f[3] as Column | null);
    case 'R':
      if (typeof f[1] !== 'number' || typeof f[2] !== 'number' || typeof f[3] !== 'string') throw new ConversionError('bad marshal data: malformed handle');
      if (!handles) throw new ConversionError(`a handle (to a Python '${f[3]}') cannot arrive here`);
      return handles(f[1], f[2], f[3]);
    case 'SR':
      return new Series(f[2] as Column, { name: f[1], index: f[3] as Column | null });
  }
  throw new ConversionError(`bad marshal data: unknown tagged value ${JSON.stringify(String(f[0]))}`);
}

/** Part `i` of the frame, as a Uint8Array over all of an ArrayBuffer of its own. */
function part(i: unknown): Uint8Array {
  const p = typeof i === 'number' ? parts?.[i] : undefined;
  if (!p) throw new ConversionError(`bad marshal data: the frame has no part ${String(i)}`);
  return p.byteOffset === 0 && p.byteLength === p.buffer.byteLength ? new Uint8Array(p.buffer, 0, p.byteLength) : Uint8Array.prototype.slice.call(p);
}

/** A dict: a plain object while every key is a str; at the first other key, decode it again as a Map. */
function dict(d: number): unknown {
  const from = P;
  const refsFrom = refs.length;
  const o: Record<string, unknown> = {};
  for (;;) {
    if (P >= E) truncated();
    if (B[P] === 0x30) {
      P++;
      return o;
    }
    const k = read(d + 1);
    if (typeof k !== 'string') break;
    const v = read(d + 1);
    if (k === '__proto__') Object.defineProperty(o, k, { value: v, writable: true, enumerable: true, configurable: true });
    else o[k] = v;
  }
  // Again from the start as a Map, which keeps Python's order (an object puts integer-like keys first).
  P = from;
  refs.length = refsFrom;
  const m = new Map<unknown, unknown>();
  for (;;) {
    if (P >= E) truncated();
    if (B[P] === 0x30) {
      P++;
      return m;
    }
    const k = read(d + 1);
    m.set(k, read(d + 1));
  }
}

function long(): number | bigint {
  const n = int32();
  const len = n < 0 ? -n : n;
  need(2 * len);
  const b = B;
  const p = P;
  P = p + 2 * len;
  for (let i = 0; i < len; i++) {
    if (b[p + 2 * i + 1] & 0x80) throw new ConversionError('bad marshal data: digit out of range in long');
  }
  if (len <= 4) {
    let v = 0;
    let scale = 1;
    for (let i = 0; i < len; i++) {
      v += (b[p + 2 * i] | (b[p + 2 * i + 1] << 8)) * scale;
      scale *= 32768;
    }
    // exact while the value is safe; an unsafe value never rounds down to a safe one
    if (v <= Number.MAX_SAFE_INTEGER) return n < 0 ? -v : v;
  }
  // 15-bit digits → hex, most significant first, padded so nibbles align with the least significant bit
  let bits = (4 - ((15 * len) % 4)) % 4;
  let acc = 0;
  let hex = '';
  for (let i = len - 1; i >= 0; i--) {
    acc = (acc << 15) | b[p + 2 * i] | (b[p + 2 * i + 1] << 8);
    bits += 15;
    while (bits >= 4) {
      bits -= 4;
      hex += HEX[(acc >> bits) & 15];
    }
    acc &= (1 << bits) - 1;
  }
  const big = BigInt('0x' + hex);
  return n < 0 ? -big : big;
}

/** A copy: a result owns its memory (large bytes arrive as parts, each already a buffer of its own). */
function bytes(n: number): Uint8Array {
  const off = B.byteOffset + P;
  return new Uint8Array(B.buffer.slice(off, off + n));
}

/** UTF-8 with "surrogatepass": Node's decoder unless it met something it replaced with U+FFFD. */
function utf8(from: number, to: number): string {
  const s = B.toString('utf8', from, to);
  if (s.indexOf('\ufffd') === -1) return s;
  return utf8Pass(from, to);
}

function utf8Pass(from: number, to: number): string {
  const b = B;
  const out = new Uint16Array(to - from);
  let j = 0;
  for (let i = from; i < to; ) {
    const c = b[i];
    if (c < 0x80) {
      out[j++] = c;
      i += 1;
    } else if (c < 0xe0) {
      if (i + 2 > to) break;
      out[j++] = ((c & 0x1f) << 6) | (b[i + 1] & 0x3f);
      i += 2;
    } else if (c < 0xf0) {
      if (i + 3 > to) break;
      out[j++] = ((c & 0x0f) << 12) | ((b[i + 1] & 0x3f) << 6) | (b[i + 2] & 0x3f);
      i += 3;
    } else {
      if (i + 4 > to) break;
      const cp = (((c & 0x07) << 18) | ((b[i + 1] & 0x3f) << 12) | ((b[i + 2] & 0x3f) << 6) | (b[i + 3] & 0x3f)) - 0x10000;
      out[j++] = 0xd800 | (cp >> 10);
      out[j++] = 0xdc00 | (cp & 0x3ff);
      i += 4;
    }
  }
  let s = '';
  for (let k = 0; k < j; k += 8192) s += String.fromCharCode.apply(null, out.subarray(k, Math.min(j, k + 8192)) as unknown as number[]);
  return s;
}
