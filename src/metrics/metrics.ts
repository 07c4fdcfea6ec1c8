/**
 * pool.metrics(): counters and histograms of the pool's calls and workers, in one plain object. The host counts
 * what it sees (calls, outcomes, latency, queue wait, busy time, restarts, crashes, recycles); each worker adds
 * what only Python knows (collections and their pause times, traced memory, handles) on its control channel.
 */
import type { PyWorkersError } from '../errors.js';
import { readContainer, type ContainerInfo } from '../container.js';
import type { CallJob } from '../worker/job.js';
import type { PythonWorker, WorkerState } from '../worker/worker.js';
import type { OpenTelemetryHooks } from './opentelemetry.js';
import { fromBucketCounts, GC_PAUSE_BUCKETS, HistogramRecorder, LATENCY_BUCKETS, sumHistograms, type Histogram } from './histogram.js';

/** How a call ended. */
export type CallOutcome = 'ok' | 'error' | 'timeout' | 'aborted' | 'crashed' | 'rejected';

export type RecycleCounts = Record<'maxRss' | 'maxCalls' | 'idleTimeout' | 'manual', number>;

export interface WorkerGcMetrics {
  /** Per generation (0, 1, 2): collections so far. */
  collections: number[];
  /** Per generation: objects collected. */
  collected: number[];
  /** Per generation: uncollectable objects found. */
  uncollectable: number[];
  /** Per generation: how long collections paused the worker, in seconds (empty without `metrics`). */
  pauses: Histogram[];
}

export interface WorkerMetrics {
  workerId: number;
  pid: number | undefined;
  state: WorkerState;
  /** Resident memory in bytes (from /proc), `null` where unreadable. */
  rss: number | null;
  /** Bytes tracemalloc traces now; `null` when it does not trace. */
  tracedMemory: number | null;
  /** Seconds it spent with calls to run, since it started. */
  busySeconds: number;
  /** Requests it answered. */
  calls: number;
  /** Live handles (PyRef) to its objects. */
  handles: number;
  gc: WorkerGcMetrics;
  /** False when its Python side did not answer in time (busy in a C call): the Python figures are its last known ones. */
  fresh: boolean;
}

/** Everything `pool.metrics()` reports. Counters count from the pool's start; histograms are in seconds. */
export interface PoolMetrics {
  /** When it was taken (ms since the epoch). */
  time: number;
  calls: {
    /** Calls that settled, by how. */
    byOutcome: Record<CallOutcome, number>;
    /** Calls that settled. */
    total: number;
    /** Calls running now. */
    running: number;
    /** Calls waiting to run (the queue depth). */
    queued: number;
  };
  /** From the call to its answer (queue and run). */
  callDuration: Histogram;
  /** From the call to when it started in a worker. */
  queueWait: Histogram;
  workers: {
    /** Worker processes in rotation (starting ones included). */
    live: number;
    busy: number;
    idle: number;
    /** Started to replace one that exited. */
    restarts: number;
    /** Exited without being asked to (crashes, kills from outside, the memory cap). */
    crashes: number;
    /** Retired by reason. */
    recycles: RecycleCounts;
    /** Each worker's hard memory cap (`maxMemory`) in bytes, `null` without one. */
    memoryLimit: number | null;
  };
  /** The share of the workers' time spent running calls since the previous `metrics()` (0 to 1). */
  busyRatio: number;
  /** The live workers' collections and pauses, summed per generation. */
  gc: { collections: number[]; pauses: Histogram[] };
  perWorker: WorkerMetrics[];
  /** The container the pool runs in, as its cgroup says. */
  container: ContainerInfo;
}

/** What the collector reads of its pool. */
export interface MetricsSource {
  workers(): PythonWorker[];
  queued(): number;
  restarts(): number;
  /** The pool's maxMemory. */
  memoryLimit(): number | null;
}

const PYTHON_TIMEOUT = 1000;

interface PythonFigures {
  gc: Array<[number, number, number]>;
  pauses: Array<[number[], number]> | null;
  traced: number | null;
  handles: number;
  calls: number;
}

export class MetricsCollector {
  readonly #enabled: boolean;
  readonly #callDuration = new HistogramRecorder(LATENCY_BUCKETS);
  readonly #queueWait = new HistogramRecorder(LATENCY_BUCKETS);
  readonly #byOutcome: Record<CallOutcome, number> = { ok: 0, error: 0, timeout: 0, aborted: 0, crashed: 0, rejected: 0 };
  readonly #recycles: RecycleCounts = { maxRss: 0, maxCalls: 0, idleTimeout: 0, manual: 0 };
  #crashes = 0;
  readonly #lastPython = new WeakMap<PythonWorker, PythonFigures>();
  readonly #lastBusy = new WeakMap<PythonWorker, number>();
  #lastTime = performance.now();
  readonly #cgroupRoot: string | undefined;
  /** Set when OpenTelemetry instruments record the calls too. */
  openTelemetry: OpenTelemetryHooks | undefined;

