/**
 * The memory figures the command reads from its worker while the script runs, through the library's context
 * API (`memoryStats`, `tracemallocStart`, `tracemallocStop`, `gcGarbage`), normalised to what the reports need. The final
 * allocation sites come from the runner (python/_pyworkers/runner.py `final_sites`), which can stop tracing
 * before it analyses the last snapshot.
 */
import type { Context } from '../pool/context.js';

/** One reading of the worker's memory. */
export interface Reading {
  rss: number | null;
  peakRss: number | null;
  traced: number | null;
  tracedPeak: number | null;
  /** Collections so far, per generation. */
  collections: number[];
  collected: number[];
  uncollectable: number[];
  gcEnabled: boolean;
  gcThreshold: number[];
  memoryLimit: number | null;
}

/** Files of the pyworkers runtime itself, and tracemalloc's own: never shown as the script's allocations. */
export function isRuntimeFile(file: string): boolean {
  return /[\\/]_pyworkers[\\/][^\\/]+\.py$/.test(file) || /[\\/]tracemalloc\.py$/.test(file);
}

export class Probe {
  readonly #ctx: Context;
  #last: Reading | undefined;

  constructor(ctx: Context) {
    this.#ctx = ctx;
  }

  /** A reading; when Python is stuck in a C call, RSS only (the library then leaves `gcStats` empty). */
  async read(): Promise<Reading> {
    const s = await this.#ctx.memoryStats({ timeout: 500 });
    const gen = s.gcStats;
    if (gen.length === 0 && this.#last) {
      return { ...this.#last, rss: s.rss, peakRss: s.peakRss, traced: null, tracedPeak: null };
    }
    const reading: Reading = {
      rss: s.rss ?? null,
      peakRss: s.peakRss ?? null,
      traced: s.tracedMemoryCurrent ?? null,
      tracedPeak: s.tracedMemoryPeak ?? null,
      collections: gen.map((g) => g.collections),
      collected: gen.map((g) => g.collected),
      uncollectable: gen.map((g) => g.uncollectable),
      gcEnabled: s.gcEnabled,
      gcThreshold: [...s.gcThreshold],
      memoryLimit: s.memoryLimit ?? null,
    };
    this.#last = reading;
    return reading;
  }

  /** What gc.garbage holds: its size, and the type and short repr of the first `limit` objects. */
  garbage(limit: number): Promise<{ count: number; objects: Array<{ type: string; repr: string }> }> {
    return this.#ctx.gcGarbage({ limit, reprLength: 120 });
  }

  traceStart(frames: number): Promise<void> {
    return this.#ctx.tracemallocStart(frames);
  }

  traceStop(): Promise<void> {
    return this.#ctx.tracemallocStop();
  }

  /** The context, for calls into the command's runner module. */
  get context(): Context {
    return this.#ctx;
  }
}
