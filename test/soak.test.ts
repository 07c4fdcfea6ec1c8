/**
 * Soaks: 100,000 pipelined calls while workers are SIGKILLed, with every execution counted in Python (in a file
 * each execution appends to): no call runs twice, none is lost, none hangs. And recycling under load: retired
 * workers exit, so live worker processes never outnumber the pool's workers, its spare and those retiring with
 * calls still running. And calls whose callbacks make nested calls, under the same kills.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { WorkerCrashedError, type Pool } from '../src/index.js';
import { alive, pool } from './helpers.js';

/** A pool whose `work(i)` appends i to a log file before it returns it; the log survives the workers. */
async function countingPool(log: string, workers: number, extra: Parameters<typeof pool>[0] = {}): Promise<Pool> {
  return pool({
    workers,
    setup: `import os\n_log = os.open(${JSON.stringify(log)}, os.O_WRONLY | os.O_APPEND | os.O_CREAT)\ndef work(i):\n    os.write(_log, b'%d\\n' % i)\n    return i`,
    ...extra,
  });
}

function executions(log: string): Map<number, number> {
  const counts = new Map<number, number>();
  for (const line of readFileSync(log, 'utf8').split('\n')) {
    if (line) counts.set(Number(line), (counts.get(Number(line)) ?? 0) + 1);
  }
  return counts;
}

