/**
 * The memory API behind `Pool` and `Context`: the same operations on one worker (a context's) or on every ready
 * worker of a pool. Pool-wide calls leave out workers that are starting, and workers that exit meanwhile.
 */
import { readContainer } from '../container.js';
import type { PoolCore } from '../pool/pool.js';
import type { PythonWorker } from '../worker/worker.js';
import { checkInteger, checkOptions } from '../validate.js';
import { checkDebugFlags, checkExpression, checkFrames, checkGeneration, checkThresholds, optionalInt } from './args.js';
import { takeSnapshot, type MemorySnapshot } from './snapshot.js';
import { control, STATS_TIMEOUT, workerGone, workerMemoryStats } from './worker-memory.js';
import type {
  AllocatorInfo,
  AllocatorInfoOptions,
  GcDebugFlag,
  GcDebugFlags,
  GcGarbage,
  GcGarbageOptions,
  MemoryStatsOptions,
  PoolMemoryStats,
  ReferenceInfo,
  ReferencesOptions,
  SnapshotOptions,
  WorkerMemoryStats,
} from './types.js';

// ------------------------------------------------------------------------------------------ helpers

/** Run `fn` on each worker; a worker that exits meanwhile is left out, any other failure rejects. */
async function each<T>(workers: PythonWorker[], fn: (worker: PythonWorker) => Promise<T>): Promise<T[]> {
  const results = await Promise.allSettled(workers.map(fn));
  const out: T[] = [];
  results.forEach((result, i) => {
    if (result.status === 'fulfilled') out.push(result.value);
    else if (!workerGone(workers[i]!, result.reason)) throw result.reason;
  });
  return out;
}

function readyWorkers(core: PoolCore): PythonWorker[] {
  core.checkOpen();
  return core.liveWorkers().filter((w) => w.state === 'ready');
}

function statsTimeout(options: MemoryStatsOptions | undefined): number {
  const o = checkOptions<MemoryStatsOptions>(options, 'options', ['timeout']);
  return o.timeout === undefined ? STATS_TIMEOUT : checkInteger(o.timeout, 'options.timeout', 1);
}

function garbageArgs(options: GcGarbageOptions | undefined): [number, number] {
  const o = checkOptions<GcGarbageOptions>(options, 'options', ['limit', 'reprLength']);
  return [optionalInt(o.limit, 'options.limit', 100, 0), optionalInt(o.reprLength, 'options.reprLength', 200, 10)];
}

function allocatorArgs(options: AllocatorInfoOptions | undefined): [boolean] {
  const o = checkOptions<AllocatorInfoOptions>(options, 'options', ['text']);
  return [o.text === true];
}

// ------------------------------------------------------------------------------------------ one worker

/** The memory operations of one worker (a context's). */
export const workerMemory = {
  memoryStats(worker: PythonWorker, options?: MemoryStatsOptions): Promise<WorkerMemoryStats> {
    return workerMemoryStats(worker, statsTimeout(options));
  },
  gc(worker: PythonWorker, generation?: number): Promise<number> {
    return control<number>(worker, 'gc', [checkGeneration(generation)]);
  },
  async gcEnable(worker: PythonWorker, enabled: boolean): Promise<void> {
    await control(worker, 'gc_enable', [enabled]);
  },
  gcIsEnabled(worker: PythonWorker): Promise<boolean> {
    return control<boolean>(worker, 'gc_isenabled');
  },
  gcGetThreshold(worker: PythonWorker): Promise<number[]> {
    return control<number[]>(worker, 'gc_threshold', [null]);
  },
  async gcSetThreshold(worker: PythonWorker, thresholds: number[]): Promise<void> {
    await control(worker, 'gc_threshold', [thresholds]);
  },
  gcGetDebug(worker: PythonWorker): Promise<GcDebugFlag[]> {
    return control<GcDebugFlag[]>(worker, 'gc_debug', [null]);
  },
  async gcSetDebug(worker: PythonWorker, flags: number | string[]): Promise<void> {
    await control(worker, 'gc_debug', [flags]);
  },
  async gcGarbage(worker: PythonWorker, args: [number, number]): Promise<GcGarbage> {
    const answer = await control<{ count: number; objects: GcGarbage['objects'] }>(worker, 'gc_garbage', args);
    return { workerId: worker.id, count: answer.count, objects: answer.objects };
  },
  gcClearGarbage(worker: PythonWorker): Promise<number> {
    return control<number>(worker, 'gc_clear_garbage');
  },
  async tracemallocStart(worker: PythonWorker, frames: number): Promise<void> {
    await control(worker, 'tracemalloc_start', [frames]);
  },
  async tracemallocStop(worker: PythonWorker): Promise<void> {
    await control(worker, 'tracemalloc_stop');
  },
  async allocatorInfo(worker: PythonWorker, args: [boolean]): Promise<AllocatorInfo> {
    const answer = await control<Omit<AllocatorInfo, 'workerId'>>(worker, 'allocator', args);
    return { workerId: worker.id, ...answer };
  },
};

