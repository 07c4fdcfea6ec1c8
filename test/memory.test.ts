/**
 * Memory observability. Statistics, collections and tracing, per worker and across the pool (the guide's
 * API), and stats that answer while a worker is busy or stuck.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ContextClosedError, PoolClosedError, type WorkerMemoryStats } from '../src/index.js';
import { pool, sleep, until } from './helpers.js';

const MB = 1e6;
const STATS_KEYS = ['workerId', 'pid', 'host', 'rss', 'peakRss', 'gcStats', 'gcCount', 'gcThreshold', 'gcEnabled', 'calls', 'uptime', 'memoryLimit', 'handles'];
const TRACED_KEYS = ['tracedMemoryCurrent', 'tracedMemoryPeak'];
const TOTAL_KEYS = ['rss', 'peakRss', 'calls', 'gcCollected', 'gcUncollectable', 'handles'];

function checkStats(s: WorkerMemoryStats, tracing: boolean): void {
  assert.deepEqual(Object.keys(s).sort(), [...STATS_KEYS, ...(tracing ? TRACED_KEYS : [])].sort());
  assert.ok(Number.isInteger(s.workerId) && s.workerId > 0);
  assert.ok(Number.isInteger(s.pid) && s.pid > 0);
  assert.ok(typeof s.rss === 'number' && s.rss > 1 * MB, `rss ${s.rss}`);
  assert.ok(typeof s.peakRss === 'number' && s.peakRss >= s.rss);
  assert.equal(s.gcStats.length, 3);
  for (const g of s.gcStats) {
    assert.deepEqual(Object.keys(g).sort(), ['collected', 'collections', 'uncollectable']);
    for (const v of Object.values(g)) assert.ok(Number.isInteger(v) && v >= 0);
  }
  assert.equal(s.gcCount.length, 3);
  for (const v of s.gcCount) assert.ok(Number.isInteger(v) && v >= 0);
  assert.ok(s.gcThreshold.length >= 1 && s.gcThreshold.every((v) => Number.isInteger(v) && v >= 0));
  assert.equal(typeof s.gcEnabled, 'boolean');
  assert.ok(Number.isInteger(s.calls) && s.calls >= 0);
  assert.ok(typeof s.uptime === 'number' && s.uptime >= 0 && s.uptime < 600);
  assert.equal(s.memoryLimit, null);
  if (tracing) {
    assert.ok(Number.isInteger(s.tracedMemoryCurrent) && s.tracedMemoryCurrent! >= 0);
    assert.ok(s.tracedMemoryPeak! >= s.tracedMemoryCurrent!);
  }
}

describe('memory statistics', () => {
  it('has exactly the documented keys, the traced ones only while tracing (context and pool)', async () => {
    const p = await pool({ workers: 2 });
    const ctx = p.context();
    checkStats(await ctx.memoryStats(), false);
    const all = await p.memoryStats();
    assert.deepEqual(Object.keys(all).sort(), ['container', 'totals', 'workers']);
    assert.equal(all.workers.length, 2);
    assert.deepEqual(all.workers.map((w) => w.workerId), [1, 2]);
    for (const w of all.workers) checkStats(w, false);
    assert.deepEqual(Object.keys(all.totals).sort(), [...TOTAL_KEYS].sort());

    await p.tracemallocStart();
    checkStats(await ctx.memoryStats(), true);
    const traced = await p.memoryStats();
    for (const w of traced.workers) checkStats(w, true);
    assert.deepEqual(Object.keys(traced.totals).sort(), [...TOTAL_KEYS, ...TRACED_KEYS].sort());
    assert.equal(traced.totals.tracedMemoryCurrent, traced.workers.reduce((a, w) => a + w.tracedMemoryCurrent!, 0));

    await p.tracemallocStop();
    checkStats(await ctx.memoryStats(), false);
    assert.deepEqual(Object.keys((await p.memoryStats()).totals).sort(), [...TOTAL_KEYS].sort());
  });

  it('adds up the totals across workers', async () => {
    const p = await pool({ workers: 2 });
    await Promise.all([p.eval('1'), p.eval('2'), p.eval('3')]);
    const { workers, totals } = await p.memoryStats();
    assert.equal(totals.rss, workers.reduce((a, w) => a + w.rss!, 0));
    assert.equal(totals.peakRss, workers.reduce((a, w) => a + w.peakRss!, 0));
    assert.equal(totals.calls, workers.reduce((a, w) => a + w.calls, 0));
    assert.ok(totals.calls >= 3);
    const collected = workers.reduce((a, w) => a + w.gcStats.reduce((b, g) => b + g.collected, 0), 0);
    assert.equal(totals.gcCollected, collected);
    assert.equal(totals.gcUncollectable, 0);
  });

  it('counts the calls a worker served and its uptime', async () => {
    const p = await pool();
    const ctx = p.context();
    const before = await ctx.memoryStats();
    for (let i = 0; i < 5; i++) await ctx.eval('1 + 1');
    const after = await ctx.memoryStats();
    assert.equal(after.calls - before.calls, 5);
    assert.ok(after.uptime >= before.uptime);
  });

  it('answers within 100 ms while a 3 s pure-Python call runs on that worker', async () => {
    const p = await pool();
    const ctx = p.context();
    await ctx.exec('import time\ndef busy(s):\n    end = time.time() + s\n    n = 0\n    while time.time() < end:\n        n += 1\n    return n');
    let done = false;
    const job = ctx.call('__main__', 'busy', [3]).then((n) => ((done = true), n));
    await sleep(300);
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      const [one, all] = await Promise.all([ctx.memoryStats(), p.memoryStats()]);
      times.push(performance.now() - t);
      checkStats(one, false);
      assert.equal(all.workers.length, 1);
      await sleep(100);
    }
    assert.equal(done, false, 'the busy call was still running');
    assert.ok(Math.max(...times) < 100, `stats took ${times.map((t) => t.toFixed(1)).join(', ')} ms`);
    assert.ok((await job) > 0);
  });

  it('still reports rss from the OS while the worker is stuck in C, with the same keys', async () => {
    const p = await pool();
    const ctx = p.context();
    const stuck = ctx.eval('sum(range(3 * 10**8))').catch(() => undefined); // one C loop holding the GIL
    await sleep(150);
    const t = performance.now();
    const s = await ctx.memoryStats({ timeout: 200 });
    const took = performance.now() - t;
    assert.ok(took >= 150 && took < 1000, `took ${took} ms`);
    assert.deepEqual(Object.keys(s).sort(), [...STATS_KEYS].sort());
    assert.ok(typeof s.rss === 'number' && s.rss > 1 * MB);
    assert.ok(typeof s.peakRss === 'number' && s.peakRss >= s.rss);
    assert.deepEqual(s.gcStats, []); // the sign that Python did not answer
    assert.deepEqual(s.gcCount, [0, 0, 0]);
    assert.ok(s.pid > 0 && s.uptime > 0);
    const all = await p.memoryStats({ timeout: 200 });
    assert.equal(all.workers.length, 1);
    assert.ok(all.totals.rss > 1 * MB);
    assert.deepEqual(all.workers[0]!.gcStats, []);
    void stuck;
  });

  it("reports the worker's memory cap", async () => {
    const p = await pool({ maxMemory: '256MB' });
    const [w] = (await p.memoryStats()).workers;
    assert.equal(w!.memoryLimit, 256e6);
  });

  it('leaves out workers that are starting or exit meanwhile', async () => {
    const p = await pool({ workers: 2 });
    const [a] = p.core.liveWorkers();
    const stats = p.memoryStats();
    process.kill(a!.pid!, 'SIGKILL');
    const all = await stats;
    assert.ok(all.workers.length >= 1 && all.workers.length <= 2);
    // Now a replacement is starting: left out, not waited for.
    await until(() => p.core.liveWorkers().some((w) => w.state === 'starting'), 2000, 1);
    const meanwhile = await p.memoryStats();
    assert.ok(meanwhile.workers.every((w) => w.workerId !== a!.id));
    assert.equal(typeof (await p.gc()), 'number');
    await until(() => p.stats().idle === 2);
    assert.equal((await p.memoryStats()).workers.length, 2);
  });

  it('rejects on a closed context or pool', async () => {
    const p = await pool();
    const ctx = p.context();
    await ctx.close();
    await assert.rejects(ctx.memoryStats(), ContextClosedError);
    await assert.rejects(ctx.gc(), ContextClosedError);
    await p.close();
    await assert.rejects(p.memoryStats(), PoolClosedError);
    await assert.rejects(p.gc(), PoolClosedError);
    await assert.rejects(p.tracemallocStart(), PoolClosedError);
  });

  it('checks its options', async () => {
    const p = await pool();
    await assert.rejects(p.memoryStats({ timeout: 0 }), RangeError);
    await assert.rejects(p.memoryStats({ nope: 1 } as never), TypeError);
  });
});

describe('manual collection', () => {
  it('gc() and each generation return integers >= 0, on the pool and a context', async () => {
    const p = await pool({ workers: 2 });
    const ctx = p.context();
    for (const g of [undefined, 0, 1, 2] as const) {
      const n = await p.gc(g);
      assert.ok(Number.isInteger(n) && n >= 0, `pool.gc(${g}) = ${n}`);
      const m = await ctx.gc(g);
      assert.ok(Number.isInteger(m) && m >= 0, `ctx.gc(${g}) = ${m}`);
    }
  });

  it('collects cycles created in Python', async () => {
    const p = await pool({ workers: 2 });
    await p.gc();
    await p.exec('class Node:\n    pass\nfor _ in range(50):\n    a = Node(); b = Node(); a.other = b; b.other = a\ndel a, b');
    const collected = await p.gc();
    assert.ok(collected >= 100, `collected ${collected}`); // 50 cycles on each worker
    const ctx = p.context();
    await ctx.exec('class N:\n    pass\nx = N(); x.me = x\ndel x');
    assert.ok((await ctx.gc(2)) > 0);
    const s = await ctx.memoryStats();
    assert.ok(s.gcStats[2]!.collected > 0 && s.gcStats[2]!.collections > 0);
  });

  it('rejects bad generations with RangeError', async () => {
    const p = await pool();
    const ctx = p.context();
    for (const bad of [3, -1, 1.5, NaN, Infinity]) {
      await assert.rejects(p.gc(bad as never), RangeError);
      await assert.rejects(ctx.gc(bad as never), RangeError);
    }
    await assert.rejects(p.gc('1' as never), TypeError);
  });
});

describe('tracing', () => {
  it('tracedMemoryPeak >= current, and both grow after allocating a 10 MB list', async () => {
    const p = await pool();
    const ctx = p.context();
    await ctx.tracemallocStart();
    const before = await ctx.memoryStats();
    await ctx.exec('big = [0] * (10 * 1000 * 1000 // 8)'); // 10 MB of pointers
    const after = await ctx.memoryStats();
    assert.ok(after.tracedMemoryPeak! >= after.tracedMemoryCurrent!);
    assert.ok(after.tracedMemoryCurrent! - before.tracedMemoryCurrent! >= 9.5 * MB, `${before.tracedMemoryCurrent} -> ${after.tracedMemoryCurrent}`);
    assert.ok(after.tracedMemoryPeak! - before.tracedMemoryPeak! >= 9.5 * MB);
    await ctx.exec('del big');
    const freed = await ctx.memoryStats();
    assert.ok(freed.tracedMemoryCurrent! < after.tracedMemoryCurrent! - 9 * MB);
    assert.ok(freed.tracedMemoryPeak! >= after.tracedMemoryPeak!); // a peak never goes down
  });

  it('starts with 1 frame by default or the frames asked, on the pool or one worker', async () => {
    const p = await pool({ workers: 2 });
    const limit = "__import__('tracemalloc').get_traceback_limit() if __import__('tracemalloc').is_tracing() else 0";
    await p.tracemallocStart();
    assert.deepEqual(await p.eval(`[${limit}]`), [1]);
    await p.tracemallocStart(10);
    const ctx = p.context();
    assert.equal(await ctx.eval(limit), 10);
    await p.tracemallocStop();
    assert.equal(await ctx.eval(limit), 0);
    await ctx.tracemallocStart(3);
    assert.equal(await ctx.eval(limit), 3);
    const stats = await p.memoryStats();
    assert.equal(stats.workers.filter((w) => w.tracedMemoryCurrent !== undefined).length, 1);
    await ctx.tracemallocStop();
  });

  it('rejects bad frame counts with RangeError', async () => {
    const p = await pool();
    const ctx = p.context();
    for (const bad of [0, -1, 2.5, 65536]) {
      await assert.rejects(p.tracemallocStart(bad), RangeError);
      await assert.rejects(ctx.tracemallocStart(bad), RangeError);
    }
    await assert.rejects(p.tracemallocStart('2' as never), TypeError);
  });

  it('has replacement workers trace when the pool traces', async () => {
    const p = await pool();
    await p.tracemallocStart(4);
    const [first] = p.core.liveWorkers();
    await p.eval('__import__("os")._exit(3)').catch(() => undefined);
    await until(() => p.stats().idle === 1 && p.core.liveWorkers()[0] !== first);
    const s = await p.memoryStats();
    assert.notEqual(s.workers[0]!.workerId, first!.id);
    assert.ok(s.workers[0]!.tracedMemoryCurrent! > 0, 'the replacement traces');
    assert.equal(await p.eval("__import__('tracemalloc').get_traceback_limit()"), 4);
    await p.tracemallocStop();
    await p.eval('__import__("os")._exit(3)').catch(() => undefined);
    await until(() => p.stats().idle === 1);
    assert.equal((await p.memoryStats()).workers[0]!.tracedMemoryCurrent, undefined);
  });

  it('exec of x = [0] * 1000000 grows the worker; eval with a large local does not persist', async () => {
    const p = await pool();
    const ctx = p.context();
    await ctx.tracemallocStart();
    const start = await ctx.memoryStats();
    for (let n = 1; n <= 3; n++) await ctx.exec(`x${n} = [0] * 1000000`);
    const afterExec = await ctx.memoryStats();
    const execGrowth = afterExec.tracedMemoryCurrent! - start.tracedMemoryCurrent!;
    assert.ok(execGrowth > 3 * 7.9 * MB, `exec kept ${execGrowth} bytes`);
    assert.ok(afterExec.rss! - start.rss! > 3 * 7 * MB, `rss ${start.rss} -> ${afterExec.rss}`);

    const data = new Array(1_000_000).fill(0);
    const base = await ctx.memoryStats();
    for (let i = 0; i < 3; i++) assert.equal(await ctx.eval('len(data)', { data }), 1_000_000);
    const afterEval = await ctx.memoryStats();
    const evalGrowth = afterEval.tracedMemoryCurrent! - base.tracedMemoryCurrent!;
    assert.ok(evalGrowth < 0.2 * MB, `eval with locals kept ${evalGrowth} bytes`);
    assert.ok(afterEval.tracedMemoryPeak! - base.tracedMemoryCurrent! > 7 * MB, 'the local did exist meanwhile');
    // RSS need not go down (the C allocator keeps freed memory), but it does not grow with each call.
    for (let i = 0; i < 3; i++) await ctx.eval('len(data)', { data });
    const again = await ctx.memoryStats();
    assert.ok(again.rss! - afterEval.rss! < 4 * MB, `rss ${afterEval.rss} -> ${again.rss}`);
  });
});
