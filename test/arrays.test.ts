/**
 * Arrays and buffers: typed arrays and NDArray into Python, memoryviews, array.array and numpy arrays out of it,
 * numpy scalars, pandas frames, large payloads as frame parts. The numpy and pandas tests need an interpreter with
 * those packages (CI installs Debian's); elsewhere they skip and say why.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, test } from 'node:test';
import { ArgumentError, ConversionError, DataFrame, NDArray, Series, WorkerStartError, type DType } from '../src/index.js';
import { need, pool, pythonWith, rejection, requires } from './helpers.js';

const NUMPY = pythonWith('numpy');
const PANDAS = pythonWith('pandas');

/** Every TypedArray with its memoryview format and dtype. */
const KINDS: Array<[string, () => ArrayBufferView & ArrayLike<number | bigint>, string, DType]> = [
  ['Int8Array', () => new Int8Array([-128, 0, 127]), 'b', 'int8'],
  ['Uint8ClampedArray', () => new Uint8ClampedArray([0, 7, 255]), 'B', 'uint8'],
  ['Int16Array', () => new Int16Array([-32768, 1, 32767]), 'h', 'int16'],
  ['Uint16Array', () => new Uint16Array([0, 1, 65535]), 'H', 'uint16'],
  ['Int32Array', () => new Int32Array([-(2 ** 31), 1, 2 ** 31 - 1]), 'i', 'int32'],
  ['Uint32Array', () => new Uint32Array([0, 1, 2 ** 32 - 1]), 'I', 'uint32'],
  ['BigInt64Array', () => new BigInt64Array([-(2n ** 63n), 1n, 2n ** 63n - 1n]), 'q', 'int64'],
  ['BigUint64Array', () => new BigUint64Array([0n, 1n, 2n ** 64n - 1n]), 'Q', 'uint64'],
  ['Float32Array', () => new Float32Array([-1.5, 0, 3.25]), 'f', 'float32'],
  ['Float64Array', () => new Float64Array([-1.5, Math.PI, Infinity]), 'd', 'float64'],
];

/** What Python's tolist() gives back for `values` (ints beyond 2**53 as bigints). */
const listed = (values: ArrayLike<number | bigint>) =>
  Array.from(values, (v) => (typeof v === 'bigint' ? (v >= -(2n ** 53n) + 1n && v <= 2n ** 53n - 1n ? Number(v) : v) : v));

