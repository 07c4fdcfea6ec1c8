/**
 * The leak finder's host side: options, the report's shape, and the run on a dedicated worker.
 */
import { ArgumentError } from '../errors.js';
import { CallJob } from '../worker/job.js';
import { checkInteger, checkKnownKeys, checkMilliseconds, checkObject } from '../validate.js';
import { requestCall } from '../protocol/requests.js';
import type { PythonWorker } from '../worker/worker.js';

/** What to run: Python statements, or a function call. */
export type LeakWorkload = string | { module: string; fn: string; args?: unknown[]; kwargs?: Record<string, unknown> };

export interface FindLeaksOptions {
  /** Measured iterations. @default 50 */
  iterations?: number;
  /** Iterations run first and not measured (caches fill, imports happen). @default 5 */
  warmup?: number;
  /** Frames kept per allocation (tracemalloc's cost grows with it). @default 5 */
  frames?: number;
  /** Most sites reported. @default 10 */
  limit?: number;
  /** Give up after this many ms (the dedicated worker is killed). @default none */
  timeout?: number;
}

/** An allocation site whose memory grew over the measured iterations. */
export interface LeakSite {
  /** The line that allocated (innermost frame). */
  file: string;
  line: number;
  /** The traceback, outermost call first, without pyworkers' own frames. */
  frames: Array<{ file: string; line: number }>;
  /** The same frames (an alias). */
  traceback: Array<{ file: string; line: number }>;
  bytesPerIteration: number;
  countPerIteration: number;
  /** Bytes it grew by over the measured iterations. */
  totalGrowth: number;
  /** True when it grew at a similar rate in both halves of the run (a leak); false for a one-off allocation. */
  steady: boolean;
}

export interface LeakReport {
  iterations: number;
  warmup: number;
  frames: number;
  /** Growing sites, steady ones first, each group by growth. Sites under 1 KiB of growth are left out as noise. */
  sites: LeakSite[];
  /** The steady sites only: what leaks. */
  leaks: LeakSite[];
  /** The worker's RSS (bytes) after each measured iteration. */
  rssPerIteration: number[];
  /** Least-squares slope of `rssPerIteration`, bytes per iteration. */
  rssGrowthPerIteration: number;
  /** Growth of tracemalloc's traced memory per measured iteration, in bytes. */
  tracedGrowthPerIteration: number;
  durationMs: number;
}

const KEYS = new Set(['iterations', 'warmup', 'frames', 'limit', 'timeout']);

export function resolveLeakOptions(options: FindLeaksOptions | undefined): Required<Omit<FindLeaksOptions, 'timeout'>> & { timeout: number | undefined } {
  const o = options ?? {};
  checkObject(o, 'findLeaks() options');
  checkKnownKeys(o, KEYS, 'findLeaks() options');
  return {
    iterations: o.iterations === undefined ? 50 : checkInteger(o.iterations, 'options.iterations', 2),
    warmup: o.warmup === undefined ? 5 : checkInteger(o.warmup, 'options.warmup', 0),
    frames: o.frames === undefined ? 5 : checkInteger(o.frames, 'options.frames', 1),
    limit: o.limit === undefined ? 10 : checkInteger(o.limit, 'options.limit', 1),
    timeout: o.timeout === undefined ? undefined : checkMilliseconds(o.timeout, 'options.timeout'),
  };
}

function describeWorkload(workload: LeakWorkload): unknown[] {
  if (typeof workload === 'string') return ['code', workload];
  if (typeof workload !== 'object' || workload === null || typeof workload.module !== 'string' || typeof workload.fn !== 'string') {
    throw new ArgumentError("workload must be Python code (a string) or { module, fn, args?, kwargs? }");
  }
  if (workload.args !== undefined && !Array.isArray(workload.args)) throw new ArgumentError('workload.args must be an array');
  return ['call', workload.module, workload.fn, workload.args ?? [], workload.kwargs ?? null];
}

function slope(values: number[]): number {
  const n = values.length;
  if (n < 2) return 0;
  const meanX = (n - 1) / 2;
  const meanY = values.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  values.forEach((y, x) => {
    num += (x - meanX) * (y - meanY);
    den += (x - meanX) ** 2;
  });
  return num / den;
}

/** Run the leak search on `worker` (fresh, dedicated, ended by the caller). */
export async function runLeakSearch(worker: PythonWorker, workload: LeakWorkload, options: FindLeaksOptions | undefined): Promise<LeakReport> {
  const o = resolveLeakOptions(options);
  const spec = describeWorkload(workload);
  const started = Date.now();
  const request = requestCall(0, '_pyworkers.leaks', 'find_leaks', [spec, o.iterations, o.warmup, o.frames, o.limit], undefined);
  const job = new CallJob(request.kind, request.frame, request.flags, { timeout: o.timeout, signal: undefined }, true);
  worker.send(job);
  const found = (await job.promise) as { sites: Omit<LeakSite, 'traceback'>[]; rssPerIteration: number[]; tracedGrowthPerIteration: number };
  const sites: LeakSite[] = found.sites.map((site) => ({ ...site, traceback: site.frames }));
  return {
    iterations: o.iterations,
    warmup: o.warmup,
    frames: o.frames,
    sites,
    leaks: sites.filter((s) => s.steady),
    rssPerIteration: found.rssPerIteration,
    rssGrowthPerIteration: slope(found.rssPerIteration),
    tracedGrowthPerIteration: found.tracedGrowthPerIteration,
    durationMs: Date.now() - started,
  };
}
