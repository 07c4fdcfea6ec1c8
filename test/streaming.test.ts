/**
 * Python iterables consumed from TypeScript with `for await`, incrementally, with a bounded
 * window of items produced ahead (flow control), closed in Python on break / return() / abort / timeout, for any
 * iterable (async generators included), with errors mid-stream, next to other calls on the same pool.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import {
  AbortError,
  ConversionError,
  PoolClosedError,
  PyStream,
  PythonError,
  PyWorkersError,
  TimeoutError,
  WorkerCrashedError,
  type Pool,
} from '../src/index.js';
import { pool, sleep, until } from './helpers.js';

let dir: string;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pyworkers-streaming-'));
  fs.writeFileSync(
    path.join(dir, 'mymodule.py'),
    `
import csv

def read_rows(path, size=100):
    """Yield the rows of a CSV file in lists of up to \`size\` rows."""
    with open(path, newline='') as f:
        chunk = []
        for row in csv.reader(f):
            chunk.append(row)
            if len(chunk) >= size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk
`,
  );
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Generators that record in the Python global `state` what they did. */
const GENERATORS = `
import asyncio, itertools, os, time
state = {}

def tracked(n=None, name='tracked', item=None):
    state[name + '_started'] = True
    state[name + '_produced'] = 0
    try:
        for i in (itertools.count() if n is None else range(n)):
            state[name + '_produced'] = i + 1
            yield i if item is None else item + str(i)
    finally:
        state[name + '_closed'] = True

def sleepy(name='sleepy'):
    try:
        yield 'first'
        time.sleep(30)
        yield 'never'
    finally:
        state[name + '_closed'] = True

async def agen(n, name='agen'):
    try:
        for i in range(n):
            await asyncio.sleep(0)
            yield i
    finally:
        state[name + '_closed'] = True

async def asleepy(name='asleepy'):
    try:
        yield 'first'
        await asyncio.sleep(30)
        yield 'never'
    finally:
        state[name + '_closed'] = True

def failing(good, exc=ValueError, message='bad thing'):
    for i in range(good):
        yield i
    raise exc(message)
`;

async function withGenerators(options: Parameters<typeof pool>[0] = {}): Promise<Pool> {
  const p = await pool(options);
  await p.exec(GENERATORS);
  return p;
}

const stateOf = (p: Pool, key: string) => p.eval(`state.get(${JSON.stringify(key)})`);

async function collect<T>(stream: AsyncIterable<T>): Promise<{ items: T[]; error: any }> {
  const items: T[] = [];
  try {
    for await (const item of stream) items.push(item);
  } catch (error) {
    return { items, error };
  }
  return { items, error: undefined };
}

function rssOf(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)![1]) * 1024;
}

