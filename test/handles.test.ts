/**
 * Handles (PyRef): Python objects that stay in one worker, used from TypeScript. Every rule of docs/objects.md.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  ArgumentError,
  ConversionError,
  PyRef,
  RefDisposedError,
  RefLostError,
  RefWorkerError,
  TimeoutError,
  WorkerCrashedError,
  createPool,
  type Pool,
} from '../src/index.js';
import { collectGarbage, pool as makePool, rejection, until } from './helpers.js';

const CLASSES = `
import weakref
class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y
        self.origin = None
    def norm(self):
        return (self.x ** 2 + self.y ** 2) ** 0.5
    def scaled(self, k, *, dx=0):
        return Point(self.x * k + dx, self.y * k)
    def __repr__(self):
        return 'Point(%r, %r)' % (self.x, self.y)
class Marker:
    pass
alive = weakref.WeakSet()
def make(x, y):
    p = Point(x, y)
    alive.add(p)
    return p
def same(a, b):
    return a is b
def pid():
    import os
    return os.getpid()
def slow(self, seconds):
    import time
    time.sleep(seconds)
Point.slow = slow
`;

describe('handles', () => {
  let pool: Pool;
  before(async () => {
    pool = await createPool({ workers: 2, setup: CLASSES });
  });
  after(() => pool.close());

  it('callRef and evalRef answer a PyRef that names the type; calls, attributes, values and repr go through it', async () => {
    await using p = await pool.callRef('__main__', 'make', [3, 4]);
    assert.ok(p instanceof PyRef);
    assert.equal(p.typeName, '__main__.Point');
    assert.equal(typeof p.workerId, 'number');
    assert.equal(await p.call('norm'), 5);
    assert.equal(await p.get('x'), 3);
    await p.set('x', 6);
    assert.equal(await p.repr(), 'Point(6, 4)');
    assert.deepEqual(await pool.evalRef('[1, 2]').then((r) => r.value()), [1, 2]);
    const s = await p.callRef('scaled', [2], { kwargs: { dx: 1 } });
    assert.equal(await s.repr(), 'Point(13, 8)');
    assert.equal(s.workerId, p.workerId);
    const x = await s.getRef('x');
    assert.equal(x.typeName, 'int');
    assert.equal(await x.value(), 13);
    await p.set('origin', s); // a handle as a value: the object itself
    assert.equal(await p.get('origin.x'), 13); // dotted paths
    await s.dispose();
  });

  it("the call option returns: 'ref' gives a handle too; a bad value is an ArgumentError that names it", async () => {
    const r = (await pool.call('__main__', 'make', [1, 1], { returns: 'ref' })) as PyRef;
    assert.ok(r instanceof PyRef);
    assert.equal(await pool.eval('1 + 1', null, { returns: 'value' }), 2);
    const bad = await rejection(pool.call('__main__', 'make', [1, 1], { returns: 'handle' as never }));
    assert.ok(bad instanceof ArgumentError);
    assert.match(bad.message, /options\.returns/);
    assert.throws(() => pool.stream('builtins', 'range', [3], { returns: 'ref' } as never), /returns/);
    await r.dispose();
  });

  it('contexts have callRef and evalRef; their handles live on the context worker', async () => {
    await using ctx = pool.context();
    await ctx.exec(CLASSES + '\nq = Point(1, 2)');
    const r = await ctx.evalRef('q');
    assert.equal(r.workerId, ctx.workerId);
    assert.equal(await ctx.eval('q is r', { r }), true);
    const c = await ctx.callRef('__main__', 'Point', [5, 5]);
    assert.equal(await c.call('norm'), Math.hypot(5, 5));
    await r.dispose();
    await c.dispose();
  });

  it('a handle passed to a call arrives as the object itself; pool calls with handles run on their worker', async () => {
    const p = await pool.callRef('__main__', 'make', [1, 2]);
    // Spread calls over both workers: every call that carries the handle runs where it lives.
    const results = await Promise.all(Array.from({ length: 40 }, () => pool.call('__main__', 'same', [p, p])));
    assert.ok(results.every((r) => r === true));
    const pids = new Set(await Promise.all(Array.from({ length: 20 }, () => pool.eval('(pid(), p.x)[0]', { p }))));
    assert.equal(pids.size, 1);
    // Nested in a value, and as a local of an eval.
    assert.equal(await pool.eval('d["p"] is p', { d: { p }, p }), true);
    await p.dispose();
  });

  it('a handle on another worker than its own is a RefWorkerError', async () => {
    const a = await pool.callRef('__main__', 'make', [1, 1]);
    // A context on the other worker.
    let other = pool.context();
    for (let i = 0; i < 4 && other.workerId === a.workerId; i++) other = pool.context();
    assert.notEqual(other.workerId, a.workerId);
    const error = await rejection(other.call('__main__', 'same', [a, a]));
    assert.ok(error instanceof RefWorkerError, String(error));
    assert.equal(error.code, 'ERR_REF_WORKER');
    // Handles of two workers in one call.
    const b = await other.callRef('__main__', 'make', [2, 2]);
    const mixed = await rejection(pool.call('__main__', 'same', [a, b]));
    assert.ok(mixed instanceof RefWorkerError);
    assert.match(mixed.message, /different workers/);
    // A handle of another pool.
    await using second = await createPool({ workers: 1, setup: CLASSES });
    const foreign = await rejection(second.call('__main__', 'same', [a, a]));
    assert.ok(foreign instanceof RefWorkerError);
    assert.match(foreign.message, /another pool/);
    await Promise.all([a.dispose(), b.dispose(), other.close()]);
  });

  it('timeout, signal and kwargs apply to handle calls', async () => {
    const p = await pool.callRef('__main__', 'make', [1, 1]);
    const t = await rejection(p.call('slow', [5], { timeout: 100 }));
    assert.ok(t instanceof TimeoutError);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    assert.equal((await rejection(p.call('slow', [5], { signal: ac.signal }))).code, 'ERR_ABORTED');
    const s = await p.callRef('scaled', [1], { kwargs: { dx: 10 } });
    assert.equal(await s.get('x'), 11);
    await s.dispose();
    // The handle survived the interrupts: the worker was not replaced.
    assert.equal(await p.call('norm'), Math.SQRT2);
    await p.dispose();
  });

  it('dispose releases the object in the worker; later uses reject with ERR_REF_DISPOSED; twice is fine', async () => {
    await using ctx = pool.context();
    await ctx.exec(CLASSES);
    const before = await ctx.eval('len(alive)');
    const p = await ctx.callRef('__main__', 'make', [7, 7]);
    assert.equal(await ctx.eval('len(alive)'), before + 1);
    const pending = p.call('norm'); // sent before the dispose: it still runs
    await p.dispose();
    assert.equal(await pending, Math.hypot(7, 7));
    assert.equal(p.disposed, true);
    await p.dispose();
    const error = await rejection(p.call('norm'));
    assert.ok(error instanceof RefDisposedError);
    assert.equal(error.code, 'ERR_REF_DISPOSED');
    assert.match(error.message, /__main__\.Point/);
    await rejection(pool.call('__main__', 'same', [p, p])).then((e) => assert.ok(e instanceof RefDisposedError));
    await ctx.gc();
    assert.equal(await ctx.eval('len(alive)'), before);
  });

  it('await using disposes at the end of the block', async () => {
    let kept: PyRef;
    {
      await using p = await pool.callRef('__main__', 'make', [1, 0]);
      kept = p;
      assert.equal(kept.disposed, false);
    }
    assert.equal(kept.disposed, true);
  });

  it('memoryStats counts live handles per worker with their types; handles the program drops are released', async () => {
    const count = async (type: string) => {
      const stats = await pool.memoryStats();
      assert.equal(stats.totals.handles, stats.workers.reduce((n, w) => n + w.handles.count, 0));
      return stats.workers.reduce((n, w) => n + (w.handles.types[type] ?? 0), 0);
    };
    const refs = await Promise.all([pool.callRef('__main__', 'Marker'), pool.callRef('__main__', 'Marker'), pool.evalRef('Marker()')]);
    assert.equal(await count('__main__.Marker'), 3);
    await Promise.all(refs.map((r) => r.dispose()));
    assert.equal(await count('__main__.Marker'), 0);

    // Dropped without dispose: the FinalizationRegistry releases them once collected.
    await (async () => {
      for (let i = 0; i < 20; i++) await pool.callRef('__main__', 'Marker');
    })();
    assert.equal(await count('__main__.Marker'), 20);
    assert.ok(
      await until(async () => {
        collectGarbage();
        await new Promise((r) => setImmediate(r));
        return (await count('__main__.Marker')) === 0;
      }, 10_000, 100),
      'dropped handles were not released',
    );
  });

  it('pyworkers.ref(obj) sends a handle inside any value', async () => {
    const out = (await pool.eval('{"point": __import__("pyworkers").ref(Point(1, 2)), "n": 3}')) as { point: PyRef; n: number };
    assert.ok(out.point instanceof PyRef);
    assert.equal(out.n, 3);
    assert.equal(await out.point.call('norm'), Math.hypot(1, 2));
    await out.point.dispose();
  });

  it('streams take handles as arguments and run on their worker', async () => {
    const p = await pool.callRef('__main__', 'make', [2, 3]);
    const items: number[] = [];
    for await (const v of pool.streamEval<number>('(p.x * i for i in range(3))', { p })) items.push(v);
    assert.deepEqual(items, [0, 2, 4]);
    await p.dispose();
  });

  it('an unconvertible result names its type once, shows a short repr, and points at handles', async () => {
    const error = await rejection(pool.call('__main__', 'make', [1, 2]));
    assert.ok(error instanceof ConversionError);
    assert.equal(error.message.split("'__main__.Point'").length, 2, error.message); // the type, once
    assert.match(error.message, /Point\(1, 2\)/);
    assert.match(error.message, /callRef\(\)|evalRef\(\)/);
    const long = await rejection(pool.eval('type("Big", (), {"__repr__": lambda s: "x" * 500})()'));
    assert.ok(long.message.length < 400, long.message);
  });
});

describe('handles when their worker goes', () => {
  it('a crash fails the calls in flight with WorkerCrashedError, and later uses with ERR_REF_LOST', async () => {
    const pool = await makePool({ workers: 1, setup: CLASSES });
    try {
      const p = await pool.callRef('__main__', 'make', [1, 1]);
      const pid = (await pool.call('__main__', 'pid')) as number;
      const running = p.call('slow', [10]);
      await new Promise((r) => setTimeout(r, 100));
      process.kill(pid, 'SIGKILL');
      assert.ok((await rejection(running)) instanceof WorkerCrashedError);
      const lost = await rejection(p.call('norm'));
      assert.ok(lost instanceof RefLostError, String(lost));
      assert.equal(lost.code, 'ERR_REF_LOST');
      assert.match(lost.message, /__main__\.Point/);
      // The pool serves on with a new worker; the dead handle's dispose is harmless.
      await p.dispose();
      assert.equal(await pool.eval('1 + 1'), 2);
    } finally {
      await pool.close();
    }
  });

  it('a worker with live handles is retired only once they are released (like open contexts)', async () => {
    const pool = await makePool({ workers: 1, setup: CLASSES, recycle: { maxCalls: 3 } });
    try {
      const recycled: string[] = [];
      pool.on('recycle', (e) => recycled.push(e.reason));
      const p = await pool.callRef('__main__', 'make', [1, 1]);
      for (let i = 0; i < 6; i++) await p.call('norm');
      assert.deepEqual(recycled, []); // pinned by the handle
      await p.dispose();
      assert.ok(await until(() => recycled.length === 1));
      assert.deepEqual(recycled, ['maxCalls']);
      await pool.eval('0'); // served by the replacement
    } finally {
      await pool.close();
    }
  });

  it('recycle() waits for live handles too; after their release the old worker ends', async () => {
    const pool = await makePool({ workers: 1, setup: CLASSES });
    try {
      const p = await pool.callRef('__main__', 'make', [1, 1]);
      const before = pool.stats().perWorker[0]!.workerId;
      await pool.recycle();
      assert.equal(await p.call('norm'), Math.SQRT2); // still there
      assert.equal(pool.stats().perWorker[0]!.workerId, before);
      await p.dispose();
      assert.ok(await until(() => pool.stats().perWorker.every((w) => w.workerId !== before)));
    } finally {
      await pool.close();
    }
  });
});
