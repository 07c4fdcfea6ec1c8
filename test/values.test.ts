/**
 * Values: every row of the type table in both directions, exactly, through a real pool;
 * and the values that are refused with a ConversionError, the worker and the pool staying healthy.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ConversionError, createPool, isTuple, MAX_DEPTH, NDArray, PyWorkersError, tuple, type Pool } from '../src/index.js';
import { pool } from './helpers.js';

let shared: Pool;
before(async () => {
  shared = await createPool({ workers: 1, forwardOutput: false });
  await shared.exec(`
import datetime, math, sys
UTC = datetime.timezone.utc
def identity(x):
    return x
def depth(x):
    n = 0
    while isinstance(x, (list, dict)):
        n += 1
        x = (x[0] if x else None) if isinstance(x, list) else x.get('k')
    return n
def nest(levels, kind='list'):
    x = [] if kind == 'list' else {}
    for _ in range(levels - 1):
        x = [x] if kind == 'list' else {'k': x}
    return x
`);
});
after(() => shared.destroy());

/** JS value `x` arrives in Python such that the expression `check` (about `x`) is True. */
async function arrives(x: unknown, check: string): Promise<void> {
  const ok = await shared.eval(`(${check})`, { x });
  if (ok !== true) assert.fail(`${check} is ${String(ok)} in Python; x is ${await shared.eval('ascii(x)', { x })}`);
}

function conversionError(pattern?: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof ConversionError, `expected a ConversionError, got ${String(e)}`);
    assert.ok(e instanceof PyWorkersError);
    assert.equal(e.code, 'ERR_CONVERSION');
    if (pattern) assert.match(e.message, pattern);
    return true;
  };
}

/** A JS array nested `levels` deep (`[]` is one level). */
function nestJs(levels: number): unknown[] {
  let x: unknown[] = [];
  for (let i = 1; i < levels; i++) x = [x];
  return x;
}

/** Levels of nesting of a JS value made of arrays and objects (a dict {'k': ...} counts like a list). */
function jsDepth(x: unknown): number {
  let n = 0;
  while (typeof x === 'object' && x !== null) {
    n++;
    x = Array.isArray(x) ? x[0] : (x as Record<string, unknown>).k;
  }
  return n;
}

async function healthy(p: Pool, pid?: number): Promise<void> {
  assert.equal(await p.eval('40 + 2'), 42);
  if (pid !== undefined) assert.equal(p.stats().perWorker[0]!.pid, pid, 'the same worker serves on');
}