describe('the API', () => {
  test('for await over pool.streamEval: 0 1 4 9 16', async () => {
    const p = await pool();
    const out: number[] = [];
    for await (const x of p.streamEval('(x**2 for x in range(5))')) out.push(x);
    assert.deepEqual(out, [0, 1, 4, 9, 16]);
  });

  test('streamEval(...).toArray()', async () => {
    const p = await pool();
    assert.deepEqual(await p.streamEval('iter(range(5))').toArray(), [0, 1, 2, 3, 4]);
    const stream = p.streamEval('range(3)');
    assert.ok(stream instanceof PyStream);
    assert.deepEqual(await stream.toArray(), [0, 1, 2]);
  });

  test('pool.stream(mymodule, read_rows, [path], { kwargs: { size } })', async () => {
    const p = await pool({ pythonPath: [dir] });
    const csvPath = path.join(dir, 'rows.csv');
    fs.writeFileSync(csvPath, Array.from({ length: 2500 }, (_, i) => `${i},name${i},${i * 2}`).join('\n') + '\n');
    const chunks: string[][][] = [];
    for await (const chunk of p.stream<string[][]>('mymodule', 'read_rows', [csvPath], { kwargs: { size: 1000 } })) chunks.push(chunk);
    assert.deepEqual(chunks.map((c) => c.length), [1000, 1000, 500]);
    assert.deepEqual(chunks[0]![0], ['0', 'name0', '0']);
    assert.deepEqual(chunks[2]![499], ['2499', 'name2499', '4998']);
    assert.equal((await p.stream('mymodule', 'read_rows', [csvPath]).toArray()).length, 25, 'size defaults to 100');
  });

  test('locals and kwargs', async () => {
    const p = await withGenerators();
    assert.deepEqual(await p.streamEval('(x * k for x in xs)', { xs: [1, 2, 3], k: 10 }).toArray(), [10, 20, 30]);
    assert.deepEqual(await p.stream('__main__', 'tracked', [], { kwargs: { n: 3, item: 'row' } }).toArray(), ['row0', 'row1', 'row2']);
    await assert.rejects(p.eval('xs'), (e: unknown) => e instanceof PythonError && e.type === 'NameError');
  });

  test("ctx.stream and ctx.streamEval use the context's namespace and worker", async () => {
    const p = await pool({ workers: 2 });
    const ctx = p.context();
    await ctx.exec('import os\ndata = [3, 1, 2]\ndef pids(n):\n    for _ in range(n):\n        yield os.getpid()');
    assert.deepEqual(await ctx.streamEval('(v * 2 for v in data)').toArray(), [6, 2, 4]);
    const pid = await ctx.eval('os.getpid()');
    assert.deepEqual(await ctx.stream('__main__', 'pids', [5]).toArray(), Array(5).fill(pid));
    await assert.rejects(p.streamEval('iter(data)').toArray(), (e: unknown) => e instanceof PythonError && e.type === 'NameError');
    await assert.rejects(p.context().streamEval('iter(data)').toArray(), (e: unknown) => e instanceof PythonError && e.type === 'NameError');
  });

  test('options are checked: unknown names and bad values are refused with their name', async () => {
    const p = await pool();
    assert.throws(() => p.streamEval('range(3)', null, { highWaterMark: 0 }), (e: any) => e instanceof PyWorkersError && /highWaterMark/.test(e.message));
    assert.throws(() => p.streamEval('range(3)', null, { highWaterMark: 1.5 }), /highWaterMark/);
    assert.throws(() => p.stream('builtins', 'range', [3], { chunk: 5 } as never), (e: any) => e.code === 'ERR_INVALID_ARGUMENT' && /chunk/.test(e.message));
    assert.throws(() => p.stream('builtins', 'range', [3], { timeout: -1 }), /timeout/);
    assert.throws(() => p.stream('builtins', 'range', [3], { signal: 'stop' } as never), /signal/);
    assert.throws(() => p.stream('builtins', 'range', [3], { kwargs: 3 } as never), /kwargs/);
    assert.deepEqual(await p.stream('builtins', 'range', [3], { highWaterMark: 1 }).toArray(), [0, 1, 2]);
  });

  test('nothing runs in Python until iteration starts', async () => {
    const p = await withGenerators();
    const stream = p.stream('__main__', 'tracked', [3]);
    await sleep(100);
    assert.equal(await stateOf(p, 'tracked_started'), null);
    assert.deepEqual(await stream.toArray(), [0, 1, 2]);
    assert.equal(await stateOf(p, 'tracked_started'), true);
  });
});

describe('the default pool py', () => {
  test('py.stream and py.streamEval stream like pool streams (toArray, break closes)', async () => {
    const { py } = await import('../src/index.js');
    try {
      const items: number[] = [];
      for await (const x of py.streamEval('(x**2 for x in range(5))')) items.push(x);
      assert.deepEqual(items, [0, 1, 4, 9, 16]);
      await py.exec(GENERATORS);
      for await (const x of py.stream('__main__', 'tracked', [], { highWaterMark: 4 })) if (x === 2) break;
      const stream = py.streamEval('iter(range(5))') as unknown as { toArray(): Promise<number[]> };
      assert.equal(typeof stream.toArray, 'function', 'py.streamEval() returns a stream with toArray(), like pool.streamEval()');
      assert.deepEqual(await stream.toArray(), [0, 1, 2, 3, 4]);
    } finally {
      await py.close();
    }
  });
});

