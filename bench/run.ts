/**
 * `npm run bench`: pyworkers against a raw pipe floor and against the peer libraries, in one run.
 *
 *   node --import tsx bench/run.ts [--quick] [--no-peers] [--no-write]
 *
 * pyworkers and the floor run in this process, interleaved round by round so that drift on a noisy machine hits
 * both alike; each peer runs afterwards in a child process of its own. Prints one table, writes
 * bench/results/latest.json and the results section of docs/benchmarks.md (unless --no-write).
 */
import { execFileSync, spawn } from 'node:child_process';
import diagnostics_channel from 'node:diagnostics_channel';
import { once } from 'node:events';
import { mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { FloorClient, startFloor } from './floor/client.js';
import { pinningAvailable, place, type Placement } from './lib/pin.js';
import { backgroundCpu, clean, cpuNs, fullGc, setRetryBudget, median, Watch, MiB, now, percentile, rssOf, runCalls, sequential, sleep, throughput, waitForQuiet } from './lib/measure.js';
import { makeRow, markdownTable, notesList, PEERS, target, timeRatio, type PeerName, type Row } from './lib/report.js';
import { DICT, INTS, sizedCall, SIZED, type Bridge, type Sized } from './lib/subject.js';
import type { PeerResults } from './peers/run-peer.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const PY_DIR = path.join(HERE, 'py');
const argv = new Set(process.argv.slice(2));
const QUICK = argv.has('--quick');
const PEERS_ON = !argv.has('--no-peers');
const WRITE = !argv.has('--no-write');

type Lib = typeof import('../src/index.js');
type Pool = import('../src/index.js').Pool;
type NDArray = import('../src/index.js').NDArray;
// The built package (npm run bench builds it first), typed from the sources.
const lib = (await import(pathToFileURL(path.join(ROOT, 'dist', 'index.js')).href)) as Lib;

const log = (line: string) => process.stderr.write(`${line}\n`);
const started = now();
const python = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();
/** Whether the interpreter has numpy: without it the rows that need numpy are not run (the floor's still are). */
const HAS_NUMPY = (() => {
  try {
    execFileSync(python, ['-c', 'import numpy'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const NO_NUMPY = 'not run (no numpy)';

/** Sizes of the run; --quick is for checking that the benchmark works, not for figures. */
const N = QUICK
  ? { startups: 2, rounds: 2, latency: 500, tputMs: 200, sized: 6, stream: 50_000, interrupts: 2, respawns: 2, growth: 20_000, monitorRounds: 2 }
  : { startups: 7, rounds: 5, latency: 2000, tputMs: 500, sized: 30, stream: 200_000, interrupts: 5, respawns: 5, growth: 100_000, monitorRounds: 10 };

const poolOptions = (extra: Record<string, unknown> = {}) => ({ workers: 1, forwardOutput: false, pythonPath: [PY_DIR], ...extra });

function poolBridge(pool: Pool): Bridge {
  return {
    ping: () => pool.call('benchfns', 'echo', [1]),
    blobOut: () => pool.call('benchfns', 'blob'),
    bytesIn: (data) => pool.call('benchfns', 'take', [data]),
    intsOut: (n) => pool.call('benchfns', 'make_ints', [n]),
    intsIn: (values) => pool.call('benchfns', 'take', [values]),
    dictOut: (n) => pool.call('benchfns', 'make_dict', [n]),
    dictIn: (dict) => pool.call('benchfns', 'take', [dict]),
    ...(HAS_NUMPY && {
      arrayOut: async () => (await pool.call<NDArray>('benchfns', 'array_out')).data,
      arrayIn: (data: Float64Array) => pool.call('benchfns', 'array_in', [data]),
    }),
    pythonPid: () => pool.stats().perWorker[0]?.pid,
    close: () => pool.close(),
  };
}

function floorBridge(floors: FloorClient[]): Bridge {
  let next = 0;
  const pick = () => floors[next++ % floors.length]!;
  const f = floors[0]!;
  return {
    ping: () => pick().ping(1),
    blobOut: () => f.blobOut(),
    bytesIn: (data) => f.bytesIn(data),
    intsOut: (n) => f.intsOut(n),
    intsIn: (values) => f.intsIn(values),
    arrayOut: () => f.arrayOut(),
    arrayIn: (data) => f.arrayIn(data),
    pythonPid: () => f.pid,
    close: async () => {
      await Promise.all(floors.map((x) => x.close()));
    },
  };
}

/** Python processes this run owns while a phase runs (their CPU is ours, not interference). */
const livePids = new Set<() => Array<number | undefined>>();
const watch = new Watch(() => [...livePids].flatMap((f) => f()));
/** Per row: the largest share of the machine other processes took during a kept measurement. */
const disturbance: Record<string, number> = {};
const noteDisturbance = (id: string, other: number) => (disturbance[id] = Math.max(disturbance[id] ?? 0, other));

/** One measurement unit, repeated while other processes disturb it (see `clean`). */
async function unit<T>(id: string, fn: () => Promise<T>, tries = 4): Promise<T> {
  const r = await clean(watch, fn, tries);
  noteDisturbance(id, r.other);
  return r.value;
}

/** Run `a` and `b` alternately `rounds` times, each pair as one unit; returns both lists of results. */
async function interleave<T>(id: string, rounds: number, a: () => Promise<T>, b: () => Promise<T>): Promise<[T[], T[]]> {
  const as: T[] = [];
  const bs: T[] = [];
  for (let i = 0; i < rounds; i++) {
    const [x, y] = await unit(id, async () => {
      if (i % 2 === 0) {
        const x = await a();
        return [x, await b()] as const;
      }
      const y = await b();
      return [await a(), y] as const;
    });
    as.push(x);
    bs.push(y);
  }
  return [as, bs];
}

const raw: Record<string, unknown> = {};
const pyw: Record<string, number | string> = {};
const flr: Record<string, number | string> = {};

setRetryBudget(QUICK ? 0 : 90_000);
// Other processes on a 2-CPU machine skew every row: wait a little for a quiet machine, and record what was seen.
const busyBefore = QUICK ? await backgroundCpu(300) : await waitForQuiet(0.15, 60_000, log);

// ------------------------------------------------------------------ start-up
log(`python: ${python}${HAS_NUMPY ? '' : ' (no numpy: its rows are not run)'}`);
log('start-up ...');
{
  let t0 = now();
  const first = await lib.createPool(poolOptions());
  await first.call('benchfns', 'echo', [1]);
  pyw.startupCold = now() - t0;
  await first.close();
  const [floorTimes, poolTimes] = await interleave(
    'startup',
    N.startups,
    async () => {
      t0 = now();
      const f = await startFloor(python);
      const ms = now() - t0;
      await f.close();
      return ms;
    },
    async () => {
      t0 = now();
      const p = await lib.createPool(poolOptions());
      await p.call('benchfns', 'echo', [1]);
      const ms = now() - t0;
      await p.close();
      return ms;
    },
  );
  flr.startup = median(floorTimes);
  pyw.startup = median(poolTimes);
  raw.startup = { floor: floorTimes, pyworkers: poolTimes, pyworkersFirstInProcess: pyw.startupCold };

  // Idle RSS: a fresh worker (and a fresh floor) after a few trivial calls.
  const p = await lib.createPool(poolOptions());
  const f = await startFloor(python);
  for (let i = 0; i < 200; i++) {
    await p.call('benchfns', 'echo', [1]);
    await f.ping(1);
  }
  await sleep(300);
  pyw.idleRss = rssOf(p.stats().perWorker[0]!.pid!) / MiB;
  flr.idleRss = rssOf(f.pid) / MiB;
  await Promise.all([p.close(), f.close()]);
}

// ------------------------------------------------------------------ long-lived subjects
const pool1 = await lib.createPool(poolOptions({ functions: { ping: (x: unknown) => x } }));
const pool2 = await lib.createPool(poolOptions({ workers: 2 }));
const floor1 = await startFloor(python);
const floor2 = [await startFloor(python), await startFloor(python)];
livePids.add(() => [floor1.pid, ...floor2.map((f) => f.pid), ...[pool1, pool2].flatMap((p) => p.stats().perWorker.map((w) => w.pid))]);
const P1 = poolBridge(pool1);
const P2 = poolBridge(pool2);
const F1 = floorBridge([floor1]);
const F2 = floorBridge(floor2);
const pythonVersion = pool1.version();

/** Pin this process, floor1 and pool1's worker (see lib/pin.ts). */
const pinMain = (placement: Placement) => place(placement, [floor1.pid, pool1.stats().perWorker[0]?.pid]);

// ------------------------------------------------------------------ trivial call latency
log('trivial call latency ...');
for (const placement of ['same', 'separate'] as const) {
  pinMain(placement);
  await sequential(() => F1.ping(), 2000);
  await sequential(() => P1.ping(), 2000);
  const key = placement === 'same' ? 'Same' : 'Sep';
  const [f, p] = await interleave(`latency${key}Median`, N.rounds, () => sequential(() => F1.ping(), N.latency), () => sequential(() => P1.ping(), N.latency));
  noteDisturbance(`latency${key}P99`, disturbance[`latency${key}Median`]!);
  const fs = f.flat();
  const ps = p.flat();
  flr[`latency${key}Median`] = median(fs) * 1000;
  flr[`latency${key}P99`] = percentile(fs, 99) * 1000;
  pyw[`latency${key}Median`] = median(ps) * 1000;
  pyw[`latency${key}P99`] = percentile(ps, 99) * 1000;
  raw[`latencyRoundMediansUs_${placement}`] = { floor: f.map((x) => median(x) * 1000), pyworkers: p.map((x) => median(x) * 1000) };
}

// ------------------------------------------------------------------ calls/s, 64 in flight
log('calls/s with 64 in flight ...');
for (const [name, F, P] of [['1', F1, P1], ['2', F2, P2]] as const) {
  // One worker: host and Python pinned apart. Two workers: three busy processes on two CPUs, left to the scheduler.
  pinMain(name === '1' ? 'separate' : 'free');
  await throughput(() => F.ping(), 64, 200);
  await throughput(() => P.ping(), 64, 200);
  const [f, p] = await interleave(`tput${name}`, N.rounds, () => throughput(() => F.ping(), 64, N.tputMs), () => throughput(() => P.ping(), 64, N.tputMs));
  flr[`tput${name}`] = median(f);
  pyw[`tput${name}`] = median(p);
  raw[`callsPerSec64_${name}worker`] = { floor: f, pyworkers: p };
}

// ------------------------------------------------------------------ payloads
// Host and Python on one CPU: the time is then the work of both sides plus the kernel's copies, without the
// cross-CPU wake-ups that make a transfer of many socket-buffers' worth bimodal on this VM.
log('payloads ...');
pinMain('same');
for (const kind of SIZED) {
  const p = sizedCall(P1, kind);
  const f = sizedCall(F1, kind);
  const time = async (call: () => Promise<unknown>, into: number[]) => {
    const t0 = performance.now();
    await call();
    into.push(performance.now() - t0);
  };
  for (let i = 0; i < 3; i++) {
    if (p) await p();
    if (f) await f();
  }
  // In units of 10 pairs, each repeated while disturbed.
  const ps: number[] = [];
  const fs: number[] = [];
  for (let done = 0; done < N.sized; done += 10) {
    const [p10, f10] = await unit(kind, async () => {
      const pp: number[] = [];
      const ff: number[] = [];
      for (let i = done; i < Math.min(N.sized, done + 10); i++) {
        if (f && i % 2 === 1) await time(f, ff);
        if (p) await time(p, pp);
        if (f && i % 2 === 0) await time(f, ff);
      }
      return [pp, ff] as const;
    });
    ps.push(...p10);
    fs.push(...f10);
  }
  if (p) pyw[kind] = median(ps);
  if (f) flr[kind] = median(fs);
  raw[`${kind}Ms`] = { floor: fs, pyworkers: ps };
}

// ------------------------------------------------------------------ numpy scalar results
// Is a numpy scalar result as cheap as a float? The same sequential calls as the trivial-call rows, pinned alike.
if (HAS_NUMPY) {
  log('np.float64 results ...');
  pinMain('same');
  const f64 = () => pool1.call('benchfns', 'f64');
  const float = () => pool1.call('benchfns', 'pyfloat');
  for (const call of [f64, float]) {
    const v: unknown = await call();
    if (v !== 2.5) throw new Error(`f64/pyfloat: expected 2.5, got ${String(v)}`);
    await sequential(call, 2000);
  }
  const [a, b] = await interleave('f64', N.rounds, () => sequential(f64, N.latency), () => sequential(float, N.latency));
  pyw.f64 = median(a.flat()) * 1000;
  pyw.pyfloat = median(b.flat()) * 1000;
  raw.f64ResultRoundMediansUs = { f64: a.map((x) => median(x) * 1000), float: b.map((x) => median(x) * 1000) };
}

// ------------------------------------------------------------------ callbacks
// A callback round trip (Python -> a TypeScript function -> Python) against a trivial call (TS -> Python -> TS):
// the same sequential round trips, pinned alike. Python makes CALLBACKS callbacks per call; the call's own cost is
// spread over them.
log('callbacks ...');
pinMain('same');
{
  const CALLBACKS = 200;
  const viaCallbacks = () => pool1.call('benchfns', 'callbacks', [CALLBACKS]);
  const trivial = () => pool1.call('benchfns', 'echo', [1]);
  if ((await viaCallbacks()) !== CALLBACKS) throw new Error('callbacks() did not make its callbacks');
  for (let i = 0; i < 20; i++) await viaCallbacks(); // the first thousands are several times slower (JIT, both sides)
  await sequential(trivial, 2000);
  const perCallback = async () => {
    const out: number[] = [];
    for (let i = 0; i < Math.max(2, N.latency / CALLBACKS); i++) {
      const t0 = now();
      await viaCallbacks();
      out.push((now() - t0) / CALLBACKS);
    }
    return out;
  };
  const [a, b] = await interleave('callbacks', N.rounds, perCallback, () => sequential(trivial, N.latency));
  pyw.callback = median(a.flat()) * 1000;
  pyw.callbackTrivial = median(b.flat()) * 1000;
  raw.callbackRoundMediansUs = { callback: a.map((x) => median(x) * 1000), trivialCall: b.map((x) => median(x) * 1000) };
}

// ------------------------------------------------------------------ remote workers
// Agents (`pyworkers serve`) as processes of their own on this machine, TLS on loopback with a token; each runs
// workers of the same interpreter with bench/py on their path. Against pool1 (local, one worker), unpinned on both
// sides: three processes (host, agent, worker) share two CPUs, and pinning would favour one side.
log('remote workers ...');
{
  const certs = benchCerts();
  if (!certs) {
    for (const key of ['remoteLatency', 'remoteTput', 'remoteScale1']) pyw[key] = 'not run (no openssl)';
  } else {
    const token = 'bench-token-0123456789abcdef';
    const agents = await Promise.all([0, 1, 2].map(() => startAgentProcess(certs, token)));
    livePids.add(() => agents.map((a) => a.pid));
    const remotePool = (count: number, extra: Record<string, unknown> = {}) =>
      lib.createPool({ forwardOutput: false, ...extra, remote: { endpoints: agents.slice(0, count).map((a) => `127.0.0.1:${a.port}`), token, ca: certs.ca, workersPerAgent: 1 } });
    try {
      pinMain('free');
      const remote1 = await remotePool(1);
      const R1 = poolBridge(remote1);
      await sequential(() => R1.ping(), 3000);
      await sequential(() => P1.ping(), 2000);
      const [local, remote] = await interleave('remoteLatency', N.rounds, () => sequential(() => P1.ping(), N.latency), () => sequential(() => R1.ping(), N.latency));
      pyw.remoteLatency = median(remote.flat()) * 1000;
      pyw.remoteLatencyLocal = median(local.flat()) * 1000;
      raw.remoteLatencyRoundMediansUs = { local: local.map((x) => median(x) * 1000), remote: remote.map((x) => median(x) * 1000) };
      await remote1.close();
      // 64 in flight over the connection: pipelineDepth 64 (the default, 32, keeps half of them in the host's queue
      // with one worker; measured too).
      const deep = await remotePool(1, { pipelineDepth: 64 });
      const RD = poolBridge(deep);
      await throughput(() => RD.ping(), 64, 300);
      await throughput(() => P1.ping(), 64, 300);
      const [lt, rt] = await interleave('remoteTput', N.rounds, () => throughput(() => P1.ping(), 64, N.tputMs), () => throughput(() => RD.ping(), 64, N.tputMs));
      pyw.remoteTput = median(rt);
      pyw.remoteTputLocal = median(lt);
      await deep.close();
      const shallow = await remotePool(1);
      const RS = poolBridge(shallow);
      await throughput(() => RS.ping(), 64, 300);
      const rs: number[] = [];
      for (let i = 0; i < N.rounds; i++) rs.push(await unit('remoteTput', () => throughput(() => RS.ping(), 64, N.tputMs)));
      pyw.remoteTputDefaultDepth = median(rs);
      raw.remoteCallsPerSec64 = { local: lt, remote: rt, remoteDefaultDepth: rs };
      await shallow.close();
      // The floor of one more hop: a TCP round trip between two Node processes on loopback (no TLS, no relay).
      pyw.remoteHopFloor = await tcpEchoRoundTrip(N.latency * 2);
      // 1, 2, 3 agents of one worker each, 64 in flight, each pool fresh; and local pools of 1, 2, 3 workers.
      for (const count of [1, 2, 3]) {
        const pool = await remotePool(count);
        const bridge = poolBridge(pool);
        await throughput(() => bridge.ping(), 64, 300);
        const samples: number[] = [];
        for (let i = 0; i < N.rounds; i++) samples.push((await unit(`remoteScale${count}`, () => throughput(() => bridge.ping(), 64, N.tputMs))));
        pyw[`remoteScale${count}`] = median(samples);
        raw[`remoteScale${count}CallsPerSec`] = samples;
        await pool.close();
        const local = await lib.createPool(poolOptions({ workers: count }));
        const localBridge = poolBridge(local);
        await throughput(() => localBridge.ping(), 64, 300);
        const localSamples: number[] = [];
        for (let i = 0; i < N.rounds; i++) localSamples.push(await unit(`remoteScale${count}`, () => throughput(() => localBridge.ping(), 64, N.tputMs)));
        pyw[`localScale${count}`] = median(localSamples);
        await local.close();
      }
    } finally {
      for (const agent of agents) agent.kill();
    }
  }
}

// ------------------------------------------------------------------ metrics and tracing: their cost
// Two pools of one worker side by side: one with metrics (histograms, gc timing, OpenTelemetry instruments on the
// API's global provider) and a diagnostics_channel subscriber on pyworkers:call, one with all of it off. Calls/s
// with 64 in flight, rounds interleaved, both pinned alike.
log('metrics and tracing on vs off ...');
pinMain('separate');
{
  const on = await lib.createPool(poolOptions());
  const off = await lib.createPool(poolOptions({ metrics: false, openTelemetry: false }));
  livePids.add(() => [on, off].flatMap((p) => p.stats().perWorker.map((w) => w.pid)));
  const channel = diagnostics_channel.tracingChannel('pyworkers:call');
  let traced = 0;
  const subscriber = { start() {}, end() {}, asyncStart() {}, asyncEnd: () => void traced++, error() {} };
  const measure = async (pool: Pool, tracingOn: boolean) => {
    if (tracingOn) channel.subscribe(subscriber);
    try {
      return await throughput(() => pool.call('benchfns', 'echo', [1]), 64, N.tputMs);
    } finally {
      if (tracingOn) channel.unsubscribe(subscriber);
    }
  };
  await measure(on, true);
  await measure(off, false);
  const [a, b] = await interleave('observability', N.rounds * 2, () => measure(on, true), () => measure(off, false));
  pyw.observedTput = median(a);
  pyw.unobservedTput = median(b);
  raw.observabilityCallsPerSec = { on: a, off: b, traced };
  await Promise.all([on.close(), off.close()]);
}

// ------------------------------------------------------------------ pyworkers run: its cost
// An allocation-heavy script (bench/py/alloc_heavy.py), run plain, under `pyworkers run` in its default sampled
// mode and in full mode, and under Scalene where it is installed (with the interpreter that has it): whole
// commands' wall time, interpreter start included, interleaved, medians. Not pinned: each is a process tree.
log('pyworkers run against the plain script ...');
pinMain('free');
{
  const timeCommand = (command: string, args: string[]) => {
    const t0 = now();
    execFileSync(command, args, { stdio: 'ignore', cwd: ROOT, env: { ...process.env, NO_COLOR: '1' } });
    return (now() - t0) / 1000;
  };
  const scalenePython = [python, '/usr/bin/python3'].find((py) => {
    try {
      execFileSync(py, ['-c', 'import scalene'], { stdio: 'ignore' }); // (its --version exits with 255)
      return true;
    } catch {
      return false;
    }
  });
  const runPython = scalenePython ?? python;
  const script = path.join(PY_DIR, 'alloc_heavy.py');
  const loops = QUICK ? '60' : '1500'; // a few seconds plain: a run worth profiling
  const cli = path.join(ROOT, 'dist', 'cli', 'main.js');
  const subjects: Record<string, () => number> = {
    plain: () => timeCommand(runPython, [script, loops]),
    sample: () => timeCommand(process.execPath, [cli, 'run', '-q', '--python', runPython, script, loops]),
    full: () => timeCommand(process.execPath, [cli, 'run', '-q', '--mode', 'full', '--python', runPython, script, loops]),
    ...(scalenePython ? { scalene: () => timeCommand(runPython, ['-m', 'scalene', '--cli', '--json', '--outfile', path.join(os.tmpdir(), 'pyworkers-bench-scalene.json'), script, loops]) } : {}),
  };
  const times: Record<string, number[]> = Object.fromEntries(Object.keys(subjects).map((k) => [k, []]));
  for (let round = 0; round < (QUICK ? 1 : 3); round++) {
    for (const [name, run] of Object.entries(subjects)) if (name !== 'full' || round === 0) times[name]!.push(run()); // (full: once, it is slow)
  }
  for (const [name, values] of Object.entries(times)) pyw[`runCost_${name}`] = median(values);
  raw.runCostSeconds = { python: runPython, loops, ...times };
}

// ------------------------------------------------------------------ the leak finder on a suite of workloads
// test/fixtures/leak_suite.py: leaky functions (their guilty line marked '# LEAK name') and clean ones, each
// through findLeaks at its default iteration count. A hit: the marked line is the first leak, with a root named.
log('the leak finder on its suite ...');
{
  const suite = readFileSync(path.join(ROOT, 'test', 'fixtures', 'leak_suite.py'), 'utf8');
  const defined = new Set([...suite.matchAll(/^def (\w+)\(/gm)].map((m) => m[1]!));
  const marked = new Map(suite.split('\n').flatMap((l, i) => {
    const m = /^\s*[^#\s].*# LEAK (\w+)$/.exec(l); // (code, then the marker)
    return m && defined.has(m[1]!) ? [[m[1]!, i + 1] as const] : [];
  }));
  const functions = [...suite.matchAll(/^def (\w+)\(/gm)].map((m) => m[1]!).filter((fn) => marked.has(fn) || ['churn', 'bounded_deque', 'bounded_lru', 'overwritten'].includes(fn));
  const pool = await lib.createPool(poolOptions({ setup: suite }));
  let found = 0;
  let quiet = 0;
  const misses: string[] = [];
  const t0 = now();
  for (const fn of functions) {
    const report = await pool.findLeaks({ module: '__main__', fn });
    const first = report.leaks[0];
    if (marked.has(fn)) {
      if (first && first.line === marked.get(fn) && first.keptAliveBy) found++;
      else misses.push(fn);
    } else if (report.leaks.length === 0) quiet++;
    else misses.push(fn);
  }
  pyw.leakSuiteSeconds = (now() - t0) / 1000;
  pyw.leakSuiteFound = found;
  pyw.leakSuiteQuiet = quiet;
  raw.leakSuite = { leaky: marked.size, clean: functions.length - marked.size, found, quiet, misses };
  await pool.close();
}

// ------------------------------------------------------------------ streams
log('streams ...');
pinMain('separate');
{
  const consume = async (hwm?: number) => {
    const t0 = now();
    let count = 0;
    for await (const _item of pool1.streamEval('range(n)', { n: N.stream }, hwm ? { highWaterMark: hwm } : undefined)) count++;
    if (count !== N.stream) throw new Error(`stream gave ${count} items`);
    return N.stream / ((now() - t0) / 1000);
  };
  await consume();
  const rates: number[] = [];
  const big: number[] = [];
  for (let i = 0; i < 3; i++) {
    const [a, b] = await unit('stream', async () => [await consume(), await consume(16384)] as const);
    rates.push(a);
    big.push(b);
  }
  pyw.stream = median(rates);
  raw.streamItemsPerSec = { defaultHighWaterMark: rates, highWaterMark16384: big };
  pyw.streamBigHwm = median(big);
}

// ------------------------------------------------------------------ work stealing
// A call sent ahead to a worker that runs a long call is taken over by the idle worker: how soon, behind a call
// that sleeps (the GIL is free) and behind a pure-Python loop (the worker's control thread must win the GIL).
log('work stealing ...');
pinMain('free');
{
  const behind = async (fn: 'spin_for' | 'nap') => {
    const t0 = now();
    const long = pool2.call('benchfns', fn, [0.2]);
    const other = pool2.call('benchfns', 'echo', [1]); // the other worker
    const waiting = pool2.call('benchfns', 'echo', [2]); // sent ahead behind one of the two
    await other;
    await waiting;
    const ms = now() - t0;
    await long;
    return ms;
  };
  for (const fn of ['nap', 'spin_for'] as const) {
    const times: number[] = [];
    for (let i = 0; i < (QUICK ? 3 : 15); i++) times.push(await unit(`steal_${fn}`, () => behind(fn)));
    pyw[`steal_${fn}`] = median(times);
    raw[`stealMs_${fn}`] = times;
  }
}

// ------------------------------------------------------------------ interrupts
log('interrupts ...');
{
  const TIMEOUT = 50;
  const rejects: number[] = [];
  const answers: number[] = [];
  for (let i = 0; i < N.interrupts; i++) {
    const [rejected, answered] = await unit('interruptReject', async () => {
      const deadline = now() + TIMEOUT;
      try {
        await pool1.call('benchfns', 'spin', [], { timeout: TIMEOUT });
        throw new Error('spin() returned');
      } catch (error) {
        if ((error as { code?: string }).code !== 'ERR_TIMEOUT') throw error;
      }
      const rejected = now() - deadline;
      await pool1.call('benchfns', 'echo', [1]);
      return [rejected, now() - deadline] as const;
    }, 3);
    rejects.push(rejected);
    answers.push(answered);
  }
  noteDisturbance('interruptAnswer', disturbance.interruptReject!);
  pyw.interruptReject = median(rejects);
  pyw.interruptAnswer = median(answers);
  raw.interruptMs = { rejection: rejects, answering: answers, restarts: pool1.stats().restarts };
}

// ------------------------------------------------------------------ respawn
log('respawn ...');
pinMain('free');
{
  const times: number[] = [];
  for (let i = 0; i < N.respawns; i++) {
    await pool1.call('benchfns', 'echo', [1]);
    times.push(
      await unit('respawn', async () => {
        const pid = pool1.stats().perWorker[0]!.pid!;
        const replaced = once(pool1, 'workerStart');
        const t0 = now();
        process.kill(pid, 'SIGKILL');
        await replaced;
        await pool1.call('benchfns', 'echo', [1]);
        return now() - t0;
      }, 3),
    );
  }
  pyw.respawn = median(times);
  raw.respawnMs = times;
}

// ------------------------------------------------------------------ host memory over many calls
log('host memory over many calls ...');
{
  const growth = async (b: Bridge) => {
    await runCalls(() => b.ping(), 64, 20_000);
    fullGc();
    const before = process.memoryUsage();
    await runCalls(() => b.ping(), 64, N.growth);
    fullGc();
    const after = process.memoryUsage();
    return { rss: (after.rss - before.rss) / MiB, heap: (after.heapUsed - before.heapUsed) / MiB };
  };
  const f = await growth(F1);
  const p = await growth(P1);
  flr.growth = f.rss;
  pyw.growth = p.rss;
  raw.hostGrowthMiB = { calls: N.growth, floor: f, pyworkers: p };
}

// ------------------------------------------------------------------ memory monitor cost
log('monitoring cost ...');
{
  // Each round pairs a fresh plain pool with a fresh monitored one (same placement, alternating order), so the
  // monitor is the only difference and neither pool's sampling runs during the other's round.
  const probe = await lib.createPool(poolOptions({ monitor: { interval: 100 } })).then(
    (p) => p,
    (error: Error) => {
      pyw.monitor = 'n/a (not built yet)';
      raw.monitorError = error.message;
      return undefined;
    },
  );
  if (probe) {
    await probe.close();
    const plain: number[] = [];
    const mon: number[] = [];
    for (let i = 0; i < N.monitorRounds; i++) {
      const a = await lib.createPool(poolOptions());
      const b = await lib.createPool(poolOptions({ monitor: { interval: 100 } }));
      const pids = () => [a.stats().perWorker[0]?.pid, b.stats().perWorker[0]?.pid];
      livePids.add(pids);
      place('separate', pids());
      const A = poolBridge(a);
      const B = poolBridge(b);
      await throughput(() => A.ping(), 64, 150);
      await throughput(() => B.ping(), 64, 150);
      const [x, y] = await unit('monitor', async () => {
        if (i % 2 === 0) {
          const x = await throughput(() => A.ping(), 64, N.tputMs);
          return [x, await throughput(() => B.ping(), 64, N.tputMs)] as const;
        }
        const y = await throughput(() => B.ping(), 64, N.tputMs);
        return [await throughput(() => A.ping(), 64, N.tputMs), y] as const;
      });
      plain.push(x);
      mon.push(y);
      livePids.delete(pids);
      await Promise.all([a.close(), b.close()]);
    }
    const costs = plain.map((p, i) => (1 - mon[i]! / p) * 100);
    pyw.monitor = median(costs);
    // What sampling itself costs, measured on one idle pool at a time: CPU of host and worker over 2 s.
    const shares: [number[], number[]] = [[], []];
    for (let i = 0; i < (QUICK ? 2 : 6); i++) {
      const which = i % 2;
      const p = await lib.createPool(poolOptions(which ? { monitor: { interval: 100 } } : {}));
      const pid = p.stats().perWorker[0]!.pid!;
      await sleep(300);
      fullGc();
      const h0 = process.cpuUsage();
      const w0 = cpuNs(pid);
      const t0 = now();
      await sleep(2000);
      const h = process.cpuUsage(h0);
      shares[which]!.push(((h.user + h.system) * 1000 + (cpuNs(pid) - w0)) / ((now() - t0) * 1e6));
      await p.close();
    }
    const idlePlain = median(shares[0]);
    const idleMon = median(shares[1]);
    raw.monitorIdleCpuShare = { plain: idlePlain, monitored: idleMon, samples: shares, perSampleUs: ((idleMon - idlePlain) * 100_000) };
    raw.monitorCost = { plain, monitored: mon, costPercent: costs, noisePercent: [percentile(costs, 25), percentile(costs, 75)] };
  }
}
pinMain('free');

await Promise.all([pool1.close(), pool2.close(), F1.close(), F2.close()]);

// ------------------------------------------------------------------ peers
const peers: Partial<Record<PeerName, PeerResults>> = {};
if (PEERS_ON) {
  const tmp = path.join(os.tmpdir(), `pyworkers-bench-${process.pid}`);
  mkdirSync(tmp, { recursive: true });
  for (const name of PEERS) {
    log(`peer ${name} ...`);
    if (!QUICK) await waitForQuiet(0.15, 20_000, log);
    const out = path.join(tmp, `${name}.json`);
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(HERE, 'peers', 'run-peer.ts'), name], {
      cwd: ROOT,
      env: { ...process.env, BENCH_PYTHON: python, BENCH_NUMPY: HAS_NUMPY ? '1' : '0', BENCH_OUT: out, BENCH_QUICK: QUICK ? '1' : '0' },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 240_000);
    await once(child, 'exit');
    clearTimeout(timer);
    peers[name] = existsSync(out) ? (JSON.parse(readFileSync(out, 'utf8')) as PeerResults) : { name, error: 'failed: no result (timed out or crashed)' };
  }
  rmSync(tmp, { recursive: true, force: true });
}

const busyAfter = await backgroundCpu(500);
const load = os.loadavg();

// ------------------------------------------------------------------ the table
const peerValue = (name: PeerName, key: keyof PeerResults): number | string | undefined => {
  const p = peers[name];
  if (!p) return PEERS_ON ? undefined : 'not run';
  if (p.error) return p.error;
  const v = p[key];
  return typeof v === 'number' ? v : undefined;
};
const peerValues = (key: keyof PeerResults) => Object.fromEntries(PEERS.map((n) => [n, peerValue(n, key)]));
const NOT_SUPPORTED = 'cannot (no interrupt)';

const rows: Row[] = [];
const add = (row: Row) => (rows.push(row), row);
{
  let r: Row;
  add(makeRow('startup', 'start-up to first result (1 worker)', 'ms', 'lower', { pyworkers: pyw.startup, floor: flr.startup, ...peerValues('startup') },
    `median of ${N.startups} fresh starts, spawn to the first answer. The first pool in a process also resolves \`python3\` to its real executable once (pyenv shim): ${(pyw.startupCold as number).toFixed(0)} ms.` +
      (peers['node-calls-python']?.startupNote ? ` node-calls-python: ${peers['node-calls-python'].startupNote}.` : '') +
      (peers.pythonia?.startupNote ? ` pythonia: ${peers.pythonia.startupNote}.` : '')));
  for (const [key, where] of [['Same', 'host and Python on one CPU'], ['Sep', 'host and Python on separate CPUs']] as const) {
    r = add(makeRow(`latency${key}Median`, `trivial call, median (${where})`, 'µs', 'lower', { pyworkers: pyw[`latency${key}Median`], floor: flr[`latency${key}Median`], ...peerValues(`latency${key}Median`) },
      key === 'Same'
        ? `\`echo(1)\`, one call at a time after warm-up, ${N.rounds}×${N.latency} calls interleaved with the floor. Pinned with taskset: left alone, the scheduler puts a quiet ping-pong on one CPU or on two at random, and the two differ by ~60 µs here (a wake-up across vCPUs).` +
            (typeof peers['node-calls-python']?.syncLatencyMedian === 'number' ? ` node-calls-python's synchronous \`callSync\` (blocks the event loop): ${peers['node-calls-python'].syncLatencyMedian.toFixed(1)} µs.` : '')
        : 'node-calls-python: its interpreter runs on the thread-pool threads, pinned apart from the main thread.'));
    target(r, '≤ 1.2× the floor', (x) => ratioCheck(timeRatio(x, 'floor'), (t) => t <= 1.2));
    target(r, '≥ 3× faster than python-shell', (x) => ratioCheck(x.ratios['python-shell'], (s) => s >= 3));
    target(r, '≥ 3× faster than pythonia', (x) => ratioCheck(x.ratios.pythonia, (s) => s >= 3));
    target(r, 'faster than node-calls-python (async)', (x) => ratioCheck(x.ratios['node-calls-python'], (s) => s > 1));
    add(makeRow(`latency${key}P99`, `trivial call, p99 (${where})`, 'µs', 'lower', { pyworkers: pyw[`latency${key}P99`], floor: flr[`latency${key}P99`], ...peerValues(`latency${key}P99`) }));
  }
  r = add(makeRow('tput1', 'calls/s, 64 in flight, 1 worker', 'calls/s', 'higher', { pyworkers: pyw.tput1, floor: flr.tput1, ...peerValues('callsPerSec64') },
    `${N.rounds} rounds of ${N.tputMs} ms, interleaved, host and Python pinned to separate CPUs; the floor writes one frame per request and per reply. Peers: one Python process (node-calls-python: the embedded interpreter).`));
  target(r, '≥ 1.5× the floor', (x) => ratioCheck(x.ratios.floor, (s) => s >= 1.5));
  r = add(makeRow('tput2', 'calls/s, 64 in flight, 2 workers', 'calls/s', 'higher', { pyworkers: pyw.tput2, floor: flr.tput2 }, 'not pinned (three busy processes on two CPUs); floor: two floor processes, requests alternated between them.'));
  target(r, '≥ 1.5× the floor', (x) => ratioCheck(x.ratios.floor, (s) => s >= 1.5));
  const sizedRow = (kind: Sized, label: string, factor: number | undefined, note?: string, values: Row['values'] = {}) => {
    const row = add(makeRow(kind, label, 'ms', 'lower', { pyworkers: pyw[kind], floor: flr[kind], ...peerValues(kind), ...values }, note));
    if (factor) target(row, `≤ ${factor}× the floor`, (x) => ratioCheck(timeRatio(x, 'floor'), (t) => t <= factor));
    return row;
  };
  sizedRow('blobOut', '1 MiB bytes, Python → TS', 1.5, `a 1 MiB \`bytes\` made once in Python, returned whole; median of ${N.sized}, interleaved with the floor. All payload rows pin host and Python on one CPU (the time is both sides' work). python-shell and pythonia carry bytes as base64 text (their JSON has no bytes).`);
  sizedRow('bytesIn', '1 MiB bytes, TS → Python', 1.5, 'a 1 MiB Uint8Array argument; Python returns its length.');
  // Without numpy, pyworkers and node-calls-python (when it ran at all) have no figure for the array rows: say why.
  const ncp = peerValue('node-calls-python', 'arrayOut');
  const noNumpy: Row['values'] = HAS_NUMPY ? {} : { pyworkers: NO_NUMPY, ...(ncp === undefined && { 'node-calls-python': NO_NUMPY }) };
  const arrays: Array<[Sized, string, string]> = [
    ['arrayOut', 'Python → TS', `\`np.arange(2**20, dtype='float64')\` made once in Python and returned; pyworkers hands over an \`NDArray\`, its \`.data\` a Float64Array. The floor sends the same 8 MiB raw (the bytes of \`array('d', range(2**20))\`, made once) and hands over its reply's body. node-calls-python turns a numpy array into a JS array of numbers, so it gets \`ARRAY.tobytes()\` (bytes → ArrayBuffer, viewed as a Float64Array). Checked: the last element is 2**20 − 1. python-shell and pythonia: not measured (their JSON has no binary type).`],
    ['arrayIn', 'TS → Python', 'a Float64Array of 2**20 values passed as an argument; Python returns `len(np.asarray(x))` (pyworkers: a float64 memoryview, wrapped without a copy). The floor copies the 8 MiB into its request frame, as for bytes, and counts them. node-calls-python passes a typed array as `bytes`: `len(np.frombuffer(b, dtype=\'float64\'))`.'],
  ];
  for (const [kind, way, note] of arrays) {
    r = sizedRow(kind, `8 MiB float64 array, ${way}`, 1.3, note, noNumpy);
    target(r, 'faster than node-calls-python', (x) => ratioCheck(x.ratios['node-calls-python'], (s) => s > 1));
  }
  sizedRow('intsOut', `${INTS / 1000}k-int list, Python → TS`, 2, '`list(range(100000))` returned. The floor packs it as int32 (`array(\'i\', list)`) and hands over an Int32Array, without building a JS array.');
  sizedRow('intsIn', `${INTS / 1000}k-int list, TS → Python`, 2, 'a JS number[] argument; Python returns its length. The floor packs it as int32 in JS and unpacks it to a list in Python (`array.tolist()`).');
  sizedRow('dictOut', `${DICT / 1000}k-entry dict of short strings, Python → TS`, undefined, '`{"k0": "v0", ...}` built in Python and returned; no floor (no codec in the floor).');
  sizedRow('dictIn', `${DICT / 1000}k-entry dict of short strings, TS → Python`, undefined);
  r = add(makeRow('f64', 'np.float64 result vs float result', 'µs', 'lower', { pyworkers: HAS_NUMPY ? pyw.f64 : NO_NUMPY },
    HAS_NUMPY ? `median of \`f64()\`, which returns a \`np.float64(2.5)\` made once (a JS number in TS), against \`pyfloat()\`, which returns \`2.5\`: ${(pyw.pyfloat as number).toFixed(1)} µs. One call at a time, ${N.rounds}×${N.latency} calls of each interleaved, host and Python on one CPU.` : undefined));
  const f64VsFloat = HAS_NUMPY ? (pyw.f64 as number) / (pyw.pyfloat as number) : undefined;
  r.targets.push({ text: `≤ 1.1× a float result${f64VsFloat === undefined ? '' : ` (is ${f64VsFloat.toFixed(2)}×)`}`, met: f64VsFloat === undefined ? undefined : f64VsFloat <= 1.1 });
  r = add(makeRow('observability', 'calls/s with metrics and tracing on (64 in flight)', 'calls/s', 'higher', { pyworkers: pyw.observedTput },
    `a pool with \`metrics\` (call and queue-wait histograms, gc pause timing in the worker), OpenTelemetry instruments registered on the API's global provider, and a subscriber on the \`pyworkers:call\` tracing channel, against a pool with \`metrics: false, openTelemetry: false\` and no subscriber: ${Math.round(pyw.unobservedTput as number).toLocaleString('en-US')} calls/s. Medians of ${N.rounds * 2} interleaved rounds of ${N.tputMs} ms each.`));
  const observabilityCost = 1 - (pyw.observedTput as number) / (pyw.unobservedTput as number);
  r.targets.push({ text: `costs < 2% of calls/s against off (costs ${(observabilityCost * 100).toFixed(1)}%)`, met: observabilityCost < 0.02 });
  {
    const plain = pyw.runCost_plain as number;
    const ratio = (name: string) => (pyw[`runCost_${name}`] as number) / plain;
    const scalene = pyw.runCost_scalene as number | undefined;
    r = add(makeRow('runSample', '`pyworkers run` (default, sampled) on an allocation-heavy script', 's', 'lower', { pyworkers: pyw.runCost_sample },
      `bench/py/alloc_heavy.py: plain ${plain.toFixed(2)} s; \`pyworkers run --mode full\` ${(pyw.runCost_full as number).toFixed(2)} s (${ratio('full').toFixed(1)}×)` +
        `${scalene !== undefined ? `; Scalene (\`--cli --json\`, CPU and memory) ${scalene.toFixed(2)} s (${ratio('scalene').toFixed(1)}×)` : '; Scalene not installed'}. Whole commands, interpreter and worker start included; medians of interleaved runs.`));
    r.targets.push({ text: `≤ 3× the plain script (is ${ratio('sample').toFixed(2)}×)`, met: ratio('sample') <= 3 });
    if (scalene !== undefined) r.targets.push({ text: `no slower than Scalene (is ${(ratio('sample') / ratio('scalene')).toFixed(2)}× Scalene's time)`, met: ratio('sample') <= ratio('scalene') });
  }
  {
    const suite = raw.leakSuite as { leaky: number; clean: number; found: number; quiet: number; misses: string[] };
    r = add(makeRow('leakSuite', 'leak finder: guilty line first with its root, on the leaky workloads', 'found', 'higher', { pyworkers: `${suite.found}/${suite.leaky}` },
      `test/fixtures/leak_suite.py through findLeaks at its default 50 iterations: module cache, closures in a callback list, class-level list, unbounded lru_cache, parked generators, logging handlers, __del__ cycles (leaky); churn, a bounded deque, a bounded lru_cache, a table overwritten in place (clean: ${suite.quiet}/${suite.clean} quiet). ${(pyw.leakSuiteSeconds as number).toFixed(1)} s for all.${suite.misses.length ? ` Missed: ${suite.misses.join(', ')}.` : ''}`));
    r.targets.push({ text: `every leaky workload found with its root, every clean one quiet (${suite.found}/${suite.leaky}, ${suite.quiet}/${suite.clean})`, met: suite.found === suite.leaky && suite.quiet === suite.clean });
  }
  {
    const remoteNote = (extra: string) => (typeof pyw.remoteLatency === 'number' ? extra : undefined);
    r = add(makeRow('remoteLatency', 'remote worker: trivial call over loopback TLS, median', 'µs', 'lower', { pyworkers: pyw.remoteLatency },
      remoteNote(`an agent (\`pyworkers serve\`, a process of its own) on 127.0.0.1 with TLS and a token; \`echo(1)\` one call at a time, ${N.rounds}×${N.latency} calls interleaved with a local pool of one worker: ${(pyw.remoteLatencyLocal as number).toFixed(1)} µs. Not pinned (host, agent and worker share the two CPUs). The floor of the extra hop: a round trip between two Node processes over loopback TCP (no TLS, nothing relayed) takes ${(pyw.remoteHopFloor as number).toFixed(1)} µs here, so a remote call cannot take less than ${((pyw.remoteLatencyLocal as number) + (pyw.remoteHopFloor as number)).toFixed(1)} µs (${(((pyw.remoteLatencyLocal as number) + (pyw.remoteHopFloor as number)) / (pyw.remoteLatencyLocal as number)).toFixed(2)}× the local call); TLS and the relay cost the rest.`)));
    const latencyRatio = (pyw.remoteLatency as number) / (pyw.remoteLatencyLocal as number);
    if (typeof pyw.remoteLatency === 'number') r.targets.push({ text: `≤ 2× a local call (is ${latencyRatio.toFixed(2)}×)`, met: latencyRatio <= 2 });
    r = add(makeRow('remoteTput', 'remote worker: calls/s, 64 in flight over one connection', 'calls/s', 'higher', { pyworkers: pyw.remoteTput },
      remoteNote(`one remote worker with \`pipelineDepth: 64\` (all 64 calls on the connection), ${N.rounds} rounds of ${N.tputMs} ms interleaved with a local pool of one worker: ${Math.round(pyw.remoteTputLocal as number).toLocaleString('en-US')} calls/s. With the default \`pipelineDepth\` (32), half of the calls wait in the host's queue and the worker idles for a round trip between batches: ${Math.round(pyw.remoteTputDefaultDepth as number).toLocaleString('en-US')} calls/s. Not pinned.`)));
    const tputRatio = (pyw.remoteTputLocal as number) / (pyw.remoteTput as number);
    if (typeof pyw.remoteTput === 'number') r.targets.push({ text: `within 1.5× the local figure (local is ${tputRatio.toFixed(2)}× it)`, met: tputRatio <= 1.5 });
    add(makeRow('remoteScale', 'remote: calls/s, 64 in flight, 1 → 2 → 3 agents', 'calls/s', 'higher', { pyworkers: typeof pyw.remoteScale1 === 'number' ? `${[1, 2, 3].map((k) => Math.round(pyw[`remoteScale${k}`] as number).toLocaleString('en-US')).join(' → ')}` : pyw.remoteScale1 },
      remoteNote(`one worker leased on each agent. Local pools of 1, 2 and 3 workers on the same machine: ${[1, 2, 3].map((k) => Math.round(pyw[`localScale${k}`] as number).toLocaleString('en-US')).join(' → ')} calls/s. Every agent is a process of its own on this 2-CPU machine: each one added brings another agent and another worker to share the same two CPUs with the host, and splits the 64 calls into smaller batches per connection, so throughput cannot grow with agents here (nor with local workers, past the CPUs); on separate machines each agent brings its own CPUs.`)));
  }
  r = add(makeRow('callback', 'callback round trip, Python → TS → Python', 'µs', 'lower', { pyworkers: pyw.callback },
    `median time of one \`host.ping(1)\` from Python to a TypeScript function and back (a loop of ${200} in one call, the call's own cost spread over them), against a trivial call from TS: ${(pyw.callbackTrivial as number).toFixed(1)} µs. One at a time, interleaved, host and Python on one CPU.`));
  const callbackVsCall = (pyw.callback as number) / (pyw.callbackTrivial as number);
  r.targets.push({ text: `≤ 1.5× a trivial call (is ${callbackVsCall.toFixed(2)}×)`, met: callbackVsCall <= 1.5 });
  r = add(makeRow('stream', 'streamed small items/s (1 worker)', 'items/s', 'higher', { pyworkers: pyw.stream },
    `\`for await\` over \`streamEval('range(n)')\`, n = ${N.stream.toLocaleString('en-US')}, default highWaterMark (2048); with highWaterMark 16384: ${Math.round(pyw.streamBigHwm as number).toLocaleString('en-US')} items/s.`));
  const streamVsCalls = (pyw.stream as number) / (pyw.tput1 as number);
  r.targets.push({ text: `≥ 10× calls/s (is ${streamVsCalls.toFixed(1)}×)`, met: streamVsCalls >= 10 });
  const nope = Object.fromEntries(PEERS.map((n) => [n, n === 'python-shell' ? 'only by killing' : NOT_SUPPORTED]));
  for (const [fn, what] of [['nap', '`time.sleep`'], ['spin_for', 'a pure-Python loop']] as const) {
    r = add(makeRow(`steal_${fn}`, `work stealing: a call sent ahead behind ${what}`, 'ms', 'lower', { pyworkers: pyw[`steal_${fn}`] },
      `2 workers; one runs a 200 ms call of ${what}, a call sent ahead behind it is taken back by the idle worker (which asks once the long call has run 2 ms): time from the calls to that call's answer. Without stealing it would answer after 200 ms.`));
    target(r, '≤ 10 ms', (x) => (typeof x.values.pyworkers === 'number' ? x.values.pyworkers <= 10 : undefined));
  }
  add(makeRow('interruptReject', 'interrupt: deadline → rejection', 'ms', 'lower', { pyworkers: pyw.interruptReject, ...nope }, 'a busy Python loop called with `timeout: 50`; time from the deadline.'));
  add(makeRow('interruptAnswer', 'interrupt: deadline → worker answers again', 'ms', 'lower', { pyworkers: pyw.interruptAnswer, ...nope }, 'the next call after the interrupted one, same worker (no restart).'));
  add(makeRow('respawn', 'respawn: SIGKILL → replacement answers', 'ms', 'lower', { pyworkers: pyw.respawn }, 'the worker killed with SIGKILL; time until a call on the replacement has answered.'));
  add(makeRow('idleRss', 'idle RSS per worker', 'MiB', 'lower', { pyworkers: pyw.idleRss, floor: flr.idleRss, ...peerValues('idleRssMiB') },
    'VmRSS of the Python process after start-up and 200 trivial calls (peers: after their run, so pythonia’s figure includes the results its Python side still holds for JS proxies that were not collected yet); node-calls-python: growth of the Node process.'));
  add(makeRow('growth', `host memory growth over ${N.growth / 1000}k calls`, 'MiB', 'lower', { pyworkers: pyw.growth, floor: flr.growth },
    `RSS of this Node process after a full GC, before and after ${N.growth.toLocaleString('en-US')} trivial calls, 64 in flight (after 20k warm-up calls). Heap: pyworkers ${fmtHeap((raw.hostGrowthMiB as any).pyworkers.heap)}, floor ${fmtHeap((raw.hostGrowthMiB as any).floor.heap)}.`));
  r = add(makeRow('monitor', 'monitoring on (every 100 ms): calls/s cost', '%', 'lower', { pyworkers: pyw.monitor }, typeof pyw.monitor === 'number' ? `calls/s with 64 in flight of a pool with \`monitor: { interval: 100 }\` against one without: median of ${N.monitorRounds} paired rounds (a fresh pair of pools each), host and worker on separate CPUs. Interquartile range of the paired costs: ${(raw.monitorCost as any).noisePercent.map((x: number) => x.toFixed(1)).join(' to ')} %, i.e. the noise of the measure. Measured directly, one idle pool at a time, host and worker CPU with the monitor minus without: ${(((raw.monitorIdleCpuShare as any).monitored - (raw.monitorIdleCpuShare as any).plain) * 100).toFixed(2)} % of one CPU, i.e. ${((raw.monitorIdleCpuShare as any).perSampleUs as number).toFixed(0)} µs per sample (a difference this close to 0 is within the noise of an idle reading, about ±0.2 %).` : undefined));
  r.targets.push({ text: '< 5 %', met: typeof pyw.monitor === 'number' ? pyw.monitor < 5 : undefined });
}

for (const row of rows) {
  const hits = [
    ...(disturbance[row.id] !== undefined ? [['pyworkers and the floor', disturbance[row.id]!] as const] : []),
    ...PEERS.map((n) => [n, peers[n]?.disturbance?.[row.id] ?? 0] as const),
  ].filter(([, other]) => other > 0.1);
  if (hits.length > 0) {
    row.label += ' ⚠';
    const what = hits.map(([who, other]) => `${who} (${(other * 100).toFixed(0)} %)`).join(', ');
    row.note = `${row.note ? `${row.note} ` : ''}⚠ Disturbed: other processes took a share of the machine during a kept measurement of ${what}, after up to 4 tries.`;
  }
}

/** Median round trip (µs) of 40-byte messages between this process and an echoing Node child over loopback TCP. */
async function tcpEchoRoundTrip(count: number): Promise<number> {
  const net = await import('node:net');
  const child = spawn(process.execPath, ['-e', "const s=require('net').createServer(c=>{c.setNoDelay(true);c.on('data',d=>c.write(d))});s.listen(0,'127.0.0.1',()=>console.log(s.address().port))"], { stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    const [line] = (await once(child.stdout!, 'data')) as [Buffer];
    const socket = net.connect(Number(String(line).trim()), '127.0.0.1');
    socket.setNoDelay(true);
    await once(socket, 'connect');
    const payload = Buffer.alloc(40);
    const echo = () => new Promise<void>((resolve) => {
      socket.once('data', () => resolve());
      socket.write(payload);
    });
    await sequential(echo, 2000);
    const times = await sequential(echo, count);
    socket.destroy();
    return median(times) * 1000;
  } finally {
    child.kill('SIGKILL');
  }
}

/** A CA and a server certificate for 127.0.0.1 (openssl), or undefined without openssl. */
function benchCerts(): { dir: string; ca: string; cert: string; key: string } | undefined {
  const dir = path.join(os.tmpdir(), `pyworkers-bench-certs-${process.pid}`);
  try {
    mkdirSync(dir, { recursive: true });
    const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    ssl('req', '-x509', ...key, '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=bench ca', '-days', '1');
    ssl('req', ...key, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=bench agent');
    writeFileSync(path.join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1\n');
    ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '1', '-extfile', 'server.ext');
  } catch {
    return undefined;
  }
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return { dir, ca: readFileSync(path.join(dir, 'ca.crt'), 'utf8'), cert: path.join(dir, 'server.crt'), key: path.join(dir, 'server.key') };
}

/** `pyworkers serve` (the built one) with two workers of the bench's interpreter; resolves once it listens. */
async function startAgentProcess(certs: { cert: string; key: string }, token: string): Promise<{ pid: number; port: number; kill(): void }> {
  const child = spawn(process.execPath, [path.join(ROOT, 'dist/cli/main.js'), 'serve', '--listen', '127.0.0.1:0', '--tls-cert', certs.cert, '--tls-key', certs.key, '--workers', '2', '--python', python, '--python-path', PY_DIR], {
    env: { ...process.env, PYWORKERS_TOKEN: token },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (text: string) => (stderr += text));
  process.once('exit', () => child.kill('SIGKILL'));
  const deadline = now() + 20_000;
  while (!/listening on [^ ]+:(\d+)/.test(stderr)) {
    if (child.exitCode !== null || now() > deadline) throw new Error(`an agent did not start: ${stderr}`);
    await sleep(20);
  }
  return { pid: child.pid!, port: Number(/listening on [^ ]+:(\d+)/.exec(stderr)![1]), kill: () => child.kill('SIGKILL') };
}

function ratioCheck(v: number | undefined, ok: (v: number) => boolean): boolean | undefined {
  return v === undefined ? undefined : ok(v);
}
function fmtHeap(v: number): string {
  return `${v >= 0 ? '+' : ''}${v.toFixed(2)} MiB`;
}

const npmVersion = (() => {
  try {
    return execFileSync('npm', ['-v'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
})();
const machine = {
  cpu: os.cpus()[0]?.model ?? 'unknown',
  cores: os.cpus().length,
  memoryGiB: Math.round(os.totalmem() / 2 ** 30),
  os: `${os.type()} ${os.release()} ${os.arch()}`,
  node: process.version,
  npm: npmVersion,
  python: `${pythonVersion} (${python})`,
  pinning: pinningAvailable ? 'taskset' : 'not available: latency rows not pinned',
  otherCpuBeforePercent: Math.round(busyBefore * 100),
  otherCpuAfterPercent: Math.round(busyAfter * 100),
  loadAverage1mAtEnd: Number(load[0]!.toFixed(2)),
};
const date = new Date().toISOString();
const header = `${date.slice(0, 10)} · ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB · ${machine.os} · Node ${machine.node} · npm ${machine.npm} · CPython ${machine.python}` +
  ` · other processes' CPU use ${machine.otherCpuBeforePercent} % before, ${machine.otherCpuAfterPercent} % after the run` +
  (pinningAvailable ? '' : ' · CPU pinning not available') + (QUICK ? ' · **--quick run (not for figures)**' : '');
const peerLine = PEERS.map((n) => `${n} ${peers[n]?.version ?? '—'}${peers[n]?.error ? ` (${peers[n].error})` : ''}`).join(', ');
const legend = 'Each cell: the figure, and in brackets how pyworkers compares with it (“2.0× faster”: pyworkers takes half the time, or does twice the calls). The floor is a minimal Python child speaking length-prefixed frames on fds 3/4, one write per message, with a minimal Node client (bench/floor). ⁽ⁿ⁾: see the notes under the table; ⚠: disturbed by other processes.';
const table = markdownTable(rows);
const notes = notesList(rows);
const elapsed = (now() - started) / 1000;

console.log(`\n${header}\nPeers: ${peerLine}\n\n${table}\n\n${notes}\n\nRun time ${elapsed.toFixed(0)} s.`);
const missed = rows.flatMap((r) => r.targets.filter((t) => t.met === false).map((t) => `${r.label}: ${t.text}`));
if (missed.length) console.log(`\nMissed targets:\n${missed.map((m) => `- ${m}`).join('\n')}`);

if (WRITE) {
  const results = { date, quick: QUICK, machine, disturbance, peers: Object.fromEntries(PEERS.map((n) => [n, peers[n] ?? null])), rows, raw, runSeconds: elapsed };
  mkdirSync(path.join(HERE, 'results'), { recursive: true });
  writeFileSync(path.join(HERE, 'results', 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
  const docPath = path.join(ROOT, 'docs', 'benchmarks.md');
  const section = `<!-- results:start (written by npm run bench) -->\n${header}\n\nPeers: ${peerLine}.\n\n${legend}\n\n${table}\n\nNotes on the rows:\n\n${notes}\n\nRun time ${elapsed.toFixed(0)} s. Raw samples: [bench/results/latest.json](../bench/results/latest.json).\n<!-- results:end -->`;
  let doc = existsSync(docPath) ? readFileSync(docPath, 'utf8') : '# Benchmarks\n\n<!-- results:start -->\n<!-- results:end -->\n';
  doc = doc.replace(/<!-- results:start[^]*?<!-- results:end -->/, () => section);
  writeFileSync(docPath, doc);
  const readmePath = path.join(ROOT, 'README.md');
  const readme = readFileSync(readmePath, 'utf8');
  const summary = `<!-- bench:start (written by npm run bench) -->\n${header}\n\n${legend}\n\n${table}\n<!-- bench:end -->`;
  writeFileSync(readmePath, readme.replace(/<!-- bench:start[^]*?<!-- bench:end -->/, () => summary));
  log(`wrote bench/results/latest.json, docs/benchmarks.md and the table in README.md`);
}
process.exit(0);
