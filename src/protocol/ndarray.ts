/**
 * NDArray: an n-dimensional array of numbers that crosses to Python as an array of the same dtype and shape
 * (a typed `memoryview`, or a numpy array with the pool option `arrays: 'numpy'`), and what numpy arrays,
 * `array.array` and typed memoryviews become in JavaScript.
 */
import { ArgumentError, ConversionError } from '../errors.js';

/** Element types that have a JavaScript TypedArray (numpy's names). */
export type DType = 'bool' | 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'int64' | 'uint64' | 'float32' | 'float64';

/** The TypedArray that holds the elements of each dtype (`bool`: one byte per element, 0 or 1). */
export interface TypedArrayOf {
  bool: Uint8Array;
  int8: Int8Array;
  uint8: Uint8Array | Uint8ClampedArray;
  int16: Int16Array;
  uint16: Uint16Array;
  int32: Int32Array;
  uint32: Uint32Array;
  int64: BigInt64Array;
  uint64: BigUint64Array;
  float32: Float32Array;
  float64: Float64Array;
}

export type TypedArray = TypedArrayOf[DType];

type Ctor = { new (buffer: ArrayBufferLike, byteOffset: number, length: number): TypedArray; BYTES_PER_ELEMENT: number; name: string };

const CTORS: Record<DType, Ctor> = {
  bool: Uint8Array,
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  int64: BigInt64Array,
  uint64: BigUint64Array,
  float32: Float32Array,
  float64: Float64Array,
} as unknown as Record<DType, Ctor>;

/** numpy's kind and item size of each dtype: the wire names an array's type by numpy's `dtype.str` ('<f8'). */
const CODES: Record<DType, string> = {
  bool: 'b1',
  int8: 'i1',
  uint8: 'u1',
  int16: 'i2',
  uint16: 'u2',
  int32: 'i4',
  uint32: 'u4',
  int64: 'i8',
  uint64: 'u8',
  float32: 'f4',
  float64: 'f8',
};
const BY_CODE = new Map(Object.entries(CODES).map(([dtype, code]) => [code, dtype as DType]));
const DTYPES = Object.keys(CODES) as DType[];

/** The dtype of each TypedArray class (a Uint8Array is `uint8`; use `dtype: 'bool'` to send booleans). */
const FROM_CTOR = new Map<unknown, DType>([
  [Int8Array, 'int8'],
  [Uint8Array, 'uint8'],
  [Uint8ClampedArray, 'uint8'],
  [Int16Array, 'int16'],
  [Uint16Array, 'uint16'],
  [Int32Array, 'int32'],
  [Uint32Array, 'uint32'],
  [BigInt64Array, 'int64'],
  [BigUint64Array, 'uint64'],
  [Float32Array, 'float32'],
  [Float64Array, 'float64'],
]);

const NATIVE_ORDER: '<' | '>' = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? '<' : '>';

/** The dtype of a TypedArray (by its class), or undefined. */
export function dtypeOfTypedArray(data: ArrayBufferView): DType | undefined {
  let proto: unknown = Object.getPrototypeOf(data);
  while (proto) {
    const dtype = FROM_CTOR.get((proto as { constructor?: unknown }).constructor);
    if (dtype) return dtype;
    proto = Object.getPrototypeOf(proto);
  }
  return undefined;
}

/** numpy's type string of `dtype` in this machine's byte order: `'<f8'`, `'|u1'`. */
export function typestrOf(dtype: DType): string {
  const code = CODES[dtype];
  return (code.endsWith('1') ? '|' : NATIVE_ORDER) + code;
}

const kKey = Symbol('pyworkers.ndarray');

/**
 * An n-dimensional array: `data` holds the elements in C order (last index fastest), `shape` the length of each
 * dimension, `dtype` the element type. It is sent to Python as an array of that dtype and shape, and numpy
 * arrays (of a dtype listed in {@link DType}), `array.array` and typed memoryviews come back as one.
 *
 * ```ts
 * const m = new NDArray(new Float64Array([1, 2, 3, 4, 5, 6]), [2, 3]);
 * await pool.eval('np.asarray(m).sum(axis=0)', { m });   // NDArray float64 [3]: 5, 7, 9
 * ```
 */
export class NDArray<D extends DType = DType> {
  /** Element type, in numpy's names. */
  readonly dtype: D;
  /** Length of each dimension; `[]` for a 0-d array (one element). */
  readonly shape: readonly number[];
  /** The elements in C order, in this machine's byte order. */
  readonly data: TypedArrayOf[D];

