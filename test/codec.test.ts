/**
 * The marshal codec, checked against the real `marshal` module of a real Python in both directions.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';

import { ConversionError } from '../src/errors.js';
import { decode, MAX_DEPTH as DECODE_MAX_DEPTH } from '../src/protocol/decode.js';
import { Encoder, MAX_DEPTH } from '../src/protocol/encode.js';
import { isTuple, tuple } from '../src/protocol/tuple.js';

const PYTHON =
  process.env.PYWORKERS_TEST_PYTHON ??
  (existsSync('/root/.pyenv/versions/3.11.7/bin/python3') ? '/root/.pyenv/versions/3.11.7/bin/python3' : 'python3');

/** Reads (op, arg, extra) messages, each a uint32 LE length + marshal data, and answers status byte + marshal. */
const SCRIPT = String.raw`
import sys, marshal, traceback
r = sys.stdin.buffer
w = sys.stdout.buffer
while True:
    h = r.read(4)
    if len(h) < 4:
        break
    data = r.read(int.from_bytes(h, 'little'))
    try:
        op, arg, extra = marshal.loads(data)
        if op == 'ascii':
            res = ascii(arg)
        elif op == 'echo':
            res = arg
        elif op == 'eval':
            res = eval(arg)
        elif op == 'exec':
            ns = {'value': extra}
            exec(arg, ns)
            res = ns['result']
        elif op == 'dumps':
            res = marshal.dumps(eval(arg), 4)
        else:
            raise ValueError(op)
        out = b'\x00' + marshal.dumps(res, 4)
    except BaseException:
        out = b'\x01' + traceback.format_exc().encode('utf-8', 'backslashreplace')
    w.write(len(out).to_bytes(4, 'little') + out)
    w.flush()
`;

class Peer {
  private readonly proc: ChildProcessWithoutNullStreams;
  private pending: Buffer = Buffer.alloc(0);
  private readonly waiting: Array<(b: Buffer) => void> = [];
  private stderr = '';

  constructor() {
    this.proc = spawn(PYTHON, ['-c', SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stderr.on('data', (c: Buffer) => (this.stderr += c.toString()));
    this.proc.stdout.on('data', (c: Buffer) => {
      this.pending = this.pending.length ? Buffer.concat([this.pending, c]) : c;
      while (this.pending.length >= 4) {
        const n = this.pending.readUInt32LE(0);
        if (this.pending.length < 4 + n) break;
        // a copy, so each reply is its own buffer
        const msg = Buffer.from(this.pending.subarray(4, 4 + n));
        this.pending = this.pending.subarray(4 + n);
        this.waiting.shift()!(msg);
      }
    });
  }

  /** Send a finished frame (4 reserved bytes + marshal) and get the reply's marshal payload. */
  async roundTrip(frame: Buffer): Promise<Buffer> {
    frame.writeUInt32LE(frame.length - 4, 0);
    const reply = new Promise<Buffer>((resolve) => this.waiting.push(resolve));
    this.proc.stdin.write(frame);
    const msg = await reply;
    if (msg[0] !== 0) throw new Error(`Python failed:\n${msg.subarray(1).toString()}\n${this.stderr}`);
    return msg.subarray(1);
  }

  async request(op: string, arg: unknown, extra: unknown = null): Promise<Buffer> {
    const enc = new Encoder();
    enc.begin(4);
    enc.tupleHeader(3);
    enc.str(op);
    enc.value(arg, 'arg');
    enc.value(extra, 'extra');
    return this.roundTrip(enc.end());
  }

  async call(op: string, arg: unknown, extra: unknown = null, extended = false): Promise<unknown> {
    const payload = await this.request(op, arg, extra);
    return decode(payload, 0, payload.length, extended);
  }

  /** `ascii(value)` as Python sees it. */
  ascii(v: unknown): Promise<unknown> {
    return this.call('ascii', v);
  }
  /** JS → Python → JS. */
  echo(v: unknown, extended = false): Promise<unknown> {
    return this.call('echo', v, null, extended);
  }
  /** A Python expression's value. */
  eval(expr: string, extended = false): Promise<unknown> {
    return this.call('eval', expr, null, extended);
  }
  /** Run Python code with `value` bound to `v`; returns its `result`. */
  exec(code: string, v: unknown = null, extended = false): Promise<unknown> {
    return this.call('exec', code, v, extended);
  }
  /** The raw `marshal.dumps(<expr>, 4)` bytes. */
  async dumps(expr: string): Promise<Buffer> {
    return Buffer.from((await this.call('dumps', expr)) as Uint8Array);
  }

  close(): void {
    this.proc.stdin.end();
  }
}

let py: Peer;
before(() => {
  py = new Peer();
});
after(() => py.close());

function encode(v: unknown, path = 'args'): Buffer {
  const enc = new Encoder();
  enc.begin(0);
  enc.value(v, path);
  return enc.end();
}

function conversionError(fn: () => unknown, message: RegExp, path?: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ConversionError, `expected ConversionError, got ${String(e)}`);
    assert.match(e.message, message);
    if (path !== undefined) assert.equal(e.path, path);
    return true;
  });
}

