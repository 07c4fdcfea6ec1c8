/**
 * PoolMetrics in the Prometheus text exposition format (version 0.0.4): `_total` counters, `_seconds` and
 * `_bytes` units, histograms with cumulative `le` buckets, one `worker` label per worker and a `generation` label
 * per collector generation.
 */
import type { Histogram } from './histogram.js';
import type { PoolMetrics } from './metrics.js';

export interface PrometheusOptions {
  /** The metric names' prefix. @default 'pyworkers' */
  prefix?: string;
  /** Labels added to every series, e.g. `{ pool: 'models' }` when one process has several pools. */
  labels?: Record<string, string>;
}

/** The content type of the format, for the `/metrics` response. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

type Labels = Record<string, string | number>;

class Exposition {
  readonly #lines: string[] = [];
  constructor(
    private readonly prefix: string,
    private readonly common: Labels,
  ) {}

  family(name: string, type: 'counter' | 'gauge' | 'histogram', help: string): string {
    const full = `${this.prefix}_${name}`;
    this.#lines.push(`# HELP ${full} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${full} ${type}`);
    return full;
  }

  sample(name: string, value: number, labels: Labels = {}): void {
    this.#lines.push(`${name}${labelText({ ...this.common, ...labels })} ${num(value)}`);
  }

  histogram(name: string, h: Histogram, labels: Labels = {}): void {
    h.buckets.forEach((le, i) => this.sample(`${name}_bucket`, h.counts[i]!, { ...labels, le: num(le) }));
    this.sample(`${name}_bucket`, h.count, { ...labels, le: '+Inf' });
    this.sample(`${name}_sum`, h.sum, labels);
    this.sample(`${name}_count`, h.count, labels);
  }

  text(): string {
    return `${this.#lines.join('\n')}\n`;
  }
}

export function toPrometheus(m: PoolMetrics, options: PrometheusOptions = {}): string {
  const prefix = options.prefix ?? 'pyworkers';
  if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(prefix)) throw new TypeError(`options.prefix must be a Prometheus metric name, got ${JSON.stringify(prefix)}`);
  for (const key of Object.keys(options.labels ?? {})) {
    if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(key) || key.startsWith('__')) throw new TypeError(`options.labels: ${JSON.stringify(key)} is not a Prometheus label name`);
  }
  const out = new Exposition(prefix, options.labels ?? {});
  let f = out.family('calls_total', 'counter', 'Calls that settled, by outcome (ok, error, timeout, aborted, crashed, rejected).');
  for (const [outcome, n] of Object.entries(m.calls.byOutcome)) out.sample(f, n, { outcome });
  f = out.family('call_duration_seconds', 'histogram', 'Time from a call to its answer, queue and run.');
  out.histogram(f, m.callDuration);
  f = out.family('queue_wait_seconds', 'histogram', 'Time from a call to its start in a worker.');
  out.histogram(f, m.queueWait);
  out.sample(out.family('queue_depth', 'gauge', 'Calls waiting to run.'), m.calls.queued);
  out.sample(out.family('calls_running', 'gauge', 'Workers running a call.'), m.calls.running);
  out.sample(out.family('workers', 'gauge', 'Worker processes in rotation.'), m.workers.live);
  out.sample(out.family('workers_busy', 'gauge', 'Workers with calls to run.'), m.workers.busy);
  out.sample(out.family('busy_ratio', 'gauge', "Share of the workers' time spent running calls since the previous scrape."), m.busyRatio);
  out.sample(out.family('worker_restarts_total', 'counter', 'Workers started to replace one that exited.'), m.workers.restarts);
  out.sample(out.family('worker_crashes_total', 'counter', 'Workers that exited without being asked to.'), m.workers.crashes);
  f = out.family('worker_recycles_total', 'counter', 'Workers retired, by reason (maxRss, maxCalls, idleTimeout, manual).');
  for (const [reason, n] of Object.entries(m.workers.recycles)) out.sample(f, n, { reason });

  const per = (name: string, type: 'counter' | 'gauge', help: string, value: (w: PoolMetrics['perWorker'][number]) => number | null) => {
    const rows = m.perWorker.map((w) => [w.workerId, value(w)] as const).filter((r): r is readonly [number, number] => r[1] !== null);
    if (rows.length === 0) return;
    const fam = out.family(name, type, help);
    for (const [worker, v] of rows) out.sample(fam, v, { worker });
  };
  per('worker_rss_bytes', 'gauge', 'Resident memory of the worker process.', (w) => w.rss);
  per('worker_traced_bytes', 'gauge', 'Memory tracemalloc traces in the worker (while it traces).', (w) => w.tracedMemory);
  per('worker_busy_seconds_total', 'counter', 'Time the worker had calls to run.', (w) => w.busySeconds);
  per('worker_calls_total', 'counter', 'Requests the worker answered.', (w) => w.calls);
  per('worker_handles', 'gauge', 'Live handles (PyRef) to objects of the worker.', (w) => w.handles);

  const gen = (name: string, help: string, pick: (w: PoolMetrics['perWorker'][number]) => number[]) => {
    const fam = out.family(name, 'counter', help);
    for (const w of m.perWorker) pick(w).forEach((v, generation) => out.sample(fam, v, { worker: w.workerId, generation }));
  };
  gen('gc_collections_total', 'Garbage collections, per worker and generation.', (w) => w.gc.collections);
  gen('gc_collected_objects_total', 'Objects the collector freed, per worker and generation.', (w) => w.gc.collected);
  gen('gc_uncollectable_objects_total', 'Uncollectable objects the collector found, per worker and generation.', (w) => w.gc.uncollectable);
  if (m.perWorker.some((w) => w.gc.pauses.length > 0)) {
    f = out.family('gc_pause_seconds', 'histogram', 'How long garbage collections paused the worker, per generation.');
    for (const w of m.perWorker) w.gc.pauses.forEach((h, generation) => out.histogram(f, h, { worker: w.workerId, generation }));
  }
  if (m.workers.memoryLimit !== null) out.sample(out.family('worker_memory_limit_bytes', 'gauge', "Each worker's hard memory cap (maxMemory)."), m.workers.memoryLimit);
  if (m.container.memoryLimit !== null) out.sample(out.family('container_memory_limit_bytes', 'gauge', "The container's memory limit (cgroup)."), m.container.memoryLimit);
  if (m.container.cpuQuota !== null) out.sample(out.family('container_cpu_quota', 'gauge', "CPUs the container's quota allows (cgroup)."), m.container.cpuQuota);
  return out.text();
}

function labelText(labels: Labels): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return '';
  return `{${entries.map(([k, v]) => `${k}="${String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`).join(',')}}`;
}

function num(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}