  /**
   * @param data the elements in C order. A `Uint8Array` with `dtype: 'bool'` holds booleans (0 or 1).
   * @param shape length of each dimension; their product must be `data.length`. Default: `[data.length]`.
   * @param dtype element type; default: the TypedArray's (`Float64Array` → `'float64'`).
   * @throws ArgumentError when they disagree.
   */
  constructor(data: TypedArray, shape?: readonly number[], dtype?: DType);
  /** @internal */
  constructor(data: TypedArray, shape: readonly number[], dtype: DType, key: typeof kKey);
  constructor(data: TypedArray, shape?: readonly number[], dtype?: DType, key?: typeof kKey) {
    if (key !== kKey) {
      const own = ArrayBuffer.isView(data) && !(data instanceof DataView) ? dtypeOfTypedArray(data) : undefined;
      if (!own) throw new ArgumentError('NDArray: data must be a TypedArray (Float64Array, Int32Array, ...)');
      if (dtype !== undefined && !DTYPES.includes(dtype)) {
        throw new ArgumentError(`NDArray: unknown dtype ${JSON.stringify(dtype)}; expected one of ${DTYPES.join(', ')}`);
      }
      const want = dtype ?? own;
      if (want !== own && !(want === 'bool' && own === 'uint8' && data instanceof Uint8Array)) {
        throw new ArgumentError(`NDArray: dtype '${want}' needs a ${CTORS[want].name}, not a ${data.constructor.name}`);
      }
      shape ??= [data.length];
      if (!Array.isArray(shape) || !shape.every((n) => Number.isSafeInteger(n) && n >= 0)) {
        throw new ArgumentError('NDArray: shape must be an array of non-negative integers');
      }
      const size = shape.reduce((a, b) => a * b, 1);
      if (size !== data.length) throw new ArgumentError(`NDArray: shape [${shape.join(', ')}] holds ${size} elements, but data has ${data.length}`);
      dtype = want;
    }
    this.data = data as TypedArrayOf[D];
    this.shape = Object.freeze([...shape!]);
    this.dtype = dtype as D;
  }

  /** Number of elements. */
  get size(): number {
    return this.data.length;
  }

  /** Number of dimensions. */
  get ndim(): number {
    return this.shape.length;
  }

  /**
   * The elements as nested JavaScript arrays (a 0-d array: its one element). Elements are what `data` holds
   * (`bigint` for int64 and uint64), except that `bool` gives booleans.
   */
  toArray(): unknown {
    return this.#nested(this.dtype === 'bool' ? (x) => x !== 0 : (x) => x);
  }

  /** `{ dtype, shape, data }` with `data` as `toArray()` gives it, but 64-bit integers as strings (JSON has no bigint). */
  toJSON(): { dtype: D; shape: number[]; data: unknown } {
    const data = this.#nested(this.dtype === 'bool' ? (x) => x !== 0 : typeof this.data[0] === 'bigint' ? (x) => String(x) : (x) => x);
    return { dtype: this.dtype, shape: [...this.shape], data };
  }

  #nested(convert: (x: number | bigint) => unknown): unknown {
    const { data, shape } = this;
    if (shape.length === 0) return convert(data[0]!);
    let next = 0;
    const build = (dim: number): unknown[] => {
      const n = shape[dim]!;
      const out = new Array<unknown>(n);
      if (dim === shape.length - 1) for (let i = 0; i < n; i++) out[i] = convert(data[next++]!);
      else for (let i = 0; i < n; i++) out[i] = build(dim + 1);
      return out;
    };
    return build(0);
  }

  /** @internal An array read from the wire: `bytes` is owned by the new array (it may be byte-swapped in place). */
  static fromWire(typestr: string, shape: readonly number[], bytes: Uint8Array): NDArray {
    const dtype = BY_CODE.get(typestr.slice(1));
    if (!dtype || !'<>|='.includes(typestr[0]!)) throw new ConversionError(`an array of numpy dtype '${typestr}' has no JavaScript typed array`);
    const ctor = CTORS[dtype];
    const width = ctor.BYTES_PER_ELEMENT;
    if (bytes.byteLength % width !== 0) throw new ConversionError(`bad array data: ${bytes.byteLength} bytes of ${typestr}`);
    if (bytes.byteOffset % width !== 0) bytes = bytes.slice();
    const order = typestr[0];
    if (width > 1 && (order === '<' || order === '>') && order !== NATIVE_ORDER) swapBytes(bytes, width);
    const data = new ctor(bytes.buffer, bytes.byteOffset, bytes.byteLength / width);
    const size = shape.reduce((a, b) => a * b, 1);
    if (size !== data.length || !shape.every((n) => Number.isSafeInteger(n) && n >= 0)) {
      throw new ConversionError(`bad array data: shape [${shape.join(', ')}] for ${data.length} elements`);
    }
    return new NDArray(data, shape, dtype, kKey);
  }
}

function swapBytes(bytes: Uint8Array, width: number): void {
  for (let i = 0; i < bytes.length; i += width) {
    for (let a = i, b = i + width - 1; a < b; a++, b--) {
      const t = bytes[a]!;
      bytes[a] = bytes[b]!;
      bytes[b] = t;
    }
  }
}
