/**
 * JavaScript value → CPython `marshal` format version 4 (read on the Python side by `marshal.loads`).
 *
 * The hot path writes straight into one reusable scratch buffer, with no per-value allocation. Cycles are not
 * tracked on the way down: a cycle always ends in the depth limit, and only then is the stack of open containers
 * searched to tell a cycle from deep nesting. Error paths (`args[0].handler`) are likewise built only on the way out
 * of a failure.
 */
import { ConversionError } from '../errors.js';
import { DataFrame, Series } from './dataframe.js';
import { PART_BUFFER, PART_BYTES } from './frames.js';
import { HANDLE, isHandle, type WireHandle } from './handles.js';
import { dtypeOfTypedArray, NDArray, typestrOf } from './ndarray.js';
import { kTuple } from './tuple.js';

/** Deepest nesting of containers accepted in either direction. */
export const MAX_DEPTH = 1000;
/** 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z, the range of Python's datetime, in ms since the epoch. */
const PY_DATETIME_MIN = -62135596800000;
const PY_DATETIME_MAX = 253402300799999;

// marshal type codes
const T_NULL = 0x30; // '0'
const T_NONE = 0x4e; // 'N'
const T_FALSE = 0x46; // 'F'
const T_TRUE = 0x54; // 'T'
const T_INT = 0x69; // 'i'
const T_LONG = 0x6c; // 'l'
const T_BINARY_FLOAT = 0x67; // 'g'
const T_STRING = 0x73; // 's' (bytes)
const T_UNICODE = 0x75; // 'u'
const T_ASCII = 0x61; // 'a'
const T_SHORT_ASCII = 0x7a; // 'z'
const T_REF = 0x72; // 'r'
const T_TUPLE = 0x28; // '('
const T_SMALL_TUPLE = 0x29; // ')'
const T_LIST = 0x5b; // '['
const T_DICT = 0x7b; // '{'
const T_SET = 0x3c; // '<'
const T_ELLIPSIS = 0x2e; // '.'
const FLAG_REF = 0x80;

const INITIAL_SIZE = 16 * 1024;
/** A finished message at least this big, filling at least half the scratch, is handed over instead of copied. */
const HANDOVER_SIZE = 64 * 1024;
/** A scratch buffer bigger than this is not kept for the next message. */
const KEEP_MAX = 1024 * 1024;
/** Dict keys written once and then referenced: at most this many distinct keys per message, of at most this length. */
const KEY_REFS_MAX = 4096;
const KEY_REF_MAX_LENGTH = 64;
const INT32_MAX = 0x7fffffff;
/** Buffers at least this large travel as parts of the frame, written from their own memory (see frames.ts). */
export const PART_MIN = 64 * 1024;

const EMPTY = Buffer.alloc(0);
const hasOwn = Object.prototype.hasOwnProperty;
const objectProto = Object.prototype;

// doubles go through this scratch; marshal wants little-endian
const f64 = new Float64Array(1);
const f64b = new Uint8Array(f64.buffer);
const BIG_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 0;

type WellFormed = { isWellFormed(): boolean };

/** An encoding failure on its way up to `value()`, collecting the path as it goes. */
class Failure {
  /** Path segments, innermost first. */
  readonly segments: string[] = [];
  /**
   * @param keep how many path segments (counted from the root) the path has: the depth of the failing value.
   * @param back for a cycle, the depth of the ancestor the value refers back to.
   */
  constructor(
    readonly message: string,
    readonly keep: number,
    readonly back = -1,
  ) {}
}

function identifier(key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}

function keyRepr(key: unknown, i: number): string {
  switch (typeof key) {
    case 'string':
      return JSON.stringify(key);
    case 'number':
    case 'boolean':
    case 'undefined':
      return String(key);
    case 'bigint':
      return `${key}n`;
    default:
      return key === null ? 'null' : `<key ${i}>`;
  }
}

function describe(v: object): string {
  let ctor: unknown;
  try {
    ctor = (v as { constructor?: unknown }).constructor;
  } catch {
    ctor = undefined;
  }
  const name = typeof ctor === 'function' && ctor.name ? ctor.name : '';
  return name ? `an instance of class ${name}` : 'an object with a non-standard prototype';
}

