/**
 * Timing helpers: samples, medians, percentiles, and calls kept in flight.
 * Times are in milliseconds (performance.now()) unless a name says otherwise.
 */
import { readdirSync, readFileSync } from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';

export const now = (): number => performance.now();

export function median(xs: readonly number[]): number {
  return percentile(xs, 50);
}

/** Nearest-rank percentile (p in 0..100). */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Time `count` sequential calls one by one, after `warmup` untimed ones. Returns ms per call. */
export async function sequential(call: () => Promise<unknown>, count: number, warmup = 0): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await call();
  const out = new Array<number>(count);
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    await call();
    out[i] = performance.now() - t0;
  }
  return out;
}

/** Like `sequential`, but stops early once `budgetMs` is spent (at least `min` samples). */
export async function repeat(call: () => Promise<unknown>, opts: { reps: number; warmup?: number; budgetMs?: number; min?: number }): Promise<number[]> {
  for (let i = 0; i < (opts.warmup ?? 0); i++) await call();
  const out: number[] = [];
  const stop = now() + (opts.budgetMs ?? Infinity);
  while (out.length < opts.reps && (out.length < (opts.min ?? 3) || now() < stop)) {
    const t0 = performance.now();
    await call();
    out.push(performance.now() - t0);
  }
  return out;
}

/** Calls per second with `inFlight` calls always outstanding, for about `ms`. */
export async function throughput(call: () => Promise<unknown>, inFlight: number, ms: number): Promise<number> {
  let done = 0;
  const t0 = now();
  const end = t0 + ms;
  const lane = async () => {
    while (now() < end) {
      await call();
      done++;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  return done / ((now() - t0) / 1000);
}

/** Run `count` calls with `inFlight` outstanding. */
export async function runCalls(call: () => Promise<unknown>, inFlight: number, count: number): Promise<void> {
  let started = 0;
  const lane = async () => {
    while (started < count) {
      started++;
      await call();
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
}

/** Resident memory of a process in bytes, from /proc (Linux). */
export function rssOf(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'latin1');
    return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN) * 1024;
  } catch {
    return NaN;
  }
}

let gcFn: (() => void) | undefined;
/** A full garbage collection, without needing --expose-gc on the command line. */
export function fullGc(): void {
  if (!gcFn) {
    v8.setFlagsFromString('--expose-gc');
    gcFn = vm.runInNewContext('gc') as () => void;
  }
  gcFn();
  gcFn();
}

export const MiB = 1024 * 1024;

/** Busy fraction of all CPUs (0..1) over `ms`, from /proc/stat: what other processes use while this one waits. */
export async function backgroundCpu(ms = 1000): Promise<number> {
  const read = () => {
    const f = readFileSync('/proc/stat', 'latin1').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const idle = f[3]! + (f[4] ?? 0);
    return { idle, total: f.reduce((a, b) => a + b, 0) };
  };
  try {
    const a = read();
    await sleep(ms);
    const b = read();
    return 1 - (b.idle - a.idle) / Math.max(1, b.total - a.total);
  } catch {
    return NaN;
  }
}

/** Wait (up to `maxMs`) until other processes use less than `threshold` of the CPUs; returns the last reading. */
export async function waitForQuiet(threshold: number, maxMs: number, log: (line: string) => void): Promise<number> {
  const stop = now() + maxMs;
  let busy = await backgroundCpu();
  while (busy > threshold && now() < stop) {
    log(`  the machine is busy (${(busy * 100).toFixed(0)} % CPU used by other processes); waiting ...`);
    busy = await backgroundCpu(2000);
  }
  return busy;
}

// ---------------------------------------------------------------- interference from other processes

/** CPU ticks of a process (all threads); with `reaped`, plus those of its children that have exited. */
function ticksOf(pid: number, reaped = false): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1]!.split(' ');
    return Number(f[11]) + Number(f[12]) + (reaped ? Number(f[13]) + Number(f[14]) : 0);
  } catch {
    return 0;
  }
}

function machineTicks(): { busy: number; total: number } {
  try {
    const f = readFileSync('/proc/stat', 'latin1').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    return { busy: f[0]! + f[1]! + f[2]!, total: f.reduce((a, b) => a + b, 0) };
  } catch {
    return { busy: 0, total: 0 };
  }
}

/**
 * CPU used by processes other than this one and `pids` (our Python children) while something ran, as a fraction
 * of the whole machine. Clock ticks are 10 ms, so a reading of a short stretch is coarse.
 */
export class Watch {
  #busy = 0;
  #total = 0;
  #own = 0;
  constructor(private readonly pids: () => Array<number | undefined>) {}

  #ownTicks(): number {
    let t = ticksOf(process.pid, true);
    for (const pid of this.pids()) if (pid) t += ticksOf(pid);
    return t;
  }

  begin(): void {
    const m = machineTicks();
    this.#busy = m.busy;
    this.#total = m.total;
    this.#own = this.#ownTicks();
  }

  /** Fraction (0..1) of all CPUs used by others since begin(); ignores up to 2 ticks of rounding. */
  end(): number {
    const m = machineTicks();
    const other = m.busy - this.#busy - (this.#ownTicks() - this.#own);
    const total = m.total - this.#total;
    return total > 0 ? Math.max(0, other - 2) / total : 0;
  }
}

export interface Clean<T> {
  value: T;
  /** Others' CPU share during the attempt kept. */
  other: number;
  attempts: number;
}

/** Time (ms) the whole run may spend on repeating disturbed measurements and waiting for quiet. */
let retryBudget = 90_000;
export function setRetryBudget(ms: number): void {
  retryBudget = ms;
}

/**
 * Run `fn`; while other processes used more than `threshold` of the machine meanwhile, wait for a quieter moment
 * and run it again (at most `tries` times, within the run's retry budget). Keeps the least disturbed attempt.
 */
export async function clean<T>(watch: Watch, fn: () => Promise<T>, tries = 4, threshold = 0.1): Promise<Clean<T>> {
  let best: Clean<T> | undefined;
  let made = 0;
  while (true) {
    const t0 = now();
    made++;
    watch.begin();
    const value = await fn();
    const other = watch.end();
    if (made > 1) retryBudget -= now() - t0;
    if (!best || other < best.other) best = { value, other, attempts: made };
    if (other <= threshold || made >= tries || retryBudget <= 0) break;
    const t1 = now();
    await waitForQuiet(threshold, Math.min(5000, retryBudget), () => {});
    retryBudget -= now() - t1;
  }
  return best;
}

/** CPU time (ns) a process's threads have used, from /proc/<pid>/task/<tid>/schedstat. */
export function cpuNs(pid: number): number {
  let total = 0;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'latin1').split(' ')[0]);
      } catch {
        // thread gone
      }
    }
  } catch {
    return NaN;
  }
  return total;
}