describe('JavaScript → Python', () => {
  test('integral number → int (16.0 too)', async () => {
    for (const n of [0, 1, -5, 16.0, 2 ** 31, 2 ** 53 - 1, -(2 ** 53 - 1)]) await arrives(n, `type(x) is int and x == ${n}`);
    await arrives(2 ** 60, 'type(x) is int and x == 2**60');
    await arrives(1e21, 'type(x) is int and x == 10**21');
  });

  test('other number → float: fractions, NaN, ±Infinity, -0', async () => {
    await arrives(1.5, 'type(x) is float and x == 1.5');
    await arrives(0.1, 'type(x) is float and x == 0.1');
    await arrives(-2.75e-300, 'type(x) is float and x == -2.75e-300');
    await arrives(NaN, 'type(x) is float and math.isnan(x)');
    await arrives(Infinity, "type(x) is float and x == float('inf')");
    await arrives(-Infinity, "type(x) is float and x == float('-inf')");
    await arrives(-0, 'type(x) is float and x == 0 and math.copysign(1, x) == -1');
  });

  test('bigint → int, exactly (2**70 and -2**70)', async () => {
    await arrives(2n ** 70n, 'type(x) is int and x == 2**70');
    await arrives(-(2n ** 70n), 'type(x) is int and x == -2**70');
    await arrives(5n, 'type(x) is int and x == 5');
    await arrives(0n, 'type(x) is int and x == 0');
    await arrives(2n ** 1000n + 1n, 'x == 2**1000 + 1');
    await arrives(-(2n ** 64n), 'x == -2**64');
  });

  test('string → str, lone surrogates kept', async () => {
    await arrives('', "x == ''");
    await arrives('héllo wörld', "x == 'h\\xe9llo w\\xf6rld'");
    await arrives('😀', "x == '\\U0001f600' and len(x) == 1");
    await arrives('\ud800', "x == '\\ud800' and len(x) == 1");
    await arrives('a\udfffb', "x == 'a\\udfffb'");
    await arrives('\udc00\ud800', "x == '\\udc00\\ud800'");
    await arrives('\ufeffbom', "x == '\\ufeffbom'");
    await arrives('a\0b', "x == 'a\\x00b'");
    await arrives('x'.repeat(100_000), "x == 'x' * 100000");
  });

  test('boolean → bool; null and undefined → None', async () => {
    await arrives(true, 'x is True');
    await arrives(false, 'x is False');
    await arrives(null, 'x is None');
    await arrives(undefined, 'x is None');
    await arrives([undefined, null], 'x == [None, None]');
    await arrives({ a: undefined }, "x == {'a': None}");
  });

  test('Uint8Array and Buffer → bytes', async () => {
    await arrives(new Uint8Array([0, 1, 255]), "type(x) is bytes and x == b'\\x00\\x01\\xff'");
    await arrives(Buffer.from('hi'), "type(x) is bytes and x == b'hi'");
    await arrives(new Uint8Array(0), "x == b''");
    await arrives(new Uint8Array([1, 2, 3, 4]).subarray(1, 3), "x == b'\\x02\\x03'");
    await arrives(new Uint8Array(5_000_000).fill(7), "len(x) == 5_000_000 and x[-1] == 7");
  });

  test('Array → list; tuple(...) → tuple', async () => {
    await arrives([1, 'a', [2]], "type(x) is list and x == [1, 'a', [2]]");
    await arrives([], 'x == []');
    await arrives(tuple(1, 'a'), "type(x) is tuple and x == (1, 'a')");
    await arrives(tuple(), 'x == ()');
    await arrives([tuple(1, tuple(2, [3]))], 'type(x[0]) is tuple and type(x[0][1]) is tuple and x == [(1, (2, [3]))]');
    await arrives(Array.from({ length: 100_000 }, (_, i) => i), 'x == list(range(100000))');
  });

  test('plain object → dict with str keys', async () => {
    await arrives({ a: 1, b: { c: [true] } }, "type(x) is dict and x == {'a': 1, 'b': {'c': [True]}}");
    await arrives({}, 'x == {}');
    await arrives({ 1: 'one' }, "x == {'1': 'one'}");
    await arrives(Object.assign(Object.create(null), { a: 1 }), "x == {'a': 1}");
    await arrives(JSON.parse('{"__proto__": {"polluted": 1}}'), "x == {'__proto__': {'polluted': 1}}");
  });

  test('Map → dict (keys of any type; array keys become tuples)', async () => {
    await arrives(new Map<unknown, unknown>([[1, 'a'], ['b', 2], [null, 3], [false, 4], [1.5, 5]]), "x == {1: 'a', 'b': 2, None: 3, False: 4, 1.5: 5} and list(x) == [1, 'b', None, False, 1.5]");
    await arrives(new Map([[[1, 2], 'pair']]), "x == {(1, 2): 'pair'}");
    await arrives(new Map([[tuple(1, 'a'), 'pair']]), "x == {(1, 'a'): 'pair'}");
    await arrives(new Map([[2n ** 70n, 'big']]), "x == {2**70: 'big'}");
    await arrives(new Map(), 'type(x) is dict and x == {}');
  });

  test('Set → set', async () => {
    await arrives(new Set([1, 'a', null]), "type(x) is set and x == {1, 'a', None}");
    await arrives(new Set(), 'type(x) is set and x == set()');
    await arrives(new Set([[1, 2]]), 'x == {(1, 2)}');
  });

  test('Date → timezone-aware datetime in UTC', async () => {
    await arrives(
      new Date(Date.UTC(2024, 1, 29, 12, 30, 15, 250)),
      'type(x) is datetime.datetime and x.tzinfo is not None and x.utcoffset() == datetime.timedelta(0) and x == datetime.datetime(2024, 2, 29, 12, 30, 15, 250000, tzinfo=UTC)',
    );
    await arrives(new Date(0), 'x == datetime.datetime(1970, 1, 1, tzinfo=UTC)');
    await arrives(new Date(-1), 'x == datetime.datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)');
    await arrives(new Date('0001-01-01T00:00:00Z'), 'x == datetime.datetime(1, 1, 1, tzinfo=UTC)');
    await arrives(new Date('9999-12-31T23:59:59.999Z'), 'x == datetime.datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)');
  });

  test('arguments, kwargs and locals all convert the same way', async () => {
    const value = { n: 1, f: 1.5, big: 2n ** 70n, s: '\ud800', b: new Uint8Array([1]), t: tuple(1), m: new Map([[1, 2]]), d: new Date(0) };
    const expected = "{'n': 1, 'f': 1.5, 'big': 2**70, 's': '\\ud800', 'b': b'\\x01', 't': (1,), 'm': {1: 2}, 'd': datetime.datetime(1970, 1, 1, tzinfo=UTC)}";
    assert.equal(await shared.eval(`x == ${expected}`, { x: value }), true);
    await shared.exec(`def check(x, *, y):\n    return x == ${expected} and y == ${expected}`);
    assert.equal(await shared.call('__main__', 'check', [value], { kwargs: { y: value } }), true);
  });
});