/** The operations of a context (on its worker); `worker` throws when the context is closed or lost. */
export function contextMemory(worker: () => PythonWorker, contextId: number) {
  return {
    memoryStats: async (options?: MemoryStatsOptions) => workerMemory.memoryStats(worker(), options),
    gc: async (generation?: number) => workerMemory.gc(worker(), generation),
    gcEnable: async () => workerMemory.gcEnable(worker(), true),
    gcDisable: async () => workerMemory.gcEnable(worker(), false),
    gcIsEnabled: async () => workerMemory.gcIsEnabled(worker()),
    gcGetThreshold: async () => workerMemory.gcGetThreshold(worker()),
    gcSetThreshold: async (thresholds: unknown[]) => {
      const checked = checkThresholds(thresholds);
      return workerMemory.gcSetThreshold(worker(), checked);
    },
    gcGetDebug: async () => workerMemory.gcGetDebug(worker()),
    gcSetDebug: async (flags: GcDebugFlags) => {
      const checked = checkDebugFlags(flags);
      return workerMemory.gcSetDebug(worker(), checked);
    },
    gcGarbage: async (options?: GcGarbageOptions) => {
      const args = garbageArgs(options);
      return workerMemory.gcGarbage(worker(), args);
    },
    gcClearGarbage: async () => workerMemory.gcClearGarbage(worker()),
    tracemallocStart: async (frames?: number) => {
      const checked = checkFrames(frames);
      return workerMemory.tracemallocStart(worker(), checked);
    },
    tracemallocStop: async () => workerMemory.tracemallocStop(worker()),
    snapshot: async (options?: SnapshotOptions): Promise<MemorySnapshot> => takeSnapshot([worker()], options),
    references: async (expression: string, options?: ReferencesOptions): Promise<ReferenceInfo> => {
      const code = checkExpression(expression);
      const o = checkOptions<ReferencesOptions>(options, 'options', ['limit', 'reprLength']);
      const limit = optionalInt(o.limit, 'options.limit', 10, 0);
      const length = optionalInt(o.reprLength, 'options.reprLength', 200, 10);
      const w = worker();
      const answer = await control<Omit<ReferenceInfo, 'workerId'>>(w, 'references', [contextId, code, limit, length]);
      return { workerId: w.id, ...answer };
    },
    allocatorInfo: async (options?: AllocatorInfoOptions) => {
      const args = allocatorArgs(options);
      return workerMemory.allocatorInfo(worker(), args);
    },
  };
}

// ------------------------------------------------------------------------------------------ the pool