describe('incremental delivery', () => {
  test('the first item arrives before the generator has finished', async () => {
    const p = await withGenerators();
    const started = Date.now();
    const arrivals: number[] = [];
    for await (const _ of p.streamEval('(time.sleep(0.4 * (i > 0)) or i for i in range(3))')) arrivals.push(Date.now() - started);
    assert.equal(arrivals.length, 3);
    assert.ok(arrivals[0]! < 700, `first item after ${arrivals[0]} ms`);
    assert.ok(arrivals[2]! >= 750, `last item after ${arrivals[2]} ms`);
  });

  test('an item is delivered while the generator waits for the consumer (no batching hold-up)', async () => {
    const p = await withGenerators();
    const flag = path.join(dir, `release-${process.pid}-${Date.now()}`);
    await p.exec(`
def waits_for(flag):
    yield 'first'
    deadline = time.time() + 10
    while not os.path.exists(flag):
        if time.time() > deadline:
            yield 'held back'
            return
        time.sleep(0.01)
    yield 'released'
`);
    const items: string[] = [];
    for await (const item of p.stream('__main__', 'waits_for', [flag])) {
      items.push(item);
      if (item === 'first') fs.writeFileSync(flag, '');
    }
    assert.deepEqual(items, ['first', 'released']);
  });

  test('a slow async generator is incremental too', async () => {
    const p = await withGenerators();
    const started = Date.now();
    const it = p.streamEval('asleepy()')[Symbol.asyncIterator]();
    assert.deepEqual(await it.next(), { value: 'first', done: false });
    assert.ok(Date.now() - started < 10_000);
    await it.return!();
    assert.equal(await stateOf(p, 'asleepy_closed'), true);
  });
});

describe('flow control', () => {
  test('the worker runs ahead of a slow consumer by the highWaterMark window only', async () => {
    const p = await withGenerators();
    const highWaterMark = 16;
    const it = p.stream('__main__', 'tracked', [], { highWaterMark })[Symbol.asyncIterator]();
    let consumed = 0;
    for (let i = 0; i < 40; i++) {
      const { value } = await it.next();
      assert.equal(value, consumed++);
      if (i % 10 === 0) {
        await sleep(50); // a slow consumer: the producer could make millions of items meanwhile
        const produced = await stateOf(p, 'tracked_produced');
        assert.ok(produced >= consumed && produced <= consumed + highWaterMark, `produced ${produced} for ${consumed} consumed`);
      }
    }
    assert.ok(await until(() => p.stats().perWorker[0]!.inFlight === 0), 'a paused stream holds no request on its worker');
    await it.return!();
  });

  test('an infinite generator (itertools.count()) read for 100k items: bounded production and worker memory', async () => {
    const p = await withGenerators();
    const pid = p.stats().perWorker[0]!.pid!;
    await p.streamEval('itertools.islice(itertools.count(), 10000)').toArray(); // warm up
    const before = rssOf(pid);
    let n = 0;
    for await (const x of p.stream('__main__', 'tracked', [], { kwargs: { item: 'x'.repeat(1000) } })) {
      assert.equal(x.length, 1000 + String(n).length);
      if (++n >= 100_000) break;
    }
    const produced = await stateOf(p, 'tracked_produced');
    assert.ok(produced >= 100_000 && produced <= 100_000 + 2048, `produced ${produced} for 100000 read (default highWaterMark 2048)`);
    assert.equal(await stateOf(p, 'tracked_closed'), true);
    const grown = rssOf(pid) - before;
    assert.ok(grown < 40 * 1024 * 1024, `worker RSS grew by ${(grown / 1048576).toFixed(1)} MiB for 100 MB of items`);
  });

  test('highWaterMark 1 still works, one item per step', async () => {
    const p = await withGenerators();
    const it = p.stream('__main__', 'tracked', [100], { highWaterMark: 1 })[Symbol.asyncIterator]();
    assert.deepEqual(await it.next(), { value: 0, done: false });
    await sleep(30);
    assert.ok((await stateOf(p, 'tracked_produced')) <= 2);
    const rest: number[] = [];
    for (let r = await it.next(); !r.done; r = await it.next()) rest.push(r.value);
    assert.deepEqual(rest, Array.from({ length: 99 }, (_, i) => i + 1));
  });
});

