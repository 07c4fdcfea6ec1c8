/**
 * Timeouts, cancellation, crashes and shutdown. Every call settles exactly once; no worker is lost for good.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import {
  AbortError,
  createPool,
  PoolClosedError,
  PyWorkersError,
  QueueFullError,
  TimeoutError,
  WorkerCrashedError,
} from '../src/index.js';
import { alive, pool, sleep, until, rejection } from './helpers.js';

const BUSY = 'sum(1 for _ in iter(int, 1))'; // never ends, pure bytecode


describe('timeouts', () => {
  it('rejects at the deadline with ERR_TIMEOUT and the worker is reusable at once', async () => {
    const p = await pool();
    const started = Date.now();
    const error = await rejection(p.eval(BUSY, null, { timeout: 200 }));
    const took = Date.now() - started;
    assert.ok(error instanceof TimeoutError);
    assert.ok(error instanceof PyWorkersError);
    assert.equal(error.code, 'ERR_TIMEOUT');
    assert.ok(took >= 190 && took < 1000, `rejected after ${took} ms`);
    assert.equal(await p.eval('1+1'), 2);
    assert.equal(p.stats().restarts, 0, 'the interrupt sufficed: no worker was killed');
  });

  it('counts from when the call starts running, not while it waits', async () => {
    const p = await pool();
    const slow = p.eval('__import__("time").sleep(0.5) or 1');
    const queued = p.eval('__import__("time").sleep(0.1) or 2', null, { timeout: 400 });
    assert.deepEqual(await Promise.all([slow, queued]), [1, 2]);
  });

  it('uses the pool default and lets a call override it', async () => {
    const p = await pool({ timeout: 150 });
    assert.equal((await rejection(p.eval(BUSY))).code, 'ERR_TIMEOUT');
    assert.equal(await p.eval('__import__("time").sleep(0.3) or 3', null, { timeout: 0 }), 3);
  });

  it('works for call, eval, exec and streams', async () => {
    const p = await pool();
    await p.exec('import time\ndef spin():\n    while True: pass\ndef gen():\n    yield 1\n    while True: pass');
    assert.equal((await rejection(p.call('__main__', 'spin', [], { timeout: 100 }))).code, 'ERR_TIMEOUT');
    assert.equal((await rejection(p.exec('while True: pass', { timeout: 100 }))).code, 'ERR_TIMEOUT');
    const items: unknown[] = [];
    const error = await rejection((async () => {
      for await (const item of p.stream('__main__', 'gen', [], { timeout: 150 })) items.push(item);
    })());
    assert.equal(error.code, 'ERR_TIMEOUT');
    assert.deepEqual(items, [1]);
    assert.equal(await p.eval('2+2'), 4);
  });

  it('never lets an interrupt hit the next request (50 rounds)', async () => {
    const p = await pool();
    for (let i = 0; i < 50; i++) {
      const error = await rejection(p.eval('sum(1 for _ in iter(int, 1))', null, { timeout: 20 }));
      assert.equal(error.code, 'ERR_TIMEOUT');
      assert.equal(await p.eval('1+1'), 2, `round ${i}`);
    }
    assert.equal(p.stats().restarts, 0);
  });

  // Ported from the seed library's tests.
  it('stops a busy loop with a 500 ms timeout within 1.4 s', async () => {
    const p = await pool();
    const started = Date.now();
    await rejection(p.eval(BUSY, null, { timeout: 500 }));
    assert.ok(Date.now() - started < 1400);
  });

  it('answers 2+2 within 1 s after a 300 ms timeout', async () => {
    const p = await pool();
    await rejection(p.eval(BUSY, null, { timeout: 300 }));
    const started = Date.now();
    assert.equal(await p.eval('2+2'), 4);
    assert.ok(Date.now() - started < 1000);
  });

  it('stops a loop that swallows Exception', async () => {
    const p = await pool();
    const code = 'while True:\n    try:\n        sum(range(1000))\n    except Exception:\n        pass';
    const error = await rejection(p.exec(code, { timeout: 200 }));
    assert.equal(error.code, 'ERR_TIMEOUT');
    assert.equal(await p.eval('2+2'), 4);
    assert.equal(p.stats().restarts, 0);
  });

  it('interrupts time.sleep(2) with a 200 ms timeout', async () => {
    const p = await pool();
    const started = Date.now();
    await rejection(p.eval('__import__("time").sleep(2)', null, { timeout: 200 }));
    assert.ok(Date.now() - started < 1000);
    assert.equal(await p.eval('2+2'), 4);
  });

  it('kills and replaces a worker whose code ignores the interrupt; the caller was answered at the deadline', async () => {
    const p = await pool({ forceKillAfter: 300 });
    const exits: any[] = [];
    p.on('workerExit', (e) => exits.push(e));
    const code = 'import time\nwhile True:\n    try:\n        time.sleep(10)\n    except BaseException:\n        pass';
    const started = Date.now();
    const error = await rejection(p.exec(code, { timeout: 100 }));
    assert.equal(error.code, 'ERR_TIMEOUT');
    assert.ok(Date.now() - started < 300, 'rejected at the deadline, before the kill');
    assert.equal(await p.eval('2+2'), 4);
    assert.equal(exits.length, 1);
    assert.match(exits[0].reason, /did not stop/);
    assert.equal(p.stats().restarts, 1);
  });

  it('moves calls sent behind a call whose worker is killed to another worker', async () => {
    const p = await pool({ workers: 1, forceKillAfter: 200 });
    const stuck = p.exec('import time\nwhile True:\n    try:\n        time.sleep(10)\n    except BaseException:\n        pass', { timeout: 50 });
    const after = p.eval('6*7');
    assert.equal((await rejection(stuck)).code, 'ERR_TIMEOUT');
    assert.equal(await after, 42);
  });
});

describe('cancellation', () => {
  it('aborts a running call with ERR_ABORTED and interrupts Python', async () => {
    const p = await pool();
    const controller = new AbortController();
    const call = p.eval(BUSY, null, { signal: controller.signal });
    await sleep(100);
    controller.abort();
    const error = await rejection(call);
    assert.ok(error instanceof AbortError);
    assert.equal(error.code, 'ERR_ABORTED');
    assert.equal(await p.eval('1+1'), 2);
    assert.equal(p.stats().restarts, 0);
  });

  it('rejects at once with an already aborted signal', async () => {
    const p = await pool();
    const error = await rejection(p.eval('1', null, { signal: AbortSignal.abort() }));
    assert.equal(error.code, 'ERR_ABORTED');
  });

  it('removes a queued call from the queue', async () => {
    const p = await pool({ pipelineDepth: 1 });
    await p.exec('ran = []');
    const first = p.eval('__import__("time").sleep(0.3)');
    const controller = new AbortController();
    const queued = p.eval('ran.append(1)', null, { signal: controller.signal });
    assert.equal(p.stats().queued, 1);
    controller.abort();
    assert.equal((await rejection(queued)).code, 'ERR_ABORTED');
    assert.equal(p.stats().queued, 0);
    await first;
    assert.deepEqual(await p.eval('ran'), []);
  });

  it('cancels a stream through its signal', async () => {
    const p = await pool();
    const controller = new AbortController();
    const seen: number[] = [];
    const error = await rejection((async () => {
      for await (const x of p.streamEval('iter(int, 1)', null, { signal: controller.signal })) {
        seen.push(x as number);
        if (seen.length === 10) controller.abort();
      }
    })());
    assert.equal(error.code, 'ERR_ABORTED');
    assert.equal(seen.length, 10);
    assert.equal(await p.eval('1+1'), 2);
  });
});

describe('crashes', () => {
  for (const [name, code, check] of [
    ['os._exit(3)', '__import__("os")._exit(3)', (e: WorkerCrashedError) => assert.equal(e.exitCode, 3)],
    ['a segfault', '__import__("ctypes").string_at(0)', (e: WorkerCrashedError) => assert.equal(e.signal, 'SIGSEGV')],
  ] as const) {
    it(`rejects in-flight calls of a worker that dies by ${name}, with exit details and stderr`, async () => {
      const p = await pool({ workers: 2 });
      await p.exec('import sys\ndef last_words():\n    sys.stderr.write("last words\\n")\n    sys.stderr.flush()');
      const error = await rejection(p.eval(`last_words() or ${code}`));
      assert.ok(error instanceof WorkerCrashedError, String(error));
      assert.equal(error.code, 'ERR_WORKER_CRASHED');
      check(error);
      assert.match(error.stderr, /last words/);
      assert.match(error.message, /last words/);
      assert.ok(await until(() => p.stats().workers === 2 && p.stats().idle === 2));
      assert.equal(await p.eval('1+1'), 2);
      assert.equal(p.stats().restarts, 1);
    });
  }

  it('survives SIGKILL from outside; queued calls go on elsewhere; the pool refills', async () => {
    const p = await pool({ workers: 2, pipelineDepth: 1 });
    const [w1] = p.stats().perWorker;
    const running = p.eval('__import__("time").sleep(5)');
    await sleep(100);
    const victim = p.stats().perWorker.find((w) => w.inFlight > 0)!;
    const others = Array.from({ length: 10 }, (_, i) => p.eval(`${i} * 2`));
    process.kill(victim.pid!, 'SIGKILL');
    const error = await rejection(running);
    assert.ok(error instanceof WorkerCrashedError);
    assert.equal(error.signal, 'SIGKILL');
    assert.deepEqual(await Promise.all(others), Array.from({ length: 10 }, (_, i) => i * 2));
    assert.ok(await until(() => p.stats().workers === 2));
    assert.ok(w1);
  });

  it('rejects later calls of a context whose worker died with ERR_CONTEXT_LOST', async () => {
    const p = await pool({ workers: 2 });
    const ctx = p.context();
    await ctx.exec('x = 1');
    const pid = p.stats().perWorker.find((w) => w.workerId === ctx.workerId)!.pid!;
    process.kill(pid, 'SIGKILL');
    await until(() => !alive(pid));
    await sleep(100);
    const error = await rejection(ctx.eval('x'));
    assert.equal(error.code, 'ERR_CONTEXT_LOST');
    const fresh = p.context();
    await fresh.exec('y = 2');
    assert.equal(await fresh.eval('y'), 2);
  });

  it('rejects createPool when the interpreter is missing', async () => {
    const error = await rejection(createPool({ python: '/nonexistent/python3' }));
    assert.equal(error.code, 'ERR_PYTHON_NOT_FOUND');
  });

  it('rejects createPool with the cause when setup raises', async () => {
    const error = await rejection(createPool({ workers: 2, setup: 'raise ValueError("bad setup")', forwardOutput: false }));
    assert.equal(error.code, 'ERR_WORKER_START');
    assert.match(error.message, /bad setup/);
    assert.equal(error.cause?.type, 'ValueError');
  });

  it('stops respawning workers that keep dying at start, and says why', async () => {
    const flag = `/tmp/pyworkers-test-flag-${process.pid}-${Date.now()}`;
    const p = await pool({ workers: 1, setup: `import os\nif os.path.exists(${JSON.stringify(flag)}):\n    raise SystemExit("setup refuses")` });
    const errors: Error[] = [];
    p.on('error', (e) => errors.push(e));
    const { writeFileSync, unlinkSync } = await import('node:fs');
    writeFileSync(flag, '');
    try {
      const pid = p.stats().perWorker[0]!.pid!;
      let exited = false;
      p.once('workerExit', () => (exited = true));
      process.kill(pid, 'SIGKILL');
      assert.ok(await until(() => exited)); // (an idle worker holds no reference on the event loop: poll)
      const queued = p.eval('1'); // waits for a worker: every replacement dies at start
      const error = await rejection(queued);
      assert.equal(error.code, 'ERR_WORKER_START', error.message);
      assert.ok(await until(() => errors.length === 1, 10_000));
      assert.equal(errors[0]!.name, 'WorkerStartError');
      assert.match(errors[0]!.message, /stopped respawning/);
      const later = await rejection(p.eval('1'));
      assert.equal(later.code, 'ERR_WORKER_START');
      assert.ok(p.stats().restarts <= 3);
    } finally {
      unlinkSync(flag);
    }
  });
});

describe('queue, stats, shutdown', () => {
  it('rejects beyond maxQueue with ERR_QUEUE_FULL', async () => {
    const p = await pool({ maxQueue: 2, pipelineDepth: 1 });
    const running = p.eval('__import__("time").sleep(0.2)');
    const queued = [p.eval('1'), p.eval('2')];
    const error = await rejection(p.eval('3'));
    assert.ok(error instanceof QueueFullError);
    assert.equal(error.code, 'ERR_QUEUE_FULL');
    await running;
    assert.deepEqual(await Promise.all(queued), [1, 2]);
  });

  it('counts calls sent ahead to a busy worker against maxQueue and in stats().queued (default pipelining)', async () => {
    const p = await pool({ maxQueue: 2 });
    const running = p.eval('__import__("time").sleep(0.3)');
    await sleep(50);
    const waiting = [p.eval('1'), p.eval('2')];
    assert.equal(p.stats().queued, 2);
    const error = await rejection(p.eval('3'));
    assert.equal(error.code, 'ERR_QUEUE_FULL');
    await running;
    assert.deepEqual(await Promise.all(waiting), [1, 2]);
    assert.equal(p.stats().queued, 0);
  });

  it('does not hold quick calls behind a long one while another worker is free', async () => {
    const p = await pool({ workers: 2 });
    const slow = p.eval('__import__("time").sleep(2)');
    await sleep(50);
    const started = Date.now();
    const done = await Promise.all(Array.from({ length: 20 }, (_, i) => p.eval(`${i} * 2`).then((v) => [v, Date.now() - started])));
    done.forEach(([v], i) => assert.equal(v, i * 2));
    const slowest = Math.max(...done.map(([, ms]) => ms as number));
    assert.ok(slowest < 1000, `a quick call waited ${slowest} ms behind the long one`);
    await slow;
  });

  it('runs every call exactly once while idle workers take over waiting calls', async () => {
    const log = `/tmp/pyworkers-test-once-${process.pid}-${Date.now()}`;
    const p = await pool({ workers: 3 });
    await p.exec(`import os, time, random\ndef work(i):\n    fd = os.open(${JSON.stringify(log)}, os.O_WRONLY | os.O_APPEND | os.O_CREAT)\n    os.write(fd, b"%d\\n" % i)\n    os.close(fd)\n    time.sleep(random.choice((0, 0, 0, 0.002, 0.02)))\n    return i`);
    const results = await Promise.all(Array.from({ length: 600 }, (_, i) => p.call('__main__', 'work', [i])));
    results.forEach((r, i) => assert.equal(r, i));
    const { readFileSync, unlinkSync } = await import('node:fs');
    const ran = readFileSync(log, 'utf8').trim().split('\n').map(Number).sort((a, b) => a - b);
    unlinkSync(log);
    assert.deepEqual(ran, Array.from({ length: 600 }, (_, i) => i));
  });

  it('reports stats as a plain object', async () => {
    const p = await pool({ workers: 2 });
    await p.eval('1');
    await rejection(p.eval('1/0'));
    const s = p.stats();
    assert.equal(Object.getPrototypeOf(s), Object.prototype);
    assert.equal(s.workers, 2);
    assert.equal(s.busy, 0);
    assert.equal(s.idle, 2);
    assert.equal(s.queued, 0);
    assert.equal(s.completed, 1);
    assert.equal(s.failed, 1);
    assert.equal(s.restarts, 0);
    assert.equal(s.perWorker.length, 2);
    for (const w of s.perWorker) {
      assert.equal(typeof w.pid, 'number');
      assert.equal(w.state, 'ready');
    }
  });

  it('close() lets running calls finish, then refuses new ones', async () => {
    const p = await pool();
    const pid = p.stats().perWorker[0]!.pid!;
    const running = p.eval('__import__("time").sleep(0.3) or "done"');
    const closing = p.close();
    assert.equal((await rejection(p.eval('1'))).code, 'ERR_POOL_CLOSED');
    assert.equal(await running, 'done');
    await closing;
    assert.ok(!alive(pid));
  });

  it('close() is bounded by its timeout', async () => {
    const p = await pool();
    const running = rejection(p.eval('__import__("time").sleep(10)'));
    const started = Date.now();
    await p.close({ timeout: 200 });
    assert.ok(Date.now() - started < 2000);
    assert.equal((await running).code, 'ERR_POOL_CLOSED');
  });

  it('close({ force: true }) and destroy() reject everything pending with ERR_POOL_CLOSED', async () => {
    for (const how of ['force', 'destroy'] as const) {
      const p = await pool({ pipelineDepth: 1 });
      const running = rejection(p.eval('__import__("time").sleep(10)'));
      const queued = rejection(p.eval('1'));
      await (how === 'force' ? p.close({ force: true }) : p.destroy());
      for (const call of [running, queued]) {
        const error = await call;
        assert.ok(error instanceof PoolClosedError);
        assert.equal(error.code, 'ERR_POOL_CLOSED');
      }
      assert.equal((await rejection(p.call('math', 'sqrt', [4]))).code, 'ERR_POOL_CLOSED');
    }
  });

  it('closes with await using', async () => {
    let pid: number;
    {
      await using p = await createPool({ workers: 1, forwardOutput: false });
      pid = p.stats().perWorker[0]!.pid!;
      assert.equal(await p.eval('1'), 1);
    }
    assert.ok(!alive(pid));
  });

  it('emits workerStart, workerExit (with reason) and output events', async () => {
    const starts: unknown[] = [];
    const p = await pool({ workers: 1 });
    p.on('workerStart', (e) => starts.push(e));
    const exits: any[] = [];
    p.on('workerExit', (e) => exits.push(e));
    const out: string[] = [];
    const err: string[] = [];
    p.on('stdout', (e) => out.push(e.text));
    p.on('stderr', (e) => err.push(e.text));
    await p.exec('print("hello out")\nimport sys\nprint("hello err", file=sys.stderr)');
    assert.ok(await until(() => out.join('').includes('hello out') && err.join('').includes('hello err')));
    await rejection(p.eval('__import__("os")._exit(7)'));
    assert.ok(await until(() => starts.length === 1));
    assert.equal(exits.length, 1);
    assert.equal(exits[0].exitCode, 7);
    assert.equal(exits[0].reason, 'crashed');
  });
});

describe('no orphans', () => {
  it('every worker exits within a second when the Node process is SIGKILLed', async () => {
    const script = `
      import { createPool } from ${JSON.stringify(new URL('../src/index.ts', import.meta.url).pathname)};
      const pool = await createPool({ workers: 2, forwardOutput: false });
      const busy = pool.eval('__import__("time").sleep(60)');
      console.log(JSON.stringify(pool.stats().perWorker.map((w) => w.pid)));
      await busy;`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const pids: number[] = await new Promise((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => resolve(JSON.parse(d.toString())));
      child.on('exit', () => reject(new Error('child exited early')));
    });
    assert.equal(pids.length, 2);
    assert.ok(pids.every(alive));
    child.kill('SIGKILL');
    const killedAt = Date.now();
    assert.ok(await until(() => pids.every((pid) => !alive(pid)), 3000, 10), 'workers outlived the host');
    assert.ok(Date.now() - killedAt < 1000, `workers took ${Date.now() - killedAt} ms to exit`);
  });
});

describe('the channel survives what user code does', () => {
  it('printing text and binary garbage, os.write to fds 1 and 2, threads printing', async () => {
    const p = await pool();
    const out: string[] = [];
    p.on('stdout', (e) => out.push(e.text));
    await p.exec(`
import os, sys, threading, time
print("text")
sys.stdout.buffer.write(bytes(range(256)) * 4); sys.stdout.flush()
sys.stderr.buffer.write(b"\\xff\\xfe\\x00garbage\\x03\\x04" * 100); sys.stderr.flush()
os.write(1, b"\\x00\\x00\\x00\\x10raw frame-like bytes")
os.write(2, b"\\x0a\\x00\\x00\\x00\\x40\\x00\\x01\\x00\\x00\\x00")
stop = False
def chatter():
    while not stop:
        print("background", flush=True)
        os.write(1, b"\\x00\\x01\\x02")
        time.sleep(0.001)
threading.Thread(target=chatter, daemon=True).start()
`);
    const results = await Promise.all(Array.from({ length: 500 }, (_, i) => p.eval('[i, "x" * i, b"\\x00" * 3]', { i })));
    results.forEach((r, i) => assert.deepEqual(r, [i, 'x'.repeat(i), new Uint8Array(3)]));
    await p.exec('stop = True');
    assert.ok(out.join('').includes('background'));
  });

  it('closing sys.stdout, reading stdin (EOF) and spawning a subprocess', async () => {
    const p = await pool();
    assert.equal(await p.eval('__import__("sys").stdin.read()'), '');
    const probe = 'import os; print([fd for fd in (3, 4) if os.path.exists(f"/proc/self/fd/{fd}") and os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")])';
    const inherited = await p.eval(
      '__import__("subprocess").run([__import__("sys").executable, "-c", probe], capture_output=True, text=True, close_fds=False).stdout.strip()',
      { probe },
    );
    assert.equal(inherited, '[]');
    await p.exec('import sys; sys.stdout.close()');
    assert.equal(await p.eval('1+1'), 2);
    assert.equal((await rejection(p.exec('print("after close")'))).type, 'ValueError');
    assert.equal(await p.call('math', 'sqrt', [16]), 4);
  });
});

describe('soak', () => {
  it('100k calls over 2 workers with a worker SIGKILLed every ~2000 calls: every call settles once, correctly', async () => {
    const p = await pool({ workers: 2 });
    const issued = 100_000;
    let resolved = 0;
    let rejected = 0;
    let wrong = 0;
    const otherErrors: string[] = [];
    global.gc?.();
    const heapBefore = process.memoryUsage().heapUsed;
    const window = 256;
    let next = 0;
    let kills = 0;
    const runOne = async (): Promise<void> => {
      while (next < issued) {
        const i = next++;
        if (i > 0 && i % 2000 === 0) {
          const victim = p.stats().perWorker.find((w) => w.state === 'ready');
          if (victim?.pid) {
            try {
              process.kill(victim.pid, 'SIGKILL');
              kills++;
            } catch {
              /* already gone */
            }
          }
        }
        try {
          const value = await p.call('operator', 'add', [i, 1]);
          if (value === i + 1) resolved++;
          else wrong++;
        } catch (error) {
          rejected++;
          if (!(error instanceof WorkerCrashedError)) otherErrors.push(String(error));
        }
      }
    };
    await Promise.all(Array.from({ length: window }, runOne));
    assert.equal(resolved + rejected + wrong, issued);
    assert.equal(wrong, 0);
    assert.deepEqual(otherErrors, []);
    assert.ok(kills >= 40, `only ${kills} kills`);
    assert.ok(rejected <= kills * p.stats().perWorker.length * 32 + kills, `${rejected} rejected for ${kills} kills`);
    global.gc?.();
    await sleep(50);
    const growth = process.memoryUsage().heapUsed - heapBefore;
    assert.ok(growth < 30 * 1024 * 1024, `host heap grew by ${growth} bytes`);
    assert.equal(p.stats().workers, 2);
  });
});
