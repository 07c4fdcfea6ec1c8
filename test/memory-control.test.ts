/**
 * Memory control. Hard caps per worker and recycling of workers that grow.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { createPool, PythonError, type RecycleEvent } from '../src/index.js';
import { pool, sleep, until, rejection } from './helpers.js';

function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

const MiB = 1024 * 1024;


describe('hard memory cap per worker', () => {
  it('validates maxMemory and names the option', async () => {
    for (const bad of ['lots', -1, '1KB', {}]) {
      await assert.rejects(createPool({ maxMemory: bad as never }), /options\.maxMemory/);
    }
  });

  for (const [name, code] of [
    ['one huge allocation', 'len(b"x" * (600 * 2**20))'],
    ['MiB chunks', 'len([bytearray(2**20) for _ in range(10**4)])'],
    ['a flood of small objects', 'len([{} for _ in range(10**8)])'],
    ['many small strings', 'len([str(i) for i in range(10**8)])'],
  ] as const) {
    it(`turns ${name} over the cap into MemoryError, three times in a row, and serves on`, async () => {
      const p = await pool({ maxMemory: '256MB' });
      const pid = p.stats().perWorker[0]!.pid!;
      for (let round = 0; round < 3; round++) {
        const error = await rejection(p.eval(code));
        assert.ok(error instanceof PythonError, String(error));
        assert.equal(error.type, 'MemoryError');
        assert.equal(await p.eval('sum(range(10))'), 45, `round ${round}`);
      }
      assert.equal(p.stats().perWorker[0]!.pid, pid, 'the same worker served on');
      assert.equal(p.stats().restarts, 0);
      assert.ok(rssOf(pid) < 200 * MiB, `RSS stayed at ${rssOf(pid) / MiB} MiB`);
    });
  }

  it('shows the cap in memoryStats() as memoryLimit', async () => {
    const capped = await pool({ maxMemory: '256MB' });
    assert.equal((await capped.memoryStats()).workers[0]!.memoryLimit, 256e6);
    const free = await pool();
    assert.equal((await free.memoryStats()).workers[0]!.memoryLimit, null);
  });

  it('lets allocations under the cap through', async () => {
    const p = await pool({ maxMemory: '256MB' });
    assert.equal(await p.eval('len(b"x" * (100 * 2**20))'), 100 * MiB);
  });
});

describe('recycling', () => {
  it('validates the recycle options', async () => {
    await assert.rejects(createPool({ recycle: { maxCalls: 0 } }), /options\.recycle\.maxCalls/);
    await assert.rejects(createPool({ recycle: { maxRss: 'big' } }), /options\.recycle\.maxRss/);
    await assert.rejects(createPool({ recycle: { sometimes: true } as never }), /sometimes/);
  });

  it('retires a worker after maxCalls without losing or failing a call under load', async () => {
    const p = await pool({ workers: 2, recycle: { maxCalls: 50 } });
    const events: RecycleEvent[] = [];
    p.on('recycle', (e) => events.push(e));
    for (let batch = 0; batch < 10; batch++) {
      const results = await Promise.all(Array.from({ length: 200 }, (_, i) => p.call('operator', 'mul', [i, 3])));
      results.forEach((r, i) => assert.equal(r, i * 3));
      await sleep(60); // replacements start ahead; the old workers serve on until they are ready
    }
    assert.ok(events.length >= 4, `${events.length} recycles`);
    assert.ok(events.every((e) => e.reason === 'maxCalls'));
    assert.equal(p.stats().failed, 0);
    assert.ok(await until(() => p.stats().workers === 2));
  });

  it('gives no new call to a worker past maxCalls: a spare started ahead takes over at once', async () => {
    const p = await pool({ recycle: { maxCalls: 3 } });
    assert.equal(p.stats().workers, 1, 'the spare is not counted');
    const pids: number[] = [];
    for (let i = 0; i < 9; i++) {
      pids.push(await p.eval('__import__("os").getpid()'));
      if (i % 3 === 2) await sleep(400); // time for the next spare to start
    }
    assert.deepEqual(pids.slice(0, 3), [pids[0], pids[0], pids[0]]);
    assert.deepEqual(pids.slice(3, 6), [pids[3], pids[3], pids[3]]);
    assert.deepEqual(pids.slice(6, 9), [pids[6], pids[6], pids[6]]);
    assert.equal(new Set(pids).size, 3);
  });

  it('reports MemoryError subclasses (numpy raises one) as MemoryError', async () => {
    const p = await pool();
    const error = await rejection(p.exec('class _ArrayMemoryError(MemoryError):\n    pass\nraise _ArrayMemoryError("huge")'));
    assert.equal(error.type, 'MemoryError');
  });

  it('retires a worker over maxRss; the replacement runs setup and exec() code first', async () => {
    const p = await pool({ setup: 'SETUP_RAN = True', recycle: { maxRss: '150MB' } });
    await p.exec('def answer():\n    return 42');
    const before = p.stats().perWorker[0]!.pid!;
    const events: RecycleEvent[] = [];
    p.on('recycle', (e) => events.push(e));
    // eval, not exec: exec() code is replayed on new workers by design
    await p.eval('globals().__setitem__("big", [0] * (30 * 10**6))');
    assert.ok(await until(() => events.length === 1));
    assert.equal(events[0]!.reason, 'maxRss');
    assert.equal(events[0]!.pid, before);
    assert.ok(events[0]!.rss! > 150e6);
    assert.ok(await until(() => p.stats().workers === 1));
    const after = p.stats().perWorker[0]!.pid!;
    assert.notEqual(after, before);
    assert.deepEqual(await p.eval('[SETUP_RAN, answer(), "big" in globals()]'), [true, 42, false]);
    assert.ok(rssOf(after) < 100 * MiB);
  });

  it('keeps a worker with an open context until the context closes', async () => {
    const p = await pool({ recycle: { maxRss: '150MB' } });
    const events: RecycleEvent[] = [];
    p.on('recycle', (e) => events.push(e));
    const ctx = p.context();
    await ctx.exec('big = [0] * (30 * 10**6)');
    await ctx.exec('small = 1');
    await sleep(100);
    assert.equal(events.length, 0, 'not retired while the context is open');
    assert.equal(await ctx.eval('len(big)'), 30 * 10 ** 6);
    await ctx.close();
    assert.ok(await until(() => events.length === 1));
  });

  it('pool.recycle() replaces every worker and gives fragmented memory back', async () => {
    const p = await pool({ workers: 2 });
    const fresh = rssOf(p.stats().perWorker[0]!.pid!);
    const ctxFree = p.stats().perWorker.map((w) => w.pid!);
    // Small dicts freed but for 1 in 64: every pymalloc arena stays pinned, RSS stays high.
    await p.exec('import gc\ndef fragment():\n    global keep\n    keep = [{} for _ in range(2 * 10**6)][::64]\n    gc.collect()');
    await Promise.all(ctxFree.map(() => p.call('__main__', 'fragment', [])));
    await Promise.all([p.call('__main__', 'fragment', []), p.call('__main__', 'fragment', [])]);
    const grown = Math.max(...ctxFree.map(rssOf));
    assert.ok(grown > fresh + 100 * MiB, `grew to ${grown / MiB} MiB from ${fresh / MiB}`);
    const events: RecycleEvent[] = [];
    p.on('recycle', (e) => events.push(e));
    await p.recycle();
    assert.equal(events.length, 2);
    assert.ok(events.every((e) => e.reason === 'manual' && typeof e.rss === 'number'));
    assert.ok(await until(() => p.stats().workers === 2));
    for (const w of p.stats().perWorker) {
      assert.ok(!ctxFree.includes(w.pid!));
      assert.ok(rssOf(w.pid!) < fresh * 1.5 + 10 * MiB, `replacement at ${rssOf(w.pid!) / MiB} MiB, fresh ${fresh / MiB} MiB`);
    }
    assert.equal(await p.eval('"keep" in globals()'), false);
  });

  it('no call is lost when pool.recycle() runs under load', async () => {
    const p = await pool({ workers: 2 });
    const calls = Array.from({ length: 3000 }, (_, i) => p.call('operator', 'add', [i, i]));
    await sleep(5);
    await p.recycle();
    (await Promise.all(calls)).forEach((r, i) => assert.equal(r, 2 * i));
    assert.equal(p.stats().failed, 0);
  });

  it('retires a worker that sat idle after serving calls', async () => {
    const p = await pool({ recycle: { idleTimeout: 150 } });
    const events: RecycleEvent[] = [];
    p.on('recycle', (e) => events.push(e));
    await sleep(400);
    assert.equal(events.length, 0, 'a fresh worker is not retired for idleness');
    await p.eval('1');
    assert.ok(await until(() => events.length === 1, 3000));
    assert.equal(events[0]!.reason, 'idleTimeout');
    assert.equal(await p.eval('2'), 2);
  });
});

describe('pressure monitoring', () => {
  it('validates the monitor options', async () => {
    await assert.rejects(createPool({ monitor: { interval: 1 } }), /options\.monitor\.interval/);
    await assert.rejects(createPool({ monitor: { gcPressure: -1 } }), /options\.monitor\.gcPressure/);
    await assert.rejects(createPool({ monitor: { rssWarning: 'lots' } }), /options\.monitor\.rssWarning/);
    await assert.rejects(createPool({ monitor: { every: 5 } as never }), /every/);
  });

  it('emits memory samples of every worker on the interval', async () => {
    const p = await pool({ workers: 2, monitor: { interval: 50 } });
    const events: any[] = [];
    p.on('memory', (e) => events.push(e));
    assert.ok(await until(() => events.length >= 3));
    const { samples } = events.at(-1);
    assert.equal(samples.length, 2);
    for (const s of samples) {
      assert.ok(s.rss > 1e6);
      assert.equal(s.gcCount.length, 3);
      assert.equal(s.gcThreshold.length, 3);
      assert.equal(typeof s.pid, 'number');
    }
  });

  it('signals gc-count pressure and collects on an idle worker with autoGc', async () => {
    const p = await pool({ monitor: { interval: 50, gcPressure: 0.5, autoGc: true } });
    const pressure: any[] = [];
    p.on('pressure', (e) => pressure.push(e));
    // Hold gen 0 above half its threshold without triggering a collection: gc disabled, objects kept.
    await p.exec('import gc\ngc.disable()\nheld = [[] for _ in range(int(gc.get_threshold()[0] * 0.9))]');
    assert.ok(await until(() => pressure.some((e) => e.reason === 'gc-count')));
    const event = pressure.find((e) => e.reason === 'gc-count');
    assert.equal(event.workerId, p.stats().perWorker[0]!.workerId);
    assert.ok(event.value > event.limit);
    // autoGc ran a full collection: the gen-0 count dropped.
    assert.ok(await until(async () => (await p.eval('__import__("gc").get_count()[0]')) < event.limit));
  });

  it('signals rss pressure past rssWarning', async () => {
    const p = await pool({ monitor: { interval: 50, rssWarning: '100MB' } });
    const pressure: any[] = [];
    p.on('pressure', (e) => pressure.push(e));
    await p.eval('globals().__setitem__("big", bytearray(150 * 2**20))');
    assert.ok(await until(() => pressure.some((e) => e.reason === 'rss')));
    const event = pressure.find((e) => e.reason === 'rss');
    assert.ok(event.value > 100e6);
    assert.equal(event.limit, 100e6);
  });
});

describe('leak finding', () => {
  const fixtures = new URL('./fixtures/', import.meta.url).pathname;
  const lineOf = (marker: string) => readFileSync(`${fixtures}leaky_app.py`, 'utf8').split('\n').findIndex((l) => l.includes(marker)) + 1;

  it('finds a module-level cache that grows each call, at the right line', async () => {
    const p = await pool({ pythonPath: [fixtures] });
    const report = await p.findLeaks({ module: 'leaky_app', fn: 'handle' }, { iterations: 40, warmup: 5 });
    const top = report.leaks[0]!;
    assert.ok(top, JSON.stringify(report.sites));
    assert.match(top.file, /leaky_app\.py$/);
    assert.equal(top.line, lineOf('LEAK: cache'));
    assert.ok(top.bytesPerIteration > 1000 && top.bytesPerIteration < 1300, String(top.bytesPerIteration));
    assert.ok(top.countPerIteration >= 1);
    assert.equal(top.steady, true);
    assert.equal(report.rssPerIteration.length, 40);
    assert.ok(report.tracedGrowthPerIteration > 1000);
    assert.ok(top.frames.length >= 1 && top.frames.at(-1)!.line === top.line);
  });

  it('finds a closure that keeps a large list alive', async () => {
    const p = await pool({ pythonPath: [fixtures] });
    const report = await p.findLeaks({ module: 'leaky_app', fn: 'register' }, { iterations: 20 });
    const top = report.leaks[0]!;
    assert.equal(top.line, lineOf('LEAK: closure'));
    assert.ok(top.bytesPerIteration >= 80_000, String(top.bytesPerIteration));
    assert.ok(report.rssGrowthPerIteration > 40_000, String(report.rssGrowthPerIteration));
  });

  it('does not report a list that grows only during warm-up', async () => {
    const p = await pool({ pythonPath: [fixtures] });
    const report = await p.findLeaks({ module: 'leaky_app', fn: 'warm_up_only' }, { iterations: 30, warmup: 5 });
    assert.deepEqual(report.leaks, [], JSON.stringify(report.leaks));
  });

  it('reports nothing significant for a workload that does not leak (code workload)', async () => {
    const p = await pool({ pythonPath: [fixtures] });
    const report = await p.findLeaks('import leaky_app\nleaky_app.clean()', { iterations: 30 });
    assert.deepEqual(report.leaks, [], JSON.stringify(report.leaks));
    assert.ok(Math.abs(report.tracedGrowthPerIteration) < 200, String(report.tracedGrowthPerIteration));
  });

  it('runs on a worker of its own and leaves the pool serving', async () => {
    const p = await pool({ pythonPath: [fixtures] });
    const pid = p.stats().perWorker[0]!.pid;
    const [report, value] = await Promise.all([p.findLeaks({ module: 'leaky_app', fn: 'handle' }, { iterations: 10 }), p.eval('1+1')]);
    assert.equal(value, 2);
    assert.ok(report.leaks.length >= 1);
    assert.equal(p.stats().perWorker[0]!.pid, pid);
    assert.equal(p.stats().workers, 1);
    assert.equal(await p.eval('"leaky_app" in __import__("sys").modules'), false, 'the workload did not run on the pool');
    await assert.rejects(p.findLeaks(42 as never), /workload/);
    await assert.rejects(p.findLeaks('x = 1', { iterations: 1 }), /options\.iterations/);
  });
});

describe('examples', () => {
  it('examples/memory-control.ts runs and shows each mechanism', async () => {
    const { execFile } = await import('node:child_process');
    const script = new URL('../examples/memory-control.ts', import.meta.url).pathname;
    const out: string = await new Promise((resolve, reject) =>
      execFile(process.execPath, ['--import', 'tsx', script], { timeout: 60_000 }, (error, stdout, stderr) => (error ? reject(new Error(stderr || String(error))) : resolve(stdout))),
    );
    assert.match(out, /cap: MemoryError, then 1 \+ 1 = 2/);
    assert.match(out, /pressure: rss/);
    assert.match(out, /recycled: maxRss/);
    assert.match(out, /leak: line 3 of <(setup|exec)> grows 1\d\d\d B\/iteration/);
  });
});