describe('closing', () => {
  test('break in for await closes the generator (finally runs) before the loop ends', async () => {
    const p = await withGenerators();
    for await (const x of p.stream('__main__', 'tracked', [], { highWaterMark: 8 })) if (x === 3) break;
    assert.equal(await stateOf(p, 'tracked_closed'), true);
    assert.ok((await stateOf(p, 'tracked_produced')) <= 4 + 8);
  });

  test("the iterator's return() closes it; no item arrives after", async () => {
    const p = await withGenerators();
    const stream = p.stream('__main__', 'tracked', [1000], { highWaterMark: 4 });
    const it = stream[Symbol.asyncIterator]();
    assert.deepEqual(await it.next(), { value: 0, done: false });
    assert.deepEqual(await it.return!(), { value: undefined, done: true });
    assert.equal(await stateOf(p, 'tracked_closed'), true, 'finally ran before return() resolved');
    assert.deepEqual(await it.next(), { value: undefined, done: true });
    assert.deepEqual(await it.next(), { value: undefined, done: true });
    await stream.close(); // again: a no-op
  });

  test('break while the generator is busy (mid-step) interrupts and closes it', async () => {
    const p = await withGenerators();
    const started = Date.now();
    for await (const x of p.stream('__main__', 'sleepy')) {
      assert.equal(x, 'first');
      break;
    }
    assert.ok(Date.now() - started < 10_000, 'did not wait for the sleep');
    assert.equal(await stateOf(p, 'sleepy_closed'), true);
    assert.equal(await p.eval('1 + 1'), 2);
  });

  test('the signal aborting closes the generator; the loop throws an AbortError; no item after', async () => {
    const p = await withGenerators();
    const controller = new AbortController();
    const stream = p.stream('__main__', 'tracked', [], { signal: controller.signal, highWaterMark: 4 });
    const items: number[] = [];
    const { error } = await collect(
      (async function* () {
        for await (const x of stream) {
          items.push(x);
          if (x === 2) controller.abort();
          yield x;
        }
      })(),
    );
    assert.ok(error instanceof AbortError);
    assert.equal(error.code, 'ERR_ABORTED');
    assert.deepEqual(items, [0, 1, 2]);
    assert.ok(await until(async () => (await stateOf(p, 'tracked_closed')) === true, 5000));
    assert.deepEqual(await stream.next(), { value: undefined, done: true });
  });

  test('the signal aborting while the generator is busy interrupts it', async () => {
    const p = await withGenerators();
    const controller = new AbortController();
    const started = Date.now();
    const { items, error } = await collect(
      (async function* () {
        for await (const x of p.stream('__main__', 'sleepy', [], { signal: controller.signal })) {
          setTimeout(() => controller.abort(), 50);
          yield x;
        }
      })(),
    );
    assert.deepEqual(items, ['first']);
    assert.ok(error instanceof AbortError);
    assert.ok(Date.now() - started < 10_000);
    assert.ok(await until(async () => (await stateOf(p, 'sleepy_closed')) === true, 5000));
  });

  test('an already aborted signal: the generator never starts', async () => {
    const p = await withGenerators();
    const { items, error } = await collect(p.stream('__main__', 'tracked', [3], { signal: AbortSignal.abort() }));
    assert.deepEqual(items, []);
    assert.ok(error instanceof AbortError);
    assert.equal(await stateOf(p, 'tracked_started'), null);
  });

  test('timeout closes the stream with ERR_TIMEOUT; the worker serves on', async () => {
    const p = await withGenerators();
    const pid = p.stats().perWorker[0]!.pid;
    const { items, error } = await collect(p.stream('__main__', 'sleepy', [], { timeout: 300 }));
    assert.deepEqual(items, ['first']);
    assert.ok(error instanceof TimeoutError);
    assert.equal(error.code, 'ERR_TIMEOUT');
    assert.equal(await stateOf(p, 'sleepy_closed'), true);
    assert.equal(p.stats().perWorker[0]!.pid, pid);
  });

  test('closing a stream that waits behind a busy worker: it never runs, or is closed', async () => {
    const p = await withGenerators();
    const busy = p.eval('time.sleep(0.3) or "done"');
    const it = p.stream('__main__', 'tracked', [1000], { highWaterMark: 4 })[Symbol.asyncIterator]();
    const first = it.next();
    await sleep(50);
    await it.return!();
    assert.deepEqual(await first, { value: undefined, done: true });
    assert.equal(await busy, 'done');
    const [started, closed] = [await stateOf(p, 'tracked_started'), await stateOf(p, 'tracked_closed')];
    assert.ok(!started || closed, 'the generator is not left open');
  });

  test('async generators: their finally runs on close, paused or busy', async () => {
    const p = await withGenerators();
    for await (const x of p.stream('__main__', 'agen', [100], { highWaterMark: 4 })) if (x === 1) break;
    assert.equal(await stateOf(p, 'agen_closed'), true, 'paused async generator closed');
    for await (const x of p.stream('__main__', 'asleepy')) if (x === 'first') break;
    assert.equal(await stateOf(p, 'asleepy_closed'), true, 'busy async generator closed');
  });

  test('a stream that ends on its own needs no closing', async () => {
    const p = await withGenerators();
    assert.deepEqual(await p.stream('__main__', 'tracked', [3]).toArray(), [0, 1, 2]);
    assert.equal(await stateOf(p, 'tracked_closed'), true);
  });
});

