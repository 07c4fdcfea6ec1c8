/**
 * The pool's memory monitor: samples every worker on an interval (RSS from the OS, gc counts from Python's
 * control thread), reports the samples, signals pressure, and optionally collects on idle workers under it.
 * It is the guide's `monitor_memory` pattern, built in.
 */
import { ArgumentError } from '../errors.js';
import { checkBoolean, checkInteger, checkKnownKeys, checkObject } from '../validate.js';
import { parseSize } from '../util/size.js';
import type { PythonWorker } from '../worker/worker.js';
import { after, every } from '../util/timers.js';

/** Options of `createPool({ monitor })`. */
export interface MonitorOptions {
  /** Sampling interval in ms. @default 1000 */
  interval?: number;
  /** Signal pressure when a worker's gen-0 count passes this fraction of its gen-0 threshold. @default 0.8 */
  gcPressure?: number;
  /** On gc-count pressure, run a full collection on that worker when it is idle. @default false */
  autoGc?: boolean;
  /** Signal pressure when a worker's RSS passes this (bytes or `'800MB'`). */
  rssWarning?: number | string;
}

export interface ResolvedMonitorOptions {
  interval: number;
  gcPressure: number;
  autoGc: boolean;
  rssWarning: number | undefined;
}

/** One worker's sample. */
export interface MemorySample {
  workerId: number;
  pid: number | undefined;
  /** ms since the epoch. */
  time: number;
  /** Resident memory in bytes (from /proc), or null when the OS did not tell. */
  rss: number | null;
  /** `gc.get_count()`, or null when Python did not answer in time (busy in a C call). */
  gcCount: [number, number, number] | null;
  /** `gc.get_threshold()`, or null as above. */
  gcThreshold: number[] | null;
  /** Handles (`PyRef`s) to objects of this worker that the program holds and has not disposed. */
  handles: number;
}

/** The `'memory'` event: every worker's sample from one round. */
export interface MemoryEvent {
  samples: MemorySample[];
}

/** The `'pressure'` event. */
export interface PressureEvent {
  workerId: number;
  reason: 'gc-count' | 'rss';
  /** The gen-0 count, or the RSS in bytes. */
  value: number;
  /** What it passed: `gcPressure` × the gen-0 threshold, or `rssWarning`. */
  limit: number;
}

const KEYS = new Set(['interval', 'gcPressure', 'autoGc', 'rssWarning']);

export function resolveMonitorOptions(value: unknown): ResolvedMonitorOptions | undefined {
  if (value === undefined || value === false) return undefined;
  if (value === true) value = {};
  checkObject(value, 'options.monitor');
  checkKnownKeys(value, KEYS, 'options.monitor');
  const o = value as MonitorOptions;
  if (o.gcPressure !== undefined && (typeof o.gcPressure !== 'number' || !(o.gcPressure > 0) || !Number.isFinite(o.gcPressure))) {
    throw new ArgumentError(`options.monitor.gcPressure must be a number > 0, got ${String(o.gcPressure)}`);
  }
  return {
    interval: o.interval === undefined ? 1000 : checkInteger(o.interval, 'options.monitor.interval', 10),
    gcPressure: o.gcPressure ?? 0.8,
    autoGc: o.autoGc === undefined ? false : checkBoolean(o.autoGc, 'options.monitor.autoGc'),
    rssWarning: o.rssWarning === undefined ? undefined : parseSize(o.rssWarning, 'options.monitor.rssWarning'),
  };
}

export interface MonitorHost {
  workers(): PythonWorker[];
  emitMemory(event: MemoryEvent): void;
  emitPressure(event: PressureEvent): void;
}

export class MemoryMonitor {
  readonly #options: ResolvedMonitorOptions;
  readonly #host: MonitorHost;
  readonly #timer: NodeJS.Timeout | undefined;
  /** Workers with a sample request outstanding: never more than one each. */
  readonly #pending = new Set<PythonWorker>();

  constructor(options: ResolvedMonitorOptions, host: MonitorHost) {
    this.#options = options;
    this.#host = host;
    this.#timer = every(options.interval, () => void this.sample());
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** One round: sample every ready worker, emit, act on pressure. */
  async sample(): Promise<MemoryEvent> {
    const workers = this.#host.workers().filter((w) => w.state === 'ready' && !this.#pending.has(w));
    const samples = await Promise.all(workers.map((w) => this.#sampleOne(w)));
    const event = { samples };
    if (samples.length > 0) this.#host.emitMemory(event);
    for (const [i, sample] of samples.entries()) this.#check(workers[i]!, sample);
    return event;
  }

  async #sampleOne(worker: PythonWorker): Promise<MemorySample> {
    const time = Date.now();
    const rss = worker.rss()?.rss ?? null;
    this.#pending.add(worker);
    let answer: unknown;
    try {
      answer = await withTimeout(worker.control('sample'), this.#options.interval);
    } catch {
      answer = undefined;
    } finally {
      this.#pending.delete(worker);
    }
    const [gcCount, gcThreshold] = (answer as [[number, number, number], number[]] | undefined) ?? [null, null];
    return { workerId: worker.id, pid: worker.pid, time, rss, gcCount, gcThreshold, handles: worker.handles.size };
  }

  #check(worker: PythonWorker, sample: MemorySample): void {
    const { gcPressure, rssWarning, autoGc } = this.#options;
    if (sample.gcCount && sample.gcThreshold && sample.gcThreshold[0]! > 0) {
      const limit = gcPressure * sample.gcThreshold[0]!;
      if (sample.gcCount[0] > limit) {
        this.#host.emitPressure({ workerId: worker.id, reason: 'gc-count', value: sample.gcCount[0], limit });
        if (autoGc && worker.load === 0 && worker.state === 'ready') void worker.control('gc', [2]).catch(() => {});
      }
    }
    if (rssWarning !== undefined && sample.rss !== null && sample.rss > rssWarning) {
      this.#host.emitPressure({ workerId: worker.id, reason: 'rss', value: sample.rss, limit: rssWarning });
    }
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => {
      timer = after(ms, () => reject(new Error('no answer')));
    }),
  ]).finally(() => clearTimeout(timer));
}