function nestJs(levels: number): unknown {
  let x: unknown = [];
  for (let i = 1; i < levels; i++) x = [x];
  return x;
}

const codePoints = (s: string): number[] => Array.from(s, (c) => c.codePointAt(0)!);

describe('tuple()', () => {
  test('is a frozen, branded array', () => {
    const t = tuple(1, 'a');
    assert.ok(Array.isArray(t));
    assert.ok(Object.isFrozen(t));
    assert.ok(isTuple(t));
    assert.deepEqual(Object.keys(t), ['0', '1']);
    assert.equal((t as unknown as Record<symbol, unknown>)[Symbol.for('pyworkers.tuple')], true);
    assert.equal(isTuple([1, 'a']), false);
    assert.equal(isTuple({ [Symbol.for('pyworkers.tuple')]: true }), false);
  });
  test('MAX_DEPTH', () => {
    assert.equal(MAX_DEPTH, 1000);
    assert.equal(DECODE_MAX_DEPTH, 1000);
  });
});

describe('JavaScript → Python', () => {
  const cases: Array<[string, unknown, string]> = [
    ['null', null, 'None'],
    ['undefined', undefined, 'None'],
    ['true', true, 'True'],
    ['false', false, 'False'],
    ['0', 0, '0'],
    ['-1', -1, '-1'],
    ['int32 max', 2 ** 31 - 1, '2147483647'],
    ['-2**31', -(2 ** 31), '-2147483648'],
    ['2**31', 2 ** 31, '2147483648'],
    ['-2**31-1', -(2 ** 31) - 1, '-2147483649'],
    ['2**32', 2 ** 32, '4294967296'],
    ['2**53-1', 2 ** 53 - 1, '9007199254740991'],
    ['-(2**53-1)', -(2 ** 53 - 1), '-9007199254740991'],
    ['2**53', 2 ** 53, '9007199254740992'],
    ['2**64', 2 ** 64, '18446744073709551616'],
    ['1e300', 1e300, BigInt(1e300).toString()],
    ['-1e300', -1e300, BigInt(-1e300).toString()],
    ['max double', Number.MAX_VALUE, BigInt(Number.MAX_VALUE).toString()],
    ['1.5', 1.5, '1.5'],
    ['0.1', 0.1, '0.1'],
    ['-2.5', -2.5, '-2.5'],
    ['5e-324', 5e-324, '5e-324'],
    ['NaN', NaN, 'nan'],
    ['Infinity', Infinity, 'inf'],
    ['-Infinity', -Infinity, '-inf'],
    ['-0', -0, '-0.0'],
    ['0n', 0n, '0'],
    ['-1n', -1n, '-1'],
    ['2n**31n', 2n ** 31n, '2147483648'],
    ['-(2n**31n)', -(2n ** 31n), '-2147483648'],
    ['2n**53n+1n', 2n ** 53n + 1n, '9007199254740993'],
    ['2n**70n', 2n ** 70n, (2n ** 70n).toString()],
    ['-(2n**70n)', -(2n ** 70n), (-(2n ** 70n)).toString()],
    ['2n**64n-1n', 2n ** 64n - 1n, (2n ** 64n - 1n).toString()],
    ['2n**1000n+12345n', 2n ** 1000n + 12345n, (2n ** 1000n + 12345n).toString()],
    ['-(16n**100n)', -(16n ** 100n), (-(16n ** 100n)).toString()],
    ['empty str', '', "''"],
    ['ascii', 'abc', "'abc'"],
    ['latin-1', 'é', "'\\xe9'"],
    ['emoji', '😀', "'\\U0001f600'"],
    ['lone high surrogate', '\ud800', "'\\ud800'"],
    ['lone low surrogate inside', 'a\udfffb', "'a\\udfffb'"],
    ['reversed pair', '\udc00\ud800', "'\\udc00\\ud800'"],
    ['surrogate at end after emoji', '😀\ud83d', "'\\U0001f600\\ud83d'"],
    ['BOM', '\ufeffhello', "'\\ufeffhello'"],
    ['only BOM', '\ufeff', "'\\ufeff'"],
    ['U+FFFD', '\ufffd', "'\\ufffd'"],
    ['NUL', 'a\0b', "'a\\x00b'"],
    ['empty bytes', new Uint8Array(0), "b''"],
    ['Uint8Array', new Uint8Array([0, 1, 255]), "b'\\x00\\x01\\xff'"],
    ['Buffer', Buffer.from('hi'), "b'hi'"],
    ['subarray', new Uint8Array([1, 2, 3, 4]).subarray(2), "b'\\x03\\x04'"],
    ['ArrayBuffer', new Uint8Array([9, 8]).buffer, "b'\\t\\x08'"],
    ['empty list', [], '[]'],
    ['list', [1, 'a', null], "[1, 'a', None]"],
    ['holes', [, 1, , ], '[None, 1, None]'], // eslint-disable-line no-sparse-arrays
    ['nested lists', [1, [2, [3, []]]], '[1, [2, [3, []]]]'],
    ['empty tuple', tuple(), '()'],
    ['1-tuple', tuple(1), '(1,)'],
    ['tuple in list', [tuple(1, tuple('a', [])), 2], "[(1, ('a', [])), 2]"],
    ['empty dict', {}, '{}'],
    ['dict', { a: 1, b: [true, { c: null }] }, "{'a': 1, 'b': [True, {'c': None}]}"],
    ['undefined value', { a: undefined }, "{'a': None}"],
    ['null prototype', Object.assign(Object.create(null), { x: 1 }), "{'x': 1}"],
    ['symbol keys ignored', { a: 1, [Symbol('s')]: 2 }, "{'a': 1}"],
    ['__proto__ key', JSON.parse('{"__proto__": 1}'), "{'__proto__': 1}"],
    ['non-identifier keys', { 'a b': 1, '': 2, é: 3 }, "{'a b': 1, '': 2, '\\xe9': 3}"],
    ['empty Map', new Map(), '{}'],
    [
      'Map',
      new Map<unknown, unknown>([
        [1, 'a'],
        ['b', 2],
        [null, 3],
        [false, 4.5],
        [2n ** 70n, 5],
      ]),
      `{1: 'a', 'b': 2, None: 3, False: 4.5, ${2n ** 70n}: 5}`,
    ],
    ['Map with array keys → tuples', new Map([[[1, [2, 'x']], 'v']]), "{(1, (2, 'x')): 'v'}"],
    ['Map with tuple key', new Map([[tuple(1, 2), 'v']]), "{(1, 2): 'v'}"],
    ['Map with bytes key', new Map([[new Uint8Array([1]), 'v']]), "{b'\\x01': 'v'}"],
    ['Map with boxed key', new Map([[new String('k'), 1]]), "{'k': 1}"],
    ['empty Set', new Set(), 'set()'],
    ['Set', new Set(['a']), "{'a'}"],
    ['Set of arrays → tuples', new Set([[1, 2]]), '{(1, 2)}'],
    ['boxed Number', new Number(3), '3'],
    ['boxed String', new String('s'), "'s'"],
    ['boxed Boolean', new Boolean(false), 'False'],
    ['boxed BigInt', Object(2n ** 70n), (2n ** 70n).toString()],
    ['Date', new Date(1700000000123), "(Ellipsis, 'D', 1700000000123)"],
    ['shared reference', (() => { const x = [1]; return [x, x, { x }]; })(), "[[1], [1], {'x': [1]}]"],
  ];
  for (const [name, value, expected] of cases) {
    test(name, async () => assert.equal(await py.ascii(value), expected));
  }

  test('long tuples use the 4-byte header', async () => {
    const t = tuple(...Array.from({ length: 300 }, (_, i) => i));
    assert.deepEqual(await py.exec('result = [type(value).__name__, len(value), value[299]]', t), ['tuple', 300, 299]);
    assert.equal(encode(t)[0], 0x28);
    assert.equal(encode(tuple(1))[0], 0x29);
  });

  test('strings keep every code point, surrogatepass', async () => {
    const strings = [
      '\ud800',
      'a\udfffb',
      '\ufeff',
      '\ufeffx\ud800',
      '😀😀',
      'x'.repeat(255),
      'x'.repeat(256),
      'é'.repeat(200),
      'é'.repeat(100_000),
      '\ud800'.repeat(300),
      '😀\udc00'.repeat(1000),
      'a'.repeat(31) + 'é',
      'a'.repeat(33) + '\udfff',
      '\u0800\uffff\u07ff',
    ];
    for (const s of strings) {
      const [len, cps] = (await py.exec('result = [len(value), [ord(c) for c in value]]', s)) as [number, number[]];
      assert.equal(len, codePoints(s).length);
      assert.deepEqual(cps, codePoints(s));
    }
  });

  test('never uses the interned string codes', () => {
    const buf = encode(['abc', 'x'.repeat(300), 'é', { key: 1 }]);
    assert.equal(buf[0], 0x5b); // '[' + int32
    assert.equal(buf[5], 0x7a); // 'z' abc
    assert.equal(buf[10], 0x61); // 'a' + int32 + 300
    assert.equal(buf[315], 0x75); // 'u' + int32 + 2
    assert.equal(buf[322], 0x7b); // '{'
    assert.equal(buf[323], 0x7a | 0x80); // 'z' | FLAG_REF: the key
  });

  test("Date is the tag (Ellipsis, 'D', ms) and sets tagged", async () => {
    const enc = new Encoder();
    enc.begin(0);
    enc.value([1, 'x'], 'args');
    assert.equal(enc.tagged, false);
    enc.value({ when: new Date(86_400_000) }, 'kwargs');
    assert.equal(enc.tagged, true);
    enc.end();
    assert.equal(enc.tagged, true);
    enc.begin(0);
    assert.equal(enc.tagged, false);
    enc.end();
    const res = await py.exec('result = [type(value).__name__, value[1], value[2]]', new Date(-1234));
    assert.deepEqual(res, ['tuple', 'D', -1234]);
    conversionError(() => encode({ d: new Date(NaN) }), /invalid Date/, 'args.d');
  });

  test('numbers: int or float exactly as specified', async () => {
    const types = await py.exec('result = [type(v).__name__ for v in value]', [1, 1.5, -0, 0, 2 ** 53, 1e300, NaN, 2n, 3.0]);
    assert.deepEqual(types, ['int', 'float', 'float', 'int', 'int', 'int', 'float', 'int', 'int']);
    assert.equal(await py.exec('result = value == int(1e300) and value == 10**300 + (int(1e300) - 10**300)', 1e300), true);
  });

  test('repeated dict keys (refs) arrive intact', async () => {
    const rows = Array.from({ length: 50 }, (_, i) => ({ id: i, name: `n${i}`, tags: { id: -i, name: 'x' } }));
    assert.deepEqual(await py.echo(rows), rows);
    assert.equal(
      await py.exec("result = all(r['id'] == i and r['tags']['name'] == 'x' for i, r in enumerate(value))", rows),
      true,
    );
    // more distinct keys than the ref table holds
    const wide: Record<string, number> = {};
    for (let i = 0; i < 10_000; i++) wide[`k${i}`] = i;
    const many = [wide, wide, { k1: 'again', k9999: 'again' }];
    assert.deepEqual(await py.echo(many), many);
    // long keys, Map string keys and raw dict keys share the same table
    const long = 'L'.repeat(100);
    const m = new Map<unknown, unknown>([
      ['id', 1],
      [long, 2],
      [3, 'id'],
    ]);
    const v = [{ id: 0, [long]: 1 }, m, { id: 2, [long]: 3 }];
    assert.deepEqual(await py.echo(v), [{ id: 0, [long]: 1 }, m, { id: 2, [long]: 3 }]);
  });

  test('raw writers build one marshal tuple', async () => {
    const enc = new Encoder();
    enc.begin(4);
    enc.tupleHeader(3);
    enc.str('ascii');
    enc.tupleHeader(4);
    enc.str('mod');
    enc.str('fn');
    enc.value([1, 'é'], 'args');
    enc.dictBegin();
    enc.dictKey('a');
    enc.value(1, 'kwargs.a');
    enc.dictKey('b');
    enc.listHeader(3);
    enc.none();
    enc.bool(true);
    enc.number(2.5);
    enc.dictKey('a');
    enc.bytes(new Uint8Array([1]));
    enc.dictEnd();
    enc.none();
    const payload = await py.roundTrip(enc.end());
    assert.equal(decode(payload, 0, payload.length, false), "('mod', 'fn', [1, '\\xe9'], {'a': b'\\x01', 'b': [None, True, 2.5]})");
  });
});