describe('any iterable', () => {
  const cases: Array<[string, unknown[]]> = [
    ['(c for c in "abc")', ['a', 'b', 'c']],
    ['range(5)', [0, 1, 2, 3, 4]],
    ['range(10, 0, -3)', [10, 7, 4, 1]],
    ['iter([1, "two", None])', [1, 'two', null]],
    ['[1, 2, 3]', [1, 2, 3]],
    ['(1, 2)', [1, 2]],
    ['"ab"', ['a', 'b']],
    ['{"a": 1, "b": 2}.items()', [['a', 1], ['b', 2]]],
    ['{"a": 1, "b": 2}', ['a', 'b']],
    ['{"a": 1, "b": 2}.values()', [1, 2]],
    ['enumerate(["x", "y"])', [[0, 'x'], [1, 'y']]],
    ['zip([1, 2, 3], "ab")', [[1, 'a'], [2, 'b']]],
    ['map(str, range(3))', ['0', '1', '2']],
    ['filter(None, [0, 1, 0, 2])', [1, 2]],
    ['reversed([1, 2, 3])', [3, 2, 1]],
    ['itertools.islice(itertools.count(5), 3)', [5, 6, 7]],
    ['itertools.chain([1], (2,), range(3, 4))', [1, 2, 3]],
    ['sorted({3, 1, 2})', [1, 2, 3]],
    ['iter(b"ab")', [97, 98]],
  ];
  for (const [expr, expected] of cases) {
    test(expr, async () => {
      const p = await withGenerators();
      assert.deepStrictEqual(await p.streamEval(expr).toArray(), expected);
    });
  }

  test('generator functions, classes with __iter__, async def generators, coroutines that return an iterable', async () => {
    const p = await withGenerators();
    await p.exec(`
class Countdown:
    def __init__(self, n):
        self.n = n
    def __iter__(self):
        return iter(range(self.n, 0, -1))
class AsyncRange:
    def __init__(self, n):
        self.n = n
    def __aiter__(self):
        self.i = 0
        return self
    async def __anext__(self):
        if self.i >= self.n:
            raise StopAsyncIteration
        self.i += 1
        return self.i - 1
async def later_list():
    await asyncio.sleep(0)
    return [1, 2]
`);
    assert.deepEqual(await p.stream('__main__', 'tracked', [3]).toArray(), [0, 1, 2]);
    assert.deepEqual(await p.stream('__main__', 'Countdown', [3]).toArray(), [3, 2, 1]);
    assert.deepEqual(await p.stream('__main__', 'agen', [4]).toArray(), [0, 1, 2, 3]);
    assert.deepEqual(await p.streamEval('AsyncRange(3)').toArray(), [0, 1, 2]);
    assert.deepEqual(await p.streamEval('(i * 2 async for i in agen(3))').toArray(), [0, 2, 4]);
    assert.deepEqual(await p.stream('__main__', 'later_list').toArray(), [1, 2]);
    assert.equal(await stateOf(p, 'agen_closed'), true);
  });

  test('items of every type of the value table', async () => {
    const p = await withGenerators();
    await p.exec('import datetime');
    const items = await p.streamEval('iter([2**70, -0.0, b"b", (1, 2), {"k": {1}}, {1: 2}, None, "\\ud800", datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)])').toArray();
    assert.deepStrictEqual(items, [2n ** 70n, -0, new Uint8Array([98]), [1, 2], { k: new Set([1]) }, new Map([[1, 2]]), null, '\ud800', new Date(Date.UTC(2020, 0, 1))]);
  });
});