describe('typed arrays into Python', () => {
  for (const [name, make, format, dtype] of KINDS) {
    test(`${name} arrives as a writable memoryview of format '${format}' (${dtype})`, async () => {
      const p = await pool();
      const x = make();
      const got = await p.eval('(type(x).__name__, x.format, x.itemsize, x.shape, x.readonly, x.tolist())', { x });
      assert.deepStrictEqual(got, ['memoryview', format, (x as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT, [3], false, listed(x)]);
    });
  }

  test('Uint8Array and Buffer arrive as bytes, small and large', async () => {
    const p = await pool();
    assert.deepStrictEqual(await p.eval('(type(x).__name__, x)', { x: new Uint8Array([1, 2]) }), ['bytes', new Uint8Array([1, 2])]);
    assert.deepStrictEqual(await p.eval('(type(x).__name__, x)', { x: Buffer.from('hi') }), ['bytes', new Uint8Array([104, 105])]);
    const big = Buffer.alloc(300_000, 7);
    big[299_999] = 9;
    assert.deepStrictEqual(await p.eval('(type(x).__name__, len(x), x[0], x[-1])', { x: big }), ['bytes', 300_000, 7, 9]);
    assert.deepStrictEqual(await p.eval('(type(x).__name__, len(x))', { x: new Uint8Array(big.buffer, 1, 200_000) }), ['bytes', 200_000]);
  });

  test('a DataView arrives as a memoryview of unsigned bytes; ArrayBuffer as bytes', async () => {
    const p = await pool();
    const view = new DataView(new Uint8Array([1, 2, 3, 4]).buffer, 1, 2);
    assert.deepStrictEqual(await p.eval('(x.format, x.tolist())', { x: view }), ['B', [2, 3]]);
    assert.deepStrictEqual(await p.eval('x', { x: new Uint8Array([9, 8]).buffer }), new Uint8Array([9, 8]));
  });

  test('a view of part of a buffer sends only its own elements', async () => {
    const p = await pool();
    const whole = new Float64Array([0, 1, 2, 3, 4, 5]);
    assert.deepStrictEqual(await p.eval('x.tolist()', { x: whole.subarray(2, 5) }), [2, 3, 4]);
    const large = new Float64Array(50_000).map((_, i) => i);
    assert.deepStrictEqual(await p.eval('(len(x), x[0], x[-1])', { x: large.subarray(10_000, 40_000) }), [30_000, 10_000, 39_999]);
  });

  test('an NDArray arrives with its shape: n-d, 0-d, bool; a zero-size one as an empty 1-d view', async () => {
    const p = await pool();
    const m = new NDArray(new Int32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
    assert.deepStrictEqual(await p.eval('(x.format, x.shape, x.tolist())', { x: m }), ['i', [2, 3], [[1, 2, 3], [4, 5, 6]]]);
    assert.deepStrictEqual(await p.eval('(x.shape, x.tolist())', { x: new NDArray(new Float64Array([2.5]), []) }), [[], 2.5]);
    assert.deepStrictEqual(await p.eval('(x.format, x.tolist())', { x: new NDArray(new Uint8Array([1, 0]), [2], 'bool') }), ['?', [true, false]]);
    assert.deepStrictEqual(await p.eval('(x.format, x.shape)', { x: new NDArray(new Float32Array(0), [2, 0]) }), ['f', [0]]);
  });

  test('what arrives is writable and is a copy (the caller\'s array is untouched)', async () => {
    const p = await pool();
    const x = new Float64Array(20_000).fill(1);
    assert.equal(await p.eval('x.__setitem__(0, 5.0) or x[0]', { x }), 5);
    assert.equal(x[0], 1);
  });

  test('large arrays in arguments, keyword arguments, locals, nested values, contexts and streams', async () => {
    const p = await pool();
    await p.exec('def total(*args, **kw):\n    return [sum(a) for a in args] + [sum(v) for v in kw.values()]');
    const a = new Float64Array(100_000).fill(0.5);
    const b = new Int32Array(70_000).fill(2);
    assert.deepStrictEqual(await p.call('__main__', 'total', [a, b], { kwargs: { c: a } }), [50_000, 140_000, 50_000]);
    assert.deepStrictEqual(await p.eval('[len(v[0]), len(v[1]["k"]), type(v[1]["k"]).__name__]', { v: [a, { k: new Uint8Array(80_000) }] }), [100_000, 80_000, 'bytes']);
    await using ctx = await p.context();
    assert.equal(await ctx.eval('sum(x)', { x: b }), 140_000);
    const items = await p.streamEval('(len(v) for v in vs)', { vs: [a, b, new Uint8Array(65_536)] }).toArray();
    assert.deepStrictEqual(items, [100_000, 70_000, 65_536]);
  });

  test('typed arrays cannot be Map keys or Set elements; Uint8Arrays can (bytes)', async () => {
    const p = await pool();
    const error = await rejection(p.eval('x', { x: new Map([[new Float64Array(1), 1]]) }));
    assert.ok(error instanceof ConversionError);
    assert.match(error.message, /unhashable key: a Float64Array/);
    assert.equal(error.path, 'locals.x.keys()[0]');
    await assert.rejects(p.eval('x', { x: new Set([new NDArray(new Int8Array(1))]) }), /unhashable key: a NDArray/);
    assert.deepStrictEqual(await p.eval('list(x.keys())', { x: new Map([[new Uint8Array([1]), 1]]) }), [new Uint8Array([1])]);
  });
});

describe('arrays out of Python', () => {
  const ARRAY_CODES: Array<[string, DType]> = [
    ['b', 'int8'], ['B', 'uint8'], ['h', 'int16'], ['H', 'uint16'], ['i', 'int32'], ['I', 'uint32'],
    ['l', 'int64'], ['L', 'uint64'], ['q', 'int64'], ['Q', 'uint64'], ['f', 'float32'], ['d', 'float64'],
  ];
  test('array.array of every numeric typecode arrives as an NDArray of its dtype', async () => {
    const p = await pool();
    for (const [code, dtype] of ARRAY_CODES) {
      const got = (await p.eval(`__import__("array").array("${code}", [0, 1, 2])`)) as NDArray;
      assert.ok(got instanceof NDArray, code);
      assert.equal(got.dtype, dtype, code);
      assert.deepStrictEqual(got.shape, [3]);
      assert.deepStrictEqual(got.toArray(), dtype.endsWith('64') && dtype !== 'float64' ? [0n, 1n, 2n] : [0, 1, 2], code);
    }
  });

  test('typed memoryviews: n-d, 0-d, strided, bool', async () => {
    const p = await pool();
    const m = (await p.eval('memoryview(bytes(range(24))).cast("i", [2, 3])')) as NDArray;
    assert.deepStrictEqual([m.dtype, m.shape], ['int32', [2, 3]]);
    assert.deepStrictEqual(m.toArray(), [[0x03020100, 0x07060504, 0x0b0a0908], [0x0f0e0d0c, 0x13121110, 0x17161514]]);
    const zero = (await p.eval('memoryview(__import__("array").array("d", [7.5])).cast("B").cast("d", [])')) as NDArray;
    assert.deepStrictEqual([zero.shape, zero.toArray()], [[], 7.5]);
    const strided = (await p.eval('memoryview(__import__("array").array("i", range(10)))[1::3]')) as NDArray;
    assert.deepStrictEqual(strided.toArray(), [1, 4, 7]);
    const bools = (await p.eval('memoryview(bytes([1, 0, 1])).cast("?")')) as NDArray;
    assert.deepStrictEqual([bools.dtype, bools.toArray()], ['bool', [true, false, true]]);
  });

  test('typed buffers of other objects, and explicit byte order (ctypes)', async () => {
    const p = await pool();
    await p.exec('import ctypes');
    const big = (await p.eval('(ctypes.c_int32.__ctype_be__ * 3)(1, -2, 70000)')) as NDArray;
    assert.deepStrictEqual([big.dtype, [...big.data]], ['int32', [1, -2, 70000]]);
    const little = (await p.eval('(ctypes.c_double * 2)(1.5, 2.5)')) as NDArray;
    assert.deepStrictEqual([little.dtype, [...little.data]], ['float64', [1.5, 2.5]]);
  });

  test('formats with no TypedArray are refused, naming the format', async () => {
    const p = await pool();
    const wide = await rejection(p.eval('__import__("array").array("u", "ab")'));
    assert.ok(wide instanceof ConversionError);
    assert.match(wide.message, /the format '[wu]' of a array\.array has no JavaScript typed array \(supported: bool, int8/);
    await assert.rejects(p.eval('[1, memoryview((__import__("ctypes").c_longdouble * 2)())]'), (e: ConversionError) => e instanceof ConversionError && /format '<g' of a memoryview/.test(e.message) && e.path === 'result[1]');
  });

  test('every result owns its memory, aligned for its TypedArray', async () => {
    const p = await pool();
    await p.exec('import array\nA = array.array("d", range(200_000))\nB = bytes(range(256)) * 1024');
    const [a, b, small] = (await p.eval('[A, B, memoryview(A)[:3]]')) as [NDArray<'float64'>, Uint8Array, NDArray<'float64'>];
    for (const data of [a.data, b, small.data]) {
      assert.equal(data.byteOffset, 0);
      assert.equal(data.buffer.byteLength, data.byteLength);
    }
    assert.equal(a.data[199_999], 199_999);
    assert.equal(b[257], 1);
    assert.deepStrictEqual([...small.data], [0, 1, 2]);
  });

  test('every dtype makes the round trip JS → Python → JS, small and large', async () => {
    const p = await pool();
    for (const [name, make, , dtype] of KINDS) {
      for (const n of [3, 40_000]) {
        const base = make();
        const data = new (base.constructor as new (n: number) => typeof base)(n);
        for (let i = 0; i < n; i++) (data as unknown as Array<number | bigint>)[i] = base[i % 3]!;
        const back = (await p.eval('x', { x: new NDArray(data as never, [n]) })) as NDArray;
        assert.equal(back.dtype, dtype, name);
        assert.deepStrictEqual(back.shape, [n]);
        assert.deepStrictEqual(Array.from(back.data as ArrayLike<unknown>), Array.from(data as ArrayLike<unknown>), name);
      }
    }
    const bools = (await p.eval('x', { x: new NDArray(new Uint8Array([1, 0]), [1, 2], 'bool') })) as NDArray;
    assert.deepStrictEqual([bools.dtype, bools.shape, bools.toArray()], ['bool', [1, 2], [[true, false]]]);
  });

  test('seeded fuzz: random dtypes, shapes and values survive the round trip, alone and nested', async () => {
    const p = await pool();
    let seed = 20261202;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000);
    for (let round = 0; round < 150; round++) {
      const [, make] = KINDS[Math.floor(rnd() * KINDS.length)]!;
      const dims = Math.floor(rnd() * 4);
      const shape = Array.from({ length: dims }, () => Math.floor(rnd() * (rnd() < 0.1 ? 300 : 6)));
      const size = shape.reduce((a, b) => a * b, 1);
      const sample = make();
      const data = new (sample.constructor as new (n: number) => typeof sample)(size);
      const bytes = new Uint8Array(data.buffer);
      for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(rnd() * 256);
      const array = new NDArray(data as never, shape);
      const back = (await p.eval('[x, {"k": x}]', { x: array })) as [NDArray, { k: NDArray }];
      for (const got of [back[0], back[1].k]) {
        // a memoryview cannot have a zero in its shape: a zero-size array comes back one-dimensional
        const want = size === 0 && dims !== 1 ? [0] : shape;
        assert.deepStrictEqual([got.dtype, got.shape], [array.dtype, want], `round ${round}`);
        assert.deepStrictEqual(new Uint8Array(got.data.buffer, got.data.byteOffset, got.data.byteLength), bytes, `round ${round}`);
      }
    }
  });

  test('arrays and large bytes stream out as items', async () => {
    const p = await pool();
    const items = (await p.streamEval('(memoryview(bytes([i]) * 70_000) if i % 2 else bytes([i]) * 70_000 for i in range(4))').toArray()) as Array<Uint8Array | NDArray>;
    assert.deepStrictEqual(items.map((x) => (x instanceof NDArray ? ['nd', x.size, x.data[0]] : ['b', x.length, x[0]])), [['b', 70_000, 0], ['nd', 70_000, 1], ['b', 70_000, 2], ['nd', 70_000, 3]]);
  });
});

describe('NDArray, DataFrame and Series in JavaScript', () => {
  test('NDArray checks its arguments', () => {
    assert.throws(() => new NDArray([1, 2] as never), ArgumentError);
    assert.throws(() => new NDArray(new DataView(new ArrayBuffer(2)) as never), /must be a TypedArray/);
    assert.throws(() => new NDArray(new Float64Array(6), [4, 2]), /holds 8 elements, but data has 6/);
    assert.throws(() => new NDArray(new Float64Array(6), [-6] as never), /non-negative integers/);
    assert.throws(() => new NDArray(new Float64Array(2), [2], 'int32' as never), /dtype 'int32' needs a Int32Array, not a Float64Array/);
    assert.throws(() => new NDArray(new Float64Array(2), [2], 'complex' as never), /unknown dtype "complex"/);
    assert.throws(() => new NDArray(new Int8Array(2), [2], 'bool' as never), /dtype 'bool' needs a Uint8Array/);
  });

  test('NDArray: size, ndim, toArray and toJSON', () => {
    const m = new NDArray(new BigInt64Array([1n, 2n, 3n, 4n]), [2, 2]);
    assert.deepStrictEqual([m.size, m.ndim, m.dtype], [4, 2, 'int64']);
    assert.deepStrictEqual(m.toArray(), [[1n, 2n], [3n, 4n]]);
    assert.equal(JSON.stringify(m), '{"dtype":"int64","shape":[2,2],"data":[["1","2"],["3","4"]]}');
    assert.equal(new NDArray(new Float32Array([1.5]), []).toArray(), 1.5);
    assert.deepStrictEqual(new NDArray(new Uint8Array([0, 1]), [2], 'bool').toArray(), [false, true]);
    assert.deepStrictEqual(new NDArray(new Int8Array(0), [0, 3]).toArray(), []);
    assert.ok(Object.isFrozen(m.shape));
  });

  test('DataFrame and Series check their arguments and give columns, records and values', () => {
    assert.throws(() => new DataFrame({ a: 1 } as never), /column "a" must be an NDArray or an array/);
    assert.throws(() => new DataFrame({ a: [1], b: [1, 2] }), /column "b" has 2 values, not 1/);
    assert.throws(() => new DataFrame({ a: new NDArray(new Int8Array(4), [2, 2]) }), /must be one-dimensional/);
    assert.throws(() => new DataFrame({ a: [1] }, { index: [1, 2] }), /the index has 2 labels, not 1/);
    assert.throws(() => new Series([1, 2], { index: [1] }), /the index has 1 labels, not 2/);
    const df = new DataFrame(new Map<unknown, unknown[] | NDArray>([[0, new NDArray(new Uint8Array([1, 0]), [2], 'bool')], ['b', ['x', 'y']]]));
    assert.deepStrictEqual([df.length, df.columns, df.index], [2, [0, 'b'], null]);
    assert.deepStrictEqual(df.toRecords(), [{ 0: true, b: 'x' }, { 0: false, b: 'y' }]);
    assert.deepStrictEqual(df.column('b'), ['x', 'y']);
    assert.equal(df.column('nope'), undefined);
    assert.deepStrictEqual(Object.keys(df.toObject()), ['0', 'b']);
    assert.deepStrictEqual(new Series(new NDArray(new Float64Array([1, 2]))).toArray(), [1, 2]);
  });
});

describe('numpy', requires(NUMPY, 'numpy'), () => {
  const numpyPool = (extra = {}) => pool({ python: need(NUMPY, 'numpy'), setup: 'import numpy as np', ...extra });

  test('numpy functions take lists and typed arrays, and their scalar results are numbers', async () => {
    const p = await numpyPool();
    assert.equal(await p.call('numpy', 'mean', [[1, 2, 3]]), 2);
    assert.equal(await p.call('numpy', 'mean', [new Float64Array([1, 2, 3])]), 2);
    assert.equal(await p.call('numpy', 'sum', [new Int32Array([1, 2, 3])]), 6);
    assert.deepStrictEqual(await p.eval('np.asarray(x).dtype.str', { x: new Float32Array(2) }), '<f4');
  });

  test('numpy scalars convert like the Python values they stand for, also nested and as keys', async () => {
    const p = await numpyPool();
    const cases: Array<[string, unknown]> = [
      ['np.int8(-5)', -5], ['np.uint8(200)', 200], ['np.int16(-300)', -300], ['np.uint16(60000)', 60000],
      ['np.int32(-7)', -7], ['np.uint32(4000000000)', 4000000000], ['np.int64(2**53 - 1)', 2 ** 53 - 1],
      ['np.int64(-2**60)', -(2n ** 60n)], ['np.uint64(2**64 - 1)', 2n ** 64n - 1n], ['np.float16(0.5)', 0.5],
      ['np.float32(1.5)', 1.5], ['np.float64(2.25)', 2.25], ['np.float64("nan")', NaN], ['np.bool_(True)', true],
      ['np.bool_(False)', false], ['np.str_("s")', 's'], ['np.bytes_(b"b")', new Uint8Array([98])],
      ['np.datetime64("2020-01-02T03:04:05.678")', new Date(Date.UTC(2020, 0, 2, 3, 4, 5, 678))],
      ['np.datetime64("1960-06-01")', new Date(Date.UTC(1960, 5, 1))], ['np.datetime64("NaT")', null],
    ];
    for (const [expr, want] of cases) assert.deepStrictEqual(await p.eval(expr), want, expr);
    assert.deepStrictEqual(await p.eval('{"m": np.float64(1.5), "l": [np.int64(2), (np.bool_(False),)]}'), { m: 1.5, l: [2, [false]] });
    assert.deepStrictEqual(await p.eval('{np.int64(3): np.str_("x")}'), new Map([[3, 'x']]));
    assert.deepStrictEqual(await p.eval('{np.str_("k"): 1}'), { k: 1 });
    await assert.rejects(p.eval('np.datetime64("300000-01-01")'), /numpy datetime64 outside the range of a JavaScript Date/);
    await assert.rejects(p.eval('[np.complex128(1j)]'), (e: ConversionError) => e instanceof ConversionError && /complex/.test(e.message) && e.path === 'result[0]');
  });

  test('subclasses of float, int and str convert like their base wherever they are', async () => {
    const p = await numpyPool();
    await p.exec('import enum\nclass F(float): pass\nclass I(int): pass\nclass S(str): pass\nclass E(enum.IntEnum):\n    A = 4');
    assert.deepStrictEqual(await p.eval('[F(1.5), I(2), S("s"), E.A, {S("k"): F(2.0)}, (I(1),)]'), [1.5, 2, 's', 4, { k: 2 }, [1]]);
    assert.deepStrictEqual(await p.eval('F(1.5)'), 1.5);
  });

  const DTYPES: Array<[string, DType, new (n: number) => ArrayLike<unknown>]> = [
    ['bool', 'bool', Uint8Array], ['int8', 'int8', Int8Array], ['uint8', 'uint8', Uint8Array], ['int16', 'int16', Int16Array],
    ['uint16', 'uint16', Uint16Array], ['int32', 'int32', Int32Array], ['uint32', 'uint32', Uint32Array],
    ['int64', 'int64', BigInt64Array], ['uint64', 'uint64', BigUint64Array], ['float32', 'float32', Float32Array],
    ['float64', 'float64', Float64Array],
  ];
  test('ndarrays of every numeric and bool dtype arrive as NDArrays with the matching TypedArray, and go back', async () => {
    const p = await numpyPool();
    for (const [np, dtype, ctor] of DTYPES) {
      for (const n of [5, 20_000]) {
        const got = (await p.eval(`np.arange(${n}).astype("${np}")`)) as NDArray;
        assert.equal(got.dtype, dtype);
        assert.equal(got.data.constructor, ctor, np);
        assert.deepStrictEqual(got.shape, [n]);
        assert.equal(got.data.byteOffset % (got.data as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT, 0);
        assert.equal(await p.eval(`bool((np.asarray(x) == np.arange(${n}).astype("${np}")).all()) and np.asarray(x).dtype == "${np}"`, { x: got }), true, np);
      }
    }
  });

  test('shapes: 0-d, empty, 1-d, 3-d, strided views and Fortran order arrive in C order', async () => {
    const p = await numpyPool();
    const scalar = (await p.eval('np.array(5.5)')) as NDArray;
    assert.deepStrictEqual([scalar.shape, scalar.toArray()], [[], 5.5]);
    assert.deepStrictEqual(((await p.eval('np.zeros(0)')) as NDArray).shape, [0]);
    assert.deepStrictEqual(((await p.eval('np.zeros((2, 0, 3), dtype="int16")')) as NDArray).shape, [2, 0, 3]);
    const cube = (await p.eval('np.arange(24, dtype="int32").reshape(2, 3, 4)')) as NDArray;
    assert.deepStrictEqual(cube.shape, [2, 3, 4]);
    assert.deepStrictEqual((cube.toArray() as number[][][])[1]![2], [20, 21, 22, 23]);
    const strided = (await p.eval('np.arange(20, dtype="int32").reshape(4, 5)[::2, 1::2]')) as NDArray;
    assert.deepStrictEqual(strided.toArray(), [[1, 3], [11, 13]]);
    const fortran = (await p.eval('np.asfortranarray(np.arange(6, dtype="float64").reshape(2, 3))')) as NDArray;
    assert.deepStrictEqual(fortran.toArray(), [[0, 1, 2], [3, 4, 5]]);
    const transposed = (await p.eval('np.arange(6, dtype="int8").reshape(2, 3).T')) as NDArray;
    assert.deepStrictEqual([transposed.shape, transposed.toArray()], [[3, 2], [[0, 3], [1, 4], [2, 5]]]);
  });

  test('byte order is explicit: big-endian arrays arrive with their values', async () => {
    const p = await numpyPool();
    const f = (await p.eval('np.array([1.5, -2.0, 1e300], dtype=">f8")')) as NDArray;
    assert.deepStrictEqual([f.dtype, [...f.data]], ['float64', [1.5, -2, 1e300]]);
    const i = (await p.eval('np.arange(70_000, dtype=">i4")')) as NDArray;
    assert.deepStrictEqual([i.dtype, i.data[1], i.data[69_999]], ['int32', 1, 69_999]);
    assert.deepStrictEqual([...((await p.eval('np.array([258], dtype=">u2")')) as NDArray).data], [258]);
  });

  test('dtypes with no TypedArray are refused naming the dtype; object, str and datetime arrays become values', async () => {
    const p = await numpyPool();
    for (const [expr, dtype] of [['np.zeros(2, dtype="complex128")', 'complex128'], ['np.zeros(2, dtype="float16")', 'float16'], ['np.zeros(2, dtype=[("a", "i4"), ("b", "f8")])', "\\[\\('a'"], ['np.zeros(2, dtype="timedelta64[s]")', 'timedelta64']] as const) {
      const error = await rejection(p.eval(`[0, ${expr}]`));
      assert.ok(error instanceof ConversionError, expr);
      assert.match(error.message, new RegExp(`numpy dtype '?${dtype}`), expr);
      assert.equal(error.path, 'result[1]');
    }
    assert.deepStrictEqual(await p.eval('np.array([1, "a", None], dtype=object)'), [1, 'a', null]);
    assert.deepStrictEqual(await p.eval('np.array([["a", "bc"]])'), [['a', 'bc']]);
    assert.deepStrictEqual(await p.eval('np.array(["2020-01-01", "NaT"], dtype="datetime64[ms]")'), [new Date(Date.UTC(2020, 0, 1)), null]);
  });

  test("by default a typed array arrives as a memoryview that numpy wraps without a copy; arrays: 'numpy' gives ndarrays", async () => {
    const p = await numpyPool();
    await p.exec('def wrap(x):\n    a = np.asarray(x)\n    a[0] = 7  # writes through to x: no copy\n    return type(x).__name__, x[0], a.dtype.str, bool(a.flags.writeable)');
    assert.deepStrictEqual(await p.call('__main__', 'wrap', [new Float64Array(70_000)]), ['memoryview', 7, '<f8', true]);
    const q = await numpyPool({ arrays: 'numpy' });
    const info = 'lambda a: (type(a).__name__, a.dtype.str, list(a.shape), bool(a.flags.writeable))';
    assert.deepStrictEqual(await q.eval(`(${info})(x)`, { x: new Float32Array(3) }), ['ndarray', '<f4', [3], true]);
    assert.deepStrictEqual(await q.eval(`(${info})(x)`, { x: new NDArray(new Int16Array(70_000), [2, 35_000]) }), ['ndarray', '<i2', [2, 35_000], true]);
    assert.deepStrictEqual(await q.eval(`(${info})(x)`, { x: new NDArray(new Float64Array(0), [3, 0]) }), ['ndarray', '<f8', [3, 0], true]);
    assert.deepStrictEqual(await q.eval(`(${info})(x)`, { x: new NDArray(new Uint8Array([1]), [], 'bool') }), ['ndarray', '|b1', [], true]);
    assert.deepStrictEqual(await q.eval('type(x).__name__', { x: new Uint8Array(2) }), 'bytes');
    const back = (await q.eval('x * 2', { x: new NDArray(new Int32Array([1, 2, 3, 4]), [2, 2]) })) as NDArray;
    assert.deepStrictEqual(back.toArray(), [[2, 4], [6, 8]]);
  });

  test("`pyworkers eval --json` prints numpy scalars and arrays as JSON values", async () => {
    const cli = path.resolve('dist/cli/main.js');
    const run = (code: string) => promisify(execFile)(process.execPath, [cli, 'eval', '--json', '--python', need(NUMPY, 'numpy'), code]);
    assert.deepStrictEqual(JSON.parse((await run('__import__("numpy").float64(2.5)')).stdout), 2.5);
    assert.deepStrictEqual(JSON.parse((await run('__import__("numpy").arange(4).reshape(2, 2)')).stdout), { dtype: 'int64', shape: [2, 2], data: [['0', '1'], ['2', '3']] });
  });
});

describe('arrays option', () => {
  test("arrays must be 'memoryview' or 'numpy'", async () => {
    await assert.rejects(pool({ arrays: 'list' as never }), (e: Error) => e instanceof ArgumentError && /options\.arrays must be one of 'memoryview', 'numpy', got 'list'/.test(e.message));
  });

  test("arrays: 'numpy' where numpy cannot be imported fails to start, saying so", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pyworkers-nonumpy-'));
    writeFileSync(path.join(dir, 'numpy.py'), 'raise ImportError("No module named \'numpy\'")\n');
    const error = await rejection(pool({ arrays: 'numpy', pythonPath: [dir] }));
    rmSync(dir, { recursive: true, force: true });
    assert.ok(error instanceof WorkerStartError);
    assert.match(error.message, /No module named 'numpy'/);
  });
});

describe('pandas', requires(PANDAS, 'pandas'), () => {
  test('examples/arrays.ts runs', async () => {
    const script = path.resolve('examples/arrays.ts');
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', script], { env: { ...process.env, PYWORKERS_PYTHON: need(PANDAS, 'pandas') } });
    for (const line of ['mean: 2', "arrives as: [ 'memoryview', 'i', '<i4' ]", 'a @ a: float64 [ 2, 2 ] [ [ 7, 10 ], [ 15, 22 ] ]', "with arrays: 'numpy': [ 'ndarray', [ 3, 2 ] ]", 'last element 8388606', 'described in Python: 1.5']) {
      assert.ok(stdout.includes(line), `missing ${JSON.stringify(line)} in:\n${stdout}`);
    }
  });

  const pandasPool = () => pool({ python: need(PANDAS, 'pandas'), setup: 'import numpy as np\nimport pandas as pd' });

  test('a DataFrame arrives column-wise: NDArrays for numbers and bools, values for the rest', async () => {
    const p = await pandasPool();
    const df = (await p.eval(`pd.DataFrame({
      "x": [1.5, 2.5, 3.5], "n": [1, 2, 3], "ok": [True, False, True], "name": ["a", "b", None],
      "t": pd.to_datetime(["2020-01-01", None, "2021-06-01"]), "i": pd.array([1, None, 3], dtype="Int64"),
      "c": pd.Categorical(["u", "v", "u"]),
    })`)) as DataFrame;
    assert.ok(df instanceof DataFrame);
    assert.deepStrictEqual(df.columns, ['x', 'n', 'ok', 'name', 't', 'i', 'c']);
    assert.equal(df.index, null);
    assert.equal(df.length, 3);
    const x = df.column('x') as NDArray;
    assert.deepStrictEqual([x.dtype, [...x.data]], ['float64', [1.5, 2.5, 3.5]]);
    assert.equal((df.column('n') as NDArray).dtype, 'int64');
    assert.deepStrictEqual((df.column('ok') as NDArray).toArray(), [true, false, true]);
    assert.deepStrictEqual(df.column('name'), ['a', 'b', null]);
    assert.deepStrictEqual(df.column('t'), [new Date(Date.UTC(2020, 0, 1)), null, new Date(Date.UTC(2021, 5, 1))]);
    assert.deepStrictEqual(df.column('i'), [1, null, 3]);
    assert.deepStrictEqual(df.column('c'), ['u', 'v', 'u']);
    assert.deepStrictEqual(df.toRecords()[0], { x: 1.5, n: 1n, ok: true, name: 'a', t: new Date(Date.UTC(2020, 0, 1)), i: 1, c: 'u' });
  });

  test('a DataFrame with an index, and a Series', async () => {
    const p = await pandasPool();
    const df = (await p.eval('pd.DataFrame({"v": [1.0, 2.0]}, index=["r1", "r2"])')) as DataFrame;
    assert.deepStrictEqual(df.index, ['r1', 'r2']);
    const s = (await p.eval('pd.Series([3, 4], name="s", index=[10, 20])')) as Series;
    assert.ok(s instanceof Series);
    assert.deepStrictEqual([s.name, (s.values as NDArray).toArray(), (s.index as NDArray).toArray()], ['s', [3n, 4n], [10n, 20n]]);
    const plain = (await p.eval('pd.Series([True, False])')) as Series;
    assert.deepStrictEqual([plain.name, plain.index, plain.toArray()], [null, null, [true, false]]);
  });

  test('DataFrames and Series make the round trip back into pandas', async () => {
    const p = await pandasPool();
    await p.exec('df = pd.DataFrame({"x": np.arange(100_000, dtype="float64"), "name": ["n%d" % i for i in range(100_000)], "k": np.arange(100_000) % 7}, index=np.arange(100_000) * 2)');
    const df = (await p.eval('df')) as DataFrame;
    assert.equal(await p.eval('back.equals(df) and list(back.dtypes) == list(df.dtypes) and back.index.equals(df.index)', { back: df }), true);
    const s = (await p.eval('df["x"]')) as Series;
    assert.equal(await p.eval('type(s).__name__ == "Series" and s.equals(df["x"]) and s.name == "x"', { s }), true);
    const mine = new DataFrame({ a: new NDArray(new Int32Array([1, 2])), b: ['x', 'y'] }, { index: ['p', 'q'] });
    assert.deepStrictEqual(await p.eval('[str(d) for d in x.dtypes] + list(x.index) + [int(x.loc["q", "a"])]', { x: mine }), ['int32', 'object', 'p', 'q', 2]);
  });
});