/** Resolves when `promise` does, or rejects after `ms`: a hang fails the test instead of stalling the suite. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([promise, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} hung for ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

describe('soaks', () => {
  test('100,000 pipelined calls while workers are SIGKILLed: 0 run twice, 0 lost, 0 hung', { timeout: 300_000 }, async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pyworkers-soak-'));
    const log = path.join(dir, 'executions');
    const p = await countingPool(log, 2);
    const TOTAL = 100_000;
    const KILL_EVERY = 250;
    const outcome = new Array<'ok' | 'crashed' | undefined>(TOTAL);
    let next = 0;
    let settled = 0;
    let kills = 0;
    let owed = 0; // kills due while no worker was ready (both restarting)
    const killOne = () => {
      owed++;
      const ready = p.stats().perWorker.filter((w) => w.state === 'ready' && w.pid);
      while (owed > 0 && ready.length > 0) {
        const [victim] = ready.splice(Math.floor(Math.random() * ready.length), 1);
        try {
          process.kill(victim!.pid!, 'SIGKILL');
          kills++;
        } catch {
          // already gone
        }
        owed--;
      }
    };
    const lane = async () => {
      while (next < TOTAL) {
        const i = next++;
        try {
          assert.equal(await p.call('__main__', 'work', [i]), i);
          outcome[i] = 'ok';
        } catch (error) {
          assert.ok(error instanceof WorkerCrashedError, `call ${i}: ${String(error)}`);
          outcome[i] = 'crashed';
        }
        if (++settled % KILL_EVERY === 0) killOne();
      }
    };
    await within(Promise.all(Array.from({ length: 64 }, lane)), 240_000, 'the soak');
    const counts = executions(log);
    rmSync(dir, { recursive: true, force: true });
    const twice = [...counts].filter(([, n]) => n > 1).map(([i]) => i);
    const okNotRun = outcome.flatMap((o, i) => (o === 'ok' && counts.get(i) !== 1 ? [i] : []));
    const lost = outcome.flatMap((o, i) => (o === undefined ? [i] : []));
    const crashed = outcome.filter((o) => o === 'crashed').length;
    assert.ok(kills >= TOTAL / KILL_EVERY / 2, `only ${kills} kills`);
    assert.deepStrictEqual({ twice: twice.slice(0, 10), okNotRunOnce: okNotRun.slice(0, 10), lost: lost.slice(0, 10) }, { twice: [], okNotRunOnce: [], lost: [] });
    // each kill fails at most the calls that had started on that worker: the one running and replies not yet sent
    assert.ok(crashed <= kills * 16, `${crashed} calls failed for ${kills} kills`);
    assert.equal(p.stats().completed, TOTAL - crashed);
  });

  test('5,000 calls whose callbacks make nested calls, while workers are SIGKILLed: 0 run twice, 0 lost, 0 hung', { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pyworkers-soak-'));
    const log = path.join(dir, 'executions');
    const p = await pool({
      workers: 2,
      setup: [
        'import os',
        'from pyworkers import host',
        `_log = os.open(${JSON.stringify(log)}, os.O_WRONLY | os.O_APPEND | os.O_CREAT)`,
        "def outer(i):\n    os.write(_log, b'o%d\\n' % i)\n    return host.through(i) + 1",
        "def inner(i):\n    os.write(_log, b'n%d\\n' % i)\n    return i",
      ].join('\n'),
    });
    p.expose('through', (i: number) => p.call('__main__', 'inner', [i]));
    const TOTAL = 5_000;
    const outcome = new Array<'ok' | 'crashed' | undefined>(TOTAL);
    let next = 0;
    let settled = 0;
    let kills = 0;
    const lane = async () => {
      while (next < TOTAL) {
        const i = next++;
        try {
          assert.equal(await p.call('__main__', 'outer', [i]), i + 1);
          outcome[i] = 'ok';
        } catch (error) {
          assert.ok(error instanceof WorkerCrashedError, `call ${i}: ${String(error)}`);
          outcome[i] = 'crashed';
        }
        if (++settled % 100 === 0) {
          const ready = p.stats().perWorker.filter((w) => w.state === 'ready' && w.pid);
          const victim = ready[Math.floor(Math.random() * ready.length)];
          if (victim) {
            try {
              process.kill(victim.pid!, 'SIGKILL');
              kills++;
            } catch {
              // already gone
            }
          }
        }
      }
    };
    await within(Promise.all(Array.from({ length: 32 }, lane)), 100_000, 'the soak');
    const counts = new Map<string, number>();
    for (const line of readFileSync(log, 'utf8').split('\n')) if (line) counts.set(line, (counts.get(line) ?? 0) + 1);
    rmSync(dir, { recursive: true, force: true });
    const twice = [...counts].filter(([, n]) => n > 1).map(([k]) => k);
    const okNotRunOnce = outcome.flatMap((o, i) => (o === 'ok' && (counts.get(`o${i}`) !== 1 || counts.get(`n${i}`) !== 1) ? [i] : []));
    const lost = outcome.flatMap((o, i) => (o === undefined ? [i] : []));
    assert.ok(kills >= 20, `only ${kills} kills`);
    assert.deepStrictEqual({ twice: twice.slice(0, 10), okNotRunOnce: okNotRunOnce.slice(0, 10), lost: lost.slice(0, 10) }, { twice: [], okNotRunOnce: [], lost: [] });
  });

  test('recycling under load: retired workers exit; live worker processes never exceed workers + spare + retiring with calls', { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pyworkers-soak-'));
    const log = path.join(dir, 'executions');
    const p = await countingPool(log, 2, { recycle: { maxCalls: 150 } });
    const pids = new Map<number, number>(); // pid → workerId, for every worker the pool started
    const exited = new Set<number>();
    for (const w of p.stats().perWorker) pids.set(w.pid!, w.workerId);
    p.on('workerStart', (e) => pids.set(e.pid!, e.workerId));
    p.on('workerExit', (e) => exited.add(e.pid!));
    let worst = 0;
    const idleSince = new Map<number, number>(); // retiring workers with nothing left to run: since when
    let slowestExit = 0;
    const sample = setInterval(() => {
      const live = [...pids.keys()].filter((pid) => alive(pid)).length;
      const stats = p.stats();
      const retiring = stats.perWorker.filter((w) => w.state === 'retiring');
      const now = Date.now();
      for (const w of retiring) {
        if (w.inFlight > 0) continue;
        idleSince.set(w.workerId, idleSince.get(w.workerId) ?? now);
        slowestExit = Math.max(slowestExit, now - idleSince.get(w.workerId)!);
      }
      // a retiring worker is counted while it has calls, and while it exits (channels closed, process ending)
      worst = Math.max(worst, live - (2 + 1 + retiring.length));
    }, 5);
    let next = 0;
    const TOTAL = 20_000;
    const lane = async () => {
      while (next < TOTAL) {
        const i = next++;
        // a slow call now and then, so that calls wait behind it and idle workers take them over
        if (i % 500 === 0) await p.eval('__import__("time").sleep(0.01)');
        await p.call('__main__', 'work', [i]);
      }
    };
    await within(Promise.all(Array.from({ length: 32 }, lane)), 100_000, 'the recycling soak');
    clearInterval(sample);
    await new Promise((r) => setTimeout(r, 300));
    const counts = executions(log);
    rmSync(dir, { recursive: true, force: true });
    assert.equal(counts.size, TOTAL);
    assert.ok([...counts.values()].every((n) => n === 1));
    assert.ok(pids.size > 8, `only ${pids.size} workers started`);
    assert.equal(worst, 0, 'more live worker processes than workers + spare + retiring ones');
    assert.ok(slowestExit < 1000, `a retired worker with no calls left lived on for ${slowestExit} ms`);
    const lingering = [...pids.keys()].filter((pid) => alive(pid) && !p.stats().perWorker.some((w) => w.pid === pid));
    assert.deepStrictEqual(lingering.filter((pid) => exited.has(pid)), []);
    assert.ok(lingering.length <= 1, `retired workers still alive: ${lingering.join(', ')}`); // the spare is not in perWorker
  });
});
