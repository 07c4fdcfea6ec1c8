/**
 * The promises of docs/faults.md under attack: hostile Python (stray bytes on the channel, processes left
 * running), hostile arguments (getters and Proxies that call the pool while being encoded), values that used to
 * turn into something else (dates, shared buffers), limits that did not hold, and streams the program drops.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { AbortError, ArgumentError, ConversionError, createPool, WorkerCrashedError } from '../src/index.js';
import { alive, pool, rejection, sleep, until } from './helpers.js';

const ROOT = path.resolve(import.meta.dirname, '..');

function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([promise, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`hung for ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

function fullGc(): void {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  gc();
  gc();
}

describe('stray bytes on the channel', () => {
  test('a call that writes garbage to fd 3 kills its worker at once; the calls behind it run elsewhere; nothing hangs', async () => {
    const p = await pool({ workers: 1 });
    // it goes on running after the write: the host sees the garbage meanwhile, and kills the worker at once
    const bad = p.eval('__import__("os").write(3, b"\\x00\\x00\\x00\\x60" + b"a library reusing an unused fd") and __import__("time").sleep(5)');
    const behind = Array.from({ length: 5 }, (_, i) => p.eval('i * 2', { i }));
    const t0 = Date.now();
    const error = await rejection(bad);
    assert.ok(Date.now() - t0 < 4000, 'the worker was not killed at once');
    assert.ok(error instanceof WorkerCrashedError);
    assert.match(error.message, /corrupt frame header/);
    assert.deepStrictEqual(await Promise.all(behind), [0, 2, 4, 6, 8]); // never started there: run on the replacement
    assert.equal(await p.eval('1 + 1'), 2);
    assert.equal(p.stats().restarts, 1);
  });
});

describe('re-entrant encoding', () => {
  test('getters, Proxy traps and valueOf that make calls while an argument is encoded do not splice requests', async () => {
    const p = await pool({ workers: 1 });
    const inner: Array<Promise<unknown>> = [];
    const getter = {
      get x() {
        inner.push(p.eval('"inner-" + s', { s: 'getter' }));
        return 'outer';
      },
    };
    const proxy = new Proxy({ y: 1 }, {
      get(target, key, receiver) {
        if (key === 'y') inner.push(p.call('builtins', 'str', ['proxy']));
        return Reflect.get(target, key, receiver);
      },
    });
    class Sneaky extends Number {
      override valueOf(): number {
        inner.push(p.eval('"valueOf"'));
        return 7;
      }
    }
    assert.deepStrictEqual(await p.eval('[a["x"], b["y"], c]', { a: getter, b: proxy, c: new Sneaky(0) }), ['outer', 1, 7]);
    assert.deepStrictEqual(await Promise.all(inner), ['inner-getter', 'proxy', 'valueOf']);
    // toJSON is not how values cross: an object with one has a function in it, refused as such
    await assert.rejects(p.eval('x', { x: { toJSON: () => p.eval('"never"') } }), (e: Error) => e instanceof ConversionError && /function \(toJSON\)/.test(e.message));
    assert.equal(await p.eval('"still serving"'), 'still serving');
  });
});

describe('results own their memory', () => {
  test('a large bytes result is alone in its ArrayBuffer: .buffer exposes no other reply', async () => {
    const p = await pool({ workers: 1 });
    const [a, b] = await Promise.all([p.eval('b"a" * 70000'), p.eval('b"password=hunter2" * 5000')]);
    for (const r of [a, b] as Uint8Array[]) {
      assert.equal(r.byteOffset, 0);
      assert.equal(r.buffer.byteLength, r.byteLength);
    }
    assert.ok(!Buffer.from((a as Uint8Array).buffer).includes('password'));
  });
});

describe('dates', () => {
  test('a Date and a number with the same millisecond stay distinct as Set members and Map keys', async () => {
    const p = await pool({ workers: 1 });
    assert.equal(await p.eval('len(s)', { s: new Set([0, new Date(0)]) }), 2);
    assert.equal(await p.eval('len(m)', { m: new Map<unknown, string>([[5, 'n'], [new Date(5), 'd']]) }), 2);
    const back = (await p.eval('{0, __import__("datetime").datetime.fromtimestamp(0, __import__("datetime").timezone.utc)}')) as Set<unknown>;
    assert.equal(back.size, 2);
  });

  test('datetimes cross exactly to the millisecond, floored before 1970 too, up to 9999-12-31 23:59:59.999999', async () => {
    const p = await pool({ workers: 1, setup: 'from datetime import datetime, timezone, timedelta\nUTC = timezone.utc' });
    assert.equal(((await p.eval('datetime(1969, 12, 31, 23, 59, 59, 999500, UTC)')) as Date).getTime(), -1);
    assert.equal(((await p.eval('datetime(1960, 1, 1, 0, 0, 0, 1999, UTC)')) as Date).getTime(), Date.UTC(1960, 0, 1) + 1);
    assert.equal(((await p.eval('datetime(2020, 1, 1, 0, 0, 0, 999, UTC)')) as Date).getTime(), Date.UTC(2020, 0, 1));
    const last = (await p.eval('datetime(9999, 12, 31, 23, 59, 59, 999999, UTC)')) as Date;
    assert.equal(last.toISOString(), '9999-12-31T23:59:59.999Z');
    assert.equal(await p.eval('d == datetime(9999, 12, 31, 23, 59, 59, 999000, UTC)', { d: last }), true);
    assert.equal(((await p.eval('datetime(1, 1, 1, tzinfo=UTC)')) as Date).toISOString(), '0001-01-01T00:00:00.000Z');
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000);
    const [min, max] = [new Date('0001-01-01T00:00:00Z').getTime(), new Date('9999-12-31T23:59:59.999Z').getTime()];
    const dates = Array.from({ length: 200 }, () => new Date(min + Math.floor(rnd() * (max - min))));
    assert.deepStrictEqual(await p.eval('ds', { ds: dates }), dates);
    assert.deepStrictEqual(await p.eval('[(d - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1) for d in ds]', { ds: dates }), dates.map((d) => d.getTime()));
  });
});

describe('limits', () => {
  test('millisecond options at or above 2**31 mean never, not 1 ms, and print no warning', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    const big = Number.MAX_SAFE_INTEGER;
    try {
      const p = await pool({ workers: 1, timeout: big, startTimeout: big, forceKillAfter: big, closeTimeout: big, monitor: { interval: big }, recycle: { idleTimeout: big } });
      assert.equal(await p.eval('__import__("time").sleep(0.05) or 1'), 1);
      assert.equal(await p.eval('__import__("time").sleep(0.05) or 2', null, { timeout: 2 ** 31 }), 2);
      const items = await p.streamEval('iter(range(3))', null, { timeout: big }).toArray();
      assert.deepStrictEqual(items, [0, 1, 2]);
      await p.close();
    } finally {
      process.off('warning', onWarning);
    }
    assert.deepStrictEqual(warnings, []);
  });

  test('a cwd that is a file, or missing, is an ArgumentError naming the option', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pyworkers-cwd-'));
    const file = path.join(dir, 'file');
    writeFileSync(file, '');
    try {
      await assert.rejects(createPool({ workers: 1, cwd: file }), (e: Error) => e instanceof ArgumentError && /options\.cwd ".*file" is not a directory/.test(e.message));
      await assert.rejects(createPool({ workers: 1, cwd: path.join(dir, 'missing') }), (e: Error) => e instanceof ArgumentError && /options\.cwd ".*missing" does not exist/.test(e.message));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('many calls sharing one AbortSignal: no MaxListenersExceededWarning, and all of them abort', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      const p = await pool({ workers: 1 });
      const controller = new AbortController();
      const calls = Array.from({ length: 50 }, () => p.eval('__import__("time").sleep(10)', null, { signal: controller.signal }));
      const streams = Array.from({ length: 20 }, () => p.streamEval('iter(range(3))', null, { signal: controller.signal }));
      await sleep(50);
      controller.abort();
      const settled = await Promise.allSettled(calls);
      assert.ok(settled.every((s) => s.status === 'rejected' && s.reason instanceof AbortError));
      for (const s of streams) await assert.rejects(s.toArray(), AbortError);
      await sleep(10);
    } finally {
      process.off('warning', onWarning);
    }
    assert.deepStrictEqual(warnings.filter((w) => w === 'MaxListenersExceededWarning'), []);
  });
});

describe('processes user code starts', () => {
  const START = 'import subprocess, os\nP = subprocess.Popen(["sleep", "60"])\nF = os.fork()\nif F == 0:\n    import time\n    time.sleep(60)\n    os._exit(0)';

  test('close() ends what a worker started (its process group)', async () => {
    const p = await pool({ workers: 1 });
    await p.exec(START);
    const [child, forked] = (await p.eval('[P.pid, F]')) as [number, number];
    assert.ok(alive(child) && alive(forked));
    await p.close();
    assert.ok(await until(() => !alive(child) && !alive(forked), 2000), 'the subprocess and the fork outlived close()');
  });

  test('when the host dies (SIGKILL), the worker and what it started end too', async () => {
    const script = `
      import { createPool } from ${JSON.stringify(path.join(ROOT, 'dist', 'index.js'))};
      const p = await createPool({ workers: 1 });
      await p.exec(${JSON.stringify(START)});
      const pids = await p.eval('[__import__("os").getpid(), P.pid, F]');
      process.stdout.write(JSON.stringify(pids) + '\\n', () => process.kill(process.pid, 'SIGKILL'));
    `;
    const host = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    host.stdout.on('data', (c: Buffer) => (out += c.toString()));
    await new Promise((resolve) => host.once('exit', resolve));
    const pids = JSON.parse(out) as number[];
    assert.equal(pids.length, 3);
    assert.ok(await until(() => pids.every((pid) => !alive(pid)), 3000), `still alive: ${pids.filter((pid) => alive(pid)).join(', ')}`);
  });
});

describe('streams the program drops', () => {
  test('500 dropped streams are closed in Python once collected, and their worker can be recycled', async () => {
    const p = await pool({ workers: 1, setup: 'def gen():\n    try:\n        for i in range(10**9):\n            yield i\n    finally:\n        global closed\n        closed += 1\nclosed = 0' });
    const readOneAndDrop = async () => {
      const stream = p.stream('__main__', 'gen', [], { highWaterMark: 4 });
      return (await stream.next()).value; // the stream is dropped here, unclosed
    };
    for (let i = 0; i < 500; i++) assert.equal(await readOneAndDrop(), 0);
    assert.ok(p.stats().streams <= 500); // (a collection may already have closed some)
    const count = 'sum(1 for o in __import__("gc").get_objects() if type(o).__name__ == "generator" and o.gi_code.co_name == "gen")';
    assert.ok(await until(async () => {
      fullGc();
      await sleep(20);
      return p.stats().streams === 0;
    }, 10_000), `${p.stats().streams} streams still open`);
    assert.ok(await until(async () => (await p.eval('closed')) === 500, 5000), 'generators not closed in Python');
    assert.equal(await p.eval(count), 0);
    const before = p.stats().perWorker[0]!.pid;
    await p.recycle();
    assert.notEqual(p.stats().perWorker.find((w) => w.state === 'ready')!.pid, before);
  });
});

describe('memory caps that hold', () => {
  test('maxMemory holds against an anonymous shared mmap (which RLIMIT_DATA does not count): killed, reason maxMemory', async () => {
    const p = await pool({ workers: 1, maxMemory: '200MB' });
    const exits: string[] = [];
    p.on('workerExit', (e) => exits.push(e.reason));
    const error = await rejection(p.eval('(lambda m: [m.__setitem__(slice(i, i + 1), b"x") for i in range(0, len(m), 4096)] and __import__("time").sleep(5))(__import__("mmap").mmap(-1, 400 * 2**20))'));
    assert.ok(error instanceof WorkerCrashedError);
    assert.match(error.message, /maxMemory/);
    assert.deepStrictEqual(exits, ['maxMemory']);
    assert.equal(await p.eval('1'), 1); // replaced
  });

  test('recycle.maxRss with pipelined calls: a worker over the threshold is retired and the calls sent ahead to it move', async () => {
    const p = await pool({ workers: 2, recycle: { maxRss: '150MB' } });
    await p.exec('import os, time\nHOG = []\ndef grow():\n    HOG.append(bytearray(200 * 2**20))\n    time.sleep(0.3)\n    return os.getpid()\ndef pid():\n    return os.getpid()');
    const recycled: number[] = [];
    p.on('recycle', (e) => recycled.push(e.workerId));
    const grower = p.call('__main__', 'grow');
    await sleep(100); // it is over the threshold now, still running
    const pids = await Promise.all(Array.from({ length: 20 }, () => p.call('__main__', 'pid')));
    const hog = await grower;
    assert.equal(recycled.length, 1);
    assert.equal(pids.length, 20);
    assert.ok(!pids.includes(hog), 'calls sent while the worker was over maxRss ran on it');
    assert.equal(await p.eval('len(HOG)'), 0); // every worker left is fresh
  });
});

describe('stopped or deaf workers', () => {
  test('a worker stopped with SIGSTOP is killed after livenessTimeout; its calls settle, it is replaced', async () => {
    const p = await pool({ workers: 1, livenessTimeout: 300 });
    const pid = p.stats().perWorker[0]!.pid!;
    const sent = Array.from({ length: 3 }, (_, i) => p.eval('i', { i }));
    process.kill(pid, 'SIGSTOP');
    const running = p.eval('"after stop"');
    const settled = await Promise.allSettled([...sent, running]);
    for (const s of settled) assert.ok(s.status === 'fulfilled' || s.reason instanceof WorkerCrashedError, String((s as PromiseRejectedResult).reason));
    assert.ok(!alive(pid));
    assert.equal(await p.eval('2'), 2);
  });

  test('a worker whose control channel user code closed is replaced; gc() does not hang', async () => {
    const p = await pool({ workers: 1 });
    const pid = p.stats().perWorker[0]!.pid!;
    await p.eval('__import__("os").close(4)').catch(() => {}); // it may be replaced before its answer is read
    // the next control request finds the channel closed: the worker is replaced, and the request settles
    const gc = await within(p.gc().then((n) => n, (e: Error) => e), 5000);
    assert.ok(typeof gc === 'number' || gc instanceof WorkerCrashedError, String(gc));
    assert.ok(await until(() => !alive(pid), 3000), 'the deaf worker was not replaced');
    assert.equal(await p.eval('3'), 3);
  });
});

describe('deadline', () => {
  test('a call that waits past its deadline is dropped without running; one that runs is interrupted', async () => {
    const p = await pool({ workers: 1, setup: 'RAN = []\ndef mark(i):\n    RAN.append(i)\n    return i' });
    const long = p.eval('__import__("time").sleep(0.5) or "long"');
    const waiting = p.call('__main__', 'mark', [1], { deadline: 100 });
    const error = await rejection(waiting);
    assert.ok(error.code === 'ERR_TIMEOUT' && /deadline/.test(error.message), error.message);
    assert.equal(await long, 'long');
    assert.deepStrictEqual(await p.eval('RAN'), []);
    const running = await rejection(p.eval('__import__("time").sleep(5)', null, { deadline: 200 }));
    assert.equal(running.code, 'ERR_TIMEOUT');
    const q = await pool({ workers: 1, deadline: 100 });
    await assert.rejects(q.eval('__import__("time").sleep(1)'), (e: Error & { code?: string }) => e.code === 'ERR_TIMEOUT');
    assert.equal(await q.eval('4'), 4);
  });
});

describe('work stealing behind pure Python', () => {
  test('a call waiting behind a spinning loop is taken over by the idle worker long before the loop ends', async () => {
    const p = await pool({ workers: 2 });
    await p.exec('import time\ndef spin(s):\n    end = time.time() + s\n    while time.time() < end:\n        pass');
    const long = p.call('__main__', 'spin', [1]);
    const quick = p.eval('1');
    const waiting = p.eval('2'); // sent ahead behind one of them
    const t0 = Date.now();
    assert.deepStrictEqual(await Promise.all([quick, waiting]), [1, 2]);
    assert.ok(Date.now() - t0 < 500, `the waiting call took ${Date.now() - t0} ms`);
    await long;
  });
});
