/**
 * The report of `pyworkers run`: one plain object, written as JSON (`--json`), as text on stdout and as the
 * HTML page (`--report`). Its shape is documented in docs/cli.md; `schema` changes when it does.
 */

export const REPORT_SCHEMA = 1;

/** How the script ended. */
export type Ending =
  | 'ok' // exit status 0
  | 'exit' // a non-zero status from sys.exit()
  | 'exception' // an uncaught exception
  | 'memory-cap' // MemoryError (or killed) while capped by --max-memory
  | 'out-of-memory' // MemoryError without a cap
  | 'timeout' // stopped by --timeout
  | 'killed' // the Python process was killed (signal) or died
  | 'interrupted'; // Ctrl-C

export interface Outcome {
  /** The command's exit code. */
  exitCode: number;
  ending: Ending;
  /** One sentence: `exited with status 0`, `raised ValueError: bad input`, `hit the memory cap (256 MiB)`... */
  description: string;
  exception: { type: string; message: string } | null;
  /** The signal that ended the Python process, if one did. */
  signal: string | null;
}

export interface Sample {
  /** Milliseconds since the script started. */
  t: number;
  rss: number | null;
  traced: number | null;
  tracedPeak: number | null;
  /** Collections since the script started, all generations. */
  gc: number;
}

export interface SiteRow {
  file: string;
  line: number | null;
  /** The enclosing function, `<module>` at top level; null when unknown. */
  function: string | null;
  /** The source line, stripped. */
  code: string;
  size: number;
  count: number;
  /**
   * The library frame that allocated (numpy's, the standard library's) when the site is the user's line that called
   * it; null when the site is where the allocation happened.
   */
  library: StackFrame | null;
  /**
   * For the biggest lines: the references that keep their objects alive, from a root, written as code
   * (`__main__.cache['req-12']`, `Handler.history[41]`, `gc.garbage[0]`); null when none was found or not searched.
   */
  keptAliveBy: string | null;
}

export interface StackFrame {
  file: string;
  line: number | null;
  function: string | null;
}

export interface StackRow {
  /** Outermost call first; the allocating line last. */
  stack: StackFrame[];
  /** The traceback was cut at `--frames`: its outer callers are not known. */
  truncated: boolean;
  size: number;
  count: number;
}

export interface GcGeneration {
  collections: number;
  collected: number;
  uncollectable: number;
}

export interface Hint {
  id: string;
  title: string;
  text: string;
  /** What the hint was drawn from: RSS readings, the collector, sampled tracing windows, or full tracing. */
  source: 'rss' | 'gc' | 'sampled tracing' | 'full tracing' | 'outcome';
}

export interface RunReport {
  schema: number;
  tool: { name: 'pyworkers'; version: string };
  command: 'run';
  /** The command as typed: `['pyworkers', 'run', ...]`. */
  commandLine: string[];
  script: string;
  /** The script's `sys.argv`. */
  argv: string[];
  cwd: string;
  python: { version: string; executable: string };
  startedAt: string;
  wallTimeMs: number;
  outcome: Outcome;
  settings: {
    tracing: boolean;
    /** 'sample': allocations traced in windows (the default); 'full': traced for the whole run; 'off': --no-trace. */
    mode: 'sample' | 'full' | 'off';
    frames: number | null;
    maxMemory: number | null;
    timeoutMs: number | null;
    intervalMs: number;
  };
  /** In sample mode: how many tracing windows were open, and for how long in all (s). */
  sampling: { windows: number; tracedSeconds: number } | null;
  memory: {
    peakRss: number | null;
    /** When the highest RSS reading was taken, ms since start. */
    peakRssAt: number | null;
    finalRss: number | null;
    tracedPeak: number | null;
    /** Traced memory still allocated when the script ended. */
    tracedFinal: number | null;
    maxMemory: number | null;
    /** Memory tracemalloc itself used when the script ended (its traces): part of RSS, not the script's. */
    tracemallocOverhead: number | null;
  };
  timeline: Sample[];
  /** The top sites by line, of what was still allocated at the end (tracemalloc). */
  top: SiteRow[];
  /** Totals of that snapshot. */
  snapshot: { totalSize: number; totalCount: number } | null;
  /** Allocation tracebacks for the flame graph. */
  stacks: StackRow[];
  gc: {
    enabled: boolean | null;
    threshold: number[];
    /** During the run, per generation. */
    generations: GcGeneration[];
    garbage: { count: number; types: Array<{ type: string; count: number }>; objects: Array<{ type: string; repr: string }> };
  };
  hints: Hint[];
  /** What could not be measured, and why. */
  notes: string[];
}

/** Highest RSS reading and when. */
export function peakOf(timeline: Sample[], key: 'rss' | 'traced'): { value: number | null; at: number | null } {
  let value: number | null = null;
  let at: number | null = null;
  for (const s of timeline) {
    const v = s[key];
    if (v !== null && (value === null || v > value)) {
      value = v;
      at = s.t;
    }
  }
  return { value, at };
}

/** Readings thinned to at most `max` points, keeping every local high and low of RSS and traced memory. */
export function thin(timeline: Sample[], max: number): Sample[] {
  if (timeline.length <= max) return timeline;
  const buckets = Math.max(1, Math.floor(max / 2));
  const per = timeline.length / buckets;
  const out: Sample[] = [];
  for (let b = 0; b < buckets; b++) {
    const part = timeline.slice(Math.floor(b * per), Math.floor((b + 1) * per));
    if (part.length === 0) continue;
    let hi = part[0]!;
    let lo = part[0]!;
    for (const s of part) {
      if ((s.rss ?? 0) > (hi.rss ?? 0)) hi = s;
      if ((s.rss ?? 0) < (lo.rss ?? 0)) lo = s;
    }
    for (const s of hi === lo ? [hi] : hi.t < lo.t ? [hi, lo] : [lo, hi]) out.push(s);
  }
  const last = timeline[timeline.length - 1]!;
  if (out[out.length - 1] !== last) out.push(last);
  return out;
}
