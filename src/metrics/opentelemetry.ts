/**
 * OpenTelemetry: when the app has `@opentelemetry/api` (an optional peer dependency), the pool's figures become
 * instruments of a meter named `pyworkers`: observable counters and gauges read from `pool.metrics()` when the
 * app's MeterProvider collects, and histograms of call duration and queue wait recorded as calls settle. Without
 * the package nothing is loaded; without a MeterProvider the API's no-op meter costs next to nothing.
 */
import type { Histogram as OtelHistogram, Meter, MeterProvider } from '@opentelemetry/api';
import type { PoolMetrics } from './metrics.js';

/** An OpenTelemetry MeterProvider (typed loosely: the package is optional). */
export interface MeterProviderLike {
  getMeter(name: string, version?: string, options?: object): unknown;
}

/** What the instruments read and where they record. */
export interface InstrumentedPool {
  metrics(): Promise<PoolMetrics>;
}

export interface OpenTelemetryHooks {
  /** Record a settled call (seconds). */
  call(durationSeconds: number, queueWaitSeconds: number | undefined, outcome: string): void;
  /** Stop observing (the pool closed). */
  stop(): void;
}

/**
 * Register the pool's instruments on `meterProvider` (else the global one). Resolves to undefined when
 * `@opentelemetry/api` cannot be loaded.
 */
export async function registerOpenTelemetry(pool: InstrumentedPool, meterProvider?: MeterProviderLike): Promise<OpenTelemetryHooks | undefined> {
  let api: typeof import('@opentelemetry/api');
  try {
    api = await import('@opentelemetry/api');
  } catch {
    return undefined;
  }
  const meter: Meter = ((meterProvider as MeterProvider | undefined) ?? api.metrics.getMeterProvider()).getMeter('pyworkers');
  // No MeterProvider registered: the API's no-op meter. Nothing to record into, so nothing is registered and no
  // call pays for it.
  if (meter.constructor.name === 'NoopMeter') return undefined;
  const duration: OtelHistogram = meter.createHistogram('pyworkers.call.duration', { unit: 's', description: 'Time from a call to its answer, queue and run.' });
  const queueWait: OtelHistogram = meter.createHistogram('pyworkers.queue.wait', { unit: 's', description: 'Time from a call to its start in a worker.' });
  const calls = meter.createObservableCounter('pyworkers.calls', { description: 'Calls that settled, by outcome.' });
  const queueDepth = meter.createObservableGauge('pyworkers.queue.depth', { description: 'Calls waiting to run.' });
  const workers = meter.createObservableGauge('pyworkers.workers', { description: 'Worker processes in rotation.' });
  const busyRatio = meter.createObservableGauge('pyworkers.busy_ratio', { description: "Share of the workers' time spent running calls since the previous collection." });
  const restarts = meter.createObservableCounter('pyworkers.worker.restarts', { description: 'Workers started to replace one that exited.' });
  const crashes = meter.createObservableCounter('pyworkers.worker.crashes', { description: 'Workers that exited without being asked to.' });
  const recycles = meter.createObservableCounter('pyworkers.worker.recycles', { description: 'Workers retired, by reason.' });
  const rss = meter.createObservableGauge('pyworkers.worker.rss', { unit: 'By', description: 'Resident memory of a worker process.' });
  const traced = meter.createObservableGauge('pyworkers.worker.traced_memory', { unit: 'By', description: 'Memory tracemalloc traces in a worker.' });
  const handles = meter.createObservableGauge('pyworkers.worker.handles', { description: 'Live handles (PyRef) to objects of a worker.' });
  const collections = meter.createObservableCounter('pyworkers.gc.collections', { description: 'Garbage collections, per worker and generation.' });
  const pauseTime = meter.createObservableCounter('pyworkers.gc.pause.time', { unit: 's', description: 'Time garbage collections paused a worker, per generation.' });
  const observables = [calls, queueDepth, workers, busyRatio, restarts, crashes, recycles, rss, traced, handles, collections, pauseTime];
  const observe = async (observer: { observe(o: unknown, value: number, attributes?: Record<string, string | number>): void }) => {
    let m: PoolMetrics;
    try {
      m = await pool.metrics();
    } catch {
      return; // closing
    }
    for (const [outcome, n] of Object.entries(m.calls.byOutcome)) observer.observe(calls, n, { outcome });
    observer.observe(queueDepth, m.calls.queued);
    observer.observe(workers, m.workers.live);
    observer.observe(busyRatio, m.busyRatio);
    observer.observe(restarts, m.workers.restarts);
    observer.observe(crashes, m.workers.crashes);
    for (const [reason, n] of Object.entries(m.workers.recycles)) observer.observe(recycles, n, { reason });
    for (const w of m.perWorker) {
      const worker = w.workerId;
      if (w.rss !== null) observer.observe(rss, w.rss, { worker });
      if (w.tracedMemory !== null) observer.observe(traced, w.tracedMemory, { worker });
      observer.observe(handles, w.handles, { worker });
      w.gc.collections.forEach((n, generation) => observer.observe(collections, n, { worker, generation }));
      w.gc.pauses.forEach((h, generation) => observer.observe(pauseTime, h.sum, { worker, generation }));
    }
  };
  const callback = (observer: { observe(o: unknown, value: number, attributes?: Record<string, string | number>): void }) => observe(observer);
  meter.addBatchObservableCallback(callback as Parameters<Meter['addBatchObservableCallback']>[0], observables);
  return {
    call(durationSeconds, queueWaitSeconds, outcome) {
      duration.record(durationSeconds, { outcome });
      if (queueWaitSeconds !== undefined) queueWait.record(queueWaitSeconds);
    },
    stop() {
      meter.removeBatchObservableCallback(callback as Parameters<Meter['removeBatchObservableCallback']>[0], observables);
    },
  };
}