describe('Python → JavaScript', () => {
  const cases: Array<[string, unknown]> = [
    ['42', 42],
    ['-7', -7],
    ['0', 0],
    ['2**53 - 1', Number.MAX_SAFE_INTEGER],
    ['-(2**53 - 1)', -Number.MAX_SAFE_INTEGER],
    ['2**53', 2n ** 53n],
    ['2**70', 1180591620717411303424n],
    ['-2**70', -1180591620717411303424n],
    ['2**200', 2n ** 200n],
    ['1.5', 1.5],
    ['16.0', 16],
    ['float("nan")', NaN],
    ['float("inf")', Infinity],
    ['float("-inf")', -Infinity],
    ['-0.0', -0],
    ['"text"', 'text'],
    ['"\\ud800"', '\ud800'],
    ['"a\\udfffb\\U0001f600"', 'a\udfffb😀'],
    ['"\\ufeff"', '\ufeff'],
    ['True', true],
    ['False', false],
    ['None', null],
    ['b"\\x00\\x01"', new Uint8Array([0, 1])],
    ['bytearray(b"xy")', new Uint8Array([120, 121])],
    ['[1, "a", None]', [1, 'a', null]],
    ['(1, (2, [3]))', [1, [2, [3]]]],
    ['()', []],
    ['{"a": 1, "b": {"c": [True]}}', { a: 1, b: { c: [true] } }],
    ['{}', {}],
    ['{1: "a"}', new Map([[1, 'a']])],
    ['{"a": 1, 2: "b"}', new Map<unknown, unknown>([['a', 1], [2, 'b']])],
    ['{(1, 2): "pair"}', new Map([[[1, 2], 'pair']])],
    ['{None: 0, b"k": 1}', new Map<unknown, unknown>([[null, 0], [new Uint8Array([107]), 1]])],
    ['{1, 2}', new Set([1, 2])],
    ['frozenset(["a"])', new Set(['a'])],
    ['set()', new Set()],
    ['datetime.datetime(2024, 2, 29, 12, 30, 15, 250000, tzinfo=UTC)', new Date(Date.UTC(2024, 1, 29, 12, 30, 15, 250))],
    ['datetime.datetime(2020, 1, 1, 2, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))', new Date(Date.UTC(2020, 0, 1))],
    ['[[1, {"k": (2, {3})}], {"n": [None]}]', [[1, { k: [2, new Set([3])] }], { n: [null] }]],
  ];
  for (const [expr, expected] of cases) {
    test(expr, async () => assert.deepStrictEqual(await shared.eval(expr), expected));
  }

  test('int → number when safe, else bigint', async () => {
    assert.equal(typeof (await shared.eval('2**53 - 1')), 'number');
    assert.equal(typeof (await shared.eval('2**53')), 'bigint');
    assert.equal(typeof (await shared.eval('-(2**53)')), 'bigint');
    assert.equal(await shared.eval('sum([2**70, -2**70])'), 0);
  });

  test('-0.0 stays -0; NaN and infinities are kept', async () => {
    assert.ok(Object.is(await shared.eval('-0.0'), -0));
    const [nan, inf, ninf] = await shared.eval('[float("nan"), math.inf, -math.inf]');
    assert.ok(Number.isNaN(nan));
    assert.equal(inf, Infinity);
    assert.equal(ninf, -Infinity);
  });

  test('tuples arrive as plain arrays', async () => {
    const t = await shared.eval('(1, 2)');
    assert.ok(Array.isArray(t));
    assert.equal(isTuple(t), false);
  });

  test('bytes and bytearray are Uint8Arrays', async () => {
    const b = await shared.eval('bytes(range(256)) * 4096');
    assert.ok(b instanceof Uint8Array);
    assert.equal(b.length, 256 * 4096);
    assert.equal(b[257], 1);
    assert.ok((await shared.eval('bytearray(3)')) instanceof Uint8Array);
  });

  test('dicts with all-str keys are plain objects (subclasses too); other dicts are Maps', async () => {
    const obj = await shared.eval('{"b": 1, "a": 2}');
    assert.equal(Object.getPrototypeOf(obj), Object.prototype);
    assert.deepEqual(Object.keys(obj), ['b', 'a']);
    assert.deepStrictEqual(await shared.eval('__import__("collections").OrderedDict(a=1)'), { a: 1 });
    assert.deepStrictEqual(await shared.eval('__import__("collections").Counter("aab")'), { a: 2, b: 1 });
    const m = await shared.eval('{"z": 1, 5: 2, "a": 3}');
    assert.ok(m instanceof Map);
    assert.deepEqual([...m.keys()], ['z', 5, 'a'], 'in Python order');
  });

  test('a dict key __proto__ is an ordinary own property and changes no prototype', async () => {
    const value = await shared.eval('[{"__proto__": {"polluted": 1}, "constructor": 2, "x": 3}]');
    const obj = value[0];
    assert.equal(Object.getPrototypeOf(obj), Object.prototype);
    assert.deepEqual(Object.keys(obj), ['__proto__', 'constructor', 'x']);
    assert.ok(Object.prototype.hasOwnProperty.call(obj, '__proto__'));
    assert.deepStrictEqual(Object.getOwnPropertyDescriptor(obj, '__proto__')?.value, { polluted: 1 });
    assert.equal(obj.polluted, undefined);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal((Object.prototype as unknown as Record<string, unknown>).polluted, undefined);
    const top = await shared.eval('{"__proto__": None}');
    assert.equal(Object.getPrototypeOf(top), Object.prototype);
    assert.ok(Object.prototype.hasOwnProperty.call(top, '__proto__'));
    assert.equal(await shared.eval('{"__proto__": 5}["__proto__"]'), 5);
  });

  test('datetime → Date; a naive datetime is local time, as datetime.timestamp() takes it', async () => {
    const p = await pool({ env: { TZ: 'America/New_York' } });
    await p.exec('import datetime');
    const naive = await p.eval('datetime.datetime(2020, 1, 1, 0, 0)');
    assert.ok(naive instanceof Date);
    assert.equal(naive.toISOString(), '2020-01-01T05:00:00.000Z');
    assert.equal(naive.getTime(), (await p.eval('datetime.datetime(2020, 1, 1, 0, 0).timestamp()')) * 1000);
    const micro = await p.eval('datetime.datetime(2020, 1, 1, 0, 0, 0, 123999, tzinfo=datetime.timezone.utc)');
    assert.equal(micro.toISOString(), '2020-01-01T00:00:00.123Z', 'microseconds are cut to milliseconds');
  });

  test('memoryviews and array.arrays arrive as NDArrays of their element type; other bytes-like objects as bytes', async () => {
    const mv = (await shared.eval('memoryview(b"mv")')) as NDArray;
    assert.ok(mv instanceof NDArray);
    assert.deepStrictEqual([mv.dtype, mv.shape, [...mv.data]], ['uint8', [2], [109, 118]]);
    const arr = (await shared.eval('__import__("array").array("B", [1, 2, 3])')) as NDArray;
    assert.deepStrictEqual([arr.dtype, arr.shape, [...arr.data]], ['uint8', [3], [1, 2, 3]]);
    assert.deepStrictEqual(await shared.eval('bytearray(b"ba")'), new Uint8Array([98, 97]));
    assert.deepStrictEqual(await shared.eval('__import__("mmap").mmap(-1, 3)'), new Uint8Array([0, 0, 0]));
  });
});