describe('Python → JavaScript', () => {
  const cases: Array<[string, unknown]> = [
    ['None', null],
    ['True', true],
    ['False', false],
    ['0', 0],
    ['-1', -1],
    ['-2**31', -(2 ** 31)],
    ['2**31', 2 ** 31],
    ['2**31 - 1', 2 ** 31 - 1],
    ['2**53 - 1', 2 ** 53 - 1],
    ['-(2**53 - 1)', -(2 ** 53 - 1)],
    ['2**53', 2n ** 53n],
    ['2**53 + 1', 2n ** 53n + 1n],
    ['-(2**53) - 1', -(2n ** 53n) - 1n],
    ['2**45', 2 ** 45],
    ['2**60 - 1', 2n ** 60n - 1n],
    ['2**70', 2n ** 70n],
    ['-2**70', -(2n ** 70n)],
    ['2**1000 + 12345', 2n ** 1000n + 12345n],
    ['-(16**100)', -(16n ** 100n)],
    ['1.5', 1.5],
    ['float("nan")', NaN],
    ['float("inf")', Infinity],
    ['float("-inf")', -Infinity],
    ['-0.0', -0],
    ['0.0', 0],
    ['5e-324', 5e-324],
    ["''", ''],
    ["'abc'", 'abc'],
    ["'x' * 300", 'x'.repeat(300)],
    ["'\\xe9'", 'é'],
    ["'\\xe9' * 300", 'é'.repeat(300)],
    ["'\\U0001f600'", '😀'],
    ["'\\ud800'", '\ud800'],
    ["'a\\udfffb'", 'a\udfffb'],
    ["'\\ufffd\\ud800\\ufffd'", '\ufffd\ud800\ufffd'],
    ["'\\ufeffhello'", '\ufeffhello'],
    ["'\\ufeff'", '\ufeff'],
    ["'\\ud7ff\\ue000\\ud55c'", '\ud7ff\ue000\ud55c'],
    ["'\\udfff' * 100 + '\\U0001f600' * 100", '\udfff'.repeat(100) + '😀'.repeat(100)],
    ["'\\x00'", '\0'],
    ["[__import__('sys').intern('\\xe9t\\xe9')] * 2", ['été', 'été']],
    ["[__import__('sys').intern('interned_name')] * 2", ['interned_name', 'interned_name']],
    ["b''", new Uint8Array(0)],
    ["b'abc'", new Uint8Array([97, 98, 99])],
    ["bytearray(b'xy')", new Uint8Array([120, 121])],
    ['memoryview(b"mv")', new Uint8Array([109, 118])],
    ['[]', []],
    ['()', []],
    ['[1, [2, (3, [])]]', [1, [2, [3, []]]]],
    ['tuple(range(300))', Array.from({ length: 300 }, (_, i) => i)],
    ['{}', {}],
    ["{'a': 1, 'b': [None, {'c': True}]}", { a: 1, b: [null, { c: true }] }],
    ["{'2': 'x', '1': 'y'}", { 2: 'x', 1: 'y' }],
    ['set()', new Set()],
    ['{1}', new Set([1])],
    ['frozenset()', new Set()],
    ["frozenset(['a'])", new Set(['a'])],
    ['{1: 2}', new Map([[1, 2]])],
    ["{(1, 'a'): None}", new Map([[[1, 'a'], null]])],
    ['{None: 0, True: 1, 1.5: 2, b"k": 3}', new Map<unknown, unknown>([[null, 0], [true, 1], [1.5, 2], [new Uint8Array([107]), 3]])],
  ];
  for (const [expr, expected] of cases) {
    test(expr, async () => assert.deepStrictEqual(await py.eval(expr), expected));
  }

  test('bytes are plain Uint8Arrays; small ones are copies', async () => {
    const small = (await py.eval("bytearray(b'xy')")) as Uint8Array;
    assert.equal(Object.getPrototypeOf(small), Uint8Array.prototype);
    assert.equal(small.buffer.byteLength, 2);
    const big = (await py.eval('bytes(range(256)) * 1024')) as Uint8Array;
    assert.equal(Object.getPrototypeOf(big), Uint8Array.prototype);
    assert.equal(big.length, 256 * 1024);
    assert.equal(big[257], 1);
    // a large value is a copy too, alone in its own buffer: no result exposes the bytes of another message
    const raw = await py.dumps('bytes(100_000)');
    const copy = decode(raw, 0, raw.length, false) as Uint8Array;
    assert.notEqual(copy.buffer, raw.buffer);
    assert.equal(copy.buffer.byteLength, 100_000);
    assert.equal(Object.getPrototypeOf(copy), Uint8Array.prototype);
  });

  test('dict with mixed keys → Map in Python order', async () => {
    const m = await py.exec("x = [1]\nresult = {'b': x, '1': 2, 3: x, 'a': 'a'}");
    assert.ok(m instanceof Map);
    assert.deepStrictEqual([...m.keys()], ['b', '1', 3, 'a']);
    assert.equal(m.get('b'), m.get(3));
    assert.deepStrictEqual(m.get('b'), [1]);
    const nested = await py.eval("[{'k': {'z': 1, 2: 3}}, {'k': 4}]");
    assert.deepStrictEqual(nested, [{ k: new Map<unknown, unknown>([['z', 1], [2, 3]]) }, { k: 4 }]);
  });

  test("'__proto__' key is an own property", async () => {
    const o = (await py.eval("{'__proto__': {'polluted': 1}, 'x': 2}")) as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(o), Object.prototype);
    assert.deepStrictEqual(Object.keys(o), ['__proto__', 'x']);
    assert.deepStrictEqual(Object.getOwnPropertyDescriptor(o, '__proto__'), {
      value: { polluted: 1 },
      writable: true,
      enumerable: true,
      configurable: true,
    });
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal((o as { polluted?: unknown }).polluted, undefined);
  });

  test('shared references decode (to the same object)', async () => {
    const r = (await py.exec('x = [1]\nresult = [x, x, (x,), {"k": x}]')) as unknown[];
    assert.deepStrictEqual(r, [[1], [1], [[1]], { k: [1] }]);
    assert.equal(r[0], r[1]);
    const s = (await py.exec("k = ('a', 1)\nresult = [k, k, {k: 'v'}, {'s': frozenset([k])}]")) as unknown[];
    assert.deepStrictEqual(s[0], ['a', 1]);
    assert.equal(s[0], s[1]);
  });

  test('cycles built in Python are refused', async () => {
    await assert.rejects(py.exec('a = []\na.append(a)\nresult = a'), (e: unknown) => e instanceof ConversionError && /cyclic/.test(e.message));
    await assert.rejects(py.exec("d = {}\nd['self'] = [d]\nresult = d"), (e: unknown) => e instanceof ConversionError && /cyclic/.test(e.message));
  });

  test('complex is refused, tagged or not; a Date tag is a Date', async () => {
    await assert.rejects(py.eval('1j'), /Python type 'complex'/);
    await assert.rejects(py.eval('complex(5, 0)'), /Python type 'complex'/);
    await assert.rejects(py.eval('complex(5, 0)', true), /Python type 'complex'/);
    assert.deepStrictEqual(await py.eval("(..., 'D', 1700000000123)", true), new Date(1700000000123));
    assert.deepStrictEqual(await py.eval("[(..., 'D', -2), {'d': (..., 'D', 0)}]", true), [new Date(-2), { d: new Date(0) }]);
  });

  test('Python types without a counterpart are refused by name', async () => {
    await assert.rejects(py.eval('...'), (e: unknown) => e instanceof ConversionError && /'ellipsis'/.test(e.message));
    await assert.rejects(py.eval('[StopIteration]'), (e: unknown) => e instanceof ConversionError && /'StopIteration'/.test(e.message));
    await assert.rejects(py.eval("compile('1', '<x>', 'eval')"), (e: unknown) => e instanceof ConversionError && /'code'/.test(e.message));
  });

  test('malformed data is refused', async () => {
    conversionError(() => decode(Buffer.from([0x01]), 0, 1, false), /unknown type byte 0x01/);
    conversionError(() => decode(Buffer.from('?'), 0, 1, false), /unknown/);
    conversionError(() => decode(Buffer.alloc(0), 0, 0, false), /truncated/);
    const raw = await py.dumps("[1, 'abc', 2**70, 1.5, b'xyz', {'k': (1,)}]");
    assert.deepStrictEqual(decode(raw, 0, raw.length, false), [1, 'abc', 2n ** 70n, 1.5, new Uint8Array([120, 121, 122]), { k: [1] }]);
    for (let cut = 0; cut < raw.length; cut++) conversionError(() => decode(raw, 0, cut, false), /truncated/);
    const padded = Buffer.concat([Buffer.from([0xaa, 0xbb]), raw, Buffer.from([0x4e])]);
    assert.deepStrictEqual(decode(padded, 2, 2 + raw.length, false), decode(raw, 0, raw.length, false));
    conversionError(() => decode(padded, 2, padded.length, false), /unexpected bytes/);
    conversionError(() => decode(Buffer.from([0x72, 0, 0, 0, 0]), 0, 5, false), /invalid reference/);
    conversionError(() => decode(Buffer.from([0x5b, 0xff, 0xff, 0xff, 0x7f]), 0, 5, false), /truncated/);
  });

  test('old text floats', () => {
    const f = (s: string): Buffer => Buffer.concat([Buffer.from([0x66, s.length]), Buffer.from(s)]);
    assert.equal(decode(f('1.25'), 0, 6, false), 1.25);
    assert.equal(decode(f('-inf'), 0, 6, false), -Infinity);
    assert.ok(Number.isNaN(decode(f('nan'), 0, 5, false)));
  });
});

