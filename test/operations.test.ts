/**
 * Operations: metrics (plain, Prometheus, OpenTelemetry), tracing on diagnostics_channel, logging records, the
 * order of printed output, container limits, drain and readiness. See docs/operations.md.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import diagnostics_channel from 'node:diagnostics_channel';
import { existsSync, mkdirSync, mkdtempSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import parsePrometheus from 'parse-prometheus-text-format';
import { createPool, PoolClosedError, toPrometheus, type CallTraceContext, type LogRecord, type Pool } from '../src/index.js';
import { defaultWorkers, readContainer } from '../src/container.js';
import { pool as makePool, rejection, sleep, until } from './helpers.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const promtool = ['/usr/bin/promtool', '/usr/local/bin/promtool'].find((p) => existsSync(p));

type Family = { name: string; type: string; metrics: Array<{ value?: string; labels?: Record<string, string>; buckets?: Record<string, string>; count?: string; sum?: string }> };

describe('pool.metrics()', () => {
  let pool: Pool;
  before(async () => {
    pool = await createPool({ workers: 2, forwardOutput: false, setup: 'import gc, time\ndef nap(s):\n    time.sleep(s)\n    return s' });
  });
  after(() => pool.destroy());

  it('counts calls by outcome, with latency and queue-wait histograms', async () => {
    const before = await pool.metrics();
    await Promise.all(Array.from({ length: 10 }, (_, i) => pool.eval('x + 1', { x: i })));
    await rejection(pool.eval('1 / 0'));
    await rejection(pool.call('__main__', 'nap', [5], { timeout: 50 }));
    const ac = new AbortController();
    const aborted = pool.call('__main__', 'nap', [5], { signal: ac.signal });
    await sleep(30);
    ac.abort();
    await rejection(aborted);
    const m = await pool.metrics();
    const delta = (k: keyof typeof m.calls.byOutcome) => m.calls.byOutcome[k] - before.calls.byOutcome[k];
    assert.deepEqual([delta('ok'), delta('error'), delta('timeout'), delta('aborted')], [10, 1, 1, 1]);
    assert.equal(m.calls.total, Object.values(m.calls.byOutcome).reduce((a, b) => a + b, 0));
    assert.equal(m.callDuration.count - before.callDuration.count, 13);
    assert.ok(m.callDuration.sum - before.callDuration.sum >= 0.08, 'the timed-out and aborted calls took their time');
    assert.equal(m.callDuration.buckets.length, m.callDuration.counts.length);
    assert.ok(m.callDuration.counts.every((c, i) => i === 0 || c >= m.callDuration.counts[i - 1]!), 'cumulative buckets');
    assert.ok(m.queueWait.count >= 13);
  });

  it('per worker: RSS, busy time, calls, collections with their pause times per generation', async () => {
    await pool.exec('for g in (0, 1, 2):\n    gc.collect(g)');
    const m = await pool.metrics();
    assert.equal(m.perWorker.length, 2);
    for (const w of m.perWorker) {
      assert.ok(w.rss! > 5e6, `rss ${w.rss}`);
      assert.ok(w.fresh);
      assert.equal(w.gc.collections.length, 3);
      assert.equal(w.gc.pauses.length, 3);
      for (let g = 0; g < 3; g++) {
        assert.ok(w.gc.pauses[g]!.count >= 1, `generation ${g} pauses timed`);
        assert.ok(w.gc.pauses[g]!.sum > 0);
      }
      assert.equal(w.tracedMemory, null);
    }
    assert.deepEqual(m.gc.collections, [0, 1, 2].map((g) => m.perWorker.reduce((n, w) => n + w.gc.collections[g]!, 0)));
    await pool.tracemallocStart(1);
    assert.ok((await pool.metrics()).perWorker.every((w) => w.tracedMemory! > 0));
    await pool.tracemallocStop();
  });

  it('the busy ratio follows the load; the queue depth shows waiting calls', async () => {
    await pool.metrics(); // starts a new interval
    const load = Promise.all(Array.from({ length: 6 }, () => pool.call('__main__', 'nap', [0.15])));
    await sleep(60);
    const during = await pool.metrics();
    assert.ok(during.calls.queued >= 3, `queued ${during.calls.queued}`);
    assert.equal(during.calls.running, 2);
    await load;
    const m = await pool.metrics();
    assert.ok(m.busyRatio > 0.5 && m.busyRatio <= 1, `busy ratio ${m.busyRatio}`);
    await sleep(100);
    assert.ok((await pool.metrics()).busyRatio < 0.3, 'idle since');
  });

  it('counts crashes, restarts and recycles by reason', async () => {
    const p = await makePool({ workers: 1, recycle: { maxCalls: 3 } });
    for (let i = 0; i < 3; i++) await p.eval('1');
    assert.ok(await until(async () => (await p.metrics()).workers.recycles.maxCalls === 1));
    const pid = p.stats().perWorker[0]!.pid!;
    const running = p.eval('__import__("time").sleep(5)');
    await sleep(50);
    process.kill(pid, 'SIGKILL');
    await rejection(running);
    assert.ok(await until(async () => (await p.metrics()).workers.restarts === 1));
    const m = await p.metrics();
    assert.equal(m.workers.crashes, 1);
    assert.equal(m.calls.byOutcome.crashed, 1);
  });

  it('with metrics: false, no histograms and no gc timing; the counters remain', async () => {
    const p = await makePool({ workers: 1, metrics: false });
    await p.eval('__import__("gc").collect()');
    const m = await p.metrics();
    assert.equal(m.callDuration.count, 0);
    assert.deepEqual(m.perWorker[0]!.gc.pauses, []);
    assert.equal(m.calls.byOutcome.ok, 1);
    assert.equal(m.perWorker[0]!.gc.collections.length, 3);
  });

  it('is cheap enough to call every second: 100 calls in well under a second', async () => {
    const t0 = performance.now();
    for (let i = 0; i < 100; i++) await pool.metrics();
    assert.ok(performance.now() - t0 < 2000);
  });
});

describe('Prometheus', () => {
  it('a real parser reads the exposition: names, labels, types, histograms', async () => {
    const p = await makePool({ workers: 2 });
    await Promise.all(Array.from({ length: 20 }, () => p.eval('[0] * 1000')));
    await p.exec('import gc\ngc.collect()'); // on each worker: 2 more calls
    const text = await p.prometheus();
    const families = parsePrometheus(text) as Family[];
    const byName = new Map(families.map((f) => [f.name, f]));
    for (const f of families) {
      assert.match(f.name, /^pyworkers_[a-z_]+$/);
      if (f.type === 'COUNTER') assert.match(f.name, /_total$/, f.name);
    }
    const rss = byName.get('pyworkers_worker_rss_bytes')!;
    assert.equal(rss.type, 'GAUGE');
    assert.deepEqual(rss.metrics.map((s) => s.labels!.worker).sort(), ['1', '2']);
    assert.ok(rss.metrics.every((s) => Number(s.value) > 1e6));
    const calls = byName.get('pyworkers_calls_total')!;
    assert.equal(calls.metrics.find((s) => s.labels!.outcome === 'ok')!.value, '22');
    const duration = byName.get('pyworkers_call_duration_seconds')!;
    assert.equal(duration.type, 'HISTOGRAM');
    const h = duration.metrics[0]!;
    assert.equal(h.buckets!['+Inf'], h.count);
    assert.equal(h.count, '22');
    assert.ok(Number(h.sum) > 0);
    for (const name of ['pyworkers_queue_wait_seconds', 'pyworkers_queue_depth', 'pyworkers_busy_ratio', 'pyworkers_worker_restarts_total', 'pyworkers_worker_crashes_total', 'pyworkers_worker_recycles_total', 'pyworkers_gc_collections_total', 'pyworkers_worker_busy_seconds_total', 'pyworkers_gc_pause_seconds']) {
      assert.ok(byName.has(name), name);
    }
    // (that parser keeps no labels of labelled histograms: the gc pause series are read here)
    const pauses = [...text.matchAll(/^pyworkers_gc_pause_seconds_count\{worker="(\d+)",generation="(\d)"\} (\d+)$/gm)];
    assert.equal(pauses.length, 6); // 2 workers x 3 generations
    assert.ok(pauses.filter((m) => m[2] === '2').every((m) => Number(m[3]) >= 1), 'gc.collect() was timed');
  });

  it("promtool (Prometheus' own parser and linter) accepts it without a warning", { skip: promtool ? false : 'promtool is not installed (Debian package prometheus; CI installs it)' }, async () => {
    const p = await makePool({ workers: 2 });
    await p.tracemallocStart(1);
    await p.eval('__import__("gc").collect()');
    await rejection(p.eval('1/0'));
    const text = toPrometheus(await p.metrics(), { labels: { pool: 'models' } });
    const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve) => {
      const child = spawn(promtool!, ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      child.on('exit', (code) => resolve({ code, output }));
      child.stdin.end(text);
    });
    assert.equal(code, 0, output);
    assert.equal(output.trim(), '');
  });

  it('takes a prefix and common labels, and checks them', async () => {
    const p = await makePool({ workers: 1 });
    const m = await p.metrics();
    const text = toPrometheus(m, { prefix: 'svc_python', labels: { pool: 'mod"els' } });
    const families = parsePrometheus(text) as Family[];
    assert.ok(families.every((f) => f.name.startsWith('svc_python_')));
    assert.ok(families.filter((f) => f.type !== 'HISTOGRAM').every((f) => f.metrics.every((s) => (s.labels ?? {}).pool === 'mod"els')));
    assert.match(text, /^svc_python_call_duration_seconds_count\{pool="mod\\"els"\} \d+$/m);
    assert.throws(() => toPrometheus(m, { prefix: 'bad-name' }), /prefix/);
    assert.throws(() => toPrometheus(m, { labels: { 'a-b': 'x' } }), /label name/);
  });
});

describe('OpenTelemetry', () => {
  class TestReader extends MetricReader {
    protected override onShutdown(): Promise<void> {
      return Promise.resolve();
    }
    protected override onForceFlush(): Promise<void> {
      return Promise.resolve();
    }
  }

  it("the pool's figures are instruments of the app's MeterProvider", async () => {
    const reader = new TestReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    const p = await makePool({ workers: 2, openTelemetry: { meterProvider } });
    await Promise.all(Array.from({ length: 5 }, () => p.eval('1')));
    const { resourceMetrics } = await reader.collect();
    const metrics = new Map(resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).map((m) => [m.descriptor.name, m]));
    for (const name of ['pyworkers.calls', 'pyworkers.call.duration', 'pyworkers.queue.wait', 'pyworkers.queue.depth', 'pyworkers.workers', 'pyworkers.worker.rss', 'pyworkers.gc.collections', 'pyworkers.gc.pause.time']) {
      assert.ok(metrics.has(name), `${name} in ${[...metrics.keys()].join(', ')}`);
    }
    const ok = metrics.get('pyworkers.calls')!.dataPoints.find((d) => d.attributes.outcome === 'ok');
    assert.equal(ok!.value, 5);
    const rss = metrics.get('pyworkers.worker.rss')!.dataPoints;
    assert.deepEqual(rss.map((d) => d.attributes.worker).sort(), [1, 2]);
    const duration = metrics.get('pyworkers.call.duration')!.dataPoints[0]!.value as { count: number };
    assert.equal(duration.count, 5);
    await p.close();
    await meterProvider.shutdown();
  });

  it('openTelemetry: false registers nothing; a bad meterProvider is an ArgumentError', async () => {
    const reader = new TestReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    const { metrics } = await import('@opentelemetry/api');
    metrics.setGlobalMeterProvider(meterProvider);
    const p = await makePool({ workers: 1, openTelemetry: false });
    await p.eval('1');
    const { resourceMetrics } = await reader.collect();
    assert.equal(resourceMetrics.scopeMetrics.length, 0);
    metrics.disable();
    await assert.rejects(makePool({ openTelemetry: { meterProvider: {} as never } }), /openTelemetry\.meterProvider/);
  });
});

describe('tracing on diagnostics_channel', () => {
  it('publishes start, end, asyncStart, asyncEnd and error for calls, evals, execs and handle methods', async () => {
    const p = await makePool({ workers: 1, setup: 'class C:\n    def m(self, x):\n        return x * 2' });
    const events: Array<[string, CallTraceContext]> = [];
    const channel = diagnostics_channel.tracingChannel('pyworkers:call');
    const handlers = {
      start: (c: unknown) => events.push(['start', { ...(c as CallTraceContext) }]),
      end: (c: unknown) => events.push(['end', { ...(c as CallTraceContext) }]),
      asyncStart: (c: unknown) => events.push(['asyncStart', { ...(c as CallTraceContext) }]),
      asyncEnd: (c: unknown) => events.push(['asyncEnd', { ...(c as CallTraceContext) }]),
      error: (c: unknown) => events.push(['error', { ...(c as CallTraceContext) }]),
    };
    channel.subscribe(handlers);
    try {
      assert.equal(await p.call('math', 'sqrt', [16]), 4);
      assert.deepEqual(events.map((e) => e[0]), ['start', 'end', 'asyncStart', 'asyncEnd']);
      const [start, , , end] = events;
      assert.deepEqual(start![1], { kind: 'call', module: 'math', fn: 'sqrt' });
      assert.equal(end![1].workerId, p.stats().perWorker[0]!.workerId);
      assert.ok(end![1].durationMs! >= 0);
      events.length = 0;
      await rejection(p.eval('1 / 0'));
      assert.deepEqual(events.map((e) => e[0]), ['start', 'end', 'error', 'asyncStart', 'asyncEnd']);
      assert.equal(events[0]![1].code, '1 / 0');
      assert.equal((events[2]![1].error as { type: string }).type, 'ZeroDivisionError');
      events.length = 0;
      await p.exec('y = 1');
      const ref = await p.evalRef('C()');
      events.length = 0;
      assert.equal(await ref.call('m', [21]), 42);
      assert.deepEqual(events[0]![1], { kind: 'call', module: 'PyRef<__main__.C>', fn: 'm' });
    } finally {
      channel.unsubscribe(handlers);
    }
    events.length = 0;
    await p.eval('1');
    assert.equal(events.length, 0, 'nothing once unsubscribed');
  });

  it('publishes on plain channels too: pyworkers:call:start, :end and :error', async () => {
    const p = await makePool({ workers: 1 });
    const seen: string[] = [];
    const on = (name: string) => (message: unknown) => seen.push(`${name} ${(message as CallTraceContext).kind}${(message as CallTraceContext).workerId ? ' on a worker' : ''}`);
    const handlers = { start: on('start'), end: on('end'), error: on('error') };
    for (const [name, fn] of Object.entries(handlers)) diagnostics_channel.subscribe(`pyworkers:call:${name}`, fn);
    try {
      await p.call('math', 'floor', [1.5]);
      await rejection(p.eval('1 / 0'));
      await p.exec('x = 1');
    } finally {
      for (const [name, fn] of Object.entries(handlers)) diagnostics_channel.unsubscribe(`pyworkers:call:${name}`, fn);
    }
    assert.deepEqual(seen, ['start call', 'end call on a worker', 'start eval', 'error eval on a worker', 'end eval on a worker', 'start exec', 'end exec']);
  });
});

describe('logging', () => {
  const LOGGING = `
import logging, threading
log = logging.getLogger('app.db')
def emit():
    log.debug('hidden')
    log.info('connected to %s', 'db1')
    try:
        {}['missing']
    except KeyError:
        log.exception('lookup failed')
    t = threading.Thread(target=lambda: log.warning('from a thread'), name='worker-thread')
    t.start()
    t.join()
    return 'done'
`;

  it('Python logging records reach the handler as structured records, at the level asked', async () => {
    const records: LogRecord[] = [];
    const p = await makePool({ workers: 1, setup: LOGGING, logging: { level: 'INFO', handler: (r) => records.push(r) } });
    assert.equal(await p.call('__main__', 'emit'), 'done');
    // the records of a call arrive before it resolves
    assert.deepEqual(records.map((r) => [r.level, r.logger, r.message]), [
      ['INFO', 'app.db', 'connected to db1'],
      ['ERROR', 'app.db', 'lookup failed'],
      ['WARNING', 'app.db', 'from a thread'],
    ]);
    const [info, error, warning] = records;
    assert.equal(info!.levelno, 20);
    assert.equal(info!.function, 'emit');
    assert.equal(info!.line, 6);
    assert.equal(info!.exception, null);
    assert.match(error!.exception!, /KeyError: 'missing'/);
    assert.equal(warning!.thread, 'worker-thread');
    assert.ok(Math.abs(info!.time - Date.now()) < 10_000);
    assert.equal(info!.workerId, p.stats().perWorker[0]!.workerId);
  });

  it("without a handler, records are 'log' events; with neither, lines on stderr", async () => {
    const p = await makePool({ workers: 1, setup: LOGGING, logging: { level: 'DEBUG' } });
    const records: LogRecord[] = [];
    p.on('log', (r) => records.push(r));
    await p.call('__main__', 'emit');
    assert.equal(records[0]!.message, 'hidden');
    assert.equal(records.length, 4);
  });

  it('bad options are errors that name them', async () => {
    await assert.rejects(makePool({ logging: { level: 'LOUD' as never } }), /options\.logging\.level must be one of/);
    await assert.rejects(makePool({ logging: { handler: 1 as never } }), /options\.logging\.handler must be a function/);
    await assert.rejects(makePool({ logging: { colour: true } as never }), /Unknown option 'colour'/);
  });
});

describe('printed output', () => {
  it("a call's print() output is emitted before the call resolves, in order", async () => {
    const p = await makePool({ workers: 2 });
    const seen: string[] = [];
    p.on('stdout', (e) => seen.push(e.text));
    await p.exec('def talk(i):\n    print("line", i)\n    print("partial", i, end="")\n    return i');
    for (let i = 0; i < 50; i++) {
      seen.length = 0;
      const value = await p.call('__main__', 'talk', [i]);
      assert.equal(value, i);
      assert.equal(seen.join(''), `line ${i}\npartial ${i}`, `call ${i}`);
    }
  });

  it('sys.stdout.buffer, flush() and closing stdout behave as on a file', async () => {
    const p = await makePool({ workers: 1 });
    const seen: string[] = [];
    p.on('stdout', (e) => seen.push(e.text));
    await p.exec('import sys\nsys.stdout.buffer.write(b"bytes\\n")\nsys.stdout.write("no newline")\nsys.stdout.flush()');
    assert.equal(seen.join(''), 'bytes\nno newline');
    assert.equal(await p.eval('__import__("sys").stdout.fileno()'), 1);
  });
});

describe('containers', () => {
  const temp: string[] = [];
  after(() => temp.forEach((dir) => rmSync(dir, { recursive: true, force: true })));
  function tree(files: Record<string, string>): string {
    const root = mkdtempSync(path.join(os.tmpdir(), 'pyworkers-cgroup-'));
    temp.push(root);
    for (const [file, text] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
      writeFileSync(path.join(root, file), text);
    }
    return root;
  }

  it('cgroup v2: the tightest CPU quota and memory limit on the way up from the process cgroup', () => {
    const root = tree({
      'cgroup.controllers': 'cpu memory',
      'kubepods/cpu.max': '400000 100000',
      'kubepods/memory.max': '4294967296',
      'kubepods/pod1/cpu.max': '150000 100000',
      'kubepods/pod1/memory.max': 'max',
      'kubepods/pod1/memory.current': '123456',
    });
    assert.deepEqual(readContainer(root, '0::/kubepods/pod1\n'), { cgroup: 'v2', cpuQuota: 1.5, memoryLimit: 4294967296, memoryUsage: 123456 });
    assert.deepEqual(readContainer(root, '0::/\n'), { cgroup: 'v2', cpuQuota: null, memoryLimit: null, memoryUsage: null });
    assert.equal(defaultWorkers({ availableParallelism: () => 16, cpus: () => [] }, readContainer(root, '0::/kubepods/pod1\n')), 1);
    assert.equal(defaultWorkers({ availableParallelism: () => 16, cpus: () => [] }, readContainer(root, '0::/kubepods\n')), 4);
    assert.equal(defaultWorkers({ availableParallelism: () => 2, cpus: () => [] }, readContainer(root, '0::/\n')), 2);
  });

  it('cgroup v1: quota and limit of the controllers the process is in; "unlimited" is no limit', () => {
    const root = tree({
      'cpu,cpuacct/docker/abc/cpu.cfs_quota_us': '250000',
      'cpu,cpuacct/docker/abc/cpu.cfs_period_us': '100000',
      'memory/docker/abc/memory.limit_in_bytes': '536870912',
      'memory/docker/abc/memory.usage_in_bytes': '1000',
      'memory/memory.limit_in_bytes': '9223372036854771712',
    });
    const membership = '4:memory:/docker/abc\n2:cpu,cpuacct:/docker/abc\n';
    assert.deepEqual(readContainer(root, membership), { cgroup: 'v1', cpuQuota: 2.5, memoryLimit: 536870912, memoryUsage: 1000 });
    assert.deepEqual(readContainer(root, '4:memory:/\n2:cpu,cpuacct:/\n'), { cgroup: 'v1', cpuQuota: null, memoryLimit: null, memoryUsage: null });
  });

  it('a pool in a (fake) container: default workers from the quota, the limit in memoryStats, one warning when caps exceed it', async () => {
    const root = tree({ 'cgroup.controllers': 'cpu memory', 'cpu.max': '100000 100000', 'memory.max': String(256 * 2 ** 20), 'memory.current': '1' });
    const script = `
      import { createPool } from ${JSON.stringify(path.join(ROOT, 'src', 'index.ts'))};
      const warnings = [];
      process.on('warning', (w) => warnings.push(w.code));
      const pool = await createPool({ forwardOutput: false });
      const stats = await pool.memoryStats();
      const second = await createPool({ workers: 2, maxMemory: '200MB', forwardOutput: false });
      const third = await createPool({ workers: 2, maxMemory: '200MB', forwardOutput: false });
      await new Promise((r) => setImmediate(r));
      console.log(JSON.stringify({ workers: pool.stats().workers, container: stats.container, warnings }));
      await Promise.all([pool.close(), second.close(), third.close()]);
    `;
    const out = await runTs(script, { PYWORKERS_CGROUP_ROOT: root });
    const result = JSON.parse(out.trim().split('\n').at(-1)!);
    assert.equal(result.workers, 1);
    assert.equal(result.container.memoryLimit, 256 * 2 ** 20);
    assert.equal(result.container.cpuQuota, 1);
    assert.deepEqual(result.warnings, ['PYWORKERS_MEMORY_OVERCOMMIT']);
  });

  const root = process.getuid?.() === 0;
  const v1 = process.platform === 'linux' && (() => {
    try {
      return !readContainer('/sys/fs/cgroup').cgroup || readContainer('/sys/fs/cgroup').cgroup === 'v1';
    } catch {
      return false;
    }
  })();
  it('a real cgroup: a process moved into one with a CPU quota and a memory limit sees them', { skip: !root ? 'needs root to make a cgroup' : process.platform !== 'linux' ? 'Linux only' : false }, async () => {
    const name = `pyworkers-test-${process.pid}`;
    const info = readContainer('/sys/fs/cgroup');
    const dirs = info.cgroup === 'v2' || !v1 ? [path.join('/sys/fs/cgroup', name)] : [path.join('/sys/fs/cgroup/cpu', name), path.join('/sys/fs/cgroup/memory', name)];
    for (const dir of dirs) mkdirSync(dir, { recursive: true });
    try {
      if (dirs.length === 1) {
        writeFileSync('/sys/fs/cgroup/cgroup.subtree_control', '+cpu +memory');
        writeFileSync(path.join(dirs[0]!, 'cpu.max'), '200000 100000');
        writeFileSync(path.join(dirs[0]!, 'memory.max'), String(1024 * 2 ** 20));
      } else {
        writeFileSync(path.join(dirs[0]!, 'cpu.cfs_period_us'), '100000');
        writeFileSync(path.join(dirs[0]!, 'cpu.cfs_quota_us'), '100000');
        writeFileSync(path.join(dirs[1]!, 'memory.limit_in_bytes'), String(1024 * 2 ** 20));
      }
      const script = `
        import { createPool } from ${JSON.stringify(path.join(ROOT, 'src', 'index.ts'))};
        const pool = await createPool({ forwardOutput: false });
        console.log(JSON.stringify({ workers: pool.stats().workers, container: (await pool.memoryStats()).container }));
        await pool.close();
      `;
      const enter = dirs.map((dir) => `echo $$ > ${dir}/cgroup.procs`).join(' && ');
      const out = await runTs(script, {}, enter);
      const result = JSON.parse(out.trim().split('\n').at(-1)!);
      assert.equal(result.container.memoryLimit, 1024 * 2 ** 20);
      assert.equal(result.container.cpuQuota, dirs.length === 1 ? 2 : 1);
      assert.equal(result.workers, dirs.length === 1 ? 2 : 1);
    } finally {
      for (const dir of dirs) {
        for (let i = 0; i < 50; i++) {
          try {
            rmdirSync(dir);
            break;
          } catch {
            await sleep(100); // its processes are still exiting
          }
        }
      }
    }
  });
});

describe('drain and readiness', () => {
  it('drain(): stops taking calls at once, lets running and queued ones finish, then ends the workers', async () => {
    const p = await makePool({ workers: 1 });
    assert.equal(p.ready, true);
    assert.equal(p.stats().accepting, true);
    const running = p.eval('__import__("time").sleep(0.3) or "finished"');
    const queued = p.eval('"queued too"');
    await sleep(50);
    const draining = p.drain({ timeout: 5000 });
    assert.equal(p.ready, false);
    assert.equal(p.accepting, false);
    assert.equal(p.stats().accepting, false);
    assert.ok((await rejection(p.eval('1'))) instanceof PoolClosedError);
    assert.equal(await running, 'finished');
    assert.equal(await queued, 'queued too');
    const result = await draining;
    assert.equal(result.drained, true);
    assert.equal(result.pending, 2);
    assert.equal(p.stats().workers, 0);
  });

  it('close({ drain: true }) is the same; force and drain together are an error', async () => {
    const p = await makePool({ workers: 1 });
    const running = p.eval('__import__("time").sleep(0.2) or "finished"');
    await sleep(30);
    await assert.rejects(p.close({ drain: true, force: true }), /exclude each other/);
    await p.close({ drain: true });
    assert.equal(await running, 'finished');
    assert.equal(p.accepting, false);
  });

  it('past its deadline, drain() ends what still runs and says so', async () => {
    const p = await makePool({ workers: 1 });
    const running = rejection(p.eval('__import__("time").sleep(10)'));
    await sleep(50);
    const result = await p.drain({ timeout: 200 });
    assert.equal(result.drained, false);
    assert.ok((await running) instanceof PoolClosedError);
    await assert.rejects(p.drain({ timeout: -1 }), /options\.timeout/);
  });
});

describe('the operations example', () => {
  it('serves /metrics (Prometheus and OpenTelemetry), /healthz and /readyz, and drains on SIGTERM without losing a request', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'examples', 'operations-server.ts')], { cwd: ROOT, env: { ...process.env, PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      assert.ok(await until(() => /listening on http:\/\/127\.0\.0\.1:\d+/.test(output), 30_000), output);
      const base = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output)![1]!;
      assert.equal((await fetch(`${base}/healthz`)).status, 200);
      assert.equal((await fetch(`${base}/readyz`)).status, 200);
      assert.equal(await (await fetch(`${base}/work?seconds=0`)).text(), 'done');
      const metrics = await fetch(`${base}/metrics`);
      assert.match(metrics.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
      const families = parsePrometheus(await metrics.text()) as Family[];
      assert.ok(families.some((f) => f.name === 'pyworkers_calls_total'));
      const otel = (await (await fetch(`${base}/metrics/otel`)).json()) as Record<string, Array<{ attributes: Record<string, unknown>; value: unknown }>>;
      assert.equal(otel['pyworkers.calls']!.find((d) => d.attributes.outcome === 'ok')!.value, 1);
      assert.ok(otel['pyworkers.worker.rss']!.length >= 1);
      const slow = fetch(`${base}/work?seconds=0.5`).then(async (r) => [r.status, await r.text()] as const);
      await sleep(150);
      child.kill('SIGTERM');
      assert.deepEqual(await slow, [200, 'done']);
      assert.equal(await exited, 0);
      assert.match(output, /drained: true/);
    } finally {
      child.kill('SIGKILL');
    }
  });
});

/** Run a TypeScript module in a child process; `shell`: a command run first in the same process (`exec`ed). */
function runTs(script: string, env: Record<string, string>, shell?: string): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pyworkers-ops-'));
  const file = path.join(dir, 'child.mts');
  writeFileSync(file, script);
  const node = `${JSON.stringify(process.execPath)} --import tsx ${JSON.stringify(file)}`;
  return new Promise((resolve, reject) => {
    execFile(shell ? '/bin/sh' : process.execPath, shell ? ['-c', `${shell} && exec ${node}`] : ['--import', 'tsx', file], { cwd: ROOT, env: { ...process.env, ...env }, timeout: 60_000 }, (error, stdout, stderr) => {
      rmSync(dir, { recursive: true, force: true });
      if (error) reject(new Error(`${error.message}\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
  });
}
