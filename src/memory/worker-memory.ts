/**
 * The memory operations of one worker, over its control channel (served on a thread of its own in Python, so
 * they answer while user code runs).
 */
import { ArgumentError, NotTracingError, PythonError, WorkerCrashedError } from '../errors.js';
import type { PythonWorker } from '../worker/worker.js';
import type { GcGenerationStats, HandleCounts, WorkerMemoryStats } from './types.js';
import { after } from '../util/timers.js';

export const STATS_TIMEOUT = 1000;
const RUNTIME_MODULE = '_pyworkers.memory';

/** A control request, with the memory module's own Python errors turned into the host's. */
export async function control<T>(worker: PythonWorker, op: string, args: unknown[] = []): Promise<T> {
  try {
    return (await worker.control(op, args)) as T;
  } catch (error) {
    if (error instanceof PythonError && error.pythonModule === RUNTIME_MODULE) {
      if (error.type === 'NotTracingError') throw new NotTracingError(`Worker ${worker.id}: ${error.pythonMessage}`);
      if (error.type === 'SnapshotGoneError') throw new ArgumentError(`Worker ${worker.id}: ${error.pythonMessage}`);
    }
    throw error;
  }
}

/** Whether an error means the worker is gone (so a pool-wide call skips it). */
export function workerGone(worker: PythonWorker, error: unknown): boolean {
  return worker.state === 'exited' || error instanceof WorkerCrashedError;
}

interface PythonStats {
  gcStats: Array<{ collected: number; collections: number; uncollectable: number }>;
  gcCount: number[];
  gcThreshold: number[];
  gcEnabled: boolean;
  calls: number;
  uptime: number;
  pid: number;
  memoryLimit?: number | null;
  tracedMemoryCurrent?: number;
  tracedMemoryPeak?: number;
  handles?: HandleCounts;
  rss?: number;
  peakRss?: number;
}

const TIMED_OUT = Symbol('timed out');
const inflight = new WeakMap<PythonWorker, Promise<PythonStats>>();

function within<T>(promise: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = after(ms, () => resolve(TIMED_OUT));
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * One worker's stats. RSS comes from /proc, the rest from the worker; when the worker does not answer within
 * `timeout` ms (stuck in C with the GIL held), the Python-side fields are placeholders (see WorkerMemoryStats).
 */
export async function workerMemoryStats(worker: PythonWorker, timeout = STATS_TIMEOUT): Promise<WorkerMemoryStats> {
  // A request that has not been answered yet (the worker is stuck in C) is shared rather than repeated, so that
  // polling a stuck worker does not pile requests up; its answer is as fresh as any, coming when Python runs.
  let pending = inflight.get(worker);
  if (!pending) {
    pending = control<PythonStats>(worker, 'stats');
    inflight.set(worker, pending);
    const done = () => {
      if (inflight.get(worker) === pending) inflight.delete(worker);
    };
    pending.then(done, done);
  }
  const answer = await within(pending, timeout);
  const memory = worker.rss();
  const py = answer === TIMED_OUT ? undefined : answer;
  const stats: WorkerMemoryStats = {
    workerId: worker.id,
    pid: py?.pid ?? worker.pid ?? 0,
    host: worker.host,
    // The worker's own reading when it answered (fresh also where this host cannot read its /proc: remote).
    rss: finite(py?.rss ?? memory?.rss),
    peakRss: finite(py?.peakRss ?? memory?.peakRss),
    gcStats: py ? py.gcStats.map(generation) : [],
    gcCount: py ? [py.gcCount[0] ?? 0, py.gcCount[1] ?? 0, py.gcCount[2] ?? 0] : [0, 0, 0],
    gcThreshold: py ? [...py.gcThreshold] : [],
    gcEnabled: py ? py.gcEnabled : false,
    calls: py ? py.calls : Math.max(0, worker.completed - 1),
    uptime: py ? py.uptime : (Date.now() - worker.startedAt) / 1000,
    memoryLimit: py?.memoryLimit ?? null,
    handles: py?.handles ? { count: py.handles.count, types: { ...py.handles.types } } : { count: worker.handles.size, types: {} },
  };
  if (py && py.tracedMemoryCurrent !== undefined && py.tracedMemoryPeak !== undefined) {
    stats.tracedMemoryCurrent = py.tracedMemoryCurrent;
    stats.tracedMemoryPeak = py.tracedMemoryPeak;
  }
  return stats;
}

function generation(g: { collected: number; collections: number; uncollectable: number }): GcGenerationStats {
  return { collected: g.collected, collections: g.collections, uncollectable: g.uncollectable };
}

function finite(n: number | undefined): number | null {
  return n !== undefined && Number.isFinite(n) ? n : null;
}