describe('depth limits', () => {
  test(`${MAX_DEPTH} levels pass both ways, one more is refused`, async () => {
    const ok = nestJs(MAX_DEPTH);
    assert.equal(await py.exec('n = 1\nwhile value:\n    value = value[0]\n    n += 1\nresult = n', ok), MAX_DEPTH);
    conversionError(() => encode(nestJs(MAX_DEPTH + 1)), /limit of 1000 levels/);
    assert.deepStrictEqual(await py.exec('x = []\nfor _ in range(999):\n    x = [x]\nresult = x'), ok);
    await assert.rejects(py.exec('x = []\nfor _ in range(1000):\n    x = [x]\nresult = x'), (e: unknown) => e instanceof ConversionError && /limit of 1000 levels/.test(e.message));
    await assert.rejects(py.exec('x = {}\nfor _ in range(1500):\n    x = {"k": x}\nresult = x'), /limit of 1000 levels/);
  });

  test('a 1,000,000-deep JS array is a ConversionError, not a stack overflow', () => {
    conversionError(() => encode(nestJs(1_000_000)), /1000 levels/);
    let o: Record<string, unknown> = {};
    for (let i = 0; i < 1_000_000; i++) o = { o };
    conversionError(() => encode(o), /1000 levels/);
  });

  test('deeply nested marshal data is a ConversionError, not a stack overflow', () => {
    const n = 1_000_000;
    const buf = Buffer.alloc(n * 2 + 1);
    for (let i = 0; i < n; i++) {
      buf[2 * i] = 0x29;
      buf[2 * i + 1] = 1;
    }
    buf[2 * n] = 0x4e;
    conversionError(() => decode(buf, 0, buf.length, false), /limit of 1000 levels/);
  });
});

