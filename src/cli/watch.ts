/**
 * Readings of the worker's memory every few hundred ms while the script runs: the timeline of the report and
 * the figures of the status line. Readings go over the worker's control channel, which answers while the script
 * runs; if one does not come back in time (a long C call holding the GIL), RSS is read from /proc instead.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { Probe, Reading } from './probe.js';
import type { Sample } from './report.js';
import { within } from './time.js';

const STALL_MS = 1000;
/** Short scripts deserve a chart too: read every 50 ms at first. */
const EARLY_MS = 2000;
const EARLY_EVERY_MS = 50;

/** Current RSS of a process, from /proc (Linux); null elsewhere. */
export function procRss(pid: number | undefined): number | null {
  if (!pid) return null;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'latin1');
    const kb = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
    return kb === undefined ? null : Number(kb) * 1024;
  } catch {
    return null;
  }
}

export class Watcher {
  readonly #probe: Probe;
  readonly #pid: number | undefined;
  readonly #every: number;
  readonly timeline: Sample[] = [];
  /** The reading before the script started: gc counts are reported relative to it. */
  base: Reading | undefined;
  /** The latest full reading. */
  latest: Reading | undefined;
  /** The first error a reading failed with, if any. */
  failure: Error | undefined;
  #start = 0;
  #timer: NodeJS.Timeout | undefined;
  #pending: Promise<void> | undefined;
  #pendingSince = 0;

  constructor(probe: Probe, pid: number | undefined, everyMs: number) {
    this.#probe = probe;
    this.#pid = pid;
    this.#every = everyMs;
  }

  /** Take the base reading. */
  async prepare(): Promise<void> {
    try {
      this.base = await this.#probe.read();
      this.latest = this.base;
    } catch (error) {
      this.failure ??= error as Error;
    }
  }

  /** Start reading; `t` of the samples counts from now. */
  start(): void {
    this.#start = performance.now();
    this.#record(this.base, this.#start);
    this.#schedule();
  }

  #schedule(): void {
    const every = this.elapsed() < EARLY_MS ? Math.min(this.#every, EARLY_EVERY_MS) : this.#every;
    this.#timer = setTimeout(() => {
      this.#tick();
      if (this.#timer) this.#schedule();
    }, every);
  }

  /** A reading taken elsewhere (the runner's, as the script's code returned), at `t` ms since the start. */
  add(sample: Sample): void {
    this.timeline.push(sample);
  }

  elapsed(): number {
    return this.#start ? performance.now() - this.#start : 0;
  }

  /** Stop, wait for a reading under way, and take a last one if the worker still answers. */
  async stop(final: boolean): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#pending) await within(this.#pending, STALL_MS);
    if (final) {
      const at = performance.now();
      try {
        const reading = await this.#probe.read();
        this.latest = reading;
        this.#record(reading, at);
      } catch (error) {
        this.failure ??= error as Error;
      }
    }
  }

  /** Collections since the base reading, per generation. */
  collections(reading: Reading | undefined = this.latest): number[] {
    if (!reading) return [];
    return reading.collections.map((c, i) => c - (this.base?.collections[i] ?? 0));
  }

  #tick(): void {
    const now = performance.now();
    if (this.#pending) {
      if (now - this.#pendingSince >= STALL_MS) {
        const rss = procRss(this.#pid);
        if (rss !== null) this.timeline.push({ t: now - this.#start, rss, traced: null, tracedPeak: null, gc: this.#gcTotal(this.latest) });
      }
      return;
    }
    this.#pendingSince = now;
    this.#pending = this.#probe
      .read()
      .then(
        (reading) => {
          this.latest = reading;
          this.#record(reading, now);
        },
        (error: unknown) => {
          this.failure ??= error as Error;
          const rss = procRss(this.#pid);
          if (rss !== null) this.timeline.push({ t: now - this.#start, rss, traced: null, tracedPeak: null, gc: this.#gcTotal(this.latest) });
        },
      )
      .finally(() => (this.#pending = undefined));
  }

  gcTotal(reading: Reading | undefined = this.latest): number {
    return this.#gcTotal(reading);
  }

  #gcTotal(reading: Reading | undefined): number {
    return this.collections(reading).reduce((a, b) => a + b, 0);
  }

  #record(reading: Reading | undefined, at: number): void {
    if (!reading) return;
    this.timeline.push({
      t: Math.max(0, at - this.#start),
      rss: reading.rss,
      traced: reading.traced,
      tracedPeak: reading.tracedPeak,
      gc: this.#gcTotal(reading),
    });
  }
}
