/**
 * Callbacks: Python calling TypeScript functions (`from pyworkers import host`). Every rule of docs/callbacks.md.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ArgumentError, NDArray, PyRef, PythonError, TimeoutError, WorkerCrashedError, createPool, type Pool } from '../src/index.js';
import { collectGarbage, pool as makePool, rejection, sleep, until } from './helpers.js';

const ROOT = path.resolve(import.meta.dirname, '..');

const PY = `
from pyworkers import host, HostError
import pyworkers

def add(a, b):
    return host.add(a, b)

def by_name(name, *args):
    return host.call(name, *args)

def with_kwargs():
    return host.echo(1, 'two', flag=True)

def catch(name):
    try:
        host.call(name, 'x')
    except HostError as e:
        return [e.name, e.message, 'at ' in e.stack, e.function]

def escape():
    return host.fail('x')

def roundtrip(value):
    return host.echo(value)

def counted(n):
    total = 0
    for i in range(n):
        total += host.inc(i)
    return total

async def gathered():
    import asyncio
    ticks = []
    async def ticker():
        for _ in range(5):
            ticks.append(1)
            await asyncio.sleep(0.01)
    a, b, _ = await asyncio.gather(host.slow(1), host.slow(2), ticker())
    return [a, b, len(ticks)]

def threaded(n, busy):
    import threading
    out = []
    def work(i):
        out.append(host.add(i, 1000))
    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    if busy:  # the main thread runs user code meanwhile: no one else reads the channel
        x = 0
        while any(t.is_alive() for t in threads):
            x += 1
    for t in threads:
        t.join()
    return sorted(out)

def down(n):
    return 0 if n == 0 else 1 + host.up(n - 1)

def wait_forever():
    return host.never()

def ask_and_sleep(seconds):
    return host.nested_sleep(seconds)

def nap(seconds):
    import time
    time.sleep(seconds)
    return 'woke'

class Model:
    def __init__(self):
        self.seen = []
    def predict(self, x):
        return x * 2

def with_handle():
    m = Model()
    back = host.use_model(pyworkers.ref(m))
    return back is m

def pid():
    import os
    return os.getpid()

def call_then_die():
    return host.die()
`;

describe('callbacks', () => {
  let pool: Pool;
  before(async () => {
    pool = await createPool({
      workers: 2,
      setup: PY,
      functions: {
        add: (a: number, b: number) => a + b,
        echo: (...args: unknown[]) => (args.length === 1 ? args[0] : args),
        fail: (x: string) => {
          throw new RangeError(`no ${x}`);
        },
        failAsync: async () => {
          await sleep(1);
          throw new TypeError('async failure');
        },
        slow: async (x: number) => {
          await sleep(50);
          return x * 10;
        },
        inc: (i: number) => i + 1,
        never: () => new Promise(() => {}),
      },
    });
  });
  after(() => pool.close());

  it('Python calls registered functions as host.name(...) and host.call(name, ...); sync and async', async () => {
    assert.equal(await pool.call('__main__', 'add', [2, 3]), 5);
    assert.equal(await pool.call('__main__', 'by_name', ['add', 4, 5]), 9);
    assert.equal(await pool.call('__main__', 'by_name', ['slow', 3]), 30);
    // keyword arguments arrive as one object after the others
    assert.deepEqual(await pool.call('__main__', 'with_kwargs'), [1, 'two', { flag: true }]);
  });

  it('arguments and results cross with the value table', async () => {
    const value = { date: new Date(86_400_000), nested: [1, 'x', null, true, { k: 2.5 }], big: 2n ** 70n, bytes: Buffer.from('hi'), arr: new Float64Array([1, 2]) };
    const back = (await pool.call('__main__', 'roundtrip', [value])) as typeof value;
    assert.deepEqual(back.date, value.date);
    assert.deepEqual(back.nested, value.nested);
    assert.equal(back.big, value.big);
    assert.deepEqual(Buffer.from(back.bytes), value.bytes);
    assert.ok(back.arr instanceof NDArray);
    assert.deepEqual([...(back.arr as unknown as NDArray).data], [1, 2]);
  });

  it('expose and unexpose change what Python may call, on every worker; bad input is an ArgumentError', async () => {
    pool.expose('twice', (x: number) => 2 * x);
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => pool.call('__main__', 'by_name', ['twice', i])));
    assert.deepEqual(results, [0, 2, 4, 6, 8, 10, 12, 14]);
    assert.equal(pool.unexpose('twice'), true);
    assert.equal(pool.unexpose('twice'), false);
    const error = await rejection(pool.call('__main__', 'by_name', ['twice', 1]));
    assert.ok(error instanceof PythonError);
    assert.throws(() => pool.expose('not valid', () => 1), ArgumentError);
    assert.throws(() => pool.expose('fine', 42 as never), /fn must be a function/);
    await assert.rejects(createPool({ functions: { f: 'nope' as never } }), /options\.functions\.f must be a function/);
  });

  it('an unknown name raises at once in Python, listing the registered names', async () => {
    const [name, message] = (await pool.call('__main__', 'catch', ['nope'])) as string[];
    assert.equal(name, 'LookupError');
    assert.match(message!, /no host function 'nope'/);
    assert.match(message!, /registered: add, echo, fail/);
  });

  it('a TypeScript throw raises HostError in Python (name, message, stack), which Python can catch', async () => {
    assert.deepEqual(await pool.call('__main__', 'catch', ['fail']), ['RangeError', 'no x', true, 'fail']);
    assert.deepEqual(await pool.call('__main__', 'catch', ['failAsync']), ['TypeError', 'async failure', true, 'failAsync']);
  });

  it('an escaping HostError is a PythonError whose traceback shows the callback', async () => {
    const error = await rejection(pool.call('__main__', 'escape'));
    assert.ok(error instanceof PythonError);
    assert.equal(error.type, 'HostError');
    assert.equal(error.pythonModule, 'pyworkers');
    assert.match(error.message, /RangeError: no x/);
    assert.match(error.traceback, /line \d+, in escape/); // the Python function that called back
    assert.match(error.traceback, /JavaScript stack of host function 'fail'/);
    assert.match(error.traceback, /at fail \(.*callbacks\.test\.ts/); // where the host function threw
    assert.doesNotMatch(error.traceback, /_pyworkers|AsyncLocalStorage|worker\.ts/); // no frames of pyworkers itself
  });

  it('async def code awaits a callback without blocking its event loop', async () => {
    const [a, b, ticks] = (await pool.call('__main__', 'gathered')) as number[];
    assert.equal(a, 10);
    assert.equal(b, 20);
    assert.equal(ticks, 5); // the ticker ran while both callbacks were awaited
  });

  it('callbacks work from Python threads, also while the main thread runs Python code', async () => {
    const expected = Array.from({ length: 6 }, (_, i) => i + 1000);
    assert.deepEqual(await pool.call('__main__', 'threaded', [6, false]), expected);
    assert.deepEqual(await pool.call('__main__', 'threaded', [6, true]), expected);
  });

  it('a handle passes both ways: the host function gets a PyRef and can use it; Python gets its object back', async () => {
    let typeName = '';
    pool.expose('use_model', async (model: PyRef) => {
      assert.ok(model instanceof PyRef);
      typeName = model.typeName;
      assert.equal(await model.call('predict', [21]), 42); // runs nested, inside the wait
      return model;
    });
    assert.equal(await pool.call('__main__', 'with_handle'), true);
    assert.equal(typeName, '__main__.Model');
  });

  it('the outer call timeout ends a callback that never settles; an abort interrupts the wait; the worker serves on', async () => {
    const restarts = pool.stats().restarts;
    const t0 = Date.now();
    const error = await rejection(pool.call('__main__', 'wait_forever', [], { timeout: 200 }));
    assert.ok(error instanceof TimeoutError);
    assert.ok(Date.now() - t0 < 1500);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    assert.equal((await rejection(pool.call('__main__', 'wait_forever', [], { signal: ac.signal }))).code, 'ERR_ABORTED');
    assert.equal(pool.stats().restarts, restarts); // interrupted, not killed
    assert.equal(await pool.call('__main__', 'add', [1, 1]), 2);
  });
});

describe('re-entrancy', () => {
  it('Python -> TS -> Python -> TS, 12 levels deep, through a context and through the pool (one worker)', async () => {
    await using pool = await makePool({ workers: 1, setup: PY });
    await using ctx = pool.context();
    await ctx.exec(PY);
    let deepest = 0;
    pool.expose('up', (n: number) => {
      deepest = Math.max(deepest, 12 - n);
      return ctx.call('__main__', 'down', [n]);
    });
    assert.equal(await ctx.call('__main__', 'down', [12]), 12);
    assert.equal(deepest, 12);
    pool.expose('up', (n: number) => pool.call('__main__', 'down', [n]));
    assert.equal(await pool.call('__main__', 'down', [12]), 12);
    assert.equal(await pool.call('__main__', 'down', [12]), 12);
  });

  it('calls that are not made by the callback wait their turn behind the call that waits for it', async () => {
    await using pool = await makePool({ workers: 1, setup: PY });
    const order: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    pool.expose('gate', async () => {
      await gate;
      order.push('callback settled');
      return 1;
    });
    const outer = pool.eval('host.gate()').then(() => order.push('outer'));
    await sleep(50);
    const other = pool.eval('2').then(() => order.push('other'));
    await sleep(50);
    assert.deepEqual(order, []);
    release();
    await Promise.all([outer, other]);
    assert.deepEqual(order, ['callback settled', 'outer', 'other']);
  });

  it("the outer call's timeout interrupts the nested calls its callback made, then the outer call", async () => {
    await using pool = await makePool({ workers: 1, setup: PY, forceKillAfter: 3000 });
    let nested: Promise<unknown> | undefined;
    pool.expose('nested_sleep', (s: number) => (nested = pool.call('__main__', 'nap', [s])));
    const t0 = Date.now();
    assert.ok((await rejection(pool.call('__main__', 'ask_and_sleep', [30], { timeout: 300 }))) instanceof TimeoutError);
    assert.ok(Date.now() - t0 < 2500, `took ${Date.now() - t0} ms`);
    await rejection(nested!);
    assert.equal(pool.stats().restarts, 0); // interrupted, not killed
    assert.equal(await pool.call('__main__', 'nap', [0]), 'woke');
  });
});

describe('callbacks when the worker dies', () => {
  it('a worker killed during a callback fails its call with WorkerCrashedError; the late result is dropped', async () => {
    await using pool = await makePool({ workers: 1, setup: PY });
    const pid = (await pool.call('__main__', 'pid')) as number;
    let settle!: (v: unknown) => void;
    pool.expose('die', () => {
      process.kill(pid, 'SIGKILL');
      return new Promise((r) => (settle = r));
    });
    const error = await rejection(pool.call('__main__', 'call_then_die'));
    assert.ok(error instanceof WorkerCrashedError, String(error));
    settle('too late');
    await sleep(20);
    assert.equal(await pool.eval('3'), 3);
    assert.ok(await until(() => pool.stats().restarts === 1));
  });
});

describe('callbacks at volume', () => {
  it('100,000 callbacks leave memory flat on both sides', async () => {
    await using pool = await makePool({ workers: 1, setup: PY, functions: { inc: (i: number) => i + 1 } });
    const n = 20_000;
    const expected = (n * (n + 1)) / 2;
    const rssOf = async () => (await pool.memoryStats()).workers[0]!.rss!;
    // warm up: allocator pools and caches reach their steady size
    assert.equal(await pool.call('__main__', 'counted', [n]), expected);
    collectGarbage();
    const hostBefore = process.memoryUsage().heapUsed;
    const pyBefore = await rssOf();
    for (let round = 0; round < 5; round++) assert.equal(await pool.call('__main__', 'counted', [n]), expected);
    collectGarbage();
    const hostGrowth = process.memoryUsage().heapUsed - hostBefore;
    const pyGrowth = (await rssOf()) - pyBefore;
    assert.ok(pyGrowth < 2 * 2 ** 20, `worker RSS grew ${pyGrowth} bytes over 100,000 callbacks`);
    assert.ok(hostGrowth < 16 * 2 ** 20, `host heap grew ${hostGrowth} bytes over 100,000 callbacks`);
    assert.equal((await pool.memoryStats()).workers[0]!.handles.count, 0);
  });
});

describe('examples of docs/objects.md and docs/callbacks.md', () => {
  const run = (name: string) =>
    new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--import', 'tsx', path.join('examples', `${name}.ts`)], { cwd: ROOT, timeout: 60_000 }, (error, stdout, stderr) => {
        if (error) reject(new Error(`${name} failed: ${error.message}\n${stdout}\n${stderr}`));
        else resolve(stdout);
      });
    });

  it('model-handle: a model trained once, used through its handle', async () => {
    const out = await run('model-handle');
    assert.match(out, /^as a value: Cannot convert to JavaScript: Python type '__main__\.LinearModel' has no JavaScript counterpart/m);
    assert.match(out, /^model: LinearModel\(coef_=2\.000, intercept_=1\.000\)$/m);
    assert.match(out, /^predict: \[ 21, 41 \]$/m);
    assert.match(out, /^describe: LinearModel with slope 2\.0$/m);
    assert.match(out, /^live handles: 1$/m);
  });

  it('progress-callback: progress from a Python loop', async () => {
    const out = await run('progress-callback');
    assert.match(out, /10 progress updates, the last at 100%$/m);
  });

  it('fetch-from-node: Python fetches data from the Node service, errors included', async () => {
    const out = await run('fetch-from-node');
    assert.match(out, /^GET \/\?user=1 -> 200 \{"name":"Ada","orders":3,/m);
    assert.match(out, /^GET \/\?user=3 -> 404 \{"error":"NotFoundError","message":"no user 3"\}$/m);
  });
});

describe('callbacks at the edges', () => {
  it('a Python thread that outlives its call calls back while the worker is idle', async () => {
    await using pool = await makePool({ workers: 1 });
    const got: number[] = [];
    pool.expose('later', (x: number) => {
      got.push(x);
      return x + 1;
    });
    await pool.exec(`
import threading, time
from pyworkers import host
results = []
def start():
    def run():
        time.sleep(0.2)  # after the call below has returned: the worker waits for requests
        results.append(host.later(41))
    threading.Thread(target=run).start()
`);
    await pool.call('__main__', 'start');
    assert.ok(await until(() => got.length === 1, 5000));
    assert.ok(await until(async () => (await pool.eval('results')).length === 1));
    assert.deepEqual(await pool.eval('results'), [42]);
  });

  it('setup code may call back', async () => {
    await using pool = await makePool({ workers: 1, functions: { config: () => ({ size: 3 }) }, setup: 'from pyworkers import host\nSIZE = host.config()["size"]' });
    assert.equal(await pool.eval('SIZE'), 3);
  });

  it('workers recycled after every call serve calls whose callbacks call back into them', async () => {
    await using pool = await makePool({ workers: 2, setup: PY, recycle: { maxCalls: 1 } });
    let recycled = 0;
    pool.on('recycle', () => recycled++);
    pool.expose('up', (n: number) => pool.call('__main__', 'down', [n]));
    for (let round = 0; round < 4; round++) {
      const results = await Promise.all(Array.from({ length: 6 }, (_, i) => pool.call('__main__', 'down', [i % 4])));
      assert.deepEqual(results, Array.from({ length: 6 }, (_, i) => i % 4));
      assert.ok(await until(() => recycled > round, 10_000), `round ${round}: no recycle`); // (a replacement takes a while to start)
    }
    assert.ok(recycled >= 4, `recycled ${recycled}`);
  });

  it('python code outside a worker gets a clear error from pyworkers.host', async () => {
    await using pool = await makePool({ workers: 1 });
    // the module exists in workers only: a subprocess of the worker has no host
    const out = await pool.eval(`__import__('subprocess').run([__import__('sys').executable, '-c', 'import pyworkers'], capture_output=True).returncode`);
    assert.notEqual(out, 0);
  });
});

describe('callbacks and two pools', () => {
  it("a host function of one pool calling another pool goes through that pool's queue", async () => {
    await using a = await makePool({ workers: 1 });
    await using b = await makePool({ workers: 1 });
    const bPid = (await b.eval('__import__("os").getpid()')) as number;
    a.expose('viaB', () => b.eval('__import__("os").getpid()'));
    assert.equal(await a.eval('__import__("pyworkers").host.viaB()'), bPid);
  });
});
