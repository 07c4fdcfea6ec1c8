/**
 * Histograms with fixed bucket bounds, in the shape Prometheus and OpenTelemetry expect: cumulative counts per
 * upper bound (`le`), plus the count and the sum of what was observed.
 */

/** A histogram's figures. `counts[i]` counts observations <= `buckets[i]` (cumulative); `count` counts them all. */
export interface Histogram {
  /** Upper bounds, in the histogram's unit (seconds), increasing; `+Inf` is implied (it is `count`). */
  buckets: number[];
  /** Observations at or below each bound: cumulative, like Prometheus' `le` buckets. */
  counts: number[];
  /** Every observation. */
  count: number;
  /** The sum of the observations. */
  sum: number;
}

/** Call latency and queue wait bounds, seconds: from a fraction of a millisecond to a minute. */
export const LATENCY_BUCKETS: readonly number[] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Garbage collection pause bounds, seconds. */
export const GC_PAUSE_BUCKETS: readonly number[] = [0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1];

/** Observations into per-bucket (not cumulative) counts; the last slot is above every bound. */
export class HistogramRecorder {
  readonly #bounds: readonly number[];
  readonly #counts: Float64Array;
  #sum = 0;

  constructor(bounds: readonly number[]) {
    this.#bounds = bounds;
    this.#counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.#counts[i]!++;
    this.#sum += value;
  }

  snapshot(): Histogram {
    return fromBucketCounts(this.#bounds, this.#counts, this.#sum);
  }
}

/** A Histogram from per-bucket counts (the last one above every bound) and a sum. */
export function fromBucketCounts(bounds: readonly number[], perBucket: ArrayLike<number>, sum: number): Histogram {
  const counts: number[] = [];
  let running = 0;
  for (let i = 0; i < bounds.length; i++) counts.push((running += perBucket[i] ?? 0));
  return { buckets: [...bounds], counts, count: running + (perBucket[bounds.length] ?? 0), sum };
}

/** The bucket-wise sum of histograms with the same bounds (an empty one of `bounds` when there are none). */
export function sumHistograms(bounds: readonly number[], histograms: readonly Histogram[]): Histogram {
  const out: Histogram = { buckets: [...bounds], counts: bounds.map(() => 0), count: 0, sum: 0 };
  for (const h of histograms) {
    h.counts.forEach((c, i) => (out.counts[i]! += c));
    out.count += h.count;
    out.sum += h.sum;
  }
  return out;
}