/** A plain object from another realm (vm context): its prototype is a root object whose constructor is `Object`. */
function isForeignPlainObject(proto: object): boolean {
  if (Object.getPrototypeOf(proto) !== null) return false;
  const ctor = Object.getOwnPropertyDescriptor(proto, 'constructor')?.value as unknown;
  return typeof ctor === 'function' && ctor.name === 'Object';
}

/** Writes marshal messages. One instance is reused for many messages; it is not reentrant. */
export class Encoder {
  private buf: Buffer = EMPTY;
  private pos = 0;
  private isTagged = false;
  /** Open containers by depth, for telling a cycle from deep nesting once the depth limit is hit. */
  private readonly stack: unknown[] = [];
  /** Dict key string → its ref index in this message. */
  private readonly keyRefs = new Map<string, number>();
  /** FLAG_REF objects written in this message (= the next ref index). */
  private refCount = 0;
  /** Large buffers of this message, sent after it as they are; the message refers to them by index. */
  private partList: Uint8Array[] = [];
  private partKinds: number[] = [];
  /** Handles (PyRefs) written in this message. */
  private handleList: WireHandle[] = [];

  /** True when the message contains a tagged value (a Date, an array, large bytes, ...) since `begin()`. */
  get tagged(): boolean {
    return this.isTagged;
  }

  /** The handles written since `begin()`, if any. */
  get handles(): WireHandle[] | undefined {
    return this.handleList.length ? this.handleList : undefined;
  }

  /** The parts of the message since `begin()`, with what Python reads each into (PART_BYTES, PART_BUFFER). */
  get parts(): { buffers: Uint8Array[]; kinds: number[] } | undefined {
    return this.partList.length ? { buffers: this.partList, kinds: this.partKinds } : undefined;
  }

  /**
   * Start a new message; `reserve` bytes are left (zeroed) at the front for the caller's frame header.
   * Everything written until `end()` must form ONE marshal value (e.g. a `tupleHeader(n)` and its `n` items):
   * repeated dict keys are written as marshal refs, which are numbered per `marshal.loads` call.
   */
  begin(reserve: number): void {
    if (this.buf.length < reserve + 256) this.buf = Buffer.allocUnsafeSlow(Math.max(INITIAL_SIZE, 2 * reserve + 256));
    this.buf.fill(0, 0, reserve);
    this.pos = reserve;
    this.isTagged = false;
    this.refCount = 0;
    if (this.keyRefs.size !== 0) this.keyRefs.clear();
    if (this.partList.length !== 0) {
      this.partList = [];
      this.partKinds = [];
    }
    if (this.handleList.length !== 0) this.handleList = [];
  }