  constructor(
    private readonly source: MetricsSource,
    options: { enabled: boolean; cgroupRoot?: string | undefined },
  ) {
    this.#enabled = options.enabled;
    this.#cgroupRoot = options.cgroupRoot;
  }

  /** A call settled. */
  settled(job: CallJob, ok: boolean, error: unknown): void {
    const outcome = ok ? 'ok' : outcomeOf(error);
    this.#byOutcome[outcome]++;
    if (!this.#enabled) return;
    const now = (job.settledAt = performance.now());
    const duration = (now - job.createdAt) / 1000;
    const wait = job.startedAt ? (job.startedAt - job.createdAt) / 1000 : undefined;
    this.#callDuration.observe(duration);
    if (wait !== undefined) this.#queueWait.observe(wait);
    this.openTelemetry?.call(duration, wait, outcome);
  }

  recycled(reason: keyof RecycleCounts): void {
    this.#recycles[reason]++;
  }

  crashed(): void {
    this.#crashes++;
  }

  async collect(): Promise<PoolMetrics> {
    const workers = this.source.workers();
    const perWorker = await Promise.all(workers.map((w) => this.#worker(w)));
    const now = performance.now();
    const elapsed = now - this.#lastTime;
    this.#lastTime = now;
    let busyDelta = 0;
    for (const w of workers) {
      const busy = w.busyMs;
      busyDelta += busy - (this.#lastBusy.get(w) ?? Math.max(0, busy - elapsed));
      this.#lastBusy.set(w, busy);
    }
    const counted = workers.filter((w) => w.state !== 'exited').length;
    const busy = workers.filter((w) => w.load > 0).length;
    const total = Object.values(this.#byOutcome).reduce((a, b) => a + b, 0);
    return {
      time: Date.now(),
      calls: {
        byOutcome: { ...this.#byOutcome },
        total,
        running: busy,
        queued: this.source.queued(),
      },
      callDuration: this.#callDuration.snapshot(),
      queueWait: this.#queueWait.snapshot(),
      workers: {
        live: counted,
        busy,
        idle: workers.filter((w) => w.state === 'ready' && w.load === 0).length,
        restarts: this.source.restarts(),
        crashes: this.#crashes,
        recycles: { ...this.#recycles },
        memoryLimit: this.source.memoryLimit(),
      },
      busyRatio: counted > 0 && elapsed > 0 ? Math.min(1, Math.max(0, busyDelta / (elapsed * counted))) : 0,
      gc: {
        collections: [0, 1, 2].map((g) => perWorker.reduce((n, w) => n + (w.gc.collections[g] ?? 0), 0)),
        pauses: [0, 1, 2].map((g) => sumHistograms(GC_PAUSE_BUCKETS, perWorker.flatMap((w) => (w.gc.pauses[g] ? [w.gc.pauses[g]] : [])))),
      },
      perWorker,
      container: readContainer(this.#cgroupRoot),
    };
  }

  async #worker(worker: PythonWorker): Promise<WorkerMetrics> {
    let python: PythonFigures | undefined;
    let fresh = false;
    if (worker.state === 'ready' || worker.state === 'retiring') {
      try {
        python = (await worker.control('metrics', [], PYTHON_TIMEOUT)) as PythonFigures;
        this.#lastPython.set(worker, python);
        fresh = true;
      } catch {
        // busy in C, or exiting: the last figures
      }
    }
    python ??= this.#lastPython.get(worker);
    const gc = python?.gc ?? [];
    return {
      workerId: worker.id,
      pid: worker.pid,
      state: worker.state,
      rss: worker.rss()?.rss ?? null,
      tracedMemory: python?.traced ?? null,
      busySeconds: worker.busyMs / 1000,
      calls: python?.calls ?? Math.max(0, worker.completed - 1),
      handles: worker.handles.size,
      gc: {
        collections: gc.map((g) => g[0]),
        collected: gc.map((g) => g[1]),
        uncollectable: gc.map((g) => g[2]),
        pauses: python?.pauses ? python.pauses.map(([counts, sum]) => fromBucketCounts(GC_PAUSE_BUCKETS, counts, sum)) : [],
      },
      fresh,
    };
  }
}

function outcomeOf(error: unknown): CallOutcome {
  switch ((error as PyWorkersError | undefined)?.code) {
    case 'ERR_TIMEOUT':
      return 'timeout';
    case 'ERR_ABORTED':
      return 'aborted';
    case 'ERR_WORKER_CRASHED':
      return 'crashed';
    case 'ERR_QUEUE_FULL':
    case 'ERR_POOL_CLOSED':
      return 'rejected';
    default:
      return 'error';
  }
}
