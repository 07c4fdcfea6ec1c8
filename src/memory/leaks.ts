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

/** How a site's memory went over the measured iterations. */
export type GrowthShape = 'steady' | 'plateau' | 'one-off';

/** An allocation site whose memory grew over the measured iterations. */
export interface LeakSite {
  /** The user's own line that allocated (the innermost frame in the user's files; library frames are folded). */
  file: string;
  line: number;
  /** The user's frames of its main call path, outermost call first, without pyworkers' own frames. */
  frames: Array<{ file: string; line: number }>;
  /** The same frames (an alias). */
  traceback: Array<{ file: string; line: number }>;
  /** When two or more call paths reach the line: each, with its growth per iteration (largest first). */
  paths: Array<{ frames: Array<{ file: string; line: number }>; bytesPerIteration: number }>;
  /** The library line (numpy's, the standard library's) that allocated most beneath the user's line, if any. */
  library: { file: string; line: number } | null;
  /** Growth per iteration: the trend over the checkpoints for steady sites, the total over the iterations else. */
  bytesPerIteration: number;
  countPerIteration: number;
  /** Bytes it grew by over the measured iterations. */
  totalGrowth: number;
  /** How it grew: `'steady'` (on to the end at a similar rate: a leak), `'plateau'` (grew, then stopped), `'one-off'`. */
  shape: GrowthShape;
  /** `shape === 'steady'`. */
  steady: boolean;
  /**
   * For the top steady sites: the references that keep objects allocated there alive, from a root, written as
   * code (`app.cache['req-12']`, `Handler.history[41]`, `app.callbacks[7].__closure__ -> buffer`); null when
   * none was found within the search's bounds (or for other sites).
   */
  keptAliveBy: string | null;
}

export interface LeakReport {
  iterations: number;
  warmup: number;
  frames: number;
  /** Growing sites, steady ones first, then one-off, then plateaus, each group by growth. Sites under 1 KiB of growth are left out as noise. */
  sites: LeakSite[];
  /** The steady sites only: what leaks. */
  leaks: LeakSite[];
  /** Sites that grew, then stopped (bounded caches, full deques): not leaks. */
  plateaus: LeakSite[];
  /** The worker's RSS (bytes) after each measured iteration, less tracemalloc's own memory. */
  rssPerIteration: number[];
  /** The trend of `rssPerIteration`: least-squares slope of its windowed minima (churn left out), bytes per iteration. */
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

/**
 * Growth per iteration of a series that churns (memory taken and given back within a call): the least-squares
 * slope of the minima of consecutive windows, so that a temporary peak does not read as growth.
 */
export function rssTrend(values: number[]): number {
  const size = Math.max(1, Math.floor(values.length / 8));
  if (size === 1) return slope(values);
  const minima: number[] = [];
  for (let i = 0; i + size <= values.length; i += size) minima.push(Math.min(...values.slice(i, i + size)));
  return minima.length >= 2 ? slope(minima) / size : slope(values);
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
    plateaus: sites.filter((s) => s.shape === 'plateau'),
    rssPerIteration: found.rssPerIteration,
    rssGrowthPerIteration: rssTrend(found.rssPerIteration),
    tracedGrowthPerIteration: found.tracedGrowthPerIteration,
    durationMs: Date.now() - started,
  };
}