describe('round trips', () => {
  test('values come back exactly', async () => {
    const values: unknown[] = [
      0, -1, 1.5, NaN, Infinity, -Infinity, -0, 2 ** 53 - 1, 2n ** 70n, -(2n ** 70n), '', 'text', '\ud800', 'a\udfffb', '😀',
      true, false, null, new Uint8Array([1, 2, 3]), [], [1, [2, [3]]], {}, { a: { b: [1, 'x'] } }, new Map<unknown, unknown>([[1, 2], [null, 'n']]),
      new Set([1, 'a']), new Date(Date.UTC(2000, 0, 1, 0, 0, 0, 1)), [new Map([[2, new Set([3])]])],
    ];
    for (const value of values) assert.deepStrictEqual(await shared.call('__main__', 'identity', [value]), value, String(value));
    assert.deepStrictEqual(await shared.call('__main__', 'identity', [values]), values);
  });

  test('what changes on the way: undefined → null, tuple → array, Map with str keys → object, Buffer → Uint8Array', async () => {
    assert.equal(await shared.call('__main__', 'identity', [undefined]), null);
    assert.deepStrictEqual(await shared.call('__main__', 'identity', [tuple(1, 2)]), [1, 2]);
    assert.deepStrictEqual(await shared.call('__main__', 'identity', [new Map([['a', 1]])]), { a: 1 });
    const b = await shared.call('__main__', 'identity', [Buffer.from('ab')]);
    assert.equal(Object.getPrototypeOf(b), Uint8Array.prototype);
    assert.deepEqual([...b], [97, 98]);
  });
});