describe('JavaScript values that cannot be sent', () => {
  class Foo {
    x = 1;
  }
  test('functions, symbols and class instances, with the path', () => {
    conversionError(() => encode([{ handler() {} }], 'args'), /function \(handler\)/, 'args[0].handler');
    conversionError(() => encode({ items: [1, 2, Symbol('s')] }, 'kwargs'), /symbol/, 'kwargs.items[2]');
    conversionError(() => encode({ x: new Foo() }, 'locals'), /class Foo/, 'locals.x');
    conversionError(() => encode(new Foo(), 'args'), /class Foo/, 'args');
    conversionError(() => encode({ 'a b': [() => 1] }), /function/, 'args["a b"][0]');
    conversionError(() => encode(new Map([['k', () => 1]])), /function/, 'args.get("k")');
    conversionError(() => encode(new Map([[1, [Symbol()]]])), /symbol/, 'args.get(1)[0]');
    conversionError(() => encode(tuple(1, new Set([new WeakMap()]))), /class WeakMap/, 'args[1].values()[0]');
    conversionError(() => encode([new Promise(() => {})]), /class Promise/, 'args[0]');
    conversionError(() => encode(Object.create({ inherited: 1 })), /non-standard prototype|class Object/, 'args');
  });

  test('unhashable keys', () => {
    conversionError(() => encode(new Map([[{}, 1]])), /unhashable/, 'args.keys()[0]');
    conversionError(() => encode(new Map([[new Map(), 1]])), /unhashable/, 'args.keys()[0]');
    conversionError(() => encode({ s: new Set([1, new Set()]) }), /unhashable/, 'args.s.values()[1]');
    conversionError(() => encode(new Set([[1, [2, {}]]])), /unhashable/, 'args.values()[0][1][1]');
  });

  test('cycles, with the path of the reference that closes them', () => {
    const o: Record<string, any> = { a: { b: {} } };
    o.a.b.c = o;
    conversionError(() => encode(o, 'kwargs'), /cyclic structure.*refers back to kwargs \(at/, 'kwargs.a.b.c');
    const a: unknown[] = [1];
    a.push({ back: a });
    conversionError(() => encode([0, a]), /cyclic.*refers back to args\[1\]/, 'args[1][1].back');
    const m = new Map<unknown, unknown>();
    m.set('self', [m]);
    conversionError(() => encode(m), /cyclic/, 'args.get("self")[0]');
  });

  test('shared, non-cyclic references are fine', async () => {
    const shared = { s: 1 };
    const v = [shared, shared, { shared }];
    assert.deepStrictEqual(await py.echo(v), v);
  });

  test('a failed message does not spoil the encoder', async () => {
    const enc = new Encoder();
    enc.begin(4);
    assert.throws(() => enc.value([1, () => 1], 'args'), ConversionError);
    enc.begin(4);
    enc.tupleHeader(3);
    enc.str('echo');
    enc.value({ key: 1 }, 'arg');
    enc.none();
    const payload = await py.roundTrip(enc.end());
    assert.deepStrictEqual(decode(payload, 0, payload.length, false), { key: 1 });
  });
});

describe('Encoder buffers', () => {
  test('reserve is left zeroed at the front; end() returns owned memory', () => {
    const enc = new Encoder();
    enc.begin(8);
    enc.value('first', 'x');
    const a = enc.end();
    assert.deepEqual([...a.subarray(0, 8)], [0, 0, 0, 0, 0, 0, 0, 0]);
    assert.equal(decode(a, 8, a.length, false), 'first');
    enc.begin(8);
    enc.value('second!', 'x');
    const b = enc.end();
    assert.equal(decode(a, 8, a.length, false), 'first');
    assert.equal(decode(b, 8, b.length, false), 'second!');
  });

  test('large messages are handed over, and the next message is unaffected', async () => {
    const enc = new Encoder();
    enc.begin(4);
    enc.value(new Array(200_000).fill(7), 'x');
    const big = enc.end();
    enc.begin(4);
    enc.value('small', 'x');
    const small = enc.end();
    enc.begin(4);
    enc.value('x'.repeat(3_000_000), 'x');
    const str = enc.end();
    assert.equal((decode(big, 4, big.length, false) as number[]).every((b) => b === 7), true);
    assert.equal(decode(small, 4, small.length, false), 'small');
    assert.equal(decode(str, 4, str.length, false), 'x'.repeat(3_000_000));
    assert.deepStrictEqual(await py.echo(['é'.repeat(500_000), new Array(300_000).fill(1)]), ['é'.repeat(500_000), new Array(300_000).fill(1)]);
  });
});

describe('round trips', () => {
  // a deterministic PRNG
  let seed = 12345;
  const rnd = (): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x80000000;
  };
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const keys = ['id', 'name', 'value', 'a', 'é', '__proto__', 'constructor', 'x y', '0', '17'];

  function randomString(): string {
    const n = Math.floor(rnd() * (rnd() < 0.1 ? 400 : 12));
    let s = '';
    for (let i = 0; i < n; i++) {
      const r = rnd();
      s += String.fromCharCode(r < 0.6 ? 32 + Math.floor(rnd() * 95) : r < 0.8 ? Math.floor(rnd() * 0x800) : r < 0.9 ? 0xd800 + Math.floor(rnd() * 0x800) : Math.floor(rnd() * 0x10000));
    }
    return s;
  }

  function randomValue(depth: number): unknown {
    const r = rnd();
    if (depth > 4 || r < 0.5) {
      return pick([
        () => null,
        () => rnd() < 0.5,
        () => Math.floor((rnd() - 0.5) * 2 ** (rnd() * 52)),
        () => (rnd() - 0.5) * 10 ** Math.floor(rnd() * 30 - 20),
        () => pick([NaN, Infinity, -Infinity, -0, 0.5]),
        () => (rnd() < 0.5 ? -1n : 1n) * (2n ** 53n + BigInt(Math.floor(rnd() * 2 ** 40)) * 2n ** BigInt(Math.floor(rnd() * 200))),
        randomString,
        () => new Uint8Array(Array.from({ length: Math.floor(rnd() * 20) }, () => Math.floor(rnd() * 256))),
      ])();
    }
    const n = Math.floor(rnd() * 6);
    return pick([
      () => Array.from({ length: n }, () => randomValue(depth + 1)),
      () => {
        const o: Record<string, unknown> = {};
        for (let i = 0; i < n; i++) Object.defineProperty(o, pick(keys), { value: randomValue(depth + 1), enumerable: true, writable: true, configurable: true });
        return o;
      },
      () => new Map<unknown, unknown>([[Math.floor(rnd() * 100), randomValue(depth + 1)], ...Array.from({ length: n }, () => [pick(keys), randomValue(depth + 1)] as [string, unknown])]),
      () => new Set(Array.from({ length: n }, () => pick<unknown>([randomString(), Math.floor(rnd() * 10), 2n ** 80n, null]))),
    ])();
  }

  test('random values survive JS → Python → JS', async () => {
    for (let i = 0; i < 300; i++) {
      const v = randomValue(0);
      assert.deepStrictEqual(await py.echo(v), v);
    }
  });

});