/** The operations of a pool (on every ready worker). */
export function poolMemory(core: PoolCore) {
  return {
    async memoryStats(options?: MemoryStatsOptions): Promise<PoolMemoryStats> {
      const timeout = statsTimeout(options);
      const workers = await each(readyWorkers(core), (w) => workerMemoryStats(w, timeout));
      workers.sort((a, b) => a.workerId - b.workerId);
      const totals: PoolMemoryStats['totals'] = { rss: 0, peakRss: 0, calls: 0, gcCollected: 0, gcUncollectable: 0, handles: 0 };
      let traced = false;
      let tracedCurrent = 0;
      let tracedPeak = 0;
      for (const w of workers) {
        totals.rss += w.rss ?? 0;
        totals.peakRss += w.peakRss ?? 0;
        totals.calls += w.calls;
        totals.handles += w.handles.count;
        for (const g of w.gcStats) {
          totals.gcCollected += g.collected;
          totals.gcUncollectable += g.uncollectable;
        }
        if (w.tracedMemoryCurrent !== undefined) {
          traced = true;
          tracedCurrent += w.tracedMemoryCurrent;
          tracedPeak += w.tracedMemoryPeak ?? 0;
        }
      }
      // Keys in the documented order; the traced ones only while some worker traces.
      const ordered: PoolMemoryStats['totals'] = traced
        ? { rss: totals.rss, peakRss: totals.peakRss, calls: totals.calls, tracedMemoryCurrent: tracedCurrent, tracedMemoryPeak: tracedPeak, gcCollected: totals.gcCollected, gcUncollectable: totals.gcUncollectable, handles: totals.handles }
        : totals;
      return { workers, totals: ordered, container: readContainer() };
    },
    async gc(generation?: number): Promise<number> {
      const g = checkGeneration(generation);
      const counts = await each(readyWorkers(core), (w) => workerMemory.gc(w, g));
      return counts.reduce((a, b) => a + b, 0);
    },
    async gcEnable(enabled: boolean): Promise<void> {
      await each(readyWorkers(core), (w) => workerMemory.gcEnable(w, enabled));
    },
    async gcIsEnabled(): Promise<boolean> {
      const answers = await each(readyWorkers(core), (w) => workerMemory.gcIsEnabled(w));
      return answers.every(Boolean);
    },
    async gcGetThreshold(): Promise<number[]> {
      const answers = await each(readyWorkers(core).slice(0, 1), (w) => workerMemory.gcGetThreshold(w));
      return answers[0] ?? [];
    },
    async gcSetThreshold(thresholds: unknown[]): Promise<void> {
      const checked = checkThresholds(thresholds);
      await each(readyWorkers(core), (w) => workerMemory.gcSetThreshold(w, checked));
    },
    async gcGetDebug(): Promise<GcDebugFlag[]> {
      const answers = await each(readyWorkers(core).slice(0, 1), (w) => workerMemory.gcGetDebug(w));
      return answers[0] ?? [];
    },
    async gcSetDebug(flags: GcDebugFlags): Promise<void> {
      const checked = checkDebugFlags(flags);
      await each(readyWorkers(core), (w) => workerMemory.gcSetDebug(w, checked));
    },
    async gcGarbage(options?: GcGarbageOptions): Promise<GcGarbage[]> {
      const args = garbageArgs(options);
      return each(readyWorkers(core), (w) => workerMemory.gcGarbage(w, args));
    },
    async gcClearGarbage(): Promise<number> {
      const counts = await each(readyWorkers(core), (w) => workerMemory.gcClearGarbage(w));
      return counts.reduce((a, b) => a + b, 0);
    },
    async tracemallocStart(frames?: number): Promise<void> {
      const checked = checkFrames(frames);
      core.checkOpen();
      core.setWorkerInit('tracemalloc', checked); // workers started from now on trace from their first line
      // Starting workers too: their start-up setting may predate this call (the worker sorts out the order).
      const workers = core.liveWorkers().filter((w) => w.state === 'ready' || w.state === 'starting');
      await each(workers, (w) => workerMemory.tracemallocStart(w, checked).catch((e) => ignoreIfStarting(w, e)));
    },
    async tracemallocStop(): Promise<void> {
      core.checkOpen();
      core.setWorkerInit('tracemalloc', undefined);
      const workers = core.liveWorkers().filter((w) => w.state === 'ready' || w.state === 'starting');
      await each(workers, (w) => workerMemory.tracemallocStop(w).catch((e) => ignoreIfStarting(w, e)));
    },
    async snapshot(options?: SnapshotOptions): Promise<MemorySnapshot> {
      return takeSnapshot(readyWorkers(core), options);
    },
    async allocatorInfo(options?: AllocatorInfoOptions): Promise<AllocatorInfo[]> {
      const args = allocatorArgs(options);
      return each(readyWorkers(core), (w) => workerMemory.allocatorInfo(w, args));
    },
  };
}

function ignoreIfStarting(worker: PythonWorker, error: unknown): void {
  if (worker.info === undefined) return; // it never became ready: it will not serve anyone
  throw error;
}