describe('errors', () => {
  test('a result that is not iterable gives a clear error', async () => {
    const p = await withGenerators();
    for (const [expr, type] of [['42', 'int'], ['None', 'NoneType'], ['len', 'builtin_function_or_method']]) {
      const { items, error } = await collect(p.streamEval(expr));
      assert.deepEqual(items, []);
      assert.ok(error instanceof PythonError, String(error));
      assert.equal(error.type, 'TypeError');
      assert.match(error.message, /iterable/);
      assert.ok(error.message.includes(`'${type}'`), error.message);
    }
    const { error } = await collect(p.stream('math', 'sqrt', [4]));
    assert.match(error.message, /iterable.*'float'/);
    assert.equal(await p.eval('1 + 1'), 2);
  });

  test('an exception mid-stream: the items before it arrive, then a PythonError with type and message', async () => {
    const p = await withGenerators();
    const pid = p.stats().perWorker[0]!.pid;
    for (const highWaterMark of [1, 3, 1024]) {
      const { items, error } = await collect(p.stream('__main__', 'failing', [5], { highWaterMark }));
      assert.deepEqual(items, [0, 1, 2, 3, 4], `highWaterMark ${highWaterMark}`);
      assert.ok(error instanceof PythonError);
      assert.ok(error instanceof PyWorkersError);
      assert.equal(error.code, 'ERR_PYTHON');
      assert.equal(error.type, 'ValueError');
      assert.match(error.message, /bad thing/);
      assert.match(error.traceback, /in failing/);
    }
    const { items, error } = await collect(p.streamEval('failing(5000, KeyError, "missing")'));
    assert.equal(items.length, 5000);
    assert.equal(error.type, 'KeyError');
    await assert.rejects(p.streamEval('(1 / x for x in [1, 0])').toArray(), (e: any) => e.type === 'ZeroDivisionError');
    assert.equal(await p.eval('1 + 1'), 2, 'the worker keeps serving');
    assert.equal(p.stats().perWorker[0]!.pid, pid);
    assert.deepEqual(await p.streamEval('range(3)').toArray(), [0, 1, 2]);
  });

  test('an exception in an async generator mid-stream', async () => {
    const p = await withGenerators();
    await p.exec('async def afailing():\n    yield 1\n    await asyncio.sleep(0)\n    raise RuntimeError("async bad")');
    const { items, error } = await collect(p.stream('__main__', 'afailing'));
    assert.deepEqual(items, [1]);
    assert.equal(error.type, 'RuntimeError');
    assert.match(error.message, /async bad/);
  });

  test('an item that cannot be converted: the items before it arrive, then a ConversionError naming its index', async () => {
    const p = await withGenerators();
    const pid = p.stats().perWorker[0]!.pid;
    for (const highWaterMark of [1, 2, 1024]) {
      const { items, error } = await collect(p.streamEval('iter([1, 2, object(), 4])', null, { highWaterMark }));
      assert.deepEqual(items, [1, 2], `highWaterMark ${highWaterMark}`);
      assert.ok(error instanceof ConversionError);
      assert.equal(error.code, 'ERR_CONVERSION');
      assert.match(error.message, /'object'/);
      assert.match(error.message, /\[2\]/);
    }
    assert.equal(await p.eval('1 + 1'), 2);
    assert.equal(p.stats().perWorker[0]!.pid, pid);
  });

  test('the worker dying mid-stream: items before it, then ERR_WORKER_CRASHED; the pool replaces the worker', async () => {
    const p = await withGenerators();
    const { items, error } = await collect(p.streamEval('(os._exit(3) if i == 3 else i for i in range(10))', null, { highWaterMark: 2 }));
    assert.deepEqual(items, [0, 1, 2]);
    assert.ok(error instanceof WorkerCrashedError);
    assert.equal(error.code, 'ERR_WORKER_CRASHED');
    assert.equal(await p.eval('1 + 1'), 2);
  });

  test('the worker dying while the stream is paused: the next read gives ERR_WORKER_CRASHED, not a hang', async () => {
    const p = await withGenerators();
    const it = p.stream('__main__', 'tracked', [], { highWaterMark: 4 })[Symbol.asyncIterator]();
    assert.deepEqual(await it.next(), { value: 0, done: false });
    const pid = p.stats().perWorker[0]!.pid!;
    process.kill(pid, 'SIGKILL');
    assert.ok(await until(() => p.stats().perWorker.some((w) => w.pid !== pid && w.state === 'ready'), 10_000));
    const read: number[] = [];
    let error: any;
    const timer = setTimeout(() => {}, 10_000); // keep the event loop alive: a hang must fail as a hang
    try {
      for (let r = await it.next(); !r.done; r = await it.next()) read.push(r.value);
    } catch (e) {
      error = e;
    } finally {
      clearTimeout(timer);
    }
    assert.deepEqual(read, [1, 2, 3], 'the items already received');
    assert.ok(error instanceof WorkerCrashedError, String(error));
    assert.equal(await p.eval('1 + 1'), 2);
  });

  test('closing the pool ends open streams with ERR_POOL_CLOSED', async () => {
    const p = await withGenerators();
    const it = p.stream('__main__', 'tracked', [], { highWaterMark: 2 })[Symbol.asyncIterator]();
    assert.deepEqual(await it.next(), { value: 0, done: false });
    await p.close();
    let error: unknown;
    try {
      for (let i = 0; i < 10; i++) if ((await it.next()).done) break;
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof PoolClosedError);
    await assert.rejects(p.streamEval('range(3)').toArray(), PoolClosedError); // as calls reject
  });
});