describe('refused with a ConversionError', () => {
  test('cyclic JavaScript structures, with the path; the pool stays healthy', async () => {
    const p = await pool();
    const pid = p.stats().perWorker[0]!.pid;
    const arr: unknown[] = [1];
    arr.push(arr);
    const obj: Record<string, unknown> = { a: { b: 1 } };
    (obj.a as Record<string, unknown>).back = obj;
    const map = new Map<string, unknown>();
    map.set('self', map);
    for (const [value, where] of [[arr, /args\[0\]/], [obj, /args\[0\]\.a/], [map, /args\[0\]/]] as const) {
      await assert.rejects(p.call('builtins', 'len', [value]), conversionError(/cycl/));
      await assert.rejects(p.call('builtins', 'len', [value]), (e: ConversionError) => where.test(e.message));
    }
    await healthy(p, pid);
  });

  test('cyclic Python structures', async () => {
    const p = await pool();
    const pid = p.stats().perWorker[0]!.pid;
    await assert.rejects(p.exec('a = [1]\na.append(a)').then(() => p.eval('a')), conversionError(/cycl/));
    await assert.rejects(p.exec('d = {}\nd["self"] = [d]').then(() => p.eval('d')), conversionError(/cycl/));
    await healthy(p, pid);
  });

  test('functions, symbols and class instances, with the type or the path', async () => {
    const p = await pool();
    const pid = p.stats().perWorker[0]!.pid;
    class Point {
      x = 1;
    }
    await assert.rejects(p.call('builtins', 'len', [() => 1]), conversionError(/function/));
    await assert.rejects(p.call('builtins', 'len', [[1, { cb: function named() {} }]]), conversionError(/args\[0\]\[1\]\.cb/));
    await assert.rejects(p.call('builtins', 'len', [Symbol('s')]), conversionError(/symbol/));
    await assert.rejects(p.eval('x', { x: { s: Symbol.iterator } }), conversionError(/locals\.x\.s/));
    await assert.rejects(p.call('builtins', 'len', [new Point()]), conversionError(/Point/));
    await assert.rejects(p.call('builtins', 'len', [[]], { kwargs: { k: new Point() } }), conversionError(/kwargs\.k/));
    for (const value of [/re/, Promise.resolve(), new Error('e'), new WeakMap()]) {
      await assert.rejects(p.eval('x', { x: value }), conversionError(new RegExp(value.constructor.name)));
    }
    await assert.rejects(p.eval('x', { x: new Date(NaN) }), conversionError(/Date/));
    await assert.rejects(p.eval('x', { x: new Set([new Set([1])]) }), conversionError(/unhashable/));
    await healthy(p, pid);
  });

  test('Python objects the table does not cover, named by their type', async () => {
    const p = await pool();
    const pid = p.stats().perWorker[0]!.pid;
    await p.exec('class Foo:\n    pass\nimport decimal');
    await assert.rejects(p.eval('object()'), conversionError(/'object'/));
    await assert.rejects(p.eval('1j'), conversionError(/complex/));
    await assert.rejects(p.eval('Foo()'), conversionError(/Foo/));
    await assert.rejects(p.eval('decimal.Decimal(1)'), conversionError(/Decimal/));
    await assert.rejects(p.eval('(i for i in range(3))'), conversionError(/generator/));
    await assert.rejects(p.eval('len'), conversionError(/builtin_function_or_method/));
    await assert.rejects(p.eval('__import__("math")'), conversionError(/module/));
    await assert.rejects(p.eval('[1, {"k": Foo()}]'), conversionError(/Foo.*result\[1\]\['k'\]/s));
    await assert.rejects(p.call('builtins', 'object'), conversionError(/object/));
    // the message names the type once
    const error = (await p.eval('Foo()').catch((e: Error) => e)) as Error;
    assert.equal(error.message.split("'__main__.Foo'").length - 1, 1, error.message);
    await healthy(p, pid);
  });

  test(`the nesting limit MAX_DEPTH (${MAX_DEPTH}) levels pass both ways; one more is refused`, async () => {
    assert.equal(MAX_DEPTH, 1000);
    assert.equal(await shared.call('__main__', 'depth', [nestJs(MAX_DEPTH - 1)]), MAX_DEPTH - 1);
    assert.equal(jsDepth(await shared.call('__main__', 'nest', [MAX_DEPTH])), MAX_DEPTH);
    assert.equal(jsDepth(await shared.call('__main__', 'nest', [MAX_DEPTH, 'dict'])), MAX_DEPTH);
    await assert.rejects(shared.call('__main__', 'nest', [MAX_DEPTH + 1]), conversionError(/1000/));
    await assert.rejects(shared.call('__main__', 'nest', [MAX_DEPTH + 1, 'dict']), conversionError(/1000/));
    await assert.rejects(shared.call('__main__', 'depth', [nestJs(MAX_DEPTH + 1)]), conversionError(/1000/));
    await healthy(shared);
  });

  test(`a value nested MAX_DEPTH levels deep passes as an argument, a kwarg, a local, a result and a stream item`, async () => {
    const deep = nestJs(MAX_DEPTH);
    const positions: Record<string, () => Promise<number>> = {
      result: async () => jsDepth(await shared.call('__main__', 'nest', [MAX_DEPTH])),
      argument: () => shared.call('__main__', 'depth', [deep]),
      kwarg: () => shared.call('__main__', 'depth', [], { kwargs: { x: deep } }),
      local: () => shared.eval('depth(x)', { x: deep }),
      'stream item': async () => jsDepth((await shared.streamEval(`iter([nest(${MAX_DEPTH})])`).toArray())[0]),
    };
    const refused: string[] = [];
    for (const [where, attempt] of Object.entries(positions)) {
      try {
        assert.equal(await attempt(), MAX_DEPTH, where);
      } catch (error) {
        if (!(error instanceof ConversionError)) throw error;
        refused.push(where);
      }
    }
    assert.deepEqual(refused, [], `refused as: ${refused.join(', ')}`);
  });

  test('a 1,000,000-deep list crashes neither side (JavaScript → Python)', async () => {
    const p = await pool();
    const pid = p.stats().perWorker[0]!.pid;
    const deep = nestJs(1_000_000);
    await assert.rejects(p.call('builtins', 'len', [deep]), conversionError(/1000/));
    let obj: Record<string, unknown> = {};
    for (let i = 0; i < 1_000_000; i++) obj = { o: obj };
    await assert.rejects(p.eval('x', { x: obj }), conversionError(/1000/));
    let map = new Map();
    for (let i = 0; i < 1_000_000; i++) map = new Map([[1, map]]);
    await assert.rejects(p.eval('x', { x: map }), conversionError(/1000/));
    await healthy(p, pid);
  });

  test('a 1,000,000-deep list crashes neither side (Python → JavaScript)', async () => {
    const p = await pool();
    const pid = p.stats().perWorker[0]!.pid;
    await p.exec('deep_list = []\nfor _ in range(1_000_000):\n    deep_list = [deep_list]\ndeep_dict = {}\nfor _ in range(1_000_000):\n    deep_dict = {"k": deep_dict}');
    await assert.rejects(p.eval('deep_list'), conversionError(/1000/));
    await assert.rejects(p.eval('deep_dict'), conversionError(/1000/));
    await assert.rejects(p.eval('(deep_list,)'), conversionError(/1000/));
    await assert.rejects(p.streamEval('iter([1, deep_list])').toArray(), conversionError(/1000/));
    await healthy(p, pid);
  });

  test("a Date outside Python's datetime range is a ConversionError", async () => {
    await assert.rejects(shared.eval('x', { x: new Date(8.64e15) }), conversionError(/Date|datetime|range/));
    await assert.rejects(shared.eval('x', { x: new Date(-8.64e15) }), conversionError(/Date|datetime|range/));
    await healthy(shared);
  });

  test('the encoder and the worker are fine after every refusal', async () => {
    const p = await pool();
    const pid = p.stats().perWorker[0]!.pid;
    const arr: unknown[] = [];
    arr.push(arr);
    for (let i = 0; i < 20; i++) {
      await assert.rejects(p.call('builtins', 'len', [[1, 2, arr]]), conversionError());
      assert.deepStrictEqual(await p.call('builtins', 'list', [[1, 2, 3]]), [1, 2, 3]);
      await assert.rejects(p.eval('object()'), conversionError());
    }
    await healthy(p, pid);
    assert.equal(p.stats().restarts, 0);
  });
});