  /** The finished message (reserve + encoded bytes). The caller owns it: later messages never write into it. */
  end(): Buffer {
    const n = this.pos;
    const b = this.buf;
    this.pos = 0;
    if (this.keyRefs.size !== 0) this.keyRefs.clear();
    if (n >= HANDOVER_SIZE && 2 * n >= b.length) {
      this.buf = EMPTY;
      return b.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    b.copy(out, 0, 0, n);
    if (b.length > KEEP_MAX) this.buf = EMPTY;
    return out;
  }

  /**
   * Append one value. `path` names the root in error messages (e.g. `'args'`). With `wrapper`, the root is a
   * container of user values (an argument list, a kwargs or locals dict) whose own level does not count towards
   * MAX_DEPTH, so a user value may itself be MAX_DEPTH levels deep.
   * @throws ConversionError for anything without a Python counterpart, cycles and nesting deeper than MAX_DEPTH.
   */
  value(v: unknown, path: string, wrapper = false): void {
    try {
      this.any(v, wrapper ? -1 : 0);
    } catch (e) {
      this.stack.length = 0;
      throw toConversionError(e, path);
    }
  }

  // ---- raw writers for the frame layer -------------------------------------------------------------------------

  /** A tuple header: exactly `n` values must follow. */
  tupleHeader(n: number): void {
    this.ensure(5);
    if (n < 256) {
      this.buf[this.pos] = T_SMALL_TUPLE;
      this.buf[this.pos + 1] = n;
      this.pos += 2;
    } else {
      this.header(T_TUPLE, n);
    }
  }

  /** A list header: exactly `n` values must follow. */
  listHeader(n: number): void {
    this.ensure(5);
    this.header(T_LIST, n);
  }

  /** Start a dict: then key/value pairs (e.g. `dictKey()` + `value()`), then `dictEnd()`. */
  dictBegin(): void {
    this.byte(T_DICT);
  }

  /** A dict key string (written once per message and then referenced). */
  dictKey(key: string): void {
    this.key(key);
  }

  /** End a dict started with `dictBegin()`. */
  dictEnd(): void {
    this.byte(T_NULL);
  }

  none(): void {
    this.byte(T_NONE);
  }

  bool(b: boolean): void {
    this.byte(b ? T_TRUE : T_FALSE);
  }

  /** A number (int or float by the same rule as `value()`). */
  number(n: number): void {
    this.num(n);
  }

  str(s: string): void {
    this.string(s, 0);
  }

  bytes(b: Uint8Array): void {
    this.binary(b);
  }

  // ---- internals -------------------------------------------------------------------------------------------------

  private grow(need: number): void {
    // Slack past `need`, so that a large value followed by a few bytes does not grow (and copy) twice.
    const size = Math.max(need + (need >> 2) + 64, 2 * this.buf.length, INITIAL_SIZE);
    const nb = Buffer.allocUnsafeSlow(size);
    this.buf.copy(nb, 0, 0, this.pos);
    this.buf = nb;
  }

  private ensure(n: number): void {
    if (this.pos + n > this.buf.length) this.grow(this.pos + n);
  }

  private byte(b: number): void {
    if (this.pos >= this.buf.length) this.grow(this.pos + 1);
    this.buf[this.pos++] = b;
  }

  /** Type byte + int32 LE; capacity must be ensured. */
  private header(type: number, n: number): void {
    const b = this.buf;
    const p = this.pos;
    b[p] = type;
    b[p + 1] = n;
    b[p + 2] = n >> 8;
    b[p + 3] = n >> 16;
    b[p + 4] = n >> 24;
    this.pos = p + 5;
  }

  /** A little-endian double; capacity must be ensured. */
  private double(x: number): void {
    f64[0] = x;
    const b = this.buf;
    const p = this.pos;
    if (BIG_ENDIAN) {
      for (let i = 0; i < 8; i++) b[p + i] = f64b[7 - i];
    } else {
      b[p] = f64b[0];
      b[p + 1] = f64b[1];
      b[p + 2] = f64b[2];
      b[p + 3] = f64b[3];
      b[p + 4] = f64b[4];
      b[p + 5] = f64b[5];
      b[p + 6] = f64b[6];
      b[p + 7] = f64b[7];
    }
    this.pos = p + 8;
  }

  private any(v: unknown, d: number): void {
    switch (typeof v) {
      case 'string':
        this.string(v, 0);
        return;
      case 'number':
        this.num(v);
        return;
      case 'boolean':
        this.byte(v ? T_TRUE : T_FALSE);
        return;
      case 'undefined':
        this.byte(T_NONE);
        return;
      case 'object':
        if (v === null) this.byte(T_NONE);
        else this.object(v, d);
        return;
      case 'bigint':
        this.bigint(v);
        return;
      case 'function':
        throw new Failure(`a function${v.name ? ` (${v.name})` : ''} cannot be sent to Python`, d);
      case 'symbol':
        throw new Failure(`a symbol (${v.toString()}) cannot be sent to Python`, d);
    }
    throw new Failure(`a ${typeof v} cannot be sent to Python`, d);
  }

  private object(v: object, d: number): void {
    if (Array.isArray(v)) {
      this.array(v, d, (v as unknown as Record<symbol, unknown>)[kTuple] === true ? T_TUPLE : T_LIST, false);
      return;
    }
    const proto: unknown = Object.getPrototypeOf(v);
    if (proto === objectProto || proto === null) {
      this.dict(v as Record<string, unknown>, d);
      return;
    }
    if (ArrayBuffer.isView(v)) {
      this.view(v, d);
      return;
    }
    if (isHandle(v)) {
      const { token, id } = v[HANDLE];
      this.tagHeader('R', 2);
      this.num(token);
      this.num(id);
      this.handleList.push(v);
      return;
    }
    if (v instanceof NDArray) {
      this.arrayTag(typestrOf(v.dtype), v.shape, v.data);
      return;
    }
    if (v instanceof DataFrame) {
      this.enter(v, d);
      this.tagHeader('DF', 3);
      this.array(v.columns, d + 1, T_LIST, false);
      this.array(v.data, d + 1, T_LIST, false);
      this.any(v.index, d + 1);
      this.stack[d] = undefined;
      return;
    }
    if (v instanceof Series) {
      this.enter(v, d);
      this.tagHeader('SR', 3);
      this.any(v.name, d + 1);
      this.any(v.values, d + 1);
      this.any(v.index, d + 1);
      this.stack[d] = undefined;
      return;
    }
    if (v instanceof Map) {
      this.map(v, d);
      return;
    }
    if (v instanceof Set) {
      this.set(v, d);
      return;
    }
    if (v instanceof Date) {
      this.date(v, d);
      return;
    }
    if (v instanceof ArrayBuffer || (typeof SharedArrayBuffer === 'function' && v instanceof SharedArrayBuffer)) {
      this.binary(new Uint8Array(v));
      return;
    }
    const boxed = unbox(v);
    if (boxed !== v) {
      this.any(boxed, d);
      return;
    }
    if (isForeignPlainObject(proto as object)) {
      this.dict(v as Record<string, unknown>, d);
      return;
    }
    throw new Failure(`${describe(v)} cannot be sent to Python`, d);
  }

  /** Called on entering a container at depth `d`. */
  private enter(v: object, d: number): void {
    if (d >= MAX_DEPTH) this.tooDeep(v, d);
    this.stack[d] = v;
  }

  private tooDeep(v: object, d: number): never {
    this.stack[d] = v;
    const seen = new Map<unknown, number>();
    for (let i = 0; i <= d; i++) {
      const o = this.stack[i];
      const first = seen.get(o);
      if (first !== undefined) throw new Failure('cyclic structure cannot be sent to Python', i, first);
      seen.set(o, i);
    }
    throw new Failure(`nesting exceeds the limit of ${MAX_DEPTH} levels`, d);
  }

  private array(a: readonly unknown[], d: number, type: number, hashable: boolean): void {
    this.enter(a, d);
    const n = a.length;
    if (n > INT32_MAX) throw new Failure('an array longer than 2**31 - 1 cannot be sent to Python', d);
    this.ensure(5);
    if (type === T_TUPLE && n < 256) {
      this.buf[this.pos] = T_SMALL_TUPLE;
      this.buf[this.pos + 1] = n;
      this.pos += 2;
    } else {
      this.header(type, n);
    }
    let i = 0;
    try {
      if (hashable) for (; i < n; i++) this.hashable(a[i], d + 1);
      else {
        this.ensure(5 * Math.min(n, 1 << 20)); // room for n small ints: the common case of numeric arrays
        let b = this.buf;
        let p = this.pos;
        for (; i < n; i++) {
          const x = a[i];
          // Fast path: an int32 that is not -0, written inline with the buffer and position held in locals.
          if (typeof x === 'number' && (x | 0) === x && (x !== 0 || 1 / x > 0)) {
            if (p + 5 > b.length) {
              this.pos = p;
              this.grow(p + 5);
              b = this.buf;
            }
            b[p] = T_INT;
            b[p + 1] = x;
            b[p + 2] = x >> 8;
            b[p + 3] = x >> 16;
            b[p + 4] = x >> 24;
            p += 5;
          } else {
            this.pos = p;
            this.any(x, d + 1);
            b = this.buf;
            p = this.pos;
          }
        }
        this.pos = p;
      }
    } catch (e) {
      throw segment(e, d, `[${i}]`);
    }
    this.stack[d] = undefined;
  }

  private dict(o: Record<string, unknown>, d: number): void {
    this.enter(o, d);
    this.byte(T_DICT);
    let k = '';
    try {
      for (k in o) {
        if (!hasOwn.call(o, k)) continue;
        this.key(k);
        this.any(o[k], d + 1);
      }
    } catch (e) {
      throw segment(e, d, identifier(k));
    }
    this.byte(T_NULL);
    this.stack[d] = undefined;
  }

  private map(m: Map<unknown, unknown>, d: number): void {
    this.enter(m, d);
    this.byte(T_DICT);
    let i = 0;
    m.forEach((val, key) => {
      try {
        this.hashable(key, d + 1);
      } catch (e) {
        throw segment(e, d, `.keys()[${i}]`);
      }
      try {
        this.any(val, d + 1);
      } catch (e) {
        throw segment(e, d, `.get(${keyRepr(key, i)})`);
      }
      i++;
    });
    this.byte(T_NULL);
    this.stack[d] = undefined;
  }

  private set(s: Set<unknown>, d: number): void {
    this.enter(s, d);
    this.ensure(5);
    this.header(T_SET, s.size);
    let i = 0;
    s.forEach((item) => {
      try {
        this.hashable(item, d + 1);
      } catch (e) {
        throw segment(e, d, `.values()[${i}]`);
      }
      i++;
    });
    this.stack[d] = undefined;
  }

  /** A dict key or set element: must be hashable in Python. Arrays become tuples. */
  private hashable(v: unknown, d: number): void {
    if (typeof v === 'string') {
      this.key(v);
      return;
    }
    if (typeof v !== 'object' || v === null) {
      this.any(v, d);
      return;
    }
    if (Array.isArray(v)) {
      this.array(v, d, T_TUPLE, true);
      return;
    }
    const proto: unknown = Object.getPrototypeOf(v);
    if (proto === objectProto || proto === null || v instanceof Map) {
      throw new Failure(`unhashable key: a ${v instanceof Map ? 'Map' : 'plain object'} would be a Python dict, which cannot be a dict key or set element`, d);
    }
    if (v instanceof Set) {
      throw new Failure('unhashable key: a Set would be a Python set, which cannot be a dict key or set element', d);
    }
    if ((ArrayBuffer.isView(v) && !(v instanceof Uint8Array)) || v instanceof NDArray || v instanceof DataFrame || v instanceof Series) {
      throw new Failure(`unhashable key: a ${v.constructor.name} would be a Python array, which cannot be a dict key or set element`, d);
    }
    const boxed = unbox(v);
    if (boxed !== v) {
      this.hashable(boxed, d);
      return;
    }
    this.object(v, d); // bytes, Date, or an error
  }

  /** A Date: `(Ellipsis, 'D', ms)`; a tag never equals a number in Python (a Set or Map key stays distinct). */
  private date(v: Date, d: number): void {
    const t = v.getTime();
    if (t !== t) throw new Failure('an invalid Date cannot be sent to Python', d);
    if (t < PY_DATETIME_MIN || t > PY_DATETIME_MAX) {
      throw new Failure(`a Date outside Python's datetime range (years 1 to 9999) cannot be sent to Python: ${v.toISOString()}`, d);
    }
    this.tagHeader('D', 1);
    this.num(t);
  }

  private num(x: number): void {
    if ((x | 0) === x) {
      if (x === 0 && 1 / x < 0) {
        this.float(x);
        return;
      }
      this.ensure(5);
      this.header(T_INT, x);
    } else if (Number.isInteger(x)) {
      this.longFromNumber(x);
    } else {
      this.float(x);
    }
  }

  private float(x: number): void {
    this.ensure(9);
    this.buf[this.pos++] = T_BINARY_FLOAT;
    this.double(x);
  }

  /** An integral double outside int32, as a long with 15-bit digits (exact: the divisions are by powers of 2). */
  private longFromNumber(x: number): void {
    this.ensure(5 + 2 * 70);
    const b = this.buf;
    const start = this.pos;
    let p = start + 5;
    let a = x < 0 ? -x : x;
    let n = 0;
    while (a > 0) {
      const digit = a % 32768;
      a = (a - digit) / 32768;
      b[p++] = digit;
      b[p++] = digit >> 8;
      n++;
    }
    this.pos = start;
    this.header(T_LONG, x < 0 ? -n : n);
    this.pos = p;
  }

  private bigint(x: bigint): void {
    if (x >= -0x80000000n && x <= 0x7fffffffn) {
      this.ensure(5);
      this.header(T_INT, Number(x));
      return;
    }
    if (x >= -0x1fffffffffffffn && x <= 0x1fffffffffffffn) {
      this.longFromNumber(Number(x));
      return;
    }
    const hex = (x < 0n ? -x : x).toString(16);
    const digits = Math.ceil((hex.length * 4) / 15);
    this.ensure(5 + 2 * digits);
    const b = this.buf;
    const start = this.pos;
    let p = start + 5;
    let n = 0;
    let acc = 0;
    let bits = 0;
    for (let i = hex.length - 1; i >= 0; i--) {
      const c = hex.charCodeAt(i);
      acc |= (c <= 57 ? c - 48 : c - 87) << bits;
      bits += 4;
      if (bits >= 15) {
        b[p++] = acc;
        b[p++] = (acc >> 8) & 0x7f;
        acc >>>= 15;
        bits -= 15;
        n++;
      }
    }
    if (acc !== 0) {
      b[p++] = acc;
      b[p++] = acc >> 8;
      n++;
    }
    this.pos = start;
    this.header(T_LONG, x < 0n ? -n : n);
    this.pos = p;
  }

  /** A dict key: the first occurrence of a short key is flagged, later ones are refs to it. */
  private key(k: string): void {
    const ref = this.keyRefs.get(k);
    if (ref !== undefined) {
      this.ensure(5);
      this.header(T_REF, ref);
      return;
    }
    if (k.length <= KEY_REF_MAX_LENGTH && this.keyRefs.size < KEY_REFS_MAX) {
      this.keyRefs.set(k, this.refCount++);
      this.string(k, FLAG_REF);
      return;
    }
    this.string(k, 0);
  }

  private string(s: string, flag: number): void {
    const len = s.length;
    if (len < 256) {
      this.ensure(5 + 3 * len);
      const b = this.buf;
      const p = this.pos;
      let n: number;
      if (len <= 32) {
        let i = 0;
        for (; i < len; i++) {
          const c = s.charCodeAt(i);
          if (c >= 0x80) break;
          b[p + 2 + i] = c;
        }
        n = i === len ? len : b.write(s, p + 2);
      } else {
        n = b.write(s, p + 2);
      }
      if (n === len) {
        b[p] = T_SHORT_ASCII | flag;
        b[p + 1] = len;
        this.pos = p + 2 + len;
        return;
      }
      // not ASCII: make room for the 4-byte length
      if ((s as unknown as WellFormed).isWellFormed()) b.copyWithin(p + 5, p + 2, p + 2 + n);
      else n = this.surrogates(s, p + 5);
      this.header(T_UNICODE | flag, n);
      this.pos += n;
      return;
    }
    // Exact size first: a lone surrogate takes 3 bytes both in Buffer's UTF-8 (as U+FFFD) and in surrogatepass.
    const n = Buffer.byteLength(s, 'utf8');
    if (n > INT32_MAX) throw new Failure('a string longer than 2 GiB cannot be sent to Python', Infinity);
    this.ensure(5 + n);
    const p = this.pos;
    if (n === len) {
      this.buf.write(s, p + 5, n, 'latin1');
      this.header(T_ASCII | flag, n);
    } else {
      if ((s as unknown as WellFormed).isWellFormed()) this.buf.write(s, p + 5, n, 'utf8');
      else this.surrogates(s, p + 5);
      this.header(T_UNICODE | flag, n);
    }
    this.pos += n;
  }

  /** UTF-8 with lone surrogates as 3-byte sequences (Python's "surrogatepass"). Returns the byte count. */
  private surrogates(s: string, at: number): number {
    const b = this.buf;
    let p = at;
    const len = s.length;
    for (let i = 0; i < len; i++) {
      let c = s.charCodeAt(i);
      if (c < 0x80) {
        b[p++] = c;
      } else if (c < 0x800) {
        b[p++] = 0xc0 | (c >> 6);
        b[p++] = 0x80 | (c & 0x3f);
      } else {
        if (c >= 0xd800 && c < 0xdc00 && i + 1 < len) {
          const lo = s.charCodeAt(i + 1);
          if (lo >= 0xdc00 && lo < 0xe000) {
            c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
            i++;
            b[p++] = 0xf0 | (c >> 18);
            b[p++] = 0x80 | ((c >> 12) & 0x3f);
            b[p++] = 0x80 | ((c >> 6) & 0x3f);
            b[p++] = 0x80 | (c & 0x3f);
            continue;
          }
        }
        b[p++] = 0xe0 | (c >> 12);
        b[p++] = 0x80 | ((c >> 6) & 0x3f);
        b[p++] = 0x80 | (c & 0x3f);
      }
    }
    return p - at;
  }

  /** `bytes`; a large one as a part. */
  private binary(u: Uint8Array): void {
    if (u.byteLength >= PART_MIN) {
      this.tagHeader('B', 1);
      this.part(u, PART_BYTES);
      return;
    }
    this.inline(u);
  }

  private inline(u: Uint8Array): void {
    const n = u.byteLength;
    this.ensure(5 + n);
    this.header(T_STRING, n);
    this.buf.set(u, this.pos);
    this.pos += n;
  }

  /** A buffer written after the message as it is; the message holds its index. */
  private part(u: Uint8Array, kind: number): void {
    if (u.byteLength > INT32_MAX) throw new Failure('binary data larger than 2 GiB cannot be sent to Python', Infinity);
    this.partList.push(u);
    this.partKinds.push(kind);
    this.ensure(5);
    this.header(T_INT, this.partList.length - 1);
  }

  /** A TypedArray or DataView: an array of its element type (a Uint8Array or Buffer is `bytes`). */
  private view(v: ArrayBufferView, d: number): void {
    if (v instanceof Uint8Array) {
      this.binary(v);
      return;
    }
    if (v instanceof DataView) {
      this.arrayTag('|u1', [v.byteLength], v);
      return;
    }
    const dtype = dtypeOfTypedArray(v);
    if (!dtype) throw new Failure(`a ${v.constructor.name} cannot be sent to Python`, d);
    this.arrayTag(typestrOf(dtype), [(v as unknown as ArrayLike<unknown>).length], v);
  }

  /** The start of a tagged value `(Ellipsis, name, ...)` with `fields` more items. */
  private tagHeader(name: string, fields: number): void {
    this.isTagged = true;
    this.tupleHeader(fields + 2);
    this.byte(T_ELLIPSIS);
    this.string(name, 0);
  }

  /** An n-dimensional array: `(Ellipsis, 'A', typestr, shape, data)`, data inline or a part. */
  private arrayTag(typestr: string, shape: readonly number[], data: ArrayBufferView): void {
    this.tagHeader('A', 3);
    this.string(typestr, 0);
    this.tupleHeader(shape.length);
    for (const n of shape) this.num(n);
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (bytes.byteLength >= PART_MIN) this.part(bytes, PART_BUFFER);
    else this.inline(bytes);
  }
}

/** The primitive inside a boxed Number/String/Boolean/BigInt, else `v` itself. */
function unbox(v: object): unknown {
  if (v instanceof Number || v instanceof String || v instanceof Boolean || v instanceof BigInt) return v.valueOf();
  return v;
}

/** Add the path segment for a child of the container at depth `d` to a failure passing through. */
function segment(e: unknown, d: number, seg: string): unknown {
  if (e instanceof Failure && d < e.keep) e.segments.push(seg);
  return e;
}

function toConversionError(e: unknown, root: string): unknown {
  if (e instanceof Failure) {
    const segs = e.segments.reverse();
    const path = root + segs.join('');
    if (e.back >= 0) {
      const ancestor = root + segs.slice(0, e.back).join('');
      return new ConversionError(`${e.message}: the value refers back to ${ancestor}`, path);
    }
    return new ConversionError(e.message, path);
  }
  if (e instanceof RangeError && /call stack/i.test(e.message)) {
    return new ConversionError('value nested too deeply (the call stack overflowed)', root);
  }
  return e;
}