describe('streams and other work', () => {
  test('other calls on the same worker keep flowing while a stream is open', async () => {
    const p = await withGenerators({ workers: 1 });
    const it = p.stream('__main__', 'tracked', [], { highWaterMark: 8 })[Symbol.asyncIterator]();
    assert.deepEqual(await it.next(), { value: 0, done: false });
    for (let i = 0; i < 5; i++) assert.equal(await p.call('math', 'sqrt', [16]), 4);
    assert.deepEqual(await Promise.all(Array.from({ length: 50 }, (_, i) => p.eval('i * 2', { i }))), Array.from({ length: 50 }, (_, i) => i * 2));
    assert.deepEqual(await it.next(), { value: 1, done: false });
    assert.equal(p.stats().busy, 0, 'the paused stream does not count as work');
    await it.return!();
  });

  test('with two workers, calls go on while a stream is busy in Python', async () => {
    const p = await withGenerators({ workers: 2 });
    const it = p.streamEval('(time.sleep(1.5) or i for i in range(2))')[Symbol.asyncIterator]();
    const first = it.next();
    await sleep(100);
    const started = Date.now();
    assert.equal(await p.call('math', 'sqrt', [16]), 4);
    assert.ok(Date.now() - started < 1200, 'the call did not wait for the stream');
    assert.deepEqual(await first, { value: 0, done: false });
    await it.return!();
  });

  test('a stream pins its worker only while it runs', async () => {
    const p = await withGenerators({ workers: 1 });
    assert.deepEqual(await p.streamEval('range(100)').toArray(), Array.from({ length: 100 }, (_, i) => i));
    const w = p.stats().perWorker[0]!;
    assert.equal(w.inFlight, 0);
    assert.equal(p.stats().idle, 1);
    await p.close({ timeout: 2000 }); // nothing holds the worker: close does not wait
  });

  test('recycling does not break an open stream: its worker is retired once the stream ends', async () => {
    const p = await withGenerators({ workers: 1 });
    const it = p.stream('__main__', 'tracked', [100], { highWaterMark: 4 })[Symbol.asyncIterator]();
    assert.deepEqual(await it.next(), { value: 0, done: false });
    const oldPid = p.stats().perWorker[0]!.pid!;
    await p.recycle();
    const rest: number[] = [];
    const timer = setTimeout(() => {}, 10_000);
    try {
      for (let r = await it.next(); !r.done; r = await it.next()) rest.push(r.value);
    } finally {
      clearTimeout(timer);
    }
    assert.deepEqual(rest, Array.from({ length: 99 }, (_, i) => i + 1), 'no item is lost');
    assert.ok(await until(() => p.stats().perWorker.every((w) => w.pid !== oldPid)), 'then the old worker is retired');
  });

  test('several streams interleaved on one worker', async () => {
    const p = await withGenerators({ workers: 1 });
    const a = p.streamEval('iter(range(0, 100))', null, { highWaterMark: 3 })[Symbol.asyncIterator]();
    const b = p.streamEval('iter(range(1000, 1100))', null, { highWaterMark: 5 })[Symbol.asyncIterator]();
    const gotA: number[] = [];
    const gotB: number[] = [];
    for (let i = 0; i < 100; i++) {
      gotA.push((await a.next()).value);
      gotB.push((await b.next()).value);
    }
    assert.deepEqual(gotA, Array.from({ length: 100 }, (_, i) => i));
    assert.deepEqual(gotB, Array.from({ length: 100 }, (_, i) => 1000 + i));
    assert.equal((await a.next()).done, true);
    assert.equal((await b.next()).done, true);
  });

  test('many concurrent streams on a pool each arrive complete and in order', async () => {
    const p = await pool({ workers: 2 });
    const results = await Promise.all(Array.from({ length: 30 }, (_, k) => p.streamEval(`range(${k * 50})`, null, { highWaterMark: 1 + (k % 7) }).toArray()));
    results.forEach((items, k) => assert.deepEqual(items, Array.from({ length: k * 50 }, (_, i) => i)));
  });
});

describe('sizes', () => {
  test('empty streams end at once', async () => {
    const p = await withGenerators();
    for (const expr of ['iter([])', 'range(0)', '(x for x in [])', 'agen(0)', '{}']) {
      const started = Date.now();
      assert.deepEqual(await p.streamEval(expr).toArray(), []);
      assert.ok(Date.now() - started < 2000, `${expr} took ${Date.now() - started} ms`);
    }
  });

  test('a 1000-item stream arrives complete and in order', async () => {
    const p = await withGenerators();
    const expected = Array.from({ length: 1000 }, (_, i) => i);
    for (const highWaterMark of [1, 7, 1024]) {
      const items: number[] = [];
      for await (const x of p.streamEval('range(1000)', null, { highWaterMark })) items.push(x);
      assert.deepEqual(items, expected);
    }
    const rows = await p.streamEval('({"id": i, "name": "n%d" % i} for i in range(1000))').toArray();
    assert.deepEqual(rows, expected.map((i) => ({ id: i, name: `n${i}` })));
  });

  test('throughput: items are batched (a million small items in seconds)', async () => {
    const p = await pool();
    const started = Date.now();
    let n = 0;
    let sum = 0;
    for await (const x of p.streamEval('range(1_000_000)')) {
      n++;
      sum += x;
    }
    assert.equal(n, 1_000_000);
    assert.equal(sum, (999_999 * 1_000_000) / 2);
    assert.ok(Date.now() - started < 20_000, `took ${Date.now() - started} ms`);
  });
});

describe('examples', () => {
  test('examples/streaming.ts runs', async () => {
    const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'examples', 'streaming.ts')], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const code = await new Promise((resolve) => child.on('exit', resolve));
    clearTimeout(timer);
    assert.equal(code, 0, stderr);
    for (const line of ['squares: 0 1 4 9 16', 'toArray: [ 0, 1, 2, 3, 4 ]', 'rows: 2500', 'tick 2', 'closed: true', 'aborted: ERR_ABORTED', 'then ZeroDivisionError', 'async: [ 3, 2, 1 ]', 'done']) {
      assert.ok(stdout.includes(line), `missing ${JSON.stringify(line)} in:\n${stdout}`);
    }
  });
});

describe('await using', () => {
  test('closes the stream (and its Python iterator) at the end of the block', async () => {
    const p = await pool();
    await p.exec('closed = []\ndef rows():\n    try:\n        yield from range(10**9)\n    finally:\n        closed.append(True)');
    {
      await using rows = p.stream('__main__', 'rows');
      const first = await rows.next();
      assert.equal(first.value, 0);
    }
    assert.deepEqual(await p.eval('closed'), [true]);
  });
});
